// Chromium's own presentation feedback, from a DevTools trace of the page: `blink.user_timing` (the
// players' per-paint performance marks: canvascast's when `globalThis.canvascastMarkPaints` is set,
// jsmpeg's from the bench page), `viz` and `disabled-by-default-display.framedisplayed`:
// `Display::FrameDisplayed` is when the display compositor showed a frame, and
// `DelayBasedBeginFrameSource::OnTimerTick` is each tick of the display's frame clock (60 Hz here). A paint is
// presented by the first displayed frame whose drawing (`Display::DrawAndSwap`) began after it: a
// frame already being drawn when the paint happened cannot show it.

import type { Page } from "puppeteer";

interface TraceEvent {
  readonly name: string;
  readonly cat: string;
  /** µs, on the same monotonic clock as every process's performance.now() */
  readonly ts: number;
}

export interface Timeline {
  /** Performance marks, in trace order: name and time (µs). */
  readonly marks: { readonly name: string; readonly ts: number }[];
  /** Display::FrameDisplayed times, µs, sorted. */
  readonly displayed: number[];
  /** Display::DrawAndSwap start times, µs, sorted. */
  readonly draws: number[];
  /** Frame-clock ticks (DelayBasedBeginFrameSource::OnTimerTick), µs, sorted. */
  readonly ticks: number[];
  /** Trace µs minus the page's performance.now() ms × 1000 (from a mark made as the trace began). */
  readonly pageOffsetUs: number;
}

const SYNC_MARK = "bench-trace-sync";

/** Traces `page` for `seconds`. */
export async function traceTimeline(page: Page, seconds: number): Promise<Timeline> {
  await page.tracing.start({ categories: ["blink.user_timing", "viz", "disabled-by-default-display.framedisplayed"] });
  const syncAt = await page.evaluate((name: string) => performance.mark(name).startTime, SYNC_MARK);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const buffer = await page.tracing.stop();
  if (!buffer) throw new Error("empty trace");
  const events = (JSON.parse(Buffer.from(buffer).toString("utf8")) as { traceEvents: TraceEvent[] }).traceEvents;
  const times = (name: string): number[] =>
    events
      .filter((e) => e.name === name)
      .map((e) => e.ts)
      .sort((a, b) => a - b);
  const marks = events.filter((e) => e.cat === "blink.user_timing").map((e) => ({ name: e.name, ts: e.ts }));
  const sync = marks.find((m) => m.name === SYNC_MARK);
  if (sync === undefined) throw new Error("the trace has no sync mark");
  return {
    marks,
    displayed: times("Display::FrameDisplayed"),
    draws: times("Display::DrawAndSwap"),
    ticks: times("DelayBasedBeginFrameSource::OnTimerTick"),
    pageOffsetUs: sync.ts - syncAt * 1000,
  };
}

/**
 * When the display showed a picture painted at `t` (µs): the first frame drawn after it, with the
 * time its drawing began.
 */
export function displayedAfter(tl: Timeline, t: number): { readonly draw: number; readonly displayed: number } | undefined {
  const draw = firstAfter(tl.draws, t);
  const displayed = draw === undefined ? undefined : firstAfter(tl.displayed, draw);
  return draw === undefined || displayed === undefined ? undefined : { draw, displayed };
}

/** The first element of `sorted` after `t`. */
export function firstAfter(sorted: readonly number[], t: number): number | undefined {
  return sorted[upperBound(sorted, t)];
}

/** The last element of `sorted` at or before `t`. */
export function lastAtOrBefore(sorted: readonly number[], t: number): number | undefined {
  const i = upperBound(sorted, t);
  return i === 0 ? undefined : sorted[i - 1];
}

/** Index of the first element greater than `t`. */
function upperBound(sorted: readonly number[], t: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
