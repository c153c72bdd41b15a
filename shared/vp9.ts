// What canvascast reads of a VP9 frame (VP9 bitstream spec §6.2, uncompressed header): keyframe or
// not, and on keyframes the profile, bit depth and size that make the codec string vp09.PP.LL.DD.
// A superframe's first frame starts at byte 0, so the header read there is the one that counts.

import { BitReader } from "./bits.js";
import type { FrameInfo } from "./codec.js";

const SYNC_CODE = 0x498342;

/** Levels (Annex A): [level × 10, max luma samples per second, max luma picture size]. */
const LEVELS: readonly (readonly [number, number, number])[] = [
  [10, 829_440, 36_864], [11, 2_764_800, 73_728], [20, 4_608_000, 122_880], [21, 9_216_000, 245_760],
  [30, 20_736_000, 552_960], [31, 36_864_000, 983_040], [40, 83_558_400, 2_228_224], [41, 160_432_128, 2_228_224],
  [50, 311_951_360, 8_912_896], [51, 588_251_136, 8_912_896], [52, 1_176_502_272, 8_912_896],
  [60, 1_176_502_272, 35_651_584], [61, 2_353_004_544, 35_651_584], [62, 4_706_009_088, 35_651_584],
];

export interface Vp9KeyframeInfo {
  readonly profile: number;
  readonly bitDepth: number;
  readonly width: number;
  readonly height: number;
}

/** Null when the bytes are not a VP9 frame. */
export function readVp9Frame(data: Uint8Array, framerate: number): FrameInfo | null {
  const header = readVp9Header(data);
  if (header === null) return null;
  if (header === "delta") return { key: false, codec: null };
  return { key: true, codec: vp9CodecString(header, framerate) };
}

/** A keyframe's profile, depth and size; "delta" for any other frame; null when not VP9. */
export function readVp9Header(data: Uint8Array): Vp9KeyframeInfo | "delta" | null {
  if (data.byteLength < 1) return null;
  const r = new BitReader(data);
  if (r.bits(2) !== 2) return null; // frame_marker
  const low = r.bits(1);
  const profile = (r.bits(1) << 1) | low;
  if (profile === 3 && r.flag()) return null; // reserved_zero
  if (r.flag()) return "delta"; // show_existing_frame: repeats a decoded frame
  const keyFrame = r.bits(1) === 0; // frame_type 0 = KEY_FRAME
  if (!keyFrame) return "delta";
  r.bits(2); // show_frame, error_resilient_mode
  if (r.bits(24) !== SYNC_CODE) return null;
  let bitDepth = 8;
  if (profile >= 2) bitDepth = r.flag() ? 12 : 10;
  const colorSpace = r.bits(3);
  if (colorSpace !== 7) {
    r.bits(1); // color_range
    if (profile === 1 || profile === 3) r.bits(3); // subsampling_x, subsampling_y, reserved_zero
  } else if (profile === 1 || profile === 3) {
    r.bits(1); // reserved_zero (sRGB is 4:4:4)
  }
  const width = r.bits(16) + 1;
  const height = r.bits(16) + 1;
  if (r.overrun) return null;
  return { profile, bitDepth, width, height };
}

/** vp09.PP.LL.DD: the level is the lowest whose limits hold this size at this rate. */
export function vp9CodecString(info: Vp9KeyframeInfo, framerate: number): string {
  const samples = info.width * info.height;
  const rate = samples * (framerate > 0 ? framerate : 30);
  const level = LEVELS.find(([, maxRate, maxSize]) => samples <= maxSize && rate <= maxRate)?.[0] ?? 62;
  return `vp09.${two(info.profile)}.${two(level)}.${two(info.bitDepth)}`;
}

const two = (n: number): string => String(n).padStart(2, "0");
