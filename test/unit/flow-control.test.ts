// ViewerFlow, the per-viewer flow-control policy, alone with explicit times; then a liveness
// property of the policy as the fan-out applies it, with a simulated viewer that reads at a fixed
// byte rate and answers each probe when it has read up to it (fake socket, fake clock).

import { describe, expect, test } from "vitest";
import { StreamFanout } from "../../server/stream/fanout.js";
import { ViewerFlow, type FlowOptions, type Verdict } from "../../server/stream/flow-control.js";
import type { Viewer, ViewerMode, ViewerSocket } from "../../server/stream/viewer.js";
import type { WireMessage } from "../../server/stream/wire-message.js";
import { decodeBinaryMessage, nextSeq } from "../../shared/protocol.js";
import { micros, millis, type Millis } from "../../shared/units.js";
import { mulberry32 } from "../helpers/random.js";

const OPTIONS: FlowOptions = { maxLagMs: 500, maxBufferedBytes: 10_000, probeIntervalMs: 200, probeIntervalBusyMs: 100 };
const t = (ms: number): Millis => millis(ms);

function flowAt(start = 0, options: Partial<FlowOptions> = {}): ViewerFlow {
  return new ViewerFlow({ ...OPTIONS, ...options }, t(start));
}

/** Writes `bytes` and a probe behind them at `at`, as the fan-out does; returns the probe's (seq, sentAt). */
function writeProbed(flow: ViewerFlow, seq: number, bytes: number, at: number): { seq: number; sentAt: number } {
  flow.wrote(bytes);
  const probe = flow.probed(seq, t(at));
  return { seq: probe.seq, sentAt: probe.sentAt };
}

const pong = (flow: ViewerFlow, probe: { seq: number; sentAt: number }, at: number): boolean => flow.pong(probe.seq, probe.sentAt, t(at));

/**
 * A flow whose read rate was measured at `bytesPerMs` and that has read everything it was sent,
 * proven at `at`: 1000 bytes and a probe at 5 (the flow starts at 0), 2000 more and a probe at 10;
 * the first pong at `at - 2000 / bytesPerMs`, the second at `at`.
 */
function measuredFlow(bytesPerMs: number, at: number, options: Partial<FlowOptions> = {}): ViewerFlow {
  const flow = flowAt(0, options);
  const a = writeProbed(flow, 0, 1000, 5);
  const b = writeProbed(flow, 1, 2000, 10);
  const firstAt = at - 2000 / bytesPerMs;
  expect(firstAt).toBeGreaterThan(60); // not a prompt pong, and after both probes
  pong(flow, a, firstAt);
  pong(flow, b, at);
  expect(flow.readBytesPerSecond).toBeCloseTo(bytesPerMs * 1000, 6);
  expect(flow.drained).toBe(true);
  return flow;
}

/** A flow that has been sent its first keyframe (100 bytes at `at`, with a probe) and read it at once. */
function startedFlow(at = 0, options: Partial<FlowOptions> = {}): ViewerFlow {
  const flow = flowAt(at, options);
  expect(flow.admit(true, 100, t(at), 0)).toEqual({ send: true, resumed: null });
  const p = writeProbed(flow, 0, 100, at);
  pong(flow, p, at);
  return flow;
}

const sent = (v: Verdict): boolean => v.send;

