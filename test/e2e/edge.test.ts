// A player cannot tell an edge from an origin: headless Chromium on an edge (`--edge --nats`) that
// serves an origin's streams over a real nats-server. The dashboard opened on the edge lists and
// paints the origin's streams, on their tile encoding in the grid and the full one in full screen;
// the origin records, and full screen on the edge shows its recording's timeline and plays it back;
// an embedded <canvas-cast> whose edge is killed reconnects by itself to the edge started in its place.

import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "puppeteer";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { StreamInfo, StreamsResponse } from "../../shared/api.js";
import { launchBrowser, type TestBrowser } from "../helpers/browser.js";
import { playFromTimeline } from "../helpers/timeline.js";
import { startNatsCluster, stopAllNatsClusters, type NatsCluster } from "../helpers/nats-cluster.js";
import { startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";
import { until } from "../helpers/until.js";

const STREAMS = ["door", "yard"] as const;
const FULL = { width: 320, height: 240 };
const TILE = { width: 160, height: 120 };
const ORIGIN_ARGS = [
  ...["--stream", "door=test:ball", "--stream", "yard=test:smpte"],
  ...["--size", `${FULL.width}x${FULL.height}`, "--tile", `${TILE.width}x${TILE.height}`, "--fps", "15", "--keyframe-interval", "1"],
];

interface Picture {
  readonly width: number;
  readonly height: number;
  readonly checksum: number;
  /** Share of pixels that are not near-black. */
  readonly litShare: number;
  /** Share of pixels near each of a few SMPTE bar colours. */
  readonly bars: Record<string, number>;
}

/** The snapshot of the dashboard's tile of `stream`, or of the embedded element when "#element", read back. Runs in the page. */
async function samplePicture(stream: string): Promise<Picture> {
  const blob =
    stream === "#element"
      ? await (document.getElementById("element") as unknown as { snapshot(): Promise<Blob> }).snapshot()
      : await (window as unknown as { canvascast: { snapshot(stream: string): Promise<Blob> } }).canvascast.snapshot(stream);
  const BAR_COLOURS: Record<string, [number, number, number]> = { yellow: [255, 255, 0], cyan: [0, 255, 255], magenta: [255, 0, 255], blue: [0, 0, 255] };
  const bitmap = await createImageBitmap(blob);
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext("2d")!;
  ctx.drawImage(bitmap, 0, 0);
  const { data } = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  let lit = 0;
  let checksum = 0;
  const counts: Record<string, number> = Object.fromEntries(Object.keys(BAR_COLOURS).map((k) => [k, 0]));
  for (let i = 0; i < data.length; i += 4) {
    const r = data[i]!;
    const g = data[i + 1]!;
    const b = data[i + 2]!;
    if (r + g + b > 48) lit++;
    checksum = (checksum * 31 + r * 3 + g * 5 + b * 7) >>> 0;
    for (const [name, [cr, cg, cb]] of Object.entries(BAR_COLOURS)) {
      if (Math.abs(r - cr) <= 16 && Math.abs(g - cg) <= 16 && Math.abs(b - cb) <= 16) counts[name]!++;
    }
  }
  const pixels = data.length / 4;
  const bars = Object.fromEntries(Object.entries(counts).map(([k, n]) => [k, n / pixels]));
  return { width: bitmap.width, height: bitmap.height, checksum, litShare: lit / pixels, bars };
}

const tilePicture = (page: Page, stream: string): Promise<Picture> => page.evaluate(samplePicture, stream);
const elementPicture = (page: Page): Promise<Picture> => page.evaluate(samplePicture, "#element");

async function tileData(page: Page, stream: string): Promise<Record<string, string>> {
  return page.$eval(`.tile[data-stream="${stream}"]`, (el) => ({ ...(el as HTMLElement).dataset }) as Record<string, string>);
}

/** Waits until the tile shows `encoding` live, with more than `painted` frames painted. */
async function waitForTile(page: Page, stream: string, encoding: string, painted: number): Promise<void> {
  await page.waitForFunction(
    (name: string, enc: string, min: number) => {
      const d = document.querySelector<HTMLElement>(`.tile[data-stream="${name}"]`)?.dataset;
      return d?.state === "live" && d.shownEncoding === enc && Number(d.framesPainted) > min;
    },
    { polling: 100, timeout: 20_000 },
    stream,
    encoding,
    painted,
  );
}

async function streamsOf(server: ServerProcess): Promise<readonly StreamInfo[]> {
  const response = await fetch(new URL("/api/streams", server.url));
  expect(response.ok).toBe(true);
  return ((await response.json()) as StreamsResponse).streams;
}

/** A page of another origin that embeds the edge's door stream in a <canvas-cast> shown small (the tile encoding). */
function embeddingPage(server: string): string {
  return `<!doctype html>
<meta charset="utf-8">
<title>embeds canvascast from an edge</title>
<canvas-cast id="element" src="${server.replace(/^http/, "ws")}/ws/door" style="width:160px;height:120px"></canvas-cast>
<script type="module">
  import "${server}/canvascast.js";
  window.embedReady = true;
</script>`;
}

interface ElementView {
  readonly state: string;
  readonly framesPainted: number;
  readonly reconnects: number;
}

async function elementView(page: Page): Promise<ElementView> {
  return page.evaluate(() => {
    const el = document.getElementById("element") as unknown as { player?: { state: string; stats(): { framesPainted: number; reconnects: number } } };
    if (el.player === undefined) return { state: "none", framesPainted: 0, reconnects: 0 };
    const { framesPainted, reconnects } = el.player.stats();
    return { state: el.player.state, framesPainted, reconnects };
  });
}

describe("a player on an edge", () => {
  let nats: NatsCluster;
  let browser: TestBrowser;
  const pages: Page[] = [];
  const pageErrors: string[] = [];
  const recordings = mkdtempSync(join(tmpdir(), "cc-edge-rec-"));

  beforeAll(async () => {
    nats = await startNatsCluster(1);
    // The origin: stopped with the others in afterAll.
    [, browser] = await Promise.all([startServerProcess([...ORIGIN_ARGS, "--record", recordings, "--nats", nats.urls]), launchBrowser()]);
  });
  afterEach(async () => {
    await Promise.all(pages.splice(0).map((p) => p.close().catch(() => undefined)));
  });
  afterAll(async () => {
    await browser?.close();
    await stopAllServers();
    await stopAllNatsClusters();
    rmSync(recordings, { recursive: true, force: true });
  });

  const edge = (extra: string[] = []): Promise<ServerProcess> => startServerProcess(["--edge", "--nats", nats.urls, ...extra]);

  async function newPage(): Promise<Page> {
    const page = await browser.newPage();
    pages.push(page);
    // Uncaught exceptions only: sockets refused while an edge is down are logged as console errors.
    page.on("pageerror", (err) => pageErrors.push(String(err)));
    return page;
  }

  it("the dashboard opened on an edge lists the origin's streams, plays them, and plays back the origin's recording", async () => {
    const e = await edge();
    const page = await newPage();
    await page.setViewport({ width: 1280, height: 800 });
    await page.goto(e.url, { waitUntil: "load" });
    for (const stream of STREAMS) await waitForTile(page, stream, "tile", 10);
    expect(await page.$$eval(".tile", (els) => els.map((el) => (el as HTMLElement).dataset.stream))).toEqual([...STREAMS]);

    // Each tile paints its own stream on the tile encoding, live: the ball moves on black, the bars are there.
    const door = await tilePicture(page, "door");
    const yard = await tilePicture(page, "yard");
    expect({ width: door.width, height: door.height }).toEqual(TILE);
    expect({ width: yard.width, height: yard.height }).toEqual(TILE);
    expect(door.litShare).toBeGreaterThan(0.01);
    expect(door.litShare).toBeLessThan(0.5);
    expect(yard.litShare).toBeGreaterThan(0.5);
    for (const [name, share] of Object.entries(yard.bars)) expect(share, `share of ${name} bar pixels`).toBeGreaterThan(0.02);
    await waitForTile(page, "door", "tile", Number((await tileData(page, "door")).framesPainted) + 5);
    expect((await tilePicture(page, "door")).checksum).not.toBe(door.checksum);

    // The edge's own figures say the same: both streams live from the origin, one tile viewer each,
    // and only the viewed encoding subscribed on NATS.
    const listed = await streamsOf(e);
    expect(listed.map((s) => s.name)).toEqual([...STREAMS]);
    for (const s of listed) {
      expect(s).toMatchObject({ state: "live", width: FULL.width, height: FULL.height, viewers: 1 });
      expect(s.origin).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(s.encodings.map((x) => [x.name, x.width, x.height, x.viewers, x.relay?.subscribed])).toEqual([
        ["full", FULL.width, FULL.height, 0, false],
        ["tile", TILE.width, TILE.height, 1, true],
      ]);
    }

    // Full screen plays the full encoding, which the edge now relays too; Escape goes back to the tile.
    await page.click('.tile[data-stream="yard"] .screen');
    await waitForTile(page, "yard", "full", Number((await tileData(page, "yard")).framesPainted) + 5);
    const full = await tilePicture(page, "yard");
    expect({ width: full.width, height: full.height }).toEqual(FULL);
    expect(full.litShare).toBeGreaterThan(0.5);
    // The origin's recording, through the edge: the timeline lists it, a click plays it (REC), LIVE comes back.
    await page.waitForFunction(() => Number(document.querySelector<HTMLElement>('.tile[data-stream="yard"] .timeline')?.dataset.ranges ?? 0) >= 1, { timeout: 15_000 });
    await playFromTimeline(page, "yard", 0.999);
    const playing = Number((await tileData(page, "yard")).framesPainted);
    await page.waitForFunction((min: number) => Number(document.querySelector<HTMLElement>('.tile[data-stream="yard"]')?.dataset.framesPainted) > min + 5, { timeout: 10_000 }, playing);
    await page.click('.tile[data-stream="yard"] .timeline button.live');
    await page.waitForFunction(() => document.querySelector<HTMLElement>('.tile[data-stream="yard"]')?.dataset.playback === "live", { timeout: 10_000 });
    await page.keyboard.press("Escape");
    await page.evaluate(() => (document.fullscreenElement === null ? undefined : document.exitFullscreen()));
    await waitForTile(page, "yard", "tile", Number((await tileData(page, "yard")).framesPainted) + 5);

    for (const stream of STREAMS) expect(Number((await tileData(page, stream)).decoderErrors), stream).toBe(0);
    expect(pageErrors).toEqual([]);
    await e.stop();
  });

  it("a player whose edge is killed reconnects", async () => {
    const a = await edge();
    const port = new URL(a.url).port;
    const base = a.url.replace(/\/$/, "");
    const pageServer: Server = createServer((req, res) => {
      if (req.url === "/") res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(embeddingPage(base));
      else res.writeHead(req.url === "/favicon.ico" ? 204 : 404).end();
    });
    await new Promise<void>((resolve) => pageServer.listen(0, "127.0.0.1", resolve));
    try {
      const page = await newPage();
      await page.goto(`http://127.0.0.1:${(pageServer.address() as AddressInfo).port}/`, { waitUntil: "load" });
      await page.waitForFunction(() => (window as unknown as { embedReady?: boolean }).embedReady === true, { timeout: 10_000 });
      await until("the element live at edge A", 20_000, async () => {
        const v = await elementView(page);
        return v.state === "live" && v.framesPainted > 5 ? v : undefined;
      });
      const beforeKill = await elementPicture(page);
      expect({ width: beforeKill.width, height: beforeKill.height }).toEqual(TILE);

      await a.stop("SIGKILL");
      await until("the element reconnecting", 10_000, async () => ((await elementView(page)).state === "reconnecting" ? true : undefined));
      const b = await edge(["--port", port]);
      expect(new URL(b.url).port).toBe(port);
      // Nothing was painted while no edge ran: every frame painted from here on came through edge B.
      const paintedWhileDown = (await elementView(page)).framesPainted;

      const after = await until("the element live again at edge B", 20_000, async () => {
        const v = await elementView(page);
        return v.state === "live" && v.reconnects >= 1 && v.framesPainted > paintedWhileDown + 10 ? v : undefined;
      });
      expect(after.reconnects).toBeGreaterThanOrEqual(1);
      const first = await elementPicture(page);
      await until("more frames painted", 10_000, async () => ((await elementView(page)).framesPainted > after.framesPainted + 5 ? true : undefined));
      const second = await elementPicture(page);
      expect({ width: second.width, height: second.height }).toEqual(TILE);
      expect(second.litShare).toBeGreaterThan(0.01);
      expect(second.checksum).not.toBe(first.checksum);
      // Edge B serves it: the element is its one viewer.
      const door = (await streamsOf(b)).find((s) => s.name === "door");
      expect(door?.viewers).toBe(1);
      expect(pageErrors).toEqual([]);
    } finally {
      // Chromium keeps its connection to the page server alive: cut it, or close() waits for it.
      pageServer.closeAllConnections();
      await new Promise<void>((resolve) => pageServer.close(() => resolve()));
    }
  });
});
