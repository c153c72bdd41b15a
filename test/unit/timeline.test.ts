import { describe, expect, it } from "vitest";
import { GaplessTimeline, StreamTimeline } from "../../server/stream/timeline.js";
import type { Micros } from "../../shared/units.js";

const FRAME = 1e6 / 30;
const us = (n: number): Micros => n as Micros;

describe("StreamTimeline", () => {
  it("keeps jumps forward, and goes on one frame after the last frame when a restarted pipeline counts from 0", () => {
    const t = new StreamTimeline();
    expect([0, FRAME, 5 * FRAME].map((p) => t.place(us(p), FRAME))).toEqual([0, FRAME, 5 * FRAME]);
    t.markRestart();
    expect(t.place(us(0), FRAME)).toBeCloseTo(6 * FRAME);
    expect(t.place(us(FRAME), FRAME)).toBeCloseTo(7 * FRAME);
  });
});

describe("GaplessTimeline", () => {
  it("keeps steps up to a frame and a half (jitter included) and cuts longer ones to that", () => {
    const t = new GaplessTimeline();
    const pts = [1000, 1000 + FRAME, 1000 + 2.2 * FRAME, 1000 + 12.2 * FRAME, 1000 + 13.2 * FRAME];
    const times = pts.map((p) => t.place(us(p), FRAME));
    expect(times[0]).toBe(1000);
    expect(times[1]! - times[0]!).toBeCloseTo(FRAME);
    expect(times[2]! - times[1]!).toBeCloseTo(1.2 * FRAME);
    expect(times[3]! - times[2]!).toBeCloseTo(1.5 * FRAME);
    expect(times[4]! - times[3]!).toBeCloseTo(FRAME);
  });
});
