// The WebCodecs backend: frames from a `/ws/` transport → VideoDecoder (decoder.ts) → one canvas
// (renderer.ts). Each attached transport gets its own decoder (a feed); they share the renderer, so
// while an encoding switch is under way the old feed keeps painting until the new one's first
// picture replaces it. A decoder error resets that feed's decoder and asks the server to replay
// its cached GOP rather than wait for the next live keyframe.

import { isKeyframe, isReplay } from "../../shared/protocol.js";
import type { HelloMessage } from "../../shared/protocol.js";
import { isDisposableVp8Frame } from "../../shared/vp8.js";
import type { Backend, BackendFactory, BackendHost, Feed } from "./backend.js";
import type { FrameMeta } from "./decoder.js";
import { FrameDecoder, webCodecsAvailable } from "./decoder.js";
import { PlayerError } from "./errors.js";
import { markJoin } from "./join-marks.js";
import type { PaintInfo, RenderCanvas } from "./renderer.js";
import { CanvasRenderer } from "./renderer.js";
import type { ReceivedFrame, Transport } from "./transport.js";
import type { PaintMode } from "./api.js";

export interface WebCodecsBackendOptions {
  readonly paintMode: PaintMode;
  /** A desynchronized 2D context: on the main thread, not in a worker (see RendererOptions). */
  readonly desynchronized: boolean;
}

/** WebCodecs into `canvas` (on the main thread: a desynchronized 2D context; in a worker: not, see RendererOptions). */
export function webCodecsBackend(canvas: RenderCanvas): BackendFactory {
  return {
    mode: "webcodecs",
    unsupported: () => {
      if (webCodecsAvailable()) return undefined;
      const reason = globalThis.isSecureContext
        ? "This browser has no WebCodecs VideoDecoder."
        : "WebCodecs needs a secure context: open this page over https or on localhost.";
      return new PlayerError("CC_ERR_NO_WEBCODECS", reason, true);
    },
    create: (host, options, thread) => new WebCodecsBackend(canvas, host, { paintMode: options.paintMode, desynchronized: thread === "main" }),
  };
}

/** At most one resync request per this interval; errors in between wait for the replay already asked for. */
const RESYNC_MIN_INTERVAL_MS = 1000;

/** Benchmarks set `globalThis.canvascastMarkPaints = true` to get a performance mark per painted frame. */
const markPaints = (): boolean => (globalThis as { canvascastMarkPaints?: unknown }).canvascastMarkPaints === true;

export class WebCodecsBackend implements Backend {
  readonly mode = "webcodecs";
  readonly #host: BackendHost;
  readonly #renderer: CanvasRenderer;
  readonly #feeds = new Set<DecoderFeed>();
  #paused = false;
  #closed = false;

