// Server time of recent frames by sequence number, in a fixed ring: an ack names a sequence, and
// the hub needs the time of that frame to know the viewer's lag. Older frames fall out.

import type { Millis } from "../../shared/units.js";

export class FrameTimes {
  private readonly seqs: Uint32Array;
  private readonly times: Float64Array;
  private count = 0;
  private newest = 0;

  /** `capacity` must be a power of two, so slots stay consistent across the u32 wrap. */
  constructor(private readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1 || (capacity & (capacity - 1)) !== 0 || capacity > 2 ** 30) {
      throw new RangeError(`FrameTimes capacity must be a power of two, got ${capacity}`);
    }
    this.seqs = new Uint32Array(capacity);
    this.times = new Float64Array(capacity);
  }

  record(seq: number, time: Millis): void {
    const slot = seq & (this.capacity - 1);
    this.seqs[slot] = seq;
    this.times[slot] = time;
    this.newest = seq;
    this.count = Math.min(this.count + 1, this.capacity);
  }

  get(seq: number): Millis | undefined {
    if (this.count === 0) return undefined;
    const slot = seq & (this.capacity - 1);
    // The slot may hold a newer frame that wrapped onto it, or nothing yet.
    if (this.seqs[slot] !== seq || ((this.newest - seq) >>> 0) >= this.count) return undefined;
    return this.times[slot] as Millis;
  }

  /** Time of the oldest frame still held. */
  oldest(): Millis | undefined {
    if (this.count === 0) return undefined;
    return this.times[((this.newest - this.count + 1) >>> 0) & (this.capacity - 1)] as Millis;
  }
}
