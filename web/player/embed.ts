// The embeddable module's players: `playCanvas` picks the worker or the main thread for the
// WebCodecs path; `playVideo` wraps the MSE player (for `<canvas-cast mode="mse">` and the `auto`
// fallback) with the same surface.

import type { PlayOptions } from "./api.js";
import { playMse } from "./mse-player.js";
import { forwardPlayer } from "./player-base.js";
import type { PlayerOptions } from "./player.js";
import { CanvasCastPlayer } from "./player.js";
import type { EmbedPlayer } from "./worker-player.js";
import { inWorker, playInWorker, workerPathAvailable } from "./worker-player.js";
import { snapshotVideo } from "./snapshot-video.js";

export type { EmbedPlayer } from "./worker-player.js";

export type { PlayOptions } from "./api.js";

class MainThreadPlayer extends CanvasCastPlayer implements EmbedPlayer {
  readonly thread = "main";
  readonly mode = "webcodecs";
}

/** WebCodecs into `canvas`, in a worker when allowed and available, else on the main thread. */
export function playCanvas(canvas: HTMLCanvasElement, url: string, options: PlayOptions = {}): EmbedPlayer {
  const { worker = "auto", ...playerOptions } = options;
  // A canvas once handed to a worker has no context on this thread: it stays with the worker.
  if ((worker !== false || inWorker(canvas)) && workerPathAvailable(canvas)) {
    const player = playInWorker(canvas, url, playerOptions, () => new MainThreadPlayer(canvas, url, playerOptions));
    if (player !== undefined) return player;
  }
  return new MainThreadPlayer(canvas, url, playerOptions);
}

/** The MSE player into `video`, with snapshots drawn from the <video>. */
export function playVideo(video: HTMLVideoElement, url: string, options: PlayerOptions = {}): EmbedPlayer {
  const player = playMse(video, url, options);
  return forwardPlayer(player, { thread: "main", mode: "mse", snapshot: () => snapshotVideo(video) });
}
