// The codecs a stream can be encoded in, and what server and client both read of their bitstreams:
// which frames are keyframes (a decoder can start there) and the WebCodecs codec string. One
// reader per codec, in its own module (vp8.ts, vp9.ts, av1.ts, h264.ts).

import { readAv1Frame } from "./av1.js";
import { readH264Frame } from "./h264.js";
import { parseVp8Frame } from "./vp8.js";
import { readVp9Frame } from "./vp9.js";

export const CODEC_NAMES = ["vp8", "vp9", "av1", "h264"] as const;
export type CodecName = (typeof CODEC_NAMES)[number];
export const isCodecName = (v: unknown): v is CodecName => CODEC_NAMES.includes(v as CodecName);

/** What a reader makes of one encoded frame (one access unit / temporal unit for H.264 and AV1). */
export interface FrameInfo {
  /** A decoder can start at this frame. */
  readonly key: boolean;
  /** The WebCodecs codec string, when the frame says (keyframes do). */
  readonly codec: string | null;
}

/** Reads one frame; null when the bytes are not a frame of this codec. `framerate` (fps) picks a VP9 level. */
export type BitstreamReader = (data: Uint8Array, framerate: number) => FrameInfo | null;

export const BITSTREAM_READERS: Readonly<Record<CodecName, BitstreamReader>> = {
  vp8: (data) => {
    const info = parseVp8Frame(data);
    return info === null ? null : { key: info.key, codec: info.key ? "vp8" : null };
  },
  vp9: readVp9Frame,
  av1: readAv1Frame,
  h264: readH264Frame,
};

/** The codec a WebCodecs codec string names, or null for one canvascast does not know. */
export function codecOfString(codec: string): CodecName | null {
  if (codec === "vp8") return "vp8";
  if (/^vp09\.\d\d\.\d\d\.\d\d/.test(codec)) return "vp9";
  if (/^av01\.\d\.\d\d[MH]\.\d\d/.test(codec)) return "av1";
  if (/^avc1\.[0-9A-Fa-f]{6}$/.test(codec)) return "h264";
  return null;
}
