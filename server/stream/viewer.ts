// One viewer of a stream, whatever it watches: its socket, its flow-control state and what it was
// sent. The fan-out decides; an output (frames, WebM or MP4) encodes; this counts.

import type { SkipReason } from "../../shared/protocol.js";
import type { Millis } from "../../shared/units.js";
import { ViewerFlow, type FlowOptions } from "./flow-control.js";
import type { FrameMessage } from "./frame-message.js";
import type { WireMessage } from "./wire-message.js";

/** What the fan-out needs of a socket (server/http/viewer-socket.ts adapts a `ws` WebSocket). */
export interface ViewerSocket {
  readonly readyState: number;
  readonly bufferedAmount: number;
  /** A JSON text message. */
  send(text: string): void;
  /** A binary message framed once for every socket, and a ping right behind it in the same write. */
  sendWire(message: WireMessage, ping?: WireMessage): void;
  close(code?: number, reason?: string): void;
}

export const OPEN = 1;

/** `/ws/`: frame protocol v1; `/webm/`: WebM for MSE (VP8, VP9, AV1); `/mp4/`: fragmented MP4 for MSE (H.264). */
export const VIEWER_MODES = ["ws", "webm", "mp4"] as const;
export type ViewerMode = (typeof VIEWER_MODES)[number];

export const zeroSkips = (): Record<SkipReason, number> => ({ lagging: 0, "buffer-full": 0 });

export class Viewer {
  /** Its flow-control state; frames kept back during a hold are the policy's too. */
  readonly flow: ViewerFlow<FrameMessage>;
  paused = false;
  /** Playing the stream's recording (record/playback.ts) instead of live; paused for the fan-out meanwhile. */
  away = false;
  framesSent = 0;
  bytesSent = 0;
  readonly skipped: Record<SkipReason, number> = zeroSkips();
  /** The first sequence number sent: acks may not name an earlier one. */
  firstSentSeq: number | null = null;
  /** Highest sequence number sent (a replay sends older ones again): acks may not go past it. */
  newestSentSeq: number | null = null;
  /** Sequence number of the last frame sent: a frame that follows it continues the viewer's run. */
  lastSentSeq: number | null = null;
  lastResyncAt = -Infinity;
  /** Since when `bufferedAmount` has been above the limit; null when below. */
  overLimitSince: Millis | null = null;
  /** The client sent an ack (it is optional). */
  acks = false;

  constructor(
    readonly id: number,
    readonly mode: ViewerMode,
    readonly socket: ViewerSocket,
    readonly remote: string,
    readonly connectedAt: Millis,
    flow: FlowOptions,
  ) {
    this.flow = new ViewerFlow<FrameMessage>(flow, connectedAt);
  }

  get open(): boolean {
    return this.socket.readyState === OPEN;
  }

  /**
   * A JSON text message. Not counted by the flow policy: text messages are a few hundred bytes at
   * most, and a probe behind each would only delay the proof that the frames were read.
   */
  sendText(message: object): void {
    if (this.open) this.socket.send(JSON.stringify(message));
  }

  /** A binary message (and a probe behind it), counted as written. */
  sendWire(message: WireMessage, probe: WireMessage | null): void {
    if (!this.open) return;
    if (probe === null) this.socket.sendWire(message);
    else this.socket.sendWire(message, probe);
    this.flow.wrote(message.wireLength);
    this.bytesSent += message.payloadLength;
  }

  /** A probe on its own (after the last frame sent, so that a pong can prove it was read). */
  sendProbe(probe: WireMessage): void {
    if (this.open) this.socket.sendWire(probe);
  }
}
