// npm run bench: join time, latency of every player side by side (pipe → drawn and pipe → presented
// from Chromium's own presentation feedback, with the frame-clock floor), browser CPU per player,
// many players on one page, slow viewers and fan-out, codecs, an RTSP camera, and origins and edges on
// NATS, measured in headless Chromium against the real server and real gst test-pattern pipelines
// (and a real nats-server), all on loopback. Writes bench/results/latest.json and
// its charts (bench/charts.ts), and prints markdown tables.

import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import type { Page } from "puppeteer";
import { launchBrowser, type TestBrowser } from "../test/helpers/browser.js";
import { stopAllNatsClusters } from "../test/helpers/nats-cluster.js";
import { startServerProcess, stopAllServers } from "../test/helpers/server-process.js";
import { clusterTables, FAULT_HEADER, faultRows, HOP_HEADER, hopRow, measureFaults, measureHop, measureSpread, oneProcessRow, SPREAD_HEADER, spreadRow, type ClusterResults } from "./cluster.js";
import { fanoutBreaks, measureViewers, VIEWERS_PER_PROCESS } from "./fanout.js";
import type { SlowKind } from "./delay-histogram.js";
import { BARE_PLAYER_SELECTOR, startBarePages, type BarePages } from "./bare-page.js";
import { writeCharts } from "./charts.js";
import { JOIN_STAGES, measureJoin, summarizeJoins, type JoinSample, type JoinStageKey, type JoinStages, type JoinTarget } from "./join.js";
import { startJsmpegRelay } from "./jsmpeg/relay.js";
import { measureSendPath } from "./send-path.js";
import { browserCpuPercent, manyPlayers } from "./browser-cost.js";
import { breakdownTables, measureCpuBreakdowns } from "./cpu-breakdown.js";
import { measureJank } from "./jank.js";
import { LATENCY_PATHS, measureLatency, type LatencyPath, type PathLatency } from "./latency.js";
import { measureRtspCamera } from "./rtsp.js";
import { measureRecordingCpu, measureSeeks, type RecordingCpu } from "./recording.js";
import { fmt, pct } from "./stats.js";
import { CODEC_NAMES, CODEC_SIZES, measureCodec, measureSnowRate } from "./codecs.js";
import type { CodecName } from "../shared/codec.js";

const RESULTS = fileURLToPath(new URL("./results/", import.meta.url));
const benchStart = performance.now();

/** A line as soon as it is measured, on stderr with the minutes since the start: the run takes ~25 minutes. */
function progress(text: string): void {
  const minutes = ((performance.now() - benchStart) / 60_000).toFixed(1).padStart(4);
  for (const line of text.split("\n")) process.stderr.write(`[bench ${minutes} min] ${line}\n`);
}

/** A scenario begins: what it measures and how long it takes. */
function scenario(text: string): void {
  progress(`== ${text}`);
}

/** Seconds since `start` (a performance.now()), for the step lines. */
const took = (start: number): string => `${((performance.now() - start) / 1000).toFixed(1)} s`;

/** Adds lines to a table of the final summary, and shows them now. */
function report(table: string[], ...lines: string[]): void {
  table.push(...lines);
  for (const line of lines) progress(line);
}

const SLOW_KIND_LABEL: Record<SlowKind, string> = { "ws-acks": "/ws/, acking", "ws-no-acks": "/ws/, never acking", webm: "/webm/, sending nothing" };

/**
 * `--baseline DIR`: a checkout of another commit, built (`npm ci && npm run build` there), whose
 * server the fan-out is compared with in the same run.
 */
const baselineArg = process.argv.indexOf("--baseline");
const baselineDir = baselineArg >= 0 ? process.argv[baselineArg + 1] : undefined;
const BASELINE: { main: string; label: string } | null =
  baselineDir === undefined
    ? null
    : { main: `${baselineDir}/dist/server/main.js`, label: `commit ${execFileSync("git", ["-C", baselineDir, "rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim()}` };
const BASELINE_VIEWERS = (process.env.BENCH_BASELINE_VIEWERS ?? "500,800").split(",").map(Number);

