// A real `ws` client that records everything a viewer receives, decoded with the shared protocol.

import WebSocket from "ws";
import {
  decodeBinaryMessage,
  parseServerMessage,
  type ServerMessage,
  type UnknownServerMessage,
  type VideoFrameHeader,
} from "../../shared/protocol.js";

export type Received =
  | { readonly type: "text"; readonly message: ServerMessage | UnknownServerMessage; readonly at: number }
  | { readonly type: "frame"; readonly header: VideoFrameHeader; readonly data: Uint8Array; readonly at: number };

export interface TestViewer {
  readonly ws: WebSocket;
  readonly received: Received[];
  frames(): Extract<Received, { type: "frame" }>[];
  texts(): (ServerMessage | UnknownServerMessage)[];
  /** Resolves once at least n frames have arrived. */
  waitForFrames(n: number, timeoutMs?: number): Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

export async function connectViewer(url: string, options: WebSocket.ClientOptions = {}): Promise<TestViewer> {
  const ws = new WebSocket(url, options);
  const received: Received[] = [];
  const waiters = new Set<() => void>();
  ws.binaryType = "nodebuffer";
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    const at = performance.timeOrigin + performance.now();
    if (isBinary) {
      const msg = decodeBinaryMessage(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      if (msg.kind === "video") received.push({ type: "frame", header: msg.header, data: msg.data, at });
    } else {
      received.push({ type: "text", message: parseServerMessage(data.toString("utf8")), at });
    }
    for (const w of [...waiters]) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
    ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
  const frames = (): Extract<Received, { type: "frame" }>[] =>
    received.filter((r): r is Extract<Received, { type: "frame" }> => r.type === "frame");
  return {
    ws,
    received,
    frames,
    texts: () => received.flatMap((r) => (r.type === "text" ? [r.message] : [])),
    waitForFrames(n, timeoutMs = 15_000) {
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (frames().length >= n) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`only ${frames().length} of ${n} frames arrived in ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    closed,
    close: () => ws.close(),
  };
}

/** What became of an upgrade: it opened (and was closed again by us), or the server answered with an HTTP status. */
export type UpgradeOutcome =
  | { readonly opened: true }
  | { readonly opened: false; readonly status: number; readonly code: string | undefined; readonly socketClosed: boolean };

/**
 * Tries to open `url` with these handshake headers. A refusal is read whole: its status, the `error`
 * code of its JSON body, and whether the server then closed the TCP connection.
 */
export function tryUpgrade(url: string, headers: Record<string, string> = {}, options: WebSocket.ClientOptions = {}): Promise<UpgradeOutcome> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { ...options, headers });
    ws.once("open", () => {
      ws.close();
      resolve({ opened: true });
    });
    ws.once("unexpected-response", (req, res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (t: string) => (body += t));
      res.once("end", () => {
        let code: string | undefined;
        try {
          code = (JSON.parse(body) as { error?: string }).error;
        } catch {
          code = undefined;
        }
        const done = (socketClosed: boolean): void => {
          req.destroy();
          resolve({ opened: false, status: res.statusCode ?? 0, code, socketClosed });
        };
        if (res.socket.destroyed) done(true);
        else {
          const timer = setTimeout(() => done(false), 2000);
          res.socket.once("close", () => {
            clearTimeout(timer);
            done(true);
          });
        }
      });
    });
    ws.on("error", (err) => reject(err)); // after a refusal, destroying the request may report here too: ignored then
  });
}

/** Acks the newest frame received every `everyMs`, as the protocol asks (so flow control sees a healthy viewer). Returns a stop function. */
export function startAcking(v: TestViewer, everyMs = 100): () => void {
  const timer = setInterval(() => {
    const seq = v.frames().at(-1)?.header.seq;
    if (seq !== undefined && v.ws.readyState === WebSocket.OPEN) v.ws.send(JSON.stringify({ type: "ack", seq }));
  }, everyMs);
  return () => clearInterval(timer);
}
