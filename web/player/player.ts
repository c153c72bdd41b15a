// play(canvas, url) → Player: ties the connection, decoder, renderer and stats together, and keeps
// the picture live through everything a deployment throws at it: dropped sockets (reconnect with
// backoff and jitter), pipeline restarts (state over the canvas, then the new keyframe), decoder
// errors (reset and ask the server to resync) and hidden tabs (pause, release the codec, resume
// from the replayed GOP).
//
// States: connecting (socket opening, or open and waiting for the first picture) · starting (the
// server's pipeline is starting) · live (pictures are being painted) · restarting (the server is
// restarting the pipeline; `retryAt` says when it tries next) · offline (the server says the stream
// is down, or the socket closed and `reconnect` is off) · reconnecting (the socket closed; the
// player retries at `retryAt`) · paused (the page is hidden: the server sends nothing, the decoder
// is released) · unsupported (no WebCodecs here; nothing will play) · closed (close() was called).

import type * as Api from "./api.js";
import type { PlayerOptions } from "./api.js";
import { isKeyframe, isReplay } from "../../shared/protocol.js";
import type { ConnectionClose, ReceivedFrame } from "./connection.js";
import { Connection } from "./connection.js";
import { ConnectionStatus } from "./connection-status.js";
import type { FrameMeta } from "./decoder.js";
import { FrameDecoder, webCodecsAvailable } from "./decoder.js";
import { PlayerError } from "./errors.js";
import { markJoin } from "./join-marks.js";
import { PlayerBase } from "./player-base.js";
import type { PaintInfo, RenderCanvas } from "./renderer.js";
import { CanvasRenderer } from "./renderer.js";
import type { PlayerStatsSnapshot } from "./stats.js";
import { PlayerStats } from "./stats.js";

export type { PlayerEvents, PlayerOptions, PlayerState, PlayerStateChange } from "./api.js";

/** A player's surface. The embeddable module's players (api.ts's Player) add `thread`, `mode` and `snapshot()`. */
export type Player = Omit<Api.Player, "thread" | "mode" | "snapshot">;

export function play(canvas: HTMLCanvasElement, url: string, options: PlayerOptions = {}): Player {
  return new CanvasCastPlayer(canvas, url, options);
}

/** How a player is hosted, beyond the public options: the embeddable module's worker path sets these. */
export interface PlayerHost {
  /** A desynchronized 2D context (default true); off in a worker (see RendererOptions). */
  readonly desynchronized?: boolean;
}

/** At most one resync request per this interval; errors in between wait for the replay already asked for. */
const RESYNC_MIN_INTERVAL_MS = 1000;

/**
 * The WebCodecs player. `play()` returns it as a `Player`; the embeddable module also uses
 * `snapshot()` and, in a worker (no `document` there), `setPageHidden()`.
 */
/** Benchmarks set `globalThis.canvascastMarkPaints = true` to get a performance mark per painted frame. */
const markPaints = (): boolean => (globalThis as { canvascastMarkPaints?: unknown }).canvascastMarkPaints === true;

export class CanvasCastPlayer extends PlayerBase {
  readonly #options: Required<PlayerOptions>;
  readonly #stats = new PlayerStats();
  readonly #renderer: CanvasRenderer | undefined;
  readonly #decoder: FrameDecoder | undefined;
  #connection: Connection | undefined;
  /** Socket, server state and reconnects; a connection that gets a hello resets the backoff. */
  readonly #status: ConnectionStatus;
  #paintedOnConnection = false;
  #reportedFrameBeforeHello = false;
  #statsTimer: ReturnType<typeof setInterval> | undefined;
  /** The page is hidden: the server was (or will be, on open) told to pause, and the decoder is released. */
  #paused = false;
  #removeVisibilityListener: (() => void) | undefined;
  #lastResyncAt = -Infinity;
  #resyncTimer: ReturnType<typeof setTimeout> | undefined;
  /** Decoder counters already added to the stats. */
  #seenDropped = 0;
  #seenStale = 0;
  #seenErrors = 0;

