// playMse(video, url) → Player: the compatibility path. Plays the server's WebM byte stream
// (`WS /webm/<stream>`) through Media Source Extensions into a <video>, for browsers or pages
// without WebCodecs (VideoDecoder exists only in a secure context; MSE works on any origin).
//
// - One socket, binaryType arraybuffer; every binary message is appended, in order, through one
//   FIFO queue (MseSink). With `meta` (default) the player asks for `?meta=1`: the server adds its
//   hello/state messages and, before each frame, the frame's media time and server time, which
//   give the state over the picture and the pipe → presented latency (requestVideoFrameCallback).
// - Muted, inline autoplay. If playback cannot start (the playhead before the first buffered range,
//   or in a gap) it seeks to the next buffered media.
// - Live edge: Chromium plays ~0.1 s behind the newest media at best and never catches up by
//   itself. At join the player seeks near the newest media; later, behind by more than a few hundred
//   ms it plays faster (playbackRate up to 1.5), and more than 1.5 s behind it seeks.
// - Any failure (video.error, a SourceBuffer error, QuotaExceededError that persists, playback that
//   stalls while media arrives, the socket closing) ends the connection and the MediaSource; the
//   player reconnects with backoff and jitter and starts over with a fresh MediaSource (a new
//   object URL) — no page reload. Close 4409 (the stream's format changed) reconnects at once.
//
// States as in player.ts, except `paused` (a hidden page needs nothing special: on return the
// live-edge logic seeks back to live).

import { CloseCode, parseServerMessage } from "../../shared/protocol.js";
import type { Millis } from "../../shared/units.js";
import { toWebSocketUrl } from "./connection.js";
import { ConnectionStatus } from "./connection-status.js";
import { PlayerError } from "./errors.js";
import { MseSink, mseSupported } from "./mse-sink.js";
import type { Player } from "./player.js";
import { PlayerBase } from "./player-base.js";
import type { PlayerStatsSnapshot } from "./stats.js";
import { PlayerStats } from "./stats.js";

export interface MsePlayerOptions {
  /** Reconnect with backoff when the socket closes or the media fails. Default true. */
  readonly reconnect?: boolean;
  /** How often `stats` is emitted, ms. Default 500. */
  readonly statsIntervalMs?: number;
  /** Nominal first reconnect delay, ms; doubles per failed attempt (see PlayerOptions). Default 500. */
  readonly reconnectDelayMs?: number;
  /** Default 10000. */
  readonly maxReconnectDelayMs?: number;
  /**
   * Ask the server for its JSON messages too (`?meta=1`): stream state, hello, and per-frame times
   * for the pipe → presented latency. Default true. Without it the socket carries WebM bytes only.
   */
  readonly meta?: boolean;
  /** Keep the playhead near the newest media (rate nudges and seeks). Default true. */
  readonly liveSync?: boolean;
}


/** Live-edge control, seconds behind the newest buffered media. */
const LIVE = {
  /** Where a join or a catch-up seek lands. */
  seekTo: 0.1,
  /** Play faster above this… */
  nudgeAbove: 0.25,
  /** …until back below this. */
  nudgeUntil: 0.12,
  /** Seek instead above this. */
  seekAbove: 1.5,
  /** Playhead this close to the end of a range that has a successor: jump the gap. */
  gapEpsilon: 0.05,
} as const;
/** How often the live-edge logic runs, ms (browsers throttle it to 1 s in hidden tabs). */
const LIVE_TICK_MS = 100;
/** Media arrived but the playhead did not move for this long: start over. */
const STALL_MS = 4000;
/** play() is retried at most this often, ms. */
const PLAY_RETRY_MS = 1000;
/** Server times kept for matching presented frames (about 10 s at 60 fps). */
const FRAME_TIMES_KEPT = 600;

export function playMse(video: HTMLVideoElement, url: string, options: MsePlayerOptions = {}): Player {
  return new MsePlayer(video, url, options);
}

/** `url` as a ws:/wss: URL, with `meta=1` added when asked for. */
export function mseSocketUrl(url: string, meta: boolean): string {
  const u = new URL(toWebSocketUrl(url));
  if (meta && !u.searchParams.has("meta")) u.searchParams.set("meta", "1");
  return u.href;
}

