// Origins and edges on NATS for the benchmarks. (1) The hop: one origin and one edge on one
// nats-server, a few viewers at each, measured in the same window: delivery at the origin against
// delivery at the edge, and the edge's own hop figures (origin pipe → handed to its viewers). (2)
// The spread: viewers of the fan-out's stream spread evenly over E edge processes, the origin
// serving none, with every process's CPU (origin, its gst, each edge, the NATS server, the client
// processes), against one process serving them all (bench/fanout.ts) in the same run.
// `npx tsx bench/cluster.ts [results.json]` prints the section's tables from a results file.

import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { RelayInfo, StreamInfo } from "../shared/api.js";
import { startNatsCluster, type NatsCluster } from "../test/helpers/nats-cluster.js";
import { childPids, startServerProcess, type ServerProcess } from "../test/helpers/server-process.js";
import { connectSpecViewer, type SpecWsViewer } from "../test/helpers/spec-ws-viewer.js";
import { sleep, until } from "../test/helpers/until.js";
import {
  countsSince,
  deliveryBreaks,
  healthyOf,
  measureClientWindow,
  split,
  STREAM_ARGS,
  totalSkipped,
  viewerLimits,
  type ViewersResult,
} from "./fanout.js";
import { fmt } from "./stats.js";

/** The stream STREAM_ARGS makes (the default stream's name). */
const STREAM = "cam0";

type Healthy = ViewersResult["healthy"];

/** One origin and its edges on a nats-server of their own. */
interface Cluster {
  readonly nats: NatsCluster;
  readonly origin: ServerProcess;
  readonly gst: number | undefined;
  readonly edges: readonly ServerProcess[];
}

/** The stream as a server lists it, or undefined. */
async function streamAt(server: ServerProcess): Promise<StreamInfo | undefined> {
  const res = await fetch(`${server.url}api/streams`);
  return ((await res.json()) as { streams: StreamInfo[] }).streams.find((s) => s.name === STREAM);
}

/** The full encoding's relay on an edge, and the stream's skip counts there. */
async function edgeCounters(edge: ServerProcess): Promise<{ relay: RelayInfo | null; skipped: Record<string, number> }> {
  const s = await streamAt(edge);
  return { relay: s?.encodings.find((e) => e.name === "full")?.relay ?? null, skipped: s?.skipped ?? {} };
}

/** Stops what was started, each whatever the others do; the NATS server last. */
async function stopCluster(parts: { nats: NatsCluster | null; servers: readonly ServerProcess[] }): Promise<void> {
  await Promise.allSettled(parts.servers.map((s) => s.stop()));
  await parts.nats?.close();
}

/**
 * A nats-server, an origin of the fan-out's stream on it (caps lifted for `originViewers`) and
 * `edgeViewers.length` edges (each's caps for its viewers), once every edge lists the stream live.
 * Whatever fails on the way, what was started is stopped before the error goes on.
 */
async function startCluster(originViewers: number, edgeViewers: readonly number[]): Promise<Cluster> {
  let nats: NatsCluster | null = null;
  const servers: ServerProcess[] = [];
  try {
    nats = await startNatsCluster(1);
    const url = nats.urls;
    const origin = await startServerProcess([...STREAM_ARGS, ...viewerLimits(originViewers), "--nats", url]);
    servers.push(origin);
    const started = await Promise.allSettled(edgeViewers.map((n) => startServerProcess(["--edge", ...viewerLimits(n), "--nats", url])));
    for (const r of started) if (r.status === "fulfilled") servers.push(r.value);
    const failed = started.find((r) => r.status === "rejected");
    if (failed !== undefined) throw failed.reason;
    const edges = servers.slice(1);
    await Promise.all(edges.map((e) => until(`an edge to list ${STREAM} live`, 20_000, async () => ((await streamAt(e))?.state === "live" ? true : undefined), 200)));
    const [gst] = childPids(origin.pid, "gst-launch-1.0");
    return { nats, origin, gst, edges };
  } catch (err) {
    await stopCluster({ nats, servers });
    throw err;
  }
}

/** The hop: viewers at the origin and at one edge in the same window. */
export interface HopRun {
  /** Viewers at the origin, and as many at the edge. */
  readonly viewersEach: number;
  readonly seconds: number;
  readonly atOrigin: Healthy;
  readonly atEdge: Healthy;
  /** Edge ÷ origin, delivery p50 and p99. */
  readonly ratio: { readonly p50: number | null; readonly p99: number | null };
  /** Edge − origin, ms. */
  readonly added: { readonly p50: number | null; readonly p99: number | null };
  /** The edge's relay at the end of the window: its hop percentiles are over its last 1024 live frames. */
  readonly relay: RelayInfo | null;
  /** Frames lost between the origin and the edge during the window. */
  readonly framesLost: number;
  /** % of one core over the window. */
  readonly cpu: { readonly origin: number; readonly gst: number; readonly edge: number; readonly nats: number; readonly clients: number };
  readonly loadavg: number[];
}

