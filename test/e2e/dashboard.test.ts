// The dashboard in headless Chromium, playing the real server's test-pattern stream.

import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Page } from "puppeteer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser, type TestBrowser } from "../helpers/browser.js";
import { startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";
import { waitFor } from "../helpers/until.js";

const ARTIFACTS = fileURLToPath(new URL("../artifacts/", import.meta.url));

interface CanvasSample {
  readonly width: number;
  readonly height: number;
  /** Share of pixels that are not near-black. */
  readonly litShare: number;
  /** A cheap fingerprint of the picture. */
  readonly checksum: number;
  /** Share of pixels within tolerance of each SMPTE bar colour. */
  readonly bars: Record<string, number>;
}

/** Reads the tile's canvas back. Runs in the page. */
function sampleCanvas(stream: string): CanvasSample {
  // The 100 % colour bars of videotestsrc's smpte pattern. Decoded with the BT.601 matrix they come back at
  // their true values; the BT.709 matrix would move every saturated bar by more than the tolerance.
  const BAR_COLOURS: Record<string, [number, number, number]> = {
    white: [255, 255, 255],
    yellow: [255, 255, 0],
    cyan: [0, 255, 255],
    green: [0, 255, 0],
    magenta: [255, 0, 255],
    red: [255, 0, 0],
    blue: [0, 0, 255],
  };
  const canvas = document.querySelector<HTMLCanvasElement>(`.tile[data-stream="${stream}"] canvas`);
  if (!canvas) throw new Error("no canvas");
  // Copy through a plain canvas so the player's own context is not disturbed.
  const copy = document.createElement("canvas");
  copy.width = canvas.width;
  copy.height = canvas.height;
  const ctx = copy.getContext("2d")!;
  ctx.drawImage(canvas, 0, 0);
  const { data } = ctx.getImageData(0, 0, copy.width, copy.height);
  let lit = 0;
  let checksum = 0;
  const counts: Record<string, number> = Object.fromEntries(Object.keys(BAR_COLOURS).map((k) => [k, 0]));
  const pixels = data.length / 4;
  for (let i = 0; i < data.length; i += 4) {
    const r = data[i]!;
    const g = data[i + 1]!;
    const b = data[i + 2]!;
    if (r + g + b > 48) lit++;
    checksum = (checksum * 31 + r * 3 + g * 5 + b * 7) >>> 0;
    for (const [name, [cr, cg, cb]] of Object.entries(BAR_COLOURS)) {
      if (Math.abs(r - cr) <= 12 && Math.abs(g - cg) <= 12 && Math.abs(b - cb) <= 12) counts[name]!++;
    }
  }
  const bars: Record<string, number> = {};
  for (const [name, n] of Object.entries(counts)) bars[name] = n / pixels;
  return { width: canvas.width, height: canvas.height, litShare: lit / pixels, checksum, bars };
}

async function tileData(page: Page, stream: string): Promise<Record<string, string>> {
  return page.$eval(`.tile[data-stream="${stream}"]`, (el) => ({ ...(el as HTMLElement).dataset }) as Record<string, string>);
}

describe("the dashboard", () => {
  let server: ServerProcess;
  let browser: TestBrowser;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    server = await startServerProcess(["--source", "test", "--size", "640x480", "--fps", "30", "--keyframe-interval", "2"]);
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await stopAllServers();
  });

  it("paints the live stream with the right colours and no decoder error", async () => {
    const page = await browser.newPage();
    page.on("pageerror", (err) => pageErrors.push(String(err)));
    page.on("console", (msg) => {
      if (msg.type() === "error") pageErrors.push(msg.text());
    });
    await page.setViewport({ width: 1280, height: 800 });
    await page.goto(server.url, { waitUntil: "load" });
    await page.waitForFunction(
      () => Number(document.querySelector<HTMLElement>('.tile[data-stream="cam0"]')?.dataset.framesPainted ?? 0) > 30,
      { timeout: 20_000 },
    );

    const first = await page.evaluate(sampleCanvas, "cam0");
    await new Promise((r) => setTimeout(r, 500));
    const second = await page.evaluate(sampleCanvas, "cam0");

    // The grid plays the stream's tile encoding (the picture is shown ~400 CSS pixels wide here).
    expect({ width: first.width, height: first.height }).toEqual({ width: 320, height: 240 });
    expect(first.litShare).toBeGreaterThan(0.5);
    // The pattern moves and the clock ticks: two samples half a second apart differ.
    expect(second.checksum).not.toBe(first.checksum);
    // BT.601 decoding gives the bars their true colours; each covers a visible share of the picture.
    for (const [name, share] of Object.entries(second.bars)) {
      expect(share, `share of ${name} bar pixels`).toBeGreaterThan(0.02);
    }

    const data = await tileData(page, "cam0");
    expect(data.state).toBe("live");
    expect(Number(data.decoderErrors)).toBe(0);
    expect(Number(data.firstPaintMs)).toBeGreaterThan(0);
    expect(Number(data.latencyP50)).toBeGreaterThan(0);
    expect(pageErrors).toEqual([]);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}dashboard.png` });
    // Reported, not asserted: speed is measured in the benchmarks.
    console.log(
      `dashboard: first paint ${data.firstPaintMs} ms after start, pipe→painted p50 ${data.latencyP50} ms p95 ${data.latencyP95} ms`,
    );
    await page.close();
  });

  it("switches to the full encoding in full screen with no blank frame, and back to the tile after", async () => {
    const page = await browser.newPage();
    page.on("pageerror", (err) => pageErrors.push(String(err)));
    await page.setViewport({ width: 1280, height: 800 });
    await page.goto(server.url, { waitUntil: "load" });
    await page.waitForFunction(
      () => {
        const d = document.querySelector<HTMLElement>('.tile[data-stream="cam0"]')?.dataset;
        return d?.shownEncoding === "tile" && Number(d.framesPainted) > 10;
      },
      { timeout: 20_000 },
    );
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}dashboard-switch-before.png` });
    const gridScreen = await page.$eval('.tile[data-stream="cam0"] .screen', (el) => {
      const r = el.getBoundingClientRect();
      return { x: r.x, y: r.y, width: r.width, height: r.height };
    });

    // Every frame Chromium composites while the tile goes full screen and the encoding switches.
    const cdp = await page.createCDPSession();
    const frames: { data: string; at: number }[] = [];
    cdp.on("Page.screencastFrame", (frame: { data: string; sessionId: number; metadata: { timestamp?: number } }) => {
      frames.push({ data: frame.data, at: frame.metadata.timestamp ?? 0 });
      void cdp.send("Page.screencastFrameAck", { sessionId: frame.sessionId }).catch(() => undefined);
    });
    await cdp.send("Page.startScreencast", { format: "png", everyNthFrame: 1 });
    await waitFor(() => frames.length > 0, 5000, "a screencast frame before the click");
    const clickedAt = frames.length;
    await page.click('.tile[data-stream="cam0"] .screen');
    await page.waitForFunction(
      () => {
        const d = document.querySelector<HTMLElement>('.tile[data-stream="cam0"]')?.dataset;
        return document.fullscreenElement !== null && d?.encoding === "full" && d.shownEncoding === "full";
      },
      { timeout: 10_000 },
    );
    const switchedAt = frames.length;
    // A few frames of the full encoding on screen, then stop recording.
    await waitFor(() => frames.length >= switchedAt + 5, 5000, "frames after the switch");
    await cdp.send("Page.stopScreencast");
    const full = await page.evaluate(sampleCanvas, "cam0");
    expect({ width: full.width, height: full.height }).toEqual({ width: 640, height: 480 });
    await page.screenshot({ path: `${ARTIFACTS}dashboard-switch-after.png` });

    // Every frame from the click on shows a picture: the tile's in the grid (its screen lit), until
    // the full screen shows one (the middle of the screen lit). A black or blank frame is neither.
    const recorded = frames.slice(clickedAt);
    expect(recorded.length).toBeGreaterThan(5);
    const shares = await page.evaluate(
      async (pngs: string[], grid: { x: number; y: number; width: number; height: number }) => {
        const litShare = (ctx: OffscreenCanvasRenderingContext2D, x: number, y: number, w: number, h: number): number => {
          const { data } = ctx.getImageData(x, y, w, h);
          let n = 0;
          for (let i = 0; i < data.length; i += 4) if (data[i]! + data[i + 1]! + data[i + 2]! > 48) n++;
          return n / (data.length / 4);
        };
        const out: { middle: number; grid: number }[] = [];
        for (const png of pngs) {
          // Not fetch(data:…): the dashboard's CSP allows no such connection.
          const bytes = Uint8Array.from(atob(png), (c) => c.charCodeAt(0));
          const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/png" }));
          const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
          const ctx = canvas.getContext("2d")!;
          ctx.drawImage(bitmap, 0, 0);
          const sx = bitmap.width / innerWidth;
          const sy = bitmap.height / innerHeight;
          out.push({
            // The middle half of the screen: inside the full-screen picture.
            middle: litShare(ctx, bitmap.width / 4, bitmap.height / 4, bitmap.width / 2, bitmap.height / 2),
            grid: litShare(ctx, grid.x * sx, grid.y * sy, grid.width * sx, grid.height * sy),
          });
        }
        return out;
      },
      recorded.map((f) => f.data),
      gridScreen,
    );
    writeFileSync(`${ARTIFACTS}dashboard-switch-during.png`, Buffer.from(recorded[Math.min(recorded.length - 1, shares.findIndex((x) => x.middle > 0.5))]!.data, "base64"));
    const kinds = shares.map((x) => (x.middle > 0.5 ? "full" : x.grid > 0.5 ? "grid" : "blank"));
    const shown = kinds.join(" ");
    expect(kinds, shown).not.toContain("blank");
    // Grid frames, then full-screen ones, and no way back before Escape.
    expect(kinds.lastIndexOf("grid") < kinds.indexOf("full"), shown).toBe(true);

    // Out of full screen: the grid's tile encoding again.
    await page.keyboard.press("Escape");
    await page.evaluate(() => (document.fullscreenElement === null ? undefined : document.exitFullscreen()));
    await page.waitForFunction(
      () => document.querySelector<HTMLElement>('.tile[data-stream="cam0"]')?.dataset.shownEncoding === "tile",
      { timeout: 10_000 },
    );
    expect(pageErrors).toEqual([]);
    await page.close();
  });

  it("shows a joining page the picture at once from the replayed GOP (2 s keyframe interval)", async () => {
    const page = await browser.newPage();
    page.on("pageerror", (err) => pageErrors.push(String(err)));
    await page.goto(server.url, { waitUntil: "load" });
    await page.waitForFunction(
      () => Number(document.querySelector<HTMLElement>('.tile[data-stream="cam0"]')?.dataset.framesPainted ?? 0) > 0,
      { timeout: 20_000 },
    );
    const data = await tileData(page, "cam0");
    // The first picture came from the replayed GOP, not from waiting up to 2 s for the next keyframe.
    expect(data.joinedFromReplay).toBe("true");
    expect(Number(data.firstPaintMs)).toBeGreaterThan(0);
    const sample = await page.evaluate(sampleCanvas, "cam0");
    expect(sample.litShare).toBeGreaterThan(0.5);
    expect(pageErrors).toEqual([]);
    await page.close();
  });
});
