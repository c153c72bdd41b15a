// Fan-out for the benchmarks: one stream, N plain `ws` viewers spread over several client
// processes (bench/clients.ts, at most VIEWERS_PER_PROCESS each), so that no single client process
// is what saturates first. All processes connect, then measure the same window; the server's CPU,
// its gst child's and every client process's are read from /proc over that window, server RSS is
// sampled each second, and the delivery delays of all viewers are pooled. measureClientWindow does
// the same for viewers of several servers at once (the cluster section's origin and edges).

import { spawn, type ChildProcess } from "node:child_process";
import { loadavg } from "node:os";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { childPids, startServerProcess } from "../test/helpers/server-process.js";
import { DelayHistogram, type ClientsReport, type SlowKind } from "./delay-histogram.js";
import { cpuSeconds, rssMiB } from "./proc.js";

const CLIENTS = fileURLToPath(new URL("./clients.ts", import.meta.url));
/** At 800 viewers one Node client process was as busy as the server: keep each well below that. */
export const VIEWERS_PER_PROCESS = 250;

export interface ViewersResult {
  readonly viewers: number;
  readonly throttled: number;
  readonly seconds: number;
  readonly clientProcesses: number;
  readonly healthy: { framesPerViewer: number; gaps: number; delayP50Ms: number | null; delayP99Ms: number | null; delayMaxMs: number | null };
  readonly slowKind: SlowKind;
  readonly slow: { framesPerViewer: number; skippedNotices: number; lagP50Ms: number | null; lagMaxMs: number | null };
  readonly rssMiB: { start: number; max: number; end: number };
  /** % of one core over the window; `clients` is all client processes together. */
  readonly cpu: { server: number; gst: number; clients: number; clientsPerProcess: number[] };
  /** Frames the server skipped for these viewers during the window, by reason. */
  readonly skipped: Record<string, number>;
  /** 1, 5 and 15 minute load averages when the window ended (2 cores here). */
  readonly loadavg: number[];
}

interface ClientProcess {
  readonly child: ChildProcess;
  readonly lines: AsyncIterator<string>;
}

/** The fan-out's stream: the test pattern at 640×480@30, 1.5 Mbit/s (the default 320×240 tile encoded too). */
export const STREAM_ARGS = ["--source", "test", "--size", "640x480", "--fps", "30", "--bitrate", "1500"] as const;

/** All viewers connect at once from one address: the per-address rate limit and the viewer caps lifted for `viewers`. */
export const viewerLimits = (viewers: number): string[] => ["--max-connections-per-second", "0", "--max-viewers-per-stream", String(Math.max(1, viewers)), "--max-viewers", String(Math.max(1, viewers))];

/** What a throttled viewer reads: half the 1.5 Mbit/s target. */
const THROTTLED_BYTES_PER_SECOND = 1_500_000 / 8 / 2;