  constructor(canvas: RenderCanvas, url: string, options: PlayerOptions, host: PlayerHost = {}) {
    super(url);
    this.#options = {
      reconnect: options.reconnect ?? true,
      statsIntervalMs: options.statsIntervalMs ?? 500,
      reconnectDelayMs: options.reconnectDelayMs ?? 500,
      maxReconnectDelayMs: options.maxReconnectDelayMs ?? 10_000,
      paintMode: options.paintMode ?? "decode",
      pauseWhenHidden: options.pauseWhenHidden ?? true,
    };
    this.#status = new ConnectionStatus({ baseMs: this.#options.reconnectDelayMs, maxMs: this.#options.maxReconnectDelayMs }, this.#stats);
    if (!webCodecsAvailable()) {
      const reason = globalThis.isSecureContext
        ? "This browser has no WebCodecs VideoDecoder."
        : "WebCodecs needs a secure context: open this page over https or on localhost.";
      this.setState("unsupported", reason, undefined);
      // Let the caller subscribe before the error is emitted.
      queueMicrotask(() => this.emit("error", new PlayerError("CC_ERR_NO_WEBCODECS", reason, true)));
      return;
    }
    this.#renderer = new CanvasRenderer(canvas, {
      paintMode: this.#options.paintMode,
      ...(host.desynchronized === undefined ? {} : { desynchronized: host.desynchronized }),
      onPaint: (info) => this.#onPaint(info),
      onSkip: (meta) => (meta.replay ? this.#stats.replaySkipped() : this.#stats.dropped()),
    });
    this.#decoder = new FrameDecoder({
      onFrame: (frame, meta) => this.#onDecoded(frame, meta),
      onError: (err) => this.#onDecoderError(err),
    });
    this.#statsTimer = setInterval(() => this.#emitStats(), this.#options.statsIntervalMs);
    if (this.#options.pauseWhenHidden && typeof document !== "undefined") {
      const onVisibility = (): void => this.setPageHidden(document.visibilityState === "hidden");
      document.addEventListener("visibilitychange", onVisibility);
      this.#removeVisibilityListener = () => document.removeEventListener("visibilitychange", onVisibility);
      this.#paused = document.visibilityState === "hidden";
    }
    this.#connect();
  }

  /**
   * The current picture as a PNG at the video's size. Rejects (InvalidStateError) while none is
   * shown (before the first paint, while the stream restarts, or after close).
   */
  snapshot(): Promise<Blob> {
    if (this.#renderer === undefined || this.state === "closed") {
      return Promise.reject(new DOMException(`no picture to snapshot (${this.state})`, "InvalidStateError"));
    }
    return this.#renderer.snapshot();
  }

  stats(): PlayerStatsSnapshot {
    this.#syncDecoderCounters();
    return this.#stats.snapshot();
  }

  protected override teardown(): void {
    this.#status.cancelReconnect();
    if (this.#resyncTimer !== undefined) clearTimeout(this.#resyncTimer);
    this.#resyncTimer = undefined;
    if (this.#statsTimer !== undefined) clearInterval(this.#statsTimer);
    this.#statsTimer = undefined;
    this.#removeVisibilityListener?.();
    this.#removeVisibilityListener = undefined;
    this.#connection?.close();
    this.#connection = undefined;
    this.#decoder?.close();
    this.#renderer?.close();
  }

  // --- connection --------------------------------------------------------------------------

  #connect(): void {
    this.#status.connecting();
    this.#paintedOnConnection = false;
    this.#reportedFrameBeforeHello = false;
    // Every connection starts with the cached GOP (or the next keyframe): nothing before it decodes.
    this.#decoder?.waitForKeyframe();
    this.#update();

    let connection: Connection;
    try {
      connection = new Connection(this.url);
    } catch (err) {
      // A malformed URL: retrying will not fix it.
      const error = PlayerError.from(err, "CC_ERR_SOCKET");
      this.setState("offline", error.message, undefined);
      this.emit("error", new PlayerError(error.code, error.message, true, { cause: err }));
      return;
    }
    this.#connection = connection;
    connection.on("open", () => {
      this.#status.opened();
      // A page hidden when the socket opens pauses at once; hello and the replay may already be on their way.
      if (this.#paused) connection.send({ type: "pause" });
      this.#update();
    });
    connection.on("hello", (hello) => {
      markJoin("hello", this);
      this.setHello(hello);
      this.#status.succeeded(); // the server serves this stream: the next drop starts the backoff afresh
      // While paused the codec stays released; resuming configures from the latest hello.
      if (!this.#paused) this.#decoder?.configure({ width: hello.width, height: hello.height });
      this.emit("hello", hello);
      this.#update();
    });
    connection.on("state", (message) => {
      this.#status.serverSaid(message);
      if (message.state !== "live") {
        // Show the state, not a frozen picture; the server's next frame is a keyframe.
        this.#paintedOnConnection = false;
        this.#renderer?.clear();
        this.#decoder?.waitForKeyframe();
      }
      this.#update();
    });
    connection.on("skipped", (message) => {
      this.#stats.serverSkipped(message.reason, message.frames);
      this.emit("skipped", message);
    });
    connection.on("stats", (message) => this.#stats.serverStats(message));
    connection.on("frame", (frame) => this.#onFrame(frame));
    connection.on("error", (err) => this.emit("error", err));
    connection.on("close", (info) => this.#onClose(info));
  }

  #onClose(info: ConnectionClose): void {
    this.#connection = undefined;
    this.#status.socketClosed();
    this.#stats.lagUnknown();
    if (this.#resyncTimer !== undefined) clearTimeout(this.#resyncTimer);
    this.#resyncTimer = undefined;
    this.#renderer?.clear();
    const lastClose = this.#status.closedWith(info.code, info.reason);
    if (!this.#options.reconnect) {
      this.setState("offline", lastClose, undefined);
      return;
    }
    this.#status.scheduleReconnect(() => this.#connect(), { closeCode: info.code });
    this.#update();
  }

  // --- hidden page -------------------------------------------------------------------------

  /**
   * The page was hidden or shown. Called from the document's `visibilitychange` on the main thread;
   * a player in a worker (which sees no document) is told by the page. Ignored unless
   * `pauseWhenHidden` is on.
   */
  setPageHidden(hidden: boolean): void {
    if (this.state === "closed" || this.state === "unsupported" || !this.#options.pauseWhenHidden) return;
    if (hidden === this.#paused) return;
    this.#paused = hidden;
    if (hidden) {
      // Nothing to decode or paint while hidden (rAF stops too): the server sends nothing, and the
      // codec is released because Chrome may reclaim it in a background tab anyway.
      this.#connection?.send({ type: "pause" });
      this.#decoder?.suspend();
      this.#renderer?.drop();
      this.#stats.lagUnknown();
      this.#paintedOnConnection = false;
      if (this.#resyncTimer !== undefined) clearTimeout(this.#resyncTimer);
      this.#resyncTimer = undefined;
    } else {
      // Reconfigure from the latest hello; the server replays the cached GOP, whose newest frame is painted.
      const hello = this.hello;
      if (hello !== undefined) this.#decoder?.configure({ width: hello.width, height: hello.height });
      this.#decoder?.waitForKeyframe();
      this.#connection?.send({ type: "resume" });
    }
    this.#update();
  }

  // --- media path --------------------------------------------------------------------------

  #onFrame(frame: ReceivedFrame): void {
    markJoin("frame", this);
    this.#stats.received(frame.messageBytes, frame.receivedAt);
    if (this.#paused) {
      // In flight before the server read our pause, or sent at join before it: not decoded.
      this.#stats.dropped();
      return;
    }
    if (this.hello === undefined && !this.#reportedFrameBeforeHello) {
      this.#reportedFrameBeforeHello = true; // once per connection; the decoder drops them
      this.emit("error", new PlayerError("CC_ERR_UNEXPECTED_MESSAGE", "video frame before hello"));
    }
    if (isKeyframe(frame.header)) this.#stats.keyframeSubmitted(isReplay(frame.header));
    this.#decoder?.decode(frame.header, frame.data, frame.receivedAt);
  }

  #onDecoded(frame: VideoFrame, meta: FrameMeta): void {
    this.#stats.decoded();
    const renderer = this.#renderer;
    // Replayed frames (the cached GOP at join) are decoded for their references; only the newest is painted.
    if (renderer === undefined || this.#paused) {
      frame.close();
      return;
    }
    if (meta.replay && !meta.newest) {
      frame.close();
      this.#stats.replaySkipped();
      return;
    }
    markJoin("decoded", this);
    renderer.push(frame, meta);
  }

  #onPaint(info: PaintInfo): void {
    markJoin("paint", this);
    this.#stats.painted(info.paintedAt, info.meta.serverTime, info.meta.replay);
    if (markPaints() && !info.meta.replay) {
      // For the benchmark's DevTools trace: the mark's time is the paint; its name the pipe → painted ms
      // and the frame's server time minus its PTS (ms), from which capture time can be estimated.
      const pipeToPaint = performance.timeOrigin + info.paintedAt - info.meta.serverTime;
      performance.mark(`cc-paint ${pipeToPaint.toFixed(3)} ${(info.meta.serverTime - info.meta.pts / 1000).toFixed(3)}`);
    }
    if (!this.#paintedOnConnection) {
      this.#paintedOnConnection = true;
      this.#update();
    }
  }

  /**
   * The decoder has reset itself and waits for a keyframe. Rather than wait up to a GOP for the
   * next live one, ask the server to replay its cached GOP to this viewer now.
   */
  #onDecoderError(err: PlayerError): void {
    this.emit("error", err);
    if (err.code === "CC_ERR_DECODE") this.#requestResync();
  }

  #requestResync(): void {
    const connection = this.#connection;
    // Paused: resume replays anyway. No socket: the next connection starts with a replay.
    if (this.#paused || connection === undefined || !connection.open) return;
    const wait = this.#lastResyncAt + RESYNC_MIN_INTERVAL_MS - performance.now();
    if (wait > 0) {
      // A resync was just asked for and its replay may still be coming; ask again later only if no keyframe came.
      this.#resyncTimer ??= setTimeout(() => {
        this.#resyncTimer = undefined;
        if (this.#decoder?.waitingForKeyframe === true) this.#requestResync();
      }, wait);
      return;
    }
    if (connection.send({ type: "resync" })) {
      this.#lastResyncAt = performance.now();
      this.#stats.resynced();
    }
  }

  // --- state and stats ---------------------------------------------------------------------

  /** Derives the state from what the socket, the server and the page have said. */
  #update(): void {
    if (this.state === "closed" || this.state === "unsupported") return;
    if (this.#paused) {
      this.setState("paused", "page hidden", undefined);
      return;
    }
    const { state, reason, retryAt } = this.#status.state(
      this.#paintedOnConnection,
      this.hello === undefined ? "waiting for hello" : "waiting for a keyframe",
    );
    this.setState(state, reason, retryAt);
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
    this.emit("stats", this.stats());
  }
}
