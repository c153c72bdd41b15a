// Origins and edges joined by a real 3-node NATS cluster on loopback (nats-server), real server
// processes and viewers written from docs/protocol.md alone. What viewers of an edge receive is
// checked as the protocol promises it: hello, state, the replayed GOP then live frames in order, the
// keyframe rule across every fault, and libvpx decodes it all.

import { encodeAccount, encodeOperator, encodeUser, fmtCreds } from "@nats-io/jwt";
import { createAccount, createOperator, createUser } from "@nats-io/nkeys";
import { generate } from "selfsigned";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import WebSocket from "ws";
import { decodedMsePicturesOf, decodedPictureCountOf } from "../helpers/codec-decode.js";
import { decodedPictureCount, decodedWebmPictureCount } from "../helpers/vp8-decode.js";
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
  // A test that killed a node leaves the cluster whole for the next.
  for (const node of cluster.nodes) await node.start();
  await cluster.routed();
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

/** The node a server's NATS connection is on (its client name carries its pid). */
async function nodeOf(server: ServerProcess): Promise<number> {
  return until(`the node process ${server.pid} is connected to`, 10_000, async () => {
    for (const node of cluster.nodes) {
      if (!node.running) continue;
      const connz = await node.monitor<{ connections: { name?: string }[] | null }>("connz").catch(() => null);
      if (connz?.connections?.some((c) => c.name?.endsWith(`:${server.pid}`))) return node.index;
    }
    return undefined;
  });
}

/** The subjects a server's connection subscribes to, as its NATS node sees them. */
async function subscriptionsOf(server: ServerProcess): Promise<string[]> {
  for (const node of cluster.nodes) {
    if (!node.running) continue;
    const connz = await node.monitor<{ connections: { name?: string; subscriptions_list?: string[] }[] | null }>("connz?subs=1");
    const mine = connz.connections?.find((c) => c.name?.endsWith(`:${server.pid}`));
    if (mine) return mine.subscriptions_list ?? [];
  }
  return [];
}

/** The longest time between two frames a viewer received, ms. */
function longestWait(frames: readonly SpecFrame[]): number {
  let longest = 0;
  for (let i = 1; i < frames.length; i++) longest = Math.max(longest, frames[i]!.at - frames[i - 1]!.at);
  return longest;
}

/** Waits for `n` more frames than the viewer has now. */
async function moreFrames(v: SpecWsViewer, n: number, what: string, timeoutMs = 15_000): Promise<void> {
  const target = v.frames().length + n;
  await v.until(() => v.frames().length >= target, timeoutMs, what);
}

