// WS /webm/<stream> against the real server and pipeline, read back by an independent EBML parser.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";
import { until, waitFor } from "../helpers/until.js";
import { expectValidLiveWebm, readWebm } from "../helpers/webm-reader.js";

interface WebmCapture {
  readonly binary: Buffer[];
  readonly text: Record<string, unknown>[];
  readonly ws: WebSocket;
  readonly closed: Promise<{ code: number; reason: string }>;
}

async function capture(url: string): Promise<WebmCapture> {
  const ws = new WebSocket(url);
  const binary: Buffer[] = [];
  const text: Record<string, unknown>[] = [];
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    if (isBinary) binary.push(data);
    else text.push(JSON.parse(data.toString("utf8")) as Record<string, unknown>);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  return { binary, text, ws, closed };
}

const clusterCount = (viewer: WebmCapture): number => readWebm(Buffer.concat(viewer.binary)).clusters.length;

describe("WS /webm/<stream>", () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServerProcess(["--source", "test", "--size", "320x240", "--fps", "30", "--keyframe-interval", "1"]);
  });
  afterAll(stopAllServers);

  it("gives an early and a late viewer each a valid live WebM stream whose timeline starts at 0", async () => {
    const early = await capture(server.wsBase + "webm/cam0");
    // The late viewer joins once the early one has had three clusters (two keyframes live after the
    // GOP it joined in) and is a few frames into the current GOP, so the late one joins mid-GOP.
    await waitFor(
      () => {
        const { clusters } = readWebm(Buffer.concat(early.binary));
        return clusters.length >= 3 && clusters.at(-1)!.blocks.length >= 5;
      },
      15_000,
      "three clusters to the early viewer, the last with 5 frames",
    );
    const late = await capture(server.wsBase + "webm/cam0");
    // Then both play on until the late viewer has had a cluster of its own after the replayed GOP.
    await waitFor(() => clusterCount(late) >= 2, 15_000, "a second cluster to the late viewer");
    early.ws.close();
    late.ws.close();
    for (const viewer of [early, late]) {
      const parsed = readWebm(Buffer.concat(viewer.binary));
      expectValidLiveWebm(parsed);
      expect(parsed).toMatchObject({ width: 320, height: 240 });
      // Keyframe every second: whole clusters of ~30 frames.
      expect(parsed.clusters.length).toBeGreaterThanOrEqual(2);
    }
    // The late joiner's first message after the init segment is its first cluster: the current GOP, sent at once.
    const lateParsed = readWebm(Buffer.concat(late.binary));
    expect(lateParsed.clusters[0]!.blocks.length).toBeGreaterThan(1);
    // Each binary message after the init segment is one frame.
    const blocks = lateParsed.clusters.reduce((n, c) => n + c.blocks.length, 0);
    expect(late.binary.length).toBe(1 + blocks);
    expect(late.text).toEqual([]);
  });

  it("adds hello, state and per-frame timing for ?meta=1", async () => {
    const v = await capture(server.wsBase + "webm/cam0?meta=1");
    await waitFor(() => v.text.filter((t) => t.type === "frame").length >= 30, 15_000, "30 frame messages to the ?meta=1 viewer");
    v.ws.close();
    expect(v.text[0]).toMatchObject({ type: "hello", width: 320, height: 240 });
    expect(v.text[1]).toMatchObject({ type: "state", state: "live" });
    const frames = v.text.filter((t) => t.type === "frame");
    const parsed = readWebm(Buffer.concat(v.binary));
    const times = parsed.clusters.flatMap((c) => c.blocks.map((b) => b.time));
    expect(frames.map((f) => f.mediaTimeMs)).toEqual(times);
    for (const f of frames) expect(f.serverTime).toBeGreaterThan(1.7e12);
  });

  it("refuses an unknown stream with 4404", async () => {
    const v = await capture(server.wsBase + "webm/nosuch");
    expect((await v.closed).code).toBe(4404);
  });

  it("lists WebM viewers in /api/streams", async () => {
    const v = await capture(server.wsBase + "webm/cam0");
    // Fails, naming what it waited for, if no WebM viewer with frames sent is listed within 10 s.
    await until("a WebM viewer with frames sent in /api/streams", 10_000, async () => {
      const body = (await (await fetch(server.url + "api/streams")).json()) as { streams: { clients: { mode: string; framesSent: number }[] }[] };
      return body.streams[0]!.clients.find((c) => c.mode === "webm" && c.framesSent > 0);
    });
    v.ws.close();
  });
});