/** `npm run bench -- --only join,latency,slow` runs a subset. */
const onlyArg = process.argv.indexOf("--only");
const ONLY = new Set(onlyArg >= 0 ? (process.argv[onlyArg + 1] ?? "").split(",") : ["join", "jsmpeg", "latency", "jank", "cost", "many", "slow", "fanout", "send", "codecs", "snow", "rtsp", "cluster", "record"]);
const SLOW_SECONDS = Number(process.env.BENCH_SLOW_SECONDS ?? 20);
const RECORD_SECONDS = Number(process.env.BENCH_RECORD_SECONDS ?? 20);
const SEEKS = Number(process.env.BENCH_SEEKS ?? 10);
const FANOUT_SECONDS = Number(process.env.BENCH_FANOUT_SECONDS ?? 15);
const COST_SECONDS = Number(process.env.BENCH_COST_SECONDS ?? 10);
const MANY_PLAYERS = Number(process.env.BENCH_MANY_PLAYERS ?? 16);
// Up in steps until a step breaks (delivery p99 > 33 ms, frames skipped, or the server's core saturated).
const FANOUT_VIEWERS = (process.env.BENCH_FANOUT_VIEWERS ?? "1,100,300,500,800,1000,1200,1600,2000,2500,3000").split(",").map(Number);
const JOINS = Number(process.env.BENCH_JOINS ?? 10);
/** `BENCH_JOIN_SCREENCAST=0` joins without the screencast (no "composited" stage; the browser does less while joining). */
const JOIN_SCREENCAST = process.env.BENCH_JOIN_SCREENCAST !== "0";
const LATENCY_RUNS = Number(process.env.BENCH_LATENCY_RUNS ?? 4);
// 22 s at 30 fps: at least 600 frames per trace, also for MSE, whose <video> drops a few.
const LATENCY_SECONDS = Number(process.env.BENCH_LATENCY_SECONDS ?? 22);
/** `BENCH_LATENCY_PATHS=main,jsmpeg` traces some paths only. */
const LATENCY_PATH_LIST = (process.env.BENCH_LATENCY_PATHS ?? "main,worker,mse,jsmpeg,raf").split(",") as LatencyPath[];
const JANK_RUNS = Number(process.env.BENCH_JANK_RUNS ?? 2);
const JANK_SECONDS = Number(process.env.BENCH_JANK_SECONDS ?? 20);
/** `BENCH_CODECS=vp8,h264` measures some codecs only (the codecs and snow sections). */
const CODEC_LIST = (process.env.BENCH_CODECS ?? CODEC_NAMES.join(",")).split(",") as CodecName[];
const CODEC_SECONDS = Number(process.env.BENCH_CODEC_SECONDS ?? 10);
const CODEC_JOINS = Number(process.env.BENCH_CODEC_JOINS ?? 5);
const RTSP_SECONDS = Number(process.env.BENCH_RTSP_SECONDS ?? 15);
/** A list of whole numbers ≥ 1 from the environment (a typo would start a cluster of NaN edges). */
function counts(name: string, fallback: string): number[] {
  const text = process.env[name] ?? fallback;
  const list = text.split(",").map(Number);
  if (!list.every((n) => Number.isInteger(n) && n >= 1)) throw new Error(`${name}: expected whole numbers ≥ 1, separated by commas, got "${text}"`);
  return list;
}
/** The cluster section: total viewers of the spread (each against one process), the edge counts, and the hop's window and viewers. */
const CLUSTER_VIEWERS = counts("BENCH_CLUSTER_VIEWERS", "400,800");
const CLUSTER_EDGES = counts("BENCH_CLUSTER_EDGES", "2,4");
const CLUSTER_SECONDS = counts("BENCH_CLUSTER_SECONDS", "15")[0]!;
// 35 s at 30 fps is 1050 frames: the edge's hop percentiles (its last 1024 frames) lie in the window.
const CLUSTER_HOP_SECONDS = counts("BENCH_CLUSTER_HOP_SECONDS", "35")[0]!;
const CLUSTER_HOP_VIEWERS = counts("BENCH_CLUSTER_HOP_VIEWERS", "5")[0]!;
/** Times each NATS node kill (under the origin, under the edge) is repeated. */
const CLUSTER_FAULT_ROUNDS = counts("BENCH_CLUSTER_FAULT_ROUNDS", "3")[0]!;
/** 1, 5 and 15 minute load averages, recorded with each measurement (2 cores here). */
const load = (): number[] => loadavg().map((x) => Math.round(x * 100) / 100);

/** A join scenario: which page, the result key's stem, the table's wording. */
interface JoinScenario {
  readonly key: string;
  /** The stage table's name for it. */
  readonly short: string;
  readonly what: string;
  readonly target: JoinTarget;
}

function joinScenarios(serverUrl: string, bare: BarePages): JoinScenario[] {
  return [
    { key: "join", short: "dashboard", what: "join: page load → first paint", target: { kind: "dashboard", url: serverUrl, stream: "cam0" } },
    { key: "join_mse", short: "dashboard, MSE", what: "MSE join: page load → first frame presented", target: { kind: "dashboard", url: `${serverUrl}?mode=mse`, stream: "cam0" } },
    { key: "join_bare_worker", short: "bare page, worker", what: "join, bare page with `<canvas-cast>` (worker): page load → first paint", target: { kind: "bare", url: bare.url("worker"), selector: BARE_PLAYER_SELECTOR } },
    { key: "join_bare_main", short: "bare page, main thread", what: "join, bare page with `<canvas-cast>` (main thread): page load → first paint", target: { kind: "bare", url: bare.url("main"), selector: BARE_PLAYER_SELECTOR } },
  ];
}

/** The stages of a join in a line: `html 31 · module 180 · …`. */
const stagesLine = (stages: JoinStages): string =>
  (Object.keys(JOIN_STAGES) as JoinStageKey[]).flatMap((k) => (stages[k] === undefined ? [] : [`${k} ${stages[k].toFixed(0)}`])).join(" · ");

