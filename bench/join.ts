// One join, page load → first picture, in stages from the page's navigation start: what the
// network stack saw (DevTools protocol Network events of the page and of its workers), what the
// player marked (web/player/join-marks.ts), and when the first composited frame showing the stream
// left the compositor (Page.startScreencast: the first screencast frame whose pixels show the test
// pattern where the player is).
//
// Clocks. CDP's Network timestamps and the screencast's monotonicTimestamp are Chromium's
// monotonic clock (base::TimeTicks) in seconds; the page's performance.now() counts on the same
// clock from the page's time origin, whose place on it is not reported. It is found from the
// document's own request, timed by both: CDP gives `timing.requestTime` (s, that clock) +
// `timing.sendStart` (ms after it), the page's Navigation Timing gives `requestStart` (ms after
// its origin) for the same instant; so origin = requestTime × 1000 + sendStart − requestStart.
// (Checked on a dashboard join: the module's request put the origin within 0.02 ms of it.) Worker
// marks arrive on the page's clock already (join-marks.ts).

import type { CDPSession, Page } from "puppeteer";
import type { TestBrowser } from "../test/helpers/browser.js";
import { decodeBinaryMessage, isReplay } from "../shared/protocol.js";
import { pct } from "./stats.js";

/** The stages, in the order a join passes them, with their column titles. */
export const JOIN_STAGES = {
  html: "HTML received",
  module: "module loaded",
  moduleRuns: "module runs",
  streams: "stream list",
  socket: "socket asked",
  open: "socket open",
  hello: "hello",
  helloJs: "hello in JS",
  frame: "first frame",
  frameJs: "first frame in JS",
  gop: "GOP received",
  decoded: "GOP decoded",
  paint: "first paint",
  composited: "composited",
} as const;
export type JoinStageKey = keyof typeof JOIN_STAGES;
export type JoinStages = Partial<Record<JoinStageKey, number>>;

/**
 * What each stage follows, for the time a join spent getting to it: the first of these the join
 * reached (none: navigation start). The main chain runs HTML → … → first frame → GOP decoded →
 * first paint → composited; the JS-side stages hang off their network stage, and GOP received off
 * the first frame (decoding overlaps the replay's arrival).
 */
const FOLLOWS: Record<JoinStageKey, readonly JoinStageKey[]> = {
  html: [],
  module: ["html"],
  moduleRuns: ["module"],
  streams: ["moduleRuns"],
  socket: ["streams", "moduleRuns"],
  open: ["socket"],
  hello: ["open"],
  helloJs: ["hello"],
  frame: ["hello"],
  frameJs: ["frame"],
  gop: ["frame"],
  decoded: ["frameJs", "frame"],
  paint: ["decoded"],
  composited: ["paint", "frame"],
};

/** Each stage's time from the stage it follows (FOLLOWS) in one join, ms. */
export function stageIncrements(stages: JoinStages): JoinStages {
  const out: JoinStages = {};
  for (const key of Object.keys(JOIN_STAGES) as JoinStageKey[]) {
    const at = stages[key];
    if (at === undefined) continue;
    const from = FOLLOWS[key].find((k) => stages[k] !== undefined);
    out[key] = round1(at - (from === undefined ? 0 : stages[from]!));
  }
  return out;
}

/** What page is joined: the dashboard's tile of a stream, or a bare page's player element. */
export type JoinTarget = { readonly kind: "dashboard"; readonly url: string; readonly stream: string } | { readonly kind: "bare"; readonly url: string; readonly selector: string };

export interface JoinSample {
  /** The first picture painted (WebCodecs) or presented (MSE), ms from navigation start: the join figure. */
  readonly firstPaintMs: number;
  readonly stages: JoinStages;
}

export interface JoinSummary {
  /** Join figures, sorted. */
  readonly samples: number[];
  readonly p50: number;
  readonly max: number | undefined;
  /** p50 of each stage over the joins (each stage on its own). */
  readonly stages: JoinStages;
  /** p50 over the joins of each stage's time from the stage it follows (stageIncrements). */
  readonly increments: JoinStages;
  /** Each join's stages, in join order. */
  readonly joins: JoinStages[];
}

