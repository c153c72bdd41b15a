// The embeddable module from another origin: a page served by a second HTTP server (another port)
// loads http://127.0.0.1:<canvascast port>/canvascast.js as a module, plays the test stream in a
// <canvas-cast> element and through `play()` into its own canvas, takes snapshots, and removes the
// element. Real server (test pattern), real Chromium. Both origins are loopback, so a secure
// context: WebCodecs is there, in the page and in workers.

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Page } from "puppeteer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StreamsResponse } from "../../shared/api.js";
import { launchBrowser, type TestBrowser } from "../helpers/browser.js";
import { startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";
import { sleep, until } from "../helpers/until.js";

const STREAM = "cam0";
const INSECURE_HOST = "cam.test";
const WIDTH = 640;
const HEIGHT = 480;
/** The server's default tile encoding for a 640×480 stream. */
const TILE_WIDTH = 320;
const TILE_HEIGHT = 240;

/**
 * The other origin's page. `?worker=0` plays the API canvas on the main thread; `mode` and `fit`
 * become the element's attributes; `?csp=1` adds a Content Security Policy that refuses workers.
 */
function embeddingPage(server: string, query: URLSearchParams): string {
  const ws = `${server.replace(/^http/, "ws")}/ws/${STREAM}`;
  const attrs = ["mode", "fit"].flatMap((name) => {
    const value = query.get(name);
    return value === null ? [] : [`${name}="${value.replace(/[^a-z]/g, "")}"`];
  });
  return `<!doctype html>
<meta charset="utf-8">
<title>embeds canvascast</title>
${query.get("csp") === "1" ? `<meta http-equiv="Content-Security-Policy" content="worker-src 'none'">` : ""}
<style>body{margin:0;background:#fff}</style>
<canvas-cast id="element" src="${ws}" ${attrs.join(" ")} stats style="width:320px;height:240px"></canvas-cast>
<canvas id="own" width="320" height="240" style="width:320px;height:240px;background:#000"></canvas>
<script type="module">
  import { play } from "${server}/canvascast.js";
  const worker = new URLSearchParams(location.search).get("worker") !== "0";
  window.apiPlayer = play(document.getElementById("own"), "${ws}", { worker: worker ? "auto" : false });
  window.replay = () => (window.apiPlayer = play(document.getElementById("own"), "${ws}"));
  window.embedReady = true;
</script>`;
}

interface Sample {
  readonly type: string;
  readonly width: number;
  readonly height: number;
  /** Share of pixels that are not near-black. */
  readonly litShare: number;
  readonly checksum: number;
}

/** Runs in the page: `who`'s snapshot, decoded as a PNG and read back. */
async function sampleSnapshot(who: string): Promise<Sample> {
  const w = window as unknown as { apiPlayer: { snapshot(): Promise<Blob> } };
  const el = document.getElementById("element") as unknown as { snapshot(): Promise<Blob> };
  const blob = await (who === "element" ? el.snapshot() : w.apiPlayer.snapshot());
  const bitmap = await createImageBitmap(blob);
  const scratch = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = scratch.getContext("2d")!;
  ctx.drawImage(bitmap, 0, 0);
  const { data } = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  let lit = 0;
  let checksum = 0;
  for (let i = 0; i < data.length; i += 4) {
    const r = data[i]!;
    const g = data[i + 1]!;
    const b = data[i + 2]!;
    if (r + g + b > 48) lit++;
    checksum = (checksum * 31 + r * 3 + g * 5 + b * 7) >>> 0;
  }
  return { type: blob.type, width: bitmap.width, height: bitmap.height, litShare: lit / (data.length / 4), checksum };
}

/** Runs in the page: the page's own canvas drawn into a scratch canvas (main-thread path only). */
function sampleOwnCanvas(): number {
  const canvas = document.getElementById("own") as HTMLCanvasElement;
  const scratch = document.createElement("canvas");
  scratch.width = canvas.width;
  scratch.height = canvas.height;
  const ctx = scratch.getContext("2d")!;
  ctx.drawImage(canvas, 0, 0);
  const { data } = ctx.getImageData(0, 0, scratch.width, scratch.height);
  let checksum = 0;
  for (let i = 0; i < data.length; i += 4) checksum = (checksum * 31 + data[i]! * 3 + data[i + 1]! * 5 + data[i + 2]! * 7) >>> 0;
  return checksum;
}

interface PlayerView {
  readonly state: string;
  readonly thread: string;
  readonly framesPainted: number;
  readonly latencyP50Ms: number | null;
}

async function players(page: Page): Promise<{ element: PlayerView | null; api: PlayerView }> {
  return page.evaluate(() => {
    type P = { state: string; thread: string; stats(): { framesPainted: number; latencyP50Ms: number | null } };
    const view = (p: P): PlayerView => ({ state: p.state, thread: p.thread, ...p.stats() });
    const el = document.getElementById("element") as unknown as { player: P | undefined } | null;
    const api = (window as unknown as { apiPlayer: P }).apiPlayer;
    return { element: el?.player === undefined ? null : view(el.player), api: view(api) };
  });
}

async function viewers(server: ServerProcess): Promise<number> {
  const response = await fetch(new URL("/api/streams", server.url));
  const body = (await response.json()) as StreamsResponse;
  const stream = body.streams.find((s) => s.name === STREAM);
  if (stream === undefined) throw new Error(`no stream ${STREAM}`);
  return stream.viewers;
}

/** Share of lit pixels in what the screen shows of `selector`'s box (a screenshot, decoded in the page). */
async function litOnScreen(page: Page, selector: string): Promise<number> {
  const box = await (await page.$(selector))!.boundingBox();
  const png = await page.screenshot({ encoding: "base64", clip: box!, type: "png" });
  return page.evaluate(async (base64: string) => {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/png" }));
    const scratch = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = scratch.getContext("2d")!;
    ctx.drawImage(bitmap, 0, 0);
    const { data } = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
    let lit = 0;
    for (let i = 0; i < data.length; i += 4) if (data[i]! + data[i + 1]! + data[i + 2]! > 48) lit++;
    return lit / (data.length / 4);
  }, png);
}

describe("canvascast.js embedded in a page from another origin", () => {
  let server: ServerProcess;
  let pageServer: Server | undefined;
  let pageOrigin = "";
  let browser: TestBrowser | undefined;

  beforeAll(async () => {
    const httpServer = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://page.test");
      if (url.pathname === "/") {
        res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(embeddingPage(server.url.replace(/\/$/, ""), url.searchParams));
      } else if (req.url === "/favicon.ico") {
        res.writeHead(204).end(); // not a 404 in the console
      } else {
        res.writeHead(404).end();
      }
    });
    pageServer = httpServer;
    await new Promise<void>((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
    pageOrigin = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
    // Pages on loopback origins may open the streams; the cam.test page's origin must be allowed.
    const insecureOrigin = pageOrigin.replace("127.0.0.1", INSECURE_HOST);
    server = await startServerProcess(["--source", "test", "--size", `${WIDTH}x${HEIGHT}`, "--fps", "30", "--keyframe-interval", "1", "--allow-origin", insecureOrigin]);
    // cam.test is loopback too, but not a secure context: no VideoDecoder there (WebCodecs needs one).
    browser = await launchBrowser([`--host-resolver-rules=MAP ${INSECURE_HOST} 127.0.0.1`]);
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (pageServer === undefined ? resolve() : pageServer.close(() => resolve())));
    await stopAllServers();
  });

  /** Opens the page; `problems` collects its uncaught errors and console errors and warnings. */
  async function openPage(query: string, problems: string[], origin = pageOrigin): Promise<Page> {
    const page = await browser!.newPage();
    page.on("pageerror", (err) => problems.push(String(err)));
    page.on("console", (msg) => {
      if (msg.type() === "error" || msg.type() === "warn") problems.push(msg.text());
    });
    await page.goto(`${origin}/${query}`, { waitUntil: "load" });
    await page.waitForFunction(() => (window as unknown as { embedReady?: boolean }).embedReady === true, { timeout: 10_000 });
    expect(new URL(page.url()).origin).not.toBe(new URL(server.url).origin);
    return page;
  }

  it("plays in <canvas-cast> and into the page's own canvas, in workers; snapshots are PNGs of the stream's size; removing the element ends its viewer", async () => {
    const pageErrors: string[] = [];
    const page = await openPage("", pageErrors);
    await until("both players live and painting", 20_000, async () => {
      const p = await players(page);
      return p.element?.state === "live" && p.api.state === "live" && p.element.framesPainted > 5 && p.api.framesPainted > 5 ? p : undefined;
    });
    const { element, api } = await players(page);
    // Chromium has OffscreenCanvas and VideoDecoder in workers: both decode off the main thread.
    expect(element?.thread).toBe("worker");
    expect(api.thread).toBe("worker");
    // Stats come over from the worker, latency included.
    expect(api.latencyP50Ms).toBeGreaterThan(0);
    expect(await viewers(server)).toBe(2);

    for (const who of ["element", "api"] as const) {
      const first = await page.evaluate(sampleSnapshot, who);
      await sleep(500);
      const second = await page.evaluate(sampleSnapshot, who);
      expect(first.type, who).toBe("image/png");
      // The element is shown 320 CSS pixels wide: quality="auto" plays the stream's tile encoding.
      const size = who === "element" ? { width: TILE_WIDTH, height: TILE_HEIGHT } : { width: WIDTH, height: HEIGHT };
      expect({ width: first.width, height: first.height }, who).toEqual(size);
      expect(first.litShare, who).toBeGreaterThan(0.5);
      // The pattern moves and its clock ticks: pictures half a second apart differ.
      expect(second.checksum, who).not.toBe(first.checksum);
    }

    // What the page shows (the canvases the workers paint through their OffscreenCanvases) is the picture.
    expect(await litOnScreen(page, "#element")).toBeGreaterThan(0.5);
    expect(await litOnScreen(page, "#own")).toBeGreaterThan(0.5);

    // A hidden page pauses both worker players (only the page sees visibilitychange; it tells the
    // worker), and they come back live when it is shown again.
    const other = await browser!.newPage();
    await other.bringToFront();
    await until("both players paused while hidden", 5000, async () => {
      const p = await players(page);
      return p.element?.state === "paused" && p.api.state === "paused" ? true : undefined;
    });
    await other.close();
    await page.bringToFront();
    await until("both players live again", 10_000, async () => {
      const p = await players(page);
      return p.element?.state === "live" && p.api.state === "live" ? true : undefined;
    });

    // Moving the element in the DOM keeps its player (no reconnect).
    const kept = await page.evaluate(() => {
      const el = document.getElementById("element") as unknown as HTMLElement & { player: unknown };
      const before = el.player;
      document.body.append(el);
      return el.player === before;
    });
    expect(kept).toBe(true);
    await sleep(1300);
    expect(await viewers(server)).toBe(2);

    // Removed: its socket closes after the delay; then closing the API player leaves no viewer.
    const removedAt = Date.now();
    await page.evaluate(() => document.getElementById("element")!.remove());
    await sleep(400);
    expect(await viewers(server)).toBe(2);
    await until("the element's viewer gone", 5000, async () => ((await viewers(server)) === 1 ? true : undefined));
    expect(Date.now() - removedAt).toBeGreaterThanOrEqual(900);
    await page.evaluate(() => {
      const p = (window as unknown as { apiPlayer: { close(): void; state: string } }).apiPlayer;
      p.close();
      p.close(); // safe twice
    });
    await until("no viewer left", 5000, async () => ((await viewers(server)) === 0 ? true : undefined));

    // The same canvas again: it already belongs to the worker, which plays into it once more.
    await page.evaluate(() => (window as unknown as { replay(): void }).replay());
    const again = await until("the canvas playing again", 10_000, async () => {
      const p = await players(page);
      return p.api.state === "live" ? p.api : undefined;
    });
    expect(again.thread).toBe("worker");
    const shot = await page.evaluate(sampleSnapshot, "api");
    expect({ width: shot.width, height: shot.height }).toEqual({ width: WIDTH, height: HEIGHT });
    await page.evaluate(() => (window as unknown as { apiPlayer: { close(): void } }).apiPlayer.close());
    await until("no viewer left again", 5000, async () => ((await viewers(server)) === 0 ? true : undefined));
    expect(pageErrors).toEqual([]);
    await page.close();
  });

  it("plays the tile encoding while the element is small and switches to the full one when it grows (quality=auto), or as the attribute says", async () => {
    const problems: string[] = [];
    const page = await openPage("", problems);
    type Seen = { encoding: string; shown: string | undefined; state: string; width: number };
    const seen = (): Promise<Seen> =>
      page.evaluate(async () => {
        const el = document.getElementById("element") as unknown as { player: { encoding: string; hello?: { encoding: string }; state: string }; snapshot(): Promise<Blob> };
        let width = 0;
        try {
          width = (await createImageBitmap(await el.snapshot())).width;
        } catch {
          // no picture yet
        }
        return { encoding: el.player.encoding, shown: el.player.hello?.encoding, state: el.player.state, width };
      });
    await until("the element live on its tile encoding", 20_000, async () => {
      const s = await seen();
      return s.state === "live" && s.shown === "tile" && s.width === TILE_WIDTH ? s : undefined;
    });
    // Grown past 480 device pixels: the full encoding, in place (the same player).
    const before = await page.evaluate(() => {
      const el = document.getElementById("element") as unknown as HTMLElement & { player: unknown };
      el.style.width = "800px";
      el.style.height = "600px";
      (window as unknown as { before: unknown }).before = el.player;
      return true;
    });
    expect(before).toBe(true);
    await until("the full encoding on screen", 10_000, async () => {
      const s = await seen();
      return s.encoding === "full" && s.shown === "full" && s.width === WIDTH && s.state === "live" ? s : undefined;
    });
    expect(await page.evaluate(() => (document.getElementById("element") as unknown as { player: unknown }).player === (window as unknown as { before: unknown }).before)).toBe(true);
    // quality="tile" holds whatever the size.
    await page.evaluate(() => document.getElementById("element")!.setAttribute("quality", "tile"));
    await until("the tile encoding again, as the attribute asks", 10_000, async () => {
      const s = await seen();
      return s.encoding === "tile" && s.shown === "tile" && s.width === TILE_WIDTH ? s : undefined;
    });
    expect(problems).toEqual([]);
    await page.close();
  });

  it("plays on the main thread when asked (worker: false), and when the page's CSP refuses workers", async () => {
    const pageErrors: string[] = [];
    const page = await openPage("?worker=0", pageErrors);
    await until("the API player live and painting", 20_000, async () => {
      const p = await players(page);
      return p.api.state === "live" && p.api.framesPainted > 5 ? p : undefined;
    });
    const { api } = await players(page);
    expect(api.thread).toBe("main");
    // On the main thread the page's canvas is an ordinary one: read it directly.
    const first = await page.evaluate(sampleOwnCanvas);
    await sleep(500);
    expect(await page.evaluate(sampleOwnCanvas)).not.toBe(first);
    const snapshot = await page.evaluate(sampleSnapshot, "api");
    expect({ width: snapshot.width, height: snapshot.height }).toEqual({ width: WIDTH, height: HEIGHT });
    expect(pageErrors).toEqual([]);
    await page.close();
    await until("no viewer left after the page closed", 5000, async () => ((await viewers(server)) === 0 ? true : undefined));

    // A CSP that refuses workers refuses them only after `new Worker`: the players notice before
    // handing their canvases over, and play on the main thread instead.
    const cspProblems: string[] = [];
    const csp = await openPage("?csp=1", cspProblems);
    const both = await until("both players live despite the CSP", 20_000, async () => {
      const p = await players(csp);
      return p.element?.state === "live" && p.api.state === "live" ? p : undefined;
    });
    expect([both.element?.thread, both.api.thread]).toEqual(["main", "main"]);
    expect(await csp.evaluate(sampleOwnCanvas)).not.toBe(0);
    expect(cspProblems.every((text) => text.includes("Content Security Policy"))).toBe(true);
    await csp.close();
  });

  it("with the bench's flag, a worker player and a main-thread player mark their join stages on the page's clock, once each, in order", async () => {
    const problems: string[] = [];
    const page = await browser!.newPage();
    page.on("pageerror", (err) => problems.push(String(err)));
    await page.evaluateOnNewDocument(() => {
      (globalThis as { canvascastMarkPaints?: boolean }).canvascastMarkPaints = true;
    });
    // ?worker=0: the element plays in a worker, the page's own canvas on the main thread.
    await page.goto(`${pageOrigin}/?worker=0`, { waitUntil: "load" });
    type Mark = { stage: string; at: number; player: number; thread: string };
    const read = (): Promise<{ marks: Mark[]; firstPaints: Record<string, number | null> }> =>
      page.evaluate(() => {
        type P = { thread: string; stats(): { firstPaintAtMs: number | null } };
        const el = document.getElementById("element") as unknown as { player: P | undefined };
        const api = (window as unknown as { apiPlayer: P }).apiPlayer;
        const marks = performance
          .getEntriesByType("mark")
          .filter((m) => m.name.startsWith("canvascast-join "))
          .map((m) => {
            const detail = (m as PerformanceMark).detail as { player: number; thread: string };
            return { stage: m.name.slice("canvascast-join ".length), at: m.startTime, player: detail.player, thread: detail.thread };
          });
        const firstPaints: Record<string, number | null> = {};
        for (const p of [el.player, api]) if (p !== undefined) firstPaints[p.thread] = p.stats().firstPaintAtMs;
        return { marks, firstPaints };
      });
    const seen = await until("both players' paint marks and first paints", 20_000, async () => {
      const r = await read();
      const painted = ["main", "worker"].every((t) => r.marks.some((m) => m.thread === t && m.stage === "paint") && (r.firstPaints[t] ?? null) !== null);
      return painted ? r : undefined;
    });
    await sleep(1000); // later frames must add no marks
    const { marks, firstPaints } = await read();
    expect(marks.length).toBe(seen.marks.length);
    const module = marks.filter((m) => m.stage === "module");
    expect(module.map((m) => [m.player, m.thread])).toEqual([[0, "main"]]);
    for (const thread of ["main", "worker"]) {
      const own = marks.filter((m) => m.thread === thread && m.stage !== "module");
      // The timeline is in time order: the stages were reached in join order.
      expect(own.map((m) => m.stage), thread).toEqual(["hello", "frame", "decoded", "paint"]);
      expect(new Set(own.map((m) => m.player)).size, thread).toBe(1);
      const times = own.map((m) => m.at);
      expect(times[0]!, thread).toBeGreaterThan(module[0]!.at);
      // The paint mark carries the time of the paint the player's stats report, on the page's clock
      // for the worker too (unshifted, the worker's times would be off by its later time origin).
      expect(Math.abs(times[3]! - firstPaints[thread]!), thread).toBeLessThan(1);
    }
    expect(problems).toEqual([]);
    await page.close();
    await until("no viewer left after the marks page closed", 5000, async () => ((await viewers(server)) === 0 ? true : undefined));
  });

  it("warns about bad attribute values and uses the defaults; mode=mse, and mode=auto without a secure context, play the WebM stream in a <video>", async () => {
    const warnings: string[] = [];
    const bad = await openPage("?mode=bogus&fit=weird", warnings);
    const view = await until("the element live", 20_000, async () => {
      const p = await players(bad);
      return p.element?.state === "live" ? p.element : undefined;
    });
    expect(view.thread).toBe("worker");
    expect(await bad.$eval("#element", (el) => [(el as unknown as { mode: string }).mode, (el as unknown as { fit: string }).fit])).toEqual(["auto", "contain"]);
    expect(warnings).toHaveLength(2);
    expect(warnings.join("\n")).toMatch(/mode="bogus"[\s\S]*fit="weird"/);
    await bad.close();

    const problems: string[] = [];
    const mse = await openPage("?mode=mse&fit=cover", problems);
    await until("the MSE element live", 20_000, async () => {
      const p = await players(mse);
      return p.element?.state === "live" ? true : undefined;
    });
    const info = await mse.$eval("#element", (el) => {
      const e = el as unknown as { player: { mode: string; thread: string }; shadowRoot: ShadowRoot };
      const video = e.shadowRoot.querySelector("video");
      return { mode: e.player.mode, thread: e.player.thread, video: video !== null, fit: video?.style.objectFit };
    });
    expect(info).toEqual({ mode: "mse", thread: "main", video: true, fit: "cover" });
    // Long enough for one recovery (the player starts over after a 4 s stall, with backoff). Under a
    // full run's load the <video>'s buffered ranges had holes, and the join seek into a range that ended
    // at one never finished in Chromium: the live-edge logic now redoes such a seek (live-edge.ts).
    const shot = await until("an MSE snapshot", 20_000, async () => mse.evaluate(sampleSnapshot, "element").catch(() => undefined)).catch(async (err: unknown) => {
      // What the <video> and the player were doing, for a failure that only shows under load.
      const seen = await mse.$eval("#element", (el) => {
        const e = el as unknown as { player: { state: string; encoding: string; stats(): unknown }; shadowRoot: ShadowRoot };
        const v = e.shadowRoot.querySelector("video")!;
        const ranges = Array.from({ length: v.buffered.length }, (_, i) => `${v.buffered.start(i).toFixed(2)}-${v.buffered.end(i).toFixed(2)}`);
        return { state: e.player.state, encoding: e.player.encoding, readyState: v.readyState, seeking: v.seeking, networkState: v.networkState, paused: v.paused, currentTime: v.currentTime, size: `${v.videoWidth}x${v.videoHeight}`, error: v.error?.message ?? null, buffered: ranges, stats: e.player.stats() };
      });
      throw new Error(`${String(err)}: ${JSON.stringify(seen)}`);
    });
    // The MSE player follows quality="auto" too: the small element plays the tile encoding from /webm/.
    expect({ width: shot.width, height: shot.height }).toEqual({ width: TILE_WIDTH, height: TILE_HEIGHT });
    expect(problems).toEqual([]);
    await mse.close();

    // Not a secure context: mode=auto falls back to MSE; the API (WebCodecs only) says unsupported.
    const insecure = await openPage("", problems, pageOrigin.replace("127.0.0.1", INSECURE_HOST));
    expect(await insecure.evaluate(() => typeof VideoDecoder)).toBe("undefined");
    await until("the element live through MSE", 20_000, async () => {
      const p = await players(insecure);
      return p.element?.state === "live" ? true : undefined;
    });
    expect(await insecure.$eval("#element", (el) => (el as unknown as { player: { mode: string } }).player.mode)).toBe("mse");
    expect((await players(insecure)).api.state).toBe("unsupported");
    expect(problems).toEqual([]);
    await insecure.close();
  });
});