describe("ViewerFlow probes and pongs", () => {
  test("a first probe is due at once; then one per probeIntervalMs while answered, one per probeIntervalBusyMs while one is unanswered", () => {
    const flow = flowAt(0);
    expect(flow.probeDue(t(0))).toBe(true);
    const p0 = writeProbed(flow, 0, 100, 0);
    // One unanswered: the busy interval.
    expect(flow.probeDue(t(99))).toBe(false);
    expect(flow.probeDue(t(100))).toBe(true);
    expect(pong(flow, p0, 120)).toBe(true);
    // All answered: the longer interval, from the last probe.
    expect(flow.probeDue(t(150))).toBe(false);
    expect(flow.probeDue(t(199))).toBe(false);
    expect(flow.probeDue(t(200))).toBe(true);
    writeProbed(flow, 1, 100, 250);
    expect(flow.probeDue(t(349))).toBe(false);
    expect(flow.probeDue(t(350))).toBe(true);
  });

  test("unprobed: bytes were written since the last probe (a probe must follow before the viewer can be proven drained)", () => {
    const flow = flowAt(0);
    expect(flow.unprobed).toBe(false);
    flow.wrote(10);
    expect(flow.unprobed).toBe(true);
    flow.probed(0, t(1));
    expect(flow.unprobed).toBe(false);
    // A probe with nothing written before it changes nothing about that.
    flow.probed(0, t(2));
    expect(flow.unprobed).toBe(false);
  });

  test("drained: every probe answered and everything written proven read", () => {
    const flow = flowAt(0);
    expect(flow.drained).toBe(true); // nothing written yet
    const p = writeProbed(flow, 0, 100, 10);
    expect(flow.drained).toBe(false);
    pong(flow, p, 20);
    expect(flow.drained).toBe(true);
    flow.wrote(50); // written, no probe behind it yet: not proven
    expect(flow.drained).toBe(false);
    const q = flow.probed(0, t(30));
    expect(flow.drained).toBe(false);
    pong(flow, q, 40);
    expect(flow.drained).toBe(true);
  });

  test("a pong that answers no probe of ours is ignored and proves nothing: unknown seq, unknown sentAt, or answered already", () => {
    const flow = flowAt(0);
    const p = writeProbed(flow, 7, 100, 10);
    expect(flow.pong(8, p.sentAt, t(20))).toBe(false);
    expect(flow.pong(7, p.sentAt + 1, t(20))).toBe(false);
    expect(flow.drained).toBe(false);
    expect(flow.lagMs(t(60))).toBe(50); // still outstanding
    expect(pong(flow, p, 60)).toBe(true);
    expect(flow.drained).toBe(true);
    expect(pong(flow, p, 70)).toBe(false); // twice
  });

  test("a pong for a later probe resolves every earlier one (TCP keeps order; a client may answer only the newest ping)", () => {
    const flow = flowAt(0);
    const p0 = writeProbed(flow, 0, 100, 10);
    const p1 = writeProbed(flow, 1, 100, 20);
    const p2 = writeProbed(flow, 2, 100, 30);
    expect(flow.lagMs(t(40))).toBe(30); // p0's age
    expect(pong(flow, p1, 40)).toBe(true);
    expect(flow.lagMs(t(40))).toBe(10); // p2's age: p0 went with p1
    expect(pong(flow, p0, 41)).toBe(false); // resolved already
    expect(flow.drained).toBe(false);
    expect(pong(flow, p2, 42)).toBe(true);
    expect(flow.drained).toBe(true);
    expect(flow.lagMs(t(100))).toBe(0);
  });
});

