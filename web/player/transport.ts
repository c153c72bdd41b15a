// The player's transport: one stream subscription across sockets, for `/ws/` (frame protocol) and
// the MSE paths (`/webm/`, `/mp4/`) alike. It owns the socket and its replacement after a drop (backoff and
// jitter, connection-status.ts), what the server says about the stream, the server clock offset
// and acks (`/ws/`), pause and resume, and it parses every message into typed events for a
// backend. Nothing thrown while parsing leaves the socket's handlers: a malformed message becomes
// an `error` event and the transport carries on.
//
// Pausing a `/ws/` socket sends `pause` (the server sends nothing until `resume`, then the cached
// GOP). The MSE paths have no client messages (MSE pages send nothing), so a paused MSE transport
// closes its socket and opens a new one on resume.

import type {
  AckMessage,
  ClientMessage,
  HelloMessage,
  PlaybackMessage,
  SkippedMessage,
  StateMessage,
  VideoFrameHeader,
} from "../../shared/protocol.js";
import { CloseCode, decodeBinaryMessage, isRecorded, parseServerMessage } from "../../shared/protocol.js";
import { Emitter } from "../../shared/emitter.js";
import type { PlayerStateChange } from "./api.js";
import type { BackoffOptions } from "./backoff.js";
import type { ServerClock } from "./clock.js";
import { ClockProbe, serverClock } from "./clock.js";
import { ConnectionStatus } from "./connection-status.js";
import { PlayerError } from "./errors.js";
import type { PlayerStats } from "./stats.js";
import type { Endpoint } from "./stream-url.js";

export interface ReceivedFrame {
  /**
   * The frame's header, except that `serverTime` is on this page's clock: the server's stamp minus
   * the clock offset estimated over the socket (`Transport.clock`), so that latency computed from
   * it is right from another machine too. Unchanged until the first clock reply.
   */
  readonly header: VideoFrameHeader;
  /** The encoded frame: a view into the received message. */
  readonly data: Uint8Array;
  /** `performance.now()` when the message event ran. */
  readonly receivedAt: number;
}

/** One binary message of the MSE byte stream (WebM or MP4), in order; message 0 of a socket is the init segment. */
export interface MediaChunk {
  readonly data: ArrayBuffer;
  readonly index: number;
}

/** MSE `?meta=1`: a frame's media time and the server time its last byte was read from the pipeline. */
export interface FrameTime {
  readonly mediaTimeMs: number;
  readonly serverTime: number;
}

export interface ConnectionClose {
  readonly code: number;
  readonly reason: string;
}

// A type alias, not an interface: the shared Emitter wants an index-signature-compatible map.
export type TransportEvents = {
  /** A new socket is being opened (before `open`). */
  connecting: undefined;
  /** A new socket opened: what a backend showed belongs to the last one. */
  open: undefined;
  hello: HelloMessage;
  state: StateMessage;
  /** The server skipped frames for this viewer; the keyframe that ends the gap follows. */
  skipped: SkippedMessage;
  /** `/ws/`: the server switched between live and the recording, or could not serve a seek. */
  playback: PlaybackMessage;
  /** `/ws/`: one video frame. */
  frame: ReceivedFrame;
  /** MSE: one message of the byte stream. */
  media: MediaChunk;
  /** MSE `?meta=1`: the times of the frame in the next media message. */
  frameTime: FrameTime;
  /** The socket ended (closed, dropped, or replaced after `restart()`); a new one may follow. */
  closed: ConnectionClose;
  /** What `status()` reports may have changed. */
  status: undefined;
  error: PlayerError;
};

