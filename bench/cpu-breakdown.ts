// Where a player's CPU goes, per thread and per activity. Per thread from /proc: each thread's time
// on the CPU (schedstat), grouped by process and thread name. Per activity from a DevTools trace of
// the whole browser with thread times: the CPU time (`tdur`) of each trace event less its
// children's goes to what the event is (decode, canvas paint, compositing, …); a script event's is
// split by V8 profiler samples taken in it (the page's JavaScript, or the native call it was in:
// drawImage, decode(), …), which the trace does not show as events of their own.
//
// One browser of its own per path: an idle page first, then the player, a window without tracing
// (what each thread costs) and a traced window of the same length (what each thread spends it on).
// Tracing costs CPU too (the traced window took 1.5–2.3× here, most of it on V8's profiler
// threads, which are left out), so each thread's untraced CPU is split in the proportions of its
// traced window, after what tracing added is taken off the thread's time outside trace events
// (where the profiler's sampling and the trace's own work land).

import { readdirSync, readFileSync } from "node:fs";
import type { CDPSession, Page } from "puppeteer";
import { launchBrowser, type TestBrowser } from "../test/helpers/browser.js";
import { openPlayersPage } from "./browser-cost.js";
import { processTree } from "./proc.js";
import { fmt } from "./stats.js";

export const THREAD_GROUPS = {
  main: "renderer main",
  worker: "renderer worker",
  compositor: "renderer compositor",
  raster: "renderer raster",
  pool: "renderer thread pool, media",
  rendererIo: "renderer IO",
  rendererOther: "renderer other",
  viz: "GPU process viz",
  gpuOther: "GPU process other",
  network: "network service",
  browser: "browser process",
  other: "other processes",
  tracing: "tracing and profiler",
} as const;
export type ThreadGroup = keyof typeof THREAD_GROUPS;

export const ACTIVITIES = {
  js: "JS: the page's scripts, and web APIs other than those below",
  gc: "garbage collection",
  websocket: "WebSocket: message events, network service",
  decode: "video decode",
  paint: "canvas paint: drawImage (its YUV → RGB), putImageData, canvas resources",
  rendering: "page frames: rAF, style, layout, paint, commit",
  compositing: "compositing and raster (renderer cc)",
  display: "display compositor (viz, software)",
  ipc: "IPC and IO threads (mojo)",
  browser: "browser process",
  other: "other tasks and processes",
  untraced: "outside trace events",
} as const;
export type Activity = keyof typeof ACTIVITIES;
/** Activities, and the tracing's own work (its IPC), which is dropped before the split. */
type TracedActivity = Activity | "tracing";

/** The paths the cost scenario breaks down. */
export const BREAKDOWN_PATHS = {
  dashboard: "WebCodecs, dashboard, paint on decoder output",
  dashboard_mse: "MSE <video>, dashboard",
  bare_main: "WebCodecs, /canvascast.js on a bare page, main thread",
  bare_worker: "WebCodecs, /canvascast.js on a bare page, worker",
  jsmpeg: "jsmpeg (WASM MPEG-1, canvas 2D)",
} as const;
export type BreakdownPath = keyof typeof BREAKDOWN_PATHS;

type PerActivity = Partial<Record<Activity, number>>;
type Matrix = Partial<Record<ThreadGroup, PerActivity>>;

export interface CpuBreakdown {
  readonly path: BreakdownPath;
  readonly what: string;
  readonly seconds: number;
  /** ms of CPU per second, all Chromium processes: the player without tracing, traced, and an idle page. */
  readonly totalMsPerS: { readonly untraced: number; readonly traced: number; readonly idlePage: number };
  /** ms of CPU per second per thread group without tracing (/proc). */
  readonly threadsMsPerS: Partial<Record<ThreadGroup, number>>;
  /** The same, traced. */
  readonly tracedThreadsMsPerS: Partial<Record<ThreadGroup, number>>;
  /** The same, on the idle page before the player. */
  readonly idlePageThreadsMsPerS: Partial<Record<ThreadGroup, number>>;
  /** The busiest threads without tracing: group, the thread's name (/proc comm), ms of CPU per second. */
  readonly busiestThreads: readonly { readonly group: ThreadGroup; readonly comm: string; readonly msPerS: number }[];
  /** ms of CPU per second per activity, all threads: threadsMsPerS split as the trace shows (see matrixMsPerS). */
  readonly activitiesMsPerS: PerActivity;
  /** thread group → activity, ms of CPU per second: each group's untraced CPU split in its traced proportions. */
  readonly matrixMsPerS: Matrix;
  /** thread group → activity, ms of CPU per second in the traced window, as traced (`tracing`: the trace's own IPC). */
  readonly tracedMatrixMsPerS: Partial<Record<ThreadGroup, Partial<Record<TracedActivity, number>>>>;
  /** V8 profiler samples (page and workers) by what they were in: native calls by name, `(script)` for JS. */
  readonly samples: Record<string, number>;
  /** The trace events with the most self thread time (less their children's), traced window. */
  readonly topEvents: readonly TopEvent[];
}

