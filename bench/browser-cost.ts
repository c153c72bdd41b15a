// What playing costs the browser: CPU of all Chromium processes (renderer, GPU, utility) per
// player, above an idle page; and one page with many players: painted fps per player and
// main-thread long tasks.

import type { Page } from "puppeteer";
import { launchBrowser } from "../test/helpers/browser.js";
import { treeCpuPercent, treeCpuSeconds } from "./proc.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * % of a core Chromium uses while `url` plays, minus what it uses showing a blank page. A browser
 * of its own, so nothing else is counted.
 */
export async function browserCpuPercent(url: string, seconds: number): Promise<{ playing: number; idle: number; cost: number }> {
  const browser = await launchBrowser();
  try {
    const pid = browser.browser.process()?.pid;
    if (pid === undefined) throw new Error("no browser process");
    const page = await browser.newPage();
    await page.goto("about:blank");
    await sleep(1000);
    let before = treeCpuSeconds(pid);
    await sleep(seconds * 1000);
    const idle = treeCpuPercent(before, treeCpuSeconds(pid), seconds);
    await page.goto(url, { waitUntil: "load" });
    await sleep(3000); // join and settle
    before = treeCpuSeconds(pid);
    await sleep(seconds * 1000);
    const playing = treeCpuPercent(before, treeCpuSeconds(pid), seconds);
    return { playing, idle, cost: playing - idle };
  } finally {
    await browser.close();
  }
}

export interface ManyPlayersResult {
  readonly players: number;
  readonly thread: string;
  /** Painted fps of each player over the measurement. */
  readonly fps: number[];
  readonly longTasks: number;
  readonly longTaskMs: number;
  readonly chromiumCpu: number;
}

/**
 * One page on the server's origin with `count` players of `stream`, through the embeddable module
 * (/canvascast.js): in workers (OffscreenCanvas) or all on the main thread.
 */
export async function manyPlayers(
  serverUrl: string,
  stream: string,
  count: number,
  worker: boolean,
  seconds: number,
  encoding: "full" | "tile" = "full",
): Promise<ManyPlayersResult> {
  const browser = await launchBrowser();
  try {
    const pid = browser.browser.process()?.pid;
    if (pid === undefined) throw new Error("no browser process");
    const page = await browser.newPage();
    await page.setViewport({ width: 1600, height: 1000 });
    await openPlayersPage(page, serverUrl, stream, count, worker, "decode", encoding);
    await sleep(3000);
    const painted = async (): Promise<number[]> =>
      page.evaluate(() =>
        (window as unknown as { benchPlayers: { stats(): { framesPainted: number } }[] }).benchPlayers.map((p) => p.stats().framesPainted),
      );
    const thread = await page.evaluate(() => (window as unknown as { benchPlayers: { thread: string }[] }).benchPlayers[0]?.thread ?? "?");
    await page.evaluate(() => {
      (window as unknown as { longTasks: number[] }).longTasks.length = 0;
    });
    const p0 = await painted();
    const cpu0 = treeCpuSeconds(pid);
    await sleep(seconds * 1000);
    const p1 = await painted();
    const chromiumCpu = treeCpuPercent(cpu0, treeCpuSeconds(pid), seconds);
    const longTasks = await page.evaluate(() => (window as unknown as { longTasks: number[] }).longTasks.slice());
    return {
      players: count,
      thread,
      fps: p1.map((n, i) => (n - (p0[i] ?? 0)) / seconds),
      longTasks: longTasks.length,
      longTaskMs: longTasks.reduce((a, b) => a + b, 0),
      chromiumCpu,
    };
  } finally {
    await browser.close();
  }
}

/**
 * Turns `page` into a bare page on the server's origin with `count` players of `stream` from
 * /canvascast.js (in workers or on the main thread), and a long-task observer.
 */
export async function openPlayersPage(
  page: Page,
  serverUrl: string,
  stream: string,
  count: number,
  worker: boolean,
  paintMode: "decode" | "raf" = "decode",
  encoding: "full" | "tile" = "full",
): Promise<void> {
  await gotoOrigin(page, serverUrl);
  await page.evaluate(
    async (wsUrl: string, n: number, useWorker: boolean, paint: string, enc: string) => {
      document.body.innerHTML = "";
      document.body.style.cssText = "margin:0;display:grid;grid-template-columns:repeat(4,1fr);gap:2px;background:#000";
      const moduleUrl = `${location.origin}/canvascast.js`; // a runtime URL, not a module TypeScript should resolve
      const mod = (await import(moduleUrl)) as {
        play(c: HTMLCanvasElement, u: string, o: object): { stats(): { framesPainted: number }; thread: string };
      };
      const w = window as unknown as { benchPlayers: unknown[]; longTasks: number[] };
      w.benchPlayers = [];
      w.longTasks = [];
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) w.longTasks.push(e.duration);
      }).observe({ type: "longtask", buffered: false });
      for (let i = 0; i < n; i++) {
        const canvas = document.createElement("canvas");
        canvas.style.width = "100%";
        document.body.append(canvas);
        // Every player plays for the whole measurement, in view or not (the page may be taller than the window).
        w.benchPlayers.push(mod.play(canvas, wsUrl, { worker: useWorker, paintMode: paint, encoding: enc, pauseWhenOffscreen: false }));
      }
    },
    `${serverUrl.replace(/^http/, "ws")}ws/${stream}`,
    count,
    worker,
    paintMode,
    encoding,
  );
}

/**
 * Loads a page of the server's origin (any will do: its body is replaced) and waits until the
 * page's context is that document. On a loaded machine the first load was seen to leave the page
 * on an opaque origin: then it loads once more.
 */
export async function gotoOrigin(page: Page, serverUrl: string): Promise<void> {
  const origin = new URL(serverUrl).origin;
  for (let attempt = 1; ; attempt++) {
    await page.goto(`${serverUrl}api/streams`, { waitUntil: "load" });
    try {
      await page.waitForFunction((o: string) => location.origin === o, { timeout: 5000 }, origin);
      return;
    } catch (err) {
      if (attempt === 2) throw err;
    }
  }
}