describe("ViewerFlow read rate and lag", () => {
  test("with no rate known, the lag is the age of the oldest unanswered probe, and 0 once all are answered", () => {
    const flow = flowAt(0);
    expect(flow.lagMs(t(1000))).toBe(0);
    const p0 = writeProbed(flow, 0, 5000, 100);
    writeProbed(flow, 1, 5000, 250);
    expect(flow.readBytesPerSecond).toBeNull();
    expect(flow.lagMs(t(400))).toBe(300);
    pong(flow, p0, 400);
    expect(flow.lagMs(t(400))).toBe(150);
    expect(flow.lagMs(t(600.5))).toBe(350.5);
  });

  test("the read rate comes from two pongs between which the viewer had bytes waiting all along", () => {
    const flow = flowAt(0);
    const a = writeProbed(flow, 0, 1000, 5); // the first pong: it measures nothing
    const b = writeProbed(flow, 1, 2000, 10); // written before a's pong: waiting from then on
    pong(flow, a, 105);
    expect(flow.readBytesPerSecond).toBeNull();
    pong(flow, b, 305); // 2000 bytes in 200 ms
    expect(flow.readBytesPerSecond).toBeCloseTo(10_000, 6);
    // Another sample (4000 bytes in 200 ms = 20 B/ms) moves the estimate by 30 %: 0.7 × 10 + 0.3 × 20.
    const c = writeProbed(flow, 2, 1000, 320);
    const d = writeProbed(flow, 3, 4000, 330);
    pong(flow, c, 400); // c was written after the last proof (305): no sample
    expect(flow.readBytesPerSecond).toBeCloseTo(10_000, 6);
    pong(flow, d, 600);
    expect(flow.readBytesPerSecond).toBeCloseTo(13_000, 6);
  });

  test("the first pong measures no rate: from the connection to it is a round trip, not reading", () => {
    // Regression: the connection counted as a proof, so a viewer 300 ms away that read a 15 KB
    // keyframe at once was measured at 50 bytes per ms.
    const flow = flowAt(0);
    const a = writeProbed(flow, 0, 15_000, 0); // written as it connected
    const b = writeProbed(flow, 1, 5_000, 100);
    pong(flow, a, 300);
    expect(flow.readBytesPerSecond).toBeNull();
    pong(flow, b, 310); // 5000 bytes waiting since the first pong, read in 10 ms
    expect(flow.readBytesPerSecond).toBeCloseTo(500_000, 6);
  });

  test("probes written after the last proof and answered together measure nothing (no time between the pongs)", () => {
    const flow = flowAt(0);
    const a = writeProbed(flow, 0, 1000, 5);
    const b = writeProbed(flow, 1, 1000, 10);
    pong(flow, a, 300);
    pong(flow, b, 300);
    expect(flow.readBytesPerSecond).toBeNull();
  });

  test("with a known rate, the lag is what is left to read over the rate: unproven bytes less what it read since its last pong", () => {
    const flow = measuredFlow(10, 1000); // 10 bytes per ms, drained at 1000
    const p = writeProbed(flow, 2, 3000, 1000); // 300 ms of reading
    expect(flow.lagMs(t(1000))).toBeCloseTo(300, 6);
    expect(flow.lagMs(t(1100))).toBeCloseTo(200, 6); // the probe's age (100) is less
    expect(flow.lagMs(t(1250))).toBeCloseTo(250, 6); // read by now as far as the rate says: the probe's age
    pong(flow, p, 1310);
    expect(flow.lagMs(t(1310))).toBe(0);
  });

  test("the backlog estimate earns no credit for time the viewer had nothing to read (a drained viewer idle for 1 s, then 20 KB)", () => {
    // Regression: the estimate was sent − proven − rate × (now − last pong), so a second of idling
    // after the last pong counted as 10 KB already read of what came after it.
    const flow = measuredFlow(10, 1000);
    expect(flow.admit(true, 20_000, t(2000), 0)).toEqual({ send: true, resumed: null }); // drained: nothing in the way
    writeProbed(flow, 2, 20_000, 2000);
    expect(flow.lagMs(t(2000))).toBeCloseTo(2000, 6);
    expect(flow.lagMs(t(2400))).toBeCloseTo(1600, 6);
    // So a delta right behind it would be read 1.6 s from now: not sent.
    expect(flow.admit(false, 1000, t(2400), 0)).toMatchObject({ send: false, skipped: { reason: "lagging", frames: 1 } });
  });

  test("the backlog estimate carries forward across decisions: read at the rate while bytes wait, never below empty, never ahead of the writes", () => {
    const flow = measuredFlow(10, 1000); // 10 bytes per ms; no probe is written below, so the lag is the estimate alone
    // Bytes written after a decision are credited with reading from the next decision on: the
    // estimate may be above the truth by the time between the two decisions around the write
    // that started the backlog, never below the truth.
    const expectLag = (at: number, truth: number, slack: number): void => {
      const lag = flow.lagMs(t(at));
      expect(lag, `lag at ${at}`).toBeGreaterThanOrEqual(truth - 1e-9);
      expect(lag, `lag at ${at}`).toBeLessThanOrEqual(truth + slack + 1e-9);
    };
    expect(sent(flow.admit(true, 1000, t(1000), 0))).toBe(true);
    flow.wrote(1000); // 100 ms of reading
    expectLag(1000, 100, 0);
    expect(sent(flow.admit(false, 1000, t(1050), 0))).toBe(true);
    flow.wrote(1000);
    expectLag(1050, 150, 50); // 500 bytes left of the first write, and the second
    expect(sent(flow.admit(false, 1000, t(1100), 0))).toBe(true);
    flow.wrote(1000);
    expectLag(1100, 200, 50); // (500 + 1000 − 500) + 1000 bytes
    expect(sent(flow.admit(false, 0, t(1150), 0))).toBe(true);
    expectLag(1150, 150, 50); // not more above the truth for being backlogged longer
    expect(sent(flow.admit(false, 0, t(1400), 0))).toBe(true);
    expect(flow.lagMs(t(1400))).toBe(0); // all of it read by the rate
    // 4 s idle, then 2000 bytes: 200 ms of reading, not less, whatever the idle time.
    expect(sent(flow.admit(false, 2000, t(5400), 0))).toBe(true);
    flow.wrote(2000);
    expectLag(5400, 200, 0);
    expect(sent(flow.admit(false, 0, t(5500), 0))).toBe(true);
    expectLag(5500, 100, 100);
  });

  test("a prompt pong (within 50 ms, nothing else outstanding) forgets the rate: the viewer keeps up", () => {
    const flow = measuredFlow(10, 1000);
    // A pong 60 ms after its probe: not prompt.
    const slow = writeProbed(flow, 2, 100, 1100);
    pong(flow, slow, 1160);
    expect(flow.readBytesPerSecond).not.toBeNull();
    // Prompt, but another probe is still outstanding: kept.
    const a = writeProbed(flow, 3, 100, 1200);
    writeProbed(flow, 4, 100, 1210);
    pong(flow, a, 1220);
    expect(flow.readBytesPerSecond).not.toBeNull();
    pong(flow, { seq: 4, sentAt: 1210 }, 1400);
    // Prompt, nothing else outstanding: forgotten.
    const b = writeProbed(flow, 5, 100, 1500);
    pong(flow, b, 1550);
    expect(flow.readBytesPerSecond).toBeNull();
    expect(flow.lagMs(t(1550))).toBe(0);
  });
});