export interface TopEvent {
  readonly group: ThreadGroup;
  readonly name: string;
  readonly activity: string;
  readonly msPerS: number;
}

interface Sources {
  readonly serverUrl: string;
  readonly jsmpegUrl: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const sum = (xs: Iterable<number>): number => {
  let s = 0;
  for (const x of xs) s += x;
  return s;
};

/** Every path in `paths`, one browser each, `seconds` untraced and `seconds` traced. */
export async function measureCpuBreakdowns(
  sources: Sources,
  seconds: number,
  onPath: (b: CpuBreakdown) => void,
  paths: readonly BreakdownPath[] = Object.keys(BREAKDOWN_PATHS) as BreakdownPath[],
): Promise<CpuBreakdown[]> {
  const out: CpuBreakdown[] = [];
  for (const path of paths) {
    const b = await measureCpuBreakdown(path, (page) => openPath(page, path, sources), seconds);
    out.push(b);
    onPath(b);
  }
  return out;
}

async function openPath(page: Page, path: BreakdownPath, { serverUrl, jsmpegUrl }: Sources): Promise<void> {
  switch (path) {
    case "dashboard":
      await page.goto(`${serverUrl}?paint=decode`, { waitUntil: "load" });
      return;
    case "dashboard_mse":
      await page.goto(`${serverUrl}?mode=mse`, { waitUntil: "load" });
      return;
    case "jsmpeg":
      await page.goto(jsmpegUrl, { waitUntil: "load" });
      return;
    case "bare_main":
    case "bare_worker":
      await openPlayersPage(page, serverUrl, "cam0", 1, path === "bare_worker");
      // 640 px wide, as jsmpeg's page shows its canvas: what the display compositor draws depends on it.
      await page.evaluate(() => void (document.body.style.gridTemplateColumns = "640px"));
      return;
  }
}

/** One path: an idle page, then the player, `seconds` without tracing and `seconds` traced. */
export async function measureCpuBreakdown(path: BreakdownPath, open: (page: Page) => Promise<void>, seconds: number): Promise<CpuBreakdown> {
  const browser = await launchBrowser();
  try {
    const root = browser.browser.process()?.pid;
    if (root === undefined) throw new Error("no browser process");
    const page = await browser.newPage();
    await page.setViewport({ width: 1600, height: 1000 });
    await page.goto("about:blank");
    await sleep(3000); // the browser's start-up work settles
    const idleSeconds = Math.min(seconds, 4);
    const idle = byGroup(await threadUseOver(root, idleSeconds));
    await open(page);
    await sleep(3000); // join and settle
    const untracedUse = await threadUseOver(root, seconds);
    const untraced = byGroup(untracedUse);
    const traced = await tracedWindow(browser, page, root, seconds);
    const tracedByGroup = byGroup(traced.uses);
    const matrix = untracedSplit(traced.matrix, tracedByGroup, untraced);
    const activities: PerActivity = {};
    for (const row of matrix.values()) for (const [a, ms] of row) activities[a] = (activities[a] ?? 0) + ms / seconds;
    const perS = (m: Map<ThreadGroup, number>, s: number): Partial<Record<ThreadGroup, number>> => Object.fromEntries([...m].map(([g, ms]) => [g, ms / s]));
    const matrixPerS = <A extends string>(m: Map<ThreadGroup, Map<A, number>>): Partial<Record<ThreadGroup, Partial<Record<A, number>>>> =>
      Object.fromEntries([...m].map(([g, row]) => [g, Object.fromEntries([...row].map(([a, ms]) => [a, ms / seconds]))]));
    return {
      path,
      what: BREAKDOWN_PATHS[path],
      seconds,
      totalMsPerS: { untraced: sum(untraced.values()) / seconds, traced: sum(tracedByGroup.values()) / seconds, idlePage: sum(idle.values()) / idleSeconds },
      threadsMsPerS: perS(untraced, seconds),
      busiestThreads: [...untracedUse]
        .sort((a, b) => b.ms - a.ms)
        .slice(0, 15)
        .map((u) => ({ group: u.group, comm: u.thread.comm, msPerS: u.ms / seconds })),
      tracedThreadsMsPerS: perS(tracedByGroup, seconds),
      idlePageThreadsMsPerS: perS(idle, idleSeconds),
      activitiesMsPerS: activities,
      matrixMsPerS: matrixPerS(matrix),
      tracedMatrixMsPerS: matrixPerS(traced.matrix),
      samples: Object.fromEntries([...traced.samples].sort((a, b) => b[1] - a[1])),
      topEvents: [...traced.selfTimes]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 25)
        .map(([key, ms]) => {
          const [group, activity, name] = key.split("\t") as [ThreadGroup, string, string];
          return { group, name, activity, msPerS: ms / seconds };
        }),
    };
  } finally {
    await browser.close();
  }
}

