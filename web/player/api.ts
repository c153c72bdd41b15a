// The public types of the embeddable module (web/canvascast.ts → /canvascast.js). This file imports
// nothing, so the build turns it into the one self-contained `canvascast.d.ts` that pages and
// bundlers read. It is also where the player's own code gets these types (player.ts, stats.ts,
// errors.ts, embed.ts, renderer.ts import them from here), so each is written once. The exceptions
// are the wire types of shared/protocol.ts (HelloMessage, SkippedMessage, SkipCounts), which the
// server shares and which cannot be imported here, and the runtime lists behind PlayerMode and
// PlayerErrorCode: api-check.ts fails the web typecheck when those copies drift apart.

/** connecting · starting · live · restarting · offline · reconnecting · paused · unsupported · closed (see docs/embedding.md). */
export type PlayerState =
  | "connecting"
  | "starting"
  | "live"
  | "restarting"
  | "offline"
  | "reconnecting"
  | "paused"
  | "unsupported"
  | "closed";

export interface PlayerStateChange {
  readonly state: PlayerState;
  /** Why, when not live: the server's reason, the close reason, or what is being waited for. */
  readonly reason: string | undefined;
  /**
   * When something is retried next, as `performance.now()` ms of this page: the server's next
   * pipeline start (restarting, offline) or the player's next connection attempt (reconnecting).
   * For a countdown.
   */
  readonly retryAt: number | undefined;
}

/** Why the server did not send frames to this viewer. */
export type SkipReason = "lagging" | "buffer-full";
export type SkipCounts = Readonly<Record<SkipReason, number>>;

/** The server's first message on a connection: the stream's size and rate. */
export interface HelloMessage {
  readonly type: "hello";
  readonly protocol: 1;
  readonly stream: string;
  /** The encoding this connection carries; width, height and framerate are its own. */
  readonly encoding: Encoding;
  /** The WebCodecs codec string: "vp8", "vp09.PP.LL.DD", "av01.P.LLT.DD" or "avc1.PPCCLL". */
  readonly codec: string;
  readonly width: number;
  readonly height: number;
  readonly framerate: number;
  /** Server wall clock when hello was sent, ms since the epoch. */
  readonly serverTime: number;
}

/** The server skipped frames for this viewer because it fell behind; the picture jumps ahead. */
export interface SkippedMessage {
  readonly type: "skipped";
  readonly reason: SkipReason;
  readonly frames: number;
  /** The viewer's lag when the gap began, ms. */
  readonly lagMs: number;
}

export interface PlayerStatsSnapshot {
  /** Frames painted per second over the last second or two. */
  readonly fps: number;
  /** Received kbit/s (whole binary messages) over the same window. */
  readonly kbps: number;
  /**
   * Server read of the frame's last byte → drawImage done (WebCodecs) or the <video>'s expected
   * display time of the frame (MSE, requestVideoFrameCallback), ms, over the last ~300 live frames
   * (replayed or join-burst frames excluded). Null before the first sample. WebCodecs: the frame's
   * server time is first put on this page's clock with the offset estimated over the socket, so the
   * figure is right from another machine too. MSE: its paths carry no clock messages, so it assumes
   * the two clocks agree: right only on the server's machine (or with NTP-synced clocks).
   */
  readonly latencyP50Ms: number | null;
  readonly latencyP95Ms: number | null;
  readonly latencyP99Ms: number | null;
  readonly latencySamples: number;
  readonly framesReceived: number;
  readonly framesDecoded: number;
  readonly framesPainted: number;
  /** Live frames never painted: not decoded (waiting for a keyframe, backlog), stale, or replaced before paint. */
  readonly framesDropped: number;
  /** Replayed frames (cached GOP at join) decoded but, by design, not painted because a newer one followed. */
  readonly framesReplaySkipped: number;
  /** Replayed frames not decoded at all: no later frame depends on them (VP8 frames that update no reference). */
  readonly framesReplayDisposable: number;
  readonly decoderErrors: number;
  readonly bytesReceived: number;
  /** Player start → first paint, ms; null until then. */
  readonly firstPaintMs: number | null;
  /** `performance.now()` at the first paint: ms from the page's navigation start (page load → picture). */
  readonly firstPaintAtMs: number | null;
  /**
   * Whether the first picture was decoded from the replayed GOP's keyframe, i.e. the join did not
   * wait for the next live keyframe. Null until the first paint.
   */
  readonly joinedFromReplay: boolean | null;
  /**
   * This viewer's lag as the server measures it (server time of the newest frame sent minus that of
   * the newest acked), ms, from the server's latest `stats`. Null before one arrives, while paused
   * and between connections.
   */
  readonly lagMs: number | null;
  /** Frames the server did not send this viewer (it fell behind), summed over every connection. */
  readonly framesSkippedByServer: number;
  /** The same, by reason. */
  readonly skippedByServer: SkipCounts;
  /** Times the player asked the server to replay the cached GOP after a decoder error. */
  readonly resyncs: number;
  /** Times the player opened a new socket after losing one (or, MSE, after recovering from a media error). */
  readonly reconnects: number;
  /**
   * MSE only: how far the playhead is behind the newest buffered media (`buffered.end − currentTime`), ms.
   * Null for the WebCodecs player and before the first buffered media.
   */
  readonly behindLiveMs: number | null;
  /** MSE only: seeks the player made to start playback, jump a gap, or get back to the live edge. */
  readonly liveSeeks: number;
  /**
   * While the player plays the stream's recording (after `seek()`): when the picture on screen was
   * recorded, the server's wall clock in ms since the epoch (for "REC 10:32:05"). Null while live.
   */
  readonly recordedAt: number | null;
}

