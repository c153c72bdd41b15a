// Frame protocol v1 (shared/protocol.ts). The binary header layout is written out again here from
// docs/protocol.md's table, little-endian: 0 kind u8 · 1 flags u8 · 2 header length u16 · 4 seq u32 ·
// 8 pts f64 (µs) · 16 serverTime f64 (ms) · then the VP8 bytes.

import { describe, expect, test } from "vitest";
import {
  decodeBinaryMessage,
  encodeVideoFrame,
  nextSeq,
  parseClientMessage,
  parseServerMessage,
  ProtocolError,
  type VideoFrameHeader,
} from "../../shared/protocol.js";
import { micros, millis } from "../../shared/units.js";
import { expectErrorCode } from "../helpers/errors.js";

const KIND_VIDEO = 1;
const FLAG_KEY = 0x01;
const FLAG_REPLAY = 0x02;
const FLAG_DISCONTINUITY = 0x04;

function handBuilt(opts: {
  kind?: number;
  flags: number;
  headerLength: number;
  seq: number;
  pts: number;
  serverTime: number;
  payload: Uint8Array;
  /** Bytes between offset 24 and headerLength. */
  fill?: number;
}): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(opts.headerLength + opts.payload.byteLength);
  const v = new DataView(out.buffer);
  v.setUint8(0, opts.kind ?? KIND_VIDEO);
  v.setUint8(1, opts.flags);
  v.setUint16(2, opts.headerLength, true);
  v.setUint32(4, opts.seq, true);
  v.setFloat64(8, opts.pts, true);
  v.setFloat64(16, opts.serverTime, true);
  out.fill(opts.fill ?? 0, 24, opts.headerLength);
  out.set(opts.payload, opts.headerLength);
  return out;
}

function expectProtocolError(fn: () => unknown, code: string): void {
  expectErrorCode(fn, ProtocolError, code);
}

const VP8 = new Uint8Array([0xf0, 0x36, 0x00, 0x9d, 0x01, 0x2a, 0xa0, 0x00, 0x78, 0x00]);

