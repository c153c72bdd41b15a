// HTTP and WebSocket by hand over node:net, for requests fetch/http.request would normalise or refuse
// to send (traversal paths, oversized or half-sent headers, bad handshakes, garbage bytes).

import { randomBytes } from "node:crypto";
import { createConnection, type Socket } from "node:net";

export interface RawConnection {
  readonly socket: Socket;
  /** Every byte the server sent so far. */
  data(): Buffer;
  /** Resolves once the connection is closed (by either side, or reset), with every byte received. */
  readonly closed: Promise<Buffer>;
  /** Resolves once `done(bytes received)` holds; rejects when the connection closes first. */
  waitFor(done: (data: Buffer) => boolean, what: string, timeoutMs?: number): Promise<void>;
  /** Resolves once the bytes received contain `text`. */
  waitForText(text: string, timeoutMs?: number): Promise<void>;
  destroy(): void;
}

export interface RawOptions {
  /** Source address (any of 127.0.0.0/8), to be another client as far as per-address limits go. */
  readonly localAddress?: string;
}

export async function openRaw(base: string, options: RawOptions = {}): Promise<RawConnection> {
  const { hostname, port } = new URL(base);
  const socket = createConnection({ host: hostname, port: Number(port), ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
  const chunks: Buffer[] = [];
  const listeners = new Set<() => void>();
  let ended = false;
  socket.on("data", (chunk: Buffer) => {
    chunks.push(chunk);
    for (const l of [...listeners]) l();
  });
  const closed = new Promise<Buffer>((resolve) =>
    socket.once("close", () => {
      ended = true;
      for (const l of [...listeners]) l();
      resolve(Buffer.concat(chunks));
    }),
  );
  socket.on("error", () => {
    // a reset by the server ends the connection like a close; `closed` reports it
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const data = (): Buffer => Buffer.concat(chunks);
  const waitFor: RawConnection["waitFor"] = (cond, what, timeoutMs = 5000) =>
    new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (cond(data())) finish(null);
        else if (ended) finish(new Error(`connection closed before ${what}`));
      };
      const finish = (err: Error | null): void => {
        listeners.delete(check);
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(() => finish(new Error(`no ${what} in ${timeoutMs} ms`)), timeoutMs);
      listeners.add(check);
      check();
    });
  return {
    socket,
    data,
    closed,
    waitFor,
    waitForText: (text, timeoutMs) => waitFor((d) => d.includes(text), JSON.stringify(text), timeoutMs),
    destroy: () => socket.destroy(),
  };
}

export interface RawReply {
  /** 0 when the server sent no status line. */
  readonly status: number;
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** The bytes after the header, e.g. WebSocket frames after a 101. */
  readonly rest: Buffer;
}

export function parseReply(data: Buffer): RawReply {
  const end = data.indexOf("\r\n\r\n");
  const head = (end < 0 ? data : data.subarray(0, end)).toString("latin1");
  const rest = end < 0 ? Buffer.alloc(0) : data.subarray(end + 4);
  const [statusLine = "", ...lines] = head.split("\r\n");
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status, headers, body: rest.toString("utf8"), rest };
}

/** The whole reply (headers, and a body of its Content-Length) that starts at byte `from` of a keep-alive connection. */
export async function nextReply(conn: RawConnection, from: number): Promise<RawReply> {
  const complete = (d: Buffer): boolean => {
    const reply = parseReply(d.subarray(from));
    return reply.status > 0 && reply.rest.length >= Number(reply.headers["content-length"] ?? 0);
  };
  await conn.waitFor(complete, "a whole reply");
  return parseReply(conn.data().subarray(from));
}

/**
 * Sends `bytes` on a new connection and returns what the server answered once it closed the
 * connection; fails when it has not closed it within `timeoutMs`.
 */
export async function rawRequest(base: string, bytes: string | Buffer, options: RawOptions & { timeoutMs?: number } = {}): Promise<RawReply> {
  const conn = await openRaw(base, options);
  conn.socket.write(bytes);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`the server did not close the connection in ${options.timeoutMs ?? 5000} ms; got ${JSON.stringify(conn.data().toString("latin1").slice(0, 80))}`));
    }, options.timeoutMs ?? 5000);
  });
  try {
    return parseReply(await Promise.race([conn.closed, timeout]));
  } finally {
    clearTimeout(timer);
  }
}

/** A GET exactly as written (no normalisation of the path), asking the server to close after it. */
export function rawGet(base: string, path: string, options: RawOptions = {}): Promise<RawReply> {
  const { host } = new URL(base);
  return rawRequest(base, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`, options);
}

export interface UpgradeFields {
  /** Default: a fresh valid key; null leaves the header out. */
  readonly key?: string | null;
  /** Default 13; null leaves the header out. */
  readonly version?: string | null;
  readonly method?: string;
  readonly upgrade?: string;
  readonly extraHeaders?: string;
}

/** A WebSocket handshake request, valid unless `fields` say otherwise. */
export function upgradeRequest(base: string, path: string, fields: UpgradeFields = {}): string {
  const { host } = new URL(base);
  const key = fields.key === undefined ? randomBytes(16).toString("base64") : fields.key;
  const version = fields.version === undefined ? "13" : fields.version;
  return (
    `${fields.method ?? "GET"} ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: ${fields.upgrade ?? "websocket"}\r\nConnection: Upgrade\r\n` +
    (key === null ? "" : `Sec-WebSocket-Key: ${key}\r\n`) +
    (version === null ? "" : `Sec-WebSocket-Version: ${version}\r\n`) +
    (fields.extraHeaders ?? "") +
    "\r\n"
  );
}

/** A WebSocket client that completes the handshake by hand and then never reads again. */
export async function deafViewer(base: string, path: string): Promise<Socket> {
  const conn = await openRaw(base);
  conn.socket.write(upgradeRequest(base, path));
  await conn.waitForText("\r\n\r\n");
  if (parseReply(conn.data()).status !== 101) {
    conn.destroy();
    throw new Error(`no upgrade: ${conn.data().toString("latin1").slice(0, 40)}`);
  }
  conn.socket.pause();
  return conn.socket;
}

/**
 * The close code of the first close frame in the server's (unmasked) WebSocket frames, null when
 * there is none; frames before it (hello, video) are skipped.
 */
export function closeCodeOf(frames: Buffer): number | null {
  let at = 0;
  while (at + 2 <= frames.length) {
    const opcode = frames[at]! & 0x0f;
    let length = frames[at + 1]! & 0x7f;
    let header = 2;
    if (length === 126) {
      if (at + 4 > frames.length) return null;
      length = frames.readUInt16BE(at + 2);
      header = 4;
    } else if (length === 127) {
      if (at + 10 > frames.length) return null;
      length = Number(frames.readBigUInt64BE(at + 2));
      header = 10;
    }
    if (opcode === 0x8) return at + header + 2 <= frames.length ? frames.readUInt16BE(at + header) : null;
    at += header + length;
  }
  return null;
}
