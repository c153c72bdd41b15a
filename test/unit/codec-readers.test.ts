// The bitstream readers (shared/vp9.ts, av1.ts, h264.ts, codec.ts) on hand-built headers: keyframe
// or not, and the WebCodecs codec string each declares. Real encoder output is covered by
// test/integration/codecs.test.ts.

import { describe, expect, test } from "vitest";
import { av1CodecConfig, readAv1Frame } from "../../shared/av1.js";
import { BITSTREAM_READERS, codecOfString } from "../../shared/codec.js";
import { readH264Frame } from "../../shared/h264.js";
import { readVp9Frame } from "../../shared/vp9.js";

/** MSB-first bits → bytes, zero-padded. */
function bits(...fields: readonly (readonly [value: number, width: number])[]): number[] {
  const out: number[] = [];
  let acc = 0;
  let n = 0;
  for (const [value, width] of fields) {
    for (let i = width - 1; i >= 0; i--) {
      acc = (acc << 1) | (Math.floor(value / 2 ** i) & 1);
      if (++n === 8) {
        out.push(acc);
        acc = 0;
        n = 0;
      }
    }
  }
  if (n > 0) out.push(acc << (8 - n));
  return out;
}

const bytes = (...parts: readonly (readonly number[])[]): Uint8Array => new Uint8Array(parts.flat());

describe("VP9", () => {
  const keyframe = (profileLow: number, profileHigh: number, depthBit: number[] = []): Uint8Array =>
    bytes(
      bits([2, 2], [profileLow, 1], [profileHigh, 1], [0, 1], [0, 1], [1, 1], [0, 1], [0x498342, 24]),
      // The color config is read only after the sync code, so it starts on a byte boundary here.
      bits(...depthBit.map((b) => [b, 1] as const), [2, 3], [0, 1], [639, 16], [479, 16]),
    );

  test("a profile 0 keyframe: key, vp09.00.LL.08 with the level from size and rate", () => {
    expect(readVp9Frame(keyframe(0, 0), 30)).toEqual({ key: true, codec: "vp09.00.30.08" });
    // 640×480 is over level 2.1's picture size, so level 3.0 at a lower rate too.
    expect(readVp9Frame(keyframe(0, 0), 15)).toEqual({ key: true, codec: "vp09.00.30.08" });
  });

  test("a profile 2 keyframe says its bit depth", () => {
    expect(readVp9Frame(keyframe(0, 1, [0]), 30)?.codec).toBe("vp09.02.30.10");
    expect(readVp9Frame(keyframe(0, 1, [1]), 30)?.codec).toBe("vp09.02.30.12");
  });

  test("an interframe and a shown existing frame are deltas; bytes without the frame marker are not VP9", () => {
    expect(readVp9Frame(bytes(bits([2, 2], [0, 2], [0, 1], [1, 1])), 30)).toEqual({ key: false, codec: null });
    expect(readVp9Frame(bytes(bits([2, 2], [0, 2], [1, 1], [3, 3])), 30)).toEqual({ key: false, codec: null });
    expect(readVp9Frame(bytes([0x00, 0x00]), 30)).toBeNull();
    // A keyframe whose sync code is wrong is not VP9 either.
    const broken = keyframe(0, 0);
    broken[1] = 0x00;
    expect(readVp9Frame(broken, 30)).toBeNull();
  });
});

