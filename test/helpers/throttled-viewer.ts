// A real `ws` viewer on a slow link: it reads its TCP socket at a fixed byte rate (token bucket
// over socket.pause/resume) and, optionally, acks what it has read (acks are optional). It can
// read /webm/ too: binaries that are not frame-protocol frames are only timed.

import { createConnection, type Socket } from "node:net";
import WebSocket from "ws";
import { decodeBinaryMessage, parseServerMessage, type ServerMessage, type UnknownServerMessage, type VideoFrameHeader } from "../../shared/protocol.js";

export interface ThrottledFrame {
  readonly header: VideoFrameHeader;
  readonly data: Uint8Array;
  /** Wall clock when the frame was read, ms since the epoch. */
  readonly readAt: number;
}

export interface ThrottledViewer {
  readonly frames: ThrottledFrame[];
  readonly texts: (ServerMessage | UnknownServerMessage)[];
  /** When each text message was read, ms since the epoch (parallel to `texts`). */
  readonly textsReadAt: number[];
  /** When each binary message that is not a frame-protocol video frame (e.g. WebM) was read. */
  readonly otherBinariesReadAt: number[];
  readonly closed: Promise<{ code: number; reason: string }>;
  bytesRead(): number;
  close(): void;
}

export interface ThrottleOptions {
  readonly bytesPerSecond: number;
  /** Send acks every this many ms (null: never ack). */
  readonly ackEveryMs: number | null;
}

const TICK_MS = 20;
const READ_SIZE = 2048;

export async function connectThrottledViewer(url: string, options: ThrottleOptions): Promise<ThrottledViewer> {
  let socket: Socket | null = null;
  let budget = 0;
  // Hold the TCP socket ws will use, and read it in small pieces (as a slow link delivers them)
  // rather than the 64 KB reads Node makes by default, so pacing is smooth.
  const readBuffer = Buffer.alloc(READ_SIZE);
  const connect = ((opts: Parameters<typeof createConnection>[0]) => {
    const sock: Socket = createConnection({
      ...(opts as unknown as object),
      onread: {
        buffer: readBuffer,
        callback: (bytes: number, buf: Uint8Array): boolean => {
          // ws listens for 'data'; with onread the socket does not emit it by itself.
          sock.emit("data", Buffer.from(buf.subarray(0, bytes)));
          return budget > 0;
        },
      },
    } as unknown as Parameters<typeof createConnection>[0]);
    socket = sock;
    return sock;
  }) as typeof createConnection;
  const ws = new WebSocket(url, { createConnection: connect });
  const frames: ThrottledFrame[] = [];
  const texts: (ServerMessage | UnknownServerMessage)[] = [];
  const textsReadAt: number[] = [];
  const otherBinariesReadAt: number[] = [];
  let read = 0;
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    if (!isBinary) {
      texts.push(parseServerMessage(data.toString("utf8")));
      textsReadAt.push(Date.now());
      return;
    }
    const msg = data.byteLength >= 4 ? decodeBinaryMessage(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)) : null;
    if (msg?.kind === "video") frames.push({ header: msg.header, data: msg.data, readAt: Date.now() });
    else otherBinariesReadAt.push(Date.now());
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const sock = socket as Socket | null;
  if (!sock) throw new Error("no socket");
  sock.on("data", (chunk: Buffer) => {
    read += chunk.byteLength;
    budget -= chunk.byteLength;
    if (budget <= 0) sock.pause();
  });
  const burst = Math.max(4096, options.bytesPerSecond / 10);
  const ticker = setInterval(() => {
    budget = Math.min(burst, budget + (options.bytesPerSecond * TICK_MS) / 1000);
    if (budget > 0 && sock.isPaused()) sock.resume();
  }, TICK_MS);
  let lastAcked = -1;
  const acker =
    options.ackEveryMs === null
      ? null
      : setInterval(() => {
          const newest = frames.at(-1)?.header.seq;
          if (newest !== undefined && newest !== lastAcked && ws.readyState === WebSocket.OPEN) {
            ws.send(JSON.stringify({ type: "ack", seq: newest }));
            lastAcked = newest;
          }
        }, options.ackEveryMs);
  void closed.then(() => {
    clearInterval(ticker);
    if (acker) clearInterval(acker);
  });
  return {
    frames,
    texts,
    textsReadAt,
    otherBinariesReadAt,
    closed,
    bytesRead: () => read,
    close() {
      clearInterval(ticker);
      if (acker) clearInterval(acker);
      ws.terminate();
    },
  };
}
