// The latency run: every player side by side, against the same canvascast server and the same
// jsmpeg relay (both pipelines run throughout, so every player is measured under the same load),
// in turns: each run traces each path once, on a bare page of its own, and the runs are pooled.
// The source's clock and Chromium's frame clock lock into a different phase on each page, which
// moves a single trace's median by up to half a frame.
//
// Per frame, on the trace's clock: pipe (the frame's server time: its last byte read from the gst
// pipe, or ffmpeg's TS out for jsmpeg), drawn (the player's paint), presented (the first
// Display::FrameDisplayed after the paint; for MSE, requestVideoFrameCallback's
// expectedDisplayTime), and ready (decode done: see frameClockFloor).

import type { Page } from "puppeteer";
import type { TestBrowser } from "../test/helpers/browser.js";
import { gotoOrigin, openPlayersPage } from "./browser-cost.js";
import { displayedAfter, firstAfter, lastAtOrBefore, traceTimeline, type Timeline } from "./presented.js";
import { histogram, median, summarize, type Histogram, type Summary } from "./stats.js";

export const LATENCY_PATHS = {
  main: "(a) WebCodecs, main thread, paint on decoder output",
  worker: "(b) WebCodecs, worker + OffscreenCanvas",
  mse: "(c) MSE <video> on /webm/",
  jsmpeg: "(d) jsmpeg (WASM MPEG-1, canvas 2D)",
  raf: "WebCodecs, main thread, paint in requestAnimationFrame",
} as const;
export type LatencyPath = keyof typeof LATENCY_PATHS;

/** One frame, trace µs. */
interface FrameSample {
  readonly pipe: number;
  readonly drawn: number;
  /** Decode done, where the path shows it (see frameClockFloor). */
  readonly ready: number | undefined;
  /** The first frame the display drew after `drawn`: when its drawing began, and Display::FrameDisplayed. */
  readonly shown: { readonly draw: number; readonly displayed: number } | undefined;
  /** MSE: requestVideoFrameCallback's expectedDisplayTime. */
  readonly expectedDisplay?: number;
  /** canvascast: the frame's server time − PTS, ms (for capture → presented). */
  readonly serverMinusPtsMs?: number;
}

interface PathTrace {
  readonly samples: FrameSample[];
  readonly ticks: number[];
}

interface Sources {
  /** The canvascast server's http URL. */
  readonly serverUrl: string;
  /** The jsmpeg relay's page. */
  readonly jsmpegUrl: string;
}

/** Bin width of the stored pipe → presented distribution: a tenth of the fastest path's p50. */
const PRESENTED_BIN_MS = 0.5;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * `runs` turns of every path in `paths`, `seconds` of trace each. The order rotates each run, so
 * no path always comes first. `onStep` gets a line after each trace.
 */
export async function measureLatency(
  browser: TestBrowser,
  sources: Sources,
  paths: readonly LatencyPath[],
  runs: number,
  seconds: number,
  onStep?: (line: string) => void,
): Promise<LatencyResults> {
  const traces = new Map<LatencyPath, PathTrace[]>(paths.map((p) => [p, []]));
  for (let run = 0; run < runs; run++) {
    for (let k = 0; k < paths.length; k++) {
      const path = paths[(k + run) % paths.length]!;
      const page = await browser.newPage();
      const start = performance.now();
      try {
        const trace = await tracePath(page, path, sources, seconds);
        traces.get(path)!.push(trace);
        const drawn = median(trace.samples.map((f) => (f.drawn - f.pipe) / 1000));
        onStep?.(`latency run ${run + 1}/${runs}, ${LATENCY_PATHS[path]}: ${trace.samples.length} frames, pipe → drawn p50 ${drawn.toFixed(1)} ms (${((performance.now() - start) / 1000).toFixed(1)} s)`);
      } finally {
        await page.close();
      }
    }
  }
  return summarizeLatency(traces, runs, seconds);
}

