// The player: a transport (the socket and everything about it, transport.ts) and a backend that
// shows its media (WebCodecs into a canvas or MSE into a <video>, backend.ts), with the statistics
// and the state a page sees. It keeps the picture live through what a deployment throws at it:
// dropped sockets (the transport reconnects), pipeline restarts (the state over the canvas, then
// the new keyframe), decoder errors (the backend resets and asks for a replay), a hidden page or an
// element scrolled out of view (pause: nothing sent, the codec released; resume from the replayed
// GOP), and encoding switches (the old picture stays until the new encoding's first one).
//
// States: connecting (socket opening, or open and waiting for the first picture) · starting (the
// server's pipeline is starting) · live (pictures are shown) · restarting (the server is
// restarting the pipeline; `retryAt` says when it tries next) · offline (the server says the stream
// is down, or the socket closed and `reconnect` is off) · reconnecting (the socket closed; the
// player retries at `retryAt`) · paused (hidden page, out of view, or pause()) · unsupported (this
// browser cannot play the path; nothing will) · closed (close() was called).

import type { Encoding, PauseReason, PlayerOptions, PlayerStatsSnapshot, PlayerThread } from "./api.js";
import type { Backend, BackendFactory, BackendHost, Feed } from "./backend.js";
import { CloseCode } from "../../shared/protocol.js";
import { PlayerError } from "./errors.js";
import { markJoin } from "./join-marks.js";
import { observeOffscreen } from "./offscreen.js";
import type { ResolvedPlayerOptions } from "./options.js";
import { resolvePlayerOptions } from "./options.js";
import { noPicture, PlayerBase } from "./player-base.js";
import { PlayerStats } from "./stats.js";
import type { MseContainer } from "../../shared/mse.js";
import { encodingOf, endpointOf, socketUrl } from "./stream-url.js";
import type { SocketLike } from "./transport.js";
import { Transport } from "./transport.js";

/** How a player is hosted, beyond the public options. */
export interface PlayerHost {
  readonly thread: PlayerThread;
  /**
   * The element watched for `pauseWhenOffscreen` (the canvas or video on the page). A player in a
   * worker has none: the page watches and tells it (`setPausedFor`).
   */
  readonly observe?: Element;
  /** Watch `document` for `pauseWhenHidden` (the main thread); a worker is told by the page. */
  readonly watchDocument?: boolean;
  /** Tests: make sockets some other way. */
  readonly openSocket?: (url: string) => SocketLike;
}

const PAUSE_TEXT: Record<PauseReason, string> = { hidden: "page hidden", offscreen: "out of view", user: "paused" };

/** One encoding's transport and what the backend does with it. */
interface Subscription {
  readonly encoding: Encoding;
  readonly transport: Transport;
  readonly feed: Feed;
}

export class CanvasCastPlayer extends PlayerBase {
  readonly thread: PlayerThread;
  readonly mode: "webcodecs" | "mse";
  readonly #baseUrl: string;
  readonly #options: ResolvedPlayerOptions;
  readonly #host: PlayerHost;
  readonly #stats = new PlayerStats();
  readonly #backend: Backend | undefined;
  /** The encoding on screen (or being waited for, before the first picture). */
  #current: Subscription | undefined;
  /** An encoding switch under way: it replaces `#current` when it shows its first picture. */
  #next: Subscription | undefined;
  /** A picture of `#current` is on screen. */
  #showing = false;
  readonly #pausedFor = new Set<PauseReason>();
  /** Encodings the server said this stream does not have. */
  readonly #refused = new Set<Encoding>();
  /** MSE: the path the stream's codec plays on (the URL's, else `/webm/`; the server's 4415 says the other). */
  #container: MseContainer;
  /** MSE: the player moved to the other container once already (a second 4415 is not followed). */
  #containerMoved = false;
  readonly #cleanups: (() => void)[] = [];
  /** The recording asked for with seek() (ms, server clock); new subscriptions ask for it too. Undefined: live. */
  #seekAt: number | undefined;
  #statsTimer: ReturnType<typeof setInterval> | undefined;