/** One connection: its socket, its MediaSource, and what it has said so far. */
interface Session {
  readonly socket: WebSocket;
  readonly sink: MseSink;
  /** Removes every listener this session added to the socket and the <video>. */
  readonly listeners: AbortController;
  binaryMessages: number;
  /** mediaTimeMs → serverTime of the frames announced with meta=1 (insertion order = media order). */
  readonly frameTimes: Map<number, number>;
  /** The playhead was put at the live edge once the first media arrived. */
  joined: boolean;
  /**
   * Media time (s) from which presented frames count for latency: the join seek's target. Frames
   * before it are the join burst (the server's current GOP, like the replay on /ws/), shown at
   * most once before the seek; their server times are in the past.
   */
  liveFrom: number;
  /** presentedFrames of the previous video frame callback. */
  lastPresentedFrames: number | undefined;
  /** Stall watchdog: the playhead position and when it last moved; the buffered end then. */
  lastTime: number;
  lastMovedAt: number;
  endWhenMoved: number;
}

class MsePlayer extends PlayerBase {
  readonly #video: HTMLVideoElement;
  readonly #socketUrl: string;
  readonly #options: Required<MsePlayerOptions>;
  readonly #stats = new PlayerStats();
  #session: Session | undefined;
  /** Socket, server state and reconnects; a connection that presents a frame resets the backoff. */
  readonly #status: ConnectionStatus;
  #presentedOnConnection = false;
  #statsTimer: ReturnType<typeof setInterval> | undefined;
  #liveTimer: ReturnType<typeof setInterval> | undefined;
  #videoFrameRequest: number | undefined;
  #lastPlayAttempt = -Infinity;
  #autoplayRefused = false;
  /** Removes the pointerdown listener that retries play() after autoplay was refused. */
  #removeGestureListener: (() => void) | undefined;