/** After each missing sequence number, a keyframe flagged discontinuity (replayed frames aside); returns the gaps. */
function expectKeyframeRule(frames: readonly SpecFrame[]): number {
  let gaps = 0;
  for (let i = 1; i < frames.length; i++) {
    const prev = frames[i - 1]!;
    const cur = frames[i]!;
    if (cur.replay && !prev.replay) {
      // A replay (after a resync) starts at a keyframe.
      expect(cur.key, `replayed frame ${cur.seq} after ${prev.seq}`).toBe(true);
      continue;
    }
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

  test("applies its own tokens, and serves the MSE path and metrics of the origin's stream", async () => {
    await origin(["cam=test:ball"], 0);
    const token = "edge-token-0123456789";
    const e = await edge(1, ["--token", token]);
    const refused = await fetch(`${e.url}api/streams`);
    expect(refused.status).toBe(401);
    await until("the stream at the edge", 10_000, async () => {
      const res = await fetch(`${e.url}api/streams?token=${token}`);
      return ((await res.json()) as { streams: { state: string }[] }).streams.find((x) => x.state === "live");
    });
    // WebM for MSE, muxed at the edge from the relayed frames: a <video> could play it, libvpx decodes it.
    const webm: Buffer[] = [];
    const ws = new WebSocket(`${e.wsBase}webm/cam?token=${token}`);
    ws.on("message", (data: Buffer) => webm.push(data));
    try {
      await until("two seconds of WebM", 15_000, () => Promise.resolve(webm.reduce((n, b) => n + b.byteLength, 0) > 20_000 ? true : undefined));
    } finally {
      ws.close();
    }
    expect(await decodedWebmPictureCount(Buffer.concat(webm))).toBeGreaterThan(10);
    const metrics = await (await fetch(`${e.url}metrics?token=${token}`)).text();
    expect(metrics).toMatch(/canvascast_relay_frames_total\{stream="cam",encoding="full"\} [1-9]/);
    expect(metrics).toMatch(/canvascast_nats_connected 1/);
    // The edge's viewers' lag, from its own probes.
    expect(metrics).toMatch(/canvascast_viewer_lag_seconds_count\{stream="cam",encoding="full"\} [1-9]/);
  });

  test("relays H.264 as the origin encodes it: frames and fragmented MP4 that decode", async () => {
    await origin(["h=test:ball"], 0, ["--codec", "h264"]);
    const e = await edge(1);
    await until("the H.264 stream at the edge", 10_000, async () => (await streamsOf(e)).find((x) => x.state === "live"));
    const v = await viewer(`${e.wsBase}ws/h`);
    await moreFrames(v, 30, "H.264 frames at the edge");
    expect(String(v.texts()[0]!.codec)).toMatch(/^avc1\./);
    const frames = v.frames();
    expect(await decodedPictureCountOf("h264", frames.map((f) => f.data), 160, 120)).toBe(frames.length);
    const mp4: Buffer[] = [];
    const ws = new WebSocket(`${e.wsBase}mp4/h`);
    ws.on("message", (data: Buffer) => mp4.push(data));
    try {
      await until("fragments of MP4", 15_000, () => Promise.resolve(mp4.length > 30 ? true : undefined));
    } finally {
      ws.close();
    }
    expect((await decodedMsePicturesOf("h264", "mp4", Buffer.concat(mp4))).length).toBeGreaterThan(10);
  });

  test("keeps its viewers playing when the NATS nodes the origin and then the edge are on are killed", async () => {
    const o = await origin(["cam=test:ball"], 0);
    const e = await edge(1);
    await until("the stream at the edge", 10_000, async () => (await streamsOf(e)).find((x) => x.state === "live"));
    const v = await viewer(`${e.wsBase}ws/cam`);
    await moreFrames(v, 20, "frames before the faults");

    const originNode = await nodeOf(o);
    await cluster.nodes[originNode]!.kill();
    await moreFrames(v, 30, "frames after the origin's node was killed");
    const edgeNode = await nodeOf(e);
    expect(edgeNode).not.toBe(originNode);
    await cluster.nodes[edgeNode]!.kill();
    await moreFrames(v, 30, "frames after the edge's node was killed");

    expect(v.open).toBe(true);
    const frames = v.frames();
    const gaps = expectKeyframeRule(frames);
    // Both processes moved to the node left.
    expect(await nodeOf(o)).toBe(await nodeOf(e));
    expect(await decodedPictureCount(frames.map((f) => f.data), 160, 120)).toBe(frames.length);
    console.log(`NATS node faults: ${gaps} gaps, longest wait for a frame ${longestWait(frames)} ms (keyframe interval 1 s)`);
  }, 60_000);

  test("with the whole NATS cluster down, the origin serves its own viewers and the edge's wait on their sockets until it is back", async () => {
    const o = await origin(["cam=test:ball"], 0);
    const e = await edge(1);
    await until("the stream at the edge", 10_000, async () => (await streamsOf(e)).find((x) => x.state === "live"));
    const atEdge = await viewer(`${e.wsBase}ws/cam`);
    const atOrigin = await viewer(`${o.wsBase}ws/cam`);
    await moreFrames(atEdge, 10, "frames at the edge");
    for (const node of cluster.nodes) await node.kill();
    await atEdge.until(() => atEdge.texts().some((t) => t.type === "state" && t.state === "restarting"), 10_000, "state restarting at the edge");
    expect(String(atEdge.texts().find((t) => t.type === "state" && t.state === "restarting")!.reason)).toMatch(/lost its connection to NATS/);
    await moreFrames(atOrigin, 20, "the origin's own viewer's frames while NATS is down");
    const before = atEdge.frames().length;
    for (const node of cluster.nodes) await node.start();
    await atEdge.until(() => atEdge.frames().length >= before + 20, 30_000, "frames at the edge once NATS is back");
    expect(atEdge.open).toBe(true);
    expect(atEdge.texts().filter((t) => t.type === "state").at(-1)!.state).toBe("live");
    const frames = atEdge.frames();
    expectKeyframeRule(frames);
    expect(await decodedPictureCount(frames.map((f) => f.data), 160, 120)).toBe(frames.length);
  }, 60_000);

  test("tells its viewers when the origin is gone, and plays the origin's stream again when it is back, on the same socket", async () => {
    const first = await origin(["cam=test:ball"], 0);
    const e = await edge(1);
    await until("the stream at the edge", 10_000, async () => (await streamsOf(e)).find((x) => x.state === "live"));
    const v = await viewer(`${e.wsBase}ws/cam`);
    await moreFrames(v, 15, "frames from the first origin");
    const lastBefore = v.frames().at(-1)!;

    await first.stop("SIGKILL");
    await v.until(() => v.texts().some((t) => t.type === "state" && t.state === "restarting"), 10_000, "state restarting at the edge");
    const gone = v.texts().find((t) => t.type === "state" && t.state === "restarting")!;
    expect(String(gone.reason)).toMatch(/origin .* not heard from/);

    const countBefore = v.frames().length;
    await origin(["cam=test:ball"], 2);
    await v.until(() => v.frames().length >= countBefore + 20, 20_000, "frames from the new origin");
    expect(v.open).toBe(true);
    const after = v.frames().slice(countBefore);
    expect(after[0]!.key).toBe(true);
    expect(after[0]!.discontinuity).toBe(true);
    // Sequence numbers and timestamps go on from the last frame before, not from the new origin's 0.
    expect(((after[0]!.seq - lastBefore.seq) >>> 0) < 0x8000_0000).toBe(true);
    expect(after[0]!.seq).not.toBe(lastBefore.seq);
    expect(after[0]!.pts).toBeGreaterThan(lastBefore.pts);
    const states = v.texts().filter((t) => t.type === "state").map((t) => t.state);
    expect(states.at(-1)).toBe("live");
    expectKeyframeRule(v.frames());
    expect(await decodedPictureCount(after.map((f) => f.data), 160, 120)).toBe(after.length);
  }, 60_000);

  test("hears an origin that stops cleanly at once, and subscribes to an encoding only while it has viewers", async () => {
    const o = await origin(["cam=test:ball"], 0);
    const e = await edge(0);
    await until("the stream at the edge", 10_000, async () => (await streamsOf(e)).find((x) => x.state === "live"));
    const framesSubject = "canvascast.frames.cam.full.*";
    expect(await subscriptionsOf(e)).not.toContain(framesSubject);
    const v = await viewer(`${e.wsBase}ws/cam`);
    await moreFrames(v, 5, "frames");
    expect(await subscriptionsOf(e)).toContain(framesSubject);
    v.close();
    // It lingers a few seconds (a dashboard switching views), then lets go.
    await until("the edge to unsubscribe", 15_000, async () => ((await subscriptionsOf(e)).includes(framesSubject) ? undefined : true), 250);

    const w = await viewer(`${e.wsBase}ws/cam`);
    await moreFrames(w, 5, "frames for a second viewer");
    expect(w.frames()[0]!.replay).toBe(true);
    await o.stop("SIGTERM");
    await w.until(() => w.texts().some((t) => t.type === "state" && t.state === "restarting"), 5000, "state restarting");
    const state = w.texts().find((t) => t.type === "state" && t.state === "restarting")!;
    expect(String(state.reason)).toMatch(/origin .* stopped/);
  }, 60_000);
});