/**
 * Each group's untraced CPU split in the proportions of its traced window: the tracing's own work
 * is dropped, what tracing added beyond it (traced − untraced CPU) comes off the time outside trace
 * events, and the rest is scaled to the untraced CPU.
 */
function untracedSplit(
  traced: Map<ThreadGroup, Map<TracedActivity, number>>,
  tracedMs: Map<ThreadGroup, number>,
  untracedMs: Map<ThreadGroup, number>,
): Map<ThreadGroup, Map<Activity, number>> {
  const out = new Map<ThreadGroup, Map<Activity, number>>();
  for (const [group, cpu] of untracedMs) {
    const row = new Map<Activity, number>();
    let tracing = 0;
    for (const [a, ms] of traced.get(group) ?? []) {
      if (a === "tracing") tracing += ms;
      else row.set(a, ms);
    }
    const extra = Math.max(0, (tracedMs.get(group) ?? 0) - tracing - cpu);
    const outside = row.get("untraced") ?? 0;
    row.set("untraced", outside - Math.min(outside, extra));
    const rest = sum(row.values());
    const scaled = new Map<Activity, number>();
    if (rest <= 0) scaled.set("untraced", cpu);
    else for (const [a, ms] of row) scaled.set(a, (ms * cpu) / rest);
    out.set(group, scaled);
  }
  return out;
}

// --- threads, from /proc -----------------------------------------------------------------------

interface ThreadTime {
  readonly pid: number;
  readonly tid: number;
  readonly comm: string;
  /** Time on the CPU so far, ns. */
  readonly ns: number;
}

/** Chromium's process type, from its command line. */
type ProcessKind = "browser" | "renderer" | "gpu" | "network" | "tracing" | "other";

function processKind(pid: number): ProcessKind {
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return "other";
  }
  const type = /--type=([\w-]+)/.exec(cmdline)?.[1];
  if (type === undefined) return "browser";
  // The headless shell's own WebUI renderer is not the page's.
  if (type === "renderer") return cmdline.includes("--top-chrome-webui") ? "other" : "renderer";
  if (type === "gpu-process") return "gpu";
  const service = /--utility-sub-type=([\w.]+)/.exec(cmdline)?.[1];
  if (service === "network.mojom.NetworkService") return "network";
  if (service === "tracing.mojom.TracingService") return "tracing";
  return "other";
}

/** Every thread of `root`'s process tree, with its CPU time so far. */
function threadTimes(root: number): ThreadTime[] {
  const out: ThreadTime[] = [];
  for (const pid of processTree(root)) {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // gone
    }
    for (const t of tids) {
      try {
        // schedstat: ns on the CPU, ns waiting, timeslices; exact, where stat counts clock ticks.
        const ns = Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[0]);
        out.push({ pid, tid: Number(t), comm: readFileSync(`/proc/${pid}/task/${t}/comm`, "utf8").trim(), ns });
      } catch {
        // gone
      }
    }
  }
  return out;
}

/** ms of CPU a thread used between two samples, and its group. */
interface ThreadUse {
  readonly thread: ThreadTime;
  readonly ms: number;
  readonly group: ThreadGroup;
}

