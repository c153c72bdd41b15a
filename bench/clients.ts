// Viewer load for the benchmarks, run as its own process so the server's CPU and memory are its
// own (bench/fanout.ts starts several, one per ~250 viewers): N plain `ws` viewers of one stream,
// of which K read their socket at a fraction of the stream's bitrate. The healthy viewers ack (as
// our player does); the throttled ones are `ws-acks` (ack every 100 ms), `ws-no-acks` (send
// nothing) or `webm` (read /webm/<stream>?meta=1 and send nothing).
//
//   tsx bench/clients.ts <ws url> <viewers> <throttled> <seconds> [throttled bytes/s] [throttled kind]
//
// Once every viewer is connected it prints `{"ready":…}` and waits for a line on stdin; from then
// it measures for <seconds> and prints one JSON line of results (ClientsReport). Delivery delays
// go out as a histogram of 0.01 ms bins, so the parent can pool them over processes.

import { createInterface } from "node:readline";
import WebSocket from "ws";
import { decodeBinaryMessage, isReplay } from "../shared/protocol.js";
import { connectThrottledViewer, type ThrottledViewer } from "../test/helpers/throttled-viewer.js";
import { DelayHistogram, SLOW_KINDS, type ClientsReport, type SlowKind } from "./delay-histogram.js";

const [url, nArg, kArg, secondsArg, rateArg] = process.argv.slice(2);
if (!url || !nArg || !kArg || !secondsArg) {
  console.error("usage: tsx bench/clients.ts <ws url> <viewers> <throttled> <seconds> [throttled bytes/s]");
  process.exit(2);
}
const viewers = Number(nArg);
const throttled = Number(kArg);
const seconds = Number(secondsArg);
const throttledRate = Number(rateArg ?? 1_500_000 / 8 / 2);
const throttledKind = (process.argv[7] ?? "ws-acks") as SlowKind;
if (!SLOW_KINDS.includes(throttledKind)) {
  console.error(`throttled kind must be one of ${SLOW_KINDS.join(", ")}`);
  process.exit(2);
}

/** Set when the parent says go: frames before it (joins, replays) are not counted. */
let measuring = false;
const delays = new DelayHistogram();

interface Healthy {
  frames: number;
  gaps: number;
  lastSeq: number | null;
}

function healthyViewer(): Promise<{ ws: WebSocket; stats: Healthy }> {
  const ws = new WebSocket(url!);
  const stats: Healthy = { frames: 0, gaps: 0, lastSeq: null };
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    if (!isBinary) return;
    const msg = decodeBinaryMessage(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    if (msg.kind !== "video") return;
    const { seq, serverTime } = msg.header;
    if (measuring && stats.lastSeq !== null && seq !== ((stats.lastSeq + 1) >>> 0)) stats.gaps++;
    stats.lastSeq = seq;
    if (!measuring) return;
    stats.frames++;
    // Delivery delay: the frame's server time (last byte read from the pipe) to its arrival here.
    if (!isReplay(msg.header)) delays.add(performance.timeOrigin + performance.now() - serverTime);
  });
  const timer = setInterval(() => {
    if (stats.lastSeq !== null && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "ack", seq: stats.lastSeq }));
  }, 100);
  ws.once("close", () => clearInterval(timer));
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve({ ws, stats }));
    ws.once("error", reject);
  });
}

/** A /webm/?meta=1 reader's lag per frame read since `from`: its `frame` message's server time to when the frame's bytes were read. */
function webmLags(s: ThrottledViewer, from: number): number[] {
  // Binaries: the init segment, then one per frame, each right after its `frame` message.
  const metas = s.texts.flatMap((t) => (t.type === "unknown" && (t.raw as { type?: unknown }).type === "frame" ? [(t.raw as { serverTime: number }).serverTime] : []));
  return metas.flatMap((serverTime, i) => {
    const readAt = s.otherBinariesReadAt[i + 1];
    return readAt !== undefined && readAt >= from ? [readAt - serverTime] : [];
  });
}

function waitForGo(): Promise<void> {
  return new Promise((resolve) => {
    const lines = createInterface({ input: process.stdin });
    lines.once("line", () => {
      lines.close();
      resolve();
    });
  });
}

async function main(): Promise<void> {
  const healthy = await Promise.all(Array.from({ length: viewers - throttled }, () => healthyViewer()));
  const slow: ThrottledViewer[] = [];
  const slowUrl = throttledKind === "webm" ? url!.replace("/ws/", "/webm/") + "?meta=1" : url!;
  const ackEveryMs = throttledKind === "ws-acks" ? 100 : null;
  for (let i = 0; i < throttled; i++) slow.push(await connectThrottledViewer(slowUrl, { bytesPerSecond: throttledRate, ackEveryMs }));
  process.stdout.write(JSON.stringify({ ready: healthy.length + slow.length }) + "\n");
  await waitForGo();
  measuring = true;
  const startedAt = Date.now();
  const slowFrom = slow.map((s) => s.frames.length);
  const slowTextsFrom = slow.map((s) => s.texts.length);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  const slowLags = slow.flatMap((s, i) => (throttledKind === "webm" ? webmLags(s, startedAt) : s.frames.slice(slowFrom[i]).filter((f) => !isReplay(f.header)).map((f) => f.readAt - f.header.serverTime)));
  const slowFrames = slow.reduce((n, s, i) => n + (throttledKind === "webm" ? s.otherBinariesReadAt.filter((t) => t >= startedAt).length : s.frames.length - slowFrom[i]!), 0);
  const report: ClientsReport = {
    viewers,
    throttled,
    seconds,
    healthy: {
      viewers: healthy.length,
      frames: healthy.reduce((n, h) => n + h.stats.frames, 0),
      gaps: healthy.reduce((n, h) => n + h.stats.gaps, 0),
      delays: delays.toJSON(),
    },
    slow: {
      viewers: slow.length,
      frames: slowFrames,
      skippedNotices: slow.reduce((n, s, i) => n + s.texts.slice(slowTextsFrom[i]).filter((t) => t.type === "skipped").length, 0),
      lagP50Ms: slowLags.length ? [...slowLags].sort((a, b) => a - b)[Math.floor(slowLags.length / 2)]! : null,
      lagMaxMs: slowLags.length ? slowLags.reduce((a, b) => Math.max(a, b)) : null,
    },
  };
  for (const h of healthy) h.ws.terminate();
  for (const s of slow) s.close();
  process.stdout.write(JSON.stringify(report) + "\n");
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
