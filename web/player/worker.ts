// The player worker: runs whole WebCodecs players (socket, decoder, renderer) on OffscreenCanvases
// handed over by the page, and reports their events back. Bundled inline into canvascast.js (a
// Blob URL worker): the module is loaded cross-origin, and a cross-origin worker script is refused.
//
// The socket lives here too, not on the main thread: then the page does no work per frame at all
// (no message event, no postMessage, no transfer), only a stats message every `statsIntervalMs`
// and state changes — which is the point of the worker for a page with many players.

import { CanvasCastPlayer } from "./player.js";
import type { PlayerStatsSnapshot } from "./stats.js";
import type { FromWorker, ToWorker, WireError, WorkerPlayerEvent } from "./worker-messages.js";

/** The little of DedicatedWorkerGlobalScope used here (web/ is typed with the DOM lib, not WebWorker). */
interface WorkerScope {
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
  postMessage(message: FromWorker): void;
}

const scope = globalThis as unknown as WorkerScope;
const canvases = new Map<number, OffscreenCanvas>();
const players = new Map<number, CanvasCastPlayer>();

function wireError(err: unknown, fatal = false): WireError {
  if (err instanceof Error) {
    const code = "code" in err && typeof err.code === "string" ? (err.code as WireError["code"]) : undefined;
    const isFatal = "fatal" in err && typeof err.fatal === "boolean" ? err.fatal : fatal;
    return { name: err.name, code, message: err.message, fatal: isFatal };
  }
  return { name: "Error", code: undefined, message: String(err), fatal };
}

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
    player = new CanvasCastPlayer(canvas, message.url, message.options, { desynchronized: false });
  } catch (err) {
    post({ type: "error", payload: { ...wireError(err, true), code: "CC_ERR_DECODER_UNSUPPORTED" } });
    post({ type: "state", payload: { state: "offline", reason: wireError(err).message, retryAt: undefined } });
    return;
  }
  players.set(id, player);
  player.on("state", (s) => post({ type: "state", payload: { ...s, retryAt: s.retryAt === undefined ? undefined : s.retryAt + shift } }));
  player.on("stats", (s) => post({ type: "stats", payload: shiftStats(s, shift) }));
  player.on("error", (err) => post({ type: "error", payload: wireError(err) }));
  player.on("hello", (hello) => post({ type: "hello", payload: hello }));
  player.on("skipped", (skipped) => post({ type: "skipped", payload: skipped }));
  player.setPageHidden(message.hidden);
  // The constructor may have set a state without an event (unsupported); send the current one.
  post({ type: "state", payload: { state: player.state, reason: player.reason, retryAt: player.retryAt === undefined ? undefined : player.retryAt + shift } });
}

function shiftStats(stats: PlayerStatsSnapshot, shift: number): PlayerStatsSnapshot {
  return stats.firstPaintAtMs === null ? stats : { ...stats, firstPaintAtMs: stats.firstPaintAtMs + shift };
}

function snapshot(id: number, request: number): void {
  const player = players.get(id);
  const reply = (blob: Blob | undefined, error: WireError | undefined): void =>
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
      for (const player of players.values()) player.setPageHidden(message.hidden);
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
  }
};
