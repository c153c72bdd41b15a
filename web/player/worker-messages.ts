// Messages between the page and the player worker (worker.ts). One worker hosts several players,
// each known by an id; canvases have their own ids, so a canvas handed to the worker once can be
// played into again after its first player closed (a canvas can be transferred only once).

import type { HelloMessage, SkippedMessage } from "../../shared/protocol.js";
import type { PlayerErrorCode } from "./errors.js";
import type { PlayerOptions, PlayerStateChange } from "./player.js";
import type { PlayerStatsSnapshot } from "./stats.js";

export type ToWorker =
  | {
      readonly type: "play";
      readonly id: number;
      readonly canvasId: number;
      /** Sent the first time this canvas is played into; later plays name it by `canvasId`. */
      readonly canvas: OffscreenCanvas | undefined;
      readonly url: string;
      readonly options: PlayerOptions;
      /** `document.visibilityState === "hidden"` when the player started. */
      readonly hidden: boolean;
      /** The page's `performance.timeOrigin`: times sent back are translated to the page's clock. */
      readonly timeOrigin: number;
      /** The page set `canvascastMarkPaints` (benchmarks): mark paints in the worker too. */
      readonly markPaints: boolean;
    }
  /** The page was hidden or shown (workers see no document): for every player in the worker. */
  | { readonly type: "hidden"; readonly hidden: boolean }
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

export type WorkerPlayerEvent =
  | { readonly type: "state"; readonly payload: PlayerStateChange }
  | { readonly type: "stats"; readonly payload: PlayerStatsSnapshot }
  | { readonly type: "error"; readonly payload: WireError }
  | { readonly type: "hello"; readonly payload: HelloMessage }
  | { readonly type: "skipped"; readonly payload: SkippedMessage };

export type FromWorker =
  /** The worker's script ran: the page may hand it canvases (a CSP can refuse a worker only after `new Worker`). */
  | { readonly type: "ready" }
  | { readonly type: "event"; readonly id: number; readonly event: WorkerPlayerEvent }
  | { readonly type: "snapshot"; readonly id: number; readonly request: number; readonly blob: Blob | undefined; readonly error: WireError | undefined };