/**
 * What the player plays: `live`, or the stream's `recorded` video after `seek()`. Emitted when the
 * server switches (also by itself: at the end of the recording it goes back to live), and when a
 * seek cannot be served (`error`, `message`; the mode then is what goes on playing).
 */
export interface PlaybackChange {
  readonly mode: PlaybackMode;
  /** recorded: where playing started, the server's wall clock in ms (the keyframe at or before the time asked). */
  readonly at?: number;
  /** CC_ERR_NOT_RECORDED (the stream is not recorded), CC_ERR_NO_RECORDING (nothing recorded then or after), CC_ERR_NO_SEEK (an MSE player cannot seek). */
  readonly error?: string;
  readonly message?: string;
}

export type PlaybackMode = "live" | "recorded";

/** Stable error codes: switch on `code`, never on the message. */
export type PlayerErrorCode =
  /** A binary message shorter than its header. */
  | "CC_ERR_SHORT_MESSAGE"
  /** A binary message that declares a header shorter than the protocol's. */
  | "CC_ERR_BAD_HEADER_LENGTH"
  /** A text message that is not JSON. */
  | "CC_ERR_BAD_JSON"
  /** A JSON message that is not an object with a string `type`, or a known message with malformed fields. */
  | "CC_ERR_BAD_MESSAGE"
  /** The WebSocket reported an error (always followed by a close). */
  | "CC_ERR_SOCKET"
  /** A text message where a binary one was expected or the other way round, or a frame before hello. */
  | "CC_ERR_UNEXPECTED_MESSAGE"
  /** The stream has no encoding of the name asked for (close 4406, e.g. no `tile`): the player plays `full` instead. */
  | "CC_ERR_UNKNOWN_ENCODING"
  /** `VideoDecoder` errored; the player recovers at the next keyframe. */
  | "CC_ERR_DECODE"
  /** The decoder rejected the configuration (codec or size not supported). Fatal for this stream. */
  | "CC_ERR_DECODER_UNSUPPORTED"
  /**
   * This browser cannot decode the stream's codec (hello.codec, named in the message): WebCodecs'
   * `VideoDecoder.isConfigSupported`, or for MSE `MediaSource.isTypeSupported`, says no. Fatal,
   * except for an `auto` player that goes on through MSE (then `fatal` is false).
   */
  | "CC_ERR_CODEC_UNSUPPORTED"
  /** No WebCodecs `VideoDecoder`: insecure context (needs https or localhost) or an old browser. */
  | "CC_ERR_NO_WEBCODECS"
  /** No MediaSource. Fatal for the MSE player. */
  | "CC_ERR_NO_MSE"
  /** The <video> or its SourceBuffer failed (decode error, rejected append); the MSE player reconnects with a fresh MediaSource. */
  | "CC_ERR_MEDIA"
  /** The SourceBuffer stayed full (QuotaExceededError) after old media was removed; the MSE player reconnects. */
  | "CC_ERR_QUOTA"
  /** The <video> did not advance although media kept arriving; the MSE player reconnects. */
  | "CC_ERR_STALLED"
  /** The browser refused to start playback without a user gesture (unmuted autoplay). */
  | "CC_ERR_AUTOPLAY"
  /** `seek()` on an MSE player: only the frame protocol (`/ws/`, WebCodecs) plays recordings. */
  | "CC_ERR_NO_SEEK";

