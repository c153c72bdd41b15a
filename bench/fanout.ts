// Fan-out for the benchmarks: one stream, N plain `ws` viewers spread over several client
// processes (bench/clients.ts, at most VIEWERS_PER_PROCESS each), so that no single client process
// is what saturates first. All processes connect, then measure the same window; the server's CPU,
// its gst child's and every client process's are read from /proc over that window, server RSS is
// sampled each second, and the delivery delays of all viewers are pooled.

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
const split = (n: number, parts: number): number[] => Array.from({ length: parts }, (_, i) => Math.floor(n / parts) + (i < n % parts ? 1 : 0));

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
  // All viewers connect at once from one address: lift the per-address rate limit and the viewer caps.
  const limits = ["--max-connections-per-second", "0", "--max-viewers-per-stream", String(viewers), "--max-viewers", String(viewers)];
  const server = await startServerProcess(["--source", "test", "--size", "640x480", "--fps", "30", "--bitrate", "1500", ...limits], 20_000, serverMain);
  const clients: ClientProcess[] = [];
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const [gst] = childPids(server.pid, "gst-launch-1.0");
    const processes = Math.max(1, Math.ceil(viewers / VIEWERS_PER_PROCESS));
    const counts = split(viewers, processes);
    const slowCounts = split(throttled, processes);
    for (let i = 0; i < processes; i++) clients.push(startClients(`${server.wsBase}ws/cam0`, counts[i]!, slowCounts[i]!, seconds, slowKind));
    await Promise.all(clients.map((c) => nextLine(c, 120_000, "ready")));
    // Every viewer is connected and past its replayed GOP: measure from here.
    await new Promise((r) => setTimeout(r, 1000));
    const skipped0 = await skippedSoFar(server.url);
    const rss: number[] = [rssMiB(server.pid)];
    const sampler = setInterval(() => rss.push(rssMiB(server.pid)), 1000);
    const cpu = (): { at: number; server: number; gst: number; clients: number[] } => ({
      at: performance.now(),
      server: cpuSeconds(server.pid),
      gst: gst === undefined ? 0 : cpuSeconds(gst),
      clients: clients.map((c) => cpuSeconds(c.child.pid!)),
    });
    const start = cpu();
    for (const c of clients) c.child.stdin!.write("go\n");
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const end = cpu();
    clearInterval(sampler);
    const skipped1 = await skippedSoFar(server.url);
    const reports = (await Promise.all(clients.map((c) => nextLine(c, 60_000, "report")))).map((l) => JSON.parse(l) as ClientsReport);
    const wall = (end.at - start.at) / 1000;
    const pct = (used: number): number => (100 * used) / wall;
    const delays = new DelayHistogram();
    for (const r of reports) delays.merge(r.healthy.delays);
    const healthyViewers = reports.reduce((n, r) => n + r.healthy.viewers, 0);
    const slowViewers = reports.reduce((n, r) => n + r.slow.viewers, 0);
    const slowLags = reports.map((r) => r.slow.lagMaxMs).filter((x): x is number => x !== null);
    const slowP50s = reports.map((r) => r.slow.lagP50Ms).filter((x): x is number => x !== null);
    const clientsPerProcess = end.clients.map((t, i) => pct(t - start.clients[i]!));
    return {
      viewers,
      throttled,
      seconds,
      clientProcesses: processes,
      slowKind,
      healthy: {
        framesPerViewer: healthyViewers ? reports.reduce((n, r) => n + r.healthy.frames, 0) / healthyViewers : 0,
        gaps: reports.reduce((n, r) => n + r.healthy.gaps, 0),
        delayP50Ms: delays.percentile(50),
        delayP99Ms: delays.percentile(99),
        delayMaxMs: delays.percentile(100),
      },
      slow: {
        framesPerViewer: slowViewers ? reports.reduce((n, r) => n + r.slow.frames, 0) / slowViewers : 0,
        skippedNotices: reports.reduce((n, r) => n + r.slow.skippedNotices, 0),
        lagP50Ms: slowP50s.length ? Math.max(...slowP50s) : null,
        lagMaxMs: slowLags.length ? Math.max(...slowLags) : null,
      },
      rssMiB: { start: rss[0]!, max: Math.max(...rss), end: rss.at(-1)! },
      cpu: {
        server: pct(end.server - start.server),
        gst: pct(end.gst - start.gst),
        clients: clientsPerProcess.reduce((a, b) => a + b, 0),
        clientsPerProcess,
      },
      skipped: Object.fromEntries(Object.entries(skipped1).map(([reason, n]) => [reason, n - (skipped0[reason] ?? 0)])),
      loadavg: loadavg(),
    };
  } finally {
    for (const c of clients) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGKILL");
    await server.stop();
  }
}

/** Why a fan-out step counts as broken (empty: it held). */
export function fanoutBreaks(r: ViewersResult): string[] {
  const why: string[] = [];
  if ((r.healthy.delayP99Ms ?? Infinity) > 33) why.push(`delivery p99 ${r.healthy.delayP99Ms?.toFixed(1) ?? "–"} ms > 33 ms`);
  const skipped = Object.values(r.skipped).reduce((a, b) => a + b, 0);
  if (skipped > 0 || r.healthy.gaps > 0) why.push(`${skipped} frames skipped, ${r.healthy.gaps} gaps`);
  // The server's JavaScript runs on one thread: near a full core it cannot keep up for long.
  if (r.cpu.server >= 90) why.push(`server at ${r.cpu.server.toFixed(0)} % of a core`);
  return why;
}
