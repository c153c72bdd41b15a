// What plays a transport's media (transport.ts), behind one interface: WebCodecs into a canvas
// (webcodecs-backend.ts) or MSE into a <video> (mse-backend.ts). The player (player.ts) owns the
// transport and the backend and derives its state from both.

import type { PlayerThread } from "./api.js";
import type { PlayerError } from "./errors.js";
import type { ResolvedPlayerOptions } from "./options.js";
import type { PlayerStats } from "./stats.js";
import type { Transport } from "./transport.js";

/** One transport's media going into a backend (one per encoding while a switch is under way). */
export interface Feed {
  /** Stops taking media from the transport. Safe to call twice. */
  close(): void;
}

/** What a backend reports to its player. */
export interface BackendHost {
  readonly stats: PlayerStats;
  /** A picture from `feed` is on screen (called for every picture: the player keeps the first). */
  showing(feed: Feed): void;
  /** The picture shown is gone (the stream is not live, or its socket closed). */
  blank(feed: Feed): void;
  error(err: PlayerError): void;
}

export interface Backend {
  readonly mode: "webcodecs" | "mse";
  /**
   * Plays `transport`'s media. WebCodecs keeps painting the feed on screen until a newer feed's
   * first picture replaces it (an encoding switch with no blank frame); MSE plays one feed at a
   * time, so attaching ends the one before.
   */
  attach(transport: Transport): Feed;
  /** The player paused: release what can be released, keep the last picture. */
  pause(): void;
  /** The player plays again; the transport's next media starts from a keyframe. */
  resume(): void;
  /** The picture on screen as a PNG at the video's size; rejects while there is none. */
  snapshot(): Promise<Blob>;
  /** Adds counters kept inside the backend (the decoder's drops and errors) to the stats. */
  syncStats(): void;
  /** Releases everything. Safe to call twice. */
  close(): void;
}

/**
 * A backend for a player to make: each backend module exports a function that returns one, so a
 * bundle (the worker's) holds only the backends it uses.
 */
export interface BackendFactory {
  readonly mode: "webcodecs" | "mse";
  /** Why this browser cannot play this way (a fatal error), or undefined when it can. */
  unsupported(): PlayerError | undefined;
  create(host: BackendHost, options: ResolvedPlayerOptions, thread: PlayerThread): Backend;
}