describe("AV1", () => {
  const obu = (type: number, payload: readonly number[]): number[] => [(type << 3) | 0x02, payload.length, ...payload];
  const temporalDelimiter = obu(2, []);
  const sequenceHeader = obu(
    1,
    bits(
      [0, 3], [0, 1], [0, 1], // profile 0, not a still picture, not reduced
      [0, 1], [0, 1], [0, 5], // no timing info, no initial display delay, one operating point
      [0, 12], [8, 5], [0, 1], // its idc, level 8 (4.0), main tier
      [9, 4], [8, 4], [639, 10], [479, 9], // frame size bits and the maximum size
      [0, 1], [0, 3], [0, 4], // no frame ids; superblock and intra tools; compound and motion tools
      [1, 1], [0, 2], // order hint; jnt_comp, ref_frame_mvs
      [1, 1], [1, 1], // choose screen content tools, then choose integer mv
      [6, 3], // order_hint_bits_minus_1
      [0, 1], [1, 1], [0, 1], // superres, cdef, restoration
      [0, 1], // high_bitdepth: 8-bit
      [0, 8], // the rest of color_config and beyond: not read
    ),
  );
  const frame = (frameType: number): number[] => obu(6, bits([0, 1], [frameType, 2], [1, 1], [0, 12]));

  test("a temporal unit with a sequence header and a shown KEY_FRAME: key, av01.P.LLT.DD", () => {
    expect(readAv1Frame(bytes(temporalDelimiter, sequenceHeader, frame(0)))).toEqual({ key: true, codec: "av01.0.08M.08" });
  });

  test("an inter frame, or a key frame without a sequence header, is not where a decoder can start", () => {
    expect(readAv1Frame(bytes(temporalDelimiter, frame(1)))).toEqual({ key: false, codec: null });
    expect(readAv1Frame(bytes(temporalDelimiter, frame(0)))).toEqual({ key: false, codec: null });
  });

  test("av1C (Matroska's CodecPrivate): profile, level, tier, bit depth, 4:2:0, then the sequence header OBU whole", () => {
    const config = av1CodecConfig(bytes(temporalDelimiter, sequenceHeader, frame(0)));
    expect([...config!]).toEqual([0x81, (0 << 5) | 8, 0b0000_1100, 0, ...sequenceHeader]);
    expect(av1CodecConfig(bytes(temporalDelimiter, frame(1)))).toBeNull();
  });

  test("bytes that are not sized OBUs are not AV1", () => {
    expect(readAv1Frame(bytes([0x80, 0x00]))).toBeNull(); // forbidden bit
    expect(readAv1Frame(bytes([0x30, 0x10]))).toBeNull(); // no size field
    expect(readAv1Frame(bytes([0x32, 0x05, 0x00]))).toBeNull(); // size past the end
  });
});

describe("H.264", () => {
  const sps = [0x00, 0x00, 0x00, 0x01, 0x67, 0x64, 0x00, 0x28, 0xac];
  const pps = [0x00, 0x00, 0x01, 0x68, 0xee, 0x3c, 0x80];
  const idr = [0x00, 0x00, 0x01, 0x65, 0x88, 0x84];
  const slice = [0x00, 0x00, 0x00, 0x01, 0x41, 0x9a, 0x02];

  test("an access unit with SPS, PPS and an IDR slice: key, avc1 from the SPS's profile, constraints and level", () => {
    expect(readH264Frame(bytes(sps, pps, idr))).toEqual({ key: true, codec: "avc1.640028" });
  });

  test("a non-IDR slice is a delta; an IDR without SPS is a key with no codec string; no start code is not Annex B", () => {
    expect(readH264Frame(bytes(slice))).toEqual({ key: false, codec: null });
    expect(readH264Frame(bytes(idr, idr))).toEqual({ key: true, codec: null });
    expect(readH264Frame(bytes([0x67, 0x42, 0xc0, 0x1e, 0x00]))).toBeNull();
  });
});

describe("codec strings", () => {
  test.each([
    ["vp8", "vp8"],
    ["vp09.00.30.08", "vp9"],
    ["av01.0.04M.08", "av1"],
    ["avc1.42C01E", "h264"],
    ["hev1.1.6.L93.B0", null],
    ["vp9", null],
  ])("%s → %s", (string, codec) => {
    expect(codecOfString(string)).toBe(codec);
  });

  test("the VP8 reader names vp8 on keyframes only", () => {
    expect(BITSTREAM_READERS.vp8(bytes([0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00]), 30)).toEqual({ key: true, codec: "vp8" });
    expect(BITSTREAM_READERS.vp8(bytes([0x31, 0x24, 0x00]), 30)).toEqual({ key: false, codec: null });
  });
});
