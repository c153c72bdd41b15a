// Reconnect delays: exponential backoff with "equal jitter" (half the delay fixed, half random), so
// a crowd of viewers dropped together by a server restart does not reconnect in lock-step, and no
// viewer retries sooner than half the nominal delay.

export interface BackoffOptions {
  /** Nominal delay of the first retry, ms. */
  readonly baseMs: number;
  /** Ceiling of the nominal delay, ms. */
  readonly maxMs: number;
}

/** Nominal delay before retry number `attempt` (0 = first retry): base · 2^attempt, capped at max. */
export function nominalDelay(attempt: number, { baseMs, maxMs }: BackoffOptions): number {
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), 30);
  return Math.min(maxMs, baseMs * 2 ** exponent);
}

/** The delay to wait: uniformly random in [nominal/2, nominal]. `random` returns [0, 1), like Math.random. */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const nominal = nominalDelay(attempt, options);
  return Math.round(nominal / 2 + (random() * nominal) / 2);
}
