// Turns GDP packets from an encoder's `… ! gdppay` into encoded frames and caps, for one codec:
// the caps must be its media type, and the bitstream (not the buffer flags) says which frames are
// keyframes and, on keyframes, the WebCodecs codec string.

import type { Micros, Millis } from "../../shared/units.js";
import { nanosToMicros } from "../../shared/units.js";
import { parseVideoCaps, type VideoCaps } from "./caps.js";
import { GstBufferFlag, type GdpPacket } from "./gdp.js";
import { CODECS } from "../codecs/registry.js";
import type { CodecModule } from "../codecs/codec-module.js";

export interface EncodedFrame {
  readonly pts: Micros;
  readonly key: boolean;
  /** GStreamer marked a discontinuity before this frame. */
  readonly discont: boolean;
  readonly data: Uint8Array;
  /** The WebCodecs codec string the bitstream declares (keyframes); absent when it says nothing. */
  readonly codec?: string;
  /** Wall clock when the frame's last byte was read from the pipe. */
  readonly receivedAt: Millis;
}

export type FrameEvent =
  | { readonly type: "caps"; readonly caps: VideoCaps }
  | { readonly type: "frame"; readonly frame: EncodedFrame }
  | { readonly type: "warning"; readonly code: FrameWarningCode; readonly message: string };

export type FrameWarningCode =
  | "FRAME_WARN_BAD_CAPS"
  /** A buffer that is not a frame of the stream's codec. */
  | "FRAME_WARN_BAD_FRAME"
  | "FRAME_WARN_KEY_MISMATCH"
  | "FRAME_WARN_NO_PTS";

export class FrameAssembler {
  private lastPts: Micros | null = null;
  private framerate = 0;

  constructor(private readonly codec: CodecModule = CODECS.vp8) {}

  /** Events for one packet. `receivedAt` is when the chunk that completed it was read. */
  accept(packet: GdpPacket, receivedAt: Millis): FrameEvent[] {
    switch (packet.type) {
      case "event":
        return [];
      case "caps": {
        const caps = parseVideoCaps(packet.caps);
        // A parser's first caps may come before it has read the picture size (h264parse before the
        // SPS): the next caps will have it.
        if (caps === null && packet.caps.split(",", 1)[0]!.trim() === this.codec.mediaType) return [];
        if (caps === null || caps.mediaType !== this.codec.mediaType) {
          return [warning("FRAME_WARN_BAD_CAPS", `unexpected caps: ${packet.caps.slice(0, 120)}`)];
        }
        this.framerate = caps.framerate;
        return [{ type: "caps", caps }];
      }
      case "buffer":
        return this.acceptBuffer(packet, receivedAt);
    }
  }

  private acceptBuffer(packet: Extract<GdpPacket, { type: "buffer" }>, receivedAt: Millis): FrameEvent[] {
    // Gaps carry no picture.
    if (packet.flags & GstBufferFlag.GAP || packet.payload.byteLength === 0) return [];
    const info = this.codec.read(packet.payload, this.framerate);
    // HEADER: a stream header (vp8enc's) carries no picture; a parser's keyframe with its codec
    // configuration in band (h264parse's SPS/PPS, av1parse's sequence header) does.
    if (packet.flags & GstBufferFlag.HEADER && !(this.codec.headerFlagOnKeyframes && info?.key === true)) return [];
    const name = this.codec.name.toUpperCase();
    if (info === null) {
      return [warning("FRAME_WARN_BAD_FRAME", `dropped a ${packet.payload.byteLength}-byte buffer that is not a ${name} frame`)];
    }
    const events: FrameEvent[] = [];
    const gstKey = (packet.flags & GstBufferFlag.DELTA_UNIT) === 0;
    if (gstKey !== info.key) {
      // The bitstream is what the decoder obeys, so it wins.
      events.push(
        warning("FRAME_WARN_KEY_MISMATCH", `buffer flags say ${gstKey ? "key" : "delta"}, the ${name} bitstream says ${info.key ? "key" : "delta"}`),
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
        ...(info.codec !== null ? { codec: info.codec } : {}),
        receivedAt,
      },
    });
    return events;
  }
}

function warning(code: FrameWarningCode, message: string): FrameEvent {
  return { type: "warning", code, message };
}
