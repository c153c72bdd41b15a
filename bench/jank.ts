// Jank: pipe → presented while the page's main thread is blocked 30 ms of every 100 ms (a busy
// loop in a setInterval of the page), for the player on the main thread and the player in a worker
// (OffscreenCanvas), measured as the latency run measures canvascast: a performance mark after
// each paint, named with the frame's pipe → painted ms (in the worker, the worker's marks: the
// trace has every thread's), and the first Display::FrameDisplayed whose drawing began after it.
// Each page is traced twice, first without the busy loop and then with it, so the figures with
// jank have a reference taken on the same page a moment before (this machine's load moves both).

import type { Page } from "puppeteer";
import type { TestBrowser } from "../test/helpers/browser.js";
import { openPlayersPage } from "./browser-cost.js";
import { displayedAfter, traceTimeline, type Timeline } from "./presented.js";
import { summarize, type Summary } from "./stats.js";

export const JANK_PATHS = {
  main: "WebCodecs, main thread, paint on decoder output",
  worker: "WebCodecs, worker + OffscreenCanvas",
} as const;
export type JankPath = keyof typeof JANK_PATHS;

/** The page's main thread is busy this long … */
export const JANK_BLOCK_MS = 30;
/** … at the start of every interval this long. */
export const JANK_PERIOD_MS = 100;

export interface JankRun {
  readonly path: JankPath;
  readonly run: number;
  /** Frames presented in this run's trace. */
  readonly frames: number;
  /** pipe → presented p50 / p95 of this run, ms, with the busy loop … */
  readonly p50: number;
  readonly p95: number;
  /** … and without it, on the same page just before. */
  readonly unjankedP50: number;
  readonly unjankedP95: number;
  /** How often the busy loop ran in the trace's window, and for how long in all, ms. */
  readonly blocks: number;
  readonly blockedMs: number;
}

export interface JankResult {
  readonly what: string;
  readonly runs: number;
  readonly secondsPerTrace: number;
  readonly blockMs: number;
  readonly periodMs: number;
  /** pipe → drawn, ms (the player's paint) */
  readonly drawn: Summary;
  /** pipe → presented, ms */
  readonly presented: Summary;
  /** The same on the same pages just before the busy loop started. */
  readonly unjanked: { readonly drawn: Summary; readonly presented: Summary };
  /** Main-thread blocks in the traced windows, and the time they took, ms. */
  readonly blocks: number;
  readonly blockedMs: number;
  readonly perRun: readonly JankRun[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `runs` turns of each path (alternating, on a page of its own each), `seconds` of trace each. */
export async function measureJank(
  browser: TestBrowser,
  serverUrl: string,
  runs: number,
  seconds: number,
  onRun: (r: JankRun) => void,
): Promise<Record<JankPath, JankResult>> {
  const pooled = (): Record<"janked" | "unjanked", PaintLatencies> => ({ janked: { drawn: [], presented: [] }, unjanked: { drawn: [], presented: [] } });
  const frames: Record<JankPath, Record<"janked" | "unjanked", PaintLatencies>> = { main: pooled(), worker: pooled() };
  const perRun: JankRun[] = [];
  for (let run = 1; run <= runs; run++) {
    // Alternate which path goes first, so neither always meets the machine in the same state.
    const order: JankPath[] = run % 2 === 1 ? ["main", "worker"] : ["worker", "main"];
    for (const path of order) {
      const page = await browser.newPage();
      try {
        const r = await traceJanked(page, serverUrl, path, seconds);
        for (const k of ["janked", "unjanked"] as const) {
          frames[path][k].drawn.push(...r[k].drawn);
          frames[path][k].presented.push(...r[k].presented);
        }
        const s = summarize(r.janked.presented);
        const u = summarize(r.unjanked.presented);
        const result: JankRun = { path, run, frames: s.n, p50: s.p50, p95: s.p95, unjankedP50: u.p50, unjankedP95: u.p95, blocks: r.blocks, blockedMs: r.blockedMs };
        perRun.push(result);
        onRun(result);
      } finally {
        await page.close();
      }
    }
  }
  const result = (path: JankPath): JankResult => {
    const runsOf = perRun.filter((r) => r.path === path);
    return {
      what: JANK_PATHS[path],
      runs,
      secondsPerTrace: seconds,
      blockMs: JANK_BLOCK_MS,
      periodMs: JANK_PERIOD_MS,
      drawn: summarize(frames[path].janked.drawn),
      presented: summarize(frames[path].janked.presented),
      unjanked: { drawn: summarize(frames[path].unjanked.drawn), presented: summarize(frames[path].unjanked.presented) },
      blocks: runsOf.reduce((a, r) => a + r.blocks, 0),
      blockedMs: runsOf.reduce((a, r) => a + r.blockedMs, 0),
      perRun: runsOf,
    };
  };
  return { main: result("main"), worker: result("worker") };
}

/** Each frame's pipe → drawn and pipe → presented, ms. */
interface PaintLatencies {
  readonly drawn: number[];
  readonly presented: number[];
}

/**
 * One player on a bare page, `seconds` of trace, then the busy loop started and `seconds` of trace
 * again.
 */
async function traceJanked(
  page: Page,
  serverUrl: string,
  path: JankPath,
  seconds: number,
): Promise<{ unjanked: PaintLatencies; janked: PaintLatencies; blocks: number; blockedMs: number }> {
  await page.evaluateOnNewDocument(() => {
    (globalThis as { canvascastMarkPaints?: boolean }).canvascastMarkPaints = true;
  });
  await openPlayersPage(page, serverUrl, "cam0", 1, path === "worker", "decode");
  await sleep(2000);
  const unjanked = paintLatencies(await traceTimeline(page, seconds));
  await page.evaluate(
    (blockMs: number, periodMs: number) => {
      const jank = { blocks: 0, blockedMs: 0 };
      (window as unknown as { benchJank: typeof jank }).benchJank = jank;
      setInterval(() => {
        const start = performance.now();
        while (performance.now() - start < blockMs) {
          // busy: the main thread runs nothing else
        }
        jank.blocks++;
        jank.blockedMs += performance.now() - start;
      }, periodMs);
    },
    JANK_BLOCK_MS,
    JANK_PERIOD_MS,
  );
  await sleep(500);
  const before = await blocked(page);
  const janked = paintLatencies(await traceTimeline(page, seconds));
  const after = await blocked(page);
  return { unjanked, janked, blocks: after.blocks - before.blocks, blockedMs: after.blockedMs - before.blockedMs };
}

function paintLatencies(tl: Timeline): PaintLatencies {
  const drawn: number[] = [];
  const presented: number[] = [];
  for (const m of tl.marks) {
    // The player's mark (web/player/webcodecs-backend.ts): `cc-paint <pipe → painted ms> <server time − PTS ms>`.
    const x = /^cc-paint (-?[\d.]+) (-?[\d.]+)$/.exec(m.name);
    if (!x) continue;
    const pipe = m.ts - Number(x[1]) * 1000;
    const shown = displayedAfter(tl, m.ts);
    if (shown === undefined) continue;
    drawn.push((m.ts - pipe) / 1000);
    presented.push((shown.displayed - pipe) / 1000);
  }
  return { drawn, presented };
}

function blocked(page: Page): Promise<{ blocks: number; blockedMs: number }> {
  return page.evaluate(() => ({ ...(window as unknown as { benchJank: { blocks: number; blockedMs: number } }).benchJank }));
}
