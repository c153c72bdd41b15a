// The WebM muxer and fan-out, read back by ts-ebml (an independent EBML parser): element order,
// unknown sizes, clusters that start with keyframes, timecodes that never go back and start at 0
// for every viewer — whenever it joins, across pipeline restarts and cluster skips.

import { readFileSync } from "node:fs";
import { afterEach, describe, expect, test } from "vitest";
import { FrameAssembler, type EncodedFrame } from "../../server/source/frames.js";
import { GdpParser } from "../../server/source/gdp.js";
import { clusterStart, initSegment, simpleBlockHeader, vintSize } from "../../server/stream/webm.js";
import type { WireMessage } from "../../server/stream/wire-message.js";
import { WebmFanout, type WebmSocket } from "../../server/stream/webm-fanout.js";
import { micros, millis } from "../../shared/units.js";
import { mulberry32 } from "../helpers/random.js";
import { expectValidLiveWebm, readWebm } from "../helpers/webm-reader.js";

const OPEN = 1;
const CLOSED = 3;

/** Real VP8 frames: the fixture's 12 (keyframes at 0, 5 and 10). */
const FIXTURE_FRAMES: EncodedFrame[] = (() => {
  const bytes = new Uint8Array(readFileSync(new URL("../fixtures/videotestsrc-vp8-160x120.gdp", import.meta.url)));
  const assembler = new FrameAssembler();
  return new GdpParser()
    .push(bytes)
    .flatMap((p) => assembler.accept(p, millis(0)))
    .flatMap((e) => (e.type === "frame" ? [e.frame] : []));
})();
const FRAME_US = 1_000_000 / 30;

/** A socket that keeps each message as the browser receives it. */
class FakeSocket implements WebmSocket {
  readyState = OPEN;
  bufferedAmount = 0;
  readonly binary: Uint8Array[] = [];
  readonly text: Record<string, unknown>[] = [];
  readonly closes: { code: number | undefined; reason: string | undefined }[] = [];

  send(text: string): void {
    this.text.push(JSON.parse(text) as Record<string, unknown>);
  }

  sendWire(message: WireMessage): void {
    this.binary.push(message.payload());
  }

  close(code?: number, reason?: string): void {
    this.closes.push({ code, reason });
    this.readyState = CLOSED;
  }

  bytes(): Uint8Array {
    return Buffer.concat(this.binary);
  }
}

const fanouts: WebmFanout[] = [];
afterEach(() => fanouts.splice(0).forEach((f) => f.close()));

function makeFanout(): WebmFanout {
  const f = new WebmFanout("cam0", { width: 160, height: 120, framerate: 30 }, { tickIntervalMs: 1e9 });
  fanouts.push(f);
  return f;
}

/** Feeds `count` frames, looping over the fixture with PTS continuing from `startUs`. */
function feed(f: WebmFanout, count: number, state: { seq: number; ptsUs: number; i: number }, each?: (n: number) => void): void {
  for (let n = 0; n < count; n++) {
    const src = FIXTURE_FRAMES[state.i % FIXTURE_FRAMES.length]!;
    f.publish({ ...src, pts: micros(state.ptsUs), receivedAt: millis(1e12 + state.ptsUs / 1000) }, state.seq++);
    state.ptsUs += FRAME_US;
    state.i++;
    each?.(n);
  }
}

describe("EBML primitives", () => {
  test("sizes use the shortest vint; the all-ones value is left for 'unknown'", () => {
    expect([...vintSize(0)]).toEqual([0x80]);
    expect([...vintSize(126)]).toEqual([0xfe]);
    expect([...vintSize(127)]).toEqual([0x40, 0x7f]); // 0xff would mean unknown
    expect([...vintSize(300)]).toEqual([0x41, 0x2c]);
  });

  test("a cluster start is ID 1F43B675, an 8-byte unknown size, then Timecode (E7)", () => {
    expect([...clusterStart(258)]).toEqual([0x1f, 0x43, 0xb6, 0x75, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xe7, 0x82, 0x01, 0x02]);
  });

  test("a SimpleBlock is A3, size, track 1, int16 timecode, flags, frame", () => {
    // The header counts the frame that follows it in the size (0x86 = 6: 4 header bytes + 2 frame bytes).
    expect([...simpleBlockHeader(-2, true, 2), 9, 9]).toEqual([0xa3, 0x86, 0x81, 0xff, 0xfe, 0x80, 9, 9]);
    expect(() => simpleBlockHeader(40_000, false, 1)).toThrow(RangeError);
  });

  test("the init segment parses, with the track's size and no duration", () => {
    const parsed = readWebm(initSegment({ width: 640, height: 480, framerate: 30 }));
    expect(parsed).toMatchObject({ order: ["EBML", "Segment?", "Info", "Tracks"], width: 640, height: 480, docType: "webm" });
  });
});