export interface PlayerError extends Error {
  readonly name: "PlayerError";
  readonly code: PlayerErrorCode;
  /** True when the player cannot continue on its own (no retry will help). */
  readonly fatal: boolean;
}

// A type alias, not an interface: an event map wants an index-signature-compatible type.
export type PlayerEvents = {
  state: PlayerStateChange;
  stats: PlayerStatsSnapshot;
  error: PlayerError;
  /** A hello arrived: the stream's size and rate are known (again). */
  hello: HelloMessage;
  /** The server skipped frames for this viewer because it fell behind; the picture jumps ahead. */
  skipped: SkippedMessage;
  /** The player switched between live and the recording, or a seek could not be served. */
  playback: PlaybackChange;
};

/**
 * `decode` (default): paint a frame as soon as it is decoded, unless a newer one is still in the
 * decoder; `raf`: paint the newest frame in requestAnimationFrame (a frame of the display clock later).
 */
export type PaintMode = "raf" | "decode";

export interface PlayerOptions {
  /** Reconnect with backoff and jitter when the socket closes (MSE: also when the media fails). Default true. */
  readonly reconnect?: boolean;
  /** How often `stats` is emitted, ms. Default 500. */
  readonly statsIntervalMs?: number;
  /**
   * Nominal first reconnect delay, ms; doubles per failed attempt up to `maxReconnectDelayMs`, and
   * each actual delay is drawn at random between half the nominal delay and all of it. A connection
   * that shows a picture resets it. Default 500.
   */
  readonly reconnectDelayMs?: number;
  /** Default 10000. */
  readonly maxReconnectDelayMs?: number;
  /**
   * Pause while the page is hidden (`document.visibilityState`): the server is told to stop
   * sending, the decoder is released, and on return the player resumes from the replayed GOP.
   * Default true; ignored where there is no `document`.
   */
  readonly pauseWhenHidden?: boolean;
  /**
   * Pause while the player's element is scrolled out of view (IntersectionObserver), like a hidden
   * page: nothing is sent or decoded for a picture no one sees. Default true.
   */
  readonly pauseWhenOffscreen?: boolean;
  /** `decode` (default): paint on decoder output; `raf`: paint the newest frame in requestAnimationFrame. */
  readonly paintMode?: PaintMode;
  /**
   * Which of the stream's encodings to play: `full` (default) or `tile`, a smaller one for grids
   * (when the server has one for the stream: docs/protocol.md, Encodings). `Player.setEncoding()`
   * switches later without a blank frame.
   */
  readonly encoding?: Encoding;
  /**
   * MSE: ask the server for its JSON messages too (`?meta=1`): stream state, hello, and per-frame
   * times for the pipe → presented latency. Default true. Without it the socket carries the media only (WebM or MP4).
   */
  readonly meta?: boolean;
  /** MSE: keep the playhead near the newest media (rate nudges and seeks). Default true. */
  readonly liveSync?: boolean;
}

/** A stream's encodings: `full` (its configured size and bitrate) and `tile` (a small one for grids). */
export type Encoding = "full" | "tile";

export interface PlayOptions extends PlayerOptions {
  /**
   * Decode and paint in a Web Worker with an OffscreenCanvas (`true`), on the main thread
   * (`false`), or in a worker where the browser allows it (`"auto"`, the default). With a worker
   * the canvas is handed to it (`transferControlToOffscreen`): the page can no longer draw on it
   * or read it back — use `snapshot()`.
   */
  readonly worker?: boolean | "auto";
}