describe("ViewerFlow admit", () => {
  test("waits for a first keyframe: deltas before it are not sent and are not skips", () => {
    const flow = flowAt(0);
    expect(flow.admit(false, 100, t(0), 0)).toEqual({ send: false, skipped: null });
    expect(flow.admit(false, 100, t(33), 0)).toEqual({ send: false, skipped: null });
    expect(flow.currentGap).toBeNull();
    expect(flow.admit(true, 100, t(66), 0)).toEqual({ send: true, resumed: null });
    flow.wrote(100);
    expect(flow.admit(false, 100, t(99), 0)).toEqual({ send: true, resumed: null });
  });

  test("a frame the viewer would read more than maxLagMs from now starts a lagging gap, with the lag when it began; frames in the gap count", () => {
    const flow = startedFlow(0);
    writeProbed(flow, 1, 100, 10); // never answered
    expect(sent(flow.admit(false, 100, t(510), 0))).toBe(true); // its age 500: not more than maxLagMs
    flow.wrote(100);
    const v = flow.admit(false, 100, t(510.26), 0);
    expect(v).toEqual({ send: false, skipped: { reason: "lagging", frames: 1, lagMs: 500.3 } });
    expect(flow.currentGap).toEqual({ reason: "lagging", frames: 1, lagMs: 500.3 });
    const w = flow.admit(false, 100, t(540), 0);
    expect(w).toEqual({ send: false, skipped: { reason: "lagging", frames: 2, lagMs: 500.3 } });
  });

  test("the projection counts the frame itself: with a known rate, a frame too big to be read within maxLagMs is not sent", () => {
    const flow = measuredFlow(10, 1000);
    expect(sent(flow.admit(true, 100, t(1000), 0))).toBe(true);
    flow.wrote(100); // 10 ms left
    expect(sent(flow.admit(false, 4890, t(1000), 0))).toBe(true); // 10 + 489 ms
    flow.wrote(4890);
    expect(flow.admit(false, 100, t(1000), 0)).toMatchObject({ send: false, skipped: { reason: "lagging" } }); // 499 + 10 ms
  });

  test("more than maxBufferedBytes queued on the socket starts a buffer-full gap; at the limit is still sent", () => {
    const flow = startedFlow(0);
    expect(sent(flow.admit(false, 100, t(33), 10_000))).toBe(true);
    flow.wrote(100);
    expect(flow.admit(false, 100, t(66), 10_001)).toEqual({ send: false, skipped: { reason: "buffer-full", frames: 1, lagMs: 0 } });
  });

  test("both lagging and over the buffer limit: the gap is lagging", () => {
    const flow = startedFlow(0);
    writeProbed(flow, 1, 100, 0);
    expect(flow.admit(false, 100, t(600), 50_000)).toMatchObject({ send: false, skipped: { reason: "lagging", frames: 1 } });
  });

  test("a gap ends only at a keyframe: a delta stays skipped even once the viewer is drained", () => {
    const flow = startedFlow(0);
    const p = writeProbed(flow, 1, 100, 10); // after the last proof (0): its pong measures no rate
    expect(sent(flow.admit(false, 100, t(600), 0))).toBe(false);
    pong(flow, p, 610);
    expect(flow.drained).toBe(true);
    expect(flow.admit(false, 100, t(620), 0)).toMatchObject({ send: false, skipped: { frames: 2 } });
    const v = flow.admit(true, 100, t(640), 0);
    expect(v).toEqual({ send: true, resumed: { reason: "lagging", frames: 2, lagMs: 590 } });
    expect(flow.currentGap).toBeNull();
    flow.wrote(100);
    expect(flow.admit(false, 100, t(660), 0)).toEqual({ send: true, resumed: null });
  });

  test("a keyframe in a gap resumes once everything sent is proven read, not before (no rate known)", () => {
    const flow = startedFlow(0);
    const p = writeProbed(flow, 1, 100, 0);
    expect(sent(flow.admit(false, 100, t(600), 0))).toBe(false);
    expect(flow.admit(true, 100, t(633), 0)).toMatchObject({ send: false, skipped: { frames: 2 } }); // not proven read
    pong(flow, p, 650);
    expect(flow.admit(true, 100, t(666), 0)).toMatchObject({ send: true, resumed: { frames: 2 } });
  });

  test("a keyframe in a gap does not resume while the queue is above half of maxBufferedBytes, even drained", () => {
    const flow = startedFlow(0);
    expect(sent(flow.admit(false, 100, t(33), 20_000))).toBe(false);
    expect(flow.drained).toBe(true);
    expect(sent(flow.admit(true, 100, t(66), 5001))).toBe(false);
    expect(sent(flow.admit(true, 100, t(99), 5000))).toBe(true);
  });

  test("with a known rate, a keyframe in a gap resumes when what is left and the keyframe will be read within maxLagMs, before the last pong", () => {
    const flow = measuredFlow(10, 1000);
    expect(sent(flow.admit(true, 100, t(1000), 0))).toBe(true);
    writeProbed(flow, 2, 6000, 1000); // 600 ms of reading, never answered in this test
    expect(flow.admit(false, 100, t(1000), 0)).toMatchObject({ send: false, skipped: { reason: "lagging" } });
    // At 1200: 4000 bytes left (400 ms) + a 2000-byte keyframe (200 ms) = 600 ms: not yet.
    expect(sent(flow.admit(true, 2000, t(1200), 0))).toBe(false);
    // At 1300: 300 + 200 = 500 ms: resumes, though the probe is still unanswered.
    expect(flow.admit(true, 2000, t(1300), 0)).toMatchObject({ send: true, resumed: { reason: "lagging", frames: 2 } });
    expect(flow.drained).toBe(false);
  });

  test("restartAtKeyframe ends a gap without it counting, and waits for a keyframe (a new hello, a restart, a pause)", () => {
    const flow = startedFlow(0);
    expect(sent(flow.admit(false, 100, t(33), 20_000))).toBe(false);
    flow.restartAtKeyframe();
    expect(flow.currentGap).toBeNull();
    expect(flow.admit(false, 100, t(66), 0)).toEqual({ send: false, skipped: null });
    expect(flow.admit(true, 100, t(99), 0)).toEqual({ send: true, resumed: null });
  });
});

