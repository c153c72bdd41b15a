// Recorder (server/record/recorder.ts) on a real StreamFanout fed the real VP8 fixture's frames,
// writing real segment files into a temp directory; every segment is decoded with GStreamer.
//
// The fixture is 12 VP8 frames at 30 fps, keyframes at 0, 5 and 10. It is published over and over
// with increasing pts: each repetition starts with its keyframe, so any run from a keyframe decodes.
// Time is explicit: `now` is the wall clock of both the fan-out (frames are stamped with it) and the
// recorder (retention), and moves one frame interval per frame published.

import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { createLogger } from "../../server/log.js";
import { Recorder, type RecorderOptions } from "../../server/record/recorder.js";
import type { RecordConfig } from "../../server/record/record-config.js";
import { SegmentReader } from "../../server/record/segment-reader.js";
import { FrameAssembler, type EncodedFrame } from "../../server/source/frames.js";
import { GdpParser } from "../../server/source/gdp.js";
import { StreamFanout } from "../../server/stream/fanout.js";
import { micros, millis } from "../../shared/units.js";
import { decodeSegment } from "../helpers/segment-decode.js";

const FIXTURE_FRAMES: readonly EncodedFrame[] = (() => {
  const bytes = new Uint8Array(readFileSync(new URL("../fixtures/videotestsrc-vp8-160x120.gdp", import.meta.url)));
  const assembler = new FrameAssembler();
  return new GdpParser().push(bytes).flatMap((p) => assembler.accept(p, millis(0))).flatMap((e) => (e.type === "frame" ? [e.frame] : []));
})();
const HOUR_MS = 3_600_000;
const FRAME_US = 1e6 / 30;
const quietLog = createLogger("error", { pretty: false, destination: { write: () => undefined } });

/** The fake wall clock, ms. */
let now = 0;

/** Publishes the fixture's frames in a loop: frame n has pts n frames on and is stamped `now`. */
class Feeder {
  n = 0;
  /** Added to every pts: time the camera sent nothing (gap()). */
  private offsetUs = 0;
  constructor(readonly fanout: StreamFanout) {}

  /** Publishes `count` frames synchronously (in one go: the recorder's writer runs only after). */
  publish(count: number): void {
    for (let i = 0; i < count; i++, this.n++) {
      now += 1000 / 30;
      const f = FIXTURE_FRAMES[this.n % FIXTURE_FRAMES.length]!;
      // The fixture's first frame is flagged discontinuity (the pipeline's start); a repetition goes on.
      this.fanout.publish({ ...f, discont: false, pts: micros(Math.round(this.n * FRAME_US) + this.offsetUs), receivedAt: millis(now) });
    }
  }

  /** `ms` pass with no frame, on the wall clock and the stream's time alike. */
  gap(ms: number): void {
    now += ms;
    this.offsetUs += ms * 1000;
  }
}

