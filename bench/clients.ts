// Viewer load for the benchmarks, run as its own process so the server's CPU and memory are its
// own (bench/fanout.ts starts several, one per ~250 viewers): N plain `ws` viewers of one stream,
// of which K read their socket at a fraction of the stream's bitrate. Every viewer acks as the
// protocol asks.
//
//   tsx bench/clients.ts <ws url> <viewers> <throttled> <seconds> [throttled bytes/s]
//
// Once every viewer is connected it prints `{"ready":…}` and waits for a line on stdin; from then
// it measures for <seconds> and prints one JSON line of results (ClientsReport). Delivery delays
// go out as a histogram of 0.01 ms bins, so the parent can pool them over processes.

import { createInterface } from "node:readline";
import WebSocket from "ws";
import { decodeBinaryMessage, isReplay } from "../shared/protocol.js";
import { connectThrottledViewer, type ThrottledViewer } from "../test/helpers/throttled-viewer.js";
import type { ClientsReport } from "./delay-histogram.js";
import { DelayHistogram } from "./delay-histogram.js";

const [url, nArg, kArg, secondsArg, rateArg] = process.argv.slice(2);
if (!url || !nArg || !kArg || !secondsArg) {
  console.error("usage: tsx bench/clients.ts <ws url> <viewers> <throttled> <seconds> [throttled bytes/s]");
  process.exit(2);
}
const viewers = Number(nArg);
const throttled = Number(kArg);
const seconds = Number(secondsArg);
const throttledRate = Number(rateArg ?? 1_500_000 / 8 / 2);

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
  for (let i = 0; i < throttled; i++) slow.push(await connectThrottledViewer(url!, { bytesPerSecond: throttledRate, ackEveryMs: 100 }));
  process.stdout.write(JSON.stringify({ ready: healthy.length + slow.length }) + "\n");
  await waitForGo();
  measuring = true;
  const slowFrom = slow.map((s) => s.frames.length);
  const slowTextsFrom = slow.map((s) => s.texts.length);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  const slowLags = slow.flatMap((s, i) =>
    s.frames
      .slice(slowFrom[i])
      .filter((f) => !isReplay(f.header))
      .map((f) => f.readAt - f.header.serverTime),
  );
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
      frames: slow.reduce((n, s, i) => n + s.frames.length - slowFrom[i]!, 0),
      skippedNotices: slow.reduce((n, s, i) => n + s.texts.slice(slowTextsFrom[i]).filter((t) => t.type === "skipped").length, 0),
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
