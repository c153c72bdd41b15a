// LiveEdge (web/player/live-edge.ts), the MSE player's live-edge controller, against a plain
// object standing in for the <video>: it only decides (seek, rate, stall); the test applies.

import { describe, expect, test } from "vitest";
import type { LiveEdgeInput, LiveVideo } from "../../web/player/live-edge.js";
import { LiveEdge, SEEK_STUCK_MS, STALL_MS } from "../../web/player/live-edge.js";

/** TimeRanges from [start, end] pairs, in order. */
class FakeTimeRanges implements TimeRanges {
  constructor(readonly ranges: readonly (readonly [number, number])[]) {}
  get length(): number {
    return this.ranges.length;
  }
  start(index: number): number {
    return this.#at(index)[0];
  }
  end(index: number): number {
    return this.#at(index)[1];
  }
  #at(index: number): readonly [number, number] {
    const range = this.ranges[index];
    // Like the browser's: an index out of range throws (IndexSizeError).
    if (range === undefined) throw new DOMException(`index ${index} out of range`, "IndexSizeError");
    return range;
  }
}

type FakeVideo = { -readonly [K in keyof LiveVideo]: LiveVideo[K] };

function fakeVideo(ranges: readonly (readonly [number, number])[], currentTime: number, more: Partial<FakeVideo> = {}): FakeVideo {
  return {
    buffered: new FakeTimeRanges(ranges),
    currentTime,
    readyState: 4, // HAVE_ENOUGH_DATA
    seeking: false,
    paused: false,
    ended: false,
    playbackRate: 1,
    ...more,
  };
}

const input = (now: number, more: Partial<LiveEdgeInput> = {}): LiveEdgeInput => ({ now, queued: 0, hidden: false, ...more });

/** A controller that has made its join decision (the playhead at the live edge). */
function joined(video: FakeVideo, liveSync = true): LiveEdge {
  const edge = new LiveEdge(video, 0, liveSync);
  const decision = edge.tick(video, input(0));
  if (decision.seekTo !== undefined) video.currentTime = decision.seekTo;
  return edge;
}

