// npm run bench: join time and pipe→painted latency of the dashboard's WebCodecs player, measured in
// headless Chromium against the real server and a real gst test-pattern pipeline, all on loopback.
// Writes bench/results/latest.json and prints a markdown table.

import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { launchBrowser, type TestBrowser } from "../test/helpers/browser.js";
import { startServerProcess, stopAllServers } from "../test/helpers/server-process.js";

const RESULTS = fileURLToPath(new URL("./results/", import.meta.url));
const JOINS = Number(process.env.BENCH_JOINS ?? 10);
const LATENCY_RUNS = Number(process.env.BENCH_LATENCY_RUNS ?? 3);
const LATENCY_SECONDS = Number(process.env.BENCH_LATENCY_SECONDS ?? 12);

interface PlayerStatsView {
  readonly latencyP50Ms: number | null;
  readonly latencyP95Ms: number | null;
  readonly latencySamples: number;
  readonly fps: number;
  readonly framesPainted: number;
}

async function measureJoins(browser: TestBrowser, url: string, joins: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < joins; i++) {
    // A fresh context per join: no cached page or modules.
    const context = await browser.browser.createBrowserContext();
    const page = await context.newPage();
    await page.goto(url, { waitUntil: "domcontentloaded" });
    await page.waitForFunction(
      () => Number(document.querySelector<HTMLElement>('.tile[data-stream="cam0"]')?.dataset.firstPaintAt ?? "") > 0,
      { timeout: 20_000 },
    );
    times.push(Number(await page.evaluate(() => document.querySelector<HTMLElement>('.tile[data-stream="cam0"]')?.dataset.firstPaintAt)));
    await context.close();
    // Join at a different point of the GOP each time.
    await new Promise((r) => setTimeout(r, 137 + Math.random() * 400));
  }
  return times;
}

async function measureLatency(browser: TestBrowser, url: string, seconds: number): Promise<PlayerStatsView> {
  const page = await browser.newPage();
  await page.goto(url, { waitUntil: "load" });
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const stats = await page.evaluate(() => {
    const w = window as unknown as { canvascast: { players: Map<string, { stats(): unknown }> } };
    return w.canvascast.players.get("cam0")!.stats();
  });
  await page.close();
  return stats as PlayerStatsView;
}

const pct = (sorted: readonly number[], p: number): number =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const median = (xs: readonly number[]): number => pct([...xs].sort((a, b) => a - b), 50);
const fmt = (n: number | null | undefined): string => (n === null || n === undefined || Number.isNaN(n) ? "–" : n.toFixed(1));

async function main(): Promise<void> {
  const browser = await launchBrowser();
  const results: Record<string, unknown> = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30) },
  };
  const rows: string[] = [];
  try {
    for (const interval of [1, 4]) {
      const server = await startServerProcess(["--source", "test", "--keyframe-interval", String(interval)]);
      await new Promise((r) => setTimeout(r, 1500)); // let the first GOP fill the cache
      const joins = (await measureJoins(browser, server.url, JOINS)).sort((a, b) => a - b);
      results[`join_gop${interval}s`] = { samples: joins, p50: pct(joins, 50), max: joins.at(-1) };
      rows.push(`| join: page load → first paint, ${interval} s keyframe interval (${joins.length} joins) | p50 ${fmt(pct(joins, 50))} ms | max ${fmt(joins.at(-1))} ms |`);
      await server.stop();
    }
    const server = await startServerProcess(["--source", "test", "--size", "640x480", "--fps", "30"]);
    for (const mode of ["raf", "decode"] as const) {
      const runs: PlayerStatsView[] = [];
      for (let i = 0; i < LATENCY_RUNS; i++) {
        runs.push(await measureLatency(browser, `${server.url}?paint=${mode}`, LATENCY_SECONDS));
      }
      results[`latency_${mode}`] = runs;
      const p50 = median(runs.map((r) => r.latencyP50Ms ?? NaN));
      const p95 = median(runs.map((r) => r.latencyP95Ms ?? NaN));
      rows.push(
        `| pipe → painted, 640×480@30, paint in ${mode === "raf" ? "requestAnimationFrame" : "decoder output"} (median of ${runs.length} runs; per run ${runs.map((r) => `${fmt(r.latencyP50Ms)}/${fmt(r.latencyP95Ms)}`).join(", ")}) | p50 ${fmt(p50)} ms | p95 ${fmt(p95)} ms |`,
      );
    }
    await server.stop();
  } finally {
    await browser.close();
    await stopAllServers();
  }
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(`${RESULTS}latest.json`, JSON.stringify(results, null, 2) + "\n");
  console.log("| scenario | | |\n|---|---|---|\n" + rows.join("\n"));
  console.log(`\nwrote ${RESULTS}latest.json`);
}

main().catch(async (err: unknown) => {
  console.error(err);
  await stopAllServers();
  process.exit(1);
});