  constructor(video: HTMLVideoElement, url: string, options: MsePlayerOptions) {
    super(url);
    this.#video = video;
    this.#options = {
      reconnect: options.reconnect ?? true,
      statsIntervalMs: options.statsIntervalMs ?? 500,
      reconnectDelayMs: options.reconnectDelayMs ?? 500,
      maxReconnectDelayMs: options.maxReconnectDelayMs ?? 10_000,
      meta: options.meta ?? true,
      liveSync: options.liveSync ?? true,
    };
    this.#status = new ConnectionStatus({ baseMs: this.#options.reconnectDelayMs, maxMs: this.#options.maxReconnectDelayMs }, this.#stats);
    this.#socketUrl = this.#toSocketUrl(url);
    if (!mseSupported()) {
      const reason = 'This browser cannot play video/webm; codecs="vp8" through Media Source Extensions.';
      this.setState("unsupported", reason, undefined);
      queueMicrotask(() => this.emit("error", new PlayerError("CC_ERR_NO_MSE", reason, true)));
      return;
    }
    // Autoplay without a gesture needs a muted video; inline keeps phones from going fullscreen.
    video.muted = true;
    video.defaultMuted = true;
    video.playsInline = true;
    video.autoplay = true;
    this.#statsTimer = setInterval(() => this.#emitStats(), this.#options.statsIntervalMs);
    this.#liveTimer = setInterval(() => this.#liveTick(), LIVE_TICK_MS);
    this.#connect();
  }

  stats(): PlayerStatsSnapshot {
    return this.#stats.snapshot();
  }

  protected override teardown(): void {
    this.#status.cancelReconnect();
    if (this.#statsTimer !== undefined) clearInterval(this.#statsTimer);
    this.#statsTimer = undefined;
    if (this.#liveTimer !== undefined) clearInterval(this.#liveTimer);
    this.#liveTimer = undefined;
    this.#cancelVideoFrameCallback();
    this.#removeGestureListener?.();
    this.#removeGestureListener = undefined;
    this.#endSession(true);
    if (this.state !== "unsupported") this.#video.playbackRate = 1;
  }

  #toSocketUrl(url: string): string {
    try {
      return mseSocketUrl(url, this.#options.meta);
    } catch {
      return url; // malformed: `new WebSocket` reports it in #connect
    }
  }

  // --- connection --------------------------------------------------------------------------

  #connect(): void {
    this.#status.connecting();
    this.#presentedOnConnection = false;
    this.#update();

    let socket: WebSocket;
    try {
      socket = new WebSocket(this.#socketUrl);
    } catch (err) {
      const error = PlayerError.from(err, "CC_ERR_SOCKET");
      this.setState("offline", error.message, undefined);
      this.emit("error", new PlayerError(error.code, error.message, true, { cause: err }));
      return;
    }
    socket.binaryType = "arraybuffer";
    const listeners = new AbortController();
    // The sink is created with the socket, so the MediaSource opens while the socket connects.
    let session: Session | undefined = undefined;
    const sink = new MseSink(this.#video, {
      onError: (err) => {
        if (session !== undefined) this.#recover(session, err);
      },
    });
    const now = performance.now();
    session = {
      socket,
      sink,
      listeners,
      binaryMessages: 0,
      frameTimes: new Map(),
      joined: false,
      liveFrom: 0,
      lastPresentedFrames: undefined,
      lastTime: this.#video.currentTime,
      lastMovedAt: now,
      endWhenMoved: 0,
    };
    const current = session;
    this.#session = current;
    const signal = listeners.signal;
    socket.addEventListener(
      "open",
      () => {
        this.#status.opened();
        this.#update();
      },
      { signal },
    );
    socket.addEventListener("message", (event: MessageEvent<unknown>) => this.#onMessage(current, event.data), { signal });
    socket.addEventListener(
      "error",
      () => this.emit("error", new PlayerError("CC_ERR_SOCKET", `WebSocket error on ${this.#socketUrl}`)),
      { signal },
    );
    socket.addEventListener("close", (event: CloseEvent) => this.#onClose(current, event.code, event.reason), { signal });
    this.#video.addEventListener("error", () => this.#recover(current, mediaError(this.#video)), { signal });
    this.#requestVideoFrameCallback();
  }

  /** Ends the current session: listeners, socket and MediaSource. */
  #endSession(detach: boolean): void {
    const session = this.#session;
    if (session === undefined) return;
    this.#session = undefined;
    this.#status.socketClosed();
    session.listeners.abort();
    if (session.socket.readyState === WebSocket.CONNECTING || session.socket.readyState === WebSocket.OPEN) {
      session.socket.close(1000, "player closed");
    }
    session.sink.close(detach);
    this.#stats.behindLive(null);
  }

  #onClose(session: Session, code: number, reason: string): void {
    if (session !== this.#session) return;
    this.#endSession(false);
    const lastClose = this.#status.closedWith(code, reason);
    if (!this.#options.reconnect) {
      this.setState("offline", lastClose, undefined);
      return;
    }
    // A format change is not a failure: reconnect at once for the new init segment (backoff if it repeats).
    const immediate = code === CloseCode.FORMAT_CHANGED && this.#status.failedAttempts === 0;
    this.#status.scheduleReconnect(() => this.#connect(), immediate ? { delayMs: 0 } : { closeCode: code });
    this.#update();
  }

  /** The media failed: report it, drop this connection and MediaSource, and start over. */
  #recover(session: Session, err: PlayerError): void {
    if (session !== this.#session) return;
    this.emit("error", err);
    this.#stats.decoderError();
    this.#endSession(false);
    this.#status.lastClose = `recovering: ${err.message}`;
    if (!this.#options.reconnect) {
      this.setState("offline", this.#status.lastClose, undefined);
      return;
    }
    this.#status.scheduleReconnect(() => this.#connect());
    this.#update();
  }

  #onMessage(session: Session, data: unknown): void {
    if (session !== this.#session) return;
    const receivedAt = performance.now();
    if (data instanceof ArrayBuffer) {
      session.binaryMessages++;
      // The first message is the init segment; every later one is one frame.
      if (session.binaryMessages > 1) this.#stats.received(data.byteLength, receivedAt);
      session.sink.append(data);
      return;
    }
    if (typeof data !== "string") {
      this.emit("error", new PlayerError("CC_ERR_UNEXPECTED_MESSAGE", "message is neither text nor ArrayBuffer"));
      return;
    }
    try {
      this.#onText(session, data);
    } catch (err) {
      this.emit("error", PlayerError.from(err, "CC_ERR_BAD_MESSAGE"));
    }
  }

  #onText(session: Session, text: string): void {
    const message = parseServerMessage(text);
    switch (message.type) {
      case "hello":
        this.setHello(message);
        this.emit("hello", message);
        this.#update();
        break;
      case "state":
        this.#status.serverSaid(message);
        if (message.state !== "live") this.#presentedOnConnection = false;
        this.#update();
        break;
      case "skipped":
        this.#stats.serverSkipped(message.reason, message.frames);
        this.emit("skipped", message);
        break;
      case "stats":
        this.#stats.serverStats(message);
        break;
      case "unknown": {
        const frame = parseFrameMessage(message.raw);
        if (frame === undefined) break; // another type this client does not know
        session.frameTimes.set(Math.round(frame.mediaTimeMs), frame.serverTime);
        if (session.frameTimes.size > FRAME_TIMES_KEPT) {
          const oldest = session.frameTimes.keys().next();
          if (oldest.done !== true) session.frameTimes.delete(oldest.value);
        }
        break;
      }
    }
  }

  // --- presentation ------------------------------------------------------------------------

  #requestVideoFrameCallback(): void {
    this.#cancelVideoFrameCallback();
    if (typeof this.#video.requestVideoFrameCallback !== "function") return;
    this.#videoFrameRequest = this.#video.requestVideoFrameCallback(this.#onVideoFrame);
  }

  #cancelVideoFrameCallback(): void {
    if (this.#videoFrameRequest !== undefined) this.#video.cancelVideoFrameCallback(this.#videoFrameRequest);
    this.#videoFrameRequest = undefined;
  }

  /** A new frame of the <video> went to the compositor. */
  readonly #onVideoFrame = (_now: number, metadata: VideoFrameCallbackMetadata): void => {
    if (this.state === "closed") return;
    this.#videoFrameRequest = this.#video.requestVideoFrameCallback(this.#onVideoFrame);
    const session = this.#session;
    if (session === undefined) return;
    const last = session.lastPresentedFrames;
    session.lastPresentedFrames = metadata.presentedFrames;
    const frames = last === undefined ? 1 : metadata.presentedFrames - last;
    const mediaMs = Math.round(metadata.mediaTime * 1000);
    const times = session.frameTimes;
    const serverTime = times.get(mediaMs) ?? times.get(mediaMs - 1) ?? times.get(mediaMs + 1);
    const presentedAt = metadata.expectedDisplayTime;
    const live = serverTime !== undefined && metadata.mediaTime >= session.liveFrom - 0.001;
    this.#stats.presented(presentedAt, live ? (serverTime as Millis) : null, frames >= 1 && frames < 600 ? frames : 1);
    const serverState = this.#status.serverState;
    if (!this.#presentedOnConnection && serverState !== "restarting" && serverState !== "offline") {
      this.#presentedOnConnection = true;
      this.#status.succeeded(); // this connection plays: the next failure starts the backoff afresh
      this.#update();
    }
  };

  /** Starts playback, seeks over what blocks it, stays near the live edge, and watches for stalls. */
  #liveTick(): void {
    const session = this.#session;
    const video = this.#video;
    if (session === undefined || !session.sink.open) return;
    const buffered = video.buffered;
    if (buffered.length === 0 || video.readyState < HTMLMediaElement.HAVE_METADATA) return;
    const now = performance.now();
    const t = video.currentTime;
    const end = buffered.end(buffered.length - 1);
    const behind = end - t;
    this.#stats.behindLive(Math.max(0, behind) * 1000);

    if (!video.seeking) {
      const range = rangeAt(buffered, t);
      const nextStart = firstStartAfter(buffered, t);
      const stuckAtGap = range !== undefined && range < buffered.length - 1 && buffered.end(range) - t < LIVE.gapEpsilon;
      if (!session.joined && this.#options.liveSync) {
        if (session.sink.queued > 0) return; // the join burst (the current GOP) is still being appended
        // Join at the live edge: the first cluster is the server's current GOP, up to a keyframe interval old.
        session.joined = true;
        session.liveFrom = Math.max(buffered.start(buffered.length - 1), end - LIVE.seekTo);
        if (behind > LIVE.seekTo * 2) this.#seek(session.liveFrom);
      } else if (this.#options.liveSync && behind > LIVE.seekAbove) {
        this.#seek(Math.max(buffered.start(buffered.length - 1), end - LIVE.seekTo));
      } else if ((range === undefined || stuckAtGap) && nextStart !== undefined) {
        // Before the first buffered range (a late first timecode) or at a gap: playback cannot start there.
        this.#seek(nextStart);
      }
    }

    if (this.#options.liveSync) {
      const rate = video.playbackRate;
      const want = behind > 0.8 ? 1.5 : behind > 0.5 ? 1.25 : behind > LIVE.nudgeAbove ? 1.1 : rate > 1 && behind > LIVE.nudgeUntil ? rate : 1;
      if (want !== rate) video.playbackRate = want;
    }

    if (video.paused && !video.ended && !this.#autoplayRefused && now - this.#lastPlayAttempt > PLAY_RETRY_MS) this.#play();

    // Watchdog: media keeps arriving but the playhead does not move (and the page is visible).
    if (t !== session.lastTime || video.seeking) {
      session.lastTime = t;
      session.lastMovedAt = now;
      session.endWhenMoved = end;
    } else if (typeof document !== "undefined" && document.visibilityState === "hidden") {
      session.lastMovedAt = now;
      session.endWhenMoved = end;
    } else if (now - session.lastMovedAt > STALL_MS && end - session.endWhenMoved > STALL_MS / 2000 && !this.#autoplayRefused) {
      this.#recover(session, new PlayerError("CC_ERR_STALLED", `playback stalled at ${t.toFixed(2)} s while media arrived up to ${end.toFixed(2)} s`));
    }
  }

  #seek(to: number): void {
    this.#video.currentTime = to;
    this.#stats.liveSeeked();
  }

  #play(): void {
    this.#lastPlayAttempt = performance.now();
    this.#video.play().catch((err: unknown) => {
      if (err instanceof DOMException && err.name === "NotAllowedError" && !this.#autoplayRefused) {
        this.#autoplayRefused = true;
        const error = new PlayerError("CC_ERR_AUTOPLAY", "the browser refused to start playback without a user gesture", false, { cause: err });
        this.emit("error", error);
        if (typeof document === "undefined") return;
        // Played on the next click or tap anywhere in the page.
        const retry = (): void => {
          this.#removeGestureListener?.();
          this.#removeGestureListener = undefined;
          this.#autoplayRefused = false;
          if (this.state !== "closed") this.#play();
        };
        document.addEventListener("pointerdown", retry);
        this.#removeGestureListener = () => document.removeEventListener("pointerdown", retry);
      }
      // AbortError: a new src or a seek interrupted play(); the next tick tries again.
    });
  }

  // --- state and stats ---------------------------------------------------------------------

  #update(): void {
    if (this.state === "closed" || this.state === "unsupported") return;
    const { state, reason, retryAt } = this.#status.state(this.#presentedOnConnection, "waiting for video");
    this.setState(state, reason, retryAt);
  }

  #emitStats(): void {
    this.emit("stats", this.stats());
  }
}

