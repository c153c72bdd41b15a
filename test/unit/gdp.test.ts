// GDP 1.0 parser against real gst-launch output (test/fixtures/videotestsrc-vp8-160x120.gdp, made by
// scripts/make-gdp-fixture.sh) and against headers built by hand. The header layout is written out
// again here as plain numbers (GDP 1.0's 62-byte header) instead of importing the parser's constants.

import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { GdpError, GdpParser, gdpCrc16, type GdpPacket } from "../../server/source/gdp.js";
import { catchError, expectErrorCode } from "../helpers/errors.js";
import { mulberry32 } from "../helpers/random.js";

const FIXTURE = new Uint8Array(
  readFileSync(new URL("../fixtures/videotestsrc-vp8-160x120.gdp", import.meta.url)),
);

// ---------------------------------------------------------------------------------------------
// GDP 1.0 constants, written out again.

const HEADER_SIZE = 62;
const FLAG_HEADER_CRC = 0x01;
const FLAG_PAYLOAD_CRC = 0x02;
const TYPE_BUFFER = 1;
const TYPE_CAPS = 2;
const TYPE_EVENT_NONE = 64;
/** GST_EVENT_STREAM_START = (40 << 8) | DOWNSTREAM(2) | SERIALIZED(4) | STICKY(8). */
const GST_EVENT_STREAM_START = 0x280e;
/** GST_EVENT_SEGMENT = (70 << 8) | DOWNSTREAM | SERIALIZED | STICKY. */
const GST_EVENT_SEGMENT = 0x460e;
const BUF_DISCONT = 0x40;
const BUF_DELTA_UNIT = 0x2000;
const NONE = 0xffff_ffff_ffff_ffffn;

interface HeaderFields {
  major?: number;
  minor?: number;
  flags?: number;
  type?: number;
  length?: number;
  pts?: bigint;
  duration?: bigint;
  bufferFlags?: number;
  dts?: bigint;
  /** Defaults to the correct CRC of bytes 0–57. */
  headerCrc?: number;
  payloadCrc?: number;
}

