// A frame encoded once as its wire message. Every viewer is sent the same buffers; the rare viewer
// that needs other flags (replay, discontinuity) gets a variant made once and shared. The VP8
// bytes are never copied: each variant is its own small header in front of the same payload.

import { FrameFlag, FrameHeader, writeFrameHeader, type VideoFrameHeader } from "../../shared/protocol.js";
import type { Micros } from "../../shared/units.js";
import { WireMessage } from "./wire-message.js";

export class FrameMessage {
  private variants: Map<number, WireMessage> | null = null;

  private constructor(
    readonly header: VideoFrameHeader,
    /** The VP8 frame: a view into what was read from the pipeline. */
    readonly data: Uint8Array,
    /** The live message: header (with the frame's own flags) and the VP8 bytes. */
    readonly wire: WireMessage,
    /** The frame's time on the MSE paths' gapless timeline (timeline.ts: GaplessTimeline). */
    readonly mediaTime: Micros,
    /** `mediaTime` of the keyframe that starts this frame's GOP (its own for a keyframe). */
    readonly gopStart: Micros,
  ) {}

  /** `media`: the gapless times (the header's PTS for both when omitted). */
  static encode(header: VideoFrameHeader, data: Uint8Array, media: { readonly time: Micros; readonly gopStart: Micros } = { time: header.pts, gopStart: header.pts }): FrameMessage {
    return new FrameMessage(header, data, wireFor(header, data), media.time, media.gopStart);
  }

  get seq(): number {
    return this.header.seq;
  }

  get key(): boolean {
    return (this.header.flags & FrameFlag.KEYFRAME) !== 0;
  }

  /** Bytes of the protocol message (header and VP8 frame). */
  get byteLength(): number {
    return this.wire.payloadLength;
  }

  /** The message with `extraFlags` added to the header's flags. */
  withFlags(extraFlags: number): WireMessage {
    const flags = this.header.flags | extraFlags;
    if (flags === this.header.flags) return this.wire;
    this.variants ??= new Map();
    let variant = this.variants.get(flags);
    if (!variant) {
      variant = wireFor({ ...this.header, flags }, this.data);
      this.variants.set(flags, variant);
    }
    return variant;
  }
}

function wireFor(header: VideoFrameHeader, data: Uint8Array): WireMessage {
  const head = new Uint8Array(FrameHeader.SIZE);
  writeFrameHeader(head, header);
  return WireMessage.binary(head, data);
}
