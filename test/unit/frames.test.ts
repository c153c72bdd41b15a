// GDP packets → VP8 frames (frames.ts), the VP8 frame tag (vp8.ts) and caps strings (caps.ts),
// on the real fixture and on packets built by hand.

import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { parseVideoCaps } from "../../server/source/caps.js";
import { FrameAssembler, type EncodedFrame, type FrameEvent } from "../../server/source/frames.js";
import { GdpParser, type GdpPacket } from "../../server/source/gdp.js";
import { isDisposableVp8Frame, parseVp8Frame } from "../../shared/vp8.js";
import { millis, nanos } from "../../shared/units.js";

const FIXTURE = new Uint8Array(
  readFileSync(new URL("../fixtures/videotestsrc-vp8-160x120.gdp", import.meta.url)),
);
const PACKETS = new GdpParser().push(FIXTURE);
type BufferPacket = Extract<GdpPacket, { type: "buffer" }>;
const BUFFERS = PACKETS.filter((p): p is BufferPacket => p.type === "buffer");

// GstBufferFlags, written out again.
const DISCONT = 0x40;
const HEADER = 0x400;
const GAP = 0x800;
const DELTA_UNIT = 0x2000;

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"));
/** A minimal VP8 keyframe start: frame tag (bit0 = 0), start code 9d 01 2a, 160 (0x00a0) × 120 (0x0078). */
const KEY_BYTES = hex("f0 36 00 9d 01 2a a0 00 78 00 11 22");
/** An interframe: frame tag bit0 = 1. */
const DELTA_BYTES = hex("f1 10 00 e4 71 8f");

function buffer(payload: Uint8Array, flags: number, pts: number | null): BufferPacket {
  return { type: "buffer", pts: pts === null ? null : nanos(pts), dts: null, duration: null, flags, payload };
}

const frames = (events: readonly FrameEvent[]): EncodedFrame[] =>
  events.flatMap((e) => (e.type === "frame" ? [e.frame] : []));
const warnings = (events: readonly FrameEvent[]): string[] =>
  events.flatMap((e) => (e.type === "warning" ? [e.code] : []));

describe("FrameAssembler on the fixture", () => {
  const receivedAt = millis(1_700_000_000_000);
  const assembler = new FrameAssembler();
  const events = PACKETS.flatMap((p) => assembler.accept(p, receivedAt));

  test("one caps event (VP8 160x120 at 30 fps), then 12 frames, no warnings", () => {
    expect(events.map((e) => e.type)).toEqual(["caps", ...Array<string>(12).fill("frame")]);
    expect(events[0]).toEqual({
      type: "caps",
      caps: { mediaType: "video/x-vp8", width: 160, height: 120, framerate: 30 },
    });
    expect(warnings(events)).toEqual([]);
  });

  test("keyframes at 0, 5, 10, and each agrees with the VP8 frame tag (first byte, bit 0 = 0)", () => {
    const fs = frames(events);
    expect(fs.map((f) => f.key)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map((n) => n % 5 === 0));
    fs.forEach((f, n) => {
      expect((f.data[0]! & 0x01) === 0, `frame ${n}`).toBe(f.key);
      expect((BUFFERS[n]!.flags & DELTA_UNIT) === 0, `frame ${n}`).toBe(f.key);
    });
  });

  test("PTS in microseconds (n/30 s), discont on the first frame only, data is the packet's payload", () => {
    frames(events).forEach((f, n) => {
      expect(f.pts, `frame ${n}`).toBe(Math.floor((n * 1e9) / 30) / 1000);
      expect(f.discont, `frame ${n}`).toBe(n === 0);
      expect(f.data).toBe(BUFFERS[n]!.payload);
      expect(f.receivedAt).toBe(receivedAt);
    });
    expect(frames(events)[3]!.pts).toBe(100_000);
  });
});