/** The little of a WebSocket the transport uses: the browser's, or `ws`'s in tests. */
export interface SocketLike {
  binaryType: string;
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface TransportOptions {
  readonly endpoint: Endpoint;
  /** Open a new socket after one closes. */
  readonly reconnect: boolean;
  readonly backoff: BackoffOptions;
  /** Makes the socket; default the browser's `WebSocket` (tests pass another). */
  readonly openSocket?: (url: string) => SocketLike;
}

/** Acks go out at most this often while frames arrive (the protocol asks for at least every 250 ms). */
const ACK_INTERVAL_MS = 100;
const OPEN = 1;
const CONNECTING = 0;

/** One socket's life. */
interface Session {
  readonly socket: SocketLike;
  readonly clockProbe: ClockProbe | undefined;
  binaryMessages: number;
  lastSeq: number | undefined;
  ackedSeq: number | undefined;
  lastAckAt: number;
  ackTimer: ReturnType<typeof setTimeout> | undefined;
}

export class Transport extends Emitter<TransportEvents> {
  readonly url: string;
  readonly endpoint: Endpoint;
  /** `/ws/`: the estimate of the server's clock, shared by every socket to the same host. */
  readonly clock: ServerClock;
  readonly #options: TransportOptions;
  readonly #stats: PlayerStats;
  readonly #status: ConnectionStatus;
  #session: Session | undefined;
  #hello: HelloMessage | undefined;
  #paused = false;
  /** `/ws/`: the recording is asked for (from `at`; later sockets go on from `position`). */
  #recording: { at: number; position: number | undefined } | undefined;
  #started = false;
  #closed = false;

  constructor(url: string, stats: PlayerStats, options: TransportOptions) {
    super();
    this.url = url;
    this.endpoint = options.endpoint;
    this.#options = options;
    this.#stats = stats;
    this.#status = new ConnectionStatus(options.backoff, stats);
    this.clock = serverClock(url);
  }