describe("binary frame messages", () => {
  test("encodeVideoFrame writes the v1 layout byte for byte", () => {
    const header: VideoFrameHeader = { flags: FLAG_KEY | FLAG_REPLAY, seq: 0x01020304, pts: micros(33_333.25), serverTime: millis(1_700_000_000_123.5) };
    const bytes = encodeVideoFrame(header, VP8);
    const expected = handBuilt({ flags: 0x03, headerLength: 24, seq: 0x01020304, pts: 33_333.25, serverTime: 1_700_000_000_123.5, payload: VP8 });
    expect(bytes).toEqual(expected);
    expect(bytes.byteLength).toBe(24 + 10);
    // The fixed bytes, spelled out: kind 1, flags 3, header length 24 (0x18 0x00), seq 04 03 02 01.
    expect(Buffer.from(bytes.subarray(0, 8)).toString("hex")).toBe("01031800" + "04030201");
    expect(Buffer.from(bytes.subarray(24)).toString("hex")).toBe("f036009d012aa0007800");
  });

  test("round trip through decodeBinaryMessage", () => {
    const header: VideoFrameHeader = { flags: FLAG_DISCONTINUITY, seq: 0xffffffff, pts: micros(1e12 + 0.5), serverTime: millis(1_700_000_000_000.25) };
    const decoded = decodeBinaryMessage(encodeVideoFrame(header, VP8));
    expect(decoded).toEqual({ kind: "video", header, data: VP8 });
  });

  test("decodes a hand-built message with the v1 offsets", () => {
    const bytes = handBuilt({ flags: FLAG_KEY, headerLength: 24, seq: 77, pts: 1_000_000, serverTime: 1_234.5, payload: VP8 });
    const decoded = decodeBinaryMessage(bytes);
    expect(decoded.kind).toBe("video");
    if (decoded.kind !== "video") return;
    expect(decoded.header).toEqual({ flags: 1, seq: 77, pts: 1_000_000, serverTime: 1_234.5 });
    expect(decoded.data).toEqual(VP8);
    // A view into the message, not a copy.
    expect(decoded.data.buffer).toBe(bytes.buffer);
    expect(decoded.data.byteOffset).toBe(24);
  });

  test("accepts an ArrayBuffer and a Uint8Array that is a view at an offset", () => {
    const inner = handBuilt({ flags: 0, headerLength: 24, seq: 5, pts: 2, serverTime: 3, payload: VP8 });
    expect(decodeBinaryMessage(inner.buffer)).toMatchObject({ kind: "video", header: { seq: 5 } });
    const padded = new Uint8Array(inner.byteLength + 7);
    padded.set(inner, 7);
    const decoded = decodeBinaryMessage(padded.subarray(7));
    expect(decoded).toEqual({ kind: "video", header: { flags: 0, seq: 5, pts: 2, serverTime: 3 }, data: VP8 });
  });

  test("header length 32: the 8 unknown bytes are skipped, the payload starts at 32", () => {
    const bytes = handBuilt({ flags: FLAG_KEY, headerLength: 32, seq: 9, pts: 10, serverTime: 11, payload: VP8, fill: 0xee });
    const decoded = decodeBinaryMessage(bytes);
    expect(decoded.kind).toBe("video");
    if (decoded.kind !== "video") return;
    expect(decoded.data.byteOffset).toBe(32);
    expect(decoded.data).toEqual(VP8);
    expect(decoded.header.seq).toBe(9);
  });

  test("unknown kind → { kind: 'unknown' }", () => {
    const bytes = handBuilt({ kind: 7, flags: 0, headerLength: 24, seq: 0, pts: 0, serverTime: 0, payload: VP8 });
    expect(decodeBinaryMessage(bytes)).toEqual({ kind: "unknown", kindByte: 7 });
    expect(decodeBinaryMessage(new Uint8Array([0, 0, 0, 0]))).toEqual({ kind: "unknown", kindByte: 0 });
  });

  test("short messages → CC_ERR_SHORT_MESSAGE", () => {
    expectProtocolError(() => decodeBinaryMessage(new Uint8Array(0)), "CC_ERR_SHORT_MESSAGE");
    expectProtocolError(() => decodeBinaryMessage(new Uint8Array([1, 0, 24])), "CC_ERR_SHORT_MESSAGE");
    // Kind 1, header length 24, but only 23 bytes.
    const full = handBuilt({ flags: 0, headerLength: 24, seq: 0, pts: 0, serverTime: 0, payload: new Uint8Array(0) });
    expectProtocolError(() => decodeBinaryMessage(full.subarray(0, 23)), "CC_ERR_SHORT_MESSAGE");
    // Header length 32 but only 30 bytes.
    const long = handBuilt({ flags: 0, headerLength: 32, seq: 0, pts: 0, serverTime: 0, payload: new Uint8Array(0) });
    expectProtocolError(() => decodeBinaryMessage(long.subarray(0, 30)), "CC_ERR_SHORT_MESSAGE");
    // Exactly the header, no payload, is fine.
    expect(decodeBinaryMessage(full)).toMatchObject({ kind: "video", data: new Uint8Array(0) });
  });

  test("header length below 24 → CC_ERR_BAD_HEADER_LENGTH", () => {
    const bytes = handBuilt({ flags: 0, headerLength: 24, seq: 0, pts: 0, serverTime: 0, payload: VP8 });
    new DataView(bytes.buffer).setUint16(2, 16, true);
    expectProtocolError(() => decodeBinaryMessage(bytes), "CC_ERR_BAD_HEADER_LENGTH");
  });
});

describe("nextSeq", () => {
  test("adds one and wraps at 0xffffffff", () => {
    expect(nextSeq(0)).toBe(1);
    expect(nextSeq(41)).toBe(42);
    expect(nextSeq(0xfffffffe)).toBe(0xffffffff);
    expect(nextSeq(0xffffffff)).toBe(0);
  });
});