const ratio = (a: number | null, b: number | null): number | null => (a === null || b === null || b === 0 ? null : a / b);
const minus = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : a - b);

export async function measureHop(viewersEach: number, seconds: number): Promise<HopRun> {
  const c = await startCluster(viewersEach, [viewersEach]);
  const edge = c.edges[0]!;
  try {
    let lost0 = 0;
    let after: Awaited<ReturnType<typeof edgeCounters>> = { relay: null, skipped: {} };
    const w = await measureClientWindow(
      [
        { wsUrl: `${c.origin.wsBase}ws/${STREAM}`, viewers: viewersEach, throttled: 0 },
        { wsUrl: `${edge.wsBase}ws/${STREAM}`, viewers: viewersEach, throttled: 0 },
      ],
      seconds,
      "ws-acks",
      { origin: c.origin.pid, gst: c.gst, edge: edge.pid, nats: c.nats.nodes[0]!.pid ?? undefined },
      {
        before: async () => {
          lost0 = (await edgeCounters(edge)).relay?.framesLost ?? 0;
        },
        after: async () => {
          after = await edgeCounters(edge);
        },
      },
    );
    const atOrigin = healthyOf(w.reports[0]!);
    const atEdge = healthyOf(w.reports[1]!);
    return {
      viewersEach,
      seconds,
      atOrigin,
      atEdge,
      ratio: { p50: ratio(atEdge.delayP50Ms, atOrigin.delayP50Ms), p99: ratio(atEdge.delayP99Ms, atOrigin.delayP99Ms) },
      added: { p50: minus(atEdge.delayP50Ms, atOrigin.delayP50Ms), p99: minus(atEdge.delayP99Ms, atOrigin.delayP99Ms) },
      relay: after.relay,
      framesLost: (after.relay?.framesLost ?? 0) - lost0,
      cpu: { origin: w.cpu.origin!, gst: w.cpu.gst!, edge: w.cpu.edge!, nats: w.cpu.nats!, clients: w.clientsPerProcess.reduce((a, b) => a + b, 0) },
      loadavg: loadavg(),
    };
  } finally {
    await stopCluster({ nats: c.nats, servers: [...c.edges, c.origin] });
  }
}

/** One edge's share of a spread window. */
export interface EdgeFigures {
  readonly viewers: number;
  readonly healthy: Healthy;
  /** % of one core over the window. */
  readonly cpu: number;
  /** Frames the edge skipped for its viewers during the window, by reason. */
  readonly skipped: Record<string, number>;
  /** Frames lost between the origin and this edge during the window. */
  readonly framesLost: number;
  /** At the end of the window; its hop percentiles are over the last 1024 live frames (about 34 s: the joins included). */
  readonly relay: RelayInfo | null;
}

/** N viewers spread evenly over E edges; the origin serves none. */
export interface SpreadRun {
  readonly viewers: number;
  readonly edges: number;
  readonly originViewers: 0;
  readonly seconds: number;
  readonly clientProcesses: number;
  /** Every viewer's, pooled. */
  readonly healthy: Healthy;
  readonly perEdge: readonly EdgeFigures[];
  /** % of one core over the window; `edges` in the order of perEdge. */
  readonly cpu: { readonly origin: number; readonly gst: number; readonly edges: readonly number[]; readonly nats: number; readonly clients: number };
  /** Summed over the edges, during the window. */
  readonly skipped: number;
  readonly framesLost: number;
  readonly loadavg: number[];
  readonly breaks: readonly string[];
}

