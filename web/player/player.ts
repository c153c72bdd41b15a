// play(canvas, url) → Player: ties the connection, decoder, renderer and stats together.
//
// States: connecting (socket opening, or open and waiting for the first picture) · starting (the
// server's pipeline is starting) · live (pictures are being painted) · offline (the server says
// the stream is down, or the socket closed; the player retries with backoff) · unsupported (no
// WebCodecs here; nothing will play) · closed (close() was called).

import type { HelloMessage, StreamState } from "../../shared/protocol.js";
import { CloseCode, isKeyframe, isReplay } from "../../shared/protocol.js";
import type { ConnectionClose, ReceivedFrame } from "./connection.js";
import { Connection } from "./connection.js";
import type { FrameMeta } from "./decoder.js";
import { FrameDecoder, webCodecsAvailable } from "./decoder.js";
import { Emitter } from "../../shared/emitter.js";
import type { Listener } from "../../shared/emitter.js";
import { PlayerError } from "./errors.js";
import type { PaintInfo, PaintMode } from "./renderer.js";
import { CanvasRenderer } from "./renderer.js";
import type { PlayerStatsSnapshot } from "./stats.js";
import { PlayerStats } from "./stats.js";

export const PLAYER_STATES = ["connecting", "starting", "live", "offline", "unsupported", "closed"] as const;
export type PlayerState = (typeof PLAYER_STATES)[number];

export interface PlayerStateChange {
  readonly state: PlayerState;
  /** Why, when not live: the server's reason, the close reason, or what is being waited for. */
  readonly reason: string | undefined;
}

// A type alias, not an interface: the shared Emitter wants an index-signature-compatible map.
export type PlayerEvents = {
  state: PlayerStateChange;
  stats: PlayerStatsSnapshot;
  error: PlayerError;
  /** A hello arrived: the stream's size and rate are known (again). */
  hello: HelloMessage;
};

export interface PlayerOptions {
  /** Reconnect with backoff when the socket closes. Default true. */
  readonly reconnect?: boolean;
  /** How often `stats` is emitted, ms. Default 500. */
  readonly statsIntervalMs?: number;
  /** First reconnect delay, ms; doubles up to `maxReconnectDelayMs`. Default 500. */
  readonly reconnectDelayMs?: number;
  /** Default 10000. */
  readonly maxReconnectDelayMs?: number;
  /** `raf` (default): paint the newest frame in requestAnimationFrame; `decode`: paint on decoder output. */
  readonly paintMode?: PaintMode;
}

export interface Player {
  readonly url: string;
  readonly state: PlayerState;
  readonly reason: string | undefined;
  /** The latest hello, once received. */
  readonly hello: HelloMessage | undefined;
  stats(): PlayerStatsSnapshot;
  on<K extends keyof PlayerEvents>(type: K, listener: Listener<PlayerEvents[K]>): () => void;
  off<K extends keyof PlayerEvents>(type: K, listener: Listener<PlayerEvents[K]>): void;
  /** Stops everything and releases the socket, decoder and frames. Safe to call more than once. */
  close(): void;
}

export function play(canvas: HTMLCanvasElement, url: string, options: PlayerOptions = {}): Player {
  return new CanvasCastPlayer(canvas, url, options);
}

/** Close codes after which retrying soon will not help: retry at the slowest rate. */
const SLOW_RETRY_CODES: ReadonlySet<number> = new Set([CloseCode.UNKNOWN_STREAM, CloseCode.BAD_MESSAGE, CloseCode.UNSUPPORTED_DATA]);

class CanvasCastPlayer implements Player {
  readonly url: string;
  readonly #events = new Emitter<PlayerEvents>((err) => reportError(err));
  readonly #options: Required<PlayerOptions>;
  readonly #stats = new PlayerStats();
  readonly #renderer: CanvasRenderer | undefined;
  readonly #decoder: FrameDecoder | undefined;
  #connection: Connection | undefined;
  #state: PlayerState = "connecting";
  #reason: string | undefined;
  #hello: HelloMessage | undefined;
  /** What the server last said about the stream on this connection. */
  #serverState: StreamState | undefined;
  #serverReason: string | undefined;
  #paintedOnConnection = false;
  #reportedFrameBeforeHello = false;
  #socketOpen = false;
  #reconnectDelay: number;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #statsTimer: ReturnType<typeof setInterval> | undefined;
  /** Decoder counters already added to the stats. */
  #seenDropped = 0;
  #seenStale = 0;
  #seenErrors = 0;

