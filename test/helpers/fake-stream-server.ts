// The server's side of the player's sockets, played by hand for the client's unit tests: a real
// `ws` server on a free port whose connections record what the client sends and send what the test
// says (hello, state, frames, anything). No pipeline, no fan-out: the test is the server.

import type { AddressInfo } from "node:net";
import { WebSocket, WebSocketServer } from "ws";
import type { VideoFrameHeader } from "../../shared/protocol.js";
import { encodeVideoFrame } from "../../shared/protocol.js";
import { micros, millis } from "../../shared/units.js";
import type { SocketLike } from "../../web/player/transport.js";

export const FLAG = { KEY: 0x01, REPLAY: 0x02, DISCONTINUITY: 0x04 } as const;

/** What the client sent: a parsed JSON message and when it arrived (performance.now()). */
export interface Received {
  readonly message: { readonly type: string } & Record<string, unknown>;
  readonly at: number;
}

export class ClientConnection {
  /** The request's path and query, e.g. `/ws/cam0?encoding=tile`. */
  readonly path: string;
  readonly socket: WebSocket;
  readonly received: Received[] = [];
  /** Set when the socket has closed: the close frame's code and reason (1006, "" for none). */
  closed: { readonly code: number; readonly reason: string } | undefined;

  readonly #clockOffsetMs: number | undefined;

  constructor(socket: WebSocket, path: string, clockOffsetMs: number | undefined) {
    this.socket = socket;
    this.path = path;
    this.#clockOffsetMs = clockOffsetMs;
    socket.on("message", (data, isBinary) => {
      const at = performance.now();
      // The client sends only JSON text: anything else is recorded as such, for a test to see.
      if (isBinary) return void this.received.push({ message: { type: "(binary)" }, at });
      const text = Buffer.concat(Array.isArray(data) ? data : [data instanceof ArrayBuffer ? Buffer.from(data) : data]).toString("utf8");
      let message: Received["message"];
      try {
        message = JSON.parse(text) as Received["message"];
      } catch {
        message = { type: "(not JSON)", text };
      }
      this.received.push({ message, at });
      if (message.type === "clock" && this.#clockOffsetMs !== undefined) {
        this.json({ type: "clock", t: message.t, serverTime: Date.now() + this.#clockOffsetMs });
      }
    });
    socket.on("close", (code, reason) => (this.closed = { code, reason: reason.toString() }));
  }

  get open(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /** The messages of `type` the client sent, in order. */
  sent(type: string): Received["message"][] {
    return this.received.filter((r) => r.message.type === type).map((r) => r.message);
  }

  /** What the client sent other than clock probes (those come on their own schedule). */
  get control(): Received["message"][] {
    return this.received.filter((r) => r.message.type !== "clock").map((r) => r.message);
  }

  json(message: object): void {
    this.socket.send(JSON.stringify(message));
  }

  text(raw: string): void {
    this.socket.send(raw);
  }

  hello(size: { width: number; height: number } = { width: 640, height: 480 }, codec = "vp8"): void {
    this.#size = size;
    this.json({ type: "hello", protocol: 1, stream: "cam0", codec, ...size, framerate: 30, serverTime: Date.now() });
  }

  state(state: "starting" | "live" | "restarting" | "offline", more: { reason?: string; retryInMs?: number } = {}): void {
    this.json({ type: "state", state, ...more });
  }

  /**
   * One video frame (flags from FLAG); `data` stands for the VP8 bytes: by default the seq's low
   * byte, then (as a VP8 keyframe carries its size) the last hello's width and height, u16 LE at 4.
   */
  frame(seq: number, flags: number, data: Uint8Array = this.#frameData(seq), serverTime = Date.now()): void {
    const header: VideoFrameHeader = { flags, seq, pts: micros(seq * 33_333), serverTime: millis(serverTime) };
    this.socket.send(encodeVideoFrame(header, data));
  }

  close(code: number, reason = ""): void {
    this.socket.close(code, reason);
  }

  #size = { width: 640, height: 480 };

  #frameData(seq: number): Uint8Array {
    const { width, height } = this.#size;
    return new Uint8Array([seq & 0xff, 1, 2, 3, width & 0xff, width >> 8, height & 0xff, height >> 8]);
  }
}

export interface FakeStreamServerOptions {
  /** Answer the client's `clock` probes with a server clock this far ahead of this machine's (ms). */
  readonly clockOffsetMs?: number;
}

export class FakeStreamServer {
  readonly connections: ClientConnection[] = [];
  readonly #server: WebSocketServer;

  private constructor(server: WebSocketServer, options: FakeStreamServerOptions) {
    this.#server = server;
    server.on("connection", (socket, request) => {
      this.connections.push(new ClientConnection(socket, request.url ?? "", options.clockOffsetMs));
    });
  }

  static async start(options: FakeStreamServerOptions = {}): Promise<FakeStreamServer> {
    const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise<void>((resolve, reject) => {
      server.once("listening", resolve);
      server.once("error", reject);
    });
    return new FakeStreamServer(server, options);
  }

  /** `ws://127.0.0.1:PORT` + `path`. */
  url(path = "/ws/cam0"): string {
    return `ws://127.0.0.1:${(this.#server.address() as AddressInfo).port}${path}`;
  }

  /** The connections whose socket is open now. */
  get open(): ClientConnection[] {
    return this.connections.filter((c) => c.open);
  }

  /** The newest connection; throws if there is none. */
  get last(): ClientConnection {
    const last = this.connections.at(-1);
    if (last === undefined) throw new Error("no connection yet");
    return last;
  }

  /** Drops every client and stops listening. Safe to call twice. */
  async close(): Promise<void> {
    for (const client of this.#server.clients) client.terminate();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/**
 * Opens the player's sockets with `ws`'s client, whose onopen/onmessage/binaryType API is the
 * browser's. Unlike the browser's, it throws an 'error' event nobody listens to (closing a socket
 * that is still connecting raises one): a no-op listener keeps that from crashing the test.
 */
export function openWsSocket(url: string): SocketLike {
  const socket = new WebSocket(url);
  socket.on("error", () => undefined);
  return socket as unknown as SocketLike;
}