export async function measureSpread(viewers: number, edgeCount: number, seconds: number): Promise<SpreadRun> {
  const counts = split(viewers, edgeCount);
  const c = await startCluster(0, counts);
  try {
    let before: Awaited<ReturnType<typeof edgeCounters>>[] = [];
    let after: Awaited<ReturnType<typeof edgeCounters>>[] = [];
    const w = await measureClientWindow(
      c.edges.map((e, i) => ({ wsUrl: `${e.wsBase}ws/${STREAM}`, viewers: counts[i]!, throttled: 0 })),
      seconds,
      "ws-acks",
      { origin: c.origin.pid, gst: c.gst, nats: c.nats.nodes[0]!.pid ?? undefined, ...Object.fromEntries(c.edges.map((e, i) => [`edge ${i + 1}`, e.pid])) },
      {
        before: async () => {
          before = await Promise.all(c.edges.map(edgeCounters));
        },
        after: async () => {
          after = await Promise.all(c.edges.map(edgeCounters));
        },
      },
    );
    const perEdge: EdgeFigures[] = c.edges.map((_, i) => ({
      viewers: counts[i]!,
      healthy: healthyOf(w.reports[i]!),
      cpu: w.cpu[`edge ${i + 1}`]!,
      skipped: countsSince(before[i]!.skipped, after[i]!.skipped),
      framesLost: (after[i]!.relay?.framesLost ?? 0) - (before[i]!.relay?.framesLost ?? 0),
      relay: after[i]!.relay,
    }));
    const healthy = healthyOf(w.reports.flat());
    const skipped = perEdge.reduce((n, e) => n + totalSkipped(e.skipped), 0);
    const framesLost = perEdge.reduce((n, e) => n + e.framesLost, 0);
    const cpu = { origin: w.cpu.origin!, gst: w.cpu.gst!, edges: perEdge.map((e) => e.cpu), nats: w.cpu.nats!, clients: w.clientsPerProcess.reduce((a, b) => a + b, 0) };
    const breaks = [
      ...deliveryBreaks(healthy, skipped, [["origin", cpu.origin], ...perEdge.map((e, i): [string, number] => [`edge ${i + 1}`, e.cpu])]),
      ...(framesLost > 0 ? [`${framesLost} frames lost between the origin and the edges`] : []),
    ];
    return { viewers, edges: edgeCount, originViewers: 0, seconds, clientProcesses: w.clientProcesses, healthy, perEdge, cpu, skipped, framesLost, loadavg: loadavg(), breaks };
  } finally {
    await stopCluster({ nats: c.nats, servers: [...c.edges, c.origin] });
  }
}

/** `results.cluster` in latest.json. */
/** One kill of the NATS node an origin or an edge was on, as the edge's viewers saw it. */
export interface FaultRun {
  readonly killed: "origin's node" | "edge's node";
  /** The longest time between two frames at any of the edge's viewers, from the kill to 5 s after, ms. */
  readonly longestWaitMs: number;
  /** Sequence gaps the viewers saw (each ended by a keyframe), summed over them. */
  readonly gaps: number;
  /** Frames the edge lost from the origin. */
  readonly framesLost: number;
}

/** The node (index) whose clients include the process `pid` (its NATS client name ends in its pid). */
async function nodeOf(nats: NatsCluster, pid: number): Promise<number> {
  return until(`the NATS node of process ${pid}`, 10_000, async () => {
    for (const node of nats.nodes) {
      if (!node.running) continue;
      const connz = await node.monitor<{ connections: { name?: string }[] | null }>("connz").catch(() => null);
      if (connz?.connections?.some((c) => c.name?.endsWith(`:${pid}`))) return node.index;
    }
    return undefined;
  });
}

/**
 * Faults: a 3-node NATS cluster, one origin and one edge (each given every node), 3 viewers at the
 * edge; `rounds` times, the node the origin is on is killed (and started again 5 s later), then
 * the node the edge is on. The measure is what the issue bounds: the longest wait for a new picture.
 */
export async function measureFaults(rounds: number): Promise<FaultRun[]> {
  const nats = await startNatsCluster(3);
  const servers: ServerProcess[] = [];
  const viewers: SpecWsViewer[] = [];
  try {
    const origin = await startServerProcess([...STREAM_ARGS, "--nats", nats.urls]);
    servers.push(origin);
    const edge = await startServerProcess(["--edge", "--nats", nats.urls]);
    servers.push(edge);
    await until(`the edge to list ${STREAM} live`, 20_000, async () => ((await streamAt(edge))?.state === "live" ? true : undefined), 200);
    for (let i = 0; i < 3; i++) viewers.push(await connectSpecViewer(`${edge.wsBase}ws/${STREAM}`));
    await sleep(3000);
    const runs: FaultRun[] = [];
    for (let round = 0; round < rounds; round++) {
      for (const [killed, pid] of [["origin's node", origin.pid], ["edge's node", edge.pid]] as const) {
        const node = nats.nodes[await nodeOf(nats, pid)]!;
        const lost0 = (await edgeCounters(edge)).relay?.framesLost ?? 0;
        const from = viewers.map((v) => v.frames().length);
        const killedAt = Date.now();
        await node.kill();
        await sleep(5000);
        let longest = 0;
        let gaps = 0;
        viewers.forEach((v, i) => {
          const frames = v.frames().slice(Math.max(0, from[i]! - 1));
          let last = killedAt;
          for (const f of frames) {
            if (f.at >= killedAt) longest = Math.max(longest, f.at - last);
            if (f.at >= killedAt) last = f.at;
          }
          longest = Math.max(longest, Date.now() - last);
          for (let k = 1; k < frames.length; k++) if (!frames[k]!.replay && frames[k]!.seq !== ((frames[k - 1]!.seq + 1) >>> 0)) gaps++;
        });
        runs.push({ killed, longestWaitMs: longest, gaps, framesLost: ((await edgeCounters(edge)).relay?.framesLost ?? 0) - lost0 });
        await node.start();
        await nats.routed();
        await sleep(2000);
      }
    }
    return runs;
  } finally {
    for (const v of viewers) v.close();
    await stopCluster({ nats, servers });
  }
}

