// Waiting in tests: poll for a condition with a deadline (until, waitFor), or a plain pause (sleep)
// for the few places that need an interval to pass, not a condition to hold.

/** Polls an async probe until it returns a value (not undefined), or fails after timeoutMs naming what it waited for. */
export async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** `until` for a synchronous yes/no condition, checked every 50 ms. */
export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  await until(what, timeoutMs, () => Promise.resolve(cond() ? true : undefined), 50);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