export type PlayerThread = "main" | "worker";
export type PlayerMode = "auto" | "webcodecs" | "mse";
export type FitMode = "contain" | "cover";
/** `<canvas-cast quality>`: `auto` plays the tile encoding while the element is displayed small, else full. */
export type Quality = "auto" | Encoding;

/** Why a player is paused: the page is hidden, its element is out of view, or `pause()` was called. */
export type PauseReason = "hidden" | "offscreen" | "user";

export interface Player {
  /** The socket URL played (of the current encoding). */
  readonly url: string;
  /** Where the socket, decoding and painting run. */
  readonly thread: PlayerThread;
  /** The playback path: WebCodecs into a canvas, or MSE into a <video>. */
  readonly mode: "webcodecs" | "mse";
  readonly state: PlayerState;
  readonly reason: string | undefined;
  readonly retryAt: number | undefined;
  /** The latest hello, once received. */
  readonly hello: HelloMessage | undefined;
  /** The encoding asked for (the one on screen until a switch has painted its first picture). */
  readonly encoding: Encoding;
  /** Why the player is paused; empty while it plays. */
  readonly pausedFor: readonly PauseReason[];
  /** The latest statistics (in a worker: as of the last `stats` event, at most `statsIntervalMs` old). */
  stats(): PlayerStatsSnapshot;
  /** The current picture as a PNG at the video's size; rejects while no picture is shown. */
  snapshot(): Promise<Blob>;
  /**
   * Plays another of the stream's encodings. WebCodecs: the current picture stays on screen until
   * the new encoding's first picture replaces it (no blank frame). MSE: the <video> starts over.
   */
  setEncoding(encoding: Encoding): void;
  /** Stops the stream (the server sends nothing) until `resume()`; the last picture stays. */
  pause(): void;
  /** Undoes `pause()`: plays live again at once, from the replayed GOP. */
  resume(): void;
  /** `live`, or `recorded` after `seek()` until `live()` (or the end of the recording). */
  readonly playback: PlaybackMode;
  /**
   * Plays the stream's recording from the last keyframe at or before `at` (a Date, or ms since the
   * epoch on the server's clock), at real time; `stats().recordedAt` says when the picture on
   * screen was recorded. WebCodecs players only (an MSE player emits CC_ERR_NO_SEEK).
   */
  seek(at: Date | number): void;
  /** Back to live at once (from the replayed GOP). */
  live(): void;
  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof PlayerEvents>(type: K, listener: (payload: PlayerEvents[K]) => void): () => void;
  off<K extends keyof PlayerEvents>(type: K, listener: (payload: PlayerEvents[K]) => void): void;
  /** Stops everything and releases the socket and decoder. Safe to call more than once. */
  close(): void;
}

/** Plays the frame protocol socket `url` (`ws://host:8080/ws/cam0`; http(s) URLs work too) into `canvas`. */
export type PlayFunction = (canvas: HTMLCanvasElement, url: string, options?: PlayOptions) => Player;

/** `<canvas-cast src="ws://host:8080/ws/cam0" mode="auto" quality="auto" fit="contain" stats>`. */
export interface CanvasCastElement extends HTMLElement {
  /** The `src` attribute ("" when absent). */
  src: string;
  /** The `mode` attribute; an invalid value reads as the default, `auto`. */
  mode: PlayerMode;
  /** The `quality` attribute; an invalid value reads as the default, `auto`. */
  quality: Quality;
  /** The `fit` attribute; default `contain`. */
  fit: FitMode;
  /** The boolean `stats` attribute: show the fps/latency/state overlay. */
  stats: boolean;
  /** The player now running, if any (a new one after `src` or `mode` changes; `quality` switches encodings in place). */
  readonly player: Player | undefined;
  /** The current picture as a PNG at the video's size. */
  snapshot(): Promise<Blob>;
}

export interface CanvasCastElementConstructor {
  new (): CanvasCastElement;
  readonly prototype: CanvasCastElement;
  readonly observedAttributes: readonly string[];
}

declare global {
  interface HTMLElementTagNameMap {
    "canvas-cast": CanvasCastElement;
  }
}