export const FAULT_HEADER = ["| NATS node killed | runs | longest wait for a new picture at the edge's viewers, ms (each run) | gaps seen | frames lost |", "|---|---|---|---|---|"];

export function faultRows(runs: readonly FaultRun[]): string[] {
  return (["origin's node", "edge's node"] as const).flatMap((killed) => {
    const of = runs.filter((r) => r.killed === killed);
    if (of.length === 0) return [];
    return [`| the ${killed.replace("'s node", "")}'s | ${of.length} | ${of.map((r) => Math.round(r.longestWaitMs)).join(", ")} | ${of.map((r) => r.gaps).join(", ")} | ${of.map((r) => r.framesLost).join(", ")} |`];
  });
}

export interface ClusterResults {
  readonly hop: HopRun | null;
  /** NATS node kills under the origin and under the edge. */
  readonly faults?: readonly FaultRun[];
  /** One process serving every viewer (the fan-out's measurement), per viewer count. */
  readonly oneProcess: readonly (ViewersResult & { readonly breaks: readonly string[] })[];
  readonly spread: readonly SpreadRun[];
}

const pair = (a: number | null | undefined, b: number | null | undefined, digits = 1): string =>
  `${a === null || a === undefined ? "–" : a.toFixed(digits)} / ${b === null || b === undefined ? "–" : b.toFixed(digits)}`;
const verdict = (breaks: readonly string[]): string => (breaks.length ? `**breaks**: ${breaks.join("; ")}` : "holds");
const percent = (x: number): string => `${fmt(x)} %`;

export const HOP_HEADER = [
  "| viewers at each | delivery at the origin p50 / p99, ms | at the edge p50 / p99, ms | edge ÷ origin p50 / p99 | edge − origin p50 / p99, ms | edge's relay hop p50 / p99, ms | frames lost | origin CPU (+ gst) | edge CPU | NATS CPU | load (1 min) |",
  "|---|---|---|---|---|---|---|---|---|---|---|",
];

export function hopRow(h: HopRun): string {
  return `| ${h.viewersEach} | ${pair(h.atOrigin.delayP50Ms, h.atOrigin.delayP99Ms)} | ${pair(h.atEdge.delayP50Ms, h.atEdge.delayP99Ms)} | ${pair(h.ratio.p50, h.ratio.p99, 2)} | ${pair(h.added.p50, h.added.p99)} | ${pair(h.relay?.hopMsP50, h.relay?.hopMsP99)} | ${h.framesLost} | ${percent(h.cpu.origin)} (+ ${percent(h.cpu.gst)}) | ${percent(h.cpu.edge)} | ${percent(h.cpu.nats)} | ${h.loadavg[0]?.toFixed(2)} |`;
}

export const SPREAD_HEADER = [
  "| viewers | layout | client processes | delivery p50 / p99, ms | skipped, gaps, lost | origin CPU (+ gst) | each edge's CPU | NATS CPU | clients CPU, all | total | load (1 min) | |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|",
];

export function oneProcessRow(r: ClusterResults["oneProcess"][number]): string {
  const total = r.cpu.server + r.cpu.gst + r.cpu.clients;
  return `| ${r.viewers} | one process | ${r.clientProcesses} | ${pair(r.healthy.delayP50Ms, r.healthy.delayP99Ms)} | ${totalSkipped(r.skipped)}, ${r.healthy.gaps}, – | ${percent(r.cpu.server)} (+ ${percent(r.cpu.gst)}) | – | – | ${percent(r.cpu.clients)} | ${percent(total)} | ${r.loadavg[0]?.toFixed(2)} | ${verdict(r.breaks)} |`;
}

