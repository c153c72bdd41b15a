// expiredSegments (server/record/retention.ts): which recorded segments the retention policy deletes.

import { describe, expect, test } from "vitest";
import { expiredSegments, type RetainedSegment } from "../../server/record/retention.js";

const HOUR_MS = 3_600_000;
const NOW = 1_800_000_000_000;

interface Seg extends RetainedSegment {
  readonly id: string;
}

/** A segment that ended `hoursAgo` before NOW. */
const seg = (id: string, hoursAgo: number, bytes: number, status = "finished"): Seg => ({ id, end: NOW - hoursAgo * HOUR_MS, bytes, status });
const ids = (segments: readonly Seg[]): string[] => segments.map((s) => s.id);

describe("expiredSegments", () => {
  test("by age: those that ended longer ago than the period, oldest first; one just at the limit stays", () => {
    const segments = [seg("a", 30, 10), seg("b", 25, 10), seg("c", 24, 10), seg("d", 1, 10)];
    expect(ids(expiredSegments(segments, { hours: 24, maxBytes: null }, NOW))).toEqual(["a", "b"]);
    expect(ids(expiredSegments(segments, { hours: 0.5, maxBytes: null }, NOW))).toEqual(["a", "b", "c", "d"]);
    expect(ids(expiredSegments(segments, { hours: 100, maxBytes: null }, NOW))).toEqual([]);
  });

  test("by bytes: the oldest go until the rest fit", () => {
    const segments = [seg("a", 4, 100), seg("b", 3, 200), seg("c", 2, 300), seg("d", 1, 400)];
    // 1000 in all: a (900 left) and b (700 left) go, then it fits.
    expect(ids(expiredSegments(segments, { hours: null, maxBytes: 700 }, NOW))).toEqual(["a", "b"]);
    expect(ids(expiredSegments(segments, { hours: null, maxBytes: 699 }, NOW))).toEqual(["a", "b", "c"]);
    expect(ids(expiredSegments(segments, { hours: null, maxBytes: 1000 }, NOW))).toEqual([]);
    expect(ids(expiredSegments(segments, { hours: null, maxBytes: 0 }, NOW))).toEqual(["a", "b", "c", "d"]);
  });

  test("never the open segment, however old or large; its bytes still count against the limit", () => {
    const segments = [seg("a", 50, 100), seg("b", 40, 100), seg("open", 30, 1000, "open")];
    expect(ids(expiredSegments(segments, { hours: 24, maxBytes: null }, NOW))).toEqual(["a", "b"]);
    // 1200 in all: deleting every finished one leaves 1000, still over, and the open one stays.
    expect(ids(expiredSegments(segments, { hours: null, maxBytes: 500 }, NOW))).toEqual(["a", "b"]);
    expect(expiredSegments([seg("open", 1000, 1e12, "open")], { hours: 1, maxBytes: 1 }, NOW)).toEqual([]);
  });

  test("both limits: a segment goes when either says so; age first does not leave the rest over the byte limit", () => {
    const segments = [seg("a", 30, 100), seg("b", 20, 500), seg("c", 10, 500), seg("d", 1, 500)];
    // a by age (1500 left), b by bytes (1000 left), then within.
    expect(ids(expiredSegments(segments, { hours: 24, maxBytes: 1000 }, NOW))).toEqual(["a", "b"]);
    // By age alone removes more than the bytes would.
    expect(ids(expiredSegments(segments, { hours: 5, maxBytes: 10_000 }, NOW))).toEqual(["a", "b", "c"]);
  });

  test("null limits keep everything; a partial segment is treated like a finished one; none in, none out", () => {
    const segments = [seg("a", 1e5, 1e9), seg("b", 1e4, 1e9, "partial")];
    expect(expiredSegments(segments, { hours: null, maxBytes: null }, NOW)).toEqual([]);
    expect(ids(expiredSegments(segments, { hours: 24, maxBytes: null }, NOW))).toEqual(["a", "b"]);
    expect(expiredSegments([], { hours: 1, maxBytes: 1 }, NOW)).toEqual([]);
  });

  test("returns the segments themselves, and leaves the list alone", () => {
    const segments = [seg("a", 30, 10), seg("b", 1, 10)];
    const copy = [...segments];
    const doomed = expiredSegments(segments, { hours: 24, maxBytes: null }, NOW);
    expect(doomed[0]).toBe(segments[0]);
    expect(segments).toEqual(copy);
  });
});
