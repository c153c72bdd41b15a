// The embeddable module's players: `playCanvas` picks the worker or the main thread for the
// WebCodecs path; `playVideo` wraps the MSE player (for `<canvas-cast mode="mse">` and the `auto`
// fallback) with the same surface.

import { PlayerError } from "./errors.js";
import { playMse } from "./mse-player.js";
import type { PlayerOptions } from "./player.js";
import { CanvasCastPlayer } from "./player.js";
import type { EmbedPlayer } from "./worker-player.js";
import { inWorker, playInWorker, workerPathAvailable } from "./worker-player.js";

export type { EmbedPlayer } from "./worker-player.js";

export interface PlayOptions extends PlayerOptions {
  /** `true`: a worker where possible, `false`: the main thread, `"auto"` (default): a worker where possible. */
  readonly worker?: boolean | "auto";
}

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
  return {
    thread: "main",
    mode: "mse",
    url: player.url,
    get state() {
      return player.state;
    },
    get reason() {
      return player.reason;
    },
    get retryAt() {
      return player.retryAt;
    },
    get hello() {
      return player.hello;
    },
    stats: () => player.stats(),
    on: (type, listener) => player.on(type, listener),
    off: (type, listener) => player.off(type, listener),
    close: () => player.close(),
    snapshot: () => snapshotVideo(video),
  };
}

function snapshotVideo(video: HTMLVideoElement): Promise<Blob> {
  const { videoWidth: width, videoHeight: height } = video;
  if (width === 0 || height === 0 || video.readyState < HTMLMediaElement.HAVE_CURRENT_DATA) {
    return Promise.reject(new DOMException("no picture to snapshot yet", "InvalidStateError"));
  }
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  if (ctx === null) return Promise.reject(new PlayerError("CC_ERR_MEDIA", "no 2d context for the snapshot"));
  ctx.drawImage(video, 0, 0, width, height);
  return new Promise((resolve, reject) => {
    canvas.toBlob((blob) => (blob === null ? reject(new DOMException("toBlob gave no image", "EncodingError")) : resolve(blob)), "image/png");
  });
}