/** Frames held back so far in each flow's current hold. */
const heldSoFar = new WeakMap<ViewerFlow, number>();

/** While holding, holds frames back until `heldFrames` are held; then settles. Returns the outcome's name. */
function settleWith(flow: ViewerFlow, now: Millis, heldFrames: number): string {
  if (flow.holding) {
    for (let n = heldSoFar.get(flow) ?? 0; n < heldFrames; n++) flow.holdBack(n);
    heldSoFar.set(flow, Math.max(heldFrames, heldSoFar.get(flow) ?? 0));
  }
  const settled = flow.settleHold(now);
  if (settled.outcome !== "hold") {
    heldSoFar.delete(flow);
    if (settled.held.length !== 0) expect(settled.held.length).toBe(heldFrames);
  }
  return settled.outcome;
}

describe("ViewerFlow hold after a replay", () => {
  test("no replay, no hold: settleHold releases", () => {
    const flow = startedFlow(0);
    expect(flow.holding).toBe(false);
    expect(settleWith(flow, t(10_000), 5)).toBe("release");
  });

  test("released once the replay is proven read: the pong of the probe behind its last frame, not an earlier one", () => {
    const flow = flowAt(0);
    const probes = [0, 1, 2].map((seq) => writeProbed(flow, seq, 1000, 100));
    flow.replayed(t(100));
    expect(flow.holding).toBe(true);
    expect(settleWith(flow, t(150), 1)).toBe("hold");
    pong(flow, probes[1]!, 300);
    expect(settleWith(flow, t(300), 2)).toBe("hold");
    pong(flow, probes[2]!, 400);
    expect(settleWith(flow, t(400), 3)).toBe("release");
    expect(flow.holding).toBe(false);
    // The replay was decodable: what follows it needs no keyframe.
    expect(flow.admit(false, 100, t(410), 0)).toEqual({ send: true, resumed: null });
  });

  test("not proven read within maxLagMs: dropped, the held frames start a lagging gap; the next keyframe resumes once it is read", () => {
    const flow = flowAt(0);
    const last = writeProbed(flow, 4, 30_000, 100);
    flow.replayed(t(100));
    expect(settleWith(flow, t(600), 15)).toBe("hold"); // exactly maxLagMs
    expect(settleWith(flow, t(600.04), 15)).toBe("drop");
    expect(flow.holding).toBe(false);
    expect(flow.currentGap).toEqual({ reason: "lagging", frames: 15, lagMs: 500 });
    expect(flow.admit(false, 100, t(633), 0)).toMatchObject({ send: false, skipped: { frames: 16 } });
    expect(sent(flow.admit(true, 100, t(666), 0))).toBe(false); // not read yet
    pong(flow, last, 700);
    expect(flow.admit(true, 100, t(733), 0)).toEqual({ send: true, resumed: { reason: "lagging", frames: 17, lagMs: 500 } });
  });

  test("a hold that times out with no frame held is released: nothing was kept from the viewer, no gap begins", () => {
    const flow = flowAt(0);
    writeProbed(flow, 2, 30_000, 0);
    flow.replayed(t(0));
    expect(settleWith(flow, t(600), 0)).toBe("release");
    expect(flow.holding).toBe(false);
    expect(flow.currentGap).toBeNull();
    // The next frame is judged like any other: the replay's probe is 633 ms old, so it is skipped.
    expect(flow.admit(false, 100, t(633), 0)).toEqual({ send: false, skipped: { reason: "lagging", frames: 1, lagMs: 633 } });
  });

  test("a new replay replaces a gap: the replay is decodable from its first frame", () => {
    const flow = startedFlow(0);
    expect(sent(flow.admit(false, 100, t(33), 20_000))).toBe(false);
    writeProbed(flow, 0, 100, 50);
    flow.replayed(t(50));
    expect(flow.currentGap).toBeNull();
    expect(flow.holding).toBe(true);
  });

  test("frames held back come out of a release in order; without a hold nothing is kept", () => {
    const flow = new ViewerFlow<string>({ ...OPTIONS }, t(0));
    expect(flow.holdBack("early")).toBe(false);
    flow.wrote(100);
    const probe = flow.probed(0, t(0));
    flow.replayed(t(0));
    expect(flow.holdBack("a")).toBe(true);
    expect(flow.holdBack("b")).toBe(true);
    expect(flow.settleHold(t(100))).toEqual({ outcome: "hold" });
    flow.pong(probe.seq, probe.sentAt, t(120));
    expect(flow.settleHold(t(120))).toEqual({ outcome: "release", held: ["a", "b"] });
    expect(flow.holdBack("late")).toBe(false);
  });

  test("restartAtKeyframe ends a hold", () => {
    const flow = flowAt(0);
    writeProbed(flow, 0, 100, 0);
    flow.replayed(t(0));
    flow.restartAtKeyframe();
    expect(flow.holding).toBe(false);
    expect(settleWith(flow, t(10_000), 3)).toBe("release");
    expect(flow.currentGap).toBeNull();
  });
});