export function summarizeJoins(joins: readonly JoinSample[]): JoinSummary {
  const samples = joins.map((j) => j.firstPaintMs).sort((a, b) => a - b);
  const p50s = (each: readonly JoinStages[]): JoinStages => {
    const out: JoinStages = {};
    for (const key of Object.keys(JOIN_STAGES) as JoinStageKey[]) {
      const xs = each.flatMap((j) => (j[key] === undefined ? [] : [j[key]])).sort((a, b) => a - b);
      if (xs.length > 0) out[key] = round1(pct(xs, 50));
    }
    return out;
  };
  const stages = joins.map((j) => j.stages);
  return { samples, p50: pct(samples, 50), max: samples.at(-1), stages: p50s(stages), increments: p50s(stages.map(stageIncrements)), joins: stages };
}

/** A screencast frame: where it is on the monotonic clock (ms) and its JPEG. */
interface ScreencastFrame {
  readonly monoMs: number | undefined;
  /** Wall clock, ms since the epoch (older Chromium has no monotonicTimestamp). */
  readonly wallMs: number;
  readonly jpeg: string;
}

/** What the network stack saw, monotonic ms. */
class NetworkLog {
  document: { requestId: string; originMs?: number; finishedMs?: number; timing?: { requestTime: number; sendStart: number } } | undefined;
  readonly #requests = new Map<string, { url: string; type: string | undefined; finishedMs?: number }>();
  #socketId: string | undefined;
  socketAskedMs: number | undefined;
  socketOpenMs: number | undefined;
  helloMs: number | undefined;
  firstFrameMs: number | undefined;
  lastReplayMs: number | undefined;
  #liveSeen = false;