describe("FrameAssembler on hand-built packets", () => {
  const at = millis(5_000);

  test("DELTA_UNIT set on a VP8 keyframe → FRAME_WARN_KEY_MISMATCH, and the frame is a keyframe (the bitstream wins)", () => {
    const events = new FrameAssembler().accept(buffer(KEY_BYTES, DELTA_UNIT, 0), at);
    expect(events.map((e) => e.type)).toEqual(["warning", "frame"]);
    expect(warnings(events)).toEqual(["FRAME_WARN_KEY_MISMATCH"]);
    expect(frames(events)[0]!.key).toBe(true);
  });

  test("DELTA_UNIT clear on a VP8 interframe → FRAME_WARN_KEY_MISMATCH, and the frame is a delta", () => {
    const events = new FrameAssembler().accept(buffer(DELTA_BYTES, 0, 0), at);
    expect(warnings(events)).toEqual(["FRAME_WARN_KEY_MISMATCH"]);
    expect(frames(events)[0]!.key).toBe(false);
  });

  test("the fixture's delta frame with DELTA_UNIT cleared → mismatch, still a delta", () => {
    const delta = BUFFERS[1]!;
    const events = new FrameAssembler().accept({ ...delta, flags: delta.flags & ~DELTA_UNIT }, at);
    expect(warnings(events)).toEqual(["FRAME_WARN_KEY_MISMATCH"]);
    expect(frames(events)[0]!.key).toBe(false);
  });

  test("agreeing flags give no warning", () => {
    const a = new FrameAssembler();
    expect(a.accept(buffer(KEY_BYTES, 0, 0), at).map((e) => e.type)).toEqual(["frame"]);
    expect(a.accept(buffer(DELTA_BYTES, DELTA_UNIT, 33_333_333), at).map((e) => e.type)).toEqual(["frame"]);
  });

  test("HEADER and GAP buffers, and empty buffers, are skipped silently", () => {
    const a = new FrameAssembler();
    expect(a.accept(buffer(KEY_BYTES, HEADER, 0), at)).toEqual([]);
    expect(a.accept(buffer(KEY_BYTES, GAP, 0), at)).toEqual([]);
    expect(a.accept(buffer(new Uint8Array(0), 0, 0), at)).toEqual([]);
  });

  test("DISCONT sets discont", () => {
    const events = new FrameAssembler().accept(buffer(KEY_BYTES, DISCONT, 0), at);
    expect(frames(events)[0]!.discont).toBe(true);
  });

  test.each([
    ["text whose first byte has bit 0 = 0 and no start code", new TextEncoder().encode("hello, not vp8")],
    ["two bytes", hex("01 02")],
    ["a keyframe tag cut before the size", hex("f0 36 00 9d 01 2a a0 00 78")],
  ])("non-VP8 bytes (%s) → FRAME_WARN_BAD_FRAME and no frame", (_name, payload) => {
    const events = new FrameAssembler().accept(buffer(payload, 0, 0), at);
    expect(events).toHaveLength(1);
    expect(warnings(events)).toEqual(["FRAME_WARN_BAD_FRAME"]);
  });

  test("missing PTS → FRAME_WARN_NO_PTS and a strictly increasing PTS from the wall clock (µs)", () => {
    const a = new FrameAssembler();
    const got = [at, at, at, millis(4_000)].map((t) => a.accept(buffer(DELTA_BYTES, DELTA_UNIT, null), t));
    for (const events of got) expect(warnings(events)).toEqual(["FRAME_WARN_NO_PTS"]);
    const pts = got.map((events) => frames(events)[0]!.pts);
    expect(pts[0]).toBe(5_000_000); // 5000 ms in µs
    for (let i = 1; i < pts.length; i++) expect(pts[i]!).toBeGreaterThan(pts[i - 1]!);
  });

  test("missing PTS after a timestamped frame stays after it", () => {
    const a = new FrameAssembler();
    const first = frames(a.accept(buffer(KEY_BYTES, 0, 9_000_000_000_000), millis(1)))[0]!;
    expect(first.pts).toBe(9_000_000_000);
    const next = frames(a.accept(buffer(DELTA_BYTES, DELTA_UNIT, null), millis(1)))[0]!;
    expect(next.pts).toBeGreaterThan(first.pts);
  });

  test("caps that are not VP8 video → FRAME_WARN_BAD_CAPS; VP8 caps without the size yet and events → nothing", () => {
    const a = new FrameAssembler();
    const bad = a.accept({ type: "caps", caps: "video/x-h264, width=(int)160, height=(int)120" }, at);
    expect(warnings(bad)).toEqual(["FRAME_WARN_BAD_CAPS"]);
    expect(warnings(a.accept({ type: "caps", caps: "video/x-vp9, profile=(string)0" }, at))).toEqual(["FRAME_WARN_BAD_CAPS"]);
    // A parser's first caps, before it has read the size (h264parse before the SPS): later caps tell it.
    expect(a.accept({ type: "caps", caps: "video/x-vp8, profile=(string)0" }, at)).toEqual([]);
    expect(a.accept({ type: "event", eventType: 0x2806, structure: "GstEventEos;" }, at)).toEqual([]);
  });
});

