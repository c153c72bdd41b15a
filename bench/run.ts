// npm run bench: join time and pipe→painted latency of the dashboard's WebCodecs player, and
// pipe→presented latency of its MSE player (<video>, requestVideoFrameCallback) in the same run,
// measured in headless Chromium against the real server and a real gst test-pattern pipeline, all on loopback.
// Writes bench/results/latest.json and prints a markdown table.

import { execFile } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { launchBrowser, type TestBrowser } from "../test/helpers/browser.js";
import { childPids, startServerProcess, stopAllServers } from "../test/helpers/server-process.js";
import { startJsmpegRelay } from "./jsmpeg/relay.js";
import { browserCpuPercent, manyPlayers, openPlayersPage } from "./browser-cost.js";
import { traceMarksDisplayed, tracePresented } from "./presented.js";
import { cpuSeconds, rssMiB } from "./proc.js";

const RESULTS = fileURLToPath(new URL("./results/", import.meta.url));
const CLIENTS = fileURLToPath(new URL("./clients.ts", import.meta.url));
/** `npm run bench -- --only join,latency,slow` runs a subset. */
const onlyArg = process.argv.indexOf("--only");
const ONLY = new Set(onlyArg >= 0 ? (process.argv[onlyArg + 1] ?? "").split(",") : ["join", "latency", "presented", "jsmpeg", "cost", "many", "slow", "fanout"]);
const SLOW_SECONDS = Number(process.env.BENCH_SLOW_SECONDS ?? 20);
const FANOUT_SECONDS = Number(process.env.BENCH_FANOUT_SECONDS ?? 15);
const COST_SECONDS = Number(process.env.BENCH_COST_SECONDS ?? 10);
const PRESENTED_SECONDS = Number(process.env.BENCH_PRESENTED_SECONDS ?? 21);
const MANY_PLAYERS = Number(process.env.BENCH_MANY_PLAYERS ?? 16);
const FANOUT_VIEWERS = (process.env.BENCH_FANOUT_VIEWERS ?? "1,100,300,500,800").split(",").map(Number);
const JOINS = Number(process.env.BENCH_JOINS ?? 10);
const LATENCY_RUNS = Number(process.env.BENCH_LATENCY_RUNS ?? 3);
// 21 s at 30 fps: at least 600 frames per run.
const LATENCY_SECONDS = Number(process.env.BENCH_LATENCY_SECONDS ?? 21);

