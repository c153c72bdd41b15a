// The MSE backend: the byte stream of an MSE transport (WebM on `/webm/`, fragmented MP4 on
// `/mp4/`) → one MediaSource (mse-sink.ts) → a <video>, kept at the live edge by live-edge.ts.
// Muted, inline autoplay. The SourceBuffer's type is hello's codec's (`?meta=1`, shared/mse.ts);
// a socket without hello gets its path's first codec (VP8 for WebM). A codec this browser's MSE
// cannot play is a fatal CC_ERR_CODEC_UNSUPPORTED. Each socket gets a fresh MediaSource (a byte
// stream cannot be joined mid-way); any media failure (video.error, a
// SourceBuffer error, a QuotaExceededError that persists, a stall while media arrives) reports the
// error and has the transport start over on a new socket — no page reload.
//
// Pictures are counted when the <video> presents them (requestVideoFrameCallback); with `?meta=1`
// each frame's server time comes first, which gives the pipe → presented latency.

import { DEFAULT_MIME, mseFormatOf } from "../../shared/mse.js";
import type { HelloMessage } from "../../shared/protocol.js";
import type { Millis } from "../../shared/units.js";
import type { Backend, BackendFactory, BackendHost, Feed } from "./backend.js";
import { PlayerError } from "./errors.js";
import { LiveEdge } from "./live-edge.js";
import { MseSink, mseSupported, mseTypeSupported } from "./mse-sink.js";
import { snapshotVideo } from "./snapshot-video.js";
import type { Transport } from "./transport.js";

/** How often the live-edge logic runs, ms (browsers throttle it to 1 s in hidden tabs). */
const LIVE_TICK_MS = 100;
/** play() is retried at most this often, ms. */
const PLAY_RETRY_MS = 1000;
/** Server times kept for matching presented frames (about 10 s at 60 fps). */
const FRAME_TIMES_KEPT = 600;

/** MSE into `video`. */
export function mseBackend(video: HTMLVideoElement): BackendFactory {
  return {
    mode: "mse",
    unsupported: () =>
      mseSupported() ? undefined : new PlayerError("CC_ERR_NO_MSE", "This browser has no Media Source Extensions (MediaSource).", true),
    create: (host, options) => new MseBackend(video, host, { liveSync: options.liveSync }),
  };
}

export class MseBackend implements Backend {
  readonly mode = "mse";
  readonly #video: HTMLVideoElement;
  readonly #host: BackendHost;
  readonly #liveSync: boolean;
  #feed: MseFeed | undefined;
  #liveTimer: ReturnType<typeof setInterval> | undefined;
  #videoFrameRequest: number | undefined;
  #lastPlayAttempt = -Infinity;
  #autoplayRefused = false;
  /** Removes the pointerdown listener that retries play() after autoplay was refused. */
  #removeGestureListener: (() => void) | undefined;
  #closed = false;

  constructor(video: HTMLVideoElement, host: BackendHost, options: { readonly liveSync: boolean }) {
    this.#video = video;
    this.#host = host;
    this.#liveSync = options.liveSync;
    // Autoplay without a gesture needs a muted video; inline keeps phones from going fullscreen.
    video.muted = true;
    video.defaultMuted = true;
    video.playsInline = true;
    video.autoplay = true;
    this.#liveTimer = setInterval(() => this.#liveTick(), LIVE_TICK_MS);
    this.#requestVideoFrame();
  }