async function measureJoins(browser: TestBrowser, analyzer: Page, s: JoinScenario, interval: number, joins: number): Promise<JoinSample[]> {
  const samples: JoinSample[] = [];
  for (let i = 0; i < joins; i++) {
    const start = performance.now();
    const sample = await measureJoin(browser, analyzer, s.target, JOIN_SCREENCAST);
    samples.push(sample);
    progress(`${s.key}_gop${interval}s ${i + 1}/${joins}: first picture ${fmt(sample.firstPaintMs)} ms — ${stagesLine(sample.stages)} (${took(start)})`);
    // Join at a different point of the GOP each time.
    await new Promise((r) => setTimeout(r, 137 + Math.random() * 400));
  }
  return samples;
}

/** The stage tables: p50 of each stage per join scenario, ms from navigation start; and of the time each took. */
function joinStageRows(rows: { what: string; stages: JoinStages; increments: JoinStages }[]): string[] {
  const keys = (Object.keys(JOIN_STAGES) as JoinStageKey[]).filter((k) => rows.some((r) => r.stages[k] !== undefined));
  const table = (pick: (r: (typeof rows)[number]) => JoinStages): string[] => [
    `| join | ${keys.map((k) => JOIN_STAGES[k]).join(" | ")} |`,
    `|---|${keys.map(() => "---|").join("")}`,
    ...rows.map((r) => `| ${r.what} | ${keys.map((k) => fmt(pick(r)[k])).join(" | ")} |`),
  ];
  return [
    "Join stages: p50 over the joins of each stage, ms from the page's navigation start (docs/benchmarks.md says what each is):",
    "",
    ...table((r) => r.stages),
    "",
    "Join stage by stage: p50 over the joins of the time from the stage before (for the in-JS stages and GOP received, from their network stage; for GOP decoded, from the first frame in JS):",
    "",
    ...table((r) => r.increments),
  ];
}

