// Viewer load for the benchmarks, run as its own process so the server's CPU and memory are its
// own: N plain `ws` viewers of one stream, of which K read their socket at a fraction of the
// stream's bitrate. Every viewer acks as the protocol asks. Prints one JSON line of results.
//
//   tsx bench/clients.ts <ws url> <viewers> <throttled> <seconds> [throttled bytes/s]

import WebSocket from "ws";
import { decodeBinaryMessage } from "../shared/protocol.js";
import { connectThrottledViewer, type ThrottledViewer } from "../test/helpers/throttled-viewer.js";

const [url, nArg, kArg, secondsArg, rateArg] = process.argv.slice(2);
if (!url || !nArg || !kArg || !secondsArg) {
  console.error("usage: tsx bench/clients.ts <ws url> <viewers> <throttled> <seconds> [throttled bytes/s]");
  process.exit(2);
}
const viewers = Number(nArg);
const throttled = Number(kArg);
const seconds = Number(secondsArg);
const throttledRate = Number(rateArg ?? 1_500_000 / 8 / 2);

interface Healthy {
  readonly delays: number[];
  frames: number;
  gaps: number;
  lastSeq: number | null;
}

function healthyViewer(): Promise<{ ws: WebSocket; stats: Healthy }> {
  const ws = new WebSocket(url!);
  const stats: Healthy = { delays: [], frames: 0, gaps: 0, lastSeq: null };
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    if (!isBinary) return;
    const msg = decodeBinaryMessage(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    if (msg.kind !== "video") return;
    const { seq, serverTime, flags } = msg.header;
    if (stats.lastSeq !== null && seq !== ((stats.lastSeq + 1) >>> 0)) stats.gaps++;
    stats.lastSeq = seq;
    stats.frames++;
    // Delivery delay: the frame's server time (last byte read from the pipe) to its arrival here.
    if ((flags & 0x02) === 0) stats.delays.push(performance.timeOrigin + performance.now() - serverTime);
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

async function main(): Promise<void> {
  const healthy = await Promise.all(Array.from({ length: viewers - throttled }, () => healthyViewer()));
  const slow: ThrottledViewer[] = [];
  for (let i = 0; i < throttled; i++) slow.push(await connectThrottledViewer(url!, { bytesPerSecond: throttledRate, ackEveryMs: 100 }));
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const delays = healthy.flatMap((h) => h.stats.delays).sort((a, b) => a - b);
  const pct = (p: number): number | null => (delays.length ? delays[Math.min(delays.length - 1, Math.floor((p / 100) * delays.length))]! : null);
  const slowLags = slow
    .flatMap((s) => s.frames.filter((f) => (f.header.flags & 0x02) === 0).map((f) => f.readAt - f.header.serverTime))
    .sort((a, b) => a - b);
  const result = {
    viewers,
    throttled,
    seconds,
    healthy: {
      framesPerViewer: healthy.length ? healthy.reduce((n, h) => n + h.stats.frames, 0) / healthy.length : 0,
      gaps: healthy.reduce((n, h) => n + h.stats.gaps, 0),
      delayP50Ms: pct(50),
      delayP99Ms: pct(99),
    },
    slow: {
      framesPerViewer: slow.length ? slow.reduce((n, s) => n + s.frames.length, 0) / slow.length : 0,
      skippedNotices: slow.reduce((n, s) => n + s.texts.filter((t) => t.type === "skipped").length, 0),
      lagMaxMs: slowLags.at(-1) ?? null,
    },
  };
  for (const h of healthy) h.ws.terminate();
  for (const s of slow) s.close();
  process.stdout.write(JSON.stringify(result) + "\n");
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
