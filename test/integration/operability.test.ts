// Operability of the real server with a real pipeline: GET /metrics parsed as Prometheus text while
// real `ws` viewers play, GET /healthz, the JSON log lines on stderr, and the security headers.

import parsePrometheusTextFormat, { type PromFamily, type PromSample } from "parse-prometheus-text-format";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";
import { sleep, until, waitFor } from "../helpers/until.js";
import { connectViewer, startAcking, type TestViewer } from "../helpers/ws-viewer.js";

interface Scrape {
  readonly contentType: string | null;
  readonly families: readonly PromFamily[];
}

async function scrape(server: ServerProcess): Promise<Scrape> {
  const res = await fetch(server.url + "metrics");
  expect(res.status).toBe(200);
  // The parser throws on any line that is not Prometheus text format.
  return { contentType: res.headers.get("content-type"), families: parsePrometheusTextFormat(await res.text()) };
}

function family(s: Scrape, name: string): PromFamily {
  const f = s.families.find((x) => x.name === name);
  if (!f) throw new Error(`no metric family ${name}`);
  return f;
}

function sample(s: Scrape, name: string, labels: Record<string, string>): PromSample {
  const found = family(s, name).metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  if (!found) throw new Error(`no ${name} sample with ${JSON.stringify(labels)}`);
  return found;
}

/** True if the sample's labels are these and no others. */
function hasExactly(m: PromSample, labels: Record<string, string>): boolean {
  const own = m.labels ?? {};
  return Object.keys(own).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => own[k] === v);
}

const value = (s: Scrape, name: string, labels: Record<string, string> = {}): number => Number(sample(s, name, labels).value);

/**
 * A histogram's buckets as [upper bound, cumulative count], by bound; the +Inf bucket counts every
 * observation. (This parser folds a labelled histogram's samples into one entry keyed by `le`,
 * dropping _sum and _count; with one stream the buckets are that stream's.)
 */
function histogramBuckets(s: Scrape, name: string): [number, number][] {
  const buckets = family(s, name).metrics[0]?.buckets ?? {};
  // Sorted by bound: an object puts integer-like keys ("1", "5", "10") before the others.
  return Object.entries(buckets)
    .map(([le, n]): [number, number] => [le === "+Inf" ? Infinity : Number(le), Number(n)])
    .sort((a, b) => a[0] - b[0]);
}

type LogLine = Record<string, unknown> & { level: string; msg: string; time: string };

function logLines(server: ServerProcess): LogLine[] {
  return server
    .stderr()
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as LogLine);
}

