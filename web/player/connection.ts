// One WebSocket to `/ws/<stream>`: parses frame protocol v1 into typed events, sends acks, and
// sends the player's control messages (pause, resume, resync). It also probes the server's clock
// (`clock` messages, see clock.ts) and hands frames on with their server time on this page's clock.
// Nothing thrown while parsing leaves the socket's event handlers: malformed messages become
// `error` events and the connection carries on.

import type {
  AckMessage,
  ClientMessage,
  HelloMessage,
  SkippedMessage,
  StateMessage,
  VideoFrameHeader,
  ViewerStatsMessage,
} from "../../shared/protocol.js";
import { decodeBinaryMessage, parseServerMessage } from "../../shared/protocol.js";
import { Emitter } from "../../shared/emitter.js";
import { PlayerError } from "./errors.js";
import type { ServerClock } from "./clock.js";
import { ClockProbe, serverClock } from "./clock.js";

export interface ReceivedFrame {
  /**
   * The frame's header, except that `serverTime` is on this page's clock: the server's stamp minus
   * the clock offset estimated over this socket (`Connection.clock`), so that latency computed from
   * it is right from another machine too. Unchanged until the first clock reply.
   */
  readonly header: VideoFrameHeader;
  /** The encoded VP8 frame: a view into the received message. */
  readonly data: Uint8Array;
  /** Size of the whole binary message, header included. */
  readonly messageBytes: number;
  /** `performance.now()` when the message event ran. */
  readonly receivedAt: number;
}

export interface ConnectionClose {
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;
}

// A type alias, not an interface: the shared Emitter wants an index-signature-compatible map.
export type ConnectionEvents = {
  open: undefined;
  hello: HelloMessage;
  state: StateMessage;
  /** The server skipped frames for this viewer; the keyframe that ends the gap follows. */
  skipped: SkippedMessage;
  /** The server's view of this viewer (lag, frames sent, skips), about once a second. */
  stats: ViewerStatsMessage;
  frame: ReceivedFrame;
  /** Once per connection, unless `close()` was called first. */
  close: ConnectionClose;
  error: PlayerError;
};

/** Acks go out at most this often while frames arrive (the protocol asks for at least every 250 ms). */
const ACK_INTERVAL_MS = 100;

/** Turns `url` (absolute, or relative to `base`) into a ws:/wss: URL; http(s) map to ws(s). */
export function toWebSocketUrl(url: string, base: string = globalThis.location?.href ?? "http://localhost/"): string {
  const u = new URL(url, base);
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  return u.href;
}

export class Connection extends Emitter<ConnectionEvents> {
  readonly url: string;
  /** The estimate of the server's clock, shared by every connection to the same host. */
  readonly clock: ServerClock;
  readonly #ws: WebSocket;
  readonly #clockProbe: ClockProbe;
  #closed = false;
  #lastSeq: number | undefined;
  #ackedSeq: number | undefined;
  #lastAckAt = -Infinity;
  #ackTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(url: string) {
    super();
    this.url = toWebSocketUrl(url);
    this.clock = serverClock(this.url);
    this.#clockProbe = new ClockProbe(this.clock, (message) => this.send(message));
    this.#ws = new WebSocket(this.url);
    this.#ws.binaryType = "arraybuffer";
    this.#ws.onopen = () => {
      if (this.#closed) return;
      this.#clockProbe.start();
      this.emit("open", undefined);
    };
    this.#ws.onmessage = (event: MessageEvent<unknown>) => this.#onMessage(event.data);
    this.#ws.onerror = () => {
      // The browser gives no detail here; the close event that follows carries code and reason.
      if (!this.#closed) this.emit("error", new PlayerError("CC_ERR_SOCKET", `WebSocket error on ${this.url}`));
    };
    this.#ws.onclose = (event: CloseEvent) => {
      if (this.#closed) return;
      this.#shutdown();
      this.emit("close", { code: event.code, reason: event.reason, wasClean: event.wasClean });
    };
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** True while the socket is open and `send` can deliver. */
  get open(): boolean {
    return !this.#closed && this.#ws.readyState === WebSocket.OPEN;
  }

  /** Newest sequence number received, if any. */
  get lastSeq(): number | undefined {
    return this.#lastSeq;
  }

  /**
   * Sends a client→server control message. Returns false (and sends nothing) when the socket is
   * not open: the caller decides whether that matters (a new connection starts from a replay anyway).
   */
  send(message: ClientMessage): boolean {
    if (!this.open) return false;
    this.#ws.send(JSON.stringify(message));
    return true;
  }

  /** Closes the socket. No events are emitted afterwards. Safe to call more than once. */
  close(code = 1000, reason = "player closed"): void {
    if (this.#closed) return;
    this.#shutdown();
    this.removeAllListeners();
    if (this.#ws.readyState === WebSocket.CONNECTING || this.#ws.readyState === WebSocket.OPEN) {
      this.#ws.close(code, reason);
    }
  }

  #shutdown(): void {
    this.#closed = true;
    this.#clockProbe.stop();
    if (this.#ackTimer !== undefined) clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    this.#ws.onopen = null;
    this.#ws.onmessage = null;
    this.#ws.onerror = null;
    this.#ws.onclose = null;
  }

  #onMessage(data: unknown): void {
    if (this.#closed) return;
    const receivedAt = performance.now();
    try {
      if (data instanceof ArrayBuffer) this.#onBinary(data, receivedAt);
      else if (typeof data === "string") this.#onText(data, receivedAt);
      else throw new PlayerError("CC_ERR_UNEXPECTED_MESSAGE", "message is neither text nor ArrayBuffer");
    } catch (err) {
      this.emit("error", PlayerError.from(err, "CC_ERR_BAD_MESSAGE"));
    }
  }

  #onText(text: string, receivedAt: number): void {
    const message = parseServerMessage(text);
    switch (message.type) {
      case "hello":
        this.emit("hello", message);
        break;
      case "state":
        this.emit("state", message);
        break;
      case "skipped":
        this.emit("skipped", message);
        break;
      case "stats":
        this.emit("stats", message);
        break;
      case "clock":
        this.#clockProbe.reply(message, receivedAt);
        break;
      case "unknown":
        // Newer servers may send more types; v1 clients ignore them.
        break;
    }
  }

  #onBinary(buffer: ArrayBuffer, receivedAt: number): void {
    const message = decodeBinaryMessage(buffer);
    if (message.kind !== "video") return; // unknown binary kinds are ignored, like unknown JSON types
    this.#lastSeq = message.header.seq;
    this.#scheduleAck(receivedAt);
    const header = { ...message.header, serverTime: this.clock.toLocal(message.header.serverTime) };
    this.emit("frame", { header, data: message.data, messageBytes: buffer.byteLength, receivedAt });
  }

  #scheduleAck(now: number): void {
    if (this.#ackTimer !== undefined) return; // a trailing ack is already due and will carry the newest seq
    const wait = this.#lastAckAt + ACK_INTERVAL_MS - now;
    if (wait <= 0) this.#sendAck();
    else this.#ackTimer = setTimeout(() => {
      this.#ackTimer = undefined;
      this.#sendAck();
    }, wait);
  }

  #sendAck(): void {
    const seq = this.#lastSeq;
    if (seq === undefined || seq === this.#ackedSeq) return;
    const ack: AckMessage = { type: "ack", seq };
    if (!this.send(ack)) return;
    this.#ackedSeq = seq;
    this.#lastAckAt = performance.now();
  }
}