/** A GDP 1.0 header built by hand, big-endian, with every offset written out. */
function gdpHeader(f: HeaderFields = {}): Uint8Array {
  const h = new Uint8Array(HEADER_SIZE);
  const v = new DataView(h.buffer);
  v.setUint8(0, f.major ?? 1); // major version
  v.setUint8(1, f.minor ?? 0); // minor version
  v.setUint8(2, f.flags ?? FLAG_HEADER_CRC); // header flags
  // 3: padding
  v.setUint16(4, f.type ?? TYPE_BUFFER, false); // payload type
  v.setUint32(6, f.length ?? 0, false); // payload length
  v.setBigUint64(10, f.pts ?? NONE, false); // PTS ns
  v.setBigUint64(18, f.duration ?? NONE, false); // duration ns
  v.setBigUint64(26, NONE, false); // offset
  v.setBigUint64(34, NONE, false); // offset_end
  v.setUint16(42, f.bufferFlags ?? 0, false); // GstBufferFlags
  v.setBigUint64(44, f.dts ?? NONE, false); // DTS ns
  // 52–57: six zero bytes
  v.setUint16(58, f.headerCrc ?? gdpCrc16(h.subarray(0, 58)), false); // header CRC
  v.setUint16(60, f.payloadCrc ?? 0, false); // payload CRC
  return h;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"));

function expectGdpError(fn: () => unknown, code: string): GdpError {
  return expectErrorCode(fn, GdpError, code);
}

function pushAll(parser: GdpParser, chunks: Iterable<Uint8Array>): GdpPacket[] {
  const out: GdpPacket[] = [];
  for (const c of chunks) out.push(...parser.push(c));
  return out;
}

function* fixedChunks(bytes: Uint8Array, n: number): Generator<Uint8Array> {
  for (let i = 0; i < bytes.byteLength; i += n) yield bytes.subarray(i, i + n);
}


/** First difference between two packet lists, or null. Payloads compared byte for byte. */
function packetDiff(actual: readonly GdpPacket[], expected: readonly GdpPacket[]): string | null {
  if (actual.length !== expected.length) return `${actual.length} packets, expected ${expected.length}`;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (a.type !== e.type) return `packet ${i}: type ${a.type}, expected ${e.type}`;
    if (a.type === "buffer" && e.type === "buffer") {
      const { payload: ap, ...am } = a;
      const { payload: ep, ...em } = e;
      if (JSON.stringify(am) !== JSON.stringify(em)) return `packet ${i}: ${JSON.stringify(am)} ≠ ${JSON.stringify(em)}`;
      if (!Buffer.from(ap.buffer, ap.byteOffset, ap.byteLength).equals(Buffer.from(ep.buffer, ep.byteOffset, ep.byteLength))) {
        return `packet ${i}: payload bytes differ`;
      }
    } else if (JSON.stringify(a) !== JSON.stringify(e)) {
      return `packet ${i}: ${JSON.stringify(a)} ≠ ${JSON.stringify(e)}`;
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// The fixture, described independently of the parser: where each packet starts and how long its
// payload is (walked with the layout above), and what gst-launch wrote into it.

/** [type, payload length] of each packet, in file order. */
const FIXTURE_PACKETS: readonly (readonly [number, number])[] = [
  [TYPE_EVENT_NONE + GST_EVENT_STREAM_START, 135],
  [TYPE_CAPS, 471],
  [TYPE_EVENT_NONE + GST_EVENT_SEGMENT, 327],
  [TYPE_BUFFER, 2246],
  [TYPE_BUFFER, 642],
  [TYPE_BUFFER, 545],
  [TYPE_BUFFER, 573],
  [TYPE_BUFFER, 560],
  [TYPE_BUFFER, 1597],
  [TYPE_BUFFER, 695],
  [TYPE_BUFFER, 735],
  [TYPE_BUFFER, 701],
  [TYPE_BUFFER, 650],
  [TYPE_BUFFER, 1654],
  [TYPE_BUFFER, 598],
];
const FIXTURE_OFFSETS: number[] = [];
for (let i = 0, at = 0; i < FIXTURE_PACKETS.length; at += HEADER_SIZE + FIXTURE_PACKETS[i]![1], i++) FIXTURE_OFFSETS.push(at);
const KEYFRAMES = [0, 5, 10];
/** GStreamer's PTS for frame n at 30/1: gst_util_uint64_scale(n, GST_SECOND, 30), rounded down. */
const ptsNs = (n: number): number => Math.floor((n * 1e9) / 30);

describe("the fixture (real gst-launch output)", () => {
  test("has the layout the tests below assume", () => {
    const last = FIXTURE_PACKETS.length - 1;
    expect(FIXTURE.byteLength).toBe(FIXTURE_OFFSETS[last]! + HEADER_SIZE + FIXTURE_PACKETS[last]![1]);
    expect(FIXTURE.byteLength).toBe(13059);
    // The first header, byte for byte: version 1.0, header CRC flag, type 64 + stream-start,
    // 135 payload bytes, no PTS, zero duration, header CRC 0xfe1f, no payload CRC.
    expect(Buffer.from(FIXTURE.subarray(0, HEADER_SIZE)).toString("hex")).toBe(
      "01000100" + "284e" + "00000087" + "ffffffffffffffff" + "0000000000000000" +
        "0".repeat(32) + "0000" + "0".repeat(16) + "000000000000" + "fe1f" + "0000",
    );
  });
});

describe("gdpCrc16", () => {
  test("matches the CRC gst wrote into the fixture's first header (bytes 58–59 = 0xfe1f)", () => {
    expect(FIXTURE[58]).toBe(0xfe);
    expect(FIXTURE[59]).toBe(0x1f);
    expect(gdpCrc16(FIXTURE.subarray(0, 58))).toBe(0xfe1f);
  });

  test("matches every header CRC in the fixture", () => {
    for (const at of FIXTURE_OFFSETS) {
      const stored = (FIXTURE[at + 58]! << 8) | FIXTURE[at + 59]!;
      expect(gdpCrc16(FIXTURE.subarray(at, at + 58)), `header at ${at}`).toBe(stored);
    }
  });

  test("is CRC-16/GENIBUS (poly 0x1021, init 0xffff, xorout 0xffff): check value of '123456789' is 0xd64e", () => {
    expect(gdpCrc16(new TextEncoder().encode("123456789"))).toBe(0xd64e);
    expect(gdpCrc16(new Uint8Array(0))).toBe(0x0000);
  });
});

describe("GdpParser on the whole fixture", () => {
  const packets = new GdpParser().push(FIXTURE);

  test("gives stream-start, caps, segment, then 12 buffers", () => {
    expect(packets.map((p) => p.type)).toEqual(["event", "caps", "event", ...Array<string>(12).fill("buffer")]);
    const [streamStart, , segment] = packets;
    expect(streamStart).toMatchObject({ type: "event", eventType: GST_EVENT_STREAM_START });
    expect(streamStart?.type === "event" && streamStart.structure).toMatch(/^GstEventStreamStart, stream-id=\(string\)[0-9a-f]+/);
    expect(segment).toMatchObject({ type: "event", eventType: GST_EVENT_SEGMENT });
    expect(segment?.type === "event" && segment.structure).toMatch(/^GstEventSegment, segment=\(GstSegment\)"segment, .*format=\(GstFormat\)time/);
  });

  test("the caps string is VP8 160x120 at 30/1, without its NUL terminator", () => {
    const caps = packets[1];
    expect(caps?.type).toBe("caps");
    if (caps?.type !== "caps") return;
    expect(caps.caps.startsWith("video/x-vp8, ")).toBe(true);
    expect(caps.caps).toContain("width=(int)160");
    expect(caps.caps).toContain("height=(int)120");
    expect(caps.caps).toContain("framerate=(fraction)30/1");
    expect(caps.caps).not.toContain("\0");
    // 471 payload bytes = the string and its NUL.
    expect(caps.caps.length).toBe(470);
  });

  test("buffers: sizes, flags, keyframes at 0, 5, 10, PTS = n/30 s in ns", () => {
    const buffers = packets.filter((p) => p.type === "buffer");
    expect(buffers).toHaveLength(12);
    buffers.forEach((b, n) => {
      expect(b.payload.byteLength, `frame ${n}`).toBe(FIXTURE_PACKETS[3 + n]![1]);
      const key = (b.flags & BUF_DELTA_UNIT) === 0;
      expect(key, `frame ${n} key`).toBe(KEYFRAMES.includes(n));
      // Only the first buffer carries DISCONT; keyframes have no other flags, deltas only DELTA_UNIT.
      expect(b.flags, `frame ${n} flags`).toBe(n === 0 ? BUF_DISCONT : key ? 0 : BUF_DELTA_UNIT);
      expect(b.pts, `frame ${n} pts`).toBe(ptsNs(n));
      expect(b.dts, `frame ${n} dts`).toBe(ptsNs(n));
      expect(b.duration, `frame ${n} duration`).toBe(ptsNs(n + 1) - ptsNs(n));
      // The payload is the bytes right after this packet's header.
      const at = FIXTURE_OFFSETS[3 + n]! + HEADER_SIZE;
      expect(Buffer.from(b.payload).equals(Buffer.from(FIXTURE.subarray(at, at + b.payload.byteLength)))).toBe(true);
    });
    const pts = buffers.map((b) => b.pts!);
    for (let i = 1; i < pts.length; i++) {
      const step = pts[i]! - pts[i - 1]!;
      expect(step).toBeGreaterThanOrEqual(33_333_333);
      expect(step).toBeLessThanOrEqual(33_333_334);
    }
  });

  test("payloads in a single chunk are views into it, not copies", () => {
    const buffers = packets.filter((p) => p.type === "buffer");
    for (const b of buffers) expect(b.payload.buffer).toBe(FIXTURE.buffer);
  });

  test("nothing is left pending", () => {
    const parser = new GdpParser();
    parser.push(FIXTURE);
    expect(parser.pendingBytes).toBe(0);
  });
});

describe("GdpParser: any chunking gives the same packets", () => {
  const expected = new GdpParser().push(FIXTURE);

  test("every chunk size from 1 byte to the whole file", () => {
    const failures: string[] = [];
    for (let n = 1; n <= FIXTURE.byteLength; n++) {
      const parser = new GdpParser();
      const diff = packetDiff(pushAll(parser, fixedChunks(FIXTURE, n)), expected);
      if (diff !== null) failures.push(`chunk size ${n}: ${diff}`);
      else if (parser.pendingBytes !== 0) failures.push(`chunk size ${n}: ${parser.pendingBytes} bytes pending`);
      if (failures.length > 5) break;
    }
    expect(failures).toEqual([]);
  });

  test("random chunkings (seeded), with empty chunks mixed in", () => {
    for (const seed of [1, 2, 3, 42, 1234, 0xc0ffee]) {
      const random = mulberry32(seed);
      const chunks: Uint8Array[] = [];
      for (let at = 0; at < FIXTURE.byteLength; ) {
        const n = Math.floor(random() * 300); // 0..299 bytes; 0 = an empty chunk
        chunks.push(FIXTURE.subarray(at, at + n));
        at += n;
      }
      expect(packetDiff(pushAll(new GdpParser(), chunks), expected), `seed ${seed}`).toBeNull();
    }
  });

  test("chunks that are fresh copies (as from a pipe), split inside headers and payloads", () => {
    const cuts = [1, 61, 62, 63, 197 + 30, 1119 + 62 + 1000, 13058];
    const chunks: Uint8Array[] = [];
    let prev = 0;
    for (const c of [...cuts, FIXTURE.byteLength]) {
      chunks.push(FIXTURE.slice(prev, c));
      prev = c;
    }
    expect(packetDiff(pushAll(new GdpParser(), chunks), expected)).toBeNull();
  });

  test("a packet is returned only when its last payload byte arrives", () => {
    const parser = new GdpParser();
    // Up to the last byte of the stream-start payload.
    expect(parser.push(FIXTURE.subarray(0, HEADER_SIZE + 134))).toEqual([]);
    const got = parser.push(FIXTURE.subarray(HEADER_SIZE + 134, HEADER_SIZE + 135));
    expect(got).toHaveLength(1);
    expect(got[0]?.type).toBe("event");
    expect(parser.pendingBytes).toBe(0);
  });

  test("pendingBytes counts a parsed header whose payload has not arrived (a stream cut there is truncated)", () => {
    const parser = new GdpParser();
    expect(parser.push(gdpHeader({ length: 10 }))).toEqual([]);
    // "Bytes received but not yet returned as packets": the 62 header bytes.
    expect(parser.pendingBytes).toBe(62);
    expect(parser.push(new Uint8Array(4))).toEqual([]);
    expect(parser.pendingBytes).toBe(66);
    expect(parser.push(new Uint8Array(6))).toHaveLength(1);
    expect(parser.pendingBytes).toBe(0);
  });
});

describe("GdpParser errors", () => {
  test("a flipped header byte → GDP_ERR_HEADER_CRC at that packet's offset; later pushes throw the same error", () => {
    const bytes = FIXTURE.slice();
    const capsAt = FIXTURE_OFFSETS[1]!; // 197
    expect(capsAt).toBe(197);
    bytes[capsAt + 20]! ^= 0x01; // inside the duration field
    const parser = new GdpParser();
    expect(parser.push(bytes.subarray(0, capsAt))).toHaveLength(1); // stream-start is fine
    const err = expectGdpError(() => parser.push(bytes.subarray(capsAt)), "GDP_ERR_HEADER_CRC");
    expect(err.streamOffset).toBe(197);
    expect(catchError(() => parser.push(new Uint8Array(0)))).toBe(err);
    expect(catchError(() => parser.push(FIXTURE))).toBe(err);
  });

  test("the packets a failing push completed before the error travel with it", () => {
    const bytes = FIXTURE.slice();
    const capsAt = FIXTURE_OFFSETS[1]!;
    bytes[capsAt + 20]! ^= 0x01;
    // One chunk holding stream-start and the corrupt caps header: stream-start must not be lost.
    const err = expectGdpError(() => new GdpParser().push(bytes), "GDP_ERR_HEADER_CRC");
    expect(err.completed.map((p) => p.type)).toEqual(["event"]);
  });

  test("a flipped CRC byte is also caught", () => {
    const bytes = FIXTURE.slice(0, HEADER_SIZE);
    bytes[59]! ^= 0x80;
    expectGdpError(() => new GdpParser().push(bytes), "GDP_ERR_HEADER_CRC");
  });

  test("without the header-CRC flag the CRC field is not checked", () => {
    const payload = new Uint8Array([1, 2, 3]);
    const header = gdpHeader({ flags: 0, length: 3, headerCrc: 0x1234, pts: 5n });
    const packets = new GdpParser().push(concat(header, payload));
    expect(packets).toHaveLength(1);
    expect(packets[0]).toMatchObject({ type: "buffer", pts: 5 });
  });

  test("declared length 0xfffffff0 → GDP_ERR_PAYLOAD_TOO_LARGE as soon as the header is in", () => {
    const header = gdpHeader({ type: TYPE_BUFFER, length: 0xfffffff0 });
    expect(header[6]).toBe(0xff);
    expect(header[9]).toBe(0xf0);
    const parser = new GdpParser();
    // Header alone, in two parts: nothing before byte 62, the error at byte 62.
    expect(parser.push(header.subarray(0, 61))).toEqual([]);
    const err = expectGdpError(() => parser.push(header.subarray(61)), "GDP_ERR_PAYLOAD_TOO_LARGE");
    expect(err.streamOffset).toBe(0);
    expect(catchError(() => parser.push(new Uint8Array(10)))).toBe(err);
  });

  test("maxPayloadBytes: a length at the limit waits for its payload, one byte more throws", () => {
    const atLimit = new GdpParser({ maxPayloadBytes: 1000 });
    expect(atLimit.push(gdpHeader({ length: 1000 }))).toEqual([]);
    const packets = atLimit.push(new Uint8Array(1000).fill(7));
    expect(packets).toHaveLength(1);
    expect(packets[0]?.type === "buffer" && packets[0].payload.byteLength).toBe(1000);

    expectGdpError(() => new GdpParser({ maxPayloadBytes: 1000 }).push(gdpHeader({ length: 1001 })), "GDP_ERR_PAYLOAD_TOO_LARGE");
  });

  test("maxPayloadBytes below the fixture's first keyframe (2246 bytes) stops there", () => {
    const parser = new GdpParser({ maxPayloadBytes: 2000 });
    const firstBufferAt = FIXTURE_OFFSETS[3]!;
    expect(firstBufferAt).toBe(1119);
    expect(parser.push(FIXTURE.subarray(0, firstBufferAt))).toHaveLength(3);
    const err = expectGdpError(() => parser.push(FIXTURE.subarray(firstBufferAt, firstBufferAt + HEADER_SIZE)), "GDP_ERR_PAYLOAD_TOO_LARGE");
    expect(err.streamOffset).toBe(1119);
  });

  test.each([
    [0, 2],
    [1, 1],
    [2, 0],
    [0, 0],
  ])("version %i.%i → GDP_ERR_BAD_VERSION", (major, minor) => {
    expectGdpError(() => new GdpParser().push(gdpHeader({ major, minor })), "GDP_ERR_BAD_VERSION");
  });

  test.each([0, 3, 63])("payload type %i → GDP_ERR_UNKNOWN_TYPE", (type) => {
    expectGdpError(() => new GdpParser().push(gdpHeader({ type })), "GDP_ERR_UNKNOWN_TYPE");
  });

  test("payload CRC is checked when flag bit 1 is set", () => {
    const payload = hex("f0 36 00 9d 01 2a a0 00 78 00");
    const crc = gdpCrc16(payload);
    const good = concat(gdpHeader({ flags: FLAG_HEADER_CRC | FLAG_PAYLOAD_CRC, length: 10, payloadCrc: crc }), payload);
    const packets = new GdpParser().push(good);
    expect(packets).toHaveLength(1);

    const bad = concat(gdpHeader({ flags: FLAG_HEADER_CRC | FLAG_PAYLOAD_CRC, length: 10, payloadCrc: crc ^ 0x0100 }), payload);
    const parser = new GdpParser();
    // The error comes with the payload's last byte, not with the header.
    expect(parser.push(bad.subarray(0, HEADER_SIZE + 9))).toEqual([]);
    const err = expectGdpError(() => parser.push(bad.subarray(HEADER_SIZE + 9)), "GDP_ERR_PAYLOAD_CRC");
    expect(err.streamOffset).toBe(0);
    expect(catchError(() => parser.push(new Uint8Array(0)))).toBe(err);
  });

  test("payload CRC is not checked when flag bit 1 is clear", () => {
    const payload = hex("01 02 03 04");
    const packets = new GdpParser().push(concat(gdpHeader({ flags: FLAG_HEADER_CRC, length: 4, payloadCrc: 0xbeef }), payload));
    expect(packets).toHaveLength(1);
  });

  test("the error offset of a later packet is its position in the whole stream", () => {
    const bytes = concat(FIXTURE, gdpHeader({ major: 9 }));
    const err = expectGdpError(() => new GdpParser().push(bytes), "GDP_ERR_BAD_VERSION");
    expect(err.streamOffset).toBe(13059);
  });
});

describe("GdpParser on hand-built packets", () => {
  test("a buffer packet: PTS, DTS, duration, flags; all-0xff times are null", () => {
    const payload = hex("b1 0d 00 e4 89");
    const a = gdpHeader({ length: 5, pts: 1_000_000_000n, dts: 999_000_000n, duration: 33_333_333n, bufferFlags: 0x2040 });
    const b = gdpHeader({ length: 0 });
    const packets = new GdpParser().push(concat(a, payload, b));
    expect(packets).toEqual([
      { type: "buffer", pts: 1_000_000_000, dts: 999_000_000, duration: 33_333_333, flags: 0x2040, payload },
      { type: "buffer", pts: null, dts: null, duration: null, flags: 0, payload: new Uint8Array(0) },
    ]);
  });

  test("caps and event payloads are NUL-terminated strings", () => {
    const caps = new TextEncoder().encode("video/x-vp8, width=(int)2, height=(int)2\0");
    const eos = new TextEncoder().encode("GstEventEos;\0");
    const GST_EVENT_EOS = 0x2806;
    const packets = new GdpParser().push(
      concat(
        gdpHeader({ type: TYPE_CAPS, length: caps.byteLength }),
        caps,
        gdpHeader({ type: TYPE_EVENT_NONE + GST_EVENT_EOS, length: eos.byteLength }),
        eos,
      ),
    );
    expect(packets).toEqual([
      { type: "caps", caps: "video/x-vp8, width=(int)2, height=(int)2" },
      { type: "event", eventType: GST_EVENT_EOS, structure: "GstEventEos;" },
    ]);
  });
});