  constructor(canvas: RenderCanvas, host: BackendHost, options: WebCodecsBackendOptions) {
    this.#host = host;
    this.#renderer = new CanvasRenderer(canvas, {
      paintMode: options.paintMode,
      desynchronized: options.desynchronized,
      onPaint: (info) => this.#onPaint(info),
      onSkip: (meta) => (meta.replay ? host.stats.replaySkipped() : host.stats.dropped()),
    });
  }

  get paused(): boolean {
    return this.#paused;
  }

  attach(transport: Transport): Feed {
    const feed = new DecoderFeed(transport, this.#host, this.#renderer, this, () => this.#feeds.delete(feed));
    if (this.#closed) feed.close();
    else this.#feeds.add(feed);
    return feed;
  }

  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    for (const feed of this.#feeds) feed.suspend();
    this.#renderer.drop();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    for (const feed of this.#feeds) feed.wake();
  }

  snapshot(): Promise<Blob> {
    return this.#renderer.snapshot();
  }

  /**
   * `feed` has no picture to show: the canvas goes black if it shows one of `feed`'s, or one of a
   * feed since closed (kept across an encoding switch made while paused) — not another feed's.
   */
  clearPictureOf(feed: DecoderFeed): void {
    const shown = this.#renderer.shownSource;
    if (shown === undefined) return;
    if (shown === feed || !(shown instanceof DecoderFeed && this.#feeds.has(shown))) this.#renderer.clear();
  }

  syncStats(): void {
    for (const feed of this.#feeds) feed.syncStats();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const feed of [...this.#feeds]) feed.close();
    this.#renderer.close();
  }

  #onPaint(info: PaintInfo): void {
    this.#host.stats.painted(info.paintedAt, info.meta.serverTime, info.meta.replay, info.meta.recorded);
    if (markPaints() && !info.meta.replay && !info.meta.recorded) {
      // For the benchmark's DevTools trace: the mark's time is the paint; its name the pipe → painted ms
      // and the frame's server time minus its PTS (ms), from which capture time can be estimated.
      const pipeToPaint = performance.timeOrigin + info.paintedAt - info.meta.serverTime;
      performance.mark(`cc-paint ${pipeToPaint.toFixed(3)} ${(info.meta.serverTime - info.meta.pts / 1000).toFixed(3)}`);
    }
    markJoin("paint", this.#host.stats, info.paintedAt); // the paint's own time: the stats' first paint
    if (info.source instanceof DecoderFeed) this.#host.showing(info.source);
  }
}

/** One transport's frames through its own decoder into the shared renderer. */
class DecoderFeed implements Feed {
  readonly #transport: Transport;
  readonly #host: BackendHost;
  readonly #renderer: CanvasRenderer;
  readonly #backend: WebCodecsBackend;
  readonly #onClose: () => void;
  readonly #decoder: FrameDecoder;
  readonly #unsubscribe: (() => void)[];
  #hello: HelloMessage | undefined;
  #reportedFrameBeforeHello = false;
  #lastResyncAt = -Infinity;
  #resyncTimer: ReturnType<typeof setTimeout> | undefined;
  /** Decoder counters already added to the stats. */
  #seen = { dropped: 0, stale: 0, errors: 0 };
  #closed = false;

  constructor(transport: Transport, host: BackendHost, renderer: CanvasRenderer, backend: WebCodecsBackend, onClose: () => void) {
    this.#transport = transport;
    this.#host = host;
    this.#renderer = renderer;
    this.#backend = backend;
    this.#onClose = onClose;
    this.#decoder = new FrameDecoder({
      onFrame: (frame, meta) => this.#onDecoded(frame, meta),
      onError: (err) => this.#onDecoderError(err),
    });
    if (!backend.paused) this.#decoder.prepare();
    this.#unsubscribe = [
      transport.on("open", () => {
        // Every socket starts with the cached GOP (or the next keyframe): nothing before it decodes.
        this.#reportedFrameBeforeHello = false;
        this.#decoder.waitForKeyframe();
      }),
      transport.on("hello", (hello) => {
        this.#hello = hello;
        // While paused the codec stays released; resuming configures from the latest hello.
        if (!this.#backend.paused) this.#decoder.configure({ codec: hello.codec, width: hello.width, height: hello.height });
      }),
      transport.on("state", (message) => {
        if (message.state === "live") return;
        // Show the state, not a frozen picture; the server's next frame is a keyframe.
        this.#blank();
        this.#decoder.waitForKeyframe();
      }),
      transport.on("frame", (frame) => this.#onFrame(frame)),
      transport.on("closed", () => {
        this.#cancelResync();
        this.#blank();
        this.#decoder.waitForKeyframe();
      }),
    ];
  }

  /** The player paused: release the codec (Chrome may reclaim it in a background tab anyway). */
  suspend(): void {
    this.#cancelResync();
    this.#decoder.suspend();
    this.#renderer.drop(this);
  }

  /** The player plays again: configure from the latest hello; the server replays the cached GOP. */
  wake(): void {
    const hello = this.#hello;
    if (hello !== undefined) this.#decoder.configure({ codec: hello.codec, width: hello.width, height: hello.height });
    this.#decoder.waitForKeyframe();
  }

  syncStats(): void {
    const { dropped, stale, errors } = this.#decoder.counters;
    const stats = this.#host.stats;
    stats.dropped(dropped - this.#seen.dropped + (stale - this.#seen.stale));
    for (let i = this.#seen.errors; i < errors; i++) stats.decoderError();
    this.#seen = { dropped, stale, errors };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const off of this.#unsubscribe) off();
    this.#cancelResync();
    this.syncStats();
    this.#decoder.close();
    this.#renderer.drop(this);
    this.#onClose();
  }

  /** The stream is not live or the socket closed: show the state, not a frozen picture. */
  #blank(): void {
    this.#renderer.drop(this);
    this.#backend.clearPictureOf(this);
    this.#host.blank(this);
  }

  #onFrame(frame: ReceivedFrame): void {
    if (this.#hello === undefined && !this.#reportedFrameBeforeHello) {
      this.#reportedFrameBeforeHello = true; // once per socket; the decoder drops them
      this.#host.error(new PlayerError("CC_ERR_UNEXPECTED_MESSAGE", "video frame before hello"));
    }
    markJoin("frame", this.#host.stats);
    const keyframe = isKeyframe(frame.header);
    if (keyframe) this.#host.stats.keyframeSubmitted(isReplay(frame.header));
    // A replayed frame no later frame depends on is never painted (only the newest is): not decoding it
    // shortens the join by its decode time. With two temporal layers that is every other frame.
    if (!keyframe && isReplay(frame.header) && this.#hello?.codec === "vp8" && isDisposableVp8Frame(frame.data)) {
      this.#host.stats.replayDisposable();
      return;
    }
    this.#decoder.decode(frame.header, frame.data, frame.receivedAt);
  }

  #onDecoded(frame: VideoFrame, meta: FrameMeta): void {
    this.#host.stats.decoded();
    if (this.#backend.paused) {
      frame.close();
      return;
    }
    // Replayed frames (the cached GOP at join) are decoded for their references; only the newest is painted.
    if (meta.replay && !meta.newest) {
      frame.close();
      this.#host.stats.replaySkipped();
      return;
    }
    markJoin("decoded", this.#host.stats);
    this.#renderer.push(frame, meta, this);
  }

  #onDecoderError(err: PlayerError): void {
    this.#host.error(err);
    if (err.code === "CC_ERR_DECODE") this.#requestResync();
  }

  #requestResync(): void {
    // Paused: resume replays anyway. No socket: the next one starts with a replay.
    if (this.#closed || this.#backend.paused || !this.#transport.open) return;
    const wait = this.#lastResyncAt + RESYNC_MIN_INTERVAL_MS - performance.now();
    if (wait > 0) {
      // A resync was just asked for and its replay may still be coming; ask again later only if no keyframe came.
      this.#resyncTimer ??= setTimeout(() => {
        this.#resyncTimer = undefined;
        if (this.#decoder.waitingForKeyframe) this.#requestResync();
      }, wait);
      return;
    }
    if (this.#transport.resync()) {
      this.#lastResyncAt = performance.now();
      this.#host.stats.resynced();
    }
  }

  #cancelResync(): void {
    if (this.#resyncTimer !== undefined) clearTimeout(this.#resyncTimer);
    this.#resyncTimer = undefined;
  }
}