function threadUse(before: readonly ThreadTime[], after: readonly ThreadTime[]): ThreadUse[] {
  const start = new Map(before.map((t) => [t.tid, t.ns]));
  const kinds = new Map<number, ProcessKind>();
  for (const t of after) if (!kinds.has(t.pid)) kinds.set(t.pid, processKind(t.pid));
  const used = after.map((t) => ({ thread: t, ms: (t.ns - (start.get(t.tid) ?? 0)) / 1e6 }));
  // The page's renderer is the busiest one; the others (spare, blank) count as other processes.
  const rendererMs = new Map<number, number>();
  for (const u of used) if (kinds.get(u.thread.pid) === "renderer") rendererMs.set(u.thread.pid, (rendererMs.get(u.thread.pid) ?? 0) + u.ms);
  const pageRenderer = [...rendererMs].sort((a, b) => b[1] - a[1])[0]?.[0];
  return used.map((u) => ({ ...u, group: threadGroup(kinds.get(u.thread.pid) ?? "other", u.thread, u.thread.pid === pageRenderer) }));
}

function threadGroup(kind: ProcessKind, t: ThreadTime, pageRenderer: boolean): ThreadGroup {
  // Threads that only work while tracing or profiling: the trace writers, V8's profiler thread.
  if (kind === "tracing" || t.comm === "PerfettoTrace" || t.comm.startsWith("v8:ProfEvntProc")) return "tracing";
  switch (kind) {
    case "browser":
      return "browser";
    case "network":
      return "network";
    case "gpu":
      return t.comm.startsWith("VizCompositorTh") ? "viz" : "gpuOther";
    case "renderer":
      if (!pageRenderer) return "other";
      if (t.tid === t.pid) return "main";
      if (t.comm.startsWith("DedicatedWorker")) return "worker";
      if (t.comm === "Compositor") return "compositor";
      if (t.comm.startsWith("CompositorTileW")) return "raster";
      // WebCodecs decodes on a thread-pool thread; a <video> on the Media thread.
      if (t.comm.startsWith("ThreadPool") || t.comm === "Media" || t.comm.startsWith("VideoFrameCompo")) return "pool";
      if (t.comm.startsWith("Chrome_ChildIOT")) return "rendererIo";
      return "rendererOther";
    case "other":
      return "other";
  }
}

function byGroup(uses: readonly ThreadUse[]): Map<ThreadGroup, number> {
  const out = new Map<ThreadGroup, number>();
  for (const u of uses) out.set(u.group, (out.get(u.group) ?? 0) + u.ms);
  return out;
}

async function threadUseOver(root: number, seconds: number): Promise<ThreadUse[]> {
  const before = threadTimes(root);
  await sleep(seconds * 1000);
  return threadUse(before, threadTimes(root));
}

// --- the trace -----------------------------------------------------------------------------------

const CATEGORIES = [
  "toplevel",
  "devtools.timeline",
  "disabled-by-default-devtools.timeline",
  "v8",
  "v8.execute",
  "blink",
  "cc",
  // SoftwareImageDecodeCache's events: drawImage of a VideoFrame converts it to RGB in them.
  "disabled-by-default-cc.debug",
  "viz",
  "gpu",
  "media",
  "ipc",
  "mojom",
];

interface TraceEvent {
  readonly name: string;
  readonly cat: string;
  readonly ph: string;
  readonly pid: number;
  readonly tid: number;
  /** µs, on the clock of the profiles' timestamps too */
  readonly ts: number;
  readonly dur?: number;
  /** Thread (CPU) time, µs. */
  readonly tdur?: number;
  readonly args?: { readonly data?: Record<string, unknown> };
}

interface TracedWindow {
  readonly uses: ThreadUse[];
  /** ms of CPU, thread group → activity. */
  readonly matrix: Map<ThreadGroup, Map<TracedActivity, number>>;
  readonly samples: Map<string, number>;
  /** ms of self thread time by "group\tactivity\tevent name". */
  readonly selfTimes: Map<string, number>;
}

/**
 * V8's sampling interval, µs. Sampling less often put more samples down to `(program)` (V8 in no
 * function): 77 % of those in our player's script events at 1 ms, 58 % at 200 µs, 45 % at 100 µs;
 * jsmpeg's 50 / 25 / 19 %, where the trace's own profiler category (~4 kHz) gave 19 %.
 */
const SAMPLING_INTERVAL_US = 100;

/**
 * Traces the whole browser for `seconds`, with V8's profiler on the page and its workers through
 * their own DevTools sessions (the profiler's own thread counts as tracing), and attributes each
 * thread's CPU time in the window.
 */
async function tracedWindow(browser: TestBrowser, page: Page, root: number, seconds: number): Promise<TracedWindow> {
  const cdp = await browser.browser.target().createCDPSession();
  try {
    const { events, result } = await trace(cdp, async () => {
      const profilers = await startProfilers(page);
      const uses = await threadUseOver(root, seconds);
      return { uses, profiles: await stopProfilers(profilers) };
    });
    return { uses: result.uses, ...attribute(events, result.uses, result.profiles) };
  } finally {
    await cdp.detach().catch(() => undefined);
  }
}