async function tracePath(page: Page, path: LatencyPath, sources: Sources, seconds: number): Promise<PathTrace> {
  if (path === "jsmpeg") {
    await page.goto(sources.jsmpegUrl, { waitUntil: "load" });
    await sleep(2000);
    const tl = await traceTimeline(page, seconds);
    const drawnMs = await page.evaluate(() => (window as unknown as { bench: { latencies(): number[] } }).bench.latencies());
    const decodeMs = await page.evaluate(() => (window as unknown as { bench: { decodeMs(): number[] } }).bench.decodeMs());
    const samples: FrameSample[] = [];
    for (const m of tl.marks) {
      const j = /^jsm-draw (\d+)$/.exec(m.name)?.[1];
      const lat = j === undefined ? undefined : drawnMs[Number(j)];
      if (lat === undefined) continue;
      const pipe = m.ts - lat * 1000;
      // jsmpeg decodes in requestAnimationFrame: the floor counts its decode time, not its wait for rAF.
      samples.push({ pipe, drawn: m.ts, ready: pipe + (decodeMs[Number(j)] ?? 0) * 1000, shown: displayedAfter(tl, m.ts) });
    }
    return { samples, ticks: tl.ticks };
  }
  if (path === "mse") {
    await page.evaluateOnNewDocument(recordMseFrames);
    await openMsePage(page, sources.serverUrl);
    await sleep(3000); // MSE starts, then seeks to the live edge
    const tl = await traceTimeline(page, seconds);
    return { samples: await mseSamples(page, tl), ticks: tl.ticks };
  }
  await page.evaluateOnNewDocument(() => {
    (globalThis as { canvascastMarkPaints?: boolean }).canvascastMarkPaints = true;
  });
  await openPlayersPage(page, sources.serverUrl, "cam0", 1, path === "worker", path === "raf" ? "raf" : "decode");
  await sleep(2000);
  const tl = await traceTimeline(page, seconds);
  const samples: FrameSample[] = [];
  for (const m of tl.marks) {
    const x = /^cc-paint (-?[\d.]+) (-?[\d.]+)$/.exec(m.name);
    if (!x) continue;
    const pipe = m.ts - Number(x[1]) * 1000;
    // Painting on decoder output, the paint is when decoding ended; painting in rAF it is not.
    samples.push({ pipe, drawn: m.ts, ready: path === "raf" ? undefined : m.ts, shown: displayedAfter(tl, m.ts), serverMinusPtsMs: Number(x[2]) });
  }
  return { samples, ticks: tl.ticks };
}

/** A bare page of the server's origin with one `<canvas-cast mode="mse">`. */
async function openMsePage(page: Page, serverUrl: string): Promise<void> {
  await gotoOrigin(page, serverUrl);
  await page.evaluate(async (src: string) => {
    document.body.innerHTML = "";
    await import(`${location.origin}/canvascast.js`);
    const el = document.createElement("canvas-cast");
    el.setAttribute("mode", "mse");
    el.setAttribute("src", src);
    el.style.cssText = "display:block;width:640px;height:480px";
    document.body.append(el);
  }, `${serverUrl.replace(/^http/, "ws")}ws/cam0`);
}

/**
 * Runs in the MSE page before its scripts: records the server's per-frame times from the
 * `/webm/…?meta=1` socket's `frame` messages (media time → server time), and every
 * requestVideoFrameCallback the player gets, without touching the player.
 */
function recordMseFrames(): void {
  interface Presented {
    readonly mediaMs: number;
    readonly presentationTime: number;
    readonly expectedDisplayTime: number;
  }
  const frameTimes = new Map<number, number>();
  const frames: Presented[] = [];
  (window as unknown as { benchMse: unknown }).benchMse = { frameTimes, frames };
  const Base = window.WebSocket;
  window.WebSocket = class extends Base {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols);
      this.addEventListener("message", (e: MessageEvent) => {
        if (typeof e.data !== "string") return;
        const m = JSON.parse(e.data) as { type?: unknown; mediaTimeMs?: unknown; serverTime?: unknown };
        if (m.type === "frame" && typeof m.mediaTimeMs === "number" && typeof m.serverTime === "number") {
          frameTimes.set(Math.round(m.mediaTimeMs), m.serverTime);
        }
      });
    }
  };
  const rvfc = Object.getOwnPropertyDescriptor(HTMLVideoElement.prototype, "requestVideoFrameCallback")!.value as (
    this: HTMLVideoElement,
    cb: VideoFrameRequestCallback,
  ) => number;
  HTMLVideoElement.prototype.requestVideoFrameCallback = function (this: HTMLVideoElement, cb: VideoFrameRequestCallback): number {
    return rvfc.call(this, (now, md) => {
      frames.push({ mediaMs: Math.round(md.mediaTime * 1000), presentationTime: md.presentationTime, expectedDisplayTime: md.expectedDisplayTime });
      cb(now, md);
    });
  };
}

