// Frames per second and kbit/s over a sliding window of wall-clock time.

import type { Millis } from "../../shared/units.js";

export class RateMeter {
  private readonly times: number[] = [];
  private readonly sizes: number[] = [];
  private bytes = 0;

  constructor(private readonly windowMs: number) {}

  add(at: Millis, byteLength: number): void {
    this.times.push(at);
    this.sizes.push(byteLength);
    this.bytes += byteLength;
    this.prune(at);
  }

  rates(now: Millis): { fps: number; kbps: number } {
    this.prune(now);
    const seconds = this.windowMs / 1000;
    return { fps: this.times.length / seconds, kbps: (this.bytes * 8) / 1000 / seconds };
  }

  private prune(now: number): void {
    while (this.times.length > 0 && this.times[0]! <= now - this.windowMs) {
      this.times.shift();
      this.bytes -= this.sizes.shift()!;
    }
  }
}
