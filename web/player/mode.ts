// Picks the playback path and builds the right element for it:
// - `webcodecs`: frame protocol on `/ws/<stream>` → VideoDecoder → <canvas> (lowest latency; needs
//   a secure context: https, or http on localhost);
// - `mse`: WebM on `/webm/<stream>` → MediaSource → <video> (any origin, any MSE browser);
// - `auto` (default): WebCodecs when `VideoDecoder` exists, else MSE.

import { webCodecsAvailable } from "./decoder.js";
import type { MsePlayerOptions } from "./mse-player.js";
import { playMse } from "./mse-player.js";
import type { Player, PlayerOptions } from "./player.js";
import { CanvasCastPlayer } from "./player.js";
import { forwardPlayer } from "./player-base.js";
import { snapshotVideo } from "./snapshot-video.js";

export const PLAYER_MODES = ["auto", "webcodecs", "mse"] as const;
export type PlayerMode = (typeof PLAYER_MODES)[number];
export type ResolvedPlayerMode = Exclude<PlayerMode, "auto">;

export const isPlayerMode = (v: unknown): v is PlayerMode => PLAYER_MODES.includes(v as PlayerMode);

/** `auto` → `webcodecs` where VideoDecoder exists, else `mse`; the others as they are. */
export function resolvePlayerMode(mode: PlayerMode = "auto"): ResolvedPlayerMode {
  if (mode !== "auto") return mode;
  return webCodecsAvailable() ? "webcodecs" : "mse";
}

/**
 * The socket URL of `stream` for a mode: `ws(s)://<host>/ws/<stream>` or `…/webm/<stream>`, on the
 * server at `server` (default: this page's origin), with `?token=` when the server needs one.
 */
export function streamSocketUrl(
  mode: ResolvedPlayerMode,
  stream: string,
  server: string = globalThis.location?.href ?? "http://localhost/",
  token?: string,
): string {
  const url = new URL(`${mode === "mse" ? "webm" : "ws"}/${encodeURIComponent(stream)}`, new URL("/", server));
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  // Browsers cannot set headers on a WebSocket handshake: the token travels in the URL.
  if (token !== undefined && token !== "") url.searchParams.set("token", token);
  return url.href;
}

export interface StreamPlayerOptions extends PlayerOptions, MsePlayerOptions {
  /** Default `auto`. */
  readonly mode?: PlayerMode;
  /** The canvascast server, as an http(s) URL. Default: this page's origin. */
  readonly server?: string;
  /** Access token, for a server started with --token (sent as `?token=`). */
  readonly token?: string;
}

export interface StreamPlayer extends Player {
  /** The path in use. */
  readonly mode: ResolvedPlayerMode;
  /** The <canvas> (webcodecs) or <video> (mse) the player paints into; it was added to the container. */
  readonly element: HTMLCanvasElement | HTMLVideoElement;
  /** The current picture as a PNG at the video's size; rejects while there is none. */
  snapshot(): Promise<Blob>;
}

/**
 * Plays `stream` in `container`: creates a <canvas> or <video> for the mode, puts it first in the
 * container and starts the player. `close()` stops the player and removes the element.
 */
export function playStream(container: HTMLElement, stream: string, options: StreamPlayerOptions = {}): StreamPlayer {
  const mode = resolvePlayerMode(options.mode);
  const url = streamSocketUrl(mode, stream, options.server, options.token);
  const element = container.ownerDocument.createElement(mode === "mse" ? "video" : "canvas");
  element.dataset.mode = mode;
  container.prepend(element);
  let player: Player;
  let snapshot: () => Promise<Blob>;
  try {
    if (element instanceof HTMLVideoElement) {
      player = playMse(element, url, options);
      snapshot = () => snapshotVideo(element);
    } else {
      const canvasPlayer = new CanvasCastPlayer(element, url, options);
      player = canvasPlayer;
      snapshot = () => canvasPlayer.snapshot();
    }
  } catch (err) {
    element.remove();
    throw err;
  }
  return forwardPlayer(player, {
    mode,
    element,
    snapshot,
    close() {
      player.close();
      element.remove();
    },
  });
}