interface FrameMessage {
  readonly mediaTimeMs: number;
  readonly serverTime: number;
}

/** `{"type":"frame","mediaTimeMs":M,"serverTime":S,…}` (meta=1), or undefined for anything else. */
function parseFrameMessage(raw: unknown): FrameMessage | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const { type, mediaTimeMs, serverTime } = raw as Record<string, unknown>;
  if (type !== "frame") return undefined;
  if (typeof mediaTimeMs !== "number" || !Number.isFinite(mediaTimeMs) || typeof serverTime !== "number" || !Number.isFinite(serverTime)) {
    throw new PlayerError("CC_ERR_BAD_MESSAGE", "malformed frame message");
  }
  return { mediaTimeMs, serverTime };
}

/** Index of the buffered range holding `t`, if any. */
function rangeAt(ranges: TimeRanges, t: number): number | undefined {
  for (let i = 0; i < ranges.length; i++) if (t >= ranges.start(i) - 0.001 && t <= ranges.end(i)) return i;
  return undefined;
}

/** Start of the first buffered range that begins after `t`. */
function firstStartAfter(ranges: TimeRanges, t: number): number | undefined {
  for (let i = 0; i < ranges.length; i++) if (ranges.start(i) > t) return ranges.start(i);
  return undefined;
}

function mediaError(video: HTMLVideoElement): PlayerError {
  const error = video.error;
  const what = error === null ? "unknown" : `code ${error.code}${error.message !== "" ? `: ${error.message}` : ""}`;
  return new PlayerError("CC_ERR_MEDIA", `<video> error (${what})`);
}
