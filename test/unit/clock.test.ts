// The server clock estimator (web/player/clock.ts): offset from the round trip with the smallest
// delay among recent samples, and the probe schedule on a socket.

import { afterEach, describe, expect, test, vi } from "vitest";
import type { ClockMessage } from "../../shared/protocol.js";
import { millis } from "../../shared/units.js";
import { ClockProbe, ServerClock, serverClock } from "../../web/player/clock.js";

describe("ServerClock", () => {
  test("knows nothing before a sample, and leaves times alone", () => {
    const clock = new ServerClock();
    expect(clock.estimate(0)).toBeUndefined();
    expect(clock.toLocal(millis(1234))).toBe(1234);
  });

  test("takes the server's time to be at the midpoint of the round trip", () => {
    const clock = new ServerClock();
    // Sent at 1000, the server said 6005 (5000 ahead), read at 1010.
    expect(clock.addSample(1000, 6005, 1010)).toBe(true);
    expect(clock.estimate(1010)).toEqual({ offsetMs: 5000, uncertaintyMs: 5, rttMs: 10, samples: 1, sampledAt: 1010 });
    expect(clock.toLocal(millis(7000))).toBe(2000);
  });

  test("takes an offset within its own uncertainty of zero as zero: the clocks agree as far as it can tell", () => {
    const clock = new ServerClock();
    // Sent at 1000, read at 1010, server says 1008: midpoint offset +3 ms, ± 5 ms.
    clock.addSample(1000, 1008, 1010);
    expect(clock.estimate(1010)).toMatchObject({ offsetMs: 0, uncertaintyMs: 5 });
    expect(clock.toLocal(millis(5000))).toBe(5000);
    // Just outside the uncertainty: the midpoint stands.
    const far = new ServerClock();
    far.addSample(1000, 1010.5, 1010);
    expect(far.estimate(1010)?.offsetMs).toBeCloseTo(5.5, 9);
    const behind = new ServerClock();
    behind.addSample(1000, 999, 1010);
    expect(behind.estimate(1010)?.offsetMs).toBe(-6);
  });

  test("uses the sample with the shortest round trip: queueing only ever delays a reply", () => {
    const clock = new ServerClock();
    clock.addSample(0, 5030, 40); // the reply waited 30 ms behind a keyframe: midpoint says 5010
    clock.addSample(100, 5101, 102); // 2 ms round trip: 5000
    clock.addSample(200, 5215, 230);
    const estimate = clock.estimate(230);
    expect(estimate?.offsetMs).toBe(5000);
    expect(estimate?.uncertaintyMs).toBe(1);
    expect(estimate?.samples).toBe(3);
  });

  test("forgets samples by count and by age, so drift is followed", () => {
    const clock = new ServerClock({ keep: 2, maxAgeMs: 1000 });
    clock.addSample(0, 100, 2); // offset 99, rtt 2: best for now
    clock.addSample(10, 120, 20); // offset 105, rtt 10
    expect(clock.estimate(20)?.offsetMs).toBe(99);
    clock.addSample(30, 150, 50); // offset 110, rtt 20; pushes out the first
    expect(clock.estimate(50)?.offsetMs).toBe(105);
    // Long after, nothing is left.
    expect(clock.estimate(5000)).toBeUndefined();
  });

  test("ignores impossible samples", () => {
    const clock = new ServerClock();
    expect(clock.addSample(10, 100, 5)).toBe(false); // negative round trip
    expect(clock.addSample(Number.NaN, 100, 5)).toBe(false);
    expect(clock.addSample(0, Number.POSITIVE_INFINITY, 5)).toBe(false);
    expect(clock.estimate(10)).toBeUndefined();
  });

  test("is shared by sockets to the same server", () => {
    expect(serverClock("ws://127.0.0.1:8080/ws/a")).toBe(serverClock("ws://127.0.0.1:8080/ws/b?x=1"));
    expect(serverClock("ws://127.0.0.1:8080/ws/a")).not.toBe(serverClock("ws://127.0.0.1:8081/ws/a"));
  });
});

describe("ClockProbe", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  test("sends a burst of five 100 ms apart from 100 ms after open, then one every 10 s, and counts only echoes of its own", () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    const sent: ClockMessage[] = [];
    const clock = new ServerClock();
    const probe = new ClockProbe(clock, (m) => (sent.push(m), true));
    probe.start();
    expect(sent).toHaveLength(0); // not while the join burst is on its way
    vi.advanceTimersByTime(100);
    expect(sent).toHaveLength(1);
    vi.advanceTimersByTime(400);
    expect(sent).toHaveLength(5);
    vi.advanceTimersByTime(9_000);
    expect(sent).toHaveLength(5);
    vi.advanceTimersByTime(1_000);
    expect(sent).toHaveLength(6);

    expect(probe.reply({ type: "clock", t: 123.456, serverTime: 1 }, performance.now())).toBe(false);
    const last = sent.at(-1)!;
    expect(probe.reply({ type: "clock", t: last.t, serverTime: performance.timeOrigin + last.t + 2500 }, last.t + 4)).toBe(true);
    expect(probe.reply({ type: "clock", t: last.t, serverTime: 0 }, last.t + 4)).toBe(false); // answered already
    expect(clock.estimate(performance.timeOrigin + last.t + 4)).toMatchObject({ offsetMs: 2498, uncertaintyMs: 2 });

    probe.stop();
    vi.advanceTimersByTime(60_000);
    expect(sent).toHaveLength(6);
  });
});