// ---- liveness: the policy as the fan-out applies it, against a viewer that reads at a fixed rate

const FPS = 30;
const FRAME_MS = 1000 / FPS;
const GOP_FRAMES = 30; // a keyframe a second
const GOP_MS = GOP_FRAMES * FRAME_MS;
const KEY_BYTES = 15_000;
const DELTA_BYTES = 5_600;
/** About 180 KB/s: a keyframe and 29 deltas a second. */
const STREAM_BYTES_PER_MS = (KEY_BYTES + (GOP_FRAMES - 1) * DELTA_BYTES) / 1000;
/** The pong reaches the server this long after the viewer has read its ping. */
const PONG_DELAY_MS = 10;
const MAX_LAG_MS = 500;
const RUN_MS = 60_000;

interface Written {
  readonly seq: number;
  readonly key: boolean;
  readonly writtenAt: number;
  /** When the viewer has read its last byte. */
  readonly readAt: number;
}

/**
 * A viewer on a link that carries `bytesPerMs`: bytes are read in the order written, each write
 * once everything before it is read. It answers each ping once it has read it. `/webm/` viewers
 * are opened with meta, so the JSON before each frame names it.
 */
class ReadingSocket implements ViewerSocket {
  readyState = 1;
  private readDone = 0;
  readonly written: Written[] = [];
  readonly pongs: { at: number; payload: Uint8Array }[] = [];
  private nextMeta: { seq: number; key: boolean } | null = null;

