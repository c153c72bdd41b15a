// Paints decoded frames on a canvas with a 2D context (desynchronized on the main thread): by
// default as soon as a frame leaves the decoder, unless a newer one is still being decoded;
// whatever is left pending is painted in the next animation frame. The backing store is sized to
// the video; CSS `object-fit: contain` letterboxes it. The canvas may be an OffscreenCanvas in a
// worker (transferControlToOffscreen): there the worker's own requestAnimationFrame runs (setTimeout
// where a worker has none), and CSS is the page's job.

import type { PaintMode } from "./api.js";
import type { FrameMeta } from "./decoder.js";

export interface PaintInfo {
  readonly meta: FrameMeta;
  /** Whoever pushed the frame (the feed of one encoding, while an encoding switch is under way). */
  readonly source: object;
  /** `performance.now()` right after drawImage. */
  readonly paintedAt: number;
}

export interface RendererOptions {
  /**
   * When to paint: `decode` (default) paints a frame as soon as it leaves the decoder, if no newer
   * one is still being decoded; `raf` paints the newest frame in the next animation frame, which
   * costs up to a frame interval more (docs/benchmarks.md, Latency). In both modes an animation frame paints what is left pending (`decode`
   * leaves a frame pending while a newer one is still in the decoder).
   */
  paintMode?: PaintMode;
  /** Called after each paint. */
  onPaint?: (info: PaintInfo) => void;
  /** Called when a frame is replaced before it was painted. */
  onSkip?: (meta: FrameMeta) => void;
  /**
   * Ask for a desynchronized (low-latency) 2D context. Default true. The worker path turns it off:
   * a worker paints an OffscreenCanvas in the worker's own animation frames, and a desynchronized
   * canvas needs main-thread frames to show anything.
   */
  desynchronized?: boolean;
}

export type RenderCanvas = HTMLCanvasElement | OffscreenCanvas;
type Context2D = CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D;

/** requestAnimationFrame where it exists (windows; dedicated workers in Chromium and Firefox), else a 60 Hz timer. */
const nextFrame: (callback: () => void) => () => void =
  typeof requestAnimationFrame === "function"
    ? (callback) => {
        const id = requestAnimationFrame(callback);
        return () => cancelAnimationFrame(id);
      }
    : (callback) => {
        const id = setTimeout(callback, 16);
        return () => clearTimeout(id);
      };

export class CanvasRenderer {
  readonly canvas: RenderCanvas;
  readonly #ctx: Context2D;
  readonly #options: RendererOptions;
  #pending: { frame: VideoFrame; meta: FrameMeta; source: object } | undefined;
  #clearPending = false;
  /** Whose video frame the canvas shows; undefined while it shows (or is about to show) the black fill. */
  #shownSource: object | undefined;
  #cancelFrame: (() => void) | undefined;
  /** Paint through copyTo + putImageData (see #copyAndPut) until the browser refuses it once. */
  #copyPaint = true;
  #copying = false;
  /** The RGBA buffer copies go into, kept while the size stays. */
  #image: ImageData | undefined;
  /** Bumped by clear(), drop() and close(): a copy that finishes after one of them is not painted. */
  #generation = 0;
  #closed = false;

  constructor(canvas: RenderCanvas, options: RendererOptions = {}) {
    this.canvas = canvas;
    this.#options = options;
    // desynchronized: lower latency (4.4 ms vs 5.8 ms p50 pipe → presented, measured here). It shows
    // nothing until the page has produced one animation frame after getContext: one is asked for
    // below. After that, animation frames are asked for only while something waits to be painted —
    // a loop that ran every frame cost the page a rendering pass per display frame (measured: whole
    // browser 15 % of a core without it against 21 % with it, for a 640×480@30 stream).
    const settings: CanvasRenderingContext2DSettings = { desynchronized: options.desynchronized ?? true, alpha: false };
    const ctx = isOffscreen(canvas) ? canvas.getContext("2d", settings) : canvas.getContext("2d", settings);
    if (ctx === null) throw new Error("canvas has no 2d context (is another context type in use?)");
    this.#ctx = ctx;
    if (!isOffscreen(canvas) && canvas.style.objectFit === "") canvas.style.objectFit = "contain";
    this.#fillBlack();
    this.#schedule();
  }

  /**
   * The picture on the canvas as a PNG at the video's size. Rejects (InvalidStateError) while no
   * video frame is shown: before the first paint, or after `clear()` until the next one.
   */
  snapshot(): Promise<Blob> {
    const canvas = this.canvas;
    if (this.#closed || this.#shownSource === undefined) {
      return Promise.reject(new DOMException("no picture to snapshot yet", "InvalidStateError"));
    }
    if (isOffscreen(canvas)) return canvas.convertToBlob({ type: "image/png" });
    return new Promise((resolve, reject) => {
      canvas.toBlob((blob) => (blob === null ? reject(new DOMException("toBlob gave no image", "EncodingError")) : resolve(blob)), "image/png");
    });
  }