  /** Opens the first socket (a paused MSE transport: the first `resume()` does). Once: later calls do nothing. */
  start(): void {
    if (this.#closed || this.#started) return;
    this.#started = true;
    if (this.#paused && this.endpoint !== "ws") return;
    this.#connect();
  }

  /** True while a socket is open and `send` can deliver. */
  get open(): boolean {
    return this.#session?.socket.readyState === OPEN;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** The latest hello. */
  get hello(): HelloMessage | undefined {
    return this.#hello;
  }

  /**
   * The socket's and the server's part of the player's state: `live` when the caller shows a
   * picture from this socket; `waitingFor` is the reason while the stream is live and none is shown.
   */
  status(live: boolean, waitingFor: string): PlayerStateChange {
    return this.#status.state(live, waitingFor);
  }

  /** This socket plays: the next failure starts the backoff afresh. */
  succeeded(): void {
    this.#status.succeeded();
  }

  /** Stops the stream: `/ws/` tells the server; MSE closes its socket until `resume()`. */
  pause(): void {
    if (this.#closed || this.#paused) return;
    this.#paused = true;
    this.#stats.lagUnknown();
    if (this.endpoint === "ws") {
      this.send({ type: "pause" });
      return;
    }
    this.#status.cancelReconnect();
    this.#endSession({ code: 1000, reason: "paused" });
    this.emit("status", undefined);
  }

  /** Plays again: the server replays its cached GOP, then live frames. */
  resume(): void {
    if (this.#closed || !this.#paused) return;
    this.#paused = false;
    if (this.#session === undefined) {
      // A pending reconnect opens the next socket; a stopped transport (reconnect off, a malformed URL) stays closed.
      if (!this.#status.reconnectPending && !this.#status.isStopped) this.#connect();
      return;
    }
    this.send({ type: "resume" });
  }

  /**
   * `/ws/`: plays the stream's recording from the keyframe at or before `at` (server wall clock,
   * ms). A new socket after a drop asks again, from the last recorded frame received.
   */
  seek(at: number): void {
    if (this.endpoint !== "ws" || this.#closed) return;
    this.#recording = { at, position: undefined };
    this.send({ type: "seek", at });
  }

  /** `/ws/`: back to live (the server replays its cached GOP). */
  live(): void {
    if (this.#recording === undefined) return;
    this.#recording = undefined;
    this.send({ type: "live" });
  }

  /** `/ws/`: asks the server to replay its cached GOP now (the decoder was reset). */
  resync(): boolean {
    return this.endpoint === "ws" && !this.#paused && this.send({ type: "resync" });
  }

  /**
   * Drops this socket and opens a new one after the backoff delay (the media failed: an MSE
   * SourceBuffer cannot be repaired). `reason` is shown while reconnecting.
   */
  restart(reason: string): void {
    if (this.#closed) return;
    this.#endSession({ code: 1000, reason });
    this.#status.lastClose = reason;
    if (!this.#options.reconnect) {
      this.#status.stopped(reason);
      this.emit("status", undefined);
      return;
    }
    this.#status.scheduleReconnect(() => this.#connect());
    this.emit("status", undefined);
  }

  /**
   * Sends a client→server control message. Returns false (and sends nothing) when no socket is
   * open: the caller decides whether that matters (a new socket starts from a replay anyway).
   */
  send(message: ClientMessage): boolean {
    const socket = this.#session?.socket;
    if (socket === undefined || socket.readyState !== OPEN) return false;
    socket.send(JSON.stringify(message));
    return true;
  }

  /** Closes the socket and stops reconnecting. No events are emitted afterwards. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#status.cancelReconnect();
    this.removeAllListeners();
    this.#endSession({ code: 1000, reason: "player closed" });
  }

  // --- sockets ---------------------------------------------------------------------------

  #connect(): void {
    if (this.#closed) return;
    this.#status.connecting();
    let socket: SocketLike;
    try {
      const open = this.#options.openSocket ?? ((url: string) => new WebSocket(url) as unknown as SocketLike);
      socket = open(this.url);
    } catch (err) {
      // A malformed URL: retrying will not fix it.
      const error = PlayerError.from(err, "CC_ERR_SOCKET");
      this.#status.stopped(error.message);
      this.emit("error", new PlayerError(error.code, error.message, true, { cause: err }));
      this.emit("status", undefined);
      return;
    }
    socket.binaryType = "arraybuffer";
    const session: Session = {
      socket,
      clockProbe: this.endpoint === "ws" ? new ClockProbe(this.clock, (message) => this.send(message)) : undefined,
      binaryMessages: 0,
      lastSeq: undefined,
      ackedSeq: undefined,
      lastAckAt: -Infinity,
      ackTimer: undefined,
    };
    this.#session = session;
    this.emit("connecting", undefined);
    socket.onopen = () => {
      if (this.#session !== session) return;
      this.#status.opened();
      session.clockProbe?.start();
      // Paused before the socket opened: hello and the replay may already be on their way.
      if (this.#paused) this.send({ type: "pause" });
      const recording = this.#recording;
      if (recording !== undefined) this.send({ type: "seek", at: recording.position ?? recording.at });
      this.emit("open", undefined);
      this.emit("status", undefined);
    };
    socket.onmessage = (event) => {
      if (this.#session === session) this.#onMessage(session, event.data);
    };
    socket.onerror = () => {
      // The browser gives no detail here; the close event that follows carries code and reason.
      if (this.#session === session) this.emit("error", new PlayerError("CC_ERR_SOCKET", `WebSocket error on ${this.url}`));
    };
    socket.onclose = (event) => {
      if (this.#session !== session) return;
      this.#endSession({ code: event.code, reason: event.reason });
      if (this.#closed) return; // closed by a `closed` listener (e.g. an encoding the stream lacks)
      this.#status.closedWith(event.code, event.reason);
      if (!this.#options.reconnect) this.#status.stopped(this.#status.lastClose ?? "connection closed");
      else if (!(this.#paused && this.endpoint !== "ws")) {
        // A format change is not a failure: reconnect at once for the new init segment (backoff if it repeats).
        const immediate = event.code === CloseCode.FORMAT_CHANGED && this.#status.failedAttempts === 0;
        this.#status.scheduleReconnect(() => this.#connect(), immediate ? { delayMs: 0 } : { closeCode: event.code });
      }
      this.emit("status", undefined);
    };
    this.emit("status", undefined);
  }

  /** Ends the current socket, if any, and tells the backend with `closed`. */
  #endSession(close: ConnectionClose): void {
    const session = this.#session;
    if (session === undefined) return;
    this.#session = undefined;
    this.#status.socketClosed();
    this.#stats.lagUnknown();
    session.clockProbe?.stop();
    if (session.ackTimer !== undefined) clearTimeout(session.ackTimer);
    const { socket } = session;
    socket.onopen = socket.onmessage = socket.onerror = socket.onclose = null;
    if (socket.readyState === CONNECTING || socket.readyState === OPEN) socket.close(1000, closeReason(close.reason));
    this.emit("closed", close);
  }

  #onMessage(session: Session, data: unknown): void {
    const receivedAt = performance.now();
    try {
      if (data instanceof ArrayBuffer) this.#onBinary(session, data, receivedAt);
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
        this.#hello = message;
        this.emit("hello", message);
        break;
      case "state":
        this.#status.serverSaid(message);
        this.emit("state", message);
        this.emit("status", undefined);
        break;
      case "skipped":
        this.#stats.serverSkipped(message.reason, message.frames);
        this.emit("skipped", message);
        break;
      case "stats":
        if (!this.#paused) this.#stats.serverStats(message);
        break;
      case "clock":
        this.#session?.clockProbe?.reply(message, receivedAt);
        break;
      case "playback":
        // Live by the server's choice too (the end of the recording): a new socket then stays live.
        if (message.mode === "live") this.#recording = undefined;
        this.emit("playback", message);
        break;
      case "unknown": {
        // Newer servers may send more types; v1 clients ignore them. MSE `?meta=1` frame times are one.
        const frameTime = this.endpoint !== "ws" ? parseFrameTime(message.raw) : undefined;
        if (frameTime !== undefined) this.emit("frameTime", frameTime);
        break;
      }
    }
  }

  #onBinary(session: Session, buffer: ArrayBuffer, receivedAt: number): void {
    const index = session.binaryMessages++;
    if (this.endpoint !== "ws") {
      // Every message after the init segment is one frame.
      if (index > 0) this.#stats.received(buffer.byteLength, receivedAt);
      this.emit("media", { data: buffer, index });
      return;
    }
    const message = decodeBinaryMessage(buffer);
    if (message.kind !== "video") return; // unknown binary kinds are ignored, like unknown JSON types
    this.#stats.received(buffer.byteLength, receivedAt);
    session.lastSeq = message.header.seq;
    this.#scheduleAck(session, receivedAt);
    if (this.#paused) {
      // In flight before the server read our pause, or sent at join before it: not decoded.
      this.#stats.dropped();
      return;
    }
    if (isRecorded(message.header)) {
      // When it was recorded, on the server's clock (what the recording's timeline shows): kept as it is.
      if (this.#recording !== undefined) this.#recording.position = message.header.serverTime;
      this.emit("frame", { header: message.header, data: message.data, receivedAt });
      return;
    }
    const header = { ...message.header, serverTime: this.clock.toLocal(message.header.serverTime) };
    this.emit("frame", { header, data: message.data, receivedAt });
  }

  #scheduleAck(session: Session, now: number): void {
    if (session.ackTimer !== undefined) return; // a trailing ack is already due and will carry the newest seq
    const wait = session.lastAckAt + ACK_INTERVAL_MS - now;
    if (wait <= 0) this.#sendAck(session);
    else
      session.ackTimer = setTimeout(() => {
        session.ackTimer = undefined;
        if (this.#session === session) this.#sendAck(session);
      }, wait);
  }

  #sendAck(session: Session): void {
    const seq = session.lastSeq;
    if (seq === undefined || seq === session.ackedSeq) return;
    const ack: AckMessage = { type: "ack", seq };
    if (!this.send(ack)) return;
    session.ackedSeq = seq;
    session.lastAckAt = performance.now();
  }
}

/** A close frame's reason holds at most 123 bytes of UTF-8; WebSocket.close() throws for a longer one. */
const MAX_CLOSE_REASON_BYTES = 123;

/** `reason` cut to what a close frame holds, at a character boundary. */
function closeReason(reason: string): string {
  const { read } = new TextEncoder().encodeInto(reason, new Uint8Array(MAX_CLOSE_REASON_BYTES));
  return reason.slice(0, read);
}

/** `{"type":"frame","mediaTimeMs":M,"serverTime":S,…}` (MSE `?meta=1`), or undefined for any other type. */
function parseFrameTime(raw: unknown): FrameTime | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const { type, mediaTimeMs, serverTime } = raw as Record<string, unknown>;
  if (type !== "frame") return undefined;
  if (typeof mediaTimeMs !== "number" || !Number.isFinite(mediaTimeMs) || typeof serverTime !== "number" || !Number.isFinite(serverTime)) {
    throw new PlayerError("CC_ERR_BAD_MESSAGE", "malformed frame message");
  }
  return { mediaTimeMs, serverTime };
}