async function mseSamples(page: Page, tl: Timeline): Promise<FrameSample[]> {
  const { times, frames, timeOrigin } = await page.evaluate(() => {
    const b = (window as unknown as { benchMse: { frameTimes: Map<number, number>; frames: unknown[] } }).benchMse;
    return { times: [...b.frameTimes], frames: b.frames, timeOrigin: performance.timeOrigin };
  });
  const serverTimes = new Map(times);
  const start = tl.ticks[0] ?? Infinity;
  const end = tl.ticks.at(-1) ?? -Infinity;
  const samples: FrameSample[] = [];
  for (const f of frames as { mediaMs: number; presentationTime: number; expectedDisplayTime: number }[]) {
    const serverTime = serverTimes.get(f.mediaMs) ?? serverTimes.get(f.mediaMs - 1) ?? serverTimes.get(f.mediaMs + 1);
    const drawn = f.presentationTime * 1000 + tl.pageOffsetUs;
    if (serverTime === undefined || drawn < start || drawn > end) continue;
    samples.push({
      // Server time is the server's wall clock; the page's is timeOrigin + now (same machine).
      pipe: (serverTime - timeOrigin) * 1000 + tl.pageOffsetUs,
      drawn,
      ready: undefined,
      shown: displayedAfter(tl, drawn),
      expectedDisplay: f.expectedDisplayTime * 1000 + tl.pageOffsetUs,
    });
  }
  return samples;
}

export interface PathLatency {
  readonly what: string;
  readonly runs: number;
  /** pipe → drawn (MSE: requestVideoFrameCallback's presentationTime, the frame handed to the compositor), ms */
  readonly drawn: Summary;
  /** pipe → presented, ms */
  readonly presented: Summary;
  /** pipe → presented of every frame, in PRESENTED_BIN_MS bins (for the charts). */
  readonly presentedHistogram: Histogram;
  /** MSE: pipe → the first Display::FrameDisplayed after presentationTime (trace), ms */
  readonly presentedTrace?: Summary;
  /** Each figure of `drawn` and `presented` ÷ (a)'s. */
  readonly ratioToA: { drawn: Summary; presented: Summary } | undefined;
  /** p50/p99 pipe → presented of each run. */
  readonly perRun: { p50: number; p99: number }[];
  /** Per frame: displayed − the later of the paint and the tick that opened its interval, ms. */
  readonly compositing: Summary;
  /** pipe → ready (decode done) p50, ms; for raf and MSE, (a)'s. */
  readonly decodeP50: number;
  /** Per frame: ready → the next frame-clock tick, ms. */
  readonly waitP50: number;
  /** The frame-clock floor per frame (see frameClockFloor), ms. */
  readonly floor: Summary;
  /** decode p50 + half a tick interval + compositing: the mean-wait model, ms. */
  readonly meanWaitFloor: number;
  /** Per frame: presented − floor, ms. */
  readonly aboveFloor: Summary;
  /** Per frame: presented − (decode + C), the floor without the wait for a tick, ms. */
  readonly aboveDecodeAndCompositing: Summary;
  /** (a): capture → presented, lower bound (see docs/benchmarks.md), ms. */
  readonly captureToPresented?: Summary;
}

export interface LatencyResults {
  readonly runs: number;
  readonly secondsPerTrace: number;
  /** Median interval of the display's frame clock, ms. */
  readonly tickIntervalMs: number;
  /** The least compositing latency seen (displayed − the later of the paint and the tick before its drawing began), ms. */
  readonly compositingMinMs: number;
  readonly paths: Partial<Record<LatencyPath, PathLatency>>;
}

/**
 * The frame-clock floor for one frame: what it would take to show it if nothing waited but the
 * clock. floor = (ready − pipe) + (the next tick after ready − ready) + C, where ready is when the
 * frame was decoded (the paint, for players that paint on decoder output; pipe + jsmpeg's own
 * decode + render time for jsmpeg; pipe + (a)'s median decode for the rAF and MSE paths, whose
 * decode end is not visible), the tick is the display's next BeginFrame in the same trace (see nextTick), and C is
 * the least compositing latency seen in the whole run (canvas paths).
 */
function frameClockFloor(pipe: number, ready: number, ticks: readonly number[], tickUs: number, compositingUs: number): number | undefined {
  const tick = nextTick(ready, ticks, tickUs);
  return tick === undefined ? undefined : (tick - pipe + compositingUs) / 1000;
}

/**
 * The frame clock's first tick after `t`. Should the trace miss ticks (a stalled viz thread): where
 * the next recorded tick is more than a tick and a half away, the clock's grid is carried on from
 * the last tick before `t`.
 */
function nextTick(t: number, ticks: readonly number[], tickUs: number): number | undefined {
  const next = firstAfter(ticks, t);
  if (next !== undefined && next - t <= 1.5 * tickUs) return next;
  const prev = lastAtOrBefore(ticks, t);
  return prev === undefined ? next : prev + tickUs * Math.max(1, Math.ceil((t - prev) / tickUs));
}

