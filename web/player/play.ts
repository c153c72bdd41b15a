// The ways to start a player, each returning the one public Player type:
// - `play(canvas, url)`: WebCodecs into a canvas — in a worker on an OffscreenCanvas where the
//   browser allows it (option `worker`), else on the main thread;
// - `playVideo(video, url)`: MSE into a <video>;
// - `playStream(container, stream)`: picks the path (`mode`), makes the <canvas> or <video> in
//   `container` and builds the socket URL from a stream name (the dashboard).
// Paths: `webcodecs` is the frame protocol on `/ws/<stream>` → VideoDecoder → <canvas> (lowest
// latency; needs a secure context: https, or http on localhost); `mse` is WebM on `/webm/<stream>`
// (VP8, VP9, AV1) or fragmented MP4 on `/mp4/<stream>` (H.264) → MediaSource → <video> (any
// origin); `auto` is WebCodecs where `VideoDecoder` exists, else MSE, and MSE too where WebCodecs
// cannot decode the stream's codec but MSE can play it (fallback-player.ts).

import type { PlayerMode, PlayOptions } from "./api.js";
import { webCodecsAvailable } from "./decoder.js";
import { FallbackPlayer } from "./fallback-player.js";
import { mseBackend } from "./mse-backend.js";
import { CanvasCastPlayer } from "./player.js";
import type { PlayerBase } from "./player-base.js";
import { streamSocketUrl } from "./stream-url.js";
import { webCodecsBackend } from "./webcodecs-backend.js";
import { inWorker, playInWorker, workerPathAvailable } from "./worker-player.js";

export const PLAYER_MODES = ["auto", "webcodecs", "mse"] as const satisfies readonly PlayerMode[];
export type ResolvedPlayerMode = Exclude<PlayerMode, "auto">;

export const isPlayerMode = (v: unknown): v is PlayerMode => PLAYER_MODES.includes(v as PlayerMode);

/** `auto` → `webcodecs` where VideoDecoder exists, else `mse`; the others as they are. */
export function resolvePlayerMode(mode: PlayerMode = "auto"): ResolvedPlayerMode {
  if (mode !== "auto") return mode;
  return webCodecsAvailable() ? "webcodecs" : "mse";
}

/** WebCodecs into `canvas`, in a worker when allowed and available, else on the main thread. */
export function play(canvas: HTMLCanvasElement, url: string, options: PlayOptions = {}): PlayerBase {
  const { worker = "auto", ...playerOptions } = options;
  const mainThread = (): PlayerBase => new CanvasCastPlayer(webCodecsBackend(canvas), url, playerOptions, { thread: "main", observe: canvas });
  // A canvas once handed to a worker has no context on this thread: it stays with the worker.
  if ((worker !== false || inWorker(canvas)) && workerPathAvailable(canvas)) {
    const player = playInWorker(canvas, url, playerOptions, mainThread);
    if (player !== undefined) return player;
  }
  return mainThread();
}

/** MSE into `video` (`url` names the stream's `/ws/`, `/webm/` or `/mp4/` socket; the player finds the path its codec plays on). */
export function playVideo(video: HTMLVideoElement, url: string, options: PlayOptions = {}): PlayerBase {
  const { worker: _worker, ...playerOptions } = options;
  return new CanvasCastPlayer(mseBackend(video), url, playerOptions, { thread: "main", observe: video });
}

export interface StreamPlayOptions extends PlayOptions {
  /** Default `auto`. */
  readonly mode?: PlayerMode;
  /** The canvascast server, as an http(s) URL. Default: this page's origin. */
  readonly server?: string;
  /** Access token, for a server started with --token (sent as `?token=`). */
  readonly token?: string;
}

/**
 * Plays `stream` in `container`: creates a <canvas> or <video> for the mode (`data-mode` says
 * which), puts it first in the container and starts the player. `close()` also removes the element.
 * `auto` on WebCodecs replaces the canvas with a <video> if it falls back to MSE.
 */
export function playStream(container: HTMLElement, stream: string, options: StreamPlayOptions = {}): PlayerBase {
  const { mode: askedMode, server, token, ...playOptions } = options;
  const mode = resolvePlayerMode(askedMode);
  const tokenParam = token === undefined ? {} : { token };
  const url = streamSocketUrl(stream, { endpoint: mode === "mse" ? "webm" : "ws", ...tokenParam }, server);
  let element: HTMLCanvasElement | HTMLVideoElement = container.ownerDocument.createElement(mode === "mse" ? "video" : "canvas");
  element.dataset.mode = mode;
  container.prepend(element);
  let player: PlayerBase;
  try {
    player = element instanceof HTMLVideoElement ? playVideo(element, url, playOptions) : play(element, url, playOptions);
  } catch (err) {
    element.remove();
    throw err;
  }
  if ((askedMode ?? "auto") === "auto" && mode === "webcodecs") {
    player = new FallbackPlayer(player, (mseContainer) => {
      const video = container.ownerDocument.createElement("video");
      video.dataset.mode = "mse";
      element.replaceWith(video);
      element = video;
      return playVideo(video, streamSocketUrl(stream, { endpoint: mseContainer, ...tokenParam }, server), playOptions);
    });
  }
  player.whenClosed(() => element.remove());
  return player;
}
