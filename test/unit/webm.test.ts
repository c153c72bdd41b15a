// The WebM muxer and the fan-out's /webm/ output, read back by ts-ebml (an independent EBML
// parser): element order, unknown sizes, clusters that start with keyframes, timecodes that never
// go back, start at 0 for every viewer — whenever it joins — and have no holes, across pipeline
// restarts and skips. The fan-out runs on a fake clock; the fake sockets answer its probes (pings)
// as a browser does, when the test says so.

import { readFileSync } from "node:fs";
import { afterEach, describe, expect, test } from "vitest";
import { FrameAssembler, type EncodedFrame } from "../../server/source/frames.js";
import { GdpParser } from "../../server/source/gdp.js";
import { StreamFanout } from "../../server/stream/fanout.js";
import type { Viewer, ViewerSocket } from "../../server/stream/viewer.js";
import { clusterStart, initSegment, simpleBlockHeader, vintSize } from "../../server/stream/webm.js";
import type { WireMessage } from "../../server/stream/wire-message.js";
import { nextSeq } from "../../shared/protocol.js";
import { micros, millis } from "../../shared/units.js";
import { mulberry32 } from "../helpers/random.js";
import { expectValidLiveWebm, readWebm } from "../helpers/webm-reader.js";

const OPEN = 1;
const CLOSED = 3;
/** WebSocket opcode byte of an unfragmented ping (FIN + 9). */
const PING_OPCODE = 0x89;
const FORMAT_CHANGED = 4409;
/** One frame on a viewer's timeline at 30 fps, ms (where it goes on after a skip). */
const FRAME_MS = 33;

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

/** A socket that keeps each message as the browser receives it, and the pings it got. */
class FakeSocket implements ViewerSocket {
  readyState = OPEN;
  bufferedAmount = 0;
  viewer: Viewer | null = null;
  readonly binary: Uint8Array[] = [];
  readonly text: Record<string, unknown>[] = [];
  /** Ping payloads, with the fake time each came, and how many were answered. */
  readonly pings: { readonly payload: Uint8Array; readonly at: number }[] = [];
  answered = 0;
  readonly closes: { code: number | undefined; reason: string | undefined }[] = [];

  send(text: string): void {
    this.text.push(JSON.parse(text) as Record<string, unknown>);
  }

  sendWire(message: WireMessage, ping?: WireMessage): void {
    for (const wire of ping === undefined ? [message] : [message, ping]) {
      if (wire.parts[0]![0] === PING_OPCODE) this.pings.push({ payload: wire.payload(), at: now });
      else this.binary.push(wire.payload());
    }
  }

  close(code?: number, reason?: string): void {
    this.closes.push({ code, reason });
    this.readyState = CLOSED;
  }

  bytes(): Uint8Array {
    return Buffer.concat(this.binary);
  }
}

/** The fake clock the fan-out reads, ms. It moves one frame per frame fed. */
let now = 1e12;

const fanouts: StreamFanout[] = [];
afterEach(() => fanouts.splice(0).forEach((f) => f.close()));

function makeFanout(): StreamFanout {
  const f = new StreamFanout("cam0", { width: 160, height: 120, framerate: 30 }, { clock: () => millis(now), tickIntervalMs: 3_600_000, statsIntervalMs: 3_600_000 });
  fanouts.push(f);
  return f;
}

function join(f: StreamFanout, meta = false): FakeSocket {
  const s = new FakeSocket();
  s.viewer = f.addViewer(s, "webm", "", meta);
  return s;
}

/** Pongs, as the browser sends them: every ping at least `ageMs` old not answered yet. */
function answer(f: StreamFanout, s: FakeSocket, ageMs = 0): void {
  for (; s.answered < s.pings.length && s.pings[s.answered]!.at <= now - ageMs; s.answered++) {
    f.onPong(s.viewer!, s.pings[s.answered]!.payload);
  }
}

/**
 * Feeds `count` frames, looping over the fixture with PTS continuing from `state.ptsUs`; the clock
 * moves a frame each time. After each frame `each` runs (the tests' viewers answer there).
 */
