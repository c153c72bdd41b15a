// A frame encoded once as its wire message. Every viewer is sent the same bytes; the rare viewer
// that needs other flags (replay, discontinuity) gets a variant made once and shared.

import { encodeVideoFrame, FrameFlag, FrameHeader, type VideoFrameHeader } from "../../shared/protocol.js";

export class FrameMessage {
  private variants: Map<number, Uint8Array> | null = null;

  private constructor(
    readonly header: VideoFrameHeader,
    /** The live message: header (with the frame's own flags) and the VP8 bytes. */
    readonly bytes: Uint8Array,
  ) {}

  static encode(header: VideoFrameHeader, data: Uint8Array): FrameMessage {
    return new FrameMessage(header, encodeVideoFrame(header, data));
  }

  get seq(): number {
    return this.header.seq;
  }

  get key(): boolean {
    return (this.header.flags & FrameFlag.KEYFRAME) !== 0;
  }

  get byteLength(): number {
    return this.bytes.byteLength;
  }

  /** The message with `extraFlags` added to the header's flags. */
  withFlags(extraFlags: number): Uint8Array {
    const flags = this.header.flags | extraFlags;
    if (flags === this.header.flags) return this.bytes;
    this.variants ??= new Map();
    let variant = this.variants.get(flags);
    if (!variant) {
      variant = this.bytes.slice();
      variant[FrameHeader.FLAGS] = flags;
      this.variants.set(flags, variant);
    }
    return variant;
  }
}
