// Percentiles and number formatting for the benchmark tables.

/** The p-th percentile of an ascending array (NaN when empty). */
export const pct = (sorted: readonly number[], p: number): number =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

export const median = (xs: readonly number[]): number => pct([...xs].sort((a, b) => a - b), 50);

export interface Summary {
  readonly n: number;
  readonly min: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

export function summarize(xs: readonly number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, min: s[0] ?? NaN, p50: pct(s, 50), p95: pct(s, 95), p99: pct(s, 99), max: s.at(-1) ?? NaN };
}

/** A distribution in bins of `binMs`: [lower edge, count] of each bin that is not empty, ascending. */
export interface Histogram {
  readonly binMs: number;
  readonly bins: [number, number][];
}

export function histogram(xs: readonly number[], binMs: number): Histogram {
  const counts = new Map<number, number>();
  for (const x of xs) {
    const edge = Math.floor(x / binMs);
    counts.set(edge, (counts.get(edge) ?? 0) + 1);
  }
  const bins = [...counts].sort((a, b) => a[0] - b[0]).map(([edge, n]): [number, number] => [Math.round(edge * binMs * 1000) / 1000, n]);
  return { binMs, bins };
}

/** One decimal, or – for a missing value. */
export const fmt = (n: number | null | undefined): string => (n === null || n === undefined || Number.isNaN(n) ? "–" : n.toFixed(1));