  /** `backend` says what shows the stream: `webCodecsBackend(canvas)` or `mseBackend(video)`. */
  constructor(backend: BackendFactory, url: string, options: PlayerOptions = {}, host: PlayerHost = { thread: "main" }) {
    super();
    this.thread = host.thread;
    this.mode = backend.mode;
    this.#baseUrl = url;
    this.#options = resolvePlayerOptions({ ...options, encoding: options.encoding ?? encodingOf(url) });
    this.#host = host;
    const endpoint = endpointOf(url);
    this.#container = endpoint === "ws" ? "webm" : endpoint;
    const unsupported = backend.unsupported();
    if (unsupported !== undefined) {
      this.setState("unsupported", unsupported.message, undefined);
      // Let the caller subscribe before the error is emitted.
      queueMicrotask(() => this.emit("error", unsupported));
      return;
    }
    const backendHost: BackendHost = {
      stats: this.#stats,
      showing: (feed) => this.#onShowing(feed),
      blank: (feed) => this.#onBlank(feed),
      error: (err) => this.#onBackendError(err),
    };
    this.#backend = backend.create(backendHost, this.#options, host.thread);
    this.#statsTimer = setInterval(() => this.emit("stats", this.stats()), this.#options.statsIntervalMs);
    this.#watchVisibility();
    this.#current = this.#subscribe(this.#options.encoding);
    this.#update();
  }