describe("parseClientMessage", () => {
  test("accepts a valid ack, including seq 0 and 0xffffffff", () => {
    expect(parseClientMessage('{"type":"ack","seq":12}')).toEqual({ type: "ack", seq: 12 });
    expect(parseClientMessage('{"type":"ack","seq":0}')).toEqual({ type: "ack", seq: 0 });
    expect(parseClientMessage('{"type":"ack","seq":4294967295}')).toEqual({ type: "ack", seq: 0xffffffff });
  });

  test("accepts pause, resume and resync, dropping any extra fields", () => {
    expect(parseClientMessage('{"type":"pause"}')).toEqual({ type: "pause" });
    expect(parseClientMessage('{"type":"resume"}')).toEqual({ type: "resume" });
    expect(parseClientMessage('{"type":"resync"}')).toEqual({ type: "resync" });
    expect(parseClientMessage('{"type":"resync","reason":"decoder error","seq":3}')).toEqual({ type: "resync" });
  });

  test("accepts clock with a finite number, and the server's reply parses", () => {
    expect(parseClientMessage('{"type":"clock","t":12.5}')).toEqual({ type: "clock", t: 12.5 });
    expectProtocolError(() => parseClientMessage('{"type":"clock","t":"now"}'), "CC_ERR_BAD_MESSAGE");
    expectProtocolError(() => parseClientMessage('{"type":"clock"}'), "CC_ERR_BAD_MESSAGE");
    expect(parseServerMessage('{"type":"clock","t":1,"serverTime":2}')).toEqual({ type: "clock", t: 1, serverTime: 2 });
    expectProtocolError(() => parseServerMessage('{"type":"clock","t":1}'), "CC_ERR_BAD_MESSAGE");
  });

  test("accepts seek with a wall-clock time and live; the server's playback answers parse", () => {
    expect(parseClientMessage('{"type":"seek","at":1796215153204}')).toEqual({ type: "seek", at: 1796215153204 });
    expect(parseClientMessage('{"type":"seek","at":0}')).toEqual({ type: "seek", at: 0 });
    expect(parseClientMessage('{"type":"live","why":"button"}')).toEqual({ type: "live" });
    for (const bad of ['{"type":"seek"}', '{"type":"seek","at":"2026-12-02T10:00:00Z"}', '{"type":"seek","at":-1}', '{"type":"seek","at":null}', '{"type":"seek","at":1e400}']) {
      expectProtocolError(() => parseClientMessage(bad), "CC_ERR_BAD_MESSAGE");
    }
    expect(parseServerMessage('{"type":"playback","mode":"recorded","at":1796215152871}')).toEqual({ type: "playback", mode: "recorded", at: 1796215152871 });
    expect(parseServerMessage('{"type":"playback","mode":"live","error":"CC_ERR_NOT_RECORDED","message":"no","x":1}')).toEqual({
      type: "playback",
      mode: "live",
      error: "CC_ERR_NOT_RECORDED",
      message: "no",
    });
    for (const bad of ['{"type":"playback"}', '{"type":"playback","mode":"rewind"}', '{"type":"playback","mode":"live","error":7}', '{"type":"playback","mode":"recorded","at":"then"}']) {
      expectProtocolError(() => parseServerMessage(bad), "CC_ERR_BAD_MESSAGE");
    }
  });

  test.each(["", "ack", "{", "{'type':'ack'}", "\u0000"])("non-JSON %j → CC_ERR_BAD_JSON", (text) => {
    expectProtocolError(() => parseClientMessage(text), "CC_ERR_BAD_JSON");
  });

  test.each([
    ["an array", '[{"type":"ack","seq":1}]'],
    ["null", "null"],
    ["a number", "42"],
    ["a string", '"ack"'],
    ["no type", '{"seq":1}'],
    ["a non-string type", '{"type":1,"seq":1}'],
    ["an unknown type", '{"type":"hello","seq":1}'],
    ["no seq", '{"type":"ack"}'],
    ["a string seq", '{"type":"ack","seq":"1"}'],
    ["a negative seq", '{"type":"ack","seq":-1}'],
    ["a fractional seq", '{"type":"ack","seq":1.5}'],
    ["a seq above u32", '{"type":"ack","seq":4294967296}'],
    ["a null seq", '{"type":"ack","seq":null}'],
    ["a server message type", '{"type":"stats"}'],
    ["an upper-case type", '{"type":"PAUSE"}'],
    ["a control type in an array", '[{"type":"resync"}]'],
  ])("%s → CC_ERR_BAD_MESSAGE", (_name, text) => {
    expectProtocolError(() => parseClientMessage(text), "CC_ERR_BAD_MESSAGE");
  });
});

