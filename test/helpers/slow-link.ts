// A slow link in front of the server: a TCP proxy on loopback that forwards what the client sends
// at once and what the server sends at a fixed byte rate (token bucket, small reads), so a browser
// that cannot be throttled otherwise sees a real slow connection. It also reads the WebSocket
// frames it forwards to the client, and notes when each binary message was delivered.

import { createServer, connect, type Server, type Socket } from "node:net";

export interface DeliveredMessage {
  /** When the message's last byte was forwarded to the client, ms since the epoch. */
  readonly at: number;
  readonly payload: Uint8Array;
}

export interface SlowLink {
  readonly port: number;
  /** Binary messages server → client, in order, as delivered. */
  readonly delivered: DeliveredMessage[];
  close(): Promise<void>;
}

const TICK_MS = 10;
const READ_SIZE = 2048;

export async function startSlowLink(targetPort: number, bytesPerSecond: number): Promise<SlowLink> {
  const delivered: DeliveredMessage[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    const upstream = connect({ host: "127.0.0.1", port: targetPort });
    sockets.add(upstream);
    client.pipe(upstream);
    const frames = new FrameReader((payload) => delivered.push({ at: Date.now(), payload }));
    let budget = 0;
    let waiting: Buffer | null = null;
    const forward = (): void => {
      while (waiting !== null && budget > 0) {
        const n = Math.min(waiting.byteLength, budget, READ_SIZE);
        const piece = waiting.subarray(0, n);
        client.write(piece);
        frames.push(piece);
        budget -= n;
        waiting = n === waiting.byteLength ? null : waiting.subarray(n);
      }
      if (waiting === null && upstream.isPaused()) upstream.resume();
    };
    upstream.on("data", (chunk: Buffer) => {
      waiting = waiting === null ? chunk : Buffer.concat([waiting, chunk]);
      upstream.pause(); // the kernel holds the rest: the server sees a slow reader
      forward();
    });
    const ticker = setInterval(() => {
      budget = Math.min(Math.max(READ_SIZE, bytesPerSecond / 20), budget + (bytesPerSecond * TICK_MS) / 1000);
      forward();
    }, TICK_MS);
    timers.add(ticker);
    const end = (): void => {
      clearInterval(ticker);
      timers.delete(ticker);
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("slow link: no port");
  let closing: Promise<void> | null = null;
  return {
    port: address.port,
    delivered,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const t of timers) clearInterval(t);
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      });
      return closing;
    },
  };
}

/** Reads server → client WebSocket frames (unmasked) out of the bytes forwarded; calls back with each binary message. */
class FrameReader {
  private buffer = Buffer.alloc(0);
  private handshakeDone = false;

  constructor(private readonly onBinary: (payload: Uint8Array) => void) {}

  push(bytes: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, bytes]);
    if (!this.handshakeDone) {
      const end = this.buffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      this.buffer = this.buffer.subarray(end + 4);
      this.handshakeDone = true;
    }
    for (;;) {
      if (this.buffer.byteLength < 2) return;
      const opcode = this.buffer[0]! & 0x0f;
      let length = this.buffer[1]! & 0x7f;
      let at = 2;
      if (length === 126) {
        if (this.buffer.byteLength < 4) return;
        length = this.buffer.readUInt16BE(2);
        at = 4;
      } else if (length === 127) {
        if (this.buffer.byteLength < 10) return;
        length = Number(this.buffer.readBigUInt64BE(2));
        at = 10;
      }
      if (this.buffer.byteLength < at + length) return;
      if (opcode === 0x2) this.onBinary(new Uint8Array(this.buffer.subarray(at, at + length)));
      this.buffer = this.buffer.subarray(at + length);
    }
  }
}