  /** Takes ownership of `frame`: it is painted (now, or at the next animation frame) or closed when replaced. */
  push(frame: VideoFrame, meta: FrameMeta, source: object): void {
    if (this.#closed) {
      frame.close();
      return;
    }
    const old = this.#pending;
    this.#pending = { frame, meta, source };
    this.#clearPending = false;
    if (old !== undefined) {
      old.frame.close();
      this.#options.onSkip?.(old.meta);
    }
    // On decoder output, paint at once unless newer frames are still in the decoder (they will
    // replace this one); what is not painted now is painted at the next animation frame.
    if (this.#options.paintMode === "decode" && meta.newest) this.#paintPending();
    if (this.#pending !== undefined) this.#schedule();
  }

  /** Drops (closes) a frame waiting to be painted — `source`'s only, if given; the canvas keeps what it shows. */
  drop(source?: object): void {
    if (this.#closed || (source !== undefined && this.#pending?.source !== source)) return;
    this.#generation++;
    this.#dropPending();
  }

  /** Whoever pushed the picture on the canvas; undefined while none is shown. */
  get shownSource(): object | undefined {
    return this.#shownSource;
  }

  /** The picture goes: the canvas is painted black at the next animation frame, unless a frame is pushed first. */
  clear(): void {
    if (this.#closed) return;
    this.#shownSource = undefined;
    this.#clearPending = true;
    this.#generation++;
    this.#schedule();
  }

  /** Stops painting and closes any frame held. Safe to call more than once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#generation++;
    this.#cancelFrame?.();
    this.#cancelFrame = undefined;
    this.#dropPending();
  }

  /** Asks for an animation frame, unless one is asked for already. */
  #schedule(): void {
    if (this.#closed || this.#cancelFrame !== undefined) return;
    this.#cancelFrame = nextFrame(this.#tick);
  }

  readonly #tick = (): void => {
    this.#cancelFrame = undefined;
    if (this.#closed) return;
    if (this.#clearPending) {
      this.#clearPending = false;
      this.#fillBlack();
    }
    this.#paintPending();
  };

  #paintPending(): void {
    // While a copy is under way the newest frame waits; the copy's end paints it.
    if (this.#copying) return;
    const pending = this.#pending;
    if (pending === undefined) return;
    this.#pending = undefined;
    if (this.#copyPaint && typeof pending.frame.copyTo === "function") {
      this.#copyAndPut(pending);
      return;
    }
    const { frame, meta, source } = pending;
    try {
      this.#fitTo(frame);
      this.#ctx.drawImage(frame, 0, 0, frame.displayWidth, frame.displayHeight);
      this.#shownSource = source;
    } finally {
      frame.close();
    }
    this.#options.onPaint?.({ meta, source, paintedAt: performance.now() });
  }

  /**
   * Paints by converting the frame to RGBA in our own buffer (`copyTo`) and `putImageData`: less
   * CPU than `drawImage(frame)` for the software-decoded frames here (measured: whole browser 11–13 %
   * of a core against 14–19 % for a 640×480@30 stream). It is asynchronous: a frame pushed meanwhile
   * waits, and a clear or drop meanwhile wins over the copy. Where the conversion is refused, the
   * renderer goes back to drawImage for good.
   */
  #copyAndPut({ frame, meta, source }: { frame: VideoFrame; meta: FrameMeta; source: object }): void {
    const width = frame.displayWidth;
    const height = frame.displayHeight;
    let image = this.#image;
    if (image?.width !== width || image.height !== height) image = this.#image = new ImageData(width, height);
    const generation = this.#generation;
    this.#copying = true;
    const rgba: VideoFrameCopyToOptions & { format: "RGBA"; colorSpace: "srgb" } = { format: "RGBA", colorSpace: "srgb" };
    frame.copyTo(image.data, rgba).then(
      () => {
        if (this.#closed || generation !== this.#generation) return;
        this.#fitTo(frame);
        this.#ctx.putImageData(image, 0, 0);
        this.#shownSource = source;
        this.#options.onPaint?.({ meta, source, paintedAt: performance.now() });
      },
      () => {
        // This browser cannot convert to RGBA itself: draw this frame, and every later one, with drawImage.
        this.#copyPaint = false;
        if (this.#closed || generation !== this.#generation || this.#pending !== undefined) return;
        this.#pending = { frame: frame.clone(), meta, source };
      },
    ).finally(() => {
      frame.close();
      this.#copying = false;
      this.#paintPending();
      if (this.#pending !== undefined) this.#schedule();
    });
  }

  /** Sizes the backing store to the frame (resizing resets it and the context state). */
  #fitTo(frame: VideoFrame): void {
    const width = frame.displayWidth;
    const height = frame.displayHeight;
    if (this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas.width = width;
      this.canvas.height = height;
    }
  }

  #dropPending(): void {
    const pending = this.#pending;
    this.#pending = undefined;
    pending?.frame.close();
  }

  #fillBlack(): void {
    this.#ctx.fillStyle = "#000";
    this.#ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
  }
}

function isOffscreen(canvas: RenderCanvas): canvas is OffscreenCanvas {
  return typeof OffscreenCanvas === "function" && canvas instanceof OffscreenCanvas;
}
