// Recording: what it costs the server (its own process's CPU, recording off against on, for one
// stream and for four, alternating in the same run), the disk it uses per hour, and how long a seek
// takes to show the recorded picture in the dashboard's player (seek() → first recorded frame
// painted) and live() to show live again.

import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestBrowser } from "../test/helpers/browser.js";
import { startServerProcess, type ServerProcess } from "../test/helpers/server-process.js";
import { sleep } from "../test/helpers/until.js";
import { cpuSeconds } from "./proc.js";
import { pct } from "./stats.js";

export interface RecordingCpu {
  readonly streams: number;
  readonly recording: boolean;
  readonly round: number;
  /** The server process (node) alone, % of one core: the pipelines (gst) are the same either way. */
  readonly serverCpu: number;
  /** Bytes written per stream per hour, from the segments' growth over the window (recording on). */
  readonly bytesPerStreamHour: number | null;
}

const streamArgs = (n: number): string[] => Array.from({ length: n }, (_, i) => ["--stream", `cam${i}=test`]).flat();

/** The segment bytes under `dir`. */
function bytesUnder(dir: string): number {
  let total = 0;
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.(webm|mp4)$/.test(entry.name)) total += statSync(path).size;
    }
  };
  walk(dir);
  return total;
}

/** The server's CPU over `seconds` with `streams` test-pattern streams (640×480@30, 1.5 Mbit/s), recording or not. */
export async function measureRecordingCpu(streams: number, recording: boolean, seconds: number, round: number): Promise<RecordingCpu> {
  const dir = mkdtempSync(join(tmpdir(), "cc-bench-rec-"));
  const server = await startServerProcess([...streamArgs(streams), ...(recording ? ["--record", dir, "--record-segment", "60"] : [])]);
  try {
    await sleep(5000); // pipelines up, first segments open
    const cpu0 = cpuSeconds(server.pid);
    const bytes0 = recording ? bytesUnder(dir) : 0;
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const elapsed = (performance.now() - t0) / 1000;
    const serverCpu = (100 * (cpuSeconds(server.pid) - cpu0)) / elapsed;
    const bytesPerStreamHour = recording ? ((bytesUnder(dir) - bytes0) / elapsed / streams) * 3600 : null;
    return { streams, recording, round, serverCpu, bytesPerStreamHour };
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface SeekTimes {
  readonly seeks: number;
  /** seek() → the first recorded frame painted, ms. */
  readonly seekToPicture: { readonly p50: number; readonly p90: number; readonly max: number };
  /** live() → the first live frame painted, ms. */
  readonly liveToPicture: { readonly p50: number; readonly p90: number; readonly max: number };
}

/**
 * The dashboard (WebCodecs, on the main thread) against a server recording one stream: `seeks`
 * times, seek() to a time 10–40 s back, wait for the first recorded picture, then live() and wait
 * for the first live one. Timed in the page, checked each animation frame.
 */
export async function measureSeeks(browser: TestBrowser, seeks: number): Promise<SeekTimes> {
  const dir = mkdtempSync(join(tmpdir(), "cc-bench-seek-"));
  let server: ServerProcess | null = null;
  const page = await browser.newPage();
  try {
    server = await startServerProcess(["--source", "test", "--record", dir, "--record-segment", "10"]);
    await sleep(45_000); // 45 s of recording to seek in
    await page.setViewport({ width: 1280, height: 800 });
    await page.goto(server.url, { waitUntil: "load" });
    await page.waitForFunction(() => Number(document.querySelector<HTMLElement>('.tile[data-stream="cam0"]')?.dataset.framesPainted ?? 0) > 30, { timeout: 30_000 });
    const seek: number[] = [];
    const live: number[] = [];
    for (let i = 0; i < seeks; i++) {
      const back = 10_000 + ((i * 7919) % 30_000);
      // A string, not a function: tsx would wrap the function's inner helpers in a __name() the page lacks.
      const times = (await page.evaluate(`(async () => {
        const player = window.canvascast.players.get("cam0");
        const waitFor = async (cond) => {
          const deadline = performance.now() + 15000;
          while (!cond()) {
            await new Promise((r) => requestAnimationFrame(r));
            if (performance.now() > deadline) throw new Error("timed out");
          }
          return performance.now();
        };
        const t0 = performance.now();
        player.seek(Date.now() - ${back});
        const shown = await waitFor(() => player.stats().recordedAt !== null);
        await new Promise((r) => setTimeout(r, 1000));
        const t1 = performance.now();
        player.live();
        const back = await waitFor(() => player.stats().recordedAt === null);
        await new Promise((r) => setTimeout(r, 1000));
        return { seek: shown - t0, live: back - t1 };
      })()`)) as { seek: number; live: number };
      seek.push(times.seek);
      live.push(times.live);
    }
    const summary = (xs: number[]): SeekTimes["seekToPicture"] => {
      const s = [...xs].sort((a, b) => a - b);
      return { p50: pct(s, 50), p90: pct(s, 90), max: s.at(-1)! };
    };
    return { seeks, seekToPicture: summary(seek), liveToPicture: summary(live) };
  } finally {
    await page.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
