// Messages between the page and the player worker (worker.ts), and how a player's events cross
// between them. One worker hosts several players, each known by an id; canvases have their own
// ids, so a canvas handed to the worker once can be played into again after its first player
// closed (a canvas can be transferred only once).

import type { Encoding, PauseReason, PlayerErrorCode, PlayerEvents, PlayerOptions } from "./api.js";

export type ToWorker =
  | {
      readonly type: "play";
      readonly id: number;
      readonly canvasId: number;
      /** Sent the first time this canvas is played into; later plays name it by `canvasId`. */
      readonly canvas: OffscreenCanvas | undefined;
      readonly url: string;
      readonly options: PlayerOptions;
      /** Why the player starts paused (the page is hidden, the canvas out of view, pause() was called). */
      readonly pausedFor: readonly PauseReason[];
      /** The page's `performance.timeOrigin`: times sent back are translated to the page's clock. */
      readonly timeOrigin: number;
      /** The page set `canvascastMarkPaints` (benchmarks): mark paints in the worker too. */
      readonly markPaints: boolean;
    }
  /** The page was hidden or shown (workers see no document): for every player in the worker. */
  | { readonly type: "hidden"; readonly hidden: boolean }
  /** One player is paused for a reason, or no longer (out of view: the page sees the layout). */
  | { readonly type: "paused"; readonly id: number; readonly reason: PauseReason; readonly paused: boolean }
  | { readonly type: "encoding"; readonly id: number; readonly encoding: Encoding }
  /** seek() (`at`: ms since the epoch) or live() (`at` null). */
  | { readonly type: "seek"; readonly id: number; readonly at: number | null }
  | { readonly type: "snapshot"; readonly id: number; readonly request: number }
  | { readonly type: "close"; readonly id: number }
  /** The page's canvas was garbage-collected: drop its OffscreenCanvas. */
  | { readonly type: "release"; readonly canvasId: number };

/** A PlayerError or DOMException, flattened for postMessage (custom fields do not survive cloning). */
export interface WireError {
  readonly name: string;
  readonly code: PlayerErrorCode | undefined;
  readonly message: string;
  readonly fatal: boolean;
}

/** A player event as it crosses: errors flattened; times already on the page's clock. */
type WirePayload<K extends keyof PlayerEvents> = K extends "error" ? WireError : PlayerEvents[K];
export type WorkerPlayerEvent = { [K in keyof PlayerEvents]: { readonly type: K; readonly payload: WirePayload<K> } }[keyof PlayerEvents];

/** Every player event, relayed from the worker's player to the page's. */
export const PLAYER_EVENT_TYPES = ["state", "stats", "error", "hello", "skipped", "playback"] as const;
type Missing = Exclude<keyof PlayerEvents, (typeof PLAYER_EVENT_TYPES)[number]>;
/** Fails the typecheck when PlayerEvents gains an event the relay does not carry. */
export const ALL_EVENTS_RELAYED: [Missing] extends [never] ? true : Missing = true;

export type FromWorker =
  /** The worker's script ran: the page may hand it canvases (a CSP can refuse a worker only after `new Worker`). */
  | { readonly type: "ready" }
  | { readonly type: "event"; readonly id: number; readonly event: WorkerPlayerEvent }
  | { readonly type: "snapshot"; readonly id: number; readonly request: number; readonly blob: Blob | undefined; readonly error: WireError | undefined };

export function wireError(err: unknown, fatal = false): WireError {
  if (err instanceof Error) {
    const code = "code" in err && typeof err.code === "string" ? (err.code as PlayerErrorCode) : undefined;
    const isFatal = "fatal" in err && typeof err.fatal === "boolean" ? err.fatal : fatal;
    return { name: err.name, code, message: err.message, fatal: isFatal };
  }
  return { name: "Error", code: undefined, message: String(err), fatal };
}

/** `event` for postMessage, with its times moved by `shift` ms (worker clock + shift = page clock). */
export function toWire<K extends keyof PlayerEvents>(type: K, payload: PlayerEvents[K], shift: number): WorkerPlayerEvent {
  const event = { type, payload } as WorkerPlayerEvent | { type: "error"; payload: PlayerEvents["error"] };
  switch (event.type) {
    case "error":
      return { type: "error", payload: wireError(event.payload) };
    case "state": {
      const { retryAt } = event.payload;
      return { type: "state", payload: { ...event.payload, retryAt: retryAt === undefined ? undefined : retryAt + shift } };
    }
    case "stats": {
      const { firstPaintAtMs } = event.payload;
      return { type: "stats", payload: firstPaintAtMs === null ? event.payload : { ...event.payload, firstPaintAtMs: firstPaintAtMs + shift } };
    }
    default:
      return event;
  }
}