function feed(f: StreamFanout, count: number, state: { ptsUs: number; i: number }, each?: (n: number) => void): void {
  for (let n = 0; n < count; n++) {
    const src = FIXTURE_FRAMES[state.i % FIXTURE_FRAMES.length]!;
    now += FRAME_US / 1000;
    f.publish({ ...src, pts: micros(state.ptsUs), receivedAt: millis(now) });
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

describe("StreamFanout /webm/ output", () => {
  test("a viewer from the start gets init, then one cluster per GOP, timeline from 0", () => {
    const f = makeFanout();
    const s = join(f);
    feed(f, 36, { ptsUs: 5_000_000, i: 0 }, () => answer(f, s));
    const parsed = readWebm(s.bytes());
    expectValidLiveWebm(parsed);
    expect(parsed.width).toBe(160);
    // Keyframes every 5 frames, then 2 more at 10 (the fixture's 12-frame loop): clusters of 5, 5, 2, …
    expect(parsed.clusters.map((c) => c.blocks.length).slice(0, 3)).toEqual([5, 5, 2]);
    expect(parsed.clusters.flatMap((c) => c.blocks).length).toBe(36);
    // PTS started at 5 s, but the viewer's timeline starts at 0.
    expect(parsed.clusters[1]!.timestamp).toBe(167);
    expect(s.viewer!.skipped).toEqual({ lagging: 0, "buffer-full": 0 });
  });

  test("a joiner at any point starts with the current GOP as a cluster at 0, then follows live once it has read it", () => {
    const f = makeFanout();
    const state = { ptsUs: 0, i: 0 };
    const joiners: FakeSocket[] = [];
    feed(f, 40, state, () => {
      for (const s of joiners) answer(f, s);
      joiners.push(join(f));
    });
    for (const [n, s] of joiners.entries()) {
      const parsed = readWebm(s.bytes());
      expectValidLiveWebm(parsed);
      // Every frame published after it joined, and its GOP before, arrived: nothing partial.
      const total = parsed.clusters.reduce((k, c) => k + c.blocks.length, 0);
      expect(total, `joiner after frame ${n}`).toBeGreaterThanOrEqual(40 - n - 1);
      expect(s.viewer!.skipped, `joiner after frame ${n}`).toEqual({ lagging: 0, "buffer-full": 0 });
    }
  });

  test("a pipeline restart keeps the timeline monotonic: the new pipeline continues one frame after the last", () => {
    const f = makeFanout();
    const s = join(f);
    feed(f, 17, { ptsUs: 9_000_000, i: 0 }, () => answer(f, s));
    f.setState("restarting", "gst exited", 500);
    f.setState("live");
    // The new pipeline's PTS starts from 0 again.
    feed(f, 12, { ptsUs: 0, i: 0 }, () => answer(f, s));
    const parsed = readWebm(s.bytes());
    expectValidLiveWebm(parsed);
    const times = parsed.clusters.flatMap((c) => c.blocks.map((b) => b.time));
    expect(times).toHaveLength(29);
    // The new pipeline's first keyframe starts a cluster one frame (33.3 ms, to the ms) after the old pipeline's last frame.
    const restart = parsed.clusters.find((c) => c.timestamp === times[17]);
    expect(restart).toBeDefined();
    expect(times[17]! - times[16]!).toBeGreaterThanOrEqual(33);
    expect(times[17]! - times[16]!).toBeLessThanOrEqual(34);
  });

  test("a slow viewer is skipped by its measured lag, mid-cluster too; after each skip its next cluster goes on one frame after the last frame it got", () => {
    const f = makeFanout();
    const slow = join(f, true);
    const rand = mulberry32(7);
    // Its pongs come at once for a while, then 0.8 s late for a while (past maxLagMs: 500).
    let delay = 0;
    feed(f, 600, { ptsUs: 0, i: 0 }, (n) => {
      if (n % 30 === 0) delay = rand() < 0.5 ? 0 : 800;
      answer(f, slow, delay);
    });
    const parsed = readWebm(slow.bytes());
    expectValidLiveWebm(parsed);
    const skipped = f.viewerInfos()[0]!.skipped;
    expect(skipped.lagging).toBeGreaterThan(0);
    expect(f.skipped("webm")).toEqual(skipped);
    // What the viewer got, frame by frame (meta), matches its blocks.
    const frames = slow.text.filter((t) => t.type === "frame") as unknown as { seq: number; key: boolean; mediaTimeMs: number }[];
    const blocks = parsed.clusters.flatMap((c) => c.blocks);
    expect(blocks.map((b) => b.time)).toEqual(frames.map((m) => m.mediaTimeMs));
    let gaps = 0;
    let partial = 0;
    for (let i = 1; i < frames.length; i++) {
      const [prev, cur] = [frames[i - 1]!, frames[i]!];
      if (cur.seq === nextSeq(prev.seq)) continue;
      // A frame was not sent: the next one is a keyframe, one frame after the last on the timeline.
      gaps++;
      expect(cur.key, `frame ${cur.seq} after ${prev.seq}`).toBe(true);
      expect(cur.mediaTimeMs - prev.mediaTimeMs, `frame ${cur.seq} after ${prev.seq}`).toBe(FRAME_MS);
      // The first frame it missed was a delta (frame n is the fixture's n % 12): its cluster was cut short.
      if (FIXTURE_FRAMES[(prev.seq + 1) % FIXTURE_FRAMES.length]!.key === false) partial++;
    }
    expect(gaps).toBeGreaterThan(0);
    expect(partial).toBeGreaterThan(0);
    // No holes anywhere: each cluster starts a frame (33.3 ms, to the ms) after the last block before it.
    for (let i = 1; i < parsed.clusters.length; i++) {
      const step = parsed.clusters[i]!.timestamp - parsed.clusters[i - 1]!.blocks.at(-1)!.time;
      expect(step, `cluster ${i}`).toBeGreaterThanOrEqual(33);
      expect(step, `cluster ${i}`).toBeLessThanOrEqual(34);
    }
  });

  test("a viewer whose queue is over the limit skips too, and continues its timeline without a hole", () => {
    const f = makeFanout();
    const s = join(f, true);
    // The fixture's keyframes are at 0, 5, 10, then 12, 17, 22, … (a 12-frame loop).
    feed(f, 13, { ptsUs: 0, i: 0 }, () => answer(f, s)); // 0..12
    s.bufferedAmount = 3 * 1024 * 1024;
    feed(f, 6, { ptsUs: 13 * FRAME_US, i: 13 }, () => answer(f, s)); // 13..18 skipped, keyframe 17 too
    s.bufferedAmount = 0;
    feed(f, 8, { ptsUs: 19 * FRAME_US, i: 19 }, () => answer(f, s)); // 19..21 skipped; 22 (a keyframe) resumes
    const frames = s.text.filter((t) => t.type === "frame").map((t) => [t.seq, t.mediaTimeMs]);
    expect(frames.slice(11, 14)).toEqual([
      [11, 367],
      [12, 400],
      [22, 433],
    ]);
    expect(f.viewerInfos()[0]!.skipped).toEqual({ lagging: 0, "buffer-full": 9 });
    expectValidLiveWebm(readWebm(s.bytes()));
  });

  test("a new picture size closes viewers with 4409 so they reconnect for a new init segment", () => {
    const f = makeFanout();
    const s = join(f);
    feed(f, 6, { ptsUs: 0, i: 0 }, () => answer(f, s));
    f.setVideoInfo({ width: 160, height: 120, framerate: 30 }); // same: nothing happens
    expect(s.closes).toEqual([]);
    f.setVideoInfo({ width: 320, height: 240, framerate: 30 });
    expect(s.closes[0]?.code).toBe(FORMAT_CHANGED);
    expect(f.viewerCount()).toBe(0);
    const next = join(f);
    expect(readWebm(next.bytes()).width).toBe(320);
  });

  test("meta viewers get hello, state, and before each frame its media time and server time", () => {
    const f = makeFanout();
    feed(f, 7, { ptsUs: 0, i: 0 });
    const s = join(f, true);
    feed(f, 3, { ptsUs: 7 * FRAME_US, i: 7 }, () => answer(f, s));
    expect(s.text[0]).toMatchObject({ type: "hello", width: 160, height: 120, codec: "vp8" });
    expect(s.text[1]).toMatchObject({ type: "state", state: "starting" });
    const frames = s.text.filter((t) => t.type === "frame");
    expect(frames.map((m) => m.seq)).toEqual([5, 6, 7, 8, 9]);
    expect(frames[0]).toMatchObject({ mediaTimeMs: 0, key: true });
    expect(frames.at(-1)).toMatchObject({ serverTime: now });
    const parsed = readWebm(s.bytes());
    expect(parsed.clusters.flatMap((c) => c.blocks.map((b) => b.time))).toEqual(frames.map((m) => m.mediaTimeMs));
  });

  test("close() closes viewers with 1001 and is safe twice; later viewers are refused", () => {
    const f = makeFanout();
    const s = join(f);
    f.close();
    f.close();
    expect(s.closes).toEqual([{ code: 1001, reason: "server shutting down" }]);
    const late = join(f);
    expect(late.closes[0]?.code).toBe(1001);
  });
});
