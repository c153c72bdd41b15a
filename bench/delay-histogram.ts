// Delivery delays of many viewers in several client processes, pooled: each process counts its
// delays in 0.01 ms bins and sends the counts; the parent adds them up and reads percentiles.

/** Bin width, ms. */
const BIN_MS = 0.01;

export class DelayHistogram {
  /** Bin index (delay / BIN_MS, rounded down) → count. */
  readonly #bins = new Map<number, number>();
  #count = 0;

  get count(): number {
    return this.#count;
  }

  add(ms: number): void {
    const bin = Math.max(0, Math.floor(ms / BIN_MS));
    this.#bins.set(bin, (this.#bins.get(bin) ?? 0) + 1);
    this.#count++;
  }

  /** Adds the counts of another histogram (its toJSON()). */
  merge(bins: Readonly<Record<string, number>>): void {
    for (const [bin, n] of Object.entries(bins)) {
      this.#bins.set(Number(bin), (this.#bins.get(Number(bin)) ?? 0) + n);
      this.#count += n;
    }
  }

  /** The p-th percentile, ms (the upper edge of its bin), or null when empty. */
  percentile(p: number): number | null {
    if (this.#count === 0) return null;
    const rank = Math.max(1, Math.ceil((p / 100) * this.#count));
    let seen = 0;
    for (const bin of [...this.#bins.keys()].sort((a, b) => a - b)) {
      seen += this.#bins.get(bin)!;
      if (seen >= rank) return (bin + 1) * BIN_MS;
    }
    return null;
  }

  toJSON(): Record<string, number> {
    return Object.fromEntries(this.#bins);
  }
}

/** How the throttled viewers of a bench run read: acking /ws/, silent /ws/, silent /webm/?meta=1. */
export const SLOW_KINDS = ["ws-acks", "ws-no-acks", "webm"] as const;
export type SlowKind = (typeof SLOW_KINDS)[number];

/** What one client process (bench/clients.ts) reports for its measurement window. */
export interface ClientsReport {
  readonly viewers: number;
  readonly throttled: number;
  readonly seconds: number;
  readonly healthy: {
    readonly viewers: number;
    /** Frames received over the window, all healthy viewers together. */
    readonly frames: number;
    /** Sequence-number gaps (frames the server did not send). */
    readonly gaps: number;
    /** Delivery delay (arrival − header server time), live frames: DelayHistogram bins. */
    readonly delays: Record<string, number>;
  };
  readonly slow: {
    readonly viewers: number;
    readonly frames: number;
    readonly skippedNotices: number;
    /** How old each frame was when read (live frames), over every throttled viewer. */
    readonly lagP50Ms: number | null;
    readonly lagMaxMs: number | null;
  };
}
