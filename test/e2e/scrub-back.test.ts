// Scrub-back in the dashboard, in headless Chromium against the real server recording its test
// pattern: full screen shows the recorded ranges; a seek 20 s back paints the picture recorded then
// (the witness: the pattern moves 2 px a frame and its clock overlay ticks each second, so the
// picture pins its moment; it is compared with the live pictures sampled 20 s earlier), REC shows
// when it was recorded, and LIVE returns to the live picture.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "puppeteer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser, type TestBrowser } from "../helpers/browser.js";
import { startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";
import { sleep } from "../helpers/until.js";

/** A small grey-scale copy of the tile's canvas (48×36), and when it was taken (ms since the epoch). Runs in the page. */
function sample(): { at: number; pixels: number[]; clock: number[] } {
  const canvas = document.querySelector<HTMLCanvasElement>('.tile[data-stream="cam0"] canvas');
  if (!canvas) throw new Error("no canvas");
  const at = Date.now();
  const small = document.createElement("canvas");
  small.width = 48;
  small.height = 36;
  const ctx = small.getContext("2d", { willReadFrequently: true })!;
  ctx.drawImage(canvas, 0, 0, 48, 36);
  const grey = (data: Uint8ClampedArray): number[] => {
    const out: number[] = [];
    for (let i = 0; i < data.length; i += 4) out.push(Math.round((data[i]! + data[i + 1]! + data[i + 2]!) / 3));
    return out;
  };
  // The clock overlay's corner (bottom right) at full resolution.
  const corner = document.createElement("canvas");
  corner.width = 160;
  corner.height = 40;
  const c2 = corner.getContext("2d", { willReadFrequently: true })!;
  c2.drawImage(canvas, canvas.width - 160, canvas.height - 40, 160, 40, 0, 0, 160, 40);
  return { at, pixels: grey(ctx.getImageData(0, 0, 48, 36).data), clock: grey(c2.getImageData(0, 0, 160, 40).data) };
}

/** The dashboard's players (its test hook), in the page. */
type PageWindow = { canvascast: { players: Map<string, { seek(at: number): void; live(): void }> } };

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

    // What live shows over 2 s, sampled: the pictures to find again in the recording.
    const live: ReturnType<typeof sample>[] = [];
    const until = Date.now() + 2000;
    while (Date.now() < until) {
      live.push(await page.evaluate(sample));
      await sleep(30);
    }
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
    const recorded = await page.evaluate(sample);
    const shown = await page.$eval('.tile[data-stream="cam0"]', (el) => ({
      recordedAt: (el as HTMLElement).dataset.recordedAt ?? "",
      rec: el.querySelector<HTMLElement>(".rec")!,
    }).rec.hidden ? null : { recordedAt: (el as HTMLElement).dataset.recordedAt ?? "", text: el.querySelector(".rec")!.textContent ?? "" });
    expect(shown).not.toBeNull();
    const recordedAt = Number(shown!.recordedAt);
    // The sampled live picture most like it is the one taken when it was recorded (a frame or so after).
    const ranked = live.map((s) => ({ at: s.at, d: diff(s.pixels, recorded.pixels), clock: diff(s.clock, recorded.clock) })).sort((a, b) => a.d - b.d);
    const best = ranked[0]!;
    console.log(`scrub-back: best match ${best.at - recordedAt} ms from when it was recorded, difference ${best.d.toFixed(2)} (clock ${best.clock.toFixed(2)}); the next best ${ranked[1]?.d.toFixed(2)}`);
    expect(Math.abs(best.at - recordedAt), `best match ${best.at - target} ms from the target, recorded at ${recordedAt - target}`).toBeLessThan(400);
    // ...and far more like it than what live shows now, 20 s on (another clock second, the pattern elsewhere).
    await page.evaluate(() => (window as unknown as PageWindow).canvascast.players.get("cam0")!.live());
    await page.waitForFunction(() => document.querySelector<HTMLElement>('.tile[data-stream="cam0"]')?.dataset.playback === "live", { timeout: 10_000 });
    await sleep(500);
    const now = await page.evaluate(sample);
    console.log(`scrub-back: live 20 s on differs by ${diff(now.pixels, recorded.pixels).toFixed(2)} (clock ${diff(now.clock, recorded.clock).toFixed(2)})`);
    expect(best.d).toBeLessThan(diff(now.pixels, recorded.pixels) / 3);
    expect(best.clock).toBeLessThan(diff(now.clock, recorded.clock) / 3);
    // REC said when, while it played (this page's time zone is the test's).
    const rec = new Date(recordedAt);
    const hhmmss = [rec.getHours(), rec.getMinutes(), rec.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");
    expect(shown!.text).toBe(`REC ${hhmmss}`);
    // Back to live: REC gone, LIVE pressed, the picture is today's again.
    expect(await page.$eval('.tile[data-stream="cam0"] .rec', (el) => (el as HTMLElement).hidden)).toBe(true);
    expect(await page.$eval(".timeline button.live", (b) => b.getAttribute("aria-pressed"))).toBe("true");
    const latest = live.at(-1)!;
    expect(diff(now.pixels, latest.pixels)).toBeGreaterThan(0);

    // A click on the timeline plays from there; the LIVE button comes back.
    const bar = await page.$eval(".timeline-bar", (el) => {
      const r = el.getBoundingClientRect();
      return { x: r.x, y: r.y, width: r.width, height: r.height };
    });
    // The window is the last hour: 1 % from the right edge is 36 s back, inside the recording.
    await page.mouse.click(bar.x + bar.width * 0.995, bar.y + bar.height / 2);
    await page.waitForFunction(
      () => {
        const d = document.querySelector<HTMLElement>('.tile[data-stream="cam0"]')?.dataset;
        const rec = document.querySelector<HTMLElement>('.tile[data-stream="cam0"] .rec');
        return d?.playback === "recorded" && d.recordedAt !== "" && rec !== null && !rec.hidden && /^REC \d\d:\d\d:\d\d$/.test(rec.textContent ?? "");
      },
      { timeout: 15_000 },
    );
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
