import { describe, expect, it } from "vitest";
import { backoffDelay, nominalDelay } from "../../web/player/backoff.js";

const OPTIONS = { baseMs: 500, maxMs: 10_000 };

describe("reconnect backoff", () => {
  it("doubles the nominal delay per attempt up to the ceiling", () => {
    expect([0, 1, 2, 3, 4, 5, 6].map((n) => nominalDelay(n, OPTIONS))).toEqual([
      500, 1000, 2000, 4000, 8000, 10_000, 10_000,
    ]);
    expect(nominalDelay(Infinity, OPTIONS)).toBe(10_000);
    expect(nominalDelay(-3, OPTIONS)).toBe(500);
  });

  it("draws each delay between half the nominal delay and all of it", () => {
    expect(backoffDelay(2, OPTIONS, () => 0)).toBe(1000);
    expect(backoffDelay(2, OPTIONS, () => 0.5)).toBe(1500);
    expect(backoffDelay(2, OPTIONS, () => 0.999_999)).toBe(2000);
    expect(backoffDelay(40, OPTIONS, () => 0)).toBe(5000);
  });

  it("spreads viewers that retry together", () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(3, OPTIONS)));
    expect(delays.size).toBeGreaterThan(10);
    for (const d of delays) {
      expect(d).toBeGreaterThanOrEqual(2000);
      expect(d).toBeLessThanOrEqual(4000);
    }
  });
});