async function trace<T>(cdp: CDPSession, during: () => Promise<T>): Promise<{ events: TraceEvent[]; result: T }> {
  const events: TraceEvent[] = [];
  const collect = (e: { value: object[] }): void => void events.push(...(e.value as TraceEvent[]));
  cdp.on("Tracing.dataCollected", collect);
  const complete = new Promise<void>((resolve) => cdp.once("Tracing.tracingComplete", () => resolve()));
  await cdp.send("Tracing.start", { transferMode: "ReportEvents", traceConfig: { includedCategories: CATEGORIES } });
  let result: T;
  try {
    result = await during();
  } finally {
    await cdp.send("Tracing.end");
    await complete;
    cdp.off("Tracing.dataCollected", collect);
  }
  return { events, result };
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url?: string };
}

interface CpuProfile {
  readonly nodes: ProfileNode[];
  /** µs, on the trace's clock */
  readonly startTime: number;
  readonly samples?: number[];
  readonly timeDeltas?: number[];
}

interface Profiler {
  readonly thread: "main" | "worker";
  readonly session: CDPSession;
  readonly own: boolean;
}

async function startProfilers(page: Page): Promise<Profiler[]> {
  const profilers: Profiler[] = [{ thread: "main", session: await page.createCDPSession(), own: true }];
  for (const w of page.workers()) profilers.push({ thread: "worker", session: w.client, own: false });
  for (const p of profilers) {
    await p.session.send("Profiler.enable");
    await p.session.send("Profiler.setSamplingInterval", { interval: SAMPLING_INTERVAL_US });
    await p.session.send("Profiler.start");
  }
  return profilers;
}

async function stopProfilers(profilers: readonly Profiler[]): Promise<{ thread: "main" | "worker"; profile: CpuProfile }[]> {
  const out: { thread: "main" | "worker"; profile: CpuProfile }[] = [];
  for (const p of profilers) {
    out.push({ thread: p.thread, profile: (await p.session.send("Profiler.stop")).profile });
    await p.session.send("Profiler.disable");
    if (p.own) await p.session.detach();
  }
  return out;
}

/**
 * What an event's own time (less its children's) is spent on; undefined: its parent's. `fallback`
 * is what the thread's time counts as where no event says otherwise.
 */
function eventActivity(e: TraceEvent, parent: TracedActivity | "script" | undefined, fallback: Activity): TracedActivity | "script" | undefined {
  const n = e.name;
  const mojo = (e.args as { chrome_mojo_event_info?: { mojo_interface_tag?: string; watcher_notify_interface_tag?: string } } | undefined)?.chrome_mojo_event_info;
  const mojoInterface = mojo?.mojo_interface_tag ?? mojo?.watcher_notify_interface_tag;
  if (/^(CpuProfiler|V8\.Profiler|Profiler)/.test(n)) return "tracing";
  if (mojoInterface !== undefined) {
    if (mojoInterface.includes("WebSocket")) return "websocket";
    if (mojoInterface.startsWith("tracing.mojom.")) return "tracing";
    // Begin-frames, frame acks and submitted frames: the display's work in viz, a compositor's elsewhere.
    if (mojoInterface.startsWith("viz.mojom.")) return fallback === "display" ? "display" : "compositing";
    return "ipc";
  }
  if (/^(FunctionCall|v8\.callFunction|v8\.run|V8\.Execute|EvaluateScript|v8\.evaluateModule|v8\.compile|V8\.Compile|RunMicrotasks|TimerFire)/.test(n)) return "script";
  if (/^(MinorGC|MajorGC|V8\.GC|BlinkGC|CppGC|V8\.Heap|ThreadState::)/.test(n)) return "gc";
  if (/WebSocket|WEBSOCKET/.test(n) || (n === "EventDispatch" && e.args?.data?.type === "message")) return "websocket";
  // The image cache decodes images for raster, and converts a VideoFrame drawn on a canvas to RGB.
  if (/SoftwareImageDecodeCache|ImageDecode/.test(n)) return parent === "script" || parent === "paint" ? "paint" : "compositing";
  if (/vpx|VideoDecoder|DecoderStream|FFmpegVideoDecoder|Dav1d/.test(n)) return "decode";
  if (/Canvas|drawImage|PaintCanvasVideoRenderer|ImageBitmap/.test(n)) return "paint";
  if (/^(ProxyMain::BeginMainFrame|WebFrameWidgetImpl::|LocalFrameView::|PageAnimator|AnimationFrame|FireAnimationFrame|Layout|UpdateLayoutTree|UpdateLayer|PrePaint|Paint$|Commit$|MainFrameAborted|Blink\.|HitTest|ParseHTML|ScheduleStyleRecalculation|IntersectionObserver)/.test(n)) return "rendering";
  if (/^(Receive mojo|SimpleWatcher|EpollEvent|MessagePumpEpoll|Closed mojo|ChannelMojo|Mojo)/.test(n)) return "ipc";
  if (e.cat.includes("viz")) return "display";
  if (e.cat.includes("cc")) return "compositing";
  if (e.cat.includes("media")) return "decode";
  return undefined;
}