async function main(): Promise<void> {
  const browser = await launchBrowser();
  const results: Record<string, unknown> = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version, chromium: await browser.browser.version() },
    loadavgAtStart: load(),
  };
  const rows: string[] = [];
  const stageRows: { what: string; stages: JoinStages; increments: JoinStages }[] = [];
  let latencyTable: string[] = [];
  let costBreakdownTable: string[] = [];
  const fanoutTable: string[] = [];
  const codecTable: string[] = [];
  let clusterTable: string[] = [];
  const recordTable: string[] = [];
  try {
    for (const interval of ONLY.has("join") ? [1, 4] : []) {
      scenario(`join, ${interval} s keyframe interval: the dashboard (WebCodecs, MSE) and a bare page with <canvas-cast> (worker, main thread), ${JOINS} joins each, in stages`);
      const server = await startServerProcess(["--source", "test", "--keyframe-interval", String(interval)]);
      const bare = await startBarePages(server.url, "cam0");
      // Decodes the screencast frames after each join, in the default context.
      const analyzer = await browser.newPage();
      try {
        await new Promise((r) => setTimeout(r, 1500)); // let the first GOP fill the cache
        for (const s of joinScenarios(server.url, bare)) {
          const summary = summarizeJoins(await measureJoins(browser, analyzer, s, interval, JOINS));
          results[`${s.key}_gop${interval}s`] = { ...summary, loadavg: load() };
          stageRows.push({ what: `${s.short}, ${interval} s GOP`, stages: summary.stages, increments: summary.increments });
          report(rows, `| ${s.what}, ${interval} s keyframe interval (${summary.samples.length} joins) | p50 ${fmt(summary.p50)} ms | max ${fmt(summary.max)} ms |`);
        }
      } finally {
        await analyzer.close();
        await bare.close();
        await server.stop();
      }
    }
    if (stageRows.length) progress(joinStageRows(stageRows).join("\n"));
    if (ONLY.has("jsmpeg")) {
      // jsmpeg join: page load → first picture drawn, at 1 s and 4 s GOPs.
      scenario(`jsmpeg join: page load → first picture drawn, 1 s and 4 s GOPs, ${JOINS} joins each`);
      for (const seconds of [1, 4]) {
        const relay = await startJsmpegRelay({ width: 640, height: 480, fps: 30, bitrateKbps: 1500, gop: 30 * seconds });
        try {
          await new Promise((r) => setTimeout(r, 1500));
          const joins: number[] = [];
          for (let i = 0; i < JOINS; i++) {
            const start = performance.now();
            const context = await browser.browser.createBrowserContext();
            const page = await context.newPage();
            await page.goto(relay.url, { waitUntil: "domcontentloaded" });
            await page.waitForFunction(() => (window as unknown as { bench?: { firstDrawAt: number | null } }).bench?.firstDrawAt != null, { timeout: 20_000 });
            joins.push(await page.evaluate(() => (window as unknown as { bench: { firstDrawAt: number } }).bench.firstDrawAt));
            await context.close();
            progress(`jsmpeg_join_gop${seconds}s ${i + 1}/${JOINS}: first picture ${fmt(joins.at(-1))} ms (${took(start)})`);
            // A join waits for the next I-frame: start the next one at a random point of the GOP,
            // or every join would begin right after the I-frame the last one waited for.
            await new Promise((r) => setTimeout(r, Math.random() * seconds * 1000));
          }
          joins.sort((a, b) => a - b);
          results[`jsmpeg_join_gop${seconds}s`] = { samples: joins, p50: pct(joins, 50), max: joins.at(-1), loadavg: load() };
          report(rows, `| jsmpeg join: page load → first picture drawn, ${seconds} s GOP (${joins.length} joins) | p50 ${fmt(pct(joins, 50))} ms | max ${fmt(joins.at(-1))} ms |`);
        } finally {
          await relay.close();
        }
      }
    }
    if (ONLY.has("latency")) {
      // Every player side by side: the canvascast server and the jsmpeg relay run throughout.
      scenario(`latency: ${LATENCY_PATH_LIST.join(", ")} side by side, ${LATENCY_RUNS} runs of a ${LATENCY_SECONDS} s trace per path (~${Math.ceil((LATENCY_RUNS * LATENCY_PATH_LIST.length * (LATENCY_SECONDS + 5)) / 60)} min)`);
      const server = await startServerProcess(["--source", "test", "--size", "640x480", "--fps", "30", "--bitrate", "1500"]);
      const relay = await startJsmpegRelay({ width: 640, height: 480, fps: 30, bitrateKbps: 1500, gop: 30 });
      try {
        await new Promise((r) => setTimeout(r, 1500));
        const loadBefore = load();
        const r = await measureLatency(browser, { serverUrl: server.url, jsmpegUrl: relay.url }, LATENCY_PATH_LIST, LATENCY_RUNS, LATENCY_SECONDS, progress);
        results.latency = { ...r, loadavg: { before: loadBefore, after: load() } };
        latencyTable = latencyRows(r.paths, r.runs, r.tickIntervalMs, r.compositingMinMs);
        progress(latencyTable.join("\n"));
      } finally {
        await relay.close();
        await server.stop();
      }
    }
    if (ONLY.has("jank")) {
      // pipe → presented with the page's main thread blocked 30 ms of every 100 ms (bench/jank.ts).
      const server = await startServerProcess(["--source", "test", "--size", "640x480", "--fps", "30", "--bitrate", "1500"]);
      try {
        await new Promise((r) => setTimeout(r, 1500));
        const jank = await measureJank(browser, server.url, JANK_RUNS, JANK_SECONDS, (r) =>
          progress(`jank, ${r.path} run ${r.run}/${JANK_RUNS}: ${r.frames} frames, presented p50 ${fmt(r.p50)} / p95 ${fmt(r.p95)} ms (before the busy loop ${fmt(r.unjankedP50)} / ${fmt(r.unjankedP95)}); main thread blocked ${r.blocks}× (${fmt(r.blockedMs)} ms)`),
        );
        for (const [path, j] of Object.entries(jank)) {
          results[`jank_${path}`] = { ...j, loadavg: load() };
          report(rows, `| jank: pipe → presented, page's main thread blocked ${j.blockMs} ms of every ${j.periodMs} ms, ${j.what} (${j.presented.n} frames, ${j.runs} runs) | p50 ${fmt(j.presented.p50)} / p95 ${fmt(j.presented.p95)} ms | p99 ${fmt(j.presented.p99)}, max ${fmt(j.presented.max)} ms; pipe → drawn p50 ${fmt(j.drawn.p50)} / p95 ${fmt(j.drawn.p95)} ms; the same pages before the busy loop: presented p50 ${fmt(j.unjanked.presented.p50)} / p95 ${fmt(j.unjanked.presented.p95)} ms |`);
        }
      } finally {
        await server.stop();
      }
    }
    if (ONLY.has("cost") || ONLY.has("many")) {
      const costServer = await startServerProcess(["--source", "test", "--size", "640x480", "--fps", "30"]);
      try {
        if (ONLY.has("cost")) {
          scenario(`browser cost: CPU of all Chromium processes for one 640×480@30 player, 6 players one after another, ${COST_SECONDS} s each (+ an idle page and settling)`);
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
              results[`cost_${what}`] = { ...r, loadavg: load() };
              report(rows, `| browser CPU, one 640×480@30 player: ${what} | ${fmt(r.cost)} % of a core above an idle page | (${fmt(r.playing)} % playing, ${fmt(r.idle)} % idle; all Chromium processes) |`);
            }
            // The player alone on a bare page, like jsmpeg's (the dashboard also draws figures and a sparkline).
            for (const worker of [true, false]) {
              const r = await manyPlayers(costServer.url, "cam0", 1, worker, COST_SECONDS);
              results[`cost_bare_${r.thread}`] = { ...r, loadavg: load() };
              report(rows, `| browser CPU, one 640×480@30 player: /canvascast.js on a bare page, ${r.thread} thread | ${fmt(r.chromiumCpu)} % of a core | (all Chromium processes; an idle page is ~0.3 %) |`);
            }
            // Where that CPU goes, per thread and activity, from a DevTools trace (bench/cpu-breakdown.ts).
            const breakdowns = await measureCpuBreakdowns({ serverUrl: costServer.url, jsmpegUrl: relay.url }, COST_SECONDS, (b) => {
              results[`cost_breakdown_${b.path}`] = { ...b, loadavg: load() };
              progress(`cpu breakdown, ${b.what}: ${fmt(b.totalMsPerS.untraced)} ms of CPU per s (idle page ${fmt(b.totalMsPerS.idlePage)}, traced ${fmt(b.totalMsPerS.traced)})`);
            });
            costBreakdownTable = breakdownTables(breakdowns);
            progress(costBreakdownTable.join("\n"));
          } finally {
            await relay.close();
          }
        }
        if (ONLY.has("many")) scenario(`many: ${MANY_PLAYERS} players on one page, in workers and on the main thread, ${COST_SECONDS} s each`);
        for (const worker of ONLY.has("many") ? [true, false] : []) {
          const r = await manyPlayers(costServer.url, "cam0", MANY_PLAYERS, worker, COST_SECONDS);
          results[`many_${worker ? "worker" : "main"}`] = { ...r, loadavg: load() };
          const fps = [...r.fps].sort((a, b) => a - b);
          report(rows, 
            `| one page, ${r.players} players of one 640×480@30 stream (/canvascast.js, ${r.thread} thread) | painted fps per player: min ${fmt(fps[0])}, median ${fmt(pct(fps, 50))} | main-thread long tasks: ${r.longTasks} (${fmt(r.longTaskMs)} ms in ${COST_SECONDS} s); Chromium ${fmt(r.chromiumCpu)} % of a core |`,
          );
        }
        if (ONLY.has("many")) {
          // The same page of players on the stream's tile encoding (320×240 at the stream's 30 fps), in workers: a camera wall.
          const r = await manyPlayers(costServer.url, "cam0", MANY_PLAYERS, true, COST_SECONDS, "tile");
          results.many_tiles = { ...r, loadavg: load() };
          const fps = [...r.fps].sort((a, b) => a - b);
          report(rows,
            `| one page, ${r.players} players of one stream's 320×240@30 tile encoding (/canvascast.js, ${r.thread} thread) | painted fps per player: min ${fmt(fps[0])}, median ${fmt(pct(fps, 50))} | main-thread long tasks: ${r.longTasks} (${fmt(r.longTaskMs)} ms in ${COST_SECONDS} s); Chromium ${fmt(r.chromiumCpu)} % of a core |`,
          );
        }
      } finally {
        await costServer.stop();
      }
    }
    if (ONLY.has("fanout")) {
      // Step the viewer count up until a step breaks (or the last step).
      scenario(`fan-out: viewers stepped up ${FANOUT_VIEWERS.join(", ")} until a step breaks twice, ${FANOUT_SECONDS} s per step`);
      const steps: unknown[] = [];
      report(fanoutTable, 
        `Fan-out: one 640×480@30 1.5 Mbit/s stream, ${FANOUT_SECONDS} s per step, viewers in ⌈N / ${VIEWERS_PER_PROCESS}⌉ client processes (CPU in % of one core; the machine has ${cpus().length}):`,
        "",
        "| viewers | client processes | delivery p50 / p99, ms | skipped, gaps | server CPU | server RSS start → max, MiB | gst CPU | clients CPU, all | total | load (1 min) | |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
      );
      steps: for (const n of FANOUT_VIEWERS) {
        // A step that breaks is run once more: one stall of the shared machine should not end the climb.
        for (let attempt = 1; attempt <= 2; attempt++) {
          progress(`fan-out: ${n} viewers${attempt > 1 ? ", again" : ""}…`);
          const r = await measureViewers(n, 0, FANOUT_SECONDS);
          const breaks = fanoutBreaks(r);
          steps.push({ ...r, attempt, breaks });
          const skipped = Object.values(r.skipped).reduce((x, y) => x + y, 0);
          report(fanoutTable, 
            `| ${n}${attempt > 1 ? " (again)" : ""} | ${r.clientProcesses} | ${fmt(r.healthy.delayP50Ms)} / ${fmt(r.healthy.delayP99Ms)} | ${skipped}, ${r.healthy.gaps} | ${fmt(r.cpu.server)} % | ${fmt(r.rssMiB.start)} → ${fmt(r.rssMiB.max)} | ${fmt(r.cpu.gst)} % | ${fmt(r.cpu.clients)} % | ${fmt(r.cpu.server + r.cpu.gst + r.cpu.clients)} % | ${r.loadavg[0]?.toFixed(2)} | ${breaks.length ? `**breaks**: ${breaks.join("; ")}` : "holds"} |`,
          );
          if (breaks.length === 0) continue steps;
        }
        break;
      }
      results.fanout = steps;
    }
    if (BASELINE !== null) {
      // The same fan-out steps against an older build (`--baseline DIR`), alternating, in this run.
      const rounds: unknown[] = [];
      scenario(`fan-out against the baseline (${BASELINE.label}): ${BASELINE_VIEWERS.join(", ")} viewers, two rounds of both builds, ${FANOUT_SECONDS} s each`);
      report(fanoutTable, 
        "",
        `Fan-out, this build against the baseline (${BASELINE.label}), alternating, ${FANOUT_SECONDS} s each:`,
        "",
        "| viewers | build | delivery p50 / p99, ms | skipped, gaps | server CPU | server RSS max, MiB |",
        "|---|---|---|---|---|---|",
      );
      for (const n of BASELINE_VIEWERS) {
        for (let round = 1; round <= 2; round++) {
          for (const [build, main] of [["baseline", BASELINE.main], ["this", undefined]] as const) {
            const r = await measureViewers(n, 0, FANOUT_SECONDS, "ws-acks", main);
            rounds.push({ ...r, build, round });
            const skipped = Object.values(r.skipped).reduce((x, y) => x + y, 0);
            report(fanoutTable, `| ${n} | ${build} | ${fmt(r.healthy.delayP50Ms)} / ${fmt(r.healthy.delayP99Ms)} | ${skipped}, ${r.healthy.gaps} | ${fmt(r.cpu.server)} % | ${fmt(r.rssMiB.max)} |`);
          }
        }
      }
      results.fanoutAgainstBaseline = { baseline: BASELINE.label, rounds };
    }
    if (ONLY.has("cluster")) {
      scenario(
        `cluster: the hop (1 origin + 1 edge, ${CLUSTER_HOP_VIEWERS} viewers at each, ${CLUSTER_HOP_SECONDS} s); ${CLUSTER_VIEWERS.join(", ")} viewers in one process and spread over ${CLUSTER_EDGES.map((e) => `1 origin + ${e} edges`).join(", ")}, ${CLUSTER_SECONDS} s each`,
      );
      const hop = await measureHop(CLUSTER_HOP_VIEWERS, CLUSTER_HOP_SECONDS);
      progress([...HOP_HEADER, hopRow(hop)].join("\n"));
      const faults = await measureFaults(CLUSTER_FAULT_ROUNDS);
      progress([...FAULT_HEADER, ...faultRows(faults)].join("\n"));
      const oneProcess: ClusterResults["oneProcess"][number][] = [];
      const spread: ClusterResults["spread"][number][] = [];
      progress(SPREAD_HEADER.join("\n"));
      for (const n of CLUSTER_VIEWERS) {
        // The same viewers in one process, then spread over the edges, one after the other in this run.
        const one = await measureViewers(n, 0, CLUSTER_SECONDS);
        oneProcess.push({ ...one, breaks: fanoutBreaks(one) });
        progress(oneProcessRow(oneProcess.at(-1)!));
        for (const edges of CLUSTER_EDGES) {
          spread.push(await measureSpread(n, edges, CLUSTER_SECONDS));
          progress(spreadRow(spread.at(-1)!));
        }
      }
      const cluster: ClusterResults = { hop, faults, oneProcess, spread };
      results.cluster = cluster;
      clusterTable = clusterTables(cluster);
    }
    if (ONLY.has("record")) {
      scenario(`record: server CPU with recording off and on (1 and 4 streams, 640×480@30 1.5 Mbit/s, two alternating rounds of ${RECORD_SECONDS} s), then ${SEEKS} seeks in the dashboard`);
      const cpu: RecordingCpu[] = [];
      report(recordTable, "Recording, 640×480@30 at 1.5 Mbit/s, the server process alone (the pipelines are the same either way):", "", "| streams | round | server CPU off | on | on ÷ off | disk per stream-hour |", "|---|---|---|---|---|---|");
      for (const streams of [1, 4]) {
        for (let round = 1; round <= 2; round++) {
          const off = await measureRecordingCpu(streams, false, RECORD_SECONDS, round);
          const on = await measureRecordingCpu(streams, true, RECORD_SECONDS, round);
          cpu.push(off, on);
          report(recordTable, `| ${streams} | ${round} | ${fmt(off.serverCpu)} % | ${fmt(on.serverCpu)} % | ${(on.serverCpu / off.serverCpu).toFixed(2)} | ${((on.bytesPerStreamHour ?? 0) / 1e6).toFixed(0)} MB |`);
        }
      }
      const seeks = await measureSeeks(browser, SEEKS);
      report(
        recordTable,
        "",
        `Seek in the dashboard (WebCodecs, main thread), ${seeks.seeks} seeks 10–40 s back: seek() → first recorded picture p50 ${fmt(seeks.seekToPicture.p50)} ms (p90 ${fmt(seeks.seekToPicture.p90)}, max ${fmt(seeks.seekToPicture.max)}); live() → first live picture p50 ${fmt(seeks.liveToPicture.p50)} ms (p90 ${fmt(seeks.liveToPicture.p90)}, max ${fmt(seeks.liveToPicture.max)})`,
      );
      results.recording = { cpu, seeks, loadavg: load() };
    }
    if (ONLY.has("send")) scenario("send path: one frame to 500 and 1000 sockets, ws.send() per socket against one WireMessage");
    for (const n of ONLY.has("send") ? [500, 1000] : []) {
      // The server's send path alone, in this process: ws.send() per socket vs one framed message for all.
      const r = await measureSendPath(n, 300);
      results[`send_${n}`] = { ...r, loadavg: load() };
      report(rows, 
        `| send path: one ${r.frameBytes}-byte frame to ${n} sockets (${r.frames} frames each way, alternating) | ws.send() per socket p50 ${r.wsSendUs.p50} µs (min ${r.wsSendUs.min}) | one WireMessage for all p50 ${r.wireUs.p50} µs (min ${r.wireUs.min}) |`,
      );
    }
    if (ONLY.has("rtsp")) {
      scenario(`rtsp: a 1280×720@30 H.264 RTSP camera (gst-rtsp-server), copied and transcoded to VP8, two alternating rounds of ${RTSP_SECONDS} s`);
      const runs: unknown[] = [];
      for (let round = 1; round <= 2; round++) {
        for (const way of ["copy", "vp8"] as const) {
          const r = await measureRtspCamera(way, 1280, 720, RTSP_SECONDS);
          runs.push({ ...r, round, loadavg: load() });
          const what = way === "copy" ? "codec copy (depayload, parse)" : "transcoded to VP8 2.5 Mbit/s (decodebin, vp8enc)";
          report(rows,
            `| rtsp camera 1280×720@30 H.264, ${what}, round ${round} | gst ${fmt(r.cpu.gst)} % of a core, server ${fmt(r.cpu.server)} % (the camera's own x264: ${fmt(r.cpu.camera)} %) | ${fmt(r.fps)} fps, ${fmt((r.bytesPerSecond * 8) / 1000)} kbit/s to one viewer |`,
          );
        }
      }
      results.rtsp = runs;
    }
    const slowRuns: [number, number, SlowKind][] = [[20, 0, "ws-acks"], [20, 5, "ws-acks"], [100, 0, "ws-acks"], [100, 20, "ws-acks"], [100, 20, "ws-no-acks"], [100, 20, "webm"]];
    if (ONLY.has("slow")) scenario(`slow viewers: ${slowRuns.length} runs of ${SLOW_SECONDS} s`);
    for (const [n, k, kind] of ONLY.has("slow") ? slowRuns : []) {
      progress(`slow viewers: ${n} viewers, ${k} slow (${SLOW_KIND_LABEL[kind]})…`);
      const r = await measureViewers(n, k, SLOW_SECONDS, kind);
      results[`slow_${n}_${k}${kind === "ws-acks" ? "" : `_${kind}`}`] = r; // r.loadavg: when its window ended
      const who = k === 0 ? "" : `, ${k} reading at half the bitrate (${SLOW_KIND_LABEL[kind]})`;
      report(rows, 
        `| ${n} viewers${who}, ${SLOW_SECONDS} s | healthy delivery p50 ${fmt(r.healthy.delayP50Ms)} / p99 ${fmt(r.healthy.delayP99Ms)} ms, ${r.healthy.gaps} gaps | server RSS ${fmt(r.rssMiB.start)} → max ${fmt(r.rssMiB.max)} MiB, CPU ${fmt(r.cpu.server)} %; skipped ${r.skipped.lagging ?? 0} lagging + ${r.skipped["buffer-full"] ?? 0} buffer-full; slow viewers' lag p50 ${fmt(r.slow.lagP50Ms)} / max ${fmt(r.slow.lagMaxMs)} ms, ${fmt(r.slow.framesPerViewer)} frames each |`,
      );
    }
    if (ONLY.has("codecs")) {
      scenario(`codecs: ${CODEC_LIST.join(", ")} at ${CODEC_SIZES.map((z) => `${z.width}×${z.height}`).join(" and ")}@30, ${CODEC_SECONDS} s of load, a ${CODEC_SECONDS} s latency trace and ${CODEC_JOINS} joins each`);
      report(codecTable,
        "Codecs: the live test pattern, one server per codec and size, one raw /ws/ viewer; pipe → drawn on a bare page (WebCodecs, main thread); join on a bare page (main thread), 1 s GOP (CPU in % of one core):",
        "",
        "| codec | size, target | hello.codec | frames/s, kbit/s received | server CPU | gst CPU | pipe → drawn p50 / p99, ms | join p50, ms |",
        "|---|---|---|---|---|---|---|---|",
      );
      const analyzer = await browser.newPage();
      try {
        const all: unknown[] = [];
        for (const size of CODEC_SIZES) {
          for (const codec of CODEC_LIST) {
            const r = await measureCodec(browser, analyzer, codec, size, { loadSeconds: CODEC_SECONDS, latencySeconds: CODEC_SECONDS, joins: CODEC_JOINS });
            all.push({ ...r, loadavg: load() });
            report(codecTable, `| ${codec} | ${r.width}×${r.height}, ${r.targetKbps} kbit/s | ${r.codecString} | ${fmt(r.fps)}, ${r.kbps.toFixed(0)} | ${fmt(r.serverCpu)} % | ${fmt(r.gstCpu)} % | ${fmt(r.drawn?.p50)} / ${fmt(r.drawn?.p99)} | ${fmt(r.joinP50)} |`);
          }
        }
        results.codecs = all;
      } finally {
        await analyzer.close();
      }
    }
    if (ONLY.has("snow")) {
      scenario(`snow: each codec encoding noise (test:snow) at 640×480@30 against 1.5 Mbit/s, ${CODEC_SECONDS} s each`);
      report(codecTable, "", "Rate on noise (test:snow, 640×480@30, target 1500 kbit/s, one raw /ws/ viewer):", "", "| codec | kbit/s received | ÷ target | frames/s | gst CPU |", "|---|---|---|---|---|");
      const all: unknown[] = [];
      for (const codec of CODEC_LIST) {
        const r = await measureSnowRate(codec, CODEC_SECONDS);
        all.push({ ...r, loadavg: load() });
        report(codecTable, `| ${codec} | ${r.kbps.toFixed(0)} | ${r.ratio.toFixed(2)} | ${fmt(r.fps)} | ${fmt(r.gstCpu)} % |`);
      }
      results.snow = all;
    }
  } finally {
    await browser.close();
    await stopAllServers();
    await stopAllNatsClusters();
  }
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(`${RESULTS}latest.json`, JSON.stringify(results, null, 2) + "\n");
  const charts = writeCharts(results, RESULTS);
  if (stageRows.length) console.log(joinStageRows(stageRows).join("\n") + "\n");
  if (latencyTable.length) console.log(latencyTable.join("\n") + "\n");
  if (fanoutTable.length) console.log(fanoutTable.join("\n") + "\n");
  if (codecTable.length) console.log(codecTable.join("\n") + "\n");
  if (clusterTable.length) console.log(clusterTable.join("\n") + "\n");
  if (recordTable.length) console.log(recordTable.join("\n") + "\n");
  if (costBreakdownTable.length) console.log(costBreakdownTable.join("\n") + "\n");
  console.log("| scenario | | |\n|---|---|---|\n" + rows.join("\n"));
  console.log(`\nwrote ${RESULTS}latest.json${charts.map((c) => `, ${c}`).join("")}`);
}