  attach(transport: Transport): Feed {
    this.#feed?.close();
    const feed = new MseFeed(transport, this.#video, this.#host, this.#liveSync, () => {
      if (this.#feed === feed) this.#feed = undefined;
    });
    if (this.#closed) feed.close();
    else this.#feed = feed;
    return feed;
  }

  // A paused MSE transport closes its socket; on resume a new MediaSource starts at the live edge.
  pause(): void {}
  resume(): void {}

  snapshot(): Promise<Blob> {
    return snapshotVideo(this.#video);
  }

  syncStats(): void {}

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#liveTimer !== undefined) clearInterval(this.#liveTimer);
    this.#liveTimer = undefined;
    if (this.#videoFrameRequest !== undefined) this.#video.cancelVideoFrameCallback(this.#videoFrameRequest);
    this.#videoFrameRequest = undefined;
    this.#removeGestureListener?.();
    this.#removeGestureListener = undefined;
    this.#feed?.close(true);
    this.#video.playbackRate = 1;
  }

  #requestVideoFrame(): void {
    if (typeof this.#video.requestVideoFrameCallback !== "function") return;
    this.#videoFrameRequest = this.#video.requestVideoFrameCallback(this.#onVideoFrame);
  }

  /** A new frame of the <video> went to the compositor. */
  readonly #onVideoFrame = (_now: number, metadata: VideoFrameCallbackMetadata): void => {
    if (this.#closed) return;
    this.#requestVideoFrame();
    this.#feed?.presented(metadata);
  };

  #liveTick(): void {
    const feed = this.#feed;
    const video = this.#video;
    const decision = feed?.tick();
    if (decision === undefined) return;
    this.#host.stats.behindLive(decision.behindMs);
    if (decision.seekTo !== undefined) {
      video.currentTime = decision.seekTo;
      this.#host.stats.liveSeeked();
    }
    if (decision.rate !== undefined) video.playbackRate = decision.rate;
    if (video.paused && !video.ended && !this.#autoplayRefused && performance.now() - this.#lastPlayAttempt > PLAY_RETRY_MS) this.#play();
    if (decision.stalled !== undefined && !this.#autoplayRefused) feed?.fail(new PlayerError("CC_ERR_STALLED", decision.stalled));
  }

  #play(): void {
    this.#lastPlayAttempt = performance.now();
    this.#video.play().catch((err: unknown) => {
      if (err instanceof DOMException && err.name === "NotAllowedError" && !this.#autoplayRefused) {
        this.#autoplayRefused = true;
        this.#host.error(new PlayerError("CC_ERR_AUTOPLAY", "the browser refused to start playback without a user gesture", false, { cause: err }));
        if (typeof document === "undefined") return;
        // Played on the next click or tap anywhere in the page.
        const retry = (): void => {
          this.#removeGestureListener?.();
          this.#removeGestureListener = undefined;
          this.#autoplayRefused = false;
          if (!this.#closed) this.#play();
        };
        document.addEventListener("pointerdown", retry);
        this.#removeGestureListener = () => document.removeEventListener("pointerdown", retry);
      }
      // AbortError: a new src or a seek interrupted play(); the next tick tries again.
    });
  }
}

/** One socket's MediaSource and what it has said. */
interface Session {
  readonly sink: MseSink;
  readonly liveEdge: LiveEdge;
  /** mediaTimeMs → serverTime of the frames announced with meta=1 (insertion order = media order). */
  readonly frameTimes: Map<number, number>;
  /** presentedFrames of the previous video frame callback. */
  lastPresentedFrames: number | undefined;
}

class MseFeed implements Feed {
  readonly #transport: Transport;
  readonly #video: HTMLVideoElement;
  readonly #host: BackendHost;
  readonly #liveSync: boolean;
  readonly #onClose: () => void;
  readonly #unsubscribe: (() => void)[];
  readonly #videoListeners = new AbortController();
  #session: Session | undefined;
  #closed = false;

