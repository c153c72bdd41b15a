// Turns GDP packets from a `vp8enc ! gdppay` pipeline into VP8 frames and caps.

import type { Micros, Millis } from "../../shared/units.js";
import { nanosToMicros } from "../../shared/units.js";
import { parseVideoCaps, type VideoCaps } from "./caps.js";
import { GstBufferFlag, type GdpPacket } from "./gdp.js";
import { parseVp8Frame } from "../../shared/vp8.js";

export interface EncodedFrame {
  readonly pts: Micros;
  readonly key: boolean;
  /** GStreamer marked a discontinuity before this frame. */
  readonly discont: boolean;
  readonly data: Uint8Array;
  /** Wall clock when the frame's last byte was read from the pipe. */
  readonly receivedAt: Millis;
}

export type FrameEvent =
  | { readonly type: "caps"; readonly caps: VideoCaps }
  | { readonly type: "frame"; readonly frame: EncodedFrame }
  | { readonly type: "warning"; readonly code: FrameWarningCode; readonly message: string };

export type FrameWarningCode =
  | "FRAME_WARN_BAD_CAPS"
  | "FRAME_WARN_NOT_VP8"
  | "FRAME_WARN_KEY_MISMATCH"
  | "FRAME_WARN_NO_PTS";

export class FrameAssembler {
  private lastPts: Micros | null = null;

  /** Events for one packet. `receivedAt` is when the chunk that completed it was read. */
  accept(packet: GdpPacket, receivedAt: Millis): FrameEvent[] {
    switch (packet.type) {
      case "event":
        return [];
      case "caps": {
        const caps = parseVideoCaps(packet.caps);
        if (caps === null || caps.mediaType !== "video/x-vp8") {
          return [warning("FRAME_WARN_BAD_CAPS", `unexpected caps: ${packet.caps.slice(0, 120)}`)];
        }
        return [{ type: "caps", caps }];
      }
      case "buffer":
        return this.acceptBuffer(packet, receivedAt);
    }
  }

  private acceptBuffer(packet: Extract<GdpPacket, { type: "buffer" }>, receivedAt: Millis): FrameEvent[] {
    // Stream headers (HEADER flag) and gaps carry no picture.
    if (packet.flags & (GstBufferFlag.HEADER | GstBufferFlag.GAP) || packet.payload.byteLength === 0) return [];
    const info = parseVp8Frame(packet.payload);
    if (info === null) {
      return [warning("FRAME_WARN_NOT_VP8", `dropped a ${packet.payload.byteLength}-byte buffer that is not a VP8 frame`)];
    }
    const events: FrameEvent[] = [];
    const gstKey = (packet.flags & GstBufferFlag.DELTA_UNIT) === 0;
    if (gstKey !== info.key) {
      // The bitstream is what the decoder obeys, so it wins.
      events.push(
        warning("FRAME_WARN_KEY_MISMATCH", `buffer flags say ${gstKey ? "key" : "delta"}, VP8 frame tag says ${info.key ? "key" : "delta"}`),
      );
    }
    let pts: Micros;
    if (packet.pts !== null) {
      pts = nanosToMicros(packet.pts);
    } else {
      // No timestamp from the pipeline: keep PTS monotonic from the wall clock.
      pts = (this.lastPts === null ? receivedAt * 1000 : Math.max(this.lastPts + 1, receivedAt * 1000)) as Micros;
      events.push(warning("FRAME_WARN_NO_PTS", "buffer without PTS; using the wall clock"));
    }
    this.lastPts = pts;
    events.push({
      type: "frame",
      frame: {
        pts,
        key: info.key,
        discont: (packet.flags & GstBufferFlag.DISCONT) !== 0,
        data: packet.payload,
        receivedAt,
      },
    });
    return events;
  }
}

function warning(code: FrameWarningCode, message: string): FrameEvent {
  return { type: "warning", code, message };
}
