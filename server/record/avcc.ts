// H.264 as an MP4 holds it (ISO/IEC 14496-15: each NAL unit after its length, SPS and PPS in the
// avcC record) back to the Annex B form the live stream carries (start codes, SPS and PPS in band
// on every keyframe), so that frames read from a recording go to viewers as live ones do.

/** The SPS and PPS of an avcC record, and the size of its NAL length fields. */
export interface AvcConfig {
  readonly lengthSize: number;
  readonly parameterSets: readonly Uint8Array[];
}

import { NAL_SPS } from "../../shared/h264.js";

const START_CODE = new Uint8Array([0, 0, 0, 1]);

/** Reads an AVCDecoderConfigurationRecord (14496-15 §5.3.3.1). Throws on one too short for what it declares. */
export function parseAvcC(record: Uint8Array): AvcConfig {
  if (record.byteLength < 7 || record[0] !== 1) throw new RangeError("not an avcC record");
  const lengthSize = (record[4]! & 0x03) + 1;
  const sets: Uint8Array[] = [];
  let at = 6; // after configurationVersion, profile, compatibility, level, lengthSizeMinusOne, numOfSequenceParameterSets
  const take = (count: number): void => {
    for (let i = 0; i < count; i++) {
      if (at + 2 > record.byteLength) throw new RangeError("avcC record cut short");
      const size = (record[at]! << 8) | record[at + 1]!;
      at += 2;
      if (at + size > record.byteLength) throw new RangeError("avcC record cut short");
      sets.push(record.subarray(at, at + size));
      at += size;
    }
  };
  take(record[5]! & 0x1f); // SPS
  if (at >= record.byteLength) throw new RangeError("avcC record cut short");
  const ppsCount = record[at]!;
  at += 1;
  take(ppsCount);
  return { lengthSize, parameterSets: sets };
}

/** One length-prefixed access unit in Annex B form; a keyframe gets the SPS and PPS in front. */
export function avccToAnnexB(frame: Uint8Array, config: AvcConfig, key: boolean): Uint8Array {
  const units: Uint8Array[] = [];
  let at = 0;
  while (at + config.lengthSize <= frame.byteLength) {
    let size = 0;
    for (let i = 0; i < config.lengthSize; i++) size = size * 256 + frame[at + i]!;
    at += config.lengthSize;
    if (size === 0 || at + size > frame.byteLength) break;
    units.push(frame.subarray(at, at + size));
    at += size;
  }
  // A keyframe that does not carry its parameter sets (the muxer moved them to avcC) gets them back.
  if (key && !units.some((u) => (u[0]! & 0x1f) === NAL_SPS)) units.unshift(...config.parameterSets);
  const out = new Uint8Array(units.reduce((n, u) => n + START_CODE.byteLength + u.byteLength, 0));
  let o = 0;
  for (const u of units) {
    out.set(START_CODE, o);
    out.set(u, o + START_CODE.byteLength);
    o += START_CODE.byteLength + u.byteLength;
  }
  return out;
}
