// H.264 from an MP4 back to Annex B (server/record/avcc.ts), on records and frames built by hand
// to ISO/IEC 14496-15 §5.3.3.1, and on what mediabunny wrote and read back (recording.test.ts).

import { describe, expect, test } from "vitest";
import { avccToAnnexB, parseAvcC } from "../../server/record/avcc.js";

const SPS = [0x67, 0x42, 0xc0, 0x15, 0xd9];
const PPS = [0x68, 0xce, 0x3c, 0x80];
/** version 1, profile, compatibility, level, 4-byte lengths, one SPS, one PPS. */
const AVCC = new Uint8Array([1, 0x42, 0xc0, 0x15, 0xff, 0xe1, 0, SPS.length, ...SPS, 1, 0, PPS.length, ...PPS]);
const IDR = [0x65, 0x88, 0x84, 0x00];
const SLICE = [0x41, 0x9a, 0x02];
const lengthPrefixed = (...units: number[][]): Uint8Array => new Uint8Array(units.flatMap((u) => [0, 0, 0, u.length, ...u]));
const annexB = (...units: number[][]): number[] => units.flatMap((u) => [0, 0, 0, 1, ...u]);

describe("avcC → Annex B", () => {
  test("parses the record: length size and the SPS and PPS", () => {
    const config = parseAvcC(AVCC);
    expect(config.lengthSize).toBe(4);
    expect(config.parameterSets.map((u) => [...u])).toEqual([SPS, PPS]);
  });

  test("a keyframe gets SPS and PPS in front, unless it carries them; a delta is only re-framed", () => {
    const config = parseAvcC(AVCC);
    expect([...avccToAnnexB(lengthPrefixed(IDR), config, true)]).toEqual(annexB(SPS, PPS, IDR));
    expect([...avccToAnnexB(lengthPrefixed(SPS, PPS, IDR), config, true)]).toEqual(annexB(SPS, PPS, IDR));
    expect([...avccToAnnexB(lengthPrefixed([0x09, 0xf0], SLICE), config, false)]).toEqual(annexB([0x09, 0xf0], SLICE));
  });

  test("2-byte lengths, and a frame cut short ends at its last whole NAL unit", () => {
    const two = new Uint8Array(AVCC);
    two[4] = 0xfd;
    const config = parseAvcC(two);
    expect(config.lengthSize).toBe(2);
    const frame = new Uint8Array([0, SLICE.length, ...SLICE, 0, 9, 0x41]);
    expect([...avccToAnnexB(frame, config, false)]).toEqual(annexB(SLICE));
  });

  test.each([
    ["empty", new Uint8Array()],
    ["version 0", new Uint8Array([0, ...AVCC.subarray(1)])],
    ["an SPS longer than the record", AVCC.subarray(0, 10)],
    ["no PPS count", AVCC.subarray(0, 8 + SPS.length)],
  ])("a record %s is refused", (_what, record) => {
    expect(() => parseAvcC(record)).toThrow(RangeError);
  });
});
