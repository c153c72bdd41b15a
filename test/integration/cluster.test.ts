// Origins and edges joined by a real 3-node NATS cluster on loopback (nats-server), real server
// processes and viewers written from docs/protocol.md alone. What viewers of an edge receive is
// checked as the protocol promises it: hello, state, the replayed GOP then live frames in order, the
// keyframe rule across every fault, and libvpx decodes it all.

import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { decodedPictureCount } from "../helpers/vp8-decode.js";
import { startNatsCluster, stopAllNatsClusters, type NatsCluster } from "../helpers/nats-cluster.js";
import { startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";
import { connectSpecViewer, type SpecFrame, type SpecWsViewer } from "../helpers/spec-ws-viewer.js";
import { until } from "../helpers/until.js";

const SIZE = ["--size", "160x120", "--fps", "15", "--bitrate", "200", "--keyframe-interval", "1", "--tile", "off"];

let cluster: NatsCluster;
const viewers: SpecWsViewer[] = [];

beforeAll(async () => {
  cluster = await startNatsCluster(3);
}, 30_000);

afterEach(async () => {
  for (const v of viewers.splice(0)) v.close();
  await stopAllServers();
});

afterAll(async () => {
  await stopAllNatsClusters();
});

async function viewer(url: string): Promise<SpecWsViewer> {
  const v = await connectSpecViewer(url);
  viewers.push(v);
  return v;
}

/** An origin connected to one node (the others are its fall-backs, as an operator would list them). */
function origin(streams: string[], first = 0, extra: string[] = []): Promise<ServerProcess> {
  return startServerProcess([...streams.flatMap((s) => ["--stream", s]), ...SIZE, "--nats", natsUrls(first), ...extra]);
}

function edge(first = 1, extra: string[] = []): Promise<ServerProcess> {
  return startServerProcess(["--edge", "--nats", natsUrls(first), ...extra]);
}

/** Every node's URL, `first` first: a client tries them in order (the rest after a failure). */
function natsUrls(first: number): string {
  const nodes = cluster.nodes.map((n) => n.url);
  return [...nodes.slice(first), ...nodes.slice(0, first)].join(",");
}

async function streamsOf(server: ServerProcess): Promise<{ name: string; state: string; origin?: string }[]> {
  const res = await fetch(`${server.url}api/streams`);
  return ((await res.json()) as { streams: { name: string; state: string; origin?: string }[] }).streams;
}

/** Frames after the first `from`: after each missing sequence number, a keyframe flagged discontinuity. */
function expectKeyframeRule(frames: readonly SpecFrame[]): number {
  let gaps = 0;
  for (let i = 1; i < frames.length; i++) {
    const prev = frames[i - 1]!;
    const cur = frames[i]!;
    if (cur.replay || prev.replay) continue;
    if (cur.seq !== ((prev.seq + 1) >>> 0)) {
      gaps++;
      expect(cur.key, `frame ${cur.seq} after ${prev.seq}`).toBe(true);
      expect(cur.discontinuity, `frame ${cur.seq} after ${prev.seq}`).toBe(true);
    }
  }
  return gaps;
}

describe("an edge", () => {
  test("lists the origin's streams and gives a joiner the origin's GOP, then live frames in order with the origin's sequence numbers", async () => {
    const o = await origin(["cam=test:ball"], 0);
    const e = await edge(1);
    const listed = await until("the edge to list the origin's stream", 10_000, async () => {
      const s = await streamsOf(e);
      return s.find((x) => x.name === "cam" && x.state === "live");
    });
    expect(listed.origin).toMatch(/^[A-Za-z0-9_-]+$/);

    const atOrigin = await viewer(`${o.wsBase}ws/cam`);
    const atEdge = await viewer(`${e.wsBase}ws/cam`);
    await atEdge.until(() => atEdge.frames().filter((f) => !f.replay).length >= 30, 15_000, "30 live frames at the edge");
    const texts = atEdge.texts();
    expect(texts[0]).toMatchObject({ type: "hello", protocol: 1, stream: "cam", encoding: "full", codec: "vp8", width: 160, height: 120 });
    expect(texts[1]).toMatchObject({ type: "state", state: "live" });

    const frames = atEdge.frames();
    const replay = frames.filter((f) => f.replay);
    expect(replay.length, "the origin's GOP, replayed at once").toBeGreaterThan(0);
    expect(replay[0]!.key).toBe(true);
    const live = frames.slice(replay.length);
    expect(live.every((f) => !f.replay)).toBe(true);
    // Replay then live: consecutive sequence numbers all along.
    for (let i = 1; i < frames.length; i++) expect(frames[i]!.seq).toBe((frames[i - 1]!.seq + 1) >>> 0);
    // The origin's numbers: the same frame has the same number and bytes at the origin and the edge.
    await atOrigin.until(() => atOrigin.frames().some((f) => f.seq === live.at(-1)!.seq), 5000, "the origin's viewer to get the same frame");
    const bySeq = new Map(atOrigin.frames().map((f) => [f.seq, f]));
    let compared = 0;
    for (const f of live) {
      const same = bySeq.get(f.seq);
      if (same === undefined) continue;
      expect(Buffer.from(f.data).equals(Buffer.from(same.data))).toBe(true);
      expect(f.pts).toBe(same.pts);
      compared++;
    }
    expect(compared).toBeGreaterThan(10);
    expect(await decodedPictureCount(frames.map((f) => f.data), 160, 120)).toBe(frames.length);
  });
});