describe("operability", () => {
  let server: ServerProcess;
  const viewers: TestViewer[] = [];
  const stops: (() => void)[] = [];

  beforeAll(async () => {
    server = await startServerProcess(["--source", "test", "--size", "160x120", "--fps", "30", "--keyframe-interval", "1"]);
  });
  afterAll(async () => {
    stops.forEach((stop) => stop());
    for (const v of viewers) v.close();
    await stopAllServers();
  });

  it("/metrics parses as Prometheus text and its counters move while a stream plays", async () => {
    const v = await connectViewer(server.wsBase + "ws/cam0");
    viewers.push(v);
    stops.push(startAcking(v));
    const webm = new WebSocket(server.wsBase + "webm/cam0");
    stops.push(() => webm.terminate());
    await new Promise((resolve, reject) => webm.once("open", resolve).once("error", reject));
    await v.waitForFrames(15);
    await waitFor(() => v.ws.readyState === WebSocket.OPEN && v.frames().length > 20, 10_000, "acked frames");

    const cam0 = { stream: "cam0" };
    const lagCount = (s: Scrape): number => histogramBuckets(s, "canvascast_viewer_lag_seconds").find(([le]) => le === Infinity)?.[1] ?? NaN;
    const first = await scrape(server);
    // Scrape again until the pipeline's counters and the lag histogram's count (one observation per
    // ack, every 100 ms) have all moved past the first scrape; the checks below read that second scrape.
    const second = await until("frames, bytes and lag observations to grow past the first scrape", 10_000, async () => {
      const s = await scrape(server);
      const grew = (name: string): boolean => value(s, name, cam0) > value(first, name, cam0);
      return grew("canvascast_pipeline_frames_total") && grew("canvascast_pipeline_bytes_total") && lagCount(s) > lagCount(first) ? s : undefined;
    });

    expect(first.contentType).toBe("text/plain; version=0.0.4; charset=utf-8");
    for (const name of ["canvascast_pipeline_frames_total", "canvascast_pipeline_bytes_total"]) {
      expect(value(first, name, cam0), name).toBeGreaterThan(0);
      expect(value(second, name, cam0), name).toBeGreaterThan(value(first, name, cam0));
    }
    expect(value(second, "canvascast_viewers", { stream: "cam0", mode: "ws" })).toBe(1);
    expect(value(second, "canvascast_viewers", { stream: "cam0", mode: "webm" })).toBe(1);
    expect(value(second, "canvascast_pipeline_restarts_total", cam0)).toBe(0);
    expect(value(second, "canvascast_stream_state", { stream: "cam0", state: "live" })).toBe(1);
    expect(value(second, "canvascast_stream_state", { stream: "cam0", state: "offline" })).toBe(0);
    expect(value(second, "canvascast_gop_cache_frames", cam0)).toBeGreaterThan(0);
    expect(value(second, "canvascast_gop_cache_bytes", cam0)).toBeGreaterThan(0);
    // Skips are counted per encoding, mode and reason, all present from the start: each series is in the scrape
    // exactly once, with exactly these labels, and its value is a number.
    for (const [when, scraped] of [["first", first], ["second", second]] as const) {
      const skipped = family(scraped, "canvascast_frames_skipped_total");
      for (const [mode, reason] of [["ws", "lagging"], ["ws", "buffer-full"], ["webm", "lagging"], ["webm", "buffer-full"]] as const) {
        const labels = { stream: "cam0", encoding: "full", mode, reason };
        const series = skipped.metrics.filter((m) => hasExactly(m, labels));
        const name = `${when} scrape: canvascast_frames_skipped_total${JSON.stringify(labels)}`;
        expect(series, name).toHaveLength(1);
        expect(Number.isFinite(Number(series[0]!.value)), `${name} = ${series[0]!.value}`).toBe(true);
      }
    }

    // The acking viewer's lag is observed at each ack (every 100 ms): more observations in the second scrape.
    const lagAfter = histogramBuckets(second, "canvascast_viewer_lag_seconds");
    expect(lagCount(first)).toBeGreaterThan(0);
    expect(lagCount(second)).toBeGreaterThan(lagCount(first));
    expect(lagAfter.map(([le]) => le)).toEqual([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, Infinity]);
    const counts = lagAfter.map(([, n]) => n);
    expect(counts).toEqual([...counts].sort((a, b) => a - b)); // cumulative

    // Every canvascast metric says what it is; counters end in _total.
    for (const f of second.families.filter((x) => x.name.startsWith("canvascast_"))) {
      expect(f.help, f.name).not.toBe("");
      if (f.type === "COUNTER") expect(f.name).toMatch(/_total$/);
    }
    // Process metrics under their standard names.
    expect(value(second, "process_cpu_seconds_total")).toBeGreaterThan(0);
    expect(value(second, "process_resident_memory_bytes")).toBeGreaterThan(0);
    expect(family(second, "nodejs_heap_size_used_bytes").type).toBe("GAUGE");
  });

  it("/healthz answers ok with each stream's state; /metrics and /healthz take only GET and HEAD", async () => {
    const res = await fetch(server.url + "healthz");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ status: "ok", streams: { cam0: "live" } });

    const head = await fetch(server.url + "metrics", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    for (const path of ["metrics", "healthz"]) {
      const post = await fetch(server.url + path, { method: "POST" });
      expect(post.status).toBe(405);
      expect(post.headers.get("allow")).toBe("GET, HEAD");
      expect(((await post.json()) as { error: string }).error).toBe("CC_ERR_METHOD");
    }
  });

  it("writes its log to stderr as JSON lines, one per viewer connect and disconnect with stream, mode, address and close reason", async () => {
    const v = await connectViewer(server.wsBase + "ws/cam0");
    await v.waitForFrames(1);
    v.ws.close(1000, "bye now");
    await v.closed;
    const webm = new WebSocket(server.wsBase + "webm/cam0");
    await new Promise((resolve, reject) => webm.once("open", resolve).once("error", reject));
    webm.close(1000, "bye webm");
    await new Promise((resolve) => webm.once("close", resolve));
    const unknown = await connectViewer(server.wsBase + "ws/nope");
    await unknown.closed;
    await waitFor(
      () => logLines(server).some((l) => l.msg === "viewer refused: unknown stream") && logLines(server).some((l) => l.reason === "bye webm"),
      5000,
      "the refusal and the WebM viewer's disconnect to be logged",
    );

    const lines = logLines(server); // every line parses as JSON
    for (const line of lines) {
      expect(["debug", "info", "warn", "error"]).toContain(line.level);
      expect(typeof line.msg).toBe("string");
      expect(line.pid).toBe(server.pid);
      expect(new Date(line.time).toISOString()).toBe(line.time);
    }
    for (const [mode, reason] of [["ws", "bye now"], ["webm", "bye webm"]] as const) {
      const disconnected = lines.filter((l) => l.msg === "viewer disconnected" && l.reason === reason);
      expect(disconnected).toHaveLength(1);
      const connected = lines.filter((l) => l.msg === "viewer connected" && l.viewer === disconnected[0]!.viewer && l.mode === mode);
      expect(connected).toHaveLength(1);
      expect(connected[0]).toMatchObject({ level: "info", stream: "cam0", mode, remote: "127.0.0.1" });
      expect(disconnected[0]).toMatchObject({ level: "info", stream: "cam0", mode, remote: "127.0.0.1", code: 1000 });
    }
    expect(lines.find((l) => l.msg === "viewer refused: unknown stream")).toMatchObject({ stream: "nope", mode: "ws", remote: "127.0.0.1" });
    // stdout keeps the plain start-up lines.
    expect(server.output()).toMatch(/^canvascast: serving on http:\/\/127\.0\.0\.1:\d+\/$/m);
  });

  it("sends the dashboard with its security headers and keeps the player module loadable from other origins", async () => {
    for (const path of ["", "canvascast.js"]) {
      const res = await fetch(server.url + path);
      expect(res.status).toBe(200);
      const csp = res.headers.get("content-security-policy") ?? "";
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("connect-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain("unsafe");
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    }
    const module = await fetch(server.url + "canvascast.js", { headers: { Origin: "http://page.test" } });
    expect(module.headers.get("access-control-allow-origin")).toBe("*");
  });
});

