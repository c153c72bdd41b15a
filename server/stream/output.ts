// What the fan-out asks of a viewer's output — the encoding of the stream it watches. Two exist:
// the frame protocol v1 (`/ws/`, frame-output.ts) and WebM for MSE (`/webm/`, webm-output.ts).
// The fan-out decides which frames a viewer gets and when; the output decides the bytes.

import type { HelloMessage, StateMessage, ViewerStatsMessage } from "../../shared/protocol.js";
import type { Gap } from "./flow-control.js";
import type { FrameMessage } from "./frame-message.js";
import type { WireMessage } from "./wire-message.js";

/** Why a frame is being sent to a viewer. */
export type FrameRole =
  /** In order, after the frame before it. */
  | "live"
  /** From the GOP cache when the viewer joined. */
  | "replay"
  /** From the GOP cache again, after a resync or resume. */
  | "resync"
  /** The keyframe that ends a gap. */
  | "resume";

export interface ViewerOutput {
  /** What a new viewer gets before any frame. */
  greet(hello: HelloMessage, state: StateMessage): void;
  /**
   * Writes one frame (and `probe` right behind it). Returns false when this output cannot carry
   * the frame (the viewer then waits for a keyframe).
   */
  writeFrame(frame: FrameMessage, role: FrameRole, probe: WireMessage | null): boolean;
  /** The gap `gap` ends with the next frame written. */
  gapEnded(gap: Gap): void;
  state(message: StateMessage): void;
  /** The video format changed. Returns false when the viewer cannot stay (it was closed). */
  formatChanged(hello: HelloMessage): boolean;
  /** The server's periodic view of the viewer. */
  stats(message: ViewerStatsMessage): void;
}