const dirs: string[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Setup {
  readonly dir: string;
  readonly fanout: StreamFanout;
  readonly feed: Feeder;
  readonly recorder: Recorder;
}

async function setup(retain: RecordConfig["retain"] = { hours: null, maxBytes: null }, options: Partial<RecorderOptions> = {}): Promise<Setup> {
  now = 1_800_000_000_000;
  const dir = mkdtempSync(join(tmpdir(), "cc-recorder-"));
  dirs.push(dir);
  const fanout = new StreamFanout("cam0", { width: 160, height: 120, framerate: 30 }, { statsIntervalMs: HOUR_MS, tickIntervalMs: HOUR_MS, clock: () => millis(now) });
  cleanups.push(() => fanout.close());
  fanout.setState("live");
  const recorder = await Recorder.start("cam0", { dir, segmentSeconds: 2, retain }, fanout, { log: quietLog, clock: () => now, ...options });
  cleanups.push(() => recorder.close());
  return { dir, fanout, feed: new Feeder(fanout), recorder };
}

interface Sidecar {
  readonly id: string;
  readonly status: string;
  readonly frames: number;
  readonly streamStartUs: number;
  readonly start: number;
  readonly end: number;
  readonly format: { readonly width: number; readonly height: number };
}

/** The segments on disk (media file and sidecar), oldest first; every media file has its sidecar and the other way round. */
function onDisk(dir: string): Sidecar[] {
  const names = readdirSync(dir).filter((n) => !n.endsWith(".tmp"));
  const media = names.filter((n) => n.endsWith(".webm")).map((n) => n.slice(0, -5)).sort();
  const sidecars = names.filter((n) => n.endsWith(".json")).map((n) => n.slice(0, -5)).sort();
  expect(sidecars).toEqual(media);
  return media.map((id) => JSON.parse(readFileSync(join(dir, `${id}.json`), "utf8")) as Sidecar);
}

/** Decodes a segment with gst: every frame the sidecar counts is a picture, and the first frame is a real VP8 keyframe. */
async function expectDecodes(dir: string, seg: Sidecar): Promise<void> {
  const path = join(dir, `${seg.id}.webm`);
  const decoded = await decodeSegment(path, "vp8");
  expect(decoded.problems, seg.id).toEqual([]);
  expect(decoded.exitCode, seg.id).toBe(0);
  expect(decoded.pts.length, `${seg.id}: every frame decodes`).toBe(seg.frames);
  const reader = await SegmentReader.open(path);
  try {
    const result = await reader.frames(0).next();
    const first = result.done === true ? undefined : result.value;
    expect(first?.key, seg.id).toBe(true);
    // The VP8 frame tag's bit 0 is 0 on a keyframe: the bitstream's word, not the container's.
    expect(first!.data[0]! & 0x01, seg.id).toBe(0);
  } finally {
    reader.close();
  }
}

describe("Recorder", () => {
  test("cuts a segment at the first keyframe after segmentSeconds; each decodes completely; close() finishes the open one and is safe twice", async () => {
    const { dir, feed, recorder } = await setup();
    // 192 frames: keyframes every 5 within each 12; frame 60 (2 s on) is the first keyframe 2 s in, then 120 and 180.
    feed.publish(192);
    await recorder.drained();
    expect(recorder.state).toBe("recording");
    const before = onDisk(dir);
    expect(before.map((s) => s.status)).toEqual(["finished", "finished", "finished", "open"]);
    await recorder.close();
    await recorder.close();
    const segments = onDisk(dir);
    expect(segments.map((s) => s.status)).toEqual(["finished", "finished", "finished", "finished"]);
    expect(segments.map((s) => s.frames)).toEqual([60, 60, 60, 12]);
    expect(segments.map((s) => s.streamStartUs)).toEqual([0, 60, 120, 180].map((n) => Math.round(n * FRAME_US)));
    for (const [i, seg] of segments.entries()) {
      await expectDecodes(dir, seg);
      if (i > 0) expect(seg.start, "segments follow on, never overlap").toBeGreaterThanOrEqual(segments[i - 1]!.end);
    }
    expect(recorder.framesDropped).toBe(0);
    expect(recorder.info()).toMatchObject({ segments: 4, framesDropped: 0 });
    // Closed: frames no longer reach it.
    feed.publish(24);
    expect(onDisk(dir)).toHaveLength(4);
  }, 60_000);

  test("retention by age on the injected clock: old segments and their sidecars go, newer ones and the open one stay", async () => {
    const { dir, feed, recorder } = await setup({ hours: 1, maxBytes: null });
    feed.publish(120); // [0–59] finished at the keyframe at 60; [60–119] open
    await recorder.drained();
    await recorder.applyRetention();
    expect(onDisk(dir)).toHaveLength(2);
    const old = onDisk(dir).map((s) => s.id);

    // Half an hour with no frames; then [60–119] is finished at the keyframe at 120 (2 s on), [120–179], [180–239], [240] open.
    feed.gap(HOUR_MS / 2);
    feed.publish(121);
    await recorder.drained();
    expect(onDisk(dir).map((s) => s.status)).toEqual(["finished", "finished", "finished", "finished", "open"]);
    // (An open segment's sidecar is written when it opens: the catalog has its count.)
    expect(recorder.catalog.list().map((e) => e.frames)).toEqual([60, 60, 60, 60, 1]);
    const newer = onDisk(dir).slice(2).map((s) => s.id);
    expect(newer).toHaveLength(3);

    // An hour and a bit after the first two ended; the others ended half an hour later, within the hour.
    now += HOUR_MS / 2 + 60_000;
    await recorder.applyRetention();
    expect(onDisk(dir).map((s) => s.id)).toEqual(newer);
    for (const id of old) expect(readdirSync(dir).filter((n) => n.startsWith(id)), id).toEqual([]);
    expect(recorder.catalog.list().map((e) => e.id)).toEqual(newer);
    // The open segment is never deleted, however long ago it started.
    now += 10 * HOUR_MS;
    await recorder.applyRetention();
    expect(onDisk(dir).map((s) => s.status)).toEqual(["open"]);
  }, 60_000);

  test("a queue over maxQueuedBytes drops frames and cuts the segment; every segment on disk starts at a keyframe and decodes; recording resumes at a keyframe", async () => {
    const threeFrames = FIXTURE_FRAMES.slice(0, 3).reduce((s, f) => s + f.data.byteLength, 0);
    const { dir, feed, recorder } = await setup(undefined, { maxQueuedBytes: threeFrames });
    // In one go: the writer cannot take any before the burst ends. (Frame 120, a keyframe, is dropped too.)
    feed.publish(121);
    expect(recorder.framesDropped).toBeGreaterThan(0);
    await recorder.drained();
    const cut = onDisk(dir);
    expect(cut.length).toBeGreaterThanOrEqual(1);
    // What fit in the queue: the keyframe and the two frames after it.
    expect(cut[0]!.frames).toBe(3);
    for (const seg of cut) await expectDecodes(dir, seg);

    // A writer that keeps up (each frame written before the next comes: drained()): nothing more is
    // dropped, and the deltas 121–124 are not recorded: the next segment starts at the keyframe at 125.
    const dropped = recorder.framesDropped;
    const cutIds = cut.map((s) => s.id);
    for (let i = 1; i <= 30; i++) {
      feed.publish(1);
      await recorder.drained();
      const last = recorder.catalog.list().at(-1)!;
      if (i <= 4) expect(cutIds).toContain(last.id);
      else expect([cutIds.includes(last.id), last.frames]).toEqual([false, i - 4]);
    }
    await recorder.close();
    expect(recorder.framesDropped).toBe(dropped);
    const all = onDisk(dir);
    expect(all.length).toBe(cut.length + 1);
    expect(all.at(-1)!.frames).toBe(26);
    expect(all.at(-1)!.streamStartUs).toBe(Math.round(125 * FRAME_US));
    for (const seg of all) await expectDecodes(dir, seg);
  }, 60_000);

  test("a change of the stream's size starts a new segment at the next keyframe, of the new format", async () => {
    const { dir, fanout, feed, recorder } = await setup();
    feed.publish(7); // keyframes at 0 and 5
    fanout.setVideoInfo({ width: 320, height: 240, framerate: 30 });
    // Frames 7–9 are deltas of the old format: the fan-out passes on none until the keyframe at 10.
    feed.publish(17);
    await recorder.close();
    const segments = onDisk(dir);
    expect(segments.map((s) => [s.frames, s.format.width, s.format.height])).toEqual([
      [7, 160, 120],
      [14, 320, 240],
    ]);
    expect(segments[1]!.streamStartUs).toBe(Math.round(10 * FRAME_US));
    for (const seg of segments) await expectDecodes(dir, seg);
  }, 60_000);

  test("a stream that stops being live finishes the open segment; when it is live again a new one starts at its keyframe", async () => {
    const { dir, fanout, feed, recorder } = await setup();
    feed.publish(40);
    await recorder.drained();
    fanout.setState("restarting", "pipeline exited", 1000);
    await recorder.drained();
    const [stopped] = onDisk(dir);
    expect(onDisk(dir)).toHaveLength(1);
    expect(stopped).toMatchObject({ status: "finished", frames: 40 });
    expect(recorder.state).toBe("waiting");

    fanout.setState("live");
    // A restarted pipeline counts from a keyframe again: the fixture from its start.
    feed.n = 0;
    feed.publish(24);
    await recorder.close();
    const segments = onDisk(dir);
    expect(segments.map((s) => s.frames)).toEqual([40, 24]);
    // The stream's time goes on one frame after the last before the restart.
    expect(segments[1]!.streamStartUs).toBe(Math.round(39 * FRAME_US + FRAME_US));
    expect(segments[1]!.start).toBeGreaterThanOrEqual(segments[0]!.end);
    for (const seg of segments) await expectDecodes(dir, seg);
  }, 60_000);
});