export function spreadRow(r: SpreadRun): string {
  const total = r.cpu.origin + r.cpu.gst + r.cpu.edges.reduce((a, b) => a + b, 0) + r.cpu.nats + r.cpu.clients;
  const gaps = r.perEdge.reduce((n, e) => n + e.healthy.gaps, 0);
  return `| ${r.viewers} | 1 origin + ${r.edges} edges | ${r.clientProcesses} | ${pair(r.healthy.delayP50Ms, r.healthy.delayP99Ms)} | ${r.skipped}, ${gaps}, ${r.framesLost} | ${percent(r.cpu.origin)} (+ ${percent(r.cpu.gst)}) | ${r.cpu.edges.map(fmt).join(", ")} % | ${percent(r.cpu.nats)} | ${percent(r.cpu.clients)} | ${percent(total)} | ${r.loadavg[0]?.toFixed(2)} | ${verdict(r.breaks)} |`;
}

export const PER_CORE_HEADER = [
  "| viewers | layout | viewers per serving process | its CPU (mean) | viewers per core of a serving process | delivery p99 there (worst), ms |",
  "|---|---|---|---|---|---|",
];

/** What one serving process holds per core of CPU: the figure to scale to edges on machines of their own. */
export function perCoreRows(c: ClusterResults): string[] {
  const rows: string[] = [];
  for (const r of c.oneProcess) {
    rows.push(`| ${r.viewers} | one process (its gst apart) | ${r.viewers} | ${percent(r.cpu.server)} | ${(r.viewers / (r.cpu.server / 100)).toFixed(0)} | ${fmt(r.healthy.delayP99Ms)} |`);
  }
  for (const r of c.spread) {
    const mean = r.cpu.edges.reduce((a, b) => a + b, 0) / r.edges;
    const worst = Math.max(...r.perEdge.map((e) => e.healthy.delayP99Ms ?? NaN));
    rows.push(`| ${r.viewers} | 1 origin + ${r.edges} edges | ${(r.viewers / r.edges).toFixed(0)} | ${percent(mean)} | ${(r.viewers / r.edges / (mean / 100)).toFixed(0)} | ${fmt(worst)} |`);
  }
  return rows;
}

/** The section's tables for docs/benchmarks.md, from its results. */
export function clusterTables(c: ClusterResults): string[] {
  const out: string[] = [];
  if (c.hop !== null) {
    out.push(
      `Hop: one origin and one edge on one nats-server, ${c.hop.viewersEach} acking /ws/ viewers at each, one ${c.hop.seconds} s window (CPU in % of one core):`,
      "",
      ...HOP_HEADER,
      hopRow(c.hop),
      "",
    );
  }
  if (c.faults !== undefined && c.faults.length > 0) {
    out.push(
      "Faults: a 3-node NATS cluster, one origin and one edge given every node, 3 viewers at the edge, keyframe interval 1 s; the node the origin (then the edge) is connected to is killed, and started again 5 s later:",
      "",
      ...FAULT_HEADER,
      ...faultRows(c.faults),
      "",
    );
  }
  if (c.oneProcess.length || c.spread.length) {
    const seconds = c.spread[0]?.seconds ?? c.oneProcess[0]?.seconds;
    out.push(
      `Viewers of one 640×480@30 1.5 Mbit/s stream: one process serving all of them, and spread evenly over the edges of one origin (which serves none) on one nats-server, ${seconds} s each (CPU in % of one core; everything on this machine's cores):`,
      "",
      ...SPREAD_HEADER,
    );
    for (const n of [...new Set([...c.oneProcess.map((r) => r.viewers), ...c.spread.map((r) => r.viewers)])]) {
      out.push(...c.oneProcess.filter((r) => r.viewers === n).map(oneProcessRow), ...c.spread.filter((r) => r.viewers === n).map(spreadRow));
    }
    out.push("", "Per serving process (what one edge on a machine of its own would carry per core, before its own event loop is the limit):", "", ...PER_CORE_HEADER, ...perCoreRows(c));
  }
  return out;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const file = process.argv[2] ?? fileURLToPath(new URL("./results/latest.json", import.meta.url));
  const results = JSON.parse(readFileSync(file, "utf8")) as { cluster?: ClusterResults };
  if (results.cluster === undefined) {
    console.error(`${file} has no cluster section (npm run bench -- --only cluster)`);
    process.exit(1);
  }
  console.log(clusterTables(results.cluster).join("\n"));
}
