// Every codec the server can encode, by name: adding one is one module and one line here.

import { CODEC_NAMES, type CodecName } from "../../shared/codec.js";
import { av1 } from "./av1.js";
import type { CodecModule } from "./codec-module.js";
import { h264 } from "./h264.js";
import { vp8 } from "./vp8.js";
import { vp9 } from "./vp9.js";

export const CODECS: Readonly<Record<CodecName, CodecModule>> = { vp8, vp9, av1, h264 };

export const DEFAULT_CODEC: CodecName = "vp8";

/** A stream's `codec` setting: one to encode in, or `copy`: forward what the source already encodes. */
export const CODEC_SETTINGS = [...CODEC_NAMES, "copy"] as const;
export type CodecSetting = (typeof CODEC_SETTINGS)[number];
export const isCodecSetting = (v: unknown): v is CodecSetting => CODEC_SETTINGS.includes(v as CodecSetting);

/** The codec of encoded video with these caps' media type (e.g. "video/x-h264"), or null. */
export function codecOfMediaType(mediaType: string): CodecModule | null {
  return Object.values(CODECS).find((c) => c.mediaType === mediaType) ?? null;
}

/** The codec an RTSP camera's SDP names (rtpmap encoding name, e.g. "H264"), or null. */
export function codecOfRtpEncoding(encodingName: string): CodecModule | null {
  return Object.values(CODECS).find((c) => c.rtp.encodingName === encodingName.toUpperCase()) ?? null;
}