function summarizeLatency(traces: Map<LatencyPath, PathTrace[]>, runs: number, seconds: number): LatencyResults {
  const all = [...traces.entries()];
  const intervals = all.flatMap(([, ts]) => ts.flatMap((t) => t.ticks.slice(1).map((x, i) => (x - t.ticks[i]!) / 1000)));
  const tickIntervalMs = median(intervals);
  // Compositing: from the later of the paint and the tick that opened the interval to the display.
  const compositing = new Map<LatencyPath, number[]>();
  for (const [path, ts] of all) {
    const cs: number[] = [];
    compositing.set(path, cs);
    for (const t of ts) {
      for (const s of t.samples) {
        if (s.shown === undefined) continue;
        const tick = lastAtOrBefore(t.ticks, s.shown.draw) ?? s.drawn;
        cs.push((s.shown.displayed - Math.max(s.drawn, tick)) / 1000);
      }
    }
  }
  // MSE's is left out: the <video> frame's presentationTime is not when its picture was ready.
  const compositingUs = 1000 * Math.min(...[...compositing].filter(([path]) => path !== "mse").flatMap(([, cs]) => cs));
  const a = traces.get("main");
  const decodeA = a === undefined ? NaN : median(a.flatMap((t) => t.samples.map((s) => ((s.ready ?? s.drawn) - s.pipe) / 1000)));
  const paths: Partial<Record<LatencyPath, PathLatency>> = {};
  for (const [path, ts] of all) {
    const drawn: number[] = [];
    const presented: number[] = [];
    const presentedTrace: number[] = [];
    const decode: number[] = [];
    const wait: number[] = [];
    const floor: number[] = [];
    const above: number[] = [];
    const aboveNoWait: number[] = [];
    const capture: number[] = [];
    const perRun: { p50: number; p99: number }[] = [];
    for (const t of ts) {
      const runPresented: number[] = [];
      const minOffset = Math.min(...t.samples.map((s) => s.serverMinusPtsMs ?? Infinity));
      for (const s of t.samples) {
        drawn.push((s.drawn - s.pipe) / 1000);
        const shown = path === "mse" ? s.expectedDisplay : s.shown?.displayed;
        if (path === "mse" && s.shown !== undefined) presentedTrace.push((s.shown.displayed - s.pipe) / 1000);
        if (shown === undefined) continue;
        const p = (shown - s.pipe) / 1000;
        presented.push(p);
        runPresented.push(p);
        if (s.serverMinusPtsMs !== undefined) capture.push(p + s.serverMinusPtsMs - minOffset);
        const ready = s.ready ?? s.pipe + decodeA * 1000;
        decode.push((ready - s.pipe) / 1000);
        aboveNoWait.push(p - (ready - s.pipe + compositingUs) / 1000);
        const f = frameClockFloor(s.pipe, ready, t.ticks, tickIntervalMs * 1000, compositingUs);
        if (f === undefined) continue;
        wait.push(f - (ready - s.pipe) / 1000 - compositingUs / 1000);
        floor.push(f);
        above.push(p - f);
      }
      const r = summarize(runPresented);
      perRun.push({ p50: r.p50, p99: r.p99 });
    }
    paths[path] = {
      what: LATENCY_PATHS[path],
      runs: ts.length,
      drawn: summarize(drawn),
      presented: summarize(presented),
      presentedHistogram: histogram(presented, PRESENTED_BIN_MS),
      ...(path === "mse" ? { presentedTrace: summarize(presentedTrace) } : {}),
      ratioToA: undefined,
      perRun,
      compositing: summarize(compositing.get(path) ?? []),
      decodeP50: median(decode),
      waitP50: median(wait),
      floor: summarize(floor),
      meanWaitFloor: median(decode) + tickIntervalMs / 2 + compositingUs / 1000,
      aboveFloor: summarize(above),
      aboveDecodeAndCompositing: summarize(aboveNoWait),
      ...(path === "main" ? { captureToPresented: summarize(capture) } : {}),
    };
  }
  const base = paths.main;
  const ratio = (x: Summary, y: Summary): Summary => ({ n: x.n, min: x.min / y.min, p50: x.p50 / y.p50, p95: x.p95 / y.p95, p99: x.p99 / y.p99, max: x.max / y.max });
  const withRatios = Object.fromEntries(
    Object.entries(paths).map(([k, p]) => [k, base === undefined ? p : { ...p, ratioToA: { drawn: ratio(p.drawn, base.drawn), presented: ratio(p.presented, base.presented) } }]),
  );
  return { runs, secondsPerTrace: seconds, tickIntervalMs, compositingMinMs: compositingUs / 1000, paths: withRatios };
}
