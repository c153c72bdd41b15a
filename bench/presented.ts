// Pipe → presented for canvas players, from Chromium's own presentation feedback: a DevTools trace
// of `blink.user_timing` (the player's per-paint performance marks, named with the frame's
// pipe → painted ms, when `globalThis.canvascastMarkPaints` is set) and `viz`
// (`Display::FrameDisplayed`: when the display compositor showed a frame). A paint is presented by
// the first displayed frame after it, so pipe → presented = pipe → painted + (displayed − paint).
//
// Capture → presented: a frame's PTS is the pipeline's running time at capture, on the pipeline's
// clock. gst-launch does not say when that clock started, so the mapping to wall clock is
// estimated: for every frame, d = server time − PTS (ms) is the unknown clock offset plus that
// frame's capture → pipe delay (encode + pipe). The smallest d over the run is taken as the offset,
// so capture → presented = pipe → presented + (d − min d): a lower bound that leaves out the
// fastest frame's own capture → pipe delay (DESIGN.md: 3.6 ms p50 from capture to encoder output).

import type { Page } from "puppeteer";

interface TraceEvent {
  readonly name: string;
  readonly cat: string;
  readonly ts: number;
}

export interface PresentedSamples {
  /** pipe → painted, ms, per painted frame */
  readonly painted: number[];
  /** pipe → presented, ms, per painted frame that a later displayed frame showed */
  readonly presented: number[];
  /** paint → displayed, ms: the wait for the frame clock plus compositing */
  readonly paintToDisplay: number[];
  /** capture → presented, ms (lower bound; see above) */
  readonly captureToPresented: number[];
}

/** A performance mark of the page, with the wait until the display showed the next frame (ms). */
export interface MarkDisplayed {
  readonly name: string;
  readonly waitMs: number;
}

/** Traces `seconds` and pairs every performance mark with the next displayed frame. */
export async function traceMarksDisplayed(page: Page, seconds: number): Promise<MarkDisplayed[]> {
  const events = await trace(page, seconds);
  const displayed = displayedTimes(events);
  const out: MarkDisplayed[] = [];
  for (const e of events) {
    if (e.cat !== "blink.user_timing") continue;
    const next = firstAfter(displayed, e.ts);
    if (next !== undefined) out.push({ name: e.name, waitMs: (next - e.ts) / 1000 });
  }
  return out;
}

async function trace(page: Page, seconds: number): Promise<TraceEvent[]> {
  await page.tracing.start({ categories: ["blink.user_timing", "viz", "disabled-by-default-display.framedisplayed"] });
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const buffer = await page.tracing.stop();
  if (!buffer) throw new Error("empty trace");
  return (JSON.parse(Buffer.from(buffer).toString("utf8")) as { traceEvents: TraceEvent[] }).traceEvents;
}

function displayedTimes(events: readonly TraceEvent[]): number[] {
  return events
    .filter((e) => e.name === "Display::FrameDisplayed")
    .map((e) => e.ts)
    .sort((a, b) => a - b);
}

/** Starts the trace, waits `seconds`, and pairs each paint mark with the next displayed frame. */
export async function tracePresented(page: Page, seconds: number): Promise<PresentedSamples> {
  const traceEvents = await trace(page, seconds);
  const displayed = displayedTimes(traceEvents);
  const out: PresentedSamples = { painted: [], presented: [], paintToDisplay: [], captureToPresented: [] };
  const offsets: number[] = [];
  for (const e of traceEvents) {
    const m = /^cc-paint (-?[\d.]+) (-?[\d.]+)$/.exec(e.name);
    if (!m) continue;
    const painted = Number(m[1]);
    out.painted.push(painted);
    const next = firstAfter(displayed, e.ts);
    if (next === undefined) continue;
    const wait = (next - e.ts) / 1000; // trace timestamps are µs
    out.paintToDisplay.push(wait);
    out.presented.push(painted + wait);
    offsets.push(Number(m[2]));
  }
  const offset = Math.min(...offsets);
  out.presented.forEach((p, i) => out.captureToPresented.push(p + offsets[i]! - offset));
  return out;
}

function firstAfter(sorted: readonly number[], t: number): number | undefined {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! <= t) lo = mid + 1;
    else hi = mid;
  }
  return sorted[lo];
}