describe("the relay spec (docs/deployment.md), from a NATS client of its own", () => {
  let nc: NatsConnection | null = null;
  afterEach(async () => {
    await nc?.close();
    nc = null;
  });

  test("frames lost between an origin and an edge make the edge's viewers skip to the next keyframe", async () => {
    // A relay that republishes a real origin's frames as origin "lossy", stream "lossy", dropping
    // some deltas, and announces it. It does not answer GOP requests: the edge goes on without one.
    const o = await origin(["cam=test:ball"], 0);
    const e = await edge(1);
    nc = await connect({ servers: cluster.nodes[2]!.url });
    const conn = nc;
    let dropped = 0;
    conn.subscribe("canvascast.frames.cam.full.*", {
      callback: (_err, msg) => {
        const data = msg.data;
        // A frame message: kind 1, flags (bit 0 keyframe), u16 header length, u32 sequence number.
        if (data[0] === 1) {
          const seq = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(4, true);
          if ((data[1]! & 1) === 0 && seq % 10 === 4) {
            dropped++;
            return;
          }
        }
        conn.publish("canvascast.frames.lossy.full.lossy", data);
      },
    });
    const announce = (): void => {
      const encodings = [{ name: "full", width: 160, height: 120, framerate: 15, targetKbps: 200, codec: "vp8", fps: 15, kbps: 200 }];
      const streams = [{ name: "lossy", source: "a lossy relay", keyframeIntervalS: 1, restarts: 0, state: "live", encodings }];
      conn.publish("canvascast.announce", JSON.stringify({ type: "announce", origin: "lossy", intervalMs: 1000, streams }));
    };
    announce();
    const timer = setInterval(announce, 500);
    try {
      await until("the lossy stream at the edge", 10_000, async () => (await streamsOf(e)).find((x) => x.name === "lossy"));
      const v = await viewer(`${e.wsBase}ws/lossy`);
      await moreFrames(v, 40, "frames of the lossy stream");
      const frames = v.frames();
      expect(frames[0]!.key).toBe(true);
      const gaps = expectKeyframeRule(frames);
      expect(gaps).toBeGreaterThan(0);
      expect(dropped).toBeGreaterThan(0);
      expect(await decodedPictureCount(frames.map((f) => f.data), 160, 120)).toBe(frames.length);
      const info = (await (await fetch(`${e.url}api/streams`)).json()) as { streams: { name: string; encodings: { relay?: { framesLost: number } }[] }[] };
      expect(info.streams.find((s) => s.name === "lossy")!.encodings[0]!.relay!.framesLost).toBeGreaterThan(0);
    } finally {
      clearInterval(timer);
      await o.stop();
    }
  }, 60_000);
});

