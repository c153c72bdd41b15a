// What the server knows of one codec: how gst encodes it live, the caps it comes out with, how a
// source that already sends it is forwarded (`codec: copy`), and how its frames are read. Each codec is one module (vp8.ts, vp9.ts, av1.ts, h264.ts); registry.ts lists them.

import type { BitstreamReader, CodecName } from "../../shared/codec.js";

export interface EncoderTarget {
  readonly bitrateKbps: number;
  /** Frames between keyframes (fps × keyframe interval). */
  readonly keyframeDistance: number;
}

export interface CodecModule {
  readonly name: CodecName;
  /** The caps' media type of what `encoderArgs` delivers (e.g. "video/x-vp8"). */
  readonly mediaType: string;
  /** gst-launch arguments from raw I420 to encoded frames, starting with "!": live settings, CBR at the target. */
  encoderArgs(target: EncoderTarget): string[];
  /**
   * gst-launch arguments, starting with "!", that turn this codec as a source delivers it (an
   * encoder's or depayloader's output) into the frames `read` expects, with the size in the caps.
   */
  readonly parseArgs: readonly string[];
  /** The RTP depayloader for an RTSP camera sending this codec, and the SDP encoding name it has. */
  readonly rtp: { readonly depayloader: string; readonly encodingName: string };
  readonly read: BitstreamReader;
  /** The parser flags keyframes HEADER (they carry the codec configuration): those are pictures, not stream headers. */
  readonly headerFlagOnKeyframes: boolean;
  /** What hello says before the first keyframe tells the real string: what the encoder declared at the default 640×480@30 here. */
  readonly provisionalCodecString: string;
}