  constructor(canvas: HTMLCanvasElement, url: string, options: PlayerOptions) {
    this.url = url;
    this.#options = {
      reconnect: options.reconnect ?? true,
      statsIntervalMs: options.statsIntervalMs ?? 500,
      reconnectDelayMs: options.reconnectDelayMs ?? 500,
      maxReconnectDelayMs: options.maxReconnectDelayMs ?? 10_000,
      paintMode: options.paintMode ?? "raf",
    };
    this.#reconnectDelay = this.#options.reconnectDelayMs;
    if (!webCodecsAvailable()) {
      const reason = globalThis.isSecureContext
        ? "This browser has no WebCodecs VideoDecoder."
        : "WebCodecs needs a secure context: open this page over https or on localhost.";
      this.#state = "unsupported";
      this.#reason = reason;
      // Let the caller subscribe before the error is emitted.
      queueMicrotask(() => this.#events.emit("error", new PlayerError("CC_ERR_NO_WEBCODECS", reason, true)));
      return;
    }
    this.#renderer = new CanvasRenderer(canvas, {
      paintMode: this.#options.paintMode,
      onPaint: (info) => this.#onPaint(info),
      onSkip: (meta) => (meta.replay ? this.#stats.replaySkipped() : this.#stats.dropped()),
    });
    this.#decoder = new FrameDecoder({
      onFrame: (frame, meta) => this.#onDecoded(frame, meta),
      onError: (err) => this.#events.emit("error", err),
    });
    this.#statsTimer = setInterval(() => this.#emitStats(), this.#options.statsIntervalMs);
    this.#connect();
  }

  get state(): PlayerState {
    return this.#state;
  }

  get reason(): string | undefined {
    return this.#reason;
  }

  get hello(): HelloMessage | undefined {
    return this.#hello;
  }

  stats(): PlayerStatsSnapshot {
    this.#syncDecoderCounters();
    return this.#stats.snapshot();
  }

  on<K extends keyof PlayerEvents>(type: K, listener: Listener<PlayerEvents[K]>): () => void {
    return this.#events.on(type, listener);
  }

  off<K extends keyof PlayerEvents>(type: K, listener: Listener<PlayerEvents[K]>): void {
    this.#events.off(type, listener);
  }

  close(): void {
    if (this.#state === "closed") return;
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    if (this.#statsTimer !== undefined) clearInterval(this.#statsTimer);
    this.#statsTimer = undefined;
    this.#connection?.close();
    this.#connection = undefined;
    this.#decoder?.close();
    this.#renderer?.close();
    this.#setState("closed", undefined);
    this.#events.removeAllListeners();
  }

  // --- connection --------------------------------------------------------------------------

  #connect(): void {
    this.#reconnectTimer = undefined;
    this.#socketOpen = false;
    this.#serverState = undefined;
    this.#serverReason = undefined;
    this.#paintedOnConnection = false;
    this.#reportedFrameBeforeHello = false;
    this.#decoder?.waitForKeyframe();
    this.#update();

    let connection: Connection;
    try {
      connection = new Connection(this.url);
    } catch (err) {
      // A malformed URL: retrying will not fix it.
      const error = PlayerError.from(err, "CC_ERR_SOCKET");
      this.#setState("offline", error.message);
      this.#events.emit("error", new PlayerError(error.code, error.message, true, { cause: err }));
      return;
    }
    this.#connection = connection;
    connection.on("open", () => {
      this.#socketOpen = true;
      this.#update();
    });
    connection.on("hello", (hello) => {
      this.#hello = hello;
      this.#decoder?.configure({ width: hello.width, height: hello.height });
      this.#events.emit("hello", hello);
      this.#update();
    });
    connection.on("state", (message) => {
      this.#serverState = message.state;
      this.#serverReason = message.reason;
      if (message.state !== "live") {
        this.#paintedOnConnection = false;
        this.#renderer?.clear();
      }
      this.#update();
    });
    connection.on("frame", (frame) => this.#onFrame(frame));
    connection.on("error", (err) => this.#events.emit("error", err));
    connection.on("close", (info) => this.#onClose(info));
  }

  #onClose(info: ConnectionClose): void {
    this.#connection = undefined;
    this.#socketOpen = false;
    this.#renderer?.clear();
    const what = info.reason !== "" ? info.reason : closeCodeText(info.code);
    if (!this.#options.reconnect) {
      this.#setState("offline", `connection closed: ${what}`);
      return;
    }
    const delay = SLOW_RETRY_CODES.has(info.code) ? this.#options.maxReconnectDelayMs : this.#reconnectDelay;
    this.#reconnectDelay = Math.min(this.#reconnectDelay * 2, this.#options.maxReconnectDelayMs);
    this.#setState("offline", `connection closed: ${what}; retrying in ${formatSeconds(delay)}`);
    this.#reconnectTimer = setTimeout(() => this.#connect(), delay);
  }

  // --- media path --------------------------------------------------------------------------

  #onFrame(frame: ReceivedFrame): void {
    this.#stats.received(frame.messageBytes, frame.receivedAt);
    if (this.#hello === undefined && !this.#reportedFrameBeforeHello) {
      this.#reportedFrameBeforeHello = true; // once per connection; the decoder drops them
      this.#events.emit("error", new PlayerError("CC_ERR_UNEXPECTED_MESSAGE", "video frame before hello"));
    }
    if (isKeyframe(frame.header)) this.#stats.keyframeSubmitted(isReplay(frame.header));
    this.#decoder?.decode(frame.header, frame.data, frame.receivedAt);
  }

  #onDecoded(frame: VideoFrame, meta: FrameMeta): void {
    this.#stats.decoded();
    const renderer = this.#renderer;
    // Replayed frames (the cached GOP at join) are decoded for their references; only the newest is painted.
    if (renderer === undefined) {
      frame.close();
      return;
    }
    if (meta.replay && !meta.newest) {
      frame.close();
      this.#stats.replaySkipped();
      return;
    }
    renderer.push(frame, meta);
  }

  #onPaint(info: PaintInfo): void {
    this.#stats.painted(info.paintedAt, info.meta.serverTime, info.meta.replay);
    if (!this.#paintedOnConnection) {
      this.#paintedOnConnection = true;
      this.#reconnectDelay = this.#options.reconnectDelayMs; // a working connection resets the backoff
      this.#update();
    }
  }

  // --- state and stats ---------------------------------------------------------------------

  /** Derives the state from what the socket and the server have said. */
  #update(): void {
    if (this.#state === "closed" || this.#state === "unsupported") return;
    if (!this.#socketOpen) {
      this.#setState("connecting", "opening connection");
    } else if (this.#serverState === "offline") {
      this.#setState("offline", this.#serverReason ?? "stream offline");
    } else if (this.#serverState === "starting") {
      this.#setState("starting", this.#serverReason ?? "pipeline starting");
    } else if (this.#paintedOnConnection) {
      this.#setState("live", undefined);
    } else {
      this.#setState("connecting", this.#hello === undefined ? "waiting for hello" : "waiting for a keyframe");
    }
  }

  #setState(state: PlayerState, reason: string | undefined): void {
    if (state === this.#state && reason === this.#reason) return;
    this.#state = state;
    this.#reason = reason;
    this.#events.emit("state", { state, reason });
  }

  #syncDecoderCounters(): void {
    const decoder = this.#decoder;
    if (decoder === undefined) return;
    const { dropped, stale, errors } = decoder.counters;
    this.#stats.dropped(dropped - this.#seenDropped + (stale - this.#seenStale));
    for (let i = this.#seenErrors; i < errors; i++) this.#stats.decoderError();
    this.#seenDropped = dropped;
    this.#seenStale = stale;
    this.#seenErrors = errors;
  }

  #emitStats(): void {
    this.#events.emit("stats", this.stats());
  }
}

function closeCodeText(code: number): string {
  switch (code) {
    case 1000:
      return "closed normally (1000)";
    case 1001:
      return "server going away (1001)";
    case 1006:
      return "connection lost (1006)";
    case CloseCode.UNKNOWN_STREAM:
      return "unknown stream (4404)";
    default:
      return `code ${code}`;
  }
}

function formatSeconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s`;
}