/** The side-by-side latency table: each path's figures, ratios to (a) and distance to the frame-clock floor. */
function latencyRows(paths: Partial<Record<LatencyPath, PathLatency>>, runs: number, tickMs: number, compositingMs: number): string[] {
  const four = (x: { p50: number; p95: number; p99: number; max: number }, digits = 1): string =>
    [x.p50, x.p95, x.p99, x.max].map((v) => (Number.isNaN(v) ? "–" : v.toFixed(digits))).join(" / ");
  const out = [
    `Latency, 640×480@30, ${runs} runs pooled per path (frame clock ${fmt(tickMs)} ms, least compositing C = ${compositingMs.toFixed(2)} ms):`,
    "",
    "| path | frames | pipe → drawn p50 / p95 / p99 / max, ms | pipe → presented p50 / p95 / p99 / max, ms | presented ÷ (a) | drawn ÷ (a) | floor p50, ms | presented − floor p50, ms | presented − (decode + C) p50, ms |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const key of Object.keys(LATENCY_PATHS) as LatencyPath[]) {
    const p = paths[key];
    if (p === undefined) continue;
    const r = p.ratioToA;
    out.push(
      `| ${p.what} | ${p.presented.n} | ${four(p.drawn)} | ${four(p.presented)} | ${r ? four(r.presented, 2) : "–"} | ${r ? four(r.drawn, 2) : "–"} | ${fmt(p.floor.p50)} (decode ${fmt(p.decodeP50)} + wait ${fmt(p.waitP50)} + C ${compositingMs.toFixed(1)}) | ${fmt(p.aboveFloor.p50)} | ${fmt(p.aboveDecodeAndCompositing.p50)} |`,
    );
  }
  const a = paths.main?.captureToPresented;
  if (a !== undefined) out.push("", `(a) capture → presented (lower bound): p50 ${fmt(a.p50)} / p95 ${fmt(a.p95)} / p99 ${fmt(a.p99)} / max ${fmt(a.max)} ms.`);
  const mse = paths.mse?.presentedTrace;
  if (mse !== undefined) out.push(`(c) MSE pipe → first Display::FrameDisplayed after requestVideoFrameCallback's presentationTime: p50 ${fmt(mse.p50)} / p99 ${fmt(mse.p99)} ms.`);
  return out;
}

// Puppeteer closes its browser on SIGTERM and SIGHUP but leaves the process running: end it, so
// that the exit hooks kill the servers and NATS servers started (SIGINT already exits).
for (const signal of ["SIGTERM", "SIGHUP"] as const) process.once(signal, () => process.exit(128 + (signal === "SIGTERM" ? 15 : 1)));

main().catch(async (err: unknown) => {
  console.error(err);
  await stopAllServers();
  await stopAllNatsClusters();
  process.exit(1);
});