/** What a thread's time is spent on where no event says otherwise. */
const GROUP_ACTIVITY: Record<ThreadGroup, Activity> = {
  main: "other",
  worker: "other",
  compositor: "compositing",
  raster: "compositing",
  // Here the renderer's thread pool and media threads run the video decoder's tasks (their own events are decode).
  pool: "decode",
  rendererIo: "ipc",
  rendererOther: "other",
  viz: "display",
  gpuOther: "display",
  network: "websocket",
  browser: "browser",
  other: "other",
  tracing: "other",
};

/** Groups whose every task counts as one activity (the network service reads and writes the sockets). */
const FORCED_ACTIVITY: Partial<Record<ThreadGroup, Activity>> = { network: "websocket", browser: "browser", other: "other", tracing: "other" };

/** Web APIs that paint on a canvas, and jsmpeg's JavaScript YUV → RGB conversion. */
const PAINT_CALLS = new Set(["drawImage", "putImageData", "fillRect", "clearRect", "transferToImageBitmap", "createImageBitmap", "YCbCrToRGBA"]);
/** WebCodecs calls (native ones: the page's own functions of these names have a script URL). */
const DECODE_CALLS = new Set(["decode", "EncodedVideoChunk", "configure", "VideoDecoder", "reset", "flush"]);

/** A profiler sample: when, and what it counts as. */
interface Sample {
  readonly ts: number;
  readonly activity: Activity | undefined;
  readonly label: string;
}

function sampleOf(node: ProfileNode | undefined): { activity: Activity | undefined; label: string } {
  const f = node?.callFrame;
  if (f === undefined || f.functionName === "(idle)" || f.functionName === "(root)") return { activity: undefined, label: "(idle)" };
  if (f.functionName === "(garbage collector)") return { activity: "gc", label: f.functionName };
  // V8 in no JS function nor web API (bindings, a callback's entry and exit): the script's cost.
  if (f.functionName === "(program)") return { activity: "js", label: f.functionName };
  const native = f.url === undefined || f.url === "";
  if (f.url?.startsWith("wasm://") === true) return { activity: "decode", label: "(wasm)" };
  if (PAINT_CALLS.has(f.functionName) && (native || f.functionName === "YCbCrToRGBA")) return { activity: "paint", label: f.functionName };
  if (native && DECODE_CALLS.has(f.functionName)) return { activity: "decode", label: `${f.functionName} (WebCodecs)` };
  return { activity: "js", label: native ? f.functionName : "(script)" };
}

/** A profile's samples in time order. */
function profileSamples(profile: CpuProfile): Sample[] {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const ids = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const out: Sample[] = [];
  let t = profile.startTime;
  for (let i = 0; i < ids.length; i++) {
    t += deltas[i] ?? 0;
    out.push({ ts: t, ...sampleOf(nodes.get(ids[i]!)) });
  }
  return out.sort((a, b) => a.ts - b.ts);
}

/** The label of samples taken outside any script event (most would be a clock mismatch). */
const OUTSIDE = "(outside script events)";

/**
 * Each thread's CPU time in the window by activity: the self thread time of each trace event (its
 * `tdur` less its children's) goes to its activity, or its parent's; a script event's is split by
 * the profiler samples taken in it; what the thread used outside any event is `untraced`.
 */
