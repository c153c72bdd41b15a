// FrameTimes: server time of recent frames by sequence number, in a fixed ring.

import { describe, expect, test } from "vitest";
import { FrameTimes } from "../../server/stream/frame-times.js";
import { millis } from "../../shared/units.js";

const U32_MAX = 0xffffffff;

/** Records `count` consecutive sequence numbers from `first` (u32, wrapping), frame i at time 1000 + i. */
function recordRun(times: FrameTimes, first: number, count: number): number[] {
  const seqs: number[] = [];
  for (let i = 0; i < count; i++) {
    const seq = (first + i) >>> 0;
    times.record(seq, millis(1000 + i));
    seqs.push(seq);
  }
  return seqs;
}

describe("FrameTimes", () => {
  test("empty: get and oldest are undefined", () => {
    const times = new FrameTimes(8);
    expect(times.get(0)).toBeUndefined();
    expect(times.get(5)).toBeUndefined();
    expect(times.oldest()).toBeUndefined();
  });

  test("record then get; a sequence never recorded is undefined", () => {
    const times = new FrameTimes(8);
    times.record(0, millis(10.5));
    times.record(1, millis(43.25));
    times.record(2, millis(76));
    expect(times.get(0)).toBe(10.5);
    expect(times.get(1)).toBe(43.25);
    expect(times.get(2)).toBe(76);
    // Not yet recorded: the next one, and one that maps onto a used slot.
    expect(times.get(3)).toBeUndefined();
    expect(times.get(8)).toBeUndefined();
    expect(times.get(U32_MAX)).toBeUndefined();
    expect(times.oldest()).toBe(10.5);
  });

  test("an empty slot is not read as seq 0, and a real time of 0 is returned", () => {
    const times = new FrameTimes(4);
    times.record(1, millis(5));
    // Slot 0 still holds its initial zeroes, which look like "seq 0 at time 0": seq 0 was never recorded.
    expect(times.get(0)).toBeUndefined();
    times.record(2, millis(0));
    expect(times.get(2)).toBe(0);
  });

  test("past capacity the oldest frames fall out and their slots hold the newer ones", () => {
    const times = new FrameTimes(4);
    recordRun(times, 0, 10); // 0..9 at 1000..1009; the ring holds 6..9
    for (const seq of [0, 1, 2, 3, 4, 5]) expect(times.get(seq), `seq ${seq}`).toBeUndefined();
    expect([6, 7, 8, 9].map((s) => times.get(s))).toEqual([1006, 1007, 1008, 1009]);
    expect(times.oldest()).toBe(1006);
    // Newer than anything recorded.
    expect(times.get(10)).toBeUndefined();
    expect(times.get(13)).toBeUndefined();
  });

  test("oldest() follows the ring as it fills and then overwrites", () => {
    const times = new FrameTimes(4);
    times.record(100, millis(1));
    expect(times.oldest()).toBe(1);
    times.record(101, millis(2));
    times.record(102, millis(3));
    times.record(103, millis(4));
    expect(times.oldest()).toBe(1);
    times.record(104, millis(5));
    expect(times.oldest()).toBe(2);
    times.record(105, millis(6));
    expect(times.oldest()).toBe(3);
  });

  test("u32 wrap-around: 0xfffffffe, 0xffffffff, 0, 1 are all held (capacity 4, as in a power of two)", () => {
    const times = new FrameTimes(4);
    const seqs = recordRun(times, 0xfffffffe, 4);
    expect(seqs).toEqual([0xfffffffe, U32_MAX, 0, 1]);
    expect(seqs.map((s) => times.get(s))).toEqual([1000, 1001, 1002, 1003]);
    expect(times.oldest()).toBe(1000);
    // One more: 0xfffffffe falls out, the others stay.
    times.record(2, millis(1004));
    expect(times.get(0xfffffffe)).toBeUndefined();
    expect([U32_MAX, 0, 1, 2].map((s) => times.get(s))).toEqual([1001, 1002, 1003, 1004]);
    expect(times.oldest()).toBe(1001);
  });

  test("u32 wrap-around from well before the wrap, capacity 4096 as the hub uses", () => {
    const times = new FrameTimes(4096);
    const seqs = recordRun(times, (U32_MAX - 99) >>> 0, 200); // 100 before the wrap, 100 after
    expect(seqs.at(0)).toBe(U32_MAX - 99);
    expect(seqs.at(-1)).toBe(99);
    expect(seqs.map((s) => times.get(s))).toEqual(seqs.map((_, i) => 1000 + i));
    expect(times.oldest()).toBe(1000);
    expect(times.get(100)).toBeUndefined();
    expect(times.get((U32_MAX - 100) >>> 0)).toBeUndefined();
  });

  // Slots are seq & (capacity - 1): consistent across the u32 wrap only for powers of two.
  test.each([0, 3, 5, 6, 100, 1.5])("capacity %s is refused", (capacity) => {
    expect(() => new FrameTimes(capacity)).toThrow(RangeError);
  });

  test.each([1, 2, 8, 64])("u32 wrap-around with capacity %i: every one of the last `capacity` frames is held", (capacity) => {
    const times = new FrameTimes(capacity);
    const seqs = recordRun(times, (U32_MAX - 1) >>> 0, capacity);
    expect(seqs.map((s) => times.get(s))).toEqual(seqs.map((_, i) => 1000 + i));
    expect(times.oldest()).toBe(1000);
  });
});
