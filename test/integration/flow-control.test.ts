// Flow control for every client: viewers written from docs/protocol.md alone (a Python client that
// answers pings, as every WebSocket client must, and does nothing else it is not asked to) read
// the real server's stream at 10–90 % of its bitrate, through small and default kernel receive
// buffers, some after a 6 s stall: acking /ws/ viewers, /ws/ viewers that never ack, and /webm/
// readers that never send. Each must stay live, get a picture at least every keyframe interval
// + 1 s, and decode every frame it got; healthy viewers on the same stream see no gap.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StreamsResponse } from "../../shared/api.js";
import { startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";
import { killSpecClients, runSpecClient, type SpecClientOptions, type SpecRun } from "../helpers/spec-client.js";
import { until } from "../helpers/until.js";
import { decodedPictureCount, decodedWebmPictureCount } from "../helpers/vp8-decode.js";
import { readWebm } from "../helpers/webm-reader.js";
import { connectViewer, type TestViewer } from "../helpers/ws-viewer.js";

const WIDTH = 640;
const HEIGHT = 480;
const KEYFRAME_INTERVAL_MS = 1000;
const RUN_S = 22;
/** "Lag at the end": how old the frames read over the last seconds of a run were. */
const END_WINDOW_MS = 5000;
const LIVE_LIMIT_MS = { ws: 1500, webm: 2000 } as const;
/** A picture at least this often (the keyframe interval + 1 s). */
const PICTURE_EVERY_MS = KEYFRAME_INTERVAL_MS + 1000;
const SMALL_RECEIVE_BUFFER = 8192;

type Kind = "ws-acks" | "ws-no-acks" | "webm";

interface Figures {
  readonly client: string;
  readonly frames: number;
  readonly decoded: number;
  readonly gaps: number;
  readonly maxPictureIntervalMs: number;
  readonly lagAtEndMs: number;
  readonly lagAtEndP50Ms: number;
}

async function streamsOf(server: ServerProcess): Promise<StreamsResponse> {
  return (await (await fetch(server.url + "api/streams")).json()) as StreamsResponse;
}

const portOf = (server: ServerProcess): number => Number(new URL(server.url).port);

function pathOf(kind: Kind): string {
  return kind === "webm" ? "/webm/cam0?meta=1" : "/ws/cam0";
}

/** Longest wait between two pictures (from the open to the first one too), leaving out a stall and its drain. */
function maxPictureInterval(openedAt: number, times: readonly number[], stall?: { from: number; to: number }): number {
  let max = 0;
  let prev = openedAt;
  for (const t of times) {
    const overlapsStall = stall !== undefined && prev < stall.to && t > stall.from;
    // After a stall the viewer still has at most one interval to catch up from its end.
    const gap = overlapsStall ? t - Math.max(prev, stall.to) : t - prev;
    max = Math.max(max, gap);
    prev = t;
  }
  return max;
}

const percentile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;

/** Checks one /ws/ run as the spec promises it, and returns its figures. */
async function checkWsRun(name: string, run: SpecRun, stall?: { from: number; to: number }): Promise<Figures> {
  const frames = run.videoFrames();
  expect(run.close, `${name}: closed by the server`).toBeNull();
  expect(frames.length, `${name}: frames`).toBeGreaterThan(0);
  // The keyframe rule: after any frame it was not sent, the next frame is a keyframe flagged discontinuity.
  let gaps = 0;
  for (let i = 1; i < frames.length; i++) {
    const prev = frames[i - 1]!;
    const cur = frames[i]!;
    if (cur.replay) continue; // a replay starts at its own keyframe
    if (cur.seq !== ((prev.seq + 1) >>> 0)) {
      gaps++;
      expect(cur.key && cur.discontinuity, `${name}: frame ${cur.seq} after ${prev.seq} is a keyframe flagged discontinuity`).toBe(true);
    }
  }
  // Time on the wire only goes forward.
  for (let i = 1; i < frames.length; i++) if (!frames[i]!.replay) expect(frames[i]!.pts).toBeGreaterThan(frames[i - 1]!.pts);
  const decoded = await decodedPictureCount(frames.map((f) => f.data), WIDTH, HEIGHT);
  const lags = frames.flatMap((f) => (f.replay ? [] : [{ at: f.at, lag: f.at - f.serverTime }]));
  return figures(name, run, frames.map((f) => f.at), lags, decoded, gaps, stall);
}

/** One run's figures, from when each frame was read and how old each live one was then. */
function figures(
  name: string,
  run: SpecRun,
  readTimes: readonly number[],
  lags: readonly { at: number; lag: number }[],
  decoded: number,
  gaps: number,
  stall?: { from: number; to: number },
): Figures {
  const endLags = lags.filter((l) => l.at >= run.endedAt - END_WINDOW_MS).map((l) => l.lag).sort((a, b) => a - b);
  return {
    client: name,
    frames: readTimes.length,
    decoded,
    gaps,
    maxPictureIntervalMs: Math.round(maxPictureInterval(run.openedAt!, readTimes, stall)),
    lagAtEndMs: Math.round(endLags.at(-1) ?? NaN),
    lagAtEndP50Ms: Math.round(percentile(endLags, 0.5)),
  };
}

/** Checks one /webm/?meta=1 run: a valid live WebM stream with no hole in its timeline, and its figures. */
async function checkWebmRun(name: string, run: SpecRun, stall?: { from: number; to: number }): Promise<Figures> {
  expect(run.close, `${name}: closed by the server`).toBeNull();
  const [init, ...frames] = run.binaries;
  expect(init, `${name}: init segment`).toBeDefined();
  const metas = run.texts.filter((t) => t.msg.type === "frame").map((t) => t.msg as { serverTime: number; seq: number; mediaTimeMs: number });
  // A frame message before each frame (the run may end between the two).
  expect(metas.length - frames.length, `${name}: a frame message before each frame`).toBeGreaterThanOrEqual(0);
  expect(metas.length - frames.length, `${name}: a frame message before each frame`).toBeLessThanOrEqual(1);
  const bytes = Buffer.concat(run.binaries.map((b) => b.payload));
  const parsed = readWebm(bytes);
  expect(parsed.order.slice(0, 4)).toEqual(["EBML", "Segment?", "Info", "Tracks"]);
  const blocks = parsed.clusters.flatMap((c) => {
    expect(c.blocks[0]?.key, `${name}: cluster at ${c.timestamp} starts with a keyframe`).toBe(true);
    return c.blocks;
  });
  expect(parsed.clusters[0]?.timestamp).toBe(0);
  // No holes: each block one frame (33 or 34 ms at 30 fps) after the one before, across skipped clusters too.
  let gaps = 0;
  for (let i = 1; i < blocks.length; i++) {
    const step = blocks[i]!.time - blocks[i - 1]!.time;
    expect(step, `${name}: block ${i} follows the one before by one frame`).toBeGreaterThanOrEqual(32);
    expect(step, `${name}: block ${i} follows the one before by one frame`).toBeLessThanOrEqual(35);
    if (metas[i]!.seq !== ((metas[i - 1]!.seq + 1) >>> 0)) gaps++;
  }
  const decoded = await decodedWebmPictureCount(bytes);
  const lags = frames.map((f, i) => ({ at: f.at, lag: f.at - metas[i]!.serverTime }));
  return figures(name, run, frames.map((f) => f.at), lags, decoded, gaps, stall);
}

function expectLive(kind: Kind, f: Figures): void {
  expect(f.decoded, `${f.client}: every frame decodes`).toBe(f.frames);
  expect(f.maxPictureIntervalMs, `${f.client}: a picture at least every ${PICTURE_EVERY_MS} ms`).toBeLessThanOrEqual(PICTURE_EVERY_MS);
  // Lag at the end: the median over the last seconds is held to the limit. The worst frame there is
  // held to twice it: the clients share two cores with the server, gst and the suite's other file,
  // and a second without CPU for them (seen once in CI, for every client at once) makes frames late
  // that the server sent in time. A viewer left to fall behind (11–15 s after 30 s before the
  // server measured lag with pings) fails both.
  const limit = LIVE_LIMIT_MS[kind === "webm" ? "webm" : "ws"];
  expect(f.lagAtEndP50Ms, `${f.client}: lag at the end, median`).toBeLessThan(limit);
  expect(f.lagAtEndMs, `${f.client}: lag at the end, worst frame`).toBeLessThan(2 * limit);
}

describe("viewers written from the spec alone, on links slower than the stream", () => {
  let server: ServerProcess;
  /** The stream's real bitrate, bytes per second. */
  let streamBytesPerSecond = 0;

  beforeAll(async () => {
    // No tile encoding: its branch would only take CPU from a dozen clients on 2 cores (encodings.test.ts covers it).
    server = await startServerProcess(["--source", "test", "--size", `${WIDTH}x${HEIGHT}`, "--fps", "30", "--bitrate", "1500", "--keyframe-interval", "1", "--tile", "off"]);
    // The rate the encoder really delivers (CBR settles within a couple of seconds), as the clients' reference.
    const kbps = await until("a settled bitrate", 20_000, async () => {
      const cam0 = (await streamsOf(server)).streams[0];
      return cam0 !== undefined && cam0.framesIn > 90 ? cam0.kbps : undefined;
    });
    streamBytesPerSecond = (kbps * 1000) / 8;
  });
  afterAll(async () => {
    killSpecClients();
    await stopAllServers();
  });

  /**
   * Runs the slow clients and, once they are all connected (starting a dozen processes takes the
   * CPU for a moment), two healthy viewers (/ws/ and /webm/) side by side; checks the healthy ones.
   */
  async function runAll(clients: readonly (SpecClientOptions & { name: string; kind: Kind })[]): Promise<SpecRun[]> {
    const before = (await streamsOf(server)).streams[0]!.viewers;
    // Every client runs to its end even when one fails, so none is left connected for the next test.
    const slow = Promise.allSettled(clients.map((c) => runSpecClient(c))).then((results) =>
      results.map((r) => {
        if (r.status === "rejected") throw r.reason;
        return r.value;
      }),
    );
    await until("the slow clients connected", 20_000, async () => ((await streamsOf(server)).streams[0]!.viewers >= before + clients.length ? true : undefined));
    const healthy: TestViewer = await connectViewer(server.wsBase + "ws/cam0");
    const healthyWebm = runSpecClient({ port: portOf(server), path: "/webm/cam0?meta=1", bytesPerSecond: 50 * streamBytesPerSecond, durationS: RUN_S - 4 });
    try {
      const runs = await slow;
      const hf = healthy.frames();
      expect(hf.length).toBeGreaterThan(300);
      for (let i = 1; i < hf.length; i++) expect(hf[i]!.header.seq, "the healthy /ws/ viewer got every frame").toBe((hf[i - 1]!.header.seq + 1) >>> 0);
      expect(healthy.texts().some((m) => m.type === "skipped"), "the healthy viewer was never skipped").toBe(false);
      const webm = await checkWebmRun("healthy webm", await healthyWebm);
      expect(webm.gaps, "the healthy /webm/ reader got every frame").toBe(0);
      return runs;
    } finally {
      healthy.close();
    }
  }

  function table(figures: readonly Figures[]): string {
    return figures
      .map((f) => `${f.client.padEnd(26)} frames ${String(f.frames).padStart(4)} decoded ${String(f.decoded).padStart(4)} gaps ${String(f.gaps).padStart(3)} max picture interval ${String(f.maxPictureIntervalMs).padStart(5)} ms  lag at end p50 ${String(f.lagAtEndP50Ms).padStart(5)} / max ${String(f.lagAtEndMs).padStart(5)} ms`)
      .join("\n");
  }

  for (const [label, receiveBuffer] of [["small (8 KB) receive buffers", SMALL_RECEIVE_BUFFER], ["default receive buffers", 0]] as const) {
    it(`keeps every slow viewer live at 10–90 % of the bitrate, ${label}`, async () => {
      const kinds: Kind[] = ["ws-acks", "ws-no-acks", "webm"];
      const clients = kinds.flatMap((kind) =>
        [0.1, 0.3, 0.5, 0.9].map((share) => ({
          name: `${kind} ${share * 100}%`,
          kind,
          port: portOf(server),
          path: pathOf(kind),
          bytesPerSecond: share * streamBytesPerSecond,
          receiveBuffer,
          ...(kind === "ws-acks" ? { ackEveryMs: 250 } : {}),
          durationS: RUN_S,
        })),
      );
      const runs = await runAll(clients);
      const figures = await Promise.all(runs.map((run, i) => (clients[i]!.kind === "webm" ? checkWebmRun(clients[i]!.name, run) : checkWsRun(clients[i]!.name, run))));
      console.log(`flow control, ${label}, stream ${Math.round((streamBytesPerSecond * 8) / 1000)} kbit/s:\n${table(figures)}`);
      for (const [i, f] of figures.entries()) expectLive(clients[i]!.kind, f);
    }, 120_000);
  }

  it("brings a viewer back to live after it stops reading for 6 s", async () => {
    const stall = { atS: 6, forS: 6 };
    const kinds: Kind[] = ["ws-acks", "ws-no-acks", "webm"];
    const clients = kinds.map((kind) => ({
      name: `${kind} stalled 6 s`,
      kind,
      port: portOf(server),
      path: pathOf(kind),
      bytesPerSecond: 2 * streamBytesPerSecond,
      ...(kind === "ws-acks" ? { ackEveryMs: 250 } : {}),
      durationS: RUN_S,
      stall,
    }));
    const runs = await runAll(clients);
    const figures = await Promise.all(
      runs.map((run, i) => {
        const from = run.openedAt! + stall.atS * 1000;
        const window = { from, to: from + stall.forS * 1000 };
        return clients[i]!.kind === "webm" ? checkWebmRun(clients[i]!.name, run, window) : checkWsRun(clients[i]!.name, run, window);
      }),
    );
    console.log(`flow control, a 6 s stall:\n${table(figures)}`);
    for (const [i, f] of figures.entries()) {
      expectLive(clients[i]!.kind, f);
      expect(f.gaps, `${f.client}: frames were skipped over the stall`).toBeGreaterThan(0);
    }
  }, 120_000);
});