function attribute(
  events: readonly TraceEvent[],
  uses: readonly ThreadUse[],
  profiles: readonly { thread: "main" | "worker"; profile: CpuProfile }[],
): Pick<TracedWindow, "matrix" | "samples" | "selfTimes"> {
  const matrix = new Map<ThreadGroup, Map<TracedActivity, number>>();
  const add = (g: ThreadGroup, a: TracedActivity, ms: number): void => {
    const row = matrix.get(g) ?? new Map<TracedActivity, number>();
    matrix.set(g, row);
    row.set(a, (row.get(a) ?? 0) + ms);
  };
  const labels = new Map<string, number>();
  const selfTimes = new Map<string, number>();
  const samples = new Map<ThreadGroup, Sample[]>();
  for (const p of profiles) samples.set(p.thread, [...(samples.get(p.thread) ?? []), ...profileSamples(p.profile)].sort((a, b) => a.ts - b.ts));
  const byThread = new Map<string, TraceEvent[]>();
  for (const e of events) {
    if (e.ph !== "X" || e.tdur === undefined || e.dur === undefined) continue;
    const k = `${e.pid}:${e.tid}`;
    const list = byThread.get(k) ?? [];
    byThread.set(k, list);
    list.push(e);
  }
  for (const u of uses) {
    const onSelf = (name: string, activity: string, ms: number): void => {
      const key = `${u.group}\t${activity}\t${name}`;
      selfTimes.set(key, (selfTimes.get(key) ?? 0) + ms);
    };
    const events = byThread.get(`${u.thread.pid}:${u.thread.tid}`) ?? [];
    const traced = threadActivities(events, samples.get(u.group) ?? [], GROUP_ACTIVITY[u.group], FORCED_ACTIVITY[u.group], labels, onSelf);
    for (const [a, ms] of traced) add(u.group, a, ms);
    add(u.group, "untraced", Math.max(0, u.ms - sum(traced.values())));
  }
  return { matrix, samples: labels, selfTimes };
}

interface Open {
  readonly e: TraceEvent;
  readonly activity: TracedActivity | "script";
  childUs: number;
  readonly samples: Map<Activity, number>;
}

/** ms of CPU by activity on one thread, from its complete events (nested by time) and profiler samples. */
function threadActivities(
  events: TraceEvent[],
  samples: readonly Sample[],
  fallback: Activity,
  forced: Activity | undefined,
  labels: Map<string, number>,
  onSelf: (name: string, activity: string, ms: number) => void,
): Map<TracedActivity, number> {
  const out = new Map<TracedActivity, number>();
  const add = (a: TracedActivity, us: number): void => void out.set(a, (out.get(a) ?? 0) + us / 1000);
  const count = (label: string): void => void labels.set(label, (labels.get(label) ?? 0) + 1);
  events.sort((a, b) => a.ts - b.ts || (b.dur ?? 0) - (a.dur ?? 0));
  const stack: Open[] = [];
  const close = (o: Open): void => {
    const self = Math.max(0, (o.e.tdur ?? 0) - o.childUs);
    const activity = forced !== undefined && o.activity !== "tracing" ? forced : o.activity;
    onSelf(o.e.name, activity, self / 1000);
    if (activity !== "script") return add(activity, self);
    const n = sum(o.samples.values());
    if (n === 0) return add("js", self);
    for (const [a, k] of o.samples) add(a, (self * k) / n);
  };
  const popUntil = (t: number): void => {
    while (stack.length > 0 && stack.at(-1)!.e.ts + (stack.at(-1)!.e.dur ?? 0) <= t) close(stack.pop()!);
  };
  let s = 0;
  const takeSamples = (until: number): void => {
    for (; s < samples.length && samples[s]!.ts < until; s++) {
      const x = samples[s]!;
      if (x.activity === undefined) continue;
      popUntil(x.ts);
      const top = stack.at(-1);
      if (top?.activity !== "script") {
        count(OUTSIDE);
        continue;
      }
      top.samples.set(x.activity, (top.samples.get(x.activity) ?? 0) + 1);
      count(x.label);
    }
  };
  for (const e of events) {
    takeSamples(e.ts);
    popUntil(e.ts);
    const parent = stack.at(-1);
    if (parent !== undefined) parent.childUs += e.tdur ?? 0;
    const activity = eventActivity(e, parent?.activity, fallback) ?? parent?.activity ?? fallback;
    stack.push({ e, activity, childUs: 0, samples: new Map() });
  }
  takeSamples(Infinity);
  while (stack.length > 0) close(stack.pop()!);
  return out;
}

// --- tables --------------------------------------------------------------------------------------

/**
 * The printed tables: every path's activities side by side (ms of CPU per second of playback, and
 * the share of its total), then each path's activity × thread table.
 */