describe("NATS credentials", () => {
  const PASSWORD = "nats-pass-7f3c9a2e";
  // A user known to the server by its public nkey; canvascast holds the seed.
  const nkeyUser = createUser();
  const seed = new TextDecoder().decode(nkeyUser.getSeed());
  let secure: NatsCluster;
  let dir: string;
  beforeAll(async () => {
    const users = `{ user: cams, password: "${PASSWORD}" }, { nkey: ${nkeyUser.getPublicKey()} }`;
    secure = await startNatsCluster(1, { extraConfig: `authorization { users = [ ${users} ] }` });
    dir = mkdtempSync(join(tmpdir(), "canvascast-nats-secret-"));
  }, 30_000);
  afterAll(async () => {
    await secure.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("come from a file or the environment, never argv; refused ones are told and the origin serves its own viewers", async () => {
    const passwordFile = join(dir, "password");
    writeFileSync(passwordFile, `${PASSWORD}\n`);
    chmodSync(passwordFile, 0o600);
    const o = await startServerProcess(["--stream", "cam=test:ball", ...SIZE, "--nats", secure.urls, "--nats-user", "cams", "--nats-password-file", passwordFile]);
    const e = await startServerProcess(["--edge", "--nats", secure.urls, "--nats-user", "cams"], 20_000, undefined, { ...process.env, CANVASCAST_NATS_PASSWORD: PASSWORD });
    await until("the stream at the edge", 10_000, async () => (await streamsOf(e)).find((x) => x.name === "cam" && x.state === "live"));
    const v = await viewer(`${e.wsBase}ws/cam`);
    await moreFrames(v, 10, "frames through the authenticated cluster");
    // argv is readable by every local user; the log goes to files and terminals. (The environment
    // is readable by the same user only.)
    for (const server of [o, e]) {
      expect(readFileSync(`/proc/${server.pid}/cmdline`, "utf8")).not.toContain(PASSWORD);
      expect(server.output()).not.toContain(PASSWORD);
    }

    const wrongFile = join(dir, "wrong");
    writeFileSync(wrongFile, "not-the-password\n");
    chmodSync(wrongFile, 0o600);
    const refused = await startServerProcess(["--stream", "own=test:ball", ...SIZE, "--nats", secure.urls, "--nats-user", "cams", "--nats-password-file", wrongFile]);
    await until("the refusal in the log", 10_000, () => Promise.resolve(refused.stderr().includes("CC_ERR_NATS_AUTH") ? true : undefined));
    const own = await viewer(`${refused.wsBase}ws/own`);
    await moreFrames(own, 10, "the refused origin's own viewer's frames");
  }, 60_000);

  test("an nkey seed from its file authenticates an edge", async () => {
    const passwordFile = join(dir, "password-2");
    writeFileSync(passwordFile, `${PASSWORD}\n`);
    chmodSync(passwordFile, 0o600);
    await startServerProcess(["--stream", "cam=test:ball", ...SIZE, "--nats", secure.urls, "--nats-user", "cams", "--nats-password-file", passwordFile]);
    const seedFile = join(dir, "edge.nk");
    writeFileSync(seedFile, `${seed}\n`);
    chmodSync(seedFile, 0o600);
    const e = await startServerProcess(["--edge", "--nats", secure.urls, "--nats-nkey-file", seedFile]);
    await until("the stream at the nkey edge", 10_000, async () => (await streamsOf(e)).find((x) => x.name === "cam" && x.state === "live"));
    const v = await viewer(`${e.wsBase}ws/cam`);
    await moreFrames(v, 10, "frames at the nkey edge");
    expect(readFileSync(`/proc/${e.pid}/cmdline`, "utf8")).not.toContain(seed);
  }, 60_000);
});

describe("NATS over TLS", () => {
  // A CA of the test's own, a certificate it signs for the node (and, as the server requires one,
  // for its clients), and a second CA that signed nothing here.
  let dir: string;
  let secure: NatsCluster;
  const files = { ca: "", cert: "", key: "", otherCa: "" };
  const caExtensions = [
    { name: "basicConstraints" as const, cA: true, critical: true },
    { name: "keyUsage" as const, keyCertSign: true, cRLSign: true, critical: true },
  ];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "canvascast-nats-tls-"));
    const ca = await generate([{ name: "commonName", value: "canvascast test CA" }], { algorithm: "sha256", extensions: caExtensions });
    const other = await generate([{ name: "commonName", value: "another CA" }], { algorithm: "sha256", extensions: caExtensions });
    // Signed by the CA for "localhost": SANs localhost and 127.0.0.1, for servers and clients.
    const leaf = await generate([{ name: "commonName", value: "localhost" }], { algorithm: "sha256", ca: { key: ca.private, cert: ca.cert } });
    for (const [name, text] of [["ca", ca.cert], ["cert", leaf.cert], ["key", leaf.private], ["otherCa", other.cert]] as const) {
      const path = join(dir, `${name}.pem`);
      writeFileSync(path, text, { mode: 0o600 });
      files[name] = path;
    }
    secure = await startNatsCluster(1, {
      extraConfig: `tls { cert_file: "${files.cert}", key_file: "${files.key}", ca_file: "${files.ca}", verify: true }`,
    });
  }, 30_000);
  afterAll(async () => {
    await secure?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const tlsUrl = (): string => `tls://127.0.0.1:${secure.nodes[0]!.port}`;

  test("a CA and a client certificate from files carry an origin's frames to an edge; a server the CA did not sign is refused, and the origin serves its own viewers", async () => {
    const client = ["--nats-tls-ca", files.ca, "--nats-tls-cert", files.cert, "--nats-tls-key", files.key];
    const o = await startServerProcess(["--stream", "cam=test:ball", ...SIZE, "--nats", tlsUrl(), ...client]);
    const e = await startServerProcess(["--edge", "--nats", tlsUrl(), ...client]);
    await until("the stream at the edge, over TLS", 15_000, async () => (await streamsOf(e)).find((x) => x.name === "cam" && x.state === "live"));
    const v = await viewer(`${e.wsBase}ws/cam`);
    await moreFrames(v, 20, "frames relayed over TLS");
    const frames = v.frames();
    expect(frames[0]!.key).toBe(true);
    expectKeyframeRule(frames);
    expect(await decodedPictureCount(frames.map((f) => f.data), 160, 120)).toBe(frames.length);
    // The node saw both connections as TLS ones.
    const connz = await secure.nodes[0]!.monitor<{ connections: { name?: string; tls_version?: string }[] }>("connz");
    for (const server of [o, e]) expect(connz.connections.find((c) => c.name?.endsWith(`:${server.pid}`))?.tls_version).toMatch(/^1\.[23]$/);

    // Trusting another CA, an origin refuses the node's certificate: said in its log, retried, its own viewers served.
    const wary = await startServerProcess(["--stream", "own=test:ball", ...SIZE, "--nats", tlsUrl(), "--nats-tls-ca", files.otherCa, "--nats-tls-cert", files.cert, "--nats-tls-key", files.key]);
    await until("the refusal in the log", 15_000, () => Promise.resolve(wary.stderr().includes("CC_ERR_NATS_CONNECT") ? true : undefined));
    expect(wary.stderr()).toMatch(/certificate/i);
    const own = await viewer(`${wary.wsBase}ws/own`);
    await moreFrames(own, 10, "the wary origin's own viewer's frames");
    expect(await (await fetch(`${wary.url}metrics`)).text()).toMatch(/^canvascast_nats_connected 0$/m);
  }, 60_000);
});