/** The same 12 frames encoded with the server's two temporal layers (scripts/make-gdp-fixture.sh layers). */
const LAYERED = new GdpParser()
  .push(new Uint8Array(readFileSync(new URL("../fixtures/videotestsrc-vp8-layers-160x120.gdp", import.meta.url))))
  .filter((p): p is BufferPacket => p.type === "buffer");

describe("isDisposableVp8Frame", () => {
  const pattern = (buffers: readonly BufferPacket[]): string =>
    buffers.map((b) => (parseVp8Frame(b.payload)?.key === true ? "K" : isDisposableVp8Frame(b.payload) ? "d" : "b")).join("");

  test("two temporal layers: the odd frames by frame number update nothing; keyframes and even frames do", () => {
    // vp8enc applies the flags by frame number, through keyframes (frames 5 and 10 are keyframes).
    expect(pattern(LAYERED)).toBe("KdbdbKbdbdKd");
  });

  test("one layer: every interframe updates the last frame", () => {
    expect(pattern(BUFFERS)).toBe("KbbbbKbbbbKb");
  });

  test.each([
    ["empty", ""],
    ["a keyframe tag", "10 02 00 9d 01 2a"],
    ["an interframe tag and no header", "01 00 00"],
    ["a first partition cut short", "f1 10 00 e4"],
  ])("%s: not disposable", (_name, bytes) => {
    expect(isDisposableVp8Frame(hex(bytes))).toBe(false);
  });
});

describe("parseVp8Frame", () => {
  test("the fixture's first keyframe declares 160x120", () => {
    const key = BUFFERS[0]!.payload;
    // Bytes 3–5 are the start code, then 16-bit little-endian width and height.
    expect(Buffer.from(key.subarray(3, 10)).toString("hex")).toBe("9d012a" + "a000" + "7800");
    expect(parseVp8Frame(key)).toEqual({ key: true, width: 160, height: 120 });
    expect(parseVp8Frame(BUFFERS[5]!.payload)).toEqual({ key: true, width: 160, height: 120 });
  });

  test("the fixture's delta frames are interframes without a size", () => {
    expect(parseVp8Frame(BUFFERS[1]!.payload)).toEqual({ key: false });
  });

  test("hand-built frames: size, scaling bits masked off", () => {
    expect(parseVp8Frame(hex("10 02 00 9d 01 2a 80 02 e0 01"))).toEqual({ key: true, width: 640, height: 480 });
    // Top two bits of each 16-bit field are the scaling mode, not the size.
    expect(parseVp8Frame(hex("10 02 00 9d 01 2a 80 c2 e0 41"))).toEqual({ key: true, width: 640, height: 480 });
    expect(parseVp8Frame(hex("01 00 00"))).toEqual({ key: false });
  });

  test.each([
    ["empty", ""],
    ["one byte", "00"],
    ["two bytes", "01 00"],
    ["keyframe, 9 bytes", "10 02 00 9d 01 2a 80 02 e0"],
    ["keyframe without the start code", "10 02 00 9d 01 2b 80 02 e0 01"],
  ])("%s → null", (_name, bytes) => {
    expect(parseVp8Frame(hex(bytes))).toBeNull();
  });
});

describe("parseVideoCaps", () => {
  test("the fixture's real caps string", () => {
    const caps = PACKETS[1];
    expect(caps?.type).toBe("caps");
    expect(parseVideoCaps(caps?.type === "caps" ? caps.caps : "")).toEqual({
      mediaType: "video/x-vp8",
      width: 160,
      height: 120,
      framerate: 30,
    });
  });

  test("variable framerate 0/1 → 0; fractional rates divide", () => {
    expect(parseVideoCaps("video/x-raw, width=(int)640, height=(int)480, framerate=(fraction)0/1")).toEqual({
      mediaType: "video/x-raw",
      width: 640,
      height: 480,
      framerate: 0,
    });
    expect(parseVideoCaps("video/x-vp8, width=(int)640, height=(int)480, framerate=(fraction)30000/1001")?.framerate).toBeCloseTo(29.97, 2);
    expect(parseVideoCaps("video/x-vp8, width=(int)640, height=(int)480")?.framerate).toBe(0);
  });

  test("fields whose names end in width/height do not count", () => {
    expect(parseVideoCaps("video/x-vp8, max-width=(int)640, height=(int)480")).toBeNull();
    expect(parseVideoCaps("video/x-vp8, width=(int)320, max-width=(int)640, height=(int)240")).toMatchObject({ width: 320, height: 240 });
  });

  test("missing size → null", () => {
    expect(parseVideoCaps("video/x-vp8, framerate=(fraction)30/1")).toBeNull();
    expect(parseVideoCaps("")).toBeNull();
  });
});
