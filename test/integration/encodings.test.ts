// Tile encodings against the real server and pipeline: the default single stream (640x480) also
// serves a 320x240 encoding, from the same gst process, on /ws/ and /webm/ (`?encoding=tile`);
// both decode, both come back after a restart; a client written from the spec plays it; an
// encoding a stream does not have is refused with its close code; /api/streams counts each
// encoding's paused viewers.

import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { EncodingInfo, StreamInfo, StreamsResponse } from "../../shared/api.js";
import { vp8KeyframeSize } from "../helpers/frame-checks.js";
import { childPids, isAlive, startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";
import { killSpecClients, runSpecClient } from "../helpers/spec-client.js";
import { until, waitFor } from "../helpers/until.js";
import { decodedPictureCount, decodedWebmPictureCount } from "../helpers/vp8-decode.js";
import { expectValidLiveWebm, readWebm } from "../helpers/webm-reader.js";
import { connectViewer, startAcking, type TestViewer } from "../helpers/ws-viewer.js";

// Written out again rather than imported: the tests pin the documented values.
const KEYFRAME = 0x01;
const DISCONTINUITY = 0x04;
const CLOSE_UNKNOWN_ENCODING = 4406;

async function streamInfo(server: ServerProcess): Promise<StreamInfo> {
  const body = (await (await fetch(server.url + "api/streams")).json()) as StreamsResponse;
  return body.streams[0]!;
}

const encodingOf = (info: StreamInfo, name: string): EncodingInfo | undefined => info.encodings.find((e) => e.name === name);

/** The frames from the first keyframe on, with the size every keyframe declares. */
function keyframeSizes(v: TestViewer): { width: number; height: number }[] {
  return v
    .frames()
    .filter((f) => (f.header.flags & KEYFRAME) !== 0)
    .map((f) => vp8KeyframeSize(f.data) ?? { width: -1, height: -1 });
}

function fromFirstKeyframe(v: TestViewer): Uint8Array[] {
  const frames = v.frames();
  const first = frames.findIndex((f) => (f.header.flags & KEYFRAME) !== 0);
  return frames.slice(first).map((f) => f.data);
}

/** A WebSocket that the server closes at once: its close code and reason. */
function closedWith(url: string): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() }));
    ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once("error", reject);
  });
}