describe("a NATS token", () => {
  const TOKEN = "nats-token-4b1d8e";
  let secure: NatsCluster;
  let dir: string;
  beforeAll(async () => {
    secure = await startNatsCluster(1, { extraConfig: `authorization { token: "${TOKEN}" }` });
    dir = mkdtempSync(join(tmpdir(), "canvascast-nats-token-"));
  }, 30_000);
  afterAll(async () => {
    await secure?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("from the environment (an origin) or a file (an edge) authenticates; argv never holds it", async () => {
    const o = await startServerProcess(["--stream", "cam=test:ball", ...SIZE, "--nats", secure.urls], 20_000, undefined, { ...process.env, CANVASCAST_NATS_TOKEN: TOKEN });
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    const e = await startServerProcess(["--edge", "--nats", secure.urls, "--nats-token-file", tokenFile]);
    await until("the stream at the token edge", 10_000, async () => (await streamsOf(e)).find((x) => x.name === "cam" && x.state === "live"));
    const v = await viewer(`${e.wsBase}ws/cam`);
    await moreFrames(v, 10, "frames through the token-protected node");
    for (const server of [o, e]) {
      expect(readFileSync(`/proc/${server.pid}/cmdline`, "utf8")).not.toContain(TOKEN);
      expect(server.output()).not.toContain(TOKEN);
    }
    // Without it the node refuses the connection and the log says why.
    const refused = await startServerProcess(["--stream", "own=test:ball", ...SIZE, "--nats", secure.urls]);
    await until("the refusal in the log", 10_000, () => Promise.resolve(refused.stderr().includes("CC_ERR_NATS_AUTH") ? true : undefined));
  }, 60_000);
});

describe("a NATS creds file", () => {
  // Decentralised auth, as NATS operators run it: an operator signs an account, the account signs
  // canvascast's user; the node trusts the operator and knows the account (a memory resolver).
  let secure: NatsCluster;
  let dir: string;
  let creds: string;
  beforeAll(async () => {
    const operator = createOperator();
    const account = createAccount();
    const user = createUser();
    const operatorJwt = await encodeOperator("test-operator", operator);
    // No limits (an account JWT without them allows no connection).
    const accountJwt = await encodeAccount("cameras", account, { limits: { conn: -1, subs: -1, data: -1, payload: -1, imports: -1, exports: -1, leaf: -1, wildcards: true } }, { signer: operator });
    const userJwt = await encodeUser("canvascast", user, account);
    dir = mkdtempSync(join(tmpdir(), "canvascast-nats-creds-"));
    creds = join(dir, "canvascast.creds");
    writeFileSync(creds, fmtCreds(userJwt, user), { mode: 0o600 });
    secure = await startNatsCluster(1, {
      extraConfig: `operator: ${operatorJwt}\nresolver: MEMORY\nresolver_preload: { ${account.getPublicKey()}: ${accountJwt} }`,
    });
  }, 30_000);
  afterAll(async () => {
    await secure?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("signed by the operator's account, authenticates an origin and an edge; none is refused", async () => {
    await startServerProcess(["--stream", "cam=test:ball", ...SIZE, "--nats", secure.urls, "--nats-creds", creds]);
    const e = await startServerProcess(["--edge", "--nats", secure.urls, "--nats-creds", creds]);
    await until("the stream at the creds edge", 10_000, async () => (await streamsOf(e)).find((x) => x.name === "cam" && x.state === "live"));
    const v = await viewer(`${e.wsBase}ws/cam`);
    await moreFrames(v, 10, "frames through the operator-mode node");
    const refused = await startServerProcess(["--stream", "own=test:ball", ...SIZE, "--nats", secure.urls]);
    await until("the refusal in the log", 10_000, () => Promise.resolve(refused.stderr().includes("CC_ERR_NATS_AUTH") ? true : undefined));
  }, 60_000);
});