describe("/healthz with a stream whose camera is missing", () => {
  afterAll(stopAllServers);

  it("still answers ok: the server is healthy, and the body says the stream is offline", async () => {
    const server = await startServerProcess(["--source", "v4l2:/dev/video9"]);
    const health = async (): Promise<{ status: number; body: unknown }> => {
      const res = await fetch(server.url + "healthz");
      return { status: res.status, body: await res.json() };
    };
    let last = await health();
    const deadline = Date.now() + 10_000;
    while ((last.body as { streams: Record<string, string> }).streams.cam0 !== "offline" && Date.now() < deadline) {
      await sleep(100);
      last = await health();
    }
    expect(last).toEqual({ status: 200, body: { status: "ok", streams: { cam0: "offline" } } });
  });
});

describe("/metrics and /healthz with tokens", () => {
  const ALL = "ops-test-token-every-stream";
  const DOOR = "ops-test-token-door-only";
  afterAll(stopAllServers);

  it("need a token; one limited to some streams sees only those in /healthz and is refused /metrics", async () => {
    const server = await startServerProcess([
      "--stream", "door=test",
      "--stream", "yard=test:ball",
      "--size", "160x120",
      "--token", ALL,
      "--token", `${DOOR}:door`,
    ]);
    const get = async (path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> => {
      const res = await fetch(server.url + path, { headers });
      return { status: res.status, body: await res.text() };
    };
    const code = (r: { body: string }): string => (JSON.parse(r.body) as { error: string }).error;

    for (const path of ["metrics", "healthz", "metrics?token=wrong-token-0123456789"]) {
      const r = await get(path);
      expect(r.status, path).toBe(401);
      expect(code(r)).toBe("CC_ERR_UNAUTHORIZED");
    }
    const limited = await get(`healthz?token=${DOOR}`);
    expect(limited.status).toBe(200);
    expect(Object.keys((JSON.parse(limited.body) as { streams: object }).streams)).toEqual(["door"]);
    const refused = await get(`metrics?token=${DOOR}`);
    expect(refused.status).toBe(403);
    expect(code(refused)).toBe("CC_ERR_FORBIDDEN_STREAM");

    const full = await get("healthz", { Authorization: `Bearer ${ALL}` });
    expect(Object.keys((JSON.parse(full.body) as { streams: object }).streams).sort()).toEqual(["door", "yard"]);
    const metrics = await get("metrics", { Authorization: `Bearer ${ALL}` });
    expect(metrics.status).toBe(200);
    const frames = parsePrometheusTextFormat(metrics.body).find((f) => f.name === "canvascast_pipeline_frames_total");
    expect(frames?.metrics.map((m) => m.labels?.stream).sort()).toEqual(["door", "yard"]);
    // Every refusal above is counted by its code.
    const refusedTotal = parsePrometheusTextFormat(metrics.body).find((f) => f.name === "canvascast_requests_refused_total");
    const refusedByCode: Record<string, number> = {};
    for (const m of refusedTotal?.metrics ?? []) refusedByCode[m.labels?.code ?? ""] = Number(m.value);
    expect(refusedByCode).toEqual({ CC_ERR_UNAUTHORIZED: 3, CC_ERR_FORBIDDEN_STREAM: 1 });

    // The refusals are logged, as JSON lines, without the tokens.
    await waitFor(() => logLines(server).filter((l) => l.msg === "request refused").length >= 4, 5000, "the refusals to be logged");
    expect(server.stderr()).not.toContain(DOOR);
    expect(server.stderr()).not.toContain(ALL);
  });
});