  constructor(
    private readonly bytesPerMs: number,
    private readonly clock: () => number,
    private readonly mode: ViewerMode,
  ) {}

  /** Bytes written and not yet read: the part above a 256 KB kernel buffer is the socket's queue. */
  get bufferedAmount(): number {
    const unread = Math.max(0, this.readDone - this.clock()) * this.bytesPerMs;
    return Math.max(0, Math.round(unread) - 256 * 1024);
  }

  send(text: string): void {
    this.read(text.length + 2);
    const j = JSON.parse(text) as { type: string; seq?: number; key?: boolean };
    if (j.type === "frame") this.nextMeta = { seq: j.seq!, key: j.key! };
  }

  sendWire(message: WireMessage, ping?: WireMessage): void {
    this.take(message);
    if (ping !== undefined) this.take(ping);
  }

  close(): void {
    this.readyState = 3;
  }

  private read(bytes: number): number {
    this.readDone = Math.max(this.readDone, this.clock()) + bytes / this.bytesPerMs;
    return this.readDone;
  }

  private take(w: WireMessage): void {
    const readAt = this.read(w.wireLength);
    const isPing = w.parts[0]![0] === 0x89;
    if (isPing) {
      this.pongs.push({ at: readAt + PONG_DELAY_MS, payload: w.payload() });
      return;
    }
    let frame: { seq: number; key: boolean } | null = null;
    if (this.mode === "ws") {
      const d = decodeBinaryMessage(w.payload());
      if (d.kind === "video") frame = { seq: d.header.seq, key: (d.header.flags & 1) !== 0 };
    } else if (this.nextMeta !== null) {
      frame = this.nextMeta;
      this.nextMeta = null;
    }
    if (frame !== null) this.written.push({ ...frame, writtenAt: this.clock(), readAt });
  }
}

interface LivenessRun {
  readonly fraction: number;
  readonly joinAtFrame: number;
  readonly mode: ViewerMode;
}

function simulate(seed: number, run: LivenessRun) {
  const rand = mulberry32(seed);
  const bytesPerMs = run.fraction * STREAM_BYTES_PER_MS;
  let now = 5_000_000;
  const clock = (): number => now;
  const fanout = new StreamFanout("sim", { width: 640, height: 480, framerate: FPS }, {
    clock: () => millis(now),
    tickIntervalMs: 3_600_000,
    statsIntervalMs: 3_600_000,
    flow: { maxLagMs: MAX_LAG_MS },
  });
  try {
    fanout.setState("live");
    const socket = new ReadingSocket(bytesPerMs, clock, run.mode);
    let viewer: Viewer | null = null;
    const createdAt = new Map<number, number>();
    let joinedAt = 0;
    let maxKeyBytes = 0;
    let firstPongAt = Infinity;
    const start = now;
    const end = start + RUN_MS;
    let n = 0;
    let nextTick = start;
    while (true) {
      const nextFrame = start + n * FRAME_MS;
      let nextPong = Infinity;
      let pongIndex = -1;
      for (const [i, p] of socket.pongs.entries()) {
        if (p.at < nextPong) {
          nextPong = p.at;
          pongIndex = i;
        }
      }
      const at = Math.min(nextFrame, nextTick, nextPong);
      if (at >= end) break;
      now = at;
      if (at === nextPong) {
        const [p] = socket.pongs.splice(pongIndex, 1);
        if (viewer !== null) fanout.onPong(viewer, p!.payload);
        firstPongAt = Math.min(firstPongAt, now);
      } else if (at === nextFrame) {
        if (n === run.joinAtFrame) {
          viewer = fanout.addViewer(socket, run.mode, "", true);
          joinedAt = now;
        }
        const key = n % GOP_FRAMES === 0;
        const size = Math.round(key ? KEY_BYTES * (0.8 + 0.4 * rand()) : DELTA_BYTES * (0.7 + 0.6 * rand()));
        if (key) maxKeyBytes = Math.max(maxKeyBytes, size);
        const data = new Uint8Array(size);
        data[0] = key ? 0x10 : 0x11;
        const message = fanout.publish({ pts: micros(n * FRAME_MS * 1000), key, discont: false, data, receivedAt: millis(now) });
        createdAt.set(message.seq, now);
        n++;
      } else {
        fanout.tick(millis(now));
        nextTick += 250;
      }
    }
    return { socket, viewer, createdAt, joinedAt, maxKeyBytes, firstPongAt, end, bytesPerMs, fanout: { skipped: fanout.skipped(run.mode) } };
  } finally {
    fanout.close();
  }
}