function startClients(wsUrl: string, viewers: number, throttled: number, seconds: number, slowKind: SlowKind): ClientProcess {
  const args = [CLIENTS, wsUrl, String(viewers), String(throttled), String(seconds), String(THROTTLED_BYTES_PER_SECOND), slowKind];
  const child = spawn(process.execPath, ["--import", "tsx", ...args], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  return { child, lines: createInterface({ input: child.stdout })[Symbol.asyncIterator]() };
}

async function nextLine(p: ClientProcess, timeoutMs: number, what: string): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`client process ${p.child.pid}: no ${what} within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const r = await Promise.race([p.lines.next(), timeout]);
    if (r.done === true) throw new Error(`client process ${p.child.pid} exited before ${what}`);
    return r.value;
  } finally {
    clearTimeout(timer);
  }
}

async function skippedSoFar(serverUrl: string): Promise<Record<string, number>> {
  const res = await fetch(`${serverUrl}api/streams`);
  const body = (await res.json()) as { streams: { skipped: Record<string, number> }[] };
  return body.streams[0]?.skipped ?? {};
}

/** Splits `n` into `parts` near-equal whole numbers. */
export const split = (n: number, parts: number): number[] => Array.from({ length: parts }, (_, i) => Math.floor(n / parts) + (i < n % parts ? 1 : 0));

/** Viewers of one server: its stream socket's URL and how many connect there (`throttled` of them slow). */
export interface ViewerTarget {
  readonly wsUrl: string;
  readonly viewers: number;
  readonly throttled: number;
}

/** What one measurement window gave: each target's client reports, and CPU in % of one core. */
export interface ClientWindow {
  /** Per target, in the order given: the reports of its client processes. */
  readonly reports: readonly (readonly ClientsReport[])[];
  /** Each watched process's CPU, by the name it was given. */
  readonly cpu: Record<string, number>;
  readonly clientsPerProcess: number[];
  readonly clientProcesses: number;
}

/**
 * Client processes for the viewers of every target (⌈viewers / VIEWERS_PER_PROCESS⌉ per target),
 * all connected first; then one window of `seconds` over which the CPU of the `watched` processes
 * (undefined: not there, 0) and of every client process is read from /proc. `before` runs just
 * before the window, `after` just after it (counters read from the servers).
 */
export async function measureClientWindow(
  targets: readonly ViewerTarget[],
  seconds: number,
  slowKind: SlowKind,
  watched: Readonly<Record<string, number | undefined>>,
  hooks: { before?: () => Promise<void> | void; after?: () => Promise<void> | void } = {},
): Promise<ClientWindow> {
  const clients: ClientProcess[] = [];
  const owner: number[] = [];
  try {
    targets.forEach((t, i) => {
      const processes = Math.max(1, Math.ceil(t.viewers / VIEWERS_PER_PROCESS));
      const counts = split(t.viewers, processes);
      const slowCounts = split(t.throttled, processes);
      for (let k = 0; k < processes; k++) {
        clients.push(startClients(t.wsUrl, counts[k]!, slowCounts[k]!, seconds, slowKind));
        owner.push(i);
      }
    });
    await Promise.all(clients.map((c) => nextLine(c, 120_000, "ready")));
    // Every viewer is connected and past its replayed GOP: measure from here.
    await new Promise((r) => setTimeout(r, 1000));
    await hooks.before?.();
    const names = Object.keys(watched);
    const cpu = (): { at: number; watched: number[]; clients: number[] } => ({
      at: performance.now(),
      watched: names.map((n) => (watched[n] === undefined ? 0 : cpuSeconds(watched[n]))),
      clients: clients.map((c) => cpuSeconds(c.child.pid!)),
    });
    const start = cpu();
    for (const c of clients) c.child.stdin!.write("go\n");
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const end = cpu();
    await hooks.after?.();
    const reports = (await Promise.all(clients.map((c) => nextLine(c, 60_000, "report")))).map((l) => JSON.parse(l) as ClientsReport);
    const wall = (end.at - start.at) / 1000;
    const pct = (used: number): number => (100 * used) / wall;
    return {
      reports: targets.map((_, i) => reports.filter((_, k) => owner[k] === i)),
      cpu: Object.fromEntries(names.map((n, i) => [n, pct(end.watched[i]! - start.watched[i]!)])),
      clientsPerProcess: end.clients.map((t, i) => pct(t - start.clients[i]!)),
      clientProcesses: clients.length,
    };
  } finally {
    for (const c of clients) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGKILL");
  }
}

/** The healthy viewers' figures, pooled over client reports. */
export function healthyOf(reports: readonly ClientsReport[]): ViewersResult["healthy"] {
  const delays = new DelayHistogram();
  for (const r of reports) delays.merge(r.healthy.delays);
  const viewers = reports.reduce((n, r) => n + r.healthy.viewers, 0);
  return {
    framesPerViewer: viewers ? reports.reduce((n, r) => n + r.healthy.frames, 0) / viewers : 0,
    gaps: reports.reduce((n, r) => n + r.healthy.gaps, 0),
    delayP50Ms: delays.percentile(50),
    delayP99Ms: delays.percentile(99),
    delayMaxMs: delays.percentile(100),
  };
}

/** Counters after minus before, by key. */
export const countsSince = (before: Record<string, number>, after: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(after).map(([k, n]) => [k, n - (before[k] ?? 0)]));

/**
 * N viewers of one 640×480@30 1.5 Mbit/s stream (K of them throttled to half its bitrate) for
 * `seconds`, in ⌈N / VIEWERS_PER_PROCESS⌉ client processes.
 */
export async function measureViewers(
  viewers: number,
  throttled: number,
  seconds: number,
  slowKind: SlowKind = "ws-acks",
  /** Another build's server entry (dist/server/main.js of an older checkout), for before/after figures. */
  serverMain?: string,
): Promise<ViewersResult> {
  const server = await startServerProcess([...STREAM_ARGS, ...viewerLimits(viewers)], 20_000, serverMain);
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const [gst] = childPids(server.pid, "gst-launch-1.0");
    let skipped0: Record<string, number> = {};
    let skipped1: Record<string, number> = {};
    const rss: number[] = [];
    let sampler: NodeJS.Timeout | undefined;
    const w = await measureClientWindow([{ wsUrl: `${server.wsBase}ws/cam0`, viewers, throttled }], seconds, slowKind, { server: server.pid, gst }, {
      before: async () => {
        skipped0 = await skippedSoFar(server.url);
        rss.push(rssMiB(server.pid));
        sampler = setInterval(() => rss.push(rssMiB(server.pid)), 1000);
      },
      after: async () => {
        clearInterval(sampler);
        skipped1 = await skippedSoFar(server.url);
      },
    }).finally(() => clearInterval(sampler));
    const reports = w.reports[0]!;
    const slowViewers = reports.reduce((n, r) => n + r.slow.viewers, 0);
    const slowLags = reports.map((r) => r.slow.lagMaxMs).filter((x): x is number => x !== null);
    const slowP50s = reports.map((r) => r.slow.lagP50Ms).filter((x): x is number => x !== null);
    return {
      viewers,
      throttled,
      seconds,
      clientProcesses: w.clientProcesses,
      slowKind,
      healthy: healthyOf(reports),
      slow: {
        framesPerViewer: slowViewers ? reports.reduce((n, r) => n + r.slow.frames, 0) / slowViewers : 0,
        skippedNotices: reports.reduce((n, r) => n + r.slow.skippedNotices, 0),
        lagP50Ms: slowP50s.length ? Math.max(...slowP50s) : null,
        lagMaxMs: slowLags.length ? Math.max(...slowLags) : null,
      },
      rssMiB: { start: rss[0]!, max: Math.max(...rss), end: rss.at(-1)! },
      cpu: {
        server: w.cpu.server!,
        gst: w.cpu.gst!,
        clients: w.clientsPerProcess.reduce((a, b) => a + b, 0),
        clientsPerProcess: w.clientsPerProcess,
      },
      skipped: countsSince(skipped0, skipped1),
      loadavg: loadavg(),
    };
  } finally {
    await server.stop();
  }
}

/** Frames skipped, summed over reasons. */
export const totalSkipped = (skipped: Record<string, number>): number => Object.values(skipped).reduce((a, b) => a + b, 0);

/**
 * Why a window of viewers counts as broken (empty: it held): delivery p99 over a frame at 30 fps,
 * any frame skipped or sequence gap, or one of the servers' processes near a full core (its
 * JavaScript runs on one thread: there it cannot keep up for long).
 */
export function deliveryBreaks(healthy: ViewersResult["healthy"], skipped: number, servers: readonly (readonly [string, number])[]): string[] {
  const why: string[] = [];
  if ((healthy.delayP99Ms ?? Infinity) > 33) why.push(`delivery p99 ${healthy.delayP99Ms?.toFixed(1) ?? "–"} ms > 33 ms`);
  if (skipped > 0 || healthy.gaps > 0) why.push(`${skipped} frames skipped, ${healthy.gaps} gaps`);
  for (const [name, cpu] of servers) if (cpu >= 90) why.push(`${name} at ${cpu.toFixed(0)} % of a core`);
  return why;
}

/** Why a fan-out step counts as broken (empty: it held). */
export const fanoutBreaks = (r: ViewersResult): string[] => deliveryBreaks(r.healthy, totalSkipped(r.skipped), [["server", r.cpu.server]]);
