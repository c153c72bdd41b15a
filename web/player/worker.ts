// The player worker: runs whole WebCodecs players (transport, decoder, renderer) on OffscreenCanvases
// handed over by the page, and relays their events back. Bundled inline into canvascast.js (a Blob
// URL worker): the module is loaded cross-origin, and a cross-origin worker script is refused.
//
// The socket lives here too, not on the main thread: then the page does no work per frame at all
// (no message event, no postMessage, no transfer), only a stats message every `statsIntervalMs`
// and state changes — which is the point of the worker for a page with many players.

import { CanvasCastPlayer } from "./player.js";
import { webCodecsBackend } from "./webcodecs-backend.js";
import type { FromWorker, ToWorker, WorkerPlayerEvent } from "./worker-messages.js";
import { PLAYER_EVENT_TYPES, toWire, wireError } from "./worker-messages.js";

/** The little of DedicatedWorkerGlobalScope used here (web/ is typed with the DOM lib, not WebWorker). */
interface WorkerScope {
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
  postMessage(message: FromWorker): void;
}

const scope = globalThis as unknown as WorkerScope;
const canvases = new Map<number, OffscreenCanvas>();
const players = new Map<number, CanvasCastPlayer>();
let pageHidden = false;

function start(message: Extract<ToWorker, { type: "play" }>): void {
  const { id } = message;
  if (message.markPaints) (globalThis as { canvascastMarkPaints?: boolean }).canvascastMarkPaints = true;
  const post = (event: WorkerPlayerEvent): void => scope.postMessage({ type: "event", id, event });
  if (message.canvas !== undefined) canvases.set(message.canvasId, message.canvas);
  const canvas = canvases.get(message.canvasId);
  // This worker's clock + shift = the page's clock (performance.now() counts from each one's origin).
  const shift = performance.timeOrigin - message.timeOrigin;
  let player: CanvasCastPlayer;
  try {
    if (canvas === undefined) throw new Error("the canvas is not in this worker");
    player = new CanvasCastPlayer(webCodecsBackend(canvas), message.url, message.options, { thread: "worker", watchDocument: false });
  } catch (err) {
    post({ type: "error", payload: { ...wireError(err, true), code: "CC_ERR_DECODER_UNSUPPORTED" } });
    post({ type: "state", payload: { state: "offline", reason: wireError(err).message, retryAt: undefined } });
    return;
  }
  players.set(id, player);
  for (const type of PLAYER_EVENT_TYPES) player.on(type, (payload) => post(toWire(type, payload, shift)));
  player.setPausedFor("hidden", pageHidden);
  for (const reason of message.pausedFor) player.setPausedFor(reason, true);
  // The constructor may have set a state without an event (unsupported); send the current one.
  post(toWire("state", { state: player.state, reason: player.reason, retryAt: player.retryAt }, shift));
}

function snapshot(id: number, request: number): void {
  const player = players.get(id);
  const reply = (blob: Blob | undefined, error: ReturnType<typeof wireError> | undefined): void =>
    scope.postMessage({ type: "snapshot", id, request, blob, error });
  if (player === undefined) {
    reply(undefined, { name: "InvalidStateError", code: undefined, message: "the player is closed", fatal: false });
    return;
  }
  player.snapshot().then(
    (blob) => reply(blob, undefined),
    (err: unknown) => reply(undefined, wireError(err)),
  );
}

scope.postMessage({ type: "ready" });

scope.onmessage = ({ data: message }) => {
  switch (message.type) {
    case "play":
      start(message);
      break;
    case "hidden":
      pageHidden = message.hidden;
      for (const player of players.values()) player.setPausedFor("hidden", message.hidden);
      break;
    case "paused":
      players.get(message.id)?.setPausedFor(message.reason, message.paused);
      break;
    case "seek": {
      const player = players.get(message.id);
      if (message.at === null) player?.live();
      else player?.seek(message.at);
      break;
    }
    case "encoding":
      players.get(message.id)?.setEncoding(message.encoding);
      break;
    case "snapshot":
      snapshot(message.id, message.request);
      break;
    case "close":
      players.get(message.id)?.close();
      players.delete(message.id);
      break;
    case "release":
      canvases.delete(message.canvasId);
      break;
    default: {
      const unknown: never = message;
      throw new Error(`unknown message ${JSON.stringify(unknown)}`);
    }
  }
};