  get url(): string {
    return (this.#next ?? this.#current)?.transport.url ?? this.#baseUrl;
  }

  get encoding(): Encoding {
    return (this.#next ?? this.#current)?.encoding ?? this.#options.encoding;
  }

  get pausedFor(): readonly PauseReason[] {
    return [...this.#pausedFor];
  }

  stats(): PlayerStatsSnapshot {
    this.#backend?.syncStats();
    return this.#stats.snapshot();
  }

  /**
   * The current picture as a PNG at the video's size. Rejects (InvalidStateError) while none is
   * shown (before the first paint, while the stream restarts, or after close).
   */
  snapshot(): Promise<Blob> {
    if (this.#backend === undefined || this.state === "closed") return noPicture(this.state);
    return this.#backend.snapshot();
  }

  setEncoding(asked: Encoding): void {
    const encoding = this.#refused.has(asked) ? "full" : asked;
    if (this.#backend === undefined || this.state === "closed" || encoding === this.encoding) return;
    this.#unsubscribe(this.#next);
    this.#next = undefined;
    if (encoding === this.#current?.encoding) {
      this.#update(); // switched back before the other encoding showed a picture
      return;
    }
    if (this.#pausedFor.size > 0 || !this.#showing || this.mode === "mse") {
      // Nothing on screen to keep (or MSE, which plays one MediaSource at a time): replace now.
      this.#unsubscribe(this.#current);
      this.#showing = false;
      this.#current = this.#subscribe(encoding);
    } else {
      this.#next = this.#subscribe(encoding);
    }
    this.#update();
  }

  pause(): void {
    this.setPausedFor("user", true);
  }

  seek(at: Date | number): void {
    if (this.#backend === undefined || this.state === "closed") return;
    const ms = typeof at === "number" ? at : at.getTime();
    if (!Number.isFinite(ms)) throw new RangeError("seek() needs a Date or a time in ms since the epoch");
    if (this.mode === "mse") {
      this.emit("error", new PlayerError("CC_ERR_NO_SEEK", "an MSE player cannot play recordings: use the WebCodecs player (/ws/)"));
      return;
    }
    this.#seekAt = ms;
    for (const s of this.#subscriptions()) s.transport.seek(ms);
  }

  live(): void {
    if (this.#backend === undefined || this.state === "closed") return;
    this.#seekAt = undefined;
    for (const s of this.#subscriptions()) s.transport.live();
  }

  resume(): void {
    this.setPausedFor("user", false);
  }

  /**
   * Pauses for a reason, or stops pausing for it. The page calls it for a player in a worker
   * (which sees no document and no layout); options say which reasons apply.
   */
  setPausedFor(reason: PauseReason, paused: boolean): void {
    if (this.#backend === undefined || this.state === "closed") return;
    if (reason === "hidden" && !this.#options.pauseWhenHidden) return;
    if (reason === "offscreen" && !this.#options.pauseWhenOffscreen) return;
    const wasPaused = this.#pausedFor.size > 0;
    if (paused) this.#pausedFor.add(reason);
    else this.#pausedFor.delete(reason);
    const isPaused = this.#pausedFor.size > 0;
    if (isPaused !== wasPaused) {
      if (isPaused) {
        this.#showing = false;
        // Nothing is shown while paused, so there is no old picture to keep: finish the switch now.
        if (this.#next !== undefined) this.#finishSwitch(this.#next);
        this.#backend.pause();
        for (const s of this.#subscriptions()) s.transport.pause();
      } else {
        this.#backend.resume();
        for (const s of this.#subscriptions()) s.transport.resume();
      }
    }
    this.#update();
  }

  protected override teardown(): void {
    if (this.#statsTimer !== undefined) clearInterval(this.#statsTimer);
    this.#statsTimer = undefined;
    for (const cleanup of this.#cleanups.splice(0)) cleanup();
    this.#unsubscribe(this.#next);
    this.#unsubscribe(this.#current);
    this.#next = this.#current = undefined;
    this.#backend?.close();
  }

  #subscriptions(): Subscription[] {
    return [this.#current, this.#next].filter((s): s is Subscription => s !== undefined);
  }

  /** A transport for `encoding`, fed into the backend, started. */
  #subscribe(encoding: Encoding): Subscription {
    const backend = this.#backend;
    if (backend === undefined) throw new Error("no backend");
    const endpoint = this.mode === "mse" ? this.#container : "ws";
    let url: string;
    try {
      url = socketUrl(this.#baseUrl, { endpoint, encoding, meta: this.#options.meta });
    } catch {
      url = this.#baseUrl; // malformed: opening the socket reports it
    }
    const transport = new Transport(url, this.#stats, {
      endpoint,
      reconnect: this.#options.reconnect,
      backoff: { baseMs: this.#options.reconnectDelayMs, maxMs: this.#options.maxReconnectDelayMs },
      ...(this.#host.openSocket === undefined ? {} : { openSocket: this.#host.openSocket }),
    });
    const feed = backend.attach(transport);
    const subscription: Subscription = { encoding, transport, feed };
    const isCurrent = (): boolean => this.#current === subscription;
    transport.on("status", () => {
      if (isCurrent()) this.#update();
    });
    transport.on("hello", (hello) => {
      if (!isCurrent()) return; // a switch's hello is announced when its picture replaces the old one
      markJoin("hello", this.#stats); // the key the backend marks this player's other stages with
      this.setHello(hello);
      this.emit("hello", hello);
      this.#update();
    });
    transport.on("skipped", (message) => this.emit("skipped", message));
    transport.on("playback", ({ mode, at, error, message }) => {
      if (!isCurrent()) return;
      if (mode === "live") this.#seekAt = undefined;
      this.setPlayback({ mode, ...(at !== undefined ? { at } : {}), ...(error !== undefined ? { error } : {}), ...(message !== undefined ? { message } : {}) });
    });
    if (this.#seekAt !== undefined) transport.seek(this.#seekAt);
    transport.on("error", (err) => this.emit("error", err));
    transport.on("closed", ({ code, reason }) => {
      if (code === CloseCode.UNKNOWN_ENCODING && encoding !== "full") this.#encodingRefused(subscription, reason);
      else if (code === CloseCode.WRONG_CONTAINER && this.mode === "mse" && !this.#containerMoved) this.#moveContainer(subscription);
    });
    if (this.#pausedFor.size > 0) transport.pause();
    transport.start();
    return subscription;
  }

  /**
   * The stream has no such encoding (close 4406): play `full`, and keep asking for it instead from
   * now on (an element that follows its size would otherwise ask again on every resize).
   */
  #encodingRefused(subscription: Subscription, reason: string): void {
    this.#refused.add(subscription.encoding);
    this.emit("error", new PlayerError("CC_ERR_UNKNOWN_ENCODING", `${reason || "unknown encoding"}; playing the full encoding`));
    if (subscription === this.#next) {
      this.#unsubscribe(subscription);
      this.#next = undefined;
    } else if (subscription === this.#current) {
      this.#unsubscribe(subscription);
      this.#showing = false;
      this.#current = this.#subscribe("full");
    }
    this.#update();
  }

  /** The stream's codec plays in the other MSE container (close 4415): open its path at once. */
  #moveContainer(subscription: Subscription): void {
    this.#containerMoved = true;
    this.#container = this.#container === "webm" ? "mp4" : "webm";
    const current = subscription === this.#current;
    this.#unsubscribe(subscription);
    if (subscription === this.#next) this.#next = this.#subscribe(subscription.encoding);
    else if (current) this.#current = this.#subscribe(subscription.encoding);
    this.#update();
  }

  #unsubscribe(subscription: Subscription | undefined): void {
    if (subscription === undefined) return;
    subscription.feed.close();
    subscription.transport.close();
  }

  #onShowing(feed: Feed): void {
    const next = this.#next;
    // The new encoding's first picture replaced the old one's: the switch is done.
    if (next !== undefined && feed === next.feed) this.#finishSwitch(next);
    const current = this.#current;
    if (current === undefined || feed !== current.feed || this.#showing || this.#pausedFor.size > 0) return;
    this.#showing = true;
    current.transport.succeeded(); // this socket plays: the next drop starts the backoff afresh
    this.#update();
  }

  /** `next` replaces the current subscription; its hello, held back until now, is announced. */
  #finishSwitch(next: Subscription): void {
    this.#unsubscribe(this.#current);
    this.#current = next;
    this.#next = undefined;
    this.#showing = false;
    const hello = next.transport.hello;
    if (hello !== undefined) {
      this.setHello(hello);
      this.emit("hello", hello);
    }
  }

  #onBlank(feed: Feed): void {
    if (feed !== this.#current?.feed || !this.#showing) return;
    this.#showing = false;
    this.#update();
  }

  /** Pauses while the page is hidden and while the element is out of view, as the options say. */
  #watchVisibility(): void {
    if (this.#host.watchDocument !== false && this.#options.pauseWhenHidden && typeof document !== "undefined") {
      const onVisibility = (): void => this.setPausedFor("hidden", document.visibilityState === "hidden");
      document.addEventListener("visibilitychange", onVisibility);
      this.#cleanups.push(() => document.removeEventListener("visibilitychange", onVisibility));
      if (document.visibilityState === "hidden") {
        this.#pausedFor.add("hidden");
        this.#backend?.pause();
      }
    }
    const element = this.#host.observe;
    if (element !== undefined && this.#options.pauseWhenOffscreen) {
      const stop = observeOffscreen(element, (offscreen) => this.setPausedFor("offscreen", offscreen));
      if (stop !== undefined) this.#cleanups.push(stop);
    }
  }

  /**
   * The browser cannot decode the stream's codec: nothing this player does will change that, so
   * it stops (no socket left open) in `unsupported`, with the code and codec in the reason. The
   * error is emitted first, so that an `auto` owner (fallback-player.ts) can move to MSE before
   * the state says unsupported.
   */
  #onBackendError(err: PlayerError): void {
    const unsupported = err.code === "CC_ERR_CODEC_UNSUPPORTED" && this.state !== "closed";
    if (unsupported) {
      this.#unsubscribe(this.#next);
      this.#next = undefined;
      this.#unsubscribe(this.#current);
      this.#current = undefined;
    }
    this.emit("error", err);
    // A listener may have closed the player (state is a getter: read it again).
    if (unsupported && (this.state as string) !== "closed") this.setState("unsupported", `${err.code}: ${err.message}`, undefined);
  }

  /** Derives the state from what the transport, the backend and the page have said. */
  #update(): void {
    if (this.state === "closed" || this.state === "unsupported") return;
    const reasons = [...this.#pausedFor];
    if (reasons.length > 0) {
      this.setState("paused", reasons.map((r) => PAUSE_TEXT[r]).join(", "), undefined);
      return;
    }
    const transport = this.#current?.transport;
    if (transport === undefined) return;
    const waitingFor = this.hello === undefined && transport.hello === undefined ? "waiting for hello" : this.mode === "mse" ? "waiting for video" : "waiting for a keyframe";
    const { state, reason, retryAt } = transport.status(this.#showing, waitingFor);
    this.setState(state, reason, retryAt);
  }
}