  listen(session: CDPSession): void {
    session.on("Network.requestWillBeSent", (e) => {
      this.#requests.set(e.requestId, { url: e.request.url, type: e.type });
      if (e.type === "Document" && this.document === undefined) this.document = { requestId: e.requestId };
    });
    session.on("Network.responseReceived", (e) => {
      const timing = e.response.timing;
      if (this.document?.requestId === e.requestId && timing !== undefined) this.document.timing = { requestTime: timing.requestTime, sendStart: timing.sendStart };
    });
    session.on("Network.loadingFinished", (e) => {
      const request = this.#requests.get(e.requestId);
      if (request !== undefined) request.finishedMs = e.timestamp * 1000;
    });
    session.on("Network.webSocketWillSendHandshakeRequest", (e) => {
      if (this.#socketId !== undefined) return;
      this.#socketId = e.requestId;
      this.socketAskedMs = e.timestamp * 1000;
    });
    session.on("Network.webSocketHandshakeResponseReceived", (e) => {
      if (e.requestId === this.#socketId) this.socketOpenMs ??= e.timestamp * 1000;
    });
    session.on("Network.webSocketFrameReceived", (e) => {
      if (e.requestId !== this.#socketId) return;
      const at = e.timestamp * 1000;
      if (e.response.opcode === 1) {
        this.helloMs ??= at; // the first text message is hello (docs/protocol.md)
        return;
      }
      this.firstFrameMs ??= at;
      if (this.#liveSeen) return;
      // /ws/: the replay flag of the frame header; /webm/ carries WebM, no such header.
      try {
        const m = decodeBinaryMessage(Buffer.from(e.response.payloadData, "base64"));
        if (m.kind === "video" && isReplay(m.header)) this.lastReplayMs = at;
        else this.#liveSeen = true;
      } catch {
        this.#liveSeen = true;
      }
    });
  }

  /** When the first request `match` accepts was loaded in full (monotonic ms). */
  finished(match: (url: string, type: string | undefined) => boolean): number | undefined {
    for (const r of this.#requests.values()) if (match(r.url, r.type)) return r.finishedMs;
    return undefined;
  }
}

/** A pattern picture shows where the player is when this share of its pixels is strongly coloured (SMPTE bars: ~60 % of the picture; before it the region is black or a dark overlay: ~0). */
const COLOURED_SHARE = 0.15;

/**
 * One join of `target` in a fresh browser context (no cached page or modules). `analyzer` is a page
 * of the default context that decodes the screencast's frames after the join.
 */
export async function measureJoin(browser: TestBrowser, analyzer: Page, target: JoinTarget, screencast = true): Promise<JoinSample> {
  const context = await browser.browser.createBrowserContext();
  try {
    const page = await context.newPage();
    await page.evaluateOnNewDocument(() => {
      (globalThis as { canvascastMarkPaints?: boolean }).canvascastMarkPaints = true;
    });
    const net = new NetworkLog();
    const session = await page.createCDPSession();
    net.listen(session);
    // A worker player's socket is the worker's: its events come on the worker's own session. The
    // listeners go on before puppeteer lets the worker run (it is attached paused).
    page.on("workercreated", (worker) => {
      net.listen(worker.client);
      void worker.client.send("Network.enable").catch(() => undefined);
    });
    const frames: ScreencastFrame[] = [];
    session.on("Page.screencastFrame", (e) => {
      // monotonicTimestamp is newer than puppeteer's protocol types.
      const mono = (e.metadata as { monotonicTimestamp?: number }).monotonicTimestamp;
      frames.push({ monoMs: mono === undefined ? undefined : mono * 1000, wallMs: (e.metadata.timestamp ?? 0) * 1000, jpeg: e.data });
      void session.send("Page.screencastFrameAck", { sessionId: e.sessionId }).catch(() => undefined);
    });
    await session.send("Network.enable");
    await session.send("Page.enable");
    // Small and coarse: the browser encodes every frame while the page joins, on the same 2 cores.
    if (screencast) await session.send("Page.startScreencast", { format: "jpeg", quality: 40, maxWidth: 400, maxHeight: 300 });
    await page.goto(target.url, { waitUntil: "domcontentloaded" });
    await page.waitForFunction(firstPaintOf, { timeout: 20_000 }, target);
    // Time for the composited frame to be captured after the paint.
    await new Promise((r) => setTimeout(r, 500));
    if (screencast) await session.send("Page.stopScreencast");
    const seen = await page.evaluate(
      (t: JoinTarget, prefix: string) => {
        const nav = performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming | undefined;
        const marks: Record<string, number> = {};
        for (const m of performance.getEntriesByType("mark")) {
          if (m.name.startsWith(prefix)) marks[m.name.slice(prefix.length)] ??= m.startTime;
        }
        const el = t.kind === "dashboard" ? document.querySelector(`.tile[data-stream="${t.stream}"] .screen`) : document.querySelector(t.selector);
        const r = el?.getBoundingClientRect();
        return {
          timeOrigin: performance.timeOrigin,
          requestStart: nav?.requestStart,
          marks,
          region: r === undefined ? undefined : { x: r.x, y: r.y, width: r.width, height: r.height },
          viewport: { width: innerWidth, height: innerHeight },
        };
      },
      target,
      "canvascast-join ", // JOIN_MARK_PREFIX of web/player/join-marks.ts
    );
    const firstPaintMs = (await page.evaluate(firstPaintOf, target)) ?? NaN;
    await context.close();

    const timing = net.document?.timing;
    if (timing === undefined || seen.requestStart === undefined) throw new Error(`join of ${target.url}: no timing for the document`);
    const originMs = timing.requestTime * 1000 + timing.sendStart - seen.requestStart;
    const onPage = (mono: number | undefined): number | undefined => (mono === undefined ? undefined : round1(mono - originMs));
    const screencastAt = (f: ScreencastFrame): number => (f.monoMs !== undefined ? f.monoMs - originMs : f.wallMs - seen.timeOrigin);
    const firstFrame = onPage(net.firstFrameMs);
    // Frames from before the first video frame arrived cannot show it: not decoded.
    const candidates = frames.filter((f) => firstFrame === undefined || screencastAt(f) >= firstFrame);
    const shown = seen.region === undefined ? -1 : await firstFrameShowingPattern(analyzer, candidates.map((f) => f.jpeg), seen.region, seen.viewport);
    const composited = shown < 0 ? undefined : round1(screencastAt(candidates[shown]!));
    const stages: Record<JoinStageKey, number | undefined> = {
      html: onPage(net.finished((_, type) => type === "Document")),
      module: onPage(net.finished((url, type) => type === "Script" && (target.kind === "bare" ? url.endsWith("/canvascast.js") : true))),
      moduleRuns: mark(seen.marks, "module"),
      streams: onPage(net.finished((url) => new URL(url).pathname === "/api/streams")),
      socket: onPage(net.socketAskedMs),
      open: onPage(net.socketOpenMs),
      hello: onPage(net.helloMs),
      helloJs: mark(seen.marks, "hello"),
      frame: firstFrame,
      frameJs: mark(seen.marks, "frame"),
      gop: onPage(net.lastReplayMs),
      decoded: mark(seen.marks, "decoded"),
      paint: mark(seen.marks, "paint"),
      composited,
    };
    const reached: JoinStages = {};
    for (const [key, at] of Object.entries(stages) as [JoinStageKey, number | undefined][]) if (at !== undefined) reached[key] = at;
    return { firstPaintMs, stages: reached };
  } finally {
    await context.close().catch(() => undefined);
  }
}

const round1 = (x: number): number => Math.round(x * 10) / 10;
const mark = (marks: Record<string, number>, stage: string): number | undefined => (marks[stage] === undefined ? undefined : round1(marks[stage]));

/** Runs in the page: the first paint (ms from navigation start), or null before it. */
function firstPaintOf(t: JoinTarget): number | null {
  if (t.kind === "dashboard") {
    const at = Number(document.querySelector<HTMLElement>(`.tile[data-stream="${t.stream}"]`)?.dataset.firstPaintAt ?? "");
    return at > 0 ? at : null;
  }
  const el = document.querySelector<Element & { player?: { stats(): { firstPaintAtMs: number | null } } }>(t.selector);
  return el?.player?.stats().firstPaintAtMs ?? null;
}

/**
 * Index of the first JPEG whose `region` (CSS px of a `viewport`-sized page) shows the test
 * pattern, or −1. Decoded by `analyzer` (createImageBitmap): Node has no JPEG decoder.
 */
async function firstFrameShowingPattern(
  analyzer: Page,
  jpegs: readonly string[],
  region: { x: number; y: number; width: number; height: number },
  viewport: { width: number; height: number },
): Promise<number> {
  if (jpegs.length === 0) return -1;
  return analyzer.evaluate(
    async (images: readonly string[], r: typeof region, vp: typeof viewport, share: number) => {
      for (let i = 0; i < images.length; i++) {
        const bytes = Uint8Array.from(atob(images[i]!), (c) => c.charCodeAt(0));
        const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/jpeg" }));
        const scale = bitmap.width / vp.width;
        const x0 = Math.max(0, Math.floor(r.x * scale));
        const y0 = Math.max(0, Math.floor(r.y * scale));
        const w = Math.min(bitmap.width - x0, Math.floor(r.width * scale));
        const h = Math.min(bitmap.height - y0, Math.floor(r.height * scale));
        if (w <= 0 || h <= 0) continue;
        const canvas = new OffscreenCanvas(w, h);
        const ctx = canvas.getContext("2d")!;
        ctx.drawImage(bitmap, x0, y0, w, h, 0, 0, w, h);
        bitmap.close();
        const px = ctx.getImageData(0, 0, w, h).data;
        let coloured = 0;
        for (let p = 0; p < px.length; p += 4) {
          const hi = Math.max(px[p]!, px[p + 1]!, px[p + 2]!);
          const lo = Math.min(px[p]!, px[p + 1]!, px[p + 2]!);
          if (hi - lo > 80) coloured++;
        }
        if (coloured / (w * h) >= share) return i;
      }
      return -1;
    },
    jpegs,
    region,
    viewport,
    COLOURED_SHARE,
  );
}