describe("parseServerMessage", () => {
  const hello = {
    type: "hello",
    protocol: 1,
    stream: "cam0",
    encoding: "tile",
    codec: "vp8",
    width: 320,
    height: 240,
    framerate: 30,
    serverTime: 1_700_000_000_000,
  };

  test("hello, with extra fields ignored", () => {
    expect(parseServerMessage(JSON.stringify(hello))).toEqual(hello);
    expect(parseServerMessage(JSON.stringify({ ...hello, future: "field" }))).toEqual(hello);
  });

  test("a hello without an encoding (a server from before encodings) is the full encoding's", () => {
    expect(parseServerMessage(JSON.stringify({ ...hello, encoding: undefined }))).toEqual({ ...hello, encoding: "full" });
  });

  test("state, with and without a reason", () => {
    expect(parseServerMessage('{"type":"state","state":"live"}')).toEqual({ type: "state", state: "live" });
    expect(parseServerMessage('{"type":"state","state":"offline","reason":"gst died"}')).toEqual({
      type: "state",
      state: "offline",
      reason: "gst died",
    });
  });

  test("unknown types → { type: 'unknown' } with the raw object", () => {
    expect(parseServerMessage('{"type":"telemetry","x":1}')).toEqual({ type: "unknown", raw: { type: "telemetry", x: 1 } });
    // Type names are case-sensitive.
    expect(parseServerMessage('{"type":"Stats","x":1}')).toEqual({ type: "unknown", raw: { type: "Stats", x: 1 } });
  });

  test("state with restarting, reason and retryInMs; every state name", () => {
    expect(parseServerMessage('{"type":"state","state":"restarting","reason":"pipeline exited (1)","retryInMs":2000}')).toEqual({
      type: "state",
      state: "restarting",
      reason: "pipeline exited (1)",
      retryInMs: 2000,
    });
    expect(parseServerMessage('{"type":"state","state":"offline","retryInMs":0}')).toEqual({ type: "state", state: "offline", retryInMs: 0 });
    for (const state of ["starting", "live", "restarting", "offline"]) {
      expect(parseServerMessage(JSON.stringify({ type: "state", state }))).toEqual({ type: "state", state });
    }
    // Extra fields are dropped.
    expect(parseServerMessage('{"type":"state","state":"live","extra":1}')).toEqual({ type: "state", state: "live" });
  });

  test.each([
    ["an unknown state", { type: "state", state: "paused" }],
    ["no state", { type: "state" }],
    ["a non-string reason", { type: "state", state: "offline", reason: 5 }],
    ["a negative retryInMs", { type: "state", state: "restarting", retryInMs: -1 }],
    ["a string retryInMs", { type: "state", state: "restarting", retryInMs: "2000" }],
    ["a null retryInMs", { type: "state", state: "restarting", retryInMs: null }],
  ])("malformed state (%s) → CC_ERR_BAD_MESSAGE", (_name, message) => {
    expectProtocolError(() => parseServerMessage(JSON.stringify(message)), "CC_ERR_BAD_MESSAGE");
  });

  test("an infinite retryInMs is refused (1e999 is Infinity once parsed)", () => {
    expectProtocolError(() => parseServerMessage('{"type":"state","state":"restarting","retryInMs":1e999}'), "CC_ERR_BAD_MESSAGE");
  });

  test("skipped, for each reason", () => {
    expect(parseServerMessage('{"type":"skipped","reason":"lagging","frames":12,"lagMs":640.5}')).toEqual({
      type: "skipped",
      reason: "lagging",
      frames: 12,
      lagMs: 640.5,
    });
    expect(parseServerMessage('{"type":"skipped","reason":"buffer-full","frames":0,"lagMs":0,"more":true}')).toEqual({
      type: "skipped",
      reason: "buffer-full",
      frames: 0,
      lagMs: 0,
    });
  });

  const skipped = { type: "skipped", reason: "lagging", frames: 3, lagMs: 700 };
  test.each([
    ["an unknown reason", { ...skipped, reason: "awaiting-keyframe" }],
    ["no reason", { ...skipped, reason: undefined }],
    ["negative frames", { ...skipped, frames: -1 }],
    ["fractional frames", { ...skipped, frames: 1.5 }],
    ["string frames", { ...skipped, frames: "3" }],
    ["no lagMs", { ...skipped, lagMs: undefined }],
    ["a null lagMs", { ...skipped, lagMs: null }],
    ["a negative lagMs", { ...skipped, lagMs: -5 }],
  ])("malformed skipped (%s) → CC_ERR_BAD_MESSAGE", (_name, message) => {
    expectProtocolError(() => parseServerMessage(JSON.stringify(message)), "CC_ERR_BAD_MESSAGE");
  });

  test("stats, with a lag or null before the first ack; only the known skip reasons are kept", () => {
    expect(
      parseServerMessage('{"type":"stats","lagMs":41.5,"framesSent":300,"skipped":{"lagging":7,"buffer-full":2}}'),
    ).toEqual({ type: "stats", lagMs: 41.5, framesSent: 300, skipped: { lagging: 7, "buffer-full": 2 } });
    expect(
      parseServerMessage('{"type":"stats","lagMs":null,"framesSent":0,"skipped":{"lagging":0,"buffer-full":0,"future":9}}'),
    ).toEqual({ type: "stats", lagMs: null, framesSent: 0, skipped: { lagging: 0, "buffer-full": 0 } });
  });

  const stats = { type: "stats", lagMs: 10, framesSent: 5, skipped: { lagging: 0, "buffer-full": 0 } };
  test.each([
    ["no lagMs", { ...stats, lagMs: undefined }],
    ["a string lagMs", { ...stats, lagMs: "10" }],
    ["no framesSent", { ...stats, framesSent: undefined }],
    ["negative framesSent", { ...stats, framesSent: -1 }],
    ["fractional framesSent", { ...stats, framesSent: 2.5 }],
    ["no skipped", { ...stats, skipped: undefined }],
    ["skipped an array", { ...stats, skipped: [0, 0] }],
    ["skipped null", { ...stats, skipped: null }],
    ["a reason missing", { ...stats, skipped: { lagging: 0 } }],
    ["a negative count", { ...stats, skipped: { lagging: -1, "buffer-full": 0 } }],
    ["a string count", { ...stats, skipped: { lagging: "1", "buffer-full": 0 } }],
  ])("malformed stats (%s) → CC_ERR_BAD_MESSAGE", (_name, message) => {
    expectProtocolError(() => parseServerMessage(JSON.stringify(message)), "CC_ERR_BAD_MESSAGE");
  });

  test.each([
    ["protocol 2", { ...hello, protocol: 2 }],
    ["a codec with a space", { ...hello, codec: "h 264" }],
    ["a numeric codec", { ...hello, codec: 8 }],
    ["width 0", { ...hello, width: 0 }],
    ["fractional height", { ...hello, height: 480.5 }],
    ["framerate 0", { ...hello, framerate: 0 }],
    ["no stream", { ...hello, stream: undefined }],
    ["string serverTime", { ...hello, serverTime: "now" }],
    ["an unknown encoding", { ...hello, encoding: "huge" }],
    ["a numeric encoding", { ...hello, encoding: 1 }],
  ])("malformed hello (%s) → CC_ERR_BAD_MESSAGE", (_name, message) => {
    expectProtocolError(() => parseServerMessage(JSON.stringify(message)), "CC_ERR_BAD_MESSAGE");
  });

  test("malformed state, non-objects and non-JSON throw with their codes", () => {
    expectProtocolError(() => parseServerMessage('{"type":"state","state":"paused"}'), "CC_ERR_BAD_MESSAGE");
    expectProtocolError(() => parseServerMessage('{"type":"state","state":"offline","reason":5}'), "CC_ERR_BAD_MESSAGE");
    expectProtocolError(() => parseServerMessage("[1]"), "CC_ERR_BAD_MESSAGE");
    expectProtocolError(() => parseServerMessage('{"state":"live"}'), "CC_ERR_BAD_MESSAGE");
    expectProtocolError(() => parseServerMessage("not json"), "CC_ERR_BAD_JSON");
  });
});
