// The dashboard with several streams in headless Chromium against the real server: every stream
// paints with live figures, the server clock offset is estimated, the snapshot button saves a PNG of
// the stream's size, and streams added to or removed from the server appear and disappear without a reload.

import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Page } from "puppeteer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser, type TestBrowser } from "../helpers/browser.js";
import { startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";
import { until, waitFor } from "../helpers/until.js";

const ARTIFACTS = fileURLToPath(new URL("../artifacts/", import.meta.url));
const STREAMS = ["a", "b", "c"] as const;
const SERVER_ARGS = ["--stream", "a=test:ball", "--stream", "b=test:smpte", "--stream", "c=test:pinwheel", "--size", "320x240", "--fps", "30"];
const WIDTH = 320;
const HEIGHT = 240;

interface PictureSample {
  readonly width: number;
  readonly height: number;
  readonly checksum: number;
  /** Share of pixels that are not near-black. */
  readonly litShare: number;
}

/** The tile's picture through the dashboard's snapshot path (works on a main-thread or worker canvas). Runs in the page. */
async function samplePicture(stream: string): Promise<PictureSample> {
  const w = window as unknown as { canvascast: { snapshot(stream: string): Promise<Blob> } };
  const bitmap = await createImageBitmap(await w.canvascast.snapshot(stream));
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext("2d")!;
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
  let checksum = 0;
  let lit = 0;
  for (let i = 0; i < data.length; i += 4) {
    const r = data[i]!;
    const g = data[i + 1]!;
    const b = data[i + 2]!;
    if (r + g + b > 48) lit++;
    checksum = (checksum * 31 + r * 3 + g * 5 + b * 7) >>> 0;
  }
  return { width: canvas.width, height: canvas.height, checksum, litShare: lit / (data.length / 4) };
}

type TileData = Record<string, string>;

async function tileData(page: Page, stream: string): Promise<TileData> {
  return page.$eval(`.tile[data-stream="${stream}"]`, (el) => ({ ...(el as HTMLElement).dataset }) as TileData);
}

/** The figures as the tile shows them to a person. */
async function shownFigures(page: Page, stream: string): Promise<{ fps: string; kbps: string; latency: string }> {
  return page.$eval(`.tile[data-stream="${stream}"]`, (el) => ({
    fps: el.querySelector(".fig-fps")?.textContent ?? "",
    kbps: el.querySelector(".fig-kbps")?.textContent ?? "",
    latency: el.querySelector(".fig-latency")?.textContent ?? "",
  }));
}

/** Waits until every named tile is live with more than `painted` frames painted. */
async function waitForLive(page: Page, streams: readonly string[], painted: number, timeout = 20_000): Promise<void> {
  await page.waitForFunction(
    (names: readonly string[], min: number) =>
      names.every((name) => {
        const d = document.querySelector<HTMLElement>(`.tile[data-stream="${name}"]`)?.dataset;
        return d?.state === "live" && Number(d.framesPainted) > min;
      }),
    { polling: 100, timeout },
    streams,
    painted,
  );
}

/** Width and height from a PNG's IHDR chunk. */
function pngSize(bytes: Buffer): { width: number; height: number } {
  expect(bytes.subarray(0, 8).toString("hex")).toBe("89504e470d0a1a0a");
  expect(bytes.subarray(12, 16).toString("latin1")).toBe("IHDR");
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

describe("the dashboard with three streams", () => {
  let server: ServerProcess;
  let browser: TestBrowser;
  let page: Page;
  const downloads = mkdtempSync(join(tmpdir(), "canvascast-downloads-"));
  const pageErrors: string[] = [];

  beforeAll(async () => {
    [server, browser] = await Promise.all([startServerProcess(SERVER_ARGS), launchBrowser()]);
    page = await browser.newPage();
    page.on("pageerror", (err) => pageErrors.push(String(err)));
    await page.setViewport({ width: 1280, height: 800 });
    const cdp = await browser.browser.target().createCDPSession();
    await cdp.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: downloads, eventsEnabled: true });
  });
  afterAll(async () => {
    await browser?.close();
    await stopAllServers();
    rmSync(downloads, { recursive: true, force: true });
  });

  it("paints all three streams, with live figures and the server clock offset", async () => {
    await page.goto(server.url, { waitUntil: "load" });
    await waitForLive(page, STREAMS, 20);
    expect(await page.$$eval(".tile", (tiles) => tiles.map((t) => (t as HTMLElement).dataset.stream))).toEqual([...STREAMS]);

    const first = await Promise.all(STREAMS.map((s) => page.evaluate(samplePicture, s)));
    const paintedBefore = await Promise.all(STREAMS.map(async (s) => Number((await tileData(page, s)).framesPainted)));
    // The clock overlay ticks once a second, so every picture changes, even the still bars: sample each
    // tile until its picture differs from its first sample and its figures (updated a few times a
    // second) count more frames painted; the wait fails if one has not within 10 s.
    await Promise.all(
      STREAMS.map((s, i) =>
        until(`tile ${s}'s picture to change and its painted count to rise`, 10_000, async () =>
          (await page.evaluate(samplePicture, s)).checksum !== first[i]!.checksum &&
          Number((await tileData(page, s)).framesPainted) > paintedBefore[i]!
            ? true
            : undefined,
        ),
      ),
    );

    for (const [i, stream] of STREAMS.entries()) {
      expect({ width: first[i]!.width, height: first[i]!.height }, stream).toEqual({ width: WIDTH, height: HEIGHT });
      expect(first[i]!.litShare, `${stream}: not a black picture`).toBeGreaterThan(0.01); // the ball is small on black
      const d = await tileData(page, stream);
      expect(Number(d.framesPainted), `${stream}: frames painted rise`).toBeGreaterThan(paintedBefore[i]!);
      expect(d.mode).toBe("webcodecs");
      expect(d.decoderErrors).toBe("0");
      expect(Number(d.latencyP50), `${stream}: latency p50`).toBeGreaterThan(0);
      expect(d.latencyClock).toBe("server");
      // The estimator's behaviour on one machine: an offset exists and is near zero.
      const offset = Number(d.clockOffsetMs);
      expect(d.clockOffsetMs, `${stream}: clock offset`).not.toBe("");
      expect(Number.isFinite(offset)).toBe(true);
      expect(Math.abs(offset)).toBeLessThan(50);
      // What a person reads: numbers, not dashes.
      const shown = await shownFigures(page, stream);
      expect(Number(shown.fps), `${stream}: fps shown`).toBeGreaterThan(0);
      expect(Number(shown.kbps), `${stream}: kbit/s shown`).toBeGreaterThan(0);
      expect(shown.latency, `${stream}: latency shown`).toMatch(/^\d+(\.\d)? \/ \d+(\.\d)?$/);
    }
    // Sparklines have been drawn (the scale's label is set with the first point).
    for (const label of await page.$$eval(".spark-max", (els) => els.map((e) => e.textContent))) expect(label).toMatch(/^\d+(\.\d+)? ms$/);
    expect(await page.$eval("#clock-value", (el) => el.textContent)).toMatch(/^[+−]\d+(\.\d+)? ms/);

    // A few seconds of sparkline, then keep the picture for people to look at.
    await new Promise((r) => setTimeout(r, 4000));
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}dashboard-multi.png` });
    expect(pageErrors).toEqual([]);
  });

  it("puts a tile in full screen on a click, and takes it out on the next", async () => {
    const fullscreenStream = (): Promise<string | null> =>
      page.evaluate(() => (document.fullscreenElement as HTMLElement | null)?.dataset.stream ?? null);
    await page.click('.tile[data-stream="c"] .screen');
    await page.waitForFunction(() => document.fullscreenElement !== null, { timeout: 5000 });
    expect(await fullscreenStream()).toBe("c");
    mkdirSync(ARTIFACTS, { recursive: true }); // the first test may have failed before making it
    await page.screenshot({ path: `${ARTIFACTS}dashboard-multi-fullscreen.png` });
    await page.click('.tile[data-stream="c"] .screen');
    await page.waitForFunction(() => document.fullscreenElement === null, { timeout: 5000 });
    await waitForLive(page, ["c"], 0);
  });

  it("saves a PNG snapshot of the stream's size, named after the stream", async () => {
    await page.click('.tile[data-stream="b"] button.snapshot');
    let file = "";
    await waitFor(
      () => {
        file = readdirSync(downloads).find((f) => /^b-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z\.png$/.test(f)) ?? "";
        return file !== "";
      },
      10_000,
      "the snapshot download",
    );
    const bytes = readFileSync(join(downloads, file));
    expect(pngSize(bytes)).toEqual({ width: WIDTH, height: HEIGHT });
    const d = await tileData(page, "b");
    expect(d.snapshotName).toBe(file);
    expect(Number(d.snapshotBytes)).toBe(bytes.length);
  });

  it("shows a stream added on the server without a reload", async () => {
    const port = new URL(server.url).port;
    await page.evaluate(() => ((window as unknown as { __ccNoReload: boolean }).__ccNoReload = true));
    await server.stop();
    server = await startServerProcess([...SERVER_ARGS, "--stream", "d=test:snow", "--port", port]);
    expect(new URL(server.url).port).toBe(port);

    await waitForLive(page, ["a", "b", "c", "d"], 5, 30_000);
    expect(await page.evaluate(() => (window as unknown as { __ccNoReload?: boolean }).__ccNoReload)).toBe(true);
    expect(await page.$$eval(".tile", (tiles) => tiles.map((t) => (t as HTMLElement).dataset.stream))).toEqual(["a", "b", "c", "d"]);
    // The old tiles reconnected; the new one started from scratch.
    for (const stream of STREAMS) expect(Number((await tileData(page, stream)).reconnects), stream).toBeGreaterThan(0);
    expect((await tileData(page, "d")).reconnects).toBe("0");
    expect(pageErrors).toEqual([]);
  });

  it("drops the tile of a stream removed on the server", async () => {
    const port = new URL(server.url).port;
    await server.stop();
    server = await startServerProcess(["--stream", "a=test:ball", "--stream", "d=test:snow", "--size", "320x240", "--port", port]);
    await page.waitForFunction(() => document.querySelectorAll(".tile").length === 2, { polling: 100, timeout: 20_000 });
    expect(await page.$$eval(".tile", (tiles) => tiles.map((t) => (t as HTMLElement).dataset.stream))).toEqual(["a", "d"]);
    await waitForLive(page, ["a", "d"], 5, 20_000);
    expect(await page.evaluate(() => [...(window as unknown as { canvascast: { players: Map<string, unknown> } }).canvascast.players.keys()])).toEqual(["a", "d"]);
    expect(pageErrors).toEqual([]);
  });
});