describe("WebmFanout", () => {
  test("a viewer from the start gets init, then one cluster per GOP, timeline from 0", () => {
    const f = makeFanout();
    const s = new FakeSocket();
    f.addViewer(s, false);
    feed(f, 36, { seq: 0, ptsUs: 5_000_000, i: 0 });
    const parsed = readWebm(s.bytes());
    expectValidLiveWebm(parsed);
    expect(parsed.width).toBe(160);
    // Keyframes every 5 frames, then 2 more at 10 (the fixture's 12-frame loop): clusters of 5, 5, 2, …
    expect(parsed.clusters.map((c) => c.blocks.length).slice(0, 3)).toEqual([5, 5, 2]);
    expect(parsed.clusters.flatMap((c) => c.blocks).length).toBe(36);
    // PTS started at 5 s, but the viewer's timeline starts at 0.
    expect(parsed.clusters[1]!.timestamp).toBe(167);
  });

  test("a joiner at any point starts with the current GOP as a cluster at 0, then follows live", () => {
    const f = makeFanout();
    const state = { seq: 0, ptsUs: 0, i: 0 };
    const joiners: FakeSocket[] = [];
    feed(f, 40, state, () => {
      const s = new FakeSocket();
      f.addViewer(s, false);
      joiners.push(s);
    });
    for (const [n, s] of joiners.entries()) {
      const parsed = readWebm(s.bytes());
      expectValidLiveWebm(parsed);
      // Every frame published after it joined, and its GOP before, arrived: nothing partial.
      const total = parsed.clusters.reduce((k, c) => k + c.blocks.length, 0);
      expect(total, `joiner after frame ${n}`).toBeGreaterThanOrEqual(40 - n - 1);
    }
  });

  test("a pipeline restart keeps the timeline monotonic: the new pipeline continues one frame after the last", () => {
    const f = makeFanout();
    const s = new FakeSocket();
    f.addViewer(s, false);
    feed(f, 17, { seq: 0, ptsUs: 9_000_000, i: 0 });
    f.setState("restarting", "gst exited", 500);
    f.setState("live");
    // The new pipeline's PTS starts from 0 again.
    feed(f, 12, { seq: 17, ptsUs: 0, i: 0 });
    const parsed = readWebm(s.bytes());
    expectValidLiveWebm(parsed);
    const times = parsed.clusters.flatMap((c) => c.blocks.map((b) => b.time));
    expect(times).toHaveLength(29);
    // The new pipeline's first keyframe starts a cluster one frame (33 ms) after the old pipeline's last frame.
    const restart = parsed.clusters.find((c) => c.timestamp === times[17]);
    expect(restart).toBeDefined();
    expect(times[17]! - times[16]!).toBe(33);
  });

  test("a slow viewer skips whole clusters, never part of one", () => {
    const f = makeFanout();
    const slow = new FakeSocket();
    f.addViewer(slow, false);
    const rand = mulberry32(7);
    feed(f, 120, { seq: 0, ptsUs: 0, i: 0 }, () => {
      slow.bufferedAmount = rand() < 0.4 ? 3 * 1024 * 1024 : 0;
    });
    const parsed = readWebm(slow.bytes());
    expectValidLiveWebm(parsed);
    // Every cluster it got is complete: the fixture's GOPs are 5, 5, 2 frames long.
    for (const c of parsed.clusters.slice(0, -1)) expect([5, 2]).toContain(c.blocks.length);
    expect(parsed.clusters.length).toBeLessThan(30);
    expect(f.viewerInfos()[0]!.skipped["buffer-full"]).toBeGreaterThan(0);
  });

  test("a new picture size closes viewers with 4409 so they reconnect for a new init segment", () => {
    const f = makeFanout();
    const s = new FakeSocket();
    f.addViewer(s, false);
    feed(f, 6, { seq: 0, ptsUs: 0, i: 0 });
    f.setVideoInfo({ width: 160, height: 120, framerate: 30 }); // same: nothing happens
    expect(s.closes).toEqual([]);
    f.setVideoInfo({ width: 320, height: 240, framerate: 30 });
    expect(s.closes[0]?.code).toBe(4409);
    expect(f.viewerCount).toBe(0);
    const next = new FakeSocket();
    f.addViewer(next, false);
    expect(readWebm(next.bytes()).width).toBe(320);
  });

  test("meta viewers get hello, state, and before each frame its media time and server time", () => {
    const f = makeFanout();
    const s = new FakeSocket();
    feed(f, 7, { seq: 0, ptsUs: 0, i: 0 });
    f.addViewer(s, true);
    feed(f, 3, { seq: 7, ptsUs: 7 * FRAME_US, i: 7 });
    expect(s.text[0]).toMatchObject({ type: "hello", width: 160, height: 120, codec: "vp8" });
    expect(s.text[1]).toMatchObject({ type: "state", state: "starting" });
    const frames = s.text.filter((t) => t.type === "frame");
    expect(frames.map((m) => m.seq)).toEqual([5, 6, 7, 8, 9]);
    expect(frames[0]).toMatchObject({ mediaTimeMs: 0, key: true });
    const parsed = readWebm(s.bytes());
    expect(parsed.clusters.flatMap((c) => c.blocks.map((b) => b.time))).toEqual(frames.map((m) => m.mediaTimeMs));
  });

  test("close() closes viewers with 1001 and is safe twice; later viewers are refused", () => {
    const f = makeFanout();
    const s = new FakeSocket();
    f.addViewer(s, false);
    f.close();
    f.close();
    expect(s.closes).toEqual([{ code: 1001, reason: "server shutting down" }]);
    const late = new FakeSocket();
    f.addViewer(late, false);
    expect(late.closes[0]?.code).toBe(1001);
  });
});
