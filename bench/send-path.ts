// The fan-out's send path on its own: the time the server's event loop spends handing one
// 1.5 Mbit/s-sized frame to N open sockets, `ws.send()` per socket (what the hub did before:
// every socket frames the message again) against one WireMessage written to every socket as the
// same buffers (what it does now). Both run on the same sockets, alternating frame by frame, so
// machine load hits both alike; the minimum over many frames is the least disturbed figure.
//
//   npx tsx bench/send-path.ts [viewers=500] [frames=300]
// Prints one JSON line; bench/run.ts records it as the "send" scenario.

import type { AddressInfo } from "node:net";
import WebSocket, { WebSocketServer } from "ws";
import { WsViewerSocket } from "../server/http/viewer-socket.js";
import { FrameMessage } from "../server/stream/frame-message.js";
import { encodeVideoFrame } from "../shared/protocol.js";
import { micros, millis } from "../shared/units.js";

export interface SendPathResult {
  readonly viewers: number;
  readonly frames: number;
  readonly frameBytes: number;
  /** µs to hand one frame to every socket: p50 and min over the frames of each method. */
  readonly wsSendUs: { p50: number; min: number };
  readonly wireUs: { p50: number; min: number };
}

export async function measureSendPath(viewers: number, frames: number): Promise<SendPathResult> {
  const wss = new WebSocketServer({ port: 0, host: "127.0.0.1", perMessageDeflate: false });
  await new Promise<void>((resolve) => wss.once("listening", resolve));
  const { port } = wss.address() as AddressInfo;
  const servers: WebSocket[] = [];
  wss.on("connection", (ws) => servers.push(ws));
  const clients: WebSocket[] = [];
  try {
    for (let i = 0; i < viewers; i++) {
      const c = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
      c.on("message", () => undefined);
      clients.push(c);
      await new Promise<void>((resolve, reject) => c.once("open", resolve).once("error", reject));
    }
    while (servers.length < viewers) await new Promise((r) => setTimeout(r, 5));
    const wired = servers.map((ws) => new WsViewerSocket(ws));
    // 1.5 Mbit/s at 30 fps: 6250 bytes a frame.
    const data = new Uint8Array(6250).fill(0x5a);
    const wsSend: number[] = [];
    const wire: number[] = [];
    for (let f = 0; f < frames * 2; f++) {
      const header = { flags: 0, seq: f, pts: micros(f * 33_333), serverTime: millis(Date.now()) };
      const t0 = performance.now();
      if (f % 2 === 0) {
        // Before: one encoded copy per frame, then ws frames it for every socket.
        const bytes = encodeVideoFrame(header, data);
        for (const ws of servers) ws.send(bytes);
        wsSend.push((performance.now() - t0) * 1000);
      } else {
        const message = FrameMessage.encode(header, data);
        for (const s of wired) s.sendWire(message.wire);
        wire.push((performance.now() - t0) * 1000);
      }
      // Let the clients drain, as at 30 fps; two sends per 33 ms keeps the run short.
      await new Promise((r) => setTimeout(r, 16));
    }
    const stat = (xs: number[]): { p50: number; min: number } => {
      const s = [...xs].sort((a, b) => a - b);
      return { p50: Math.round(s[Math.floor(s.length / 2)]!), min: Math.round(s[0]!) };
    };
    return { viewers, frames, frameBytes: 24 + data.byteLength, wsSendUs: stat(wsSend), wireUs: stat(wire) };
  } finally {
    for (const c of clients) c.terminate();
    for (const s of servers) s.terminate();
    wss.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const viewers = Number(process.argv[2] ?? 500);
  const frames = Number(process.argv[3] ?? 300);
  console.log(JSON.stringify(await measureSendPath(viewers, frames)));
}
