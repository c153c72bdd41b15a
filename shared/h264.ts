// What canvascast reads of an H.264 access unit in Annex B form (ITU-T H.264 §7.3, B.1): NAL units
// after start codes; a keyframe is an access unit with an IDR slice, and the SPS in it (sent in
// band on every keyframe) gives the codec string avc1.PPCCLL.

import type { FrameInfo } from "./codec.js";

export const NAL_IDR = 5;
export const NAL_SPS = 7;
export const NAL_PPS = 8;

/** Start offsets of the NAL units (after their start codes). */
export function nalUnitStarts(data: Uint8Array): number[] {
  const starts: number[] = [];
  for (let i = 0; i + 2 < data.byteLength; i++) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      starts.push(i + 3);
      i += 2;
    }
  }
  return starts;
}

/** The nal_unit_type of each NAL unit, in order. */
export function nalUnitTypes(data: Uint8Array): number[] {
  return nalUnitStarts(data)
    .filter((at) => at < data.byteLength)
    .map((at) => data[at]! & 0x1f);
}

/** Null when the bytes are not an Annex B access unit (no start code at the front). */
export function readH264Frame(data: Uint8Array): FrameInfo | null {
  // An access unit begins with a start code: 00 00 01 or 00 00 00 01.
  const front = data.byteLength > 4 && data[0] === 0 && data[1] === 0 && (data[2] === 1 || (data[2] === 0 && data[3] === 1));
  if (!front) return null;
  let key = false;
  let codec: string | null = null;
  for (const at of nalUnitStarts(data)) {
    if (at >= data.byteLength || data[at]! & 0x80) continue; // forbidden_zero_bit
    const type = data[at]! & 0x1f;
    if (type === NAL_IDR) key = true;
    // profile_idc, constraint flags, level_idc follow the NAL header; none can be 00 00, so no
    // emulation-prevention byte sits among them.
    if (type === NAL_SPS && at + 3 < data.byteLength) codec = `avc1.${hex(data[at + 1]!)}${hex(data[at + 2]!)}${hex(data[at + 3]!)}`;
  }
  return { key, codec: key ? codec : null };
}

const hex = (b: number): string => b.toString(16).toUpperCase().padStart(2, "0");