interface PlayerStatsView {
  readonly latencyP50Ms: number | null;
  readonly latencyP95Ms: number | null;
  readonly latencyP99Ms: number | null;
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


interface ClientsResult {
  readonly healthy: { framesPerViewer: number; gaps: number; delayP50Ms: number | null; delayP99Ms: number | null };
  readonly slow: { framesPerViewer: number; skippedNotices: number; lagMaxMs: number | null };
}


interface ViewersResult extends ClientsResult {
  readonly viewers: number;
  readonly throttled: number;
  readonly rssMiB: { start: number; max: number; end: number };
  /** % of one core over the run. */
  readonly cpu: { server: number; gst: number; clients: number };
  readonly skipped: Record<string, number>;
}

/**
 * N viewers (K throttled to half the bitrate) in a separate process, for `seconds`: server RSS
 * sampled each second, CPU of the server, its gst child and the client process over the run.
 */
async function measureViewers(viewers: number, throttled: number, seconds: number): Promise<ViewersResult> {
  // All viewers connect at once from one address: lift the per-address rate limit and the viewer caps.
  const limits = ["--max-connections-per-second", "0", "--max-viewers-per-stream", String(viewers), "--max-viewers", String(viewers)];
  const server = await startServerProcess(["--source", "test", "--size", "640x480", "--fps", "30", "--bitrate", "1500", ...limits]);
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const [gst] = childPids(server.pid, "gst-launch-1.0");
    const rss: number[] = [rssMiB(server.pid)];
    const sampler = setInterval(() => rss.push(rssMiB(server.pid)), 1000);
    let clientsPid = 0;
    let clientsCpu = 0;
    const start = { at: performance.now(), server: cpuSeconds(server.pid), gst: gst ? cpuSeconds(gst) : 0 };
    let end = start;
    const out = await new Promise<string>((resolve, reject) => {
      const child = execFile(
        process.execPath,
        ["--import", "tsx", CLIENTS, `${server.wsBase}ws/cam0`, String(viewers), String(throttled), String(seconds)],
        { timeout: (seconds + 90) * 1000, maxBuffer: 1 << 20 },
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
      );
      clientsPid = child.pid ?? 0;
      // Sample CPU just before the clients finish, while all viewers are connected.
      const timer = setTimeout(() => {
        end = { at: performance.now(), server: cpuSeconds(server.pid), gst: gst ? cpuSeconds(gst) : 0 };
        try {
          clientsCpu = cpuSeconds(clientsPid);
        } catch {
          clientsCpu = NaN;
        }
      }, (seconds - 0.5) * 1000);
      child.once("exit", () => clearTimeout(timer));
    });
    clearInterval(sampler);
    const wall = (end.at - start.at) / 1000;
    const clients = JSON.parse(out.trim().split("\n").at(-1)!) as ClientsResult;
    const info = ((await (await fetch(server.url + "api/streams")).json()) as { streams: { skipped: Record<string, number> }[] }).streams[0]!;
    return {
      viewers,
      throttled,
      rssMiB: { start: rss[0]!, max: Math.max(...rss), end: rss.at(-1)! },
      cpu: {
        server: (100 * (end.server - start.server)) / wall,
        gst: (100 * (end.gst - start.gst)) / wall,
        clients: (100 * clientsCpu) / (seconds + 1),
      },
      skipped: info.skipped,
      ...clients,
    };
  } finally {
    await server.stop();
  }
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
    for (const interval of ONLY.has("join") ? [1, 4] : []) {
      const server = await startServerProcess(["--source", "test", "--keyframe-interval", String(interval)]);
      await new Promise((r) => setTimeout(r, 1500)); // let the first GOP fill the cache
      const joins = (await measureJoins(browser, server.url, JOINS)).sort((a, b) => a - b);
      results[`join_gop${interval}s`] = { samples: joins, p50: pct(joins, 50), max: joins.at(-1) };
      rows.push(`| join: page load → first paint, ${interval} s keyframe interval (${joins.length} joins) | p50 ${fmt(pct(joins, 50))} ms | max ${fmt(joins.at(-1))} ms |`);
      const mseJoins = (await measureJoins(browser, `${server.url}?mode=mse`, JOINS)).sort((a, b) => a - b);
      results[`join_mse_gop${interval}s`] = { samples: mseJoins, p50: pct(mseJoins, 50), max: mseJoins.at(-1) };
      rows.push(
        `| MSE join: page load → first frame presented, ${interval} s keyframe interval (${mseJoins.length} joins) | p50 ${fmt(pct(mseJoins, 50))} ms | max ${fmt(mseJoins.at(-1))} ms |`,
      );
      await server.stop();
    }
    const server = await startServerProcess(["--source", "test", "--size", "640x480", "--fps", "30"]);
    // WebCodecs (paint in rAF, paint on decoder output) and MSE, against the same server and pipeline.
    const LATENCY_PATHS = {
      raf: { query: "?paint=raf", what: "WebCodecs, pipe → painted, paint in requestAnimationFrame" },
      decode: { query: "?paint=decode", what: "WebCodecs, pipe → painted, paint in decoder output" },
      mse: { query: "?mode=mse", what: "MSE <video>, pipe → presented (requestVideoFrameCallback expectedDisplayTime)" },
    } as const;
    for (const mode of ONLY.has("latency") ? (["raf", "decode", "mse"] as const) : []) {
      const runs: PlayerStatsView[] = [];
      for (let i = 0; i < LATENCY_RUNS; i++) {
        runs.push(await measureLatency(browser, `${server.url}${LATENCY_PATHS[mode].query}`, LATENCY_SECONDS));
      }
      results[`latency_${mode}`] = runs;
      const p50 = median(runs.map((r) => r.latencyP50Ms ?? NaN));
      const p95 = median(runs.map((r) => r.latencyP95Ms ?? NaN));
      const p99 = median(runs.map((r) => r.latencyP99Ms ?? NaN));
      rows.push(
        `| ${LATENCY_PATHS[mode].what}, 640×480@30 (median of ${runs.length} runs; p50/p95/p99 per run ${runs.map((r) => `${fmt(r.latencyP50Ms)}/${fmt(r.latencyP95Ms)}/${fmt(r.latencyP99Ms)}`).join(", ")}) | p50 ${fmt(p50)} ms | p95 ${fmt(p95)} ms · p99 ${fmt(p99)} ms |`,
      );
    }
    // Pipe → presented from DevTools traces, for the WebCodecs paint strategies.
    for (const mode of ONLY.has("presented") ? (["raf", "decode", "worker"] as const) : []) {
      const painted: number[] = [];
      const presented: number[] = [];
      const waits: number[] = [];
      const capture: number[] = [];
      const perRun: string[] = [];
      for (let i = 0; i < LATENCY_RUNS; i++) {
        const page = await browser.newPage();
        await page.evaluateOnNewDocument(() => {
          (globalThis as { canvascastMarkPaints?: boolean }).canvascastMarkPaints = true;
        });
        if (mode === "worker") {
          // One player from /canvascast.js on a bare page, decoding and painting in a worker.
          await openPlayersPage(page, server.url, "cam0", 1, true);
        } else {
          await page.goto(`${server.url}?paint=${mode}`, { waitUntil: "load" });
        }
        await new Promise((r) => setTimeout(r, 2000));
        const r = await tracePresented(page, PRESENTED_SECONDS);
        await page.close();
        painted.push(...r.painted);
        presented.push(...r.presented);
        waits.push(...r.paintToDisplay);
        capture.push(...r.captureToPresented);
        const p = [...r.presented].sort((a, b) => a - b);
        perRun.push(`${fmt(pct(p, 50))}/${fmt(pct(p, 99))}`);
      }
      const [sp, sq, sw, sc] = [painted, presented, waits, capture].map((xs) => [...xs].sort((a, b) => a - b)) as [number[], number[], number[], number[]];
      results[`presented_${mode}`] = {
        painted: sp.length,
        presented: sq.length,
        p50: pct(sq, 50),
        p95: pct(sq, 95),
        p99: pct(sq, 99),
        max: sq.at(-1),
        paintToDisplayP50: pct(sw, 50),
        captureToPresented: { p50: pct(sc, 50), p95: pct(sc, 95), p99: pct(sc, 99) },
      };
      rows.push(
        `| WebCodecs, pipe → presented (DevTools trace: paint mark → next Display::FrameDisplayed), ${mode === "raf" ? "paint in requestAnimationFrame" : mode === "decode" ? "paint on decoder output" : "worker + OffscreenCanvas (bare page), paint on decoder output"}, ${sq.length} frames pooled over ${LATENCY_RUNS} runs (p50/p99 per run ${perRun.join(", ")}) | p50 ${fmt(pct(sq, 50))} ms (painted ${fmt(pct(sp, 50))}) | p95 ${fmt(pct(sq, 95))} · p99 ${fmt(pct(sq, 99))} · max ${fmt(sq.at(-1))} ms; paint → displayed p50 ${fmt(pct(sw, 50))} ms; capture → presented (lower bound) p50 ${fmt(pct(sc, 50))} / p99 ${fmt(pct(sc, 99))} ms |`,
      );
    }
    await server.stop();
    if (ONLY.has("jsmpeg")) {
      // jsmpeg: join (page load → first picture drawn) at 1 s and 4 s GOPs, and pipe → drawn latency.
      for (const seconds of [1, 4]) {
        const relay = await startJsmpegRelay({ width: 640, height: 480, fps: 30, bitrateKbps: 1500, gop: 30 * seconds });
        try {
          await new Promise((r) => setTimeout(r, 1500));
          const joins: number[] = [];
          for (let i = 0; i < JOINS; i++) {
            const context = await browser.browser.createBrowserContext();
            const page = await context.newPage();
            await page.goto(relay.url, { waitUntil: "domcontentloaded" });
            await page.waitForFunction(() => (window as unknown as { bench?: { firstDrawAt: number | null } }).bench?.firstDrawAt != null, { timeout: 20_000 });
            joins.push(await page.evaluate(() => (window as unknown as { bench: { firstDrawAt: number } }).bench.firstDrawAt));
            await context.close();
            // A join waits for the next I-frame: start the next one at a random point of the GOP,
            // or every join would begin right after the I-frame the last one waited for.
            await new Promise((r) => setTimeout(r, Math.random() * seconds * 1000));
          }
          joins.sort((a, b) => a - b);
          results[`jsmpeg_join_gop${seconds}s`] = { samples: joins, p50: pct(joins, 50), max: joins.at(-1) };
          rows.push(`| jsmpeg join: page load → first picture drawn, ${seconds} s GOP (${joins.length} joins) | p50 ${fmt(pct(joins, 50))} ms | max ${fmt(joins.at(-1))} ms |`);
          if (seconds !== 1) continue;
          const runs: { p50: number; p95: number; p99: number }[] = [];
          for (let i = 0; i < LATENCY_RUNS; i++) {
            const page = await browser.newPage();
            await page.goto(relay.url, { waitUntil: "load" });
            await new Promise((r) => setTimeout(r, LATENCY_SECONDS * 1000));
            // Leave out the join burst (the first second of pictures).
            const lat = (await page.evaluate(() => (window as unknown as { bench: { latencies(): number[] } }).bench.latencies())).slice(30).sort((a, b) => a - b);
            runs.push({ p50: pct(lat, 50), p95: pct(lat, 95), p99: pct(lat, 99) });
            await page.close();
          }
          results.jsmpeg_latency = runs;
          // jsmpeg's pipe → presented: each drawn picture's mark paired with the next displayed frame.
          const presented: number[] = [];
          for (let i = 0; i < LATENCY_RUNS; i++) {
            const page = await browser.newPage();
            await page.goto(relay.url, { waitUntil: "load" });
            await new Promise((r) => setTimeout(r, 2000));
            const marks = await traceMarksDisplayed(page, PRESENTED_SECONDS);
            const lat = await page.evaluate(() => (window as unknown as { bench: { latencies(): number[] } }).bench.latencies());
            for (const m of marks) {
              const j = /^jsm-draw (\d+)$/.exec(m.name)?.[1];
              const drawn = j === undefined ? undefined : lat[Number(j)];
              if (drawn !== undefined && Number(j) >= 30) presented.push(drawn + m.waitMs);
            }
            await page.close();
          }
          presented.sort((a, b) => a - b);
          results.jsmpeg_presented = { frames: presented.length, p50: pct(presented, 50), p95: pct(presented, 95), p99: pct(presented, 99) };
          rows.push(
            `| jsmpeg, pipe → presented (DevTools trace: draw mark → next Display::FrameDisplayed), ${presented.length} pictures pooled over ${LATENCY_RUNS} runs | p50 ${fmt(pct(presented, 50))} ms | p95 ${fmt(pct(presented, 95))} · p99 ${fmt(pct(presented, 99))} ms |`,
          );
          rows.push(
            `| jsmpeg, pipe (ffmpeg's TS out) → drawn, 640×480@30 MPEG-1 (median of ${runs.length} runs; p50/p95/p99 per run ${runs.map((r) => `${fmt(r.p50)}/${fmt(r.p95)}/${fmt(r.p99)}`).join(", ")}) | p50 ${fmt(median(runs.map((r) => r.p50)))} ms | p95 ${fmt(median(runs.map((r) => r.p95)))} ms · p99 ${fmt(median(runs.map((r) => r.p99)))} ms |`,
          );
        } finally {
          await relay.close();
        }
      }
    }
    if (ONLY.has("cost") || ONLY.has("many")) {
      const costServer = await startServerProcess(["--source", "test", "--size", "640x480", "--fps", "30"]);
      try {
        if (ONLY.has("cost")) {
          const paths: [string, string][] = [
            ["WebCodecs, main thread, paint in rAF (dashboard)", `${costServer.url}?paint=raf`],
            ["WebCodecs, main thread, paint on decoder output (dashboard)", `${costServer.url}?paint=decode`],
            ["MSE <video> (dashboard)", `${costServer.url}?mode=mse`],
          ];
          const relay = await startJsmpegRelay({ width: 640, height: 480, fps: 30, bitrateKbps: 1500, gop: 30 });
          paths.push(["jsmpeg (WASM MPEG-1, canvas 2D)", relay.url]);
          try {
            for (const [what, url] of paths) {
              const r = await browserCpuPercent(url, COST_SECONDS);
              results[`cost_${what}`] = r;
              rows.push(`| browser CPU, one 640×480@30 player: ${what} | ${fmt(r.cost)} % of a core above an idle page | (${fmt(r.playing)} % playing, ${fmt(r.idle)} % idle; all Chromium processes) |`);
            }
            // The player alone on a bare page, like jsmpeg's (the dashboard also draws figures and a sparkline).
            for (const worker of [true, false]) {
              const r = await manyPlayers(costServer.url, "cam0", 1, worker, COST_SECONDS);
              results[`cost_bare_${r.thread}`] = r;
              rows.push(`| browser CPU, one 640×480@30 player: /canvascast.js on a bare page, ${r.thread} thread | ${fmt(r.chromiumCpu)} % of a core | (all Chromium processes; an idle page is ~0.3 %) |`);
            }
          } finally {
            await relay.close();
          }
        }
        for (const worker of ONLY.has("many") ? [true, false] : []) {
          const r = await manyPlayers(costServer.url, "cam0", MANY_PLAYERS, worker, COST_SECONDS);
          results[`many_${worker ? "worker" : "main"}`] = r;
          const fps = [...r.fps].sort((a, b) => a - b);
          rows.push(
            `| one page, ${r.players} players of one 640×480@30 stream (/canvascast.js, ${r.thread} thread) | painted fps per player: min ${fmt(fps[0])}, median ${fmt(pct(fps, 50))} | main-thread long tasks: ${r.longTasks} (${fmt(r.longTaskMs)} ms in ${COST_SECONDS} s); Chromium ${fmt(r.chromiumCpu)} % of a core |`,
          );
        }
      } finally {
        await costServer.stop();
      }
    }
    for (const n of ONLY.has("fanout") ? FANOUT_VIEWERS : []) {
      const r = await measureViewers(n, 0, FANOUT_SECONDS);
      results[`fanout_${n}`] = r;
      rows.push(
        `| fan-out: ${n} viewer${n === 1 ? "" : "s"} of one 640×480@30 1.5 Mbit/s stream, ${FANOUT_SECONDS} s | delivery p50 ${fmt(r.healthy.delayP50Ms)} / p99 ${fmt(r.healthy.delayP99Ms)} ms, ${r.healthy.gaps} gaps, skipped ${r.skipped.lagging ?? 0} + ${r.skipped["buffer-full"] ?? 0} | server CPU ${fmt(r.cpu.server)} % of a core (gst ${fmt(r.cpu.gst)} %, client process ${fmt(r.cpu.clients)} %), RSS ${fmt(r.rssMiB.start)} → max ${fmt(r.rssMiB.max)} MiB |`,
      );
    }
    for (const [n, k] of ONLY.has("slow") ? [[20, 0], [20, 5], [100, 0], [100, 20]] : []) {
      const r = await measureViewers(n!, k!, SLOW_SECONDS);
      results[`slow_${n}_${k}`] = r;
      rows.push(
        `| ${n} viewers, ${k} reading at half the bitrate, ${SLOW_SECONDS} s | healthy delivery p50 ${fmt(r.healthy.delayP50Ms)} / p99 ${fmt(r.healthy.delayP99Ms)} ms, ${r.healthy.gaps} gaps | server RSS ${fmt(r.rssMiB.start)} → max ${fmt(r.rssMiB.max)} MiB; skipped ${r.skipped.lagging ?? 0} lagging + ${r.skipped["buffer-full"] ?? 0} buffer-full; slow viewers' max lag ${fmt(r.slow.lagMaxMs)} ms |`,
      );
    }
  } finally {
    await browser.close();
    await stopAllServers();
  }
  // Each path's pipe → presented as a ratio to (a): the WebCodecs player on the main thread (paint on decoder output).
  const a = results.presented_decode as { p50: number; p99: number } | undefined;
  if (a !== undefined) {
    const others: [string, { p50: number; p99: number } | undefined][] = [
      ["(a) WebCodecs, main thread (decoder output)", a],
      ["WebCodecs, main thread, requestAnimationFrame", results.presented_raf as { p50: number; p99: number } | undefined],
      ["(b) WebCodecs, worker + OffscreenCanvas", results.presented_worker as { p50: number; p99: number } | undefined],
      ["(d) jsmpeg", results.jsmpeg_presented as { p50: number; p99: number } | undefined],
    ];
    const mse = results.latency_mse as { latencyP50Ms: number | null; latencyP99Ms?: number | null }[] | undefined;
    if (mse !== undefined) {
      others.push(["(c) MSE <video>", { p50: median(mse.map((r) => r.latencyP50Ms ?? NaN)), p99: median(mse.map((r) => r.latencyP99Ms ?? NaN)) }]);
    }
    for (const [what, r] of others) {
      if (r === undefined) continue;
      rows.push(`| pipe → presented relative to (a): ${what} | p50 ${fmt(r.p50)} ms = ${(r.p50 / a.p50).toFixed(2)}× | p99 ${fmt(r.p99)} ms = ${(r.p99 / a.p99).toFixed(2)}× |`);
    }
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
