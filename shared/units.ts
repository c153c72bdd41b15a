// Branded time units. GDP carries nanoseconds, the wire protocol microseconds of PTS and
// milliseconds of wall clock; the brands keep them from being mixed up silently.

export type Nanos = number & { readonly __unit: "ns" };
export type Micros = number & { readonly __unit: "us" };
export type Millis = number & { readonly __unit: "ms" };

export const nanos = (n: number): Nanos => n as Nanos;
export const micros = (n: number): Micros => n as Micros;
export const millis = (n: number): Millis => n as Millis;

export const nanosToMicros = (n: Nanos): Micros => (n / 1000) as Micros;

/** Wall clock, ms since the Unix epoch, with sub-millisecond resolution. */
export function wallClockMs(): Millis {
  return (performance.timeOrigin + performance.now()) as Millis;
}