describe("LiveEdge", () => {
  test("decides nothing while nothing is buffered or before metadata", () => {
    const video = fakeVideo([], 0);
    const edge = new LiveEdge(video, 0, true);
    expect(edge.tick(video, input(100))).toEqual({ behindMs: null });
    video.buffered = new FakeTimeRanges([[0, 3]]);
    video.readyState = 0;
    expect(edge.tick(video, input(200))).toEqual({ behindMs: null });
  });

  test("join: waits while the join burst is still being appended, then seeks near the newest media", () => {
    const video = fakeVideo([[0, 1]], 0);
    const edge = new LiveEdge(video, 0, true);
    expect(edge.tick(video, input(100, { queued: 3 }))).toEqual({ behindMs: 1000 });
    video.buffered = new FakeTimeRanges([[0, 2]]);
    const decision = edge.tick(video, input(200));
    expect(decision.seekTo).toBeCloseTo(1.9, 9);
    expect(decision.behindMs).toBeCloseTo(2000, 6);
    // The rate is for where the playhead lands (0.1 s behind), not where it was: no catch-up.
    expect(decision.rate).toBeUndefined();
    expect(edge.liveFrom).toBeCloseTo(1.9, 9);
    // Joined once: landing there decides nothing more.
    video.currentTime = 1.9;
    expect(edge.tick(video, input(300))).toEqual({ behindMs: expect.closeTo(100, 6) as number });
  });

  test("join: already near the newest media, no seek; a last range shorter than the target lands at its start", () => {
    const near = fakeVideo([[0, 1]], 0.85);
    const edge = new LiveEdge(near, 0, true);
    expect(edge.tick(near, input(0)).seekTo).toBeUndefined();
    expect(edge.liveFrom).toBeCloseTo(0.9, 9);

    const video = fakeVideo(
      [
        [0, 1],
        [5, 5.04],
      ],
      0,
    );
    const later = new LiveEdge(video, 0, true);
    expect(later.tick(video, input(0)).seekTo).toBe(5);
  });

  test("catch-up rates: 1.1 / 1.25 / 1.5 with distance, held until back within 0.12 s, then 1", () => {
    const video = fakeVideo([[0, 10]], 9.9);
    const edge = joined(video);
    const rateAt = (behind: number, now: number): number | undefined => {
      video.currentTime = 10 - behind;
      const decision = edge.tick(video, input(now));
      if (decision.rate !== undefined) video.playbackRate = decision.rate;
      expect(decision.seekTo).toBeUndefined();
      return decision.rate;
    };
    expect(rateAt(0.2, 100)).toBeUndefined(); // below nudgeAbove at rate 1: nothing
    expect(rateAt(0.3, 200)).toBe(1.1);
    expect(rateAt(0.6, 300)).toBe(1.25);
    expect(rateAt(0.9, 400)).toBe(1.5);
    expect(rateAt(0.7, 500)).toBe(1.25);
    // Hysteresis: between 0.12 and 0.25 s the faster rate stays.
    expect(rateAt(0.2, 600)).toBeUndefined();
    expect(video.playbackRate).toBe(1.25);
    expect(rateAt(0.13, 700)).toBeUndefined();
    expect(rateAt(0.11, 800)).toBe(1);
    expect(rateAt(0.2, 900)).toBeUndefined();
    expect(video.playbackRate).toBe(1);
  });

  test("more than 1.5 s behind: seeks back to 0.1 s from the newest media, at rate 1", () => {
    const video = fakeVideo([[0, 10]], 9.9);
    const edge = joined(video);
    video.playbackRate = 1.5;
    video.currentTime = 8.4; // 1.6 s behind
    const decision = edge.tick(video, input(100));
    expect(decision.seekTo).toBeCloseTo(9.9, 9);
    expect(decision.rate).toBe(1);
    video.currentTime = 8.6; // 1.4 s: rates, no seek
    expect(edge.tick(video, input(200)).seekTo).toBeUndefined();
  });

  test("gap: a playhead at the end of a range with a successor jumps to the next range", () => {
    const ranges: [number, number][] = [
      [0, 5],
      [5.3, 6],
    ];
    for (const liveSync of [false, true]) {
      const video = fakeVideo(ranges, 4.0);
      const edge = new LiveEdge(video, 0, liveSync);
      if (liveSync) edge.tick(video, input(0, { queued: 1 })); // not joined yet: still appending
      video.currentTime = 4.9; // 0.1 s before the gap: plays on
      const before = edge.tick(video, input(100));
      if (liveSync) {
        // The join decision: 1.1 s behind the newest media, so it seeks to the live edge.
        expect(before.seekTo).toBeCloseTo(5.9, 9);
        video.currentTime = 4.9;
      } else expect(before.seekTo).toBeUndefined();
      video.currentTime = 4.97;
      expect(edge.tick(video, input(200)).seekTo).toBe(5.3);
    }
    // The last range has no successor: nothing to jump to.
    const video = fakeVideo([[0, 5]], 4.97);
    const edge = new LiveEdge(video, 0, false);
    expect(edge.tick(video, input(0)).seekTo).toBeUndefined();
  });

  test("a playhead before the first buffered range seeks to its start", () => {
    const video = fakeVideo([[2, 3]], 0);
    const edge = new LiveEdge(video, 0, false);
    expect(edge.tick(video, input(0)).seekTo).toBe(2);
    // Between two ranges, the next one's start.
    video.buffered = new FakeTimeRanges([
      [2, 3],
      [4, 5],
    ]);
    video.currentTime = 3.5;
    expect(edge.tick(video, input(100)).seekTo).toBe(4);
    // While a seek is under way nothing more is decided.
    video.seeking = true;
    expect(edge.tick(video, input(200)).seekTo).toBeUndefined();
  });

  test("a seek that does not finish while newer media sits in a later range is redone into the newest range", () => {
    // What a loaded CI machine showed: the join seek landed 0.1 s before the end of the join burst's
    // range, the source had dropped frames after it, and Chromium kept seeking there for good.
    const video = fakeVideo([[0, 0.53]], 0);
    const edge = new LiveEdge(video, 0, true);
    const join = edge.tick(video, input(0));
    expect(join.seekTo).toBeCloseTo(0.43, 9);
    video.currentTime = 0.43;
    video.seeking = true;
    video.readyState = 1; // HAVE_METADATA
    video.buffered = new FakeTimeRanges([
      [0, 0.53],
      [1.07, 2.5],
    ]);
    expect(edge.tick(video, input(100)).seekTo).toBeUndefined(); // the seek is under way
    expect(edge.tick(video, input(100 + SEEK_STUCK_MS)).seekTo).toBeUndefined(); // not yet longer than SEEK_STUCK_MS
    expect(edge.tick(video, input(101 + SEEK_STUCK_MS)).seekTo).toBeCloseTo(2.4, 9);
    // The new seek gets its own SEEK_STUCK_MS; landing in the newest range, it is left alone.
    video.currentTime = 2.4;
    video.buffered = new FakeTimeRanges([
      [0, 0.53],
      [1.07, 3],
    ]);
    expect(edge.tick(video, input(300 + SEEK_STUCK_MS)).seekTo).toBeUndefined();
    expect(edge.tick(video, input(200 + 3 * SEEK_STUCK_MS)).seekTo).toBeUndefined();
    // liveSync off: the newest range's start.
    const plain = fakeVideo([[0, 0.53]], 0.43, { seeking: true, readyState: 1 });
    const unsynced = new LiveEdge(plain, 0, false);
    unsynced.tick(plain, input(0));
    plain.buffered = new FakeTimeRanges([
      [0, 0.53],
      [1.07, 2.5],
    ]);
    expect(unsynced.tick(plain, input(1 + SEEK_STUCK_MS)).seekTo).toBe(1.07);
  });

  test("stall: a seek that has not finished after STALL_MS counts as a still playhead", () => {
    const video = fakeVideo([[0, 1]], 0.5, { seeking: true, readyState: 1 });
    const edge = new LiveEdge(video, 0, false);
    edge.tick(video, input(0));
    video.buffered = new FakeTimeRanges([[0, 4]]);
    // Progress while the seek is under way (the target is in the newest range: no re-seek either).
    expect(edge.tick(video, input(STALL_MS))).toEqual({ behindMs: 3500 });
    video.buffered = new FakeTimeRanges([[0, 7]]);
    expect(edge.tick(video, input(2 * STALL_MS)).stalled).toBeUndefined(); // not yet longer than STALL_MS since
    expect(edge.tick(video, input(2 * STALL_MS + 1)).stalled).toBe("playback stalled at 0.50 s while media arrived up to 7.00 s");
    // A finished seek and a moving playhead clear it.
    video.seeking = false;
    video.currentTime = 0.6;
    expect(edge.tick(video, input(2 * STALL_MS + 100)).stalled).toBeUndefined();
  });

  test("stall: a still playhead after STALL_MS while more than 2 s of media arrived", () => {
    const video = fakeVideo([[0, 1]], 0.5);
    const edge = new LiveEdge(video, 0, false);
    edge.tick(video, input(0));
    video.currentTime = 0.6; // moved: the watchdog starts here, media up to 1 s
    edge.tick(video, input(100));
    video.buffered = new FakeTimeRanges([[0, 3.2]]);
    expect(edge.tick(video, input(100 + STALL_MS)).stalled).toBeUndefined(); // not yet longer than STALL_MS
    const decision = edge.tick(video, input(101 + STALL_MS));
    expect(decision.stalled).toBe("playback stalled at 0.60 s while media arrived up to 3.20 s");
    // Moving again clears it.
    video.currentTime = 0.7;
    expect(edge.tick(video, input(200 + STALL_MS)).stalled).toBeUndefined();
  });

  test("no stall while no media arrives (the stream is quiet), nor for less than 2 s of it", () => {
    const video = fakeVideo([[0, 1]], 1);
    const edge = new LiveEdge(video, 0, false);
    video.currentTime = 0.99;
    edge.tick(video, input(0));
    expect(edge.tick(video, input(3 * STALL_MS)).stalled).toBeUndefined();
    video.buffered = new FakeTimeRanges([[0, 2.9]]);
    expect(edge.tick(video, input(4 * STALL_MS)).stalled).toBeUndefined();
    video.buffered = new FakeTimeRanges([[0, 3.1]]);
    expect(edge.tick(video, input(4 * STALL_MS + 100)).stalled).toBeDefined();
  });

  test("no stall while the page is hidden; the watchdog starts again when it is shown", () => {
    const video = fakeVideo([[0, 1]], 0.5);
    const edge = new LiveEdge(video, 0, false);
    edge.tick(video, input(0));
    video.buffered = new FakeTimeRanges([[0, 9]]);
    expect(edge.tick(video, input(STALL_MS + 1000, { hidden: true })).stalled).toBeUndefined();
    expect(edge.tick(video, input(2 * STALL_MS, { hidden: true })).stalled).toBeUndefined();
    // Shown again: the playhead has STALL_MS from the last hidden tick, and media must grow 2 s beyond 9 s.
    video.buffered = new FakeTimeRanges([[0, 11.5]]);
    expect(edge.tick(video, input(3 * STALL_MS)).stalled).toBeUndefined();
    expect(edge.tick(video, input(3 * STALL_MS + 1)).stalled).toBeDefined();
  });

  test("no stall on the join tick after a slow start: the watchdog counts from the first media", () => {
    const video = fakeVideo([], 0);
    const edge = new LiveEdge(video, 0, true);
    // Connecting, then the stream starting: nothing buffered for longer than STALL_MS.
    for (let now = 0; now <= 2 * STALL_MS; now += 100) edge.tick(video, input(now));
    // The join burst, a 3 s GOP, appended over a slow link for longer than STALL_MS, then the join decision.
    let now = 2 * STALL_MS;
    for (let tenths = 1; tenths <= 30; tenths++) {
      video.buffered = new FakeTimeRanges([[0, tenths / 10]]);
      expect(edge.tick(video, input((now += 200), { queued: 1 })).stalled).toBeUndefined();
    }
    const decision = edge.tick(video, input(now + 100));
    expect(decision.seekTo).toBeCloseTo(2.9, 6);
    expect(decision.stalled).toBeUndefined();
  });

  test("liveSync off: no join seek, no rates, no catch-up seek", () => {
    const video = fakeVideo([[0, 10]], 0);
    const edge = new LiveEdge(video, 0, false);
    expect(edge.tick(video, input(0))).toEqual({ behindMs: 10_000 });
    expect(edge.liveFrom).toBe(0);
  });
});