  constructor(transport: Transport, video: HTMLVideoElement, host: BackendHost, liveSync: boolean, onClose: () => void) {
    this.#transport = transport;
    this.#video = video;
    this.#host = host;
    this.#liveSync = liveSync;
    this.#onClose = onClose;
    this.#unsubscribe = [
      // The MediaSource is made as the socket is, so it opens while the socket connects.
      transport.on("connecting", () => this.#startSession()),
      transport.on("hello", (hello) => this.#onHello(hello)),
      transport.on("media", (chunk) => {
        const sink = this.#session?.sink;
        if (sink === undefined) return;
        // No hello on this socket (`meta: false`): the path's first codec.
        if (sink.type === undefined && transport.endpoint !== "ws") sink.setType(DEFAULT_MIME[transport.endpoint]);
        sink.append(chunk.data);
      }),
      transport.on("frameTime", ({ mediaTimeMs, serverTime }) => {
        const times = this.#session?.frameTimes;
        if (times === undefined) return;
        times.set(Math.round(mediaTimeMs), serverTime);
        if (times.size > FRAME_TIMES_KEPT) {
          const oldest = times.keys().next();
          if (oldest.done !== true) times.delete(oldest.value);
        }
      }),
      transport.on("state", (message) => {
        if (message.state !== "live") host.blank(this);
      }),
      transport.on("closed", () => {
        this.#endSession(false);
        host.blank(this);
      }),
    ];
    video.addEventListener("error", () => this.fail(mediaError(video)), { signal: this.#videoListeners.signal });
  }

  /** Hello names the codec: the SourceBuffer is made for it, where this browser's MSE plays it. */
  #onHello(hello: HelloMessage): void {
    const sink = this.#session?.sink;
    if (sink === undefined || sink.type !== undefined) return;
    const format = mseFormatOf(hello.codec);
    if (format === null || !mseTypeSupported(format.mimeType)) {
      const what = format === null ? hello.codec : format.mimeType;
      this.#host.error(new PlayerError("CC_ERR_CODEC_UNSUPPORTED", `this browser cannot play ${what} through Media Source Extensions`, true));
      return;
    }
    sink.setType(format.mimeType);
  }

  /** The live-edge decision for now, or undefined while no MediaSource is open. */
  tick(): ReturnType<LiveEdge["tick"]> | undefined {
    const session = this.#session;
    if (session === undefined || !session.sink.open) return undefined;
    return session.liveEdge.tick(this.#video, {
      now: performance.now(),
      queued: session.sink.queued,
      hidden: typeof document !== "undefined" && document.visibilityState === "hidden",
    });
  }

  presented(metadata: VideoFrameCallbackMetadata): void {
    const session = this.#session;
    if (session === undefined) return;
    const last = session.lastPresentedFrames;
    session.lastPresentedFrames = metadata.presentedFrames;
    const frames = last === undefined ? 1 : metadata.presentedFrames - last;
    const mediaMs = Math.round(metadata.mediaTime * 1000);
    const times = session.frameTimes;
    const serverTime = times.get(mediaMs) ?? times.get(mediaMs - 1) ?? times.get(mediaMs + 1);
    const live = serverTime !== undefined && metadata.mediaTime >= session.liveEdge.liveFrom - 0.001;
    this.#host.stats.presented(metadata.expectedDisplayTime, live ? (serverTime as Millis) : null, frames >= 1 && frames < 600 ? frames : 1);
    this.#host.showing(this);
  }

  /** The media failed: report it, drop this socket and MediaSource, and start over. */
  fail(err: PlayerError): void {
    if (this.#closed || this.#session === undefined) return;
    this.#host.error(err);
    this.#host.stats.decoderError();
    this.#transport.restart(`recovering: ${err.message}`);
  }

  close(detach = false): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const off of this.#unsubscribe) off();
    this.#videoListeners.abort();
    this.#endSession(detach);
    this.#onClose();
  }

  #startSession(): void {
    this.#endSession(false);
    let session: Session | undefined = undefined;
    const sink = new MseSink(this.#video, {
      onError: (err) => {
        if (session !== undefined && this.#session === session) this.fail(err);
      },
    });
    session = { sink, liveEdge: new LiveEdge(this.#video, performance.now(), this.#liveSync), frameTimes: new Map(), lastPresentedFrames: undefined };
    this.#session = session;
  }

  /** Ends the MediaSource; `detach` empties the <video> (otherwise the next session's `src` replaces it). */
  #endSession(detach: boolean): void {
    const session = this.#session;
    if (session === undefined) return;
    this.#session = undefined;
    session.sink.close(detach);
    this.#host.stats.behindLive(null);
  }
}

function mediaError(video: HTMLVideoElement): PlayerError {
  const error = video.error;
  const what = error === null ? "unknown" : `code ${error.code}${error.message !== "" ? `: ${error.message}` : ""}`;
  return new PlayerError("CC_ERR_MEDIA", `<video> error (${what})`);
}