const describeRun = (seed: number, run: LivenessRun): string =>
  `/${run.mode}/ viewer reading at ${Math.round(run.fraction * 100)} % of the stream's rate, joining at frame ${run.joinAtFrame} (seed ${seed})`;
const runs: [string, number, LivenessRun][] = [
  // The extremes and the rates where crediting idle time showed (20-30 %), then random read rates
  // (10–100 %) and join points (before the first frame, or anywhere in the first two GOPs).
  ...([
    [101, { fraction: 0.1, joinAtFrame: 0, mode: "ws" }],
    [102, { fraction: 1.0, joinAtFrame: 0, mode: "ws" }],
    [103, { fraction: 0.1, joinAtFrame: 45, mode: "webm" }],
    [104, { fraction: 0.2, joinAtFrame: 0, mode: "ws" }],
    [105, { fraction: 0.3, joinAtFrame: 15, mode: "webm" }],
  ] as const),
  ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].map((seed): [number, LivenessRun] => {
    const rand = mulberry32(seed * 7919);
    return [seed, { fraction: 0.1 + 0.9 * rand(), joinAtFrame: Math.floor(rand() * 2 * GOP_FRAMES), mode: seed % 3 === 0 ? "webm" : "ws" }];
  }),
].map(([seed, run]): [string, number, LivenessRun] => [describeRun(seed, run), seed, run]);

describe("flow control liveness: StreamFanout and a viewer reading at a fixed rate, 60 simulated seconds", () => {
  test.each(runs)("%s", (_name, seed, run) => {
    const { socket, createdAt, joinedAt, maxKeyBytes, firstPongAt, end, bytesPerMs } = simulate(seed, run);
    const written = socket.written;
    const label = `${run.mode} at ${(run.fraction * 100).toFixed(0)} % of the stream's rate`;
    expect(written.length, label).toBeGreaterThan(0);

    // The keyframe rule, over the whole run: a delta only right after the frame before it.
    const violations: string[] = [];
    let last: number | null = null;
    for (const w of written) {
      if (!w.key && (last === null || w.seq !== nextSeq(last))) violations.push(`delta ${w.seq} after ${last}`);
      last = w.seq;
    }
    expect(violations.slice(0, 5), label).toEqual([]);

    // Before its first pong the policy knows nothing of the viewer's rate: what it sends then is
    // bounded by the age of the first probe, maxLagMs of stream (and the replay of a join).
    const replayed = (w: Written): boolean => createdAt.get(w.seq)! < joinedAt;
    const blind = written.filter((w) => w.writtenAt < firstPongAt && !replayed(w));
    expect(blind.length, label).toBeLessThanOrEqual(Math.floor(MAX_LAG_MS / FRAME_MS + 1e-9) + 1);
    // Warm-up: until the viewer has read what was written before its first pong. It must end.
    const warmEnd = Math.max(joinedAt, ...written.filter((w) => w.writtenAt < firstPongAt).map((w) => w.readAt));
    expect(warmEnd - joinedAt, label).toBeLessThan(RUN_MS / 2);

    // From then on: never starved — a frame at least every keyframe interval + 1 s, to the end…
    const after = written.filter((w) => w.writtenAt >= warmEnd);
    const starve = GOP_MS + 1000 + 1;
    let prev = warmEnd;
    for (const w of after) {
      expect(w.writtenAt - prev, `${label}: nothing sent between ${prev - joinedAt} and ${w.writtenAt - joinedAt} ms`).toBeLessThanOrEqual(starve);
      prev = w.writtenAt;
    }
    expect(end - prev, `${label}: nothing sent after ${prev - joinedAt} ms`).toBeLessThanOrEqual(starve);
    // …and each frame read within about maxLagMs + one keyframe's reading time of its making.
    const bound = MAX_LAG_MS + maxKeyBytes / bytesPerMs + FRAME_MS;
    for (const w of after) {
      const late = w.readAt - createdAt.get(w.seq)!;
      expect(late, `${label}: frame ${w.seq}${w.key ? " (key)" : ""} read ${late.toFixed(0)} ms after it was made`).toBeLessThanOrEqual(bound);
    }
  });
});