describe("tile encodings", () => {
  let server: ServerProcess;
  const viewers: TestViewer[] = [];
  const stops: (() => void)[] = [];

  beforeAll(async () => {
    // No --size and no --tile: the defaults, 640x480 with a 320x240 tile.
    server = await startServerProcess(["--source", "test", "--keyframe-interval", "1"]);
  });
  afterAll(async () => {
    stops.forEach((stop) => stop());
    for (const v of viewers) v.close();
    killSpecClients();
    await stopAllServers();
  });

  it("serves 640x480 and 320x240 from one pipeline; both decode; both come back after the pipeline restarts", async () => {
    const full = await connectViewer(server.wsBase + "ws/cam0");
    const tile = await connectViewer(server.wsBase + "ws/cam0?encoding=tile");
    viewers.push(full, tile);
    stops.push(startAcking(full), startAcking(tile));
    await Promise.all([full.waitForFrames(40), tile.waitForFrames(40)]);

    expect(full.texts()[0]).toMatchObject({ type: "hello", stream: "cam0", encoding: "full", width: 640, height: 480, framerate: 30 });
    expect(tile.texts()[0]).toMatchObject({ type: "hello", stream: "cam0", encoding: "tile", width: 320, height: 240, framerate: 30 });
    // What the VP8 bitstream itself says, whatever the server claims.
    expect(keyframeSizes(full).length).toBeGreaterThan(0);
    expect(keyframeSizes(tile).length).toBeGreaterThan(0);
    for (const size of keyframeSizes(full)) expect(size).toEqual({ width: 640, height: 480 });
    for (const size of keyframeSizes(tile)) expect(size).toEqual({ width: 320, height: 240 });
    const fullFrames = fromFirstKeyframe(full);
    const tileFrames = fromFirstKeyframe(tile);
    const [fullPictures, tilePictures] = await Promise.all([
      decodedPictureCount(fullFrames, 640, 480),
      decodedPictureCount(tileFrames, 320, 240),
    ]);
    expect(fullPictures).toBe(fullFrames.length);
    expect(tilePictures).toBe(tileFrames.length);

    // One capture: one gst process, the one /api/streams names.
    const info = await streamInfo(server);
    const gst = childPids(server.pid, "gst-launch-1.0");
    expect(gst).toEqual([info.pipelinePid]);
    expect(info).toMatchObject({ width: 640, height: 480, targetKbps: 1500, viewers: 2 });
    expect(info.encodings.map((e) => e.name)).toEqual(["full", "tile"]);
    expect(encodingOf(info, "full")).toMatchObject({ width: 640, height: 480, framerate: 30, targetKbps: 1500, viewers: 1, pausedViewers: 0 });
    expect(encodingOf(info, "tile")).toMatchObject({ width: 320, height: 240, framerate: 30, targetKbps: 300, viewers: 1, pausedViewers: 0 });
    expect(encodingOf(info, "tile")!.gopFrames).toBeGreaterThan(0);
    expect(encodingOf(info, "tile")!.kbps).toBeGreaterThan(0);
    expect(info.clients.map((c) => c.encoding).sort()).toEqual(["full", "tile"]);
    // Viewer ids are the stream's: no two alike across its encodings.
    expect(new Set(info.clients.map((c) => c.id)).size).toBe(2);
    // Metrics per encoding.
    const metrics = parsePrometheusTextFormat(await (await fetch(server.url + "metrics")).text());
    const sample = (name: string, labels: Record<string, string>): number =>
      Number(metrics.find((f) => f.name === name)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value);
    expect(sample("canvascast_viewers", { stream: "cam0", encoding: "tile", mode: "ws" })).toBe(1);
    expect(sample("canvascast_viewers", { stream: "cam0", encoding: "full", mode: "ws" })).toBe(1);
    expect(sample("canvascast_pipeline_frames_total", { stream: "cam0", encoding: "tile" })).toBeGreaterThan(0);
    expect(sample("canvascast_gop_cache_frames", { stream: "cam0", encoding: "tile" })).toBeGreaterThan(0);

    // Both encodings restart with their one process.
    const before = { full: full.frames().length, tile: tile.frames().length };
    process.kill(gst[0]!, "SIGKILL");
    for (const v of [full, tile]) {
      await waitFor(() => v.texts().some((m) => m.type === "state" && m.state === "restarting"), 10_000, "the restarting state");
    }
    await Promise.all([full.waitForFrames(before.full + 30, 20_000), tile.waitForFrames(before.tile + 30, 20_000)]);
    for (const [v, size] of [[full, { width: 640, height: 480 }], [tile, { width: 320, height: 240 }]] as const) {
      // The new pipeline's first frame (the old one's last frames may arrive after the kill, before the state).
      const restartingAt = v.received.findIndex((r) => r.type === "text" && r.message.type === "state" && r.message.state === "restarting");
      const first = v.received.slice(restartingAt).find((r) => r.type === "frame");
      expect(first?.type === "frame" && first.header.flags & (KEYFRAME | DISCONTINUITY)).toBe(KEYFRAME | DISCONTINUITY);
      expect(first?.type === "frame" && vp8KeyframeSize(first.data)).toEqual(size);
    }
    const after = await streamInfo(server);
    expect(after.restarts).toBe(1);
    expect(childPids(server.pid, "gst-launch-1.0")).toEqual([after.pipelinePid]);
    expect(after.pipelinePid).not.toBe(gst[0]);
    expect(isAlive(gst[0]!)).toBe(false);
    expect(after.encodings.map((e) => [e.name, e.width, e.height])).toEqual([["full", 640, 480], ["tile", 320, 240]]);
  }, 90_000);

  it("a client written from the spec alone plays ?encoding=tile", async () => {
    const port = Number(new URL(server.url).port);
    const run = await runSpecClient({ port, path: "/ws/cam0?encoding=tile", bytesPerSecond: 1_000_000, ackEveryMs: 100, durationS: 3 });
    expect(run.texts[0]?.msg).toMatchObject({ type: "hello", encoding: "tile", width: 320, height: 240 });
    const frames = run.videoFrames();
    expect(frames.length).toBeGreaterThan(30);
    expect(frames[0]!.key).toBe(true);
    expect(vp8KeyframeSize(frames[0]!.data)).toEqual({ width: 320, height: 240 });
    expect(await decodedPictureCount(frames.map((f) => f.data), 320, 240)).toBe(frames.length);
  }, 30_000);

  it("/webm/<stream>?encoding=tile is a valid live WebM stream of 320x240 that decodes", async () => {
    const ws = new WebSocket(server.wsBase + "webm/cam0?encoding=tile");
    const binary: Buffer[] = [];
    ws.on("message", (data: Buffer, isBinary: boolean) => void (isBinary && binary.push(data)));
    stops.push(() => ws.terminate());
    await waitFor(() => binary.length > 1 && readWebm(Buffer.concat(binary)).clusters.length >= 2, 15_000, "two clusters");
    ws.close();
    const bytes = Buffer.concat(binary);
    const parsed = readWebm(bytes);
    expectValidLiveWebm(parsed);
    expect(parsed).toMatchObject({ width: 320, height: 240 });
    expect(vp8KeyframeSize(parsed.clusters[0]!.blocks[0]!.frame)).toEqual({ width: 320, height: 240 });
    const blocks = parsed.clusters.reduce((n, c) => n + c.blocks.length, 0);
    expect(await decodedWebmPictureCount(bytes)).toBe(blocks);
  }, 30_000);

  it("/api/streams counts a tile viewer that pauses as paused, and not once it resumes", async () => {
    const v = await connectViewer(server.wsBase + "ws/cam0?encoding=tile");
    viewers.push(v);
    await v.waitForFrames(5);
    const paused = (info: StreamInfo): [number | undefined, number | undefined] => [
      encodingOf(info, "full")?.pausedViewers,
      encodingOf(info, "tile")?.pausedViewers,
    ];
    v.ws.send(JSON.stringify({ type: "pause" }));
    const whilePaused = await until("the tile viewer to be paused", 5000, async () => {
      const info = await streamInfo(server);
      return paused(info)[1] === 1 ? info : undefined;
    });
    expect(paused(whilePaused)).toEqual([0, 1]);
    expect(whilePaused.clients.filter((c) => c.paused).map((c) => c.encoding)).toEqual(["tile"]);
    v.ws.send(JSON.stringify({ type: "resume" }));
    const resumed = await until("the tile viewer to resume", 5000, async () => {
      const info = await streamInfo(server);
      return paused(info)[1] === 0 ? info : undefined;
    });
    expect(paused(resumed)).toEqual([0, 0]);
    v.close();
  });

  it("an encoding the stream does not have is refused with 4406 and CC_ERR_UNKNOWN_ENCODING, naming those it has", async () => {
    for (const path of ["ws/cam0?encoding=huge", "webm/cam0?encoding=huge"]) {
      const { code, reason } = await closedWith(server.wsBase + path);
      expect(code, path).toBe(CLOSE_UNKNOWN_ENCODING);
      expect(reason, path).toBe('CC_ERR_UNKNOWN_ENCODING: stream "cam0" has no encoding "huge" (it has: full, tile)');
    }
    // encoding=full is the same as none.
    const full = await connectViewer(server.wsBase + "ws/cam0?encoding=full");
    viewers.push(full);
    await full.waitForFrames(1);
    expect(full.texts()[0]).toMatchObject({ encoding: "full", width: 640 });
    full.close();

    // A stream no wider than a tile has none by default; asking for one is refused the same way.
    const small = await startServerProcess(["--source", "test", "--size", "160x120"]);
    const { code, reason } = await closedWith(small.wsBase + "ws/cam0?encoding=tile");
    expect(code).toBe(CLOSE_UNKNOWN_ENCODING);
    expect(reason).toBe('CC_ERR_UNKNOWN_ENCODING: stream "cam0" has no encoding "tile" (it has: full)');
    expect((await streamInfo(small)).encodings.map((e) => e.name)).toEqual(["full"]);
    await small.stop();
  }, 30_000);
});
