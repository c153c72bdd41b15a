// Scrub-back in the dashboard, in headless Chromium against the real server recording its test
// pattern: full screen shows the recorded ranges; a seek 20 s back paints the picture recorded then
// (the witness: the pattern moves 2 px a frame and its clock overlay ticks each second, so the
// picture and its clock pin its moment; they are compared with the live pictures sampled 20 s earlier), REC shows
// when it was recorded, and LIVE returns to the live picture.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "puppeteer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser, type TestBrowser } from "../helpers/browser.js";
import { playFromTimeline } from "../helpers/timeline.js";
import { startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";
import { sleep } from "../helpers/until.js";

/** What the tile showed: a small grey-scale copy of its canvas (48×36), the clock overlay's corner at full size,
 *  when it was painted (ms since the epoch) and, playing a recording, when that picture was recorded. */
type Sample = { at: number; recordedAt: number | null; pixels: number[]; clock: number[] };

/** Samples the tile's canvas at each new picture for `ms` (checked every animation frame). Runs in the page. */
function collect(ms: number): Promise<Sample[]> {
  const player = (window as unknown as PageWindow).canvascast.players.get("cam0")!;
  const canvas = document.querySelector<HTMLCanvasElement>('.tile[data-stream="cam0"] canvas');
  if (!canvas) throw new Error("no canvas");
  const grey = (data: Uint8ClampedArray): number[] => {
    const out: number[] = [];
    for (let i = 0; i < data.length; i += 4) out.push(Math.round((data[i]! + data[i + 1]! + data[i + 2]!) / 3));
    return out;
  };
  const small = document.createElement("canvas");
  small.width = 48;
  small.height = 36;
  const ctx = small.getContext("2d", { willReadFrequently: true })!;
  const corner = document.createElement("canvas");
  corner.width = 160;
  corner.height = 40;
  const c2 = corner.getContext("2d", { willReadFrequently: true })!;
  const out: Sample[] = [];
  const end = Date.now() + ms;
  let painted = -1;
  return new Promise((resolve) => {
    const tick = (): void => {
      const stats = player.stats();
      if (stats.framesPainted !== painted) {
        painted = stats.framesPainted;
        ctx.drawImage(canvas, 0, 0, 48, 36);
        c2.drawImage(canvas, canvas.width - 160, canvas.height - 40, 160, 40, 0, 0, 160, 40);
        out.push({ at: Date.now(), recordedAt: stats.recordedAt, pixels: grey(ctx.getImageData(0, 0, 48, 36).data), clock: grey(c2.getImageData(0, 0, 160, 40).data) });
      }
      if (Date.now() < end) requestAnimationFrame(tick);
      else resolve(out);
    };
    requestAnimationFrame(tick);
  });
}

/** The dashboard's players (its test hook), in the page. */
type PageWindow = {
  canvascast: { players: Map<string, { seek(at: number): void; live(): void; stats(): { framesPainted: number; recordedAt: number | null } }> };
};

const diff = (a: readonly number[], b: readonly number[]): number => a.reduce((s, v, i) => s + Math.abs(v - b[i]!), 0) / a.length;

async function tile(page: Page): Promise<Record<string, string>> {
  return page.$eval('.tile[data-stream="cam0"]', (el) => ({ ...(el as HTMLElement).dataset }) as Record<string, string>);
}

describe("scrub back in the dashboard", () => {
  let server: ServerProcess;
  let browser: TestBrowser;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "cc-scrub-"));
    server = await startServerProcess(["--source", "test", "--size", "640x480", "--keyframe-interval", "1", "--record", dir, "--record-segment", "10"]);
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await stopAllServers();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a seek 20 s back paints the picture recorded then, with REC and its time; LIVE returns to live", async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (err) => errors.push(String(err)));
    await page.setViewport({ width: 1280, height: 800 });
    await page.goto(server.url, { waitUntil: "load" });
    await page.waitForFunction(() => Number(document.querySelector<HTMLElement>('.tile[data-stream="cam0"]')?.dataset.framesPainted ?? 0) > 10, { timeout: 20_000 });
    await page.click('.tile[data-stream="cam0"] button.fullscreen');
    await page.waitForFunction(
      () => document.fullscreenElement !== null && document.querySelector<HTMLElement>('.tile[data-stream="cam0"]')?.dataset.shownEncoding === "full",
      { timeout: 10_000 },
    );
    // The full-screen tile shows the timeline, live.
    await page.waitForFunction(() => Number(document.querySelector<HTMLElement>(".timeline")?.dataset.ranges ?? 0) >= 1, { timeout: 15_000 });
    expect(await page.$eval(".timeline button.live", (b) => b.getAttribute("aria-pressed"))).toBe("true");
    expect(await page.$eval('.tile[data-stream="cam0"] .rec', (el) => (el as HTMLElement).hidden)).toBe(true);

    // What live shows over 2 s, every picture: the pictures to find again in the recording.
    const live = await page.evaluate(collect, 2000);
    expect(live.length).toBeGreaterThan(10);
    const target = live[Math.floor(live.length / 2)]!.at;
    // 20 s later, seek back to then.
    await sleep(Math.max(0, target + 20_000 - Date.now()));
    await page.evaluate((at) => (window as unknown as PageWindow).canvascast.players.get("cam0")!.seek(at), target);
    await page.waitForFunction(
      (t) => {
        const d = document.querySelector<HTMLElement>('.tile[data-stream="cam0"]')?.dataset;
        return d?.playback === "recorded" && Number(d.recordedAt) >= t - 150;
      },
      { timeout: 15_000 },
      target,
    );
    const shown = await page.$eval('.tile[data-stream="cam0"]', (el) => ({
      recordedAt: (el as HTMLElement).dataset.recordedAt ?? "",
      rec: el.querySelector<HTMLElement>(".rec")!,
    }).rec.hidden ? null : { recordedAt: (el as HTMLElement).dataset.recordedAt ?? "", text: el.querySelector(".rec")!.textContent ?? "" });
    expect(shown).not.toBeNull();
    const recordedAt = Number(shown!.recordedAt);
    // A second of the recording, every picture, each with the time it was recorded.
    const recorded = (await page.evaluate(collect, 1000)).filter((s) => s.recordedAt !== null);
    expect(recorded.length).toBeGreaterThan(5);
    // Some recorded picture is exactly a live one (same bytes, same decoder), the one painted when it was recorded
    // (a frame or so after); the pattern's position and the clock pin the moment.
    const pairs = recorded.flatMap((r) => live.map((l) => ({ r, l, d: diff(l.pixels, r.pixels), clock: diff(l.clock, r.clock) })));
    const best = pairs.reduce((a, b) => (b.d + b.clock < a.d + a.clock ? b : a));
    console.log(`scrub-back: best match painted live ${best.l.at - best.r.recordedAt!} ms after it was recorded, difference ${best.d.toFixed(2)} (clock ${best.clock.toFixed(2)}), of ${pairs.length} pairs`);
    expect(best.d).toBeLessThan(0.5);
    expect(best.clock).toBeLessThan(0.5);
    expect(Math.abs(best.l.at - best.r.recordedAt!)).toBeLessThan(400);
    // Back to live: another clock second (the bars repeat every 10.7 s, so they may stand where they stood then).
    await page.evaluate(() => (window as unknown as PageWindow).canvascast.players.get("cam0")!.live());
    await page.waitForFunction(() => document.querySelector<HTMLElement>('.tile[data-stream="cam0"]')?.dataset.playback === "live", { timeout: 10_000 });
    // The first live picture painted (recorded ones may still be in the decoder when playback says live).
    await page.waitForFunction(() => (window as unknown as PageWindow).canvascast.players.get("cam0")!.stats().recordedAt === null, { timeout: 10_000 });
    const now = await page.evaluate(collect, 300);
    expect(now.length).toBeGreaterThan(0);
    const nowClock = Math.min(...now.map((s) => diff(s.clock, best.r.clock)));
    console.log(`scrub-back: live 20 s on: clock differs by ${nowClock.toFixed(2)} at least`);
    expect(nowClock).toBeGreaterThan(2);
    expect(now.every((s) => s.recordedAt === null), "live pictures after the first").toBe(true);
    // REC said when, while it played (this page's time zone is the test's).
    const rec = new Date(recordedAt);
    const hhmmss = [rec.getHours(), rec.getMinutes(), rec.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");
    expect(shown!.text).toBe(`REC ${hhmmss}`);
    // Back to live: REC gone, LIVE pressed, the picture is today's again.
    expect(await page.$eval('.tile[data-stream="cam0"] .rec', (el) => (el as HTMLElement).hidden)).toBe(true);
    expect(await page.$eval(".timeline button.live", (b) => b.getAttribute("aria-pressed"))).toBe("true");

    // A click on the timeline plays from there; the LIVE button comes back.
    // The window is the last hour: half a percent from the right edge is 18 s back, inside the recording.
    await playFromTimeline(page, "cam0", 0.995);
    const recText = await page.$eval('.tile[data-stream="cam0"] .rec', (el) => el.textContent);
    expect(recText).toMatch(/^REC \d\d:\d\d:\d\d$/);
    expect(await page.$eval(".timeline button.live", (b) => b.getAttribute("aria-pressed"))).toBe("false");
    await page.click(".timeline button.live");
    await page.waitForFunction(() => document.querySelector<HTMLElement>('.tile[data-stream="cam0"]')?.dataset.playback === "live", { timeout: 10_000 });
    expect(Number((await tile(page)).decoderErrors)).toBe(0);
    expect(errors).toEqual([]);
    await page.close();
  }, 90_000);
});