export function breakdownTables(breakdowns: readonly CpuBreakdown[]): string[] {
  if (breakdowns.length === 0) return [];
  const seconds = breakdowns[0]!.seconds;
  const share = (x: number | undefined, total: number): string => (x === undefined || x < 0.05 ? "–" : `${fmt(x)} (${Math.round((100 * x) / total)} %)`);
  const out = [
    `Where the browser's CPU goes, one 640×480@30 player, all Chromium processes: ms of CPU per second of playback (share of the total). Each thread's CPU over ${seconds} s, split as a ${seconds} s DevTools trace with thread times shows (docs/benchmarks.md):`,
    "",
    `| activity | ${breakdowns.map((b) => b.what).join(" | ")} |`,
    `|---|${breakdowns.map(() => "---").join("|")}|`,
  ];
  for (const a of Object.keys(ACTIVITIES) as Activity[]) {
    out.push(`| ${ACTIVITIES[a]} | ${breakdowns.map((b) => share(b.activitiesMsPerS[a], b.totalMsPerS.untraced)).join(" | ")} |`);
  }
  out.push(
    `| **total** | ${breakdowns.map((b) => fmt(b.totalMsPerS.untraced)).join(" | ")} |`,
    `| idle page | ${breakdowns.map((b) => fmt(b.totalMsPerS.idlePage)).join(" | ")} |`,
    `| traced (what the trace cost on top) | ${breakdowns.map((b) => fmt(b.totalMsPerS.traced)).join(" | ")} |`,
  );
  const jsmpeg = breakdowns.find((b) => b.path === "jsmpeg");
  if (jsmpeg !== undefined) {
    const above = (b: CpuBreakdown): number => b.totalMsPerS.untraced - b.totalMsPerS.idlePage;
    out.push(`| total above the idle page ÷ jsmpeg's | ${breakdowns.map((b) => (above(b) / above(jsmpeg)).toFixed(2)).join(" | ")} |`);
  }
  for (const b of breakdowns) out.push("", ...pathTable(b));
  return out;
}

function pathTable(b: CpuBreakdown): string[] {
  const groups = (Object.keys(THREAD_GROUPS) as ThreadGroup[]).filter((g) => Math.max(b.threadsMsPerS[g] ?? 0, b.tracedThreadsMsPerS[g] ?? 0) >= 0.5);
  const cell = (x: number | undefined): string => (x === undefined || x < 0.05 ? "" : fmt(x));
  const out = [
    `${b.what}: ms of CPU per second by activity and thread (rows below: per thread without tracing, traced, and the idle page):`,
    "",
    `| activity | ${groups.map((g) => THREAD_GROUPS[g]).join(" | ")} | all | share |`,
    `|---|${groups.map(() => "---").join("|")}|---|---|`,
  ];
  for (const a of Object.keys(ACTIVITIES) as Activity[]) {
    const total = b.activitiesMsPerS[a];
    if (total === undefined || total < 0.05) continue;
    out.push(`| ${a} | ${groups.map((g) => cell(b.matrixMsPerS[g]?.[a])).join(" | ")} | ${fmt(total)} | ${Math.round((100 * total) / b.totalMsPerS.untraced)} % |`);
  }
  out.push(
    `| **CPU** | ${groups.map((g) => fmt(b.threadsMsPerS[g])).join(" | ")} | ${fmt(b.totalMsPerS.untraced)} | |`,
    `| traced | ${groups.map((g) => fmt(b.tracedThreadsMsPerS[g])).join(" | ")} | ${fmt(b.totalMsPerS.traced)} | |`,
    `| idle page | ${groups.map((g) => fmt(b.idlePageThreadsMsPerS[g])).join(" | ")} | ${fmt(b.totalMsPerS.idlePage)} | |`,
  );
  const inScript = Object.entries(b.samples).filter(([k]) => k !== OUTSIDE);
  const n = sum(inScript.map(([, v]) => v));
  if (n > 0) {
    const top = inScript.slice(0, 6).map(([k, v]) => `${k} ${Math.round((100 * v) / n)} %`);
    out.push("", `V8 profiler samples in script events (${n}; ${b.samples[OUTSIDE] ?? 0} more outside them): ${top.join(", ")}.`);
  }
  const events = b.topEvents.slice(0, 8).map((e) => `${e.name} (${THREAD_GROUPS[e.group]}, ${e.activity}) ${fmt(e.msPerS)}`);
  out.push("", `Most self thread time, traced, ms/s: ${events.join("; ")}.`);
  return out;
}
