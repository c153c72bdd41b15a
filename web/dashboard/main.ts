// The dashboard: one tile per stream from /api/streams (polled, so streams added or removed on the
// server appear and disappear without a reload), each with a live player, its figures, a latency
// sparkline, a snapshot button and full screen (click the picture; Esc leaves).
// The player is WebCodecs on a <canvas> where VideoDecoder exists, else MSE on a <video> (an
// insecure origin such as http://<LAN address>); `?mode=mse` or `?mode=webcodecs` forces one.
// WebCodecs latency is corrected by the server clock offset estimated over the socket (clock.ts);
// the MSE socket carries no clock messages, so its latency assumes one machine (said in a tooltip).
// Test hooks (stable): <section class="tile" data-stream data-mode="webcodecs|mse" data-state
// data-frames-painted data-frames-received data-decoder-errors data-first-paint-ms data-first-paint-at
// data-joined-from-replay data-latency-p50 data-latency-p95 data-latency-clock="server|local"
// data-clock-offset-ms data-clock-uncertainty-ms data-lag-ms data-frames-skipped data-resyncs
// data-reconnects data-behind-live-ms data-live-seeks data-snapshot-name data-snapshot-bytes
// data-encoding (asked for: tile in the grid where the stream has one, full in full screen)
// data-shown-encoding (the hello of the picture on screen)>,
// <p id="server-warning" data-code> (the server's warnings, e.g. CC_WARN_OPEN_TO_NETWORK), and
// window.canvascast.players and window.canvascast.snapshot(stream) → Promise<Blob>. For MSE tiles,
// frames painted are frames the <video> presented (requestVideoFrameCallback) and latency is pipe →
// presented.

import type { EncodingInfo, ServerWarning, StreamInfo, StreamsResponse } from "../../shared/api.js";
import type { Encoding, Player, PlayerMode, PlayerState, PlayerStateChange, PlayerStatsSnapshot } from "../player/api.js";
import { isPlayerMode, playStream } from "../player/play.js";
import { deviceWidthOf, encodingForWidth, followDisplaySize } from "../player/quality.js";
import type { SkippedMessage } from "../../shared/protocol.js";
import type { ServerClock } from "../player/clock.js";
import { serverClock } from "../player/clock.js";
import { Sparkline } from "./sparkline.js";
import { saveBlob, snapshotFileName } from "./snapshot.js";
import { markJoin } from "../player/join-marks.js";
import { formatClock } from "../player/recorded-time.js";
import { RecordingTimeline } from "./timeline.js";

markJoin("module");

declare global {
  interface Window {
    canvascast: {
      players: Map<string, Player>;
      /** The picture of a stream's tile as a PNG (what the snapshot button saves). */
      snapshot(stream: string): Promise<Blob>;
    };
  }
}

const API_URL = "/api/streams";
const POLL_INTERVAL_MS = 2000;
/** Tiles' data attributes must refresh at least every 500 ms; stats arrive this often. */
const STATS_INTERVAL_MS = 250;
/** How long the "frames skipped" notice stays over the picture. */
const SKIP_NOTICE_MS = 4000;
/** Countdown refresh while a retry is pending. */
const COUNTDOWN_INTERVAL_MS = 200;
/** Sparkline points and tooltips: at most this often. */
const SPARK_INTERVAL_MS = 500;

const QUERY = new URLSearchParams(location.search);
/** `?paint=decode` paints on decoder output instead of in requestAnimationFrame (for comparison). */
const PAINT_MODE = QUERY.get("paint") === "raf" ? "raf" : "decode";
/** `?mode=mse|webcodecs` forces a playback path (tests, benchmarks); default auto. */
const PLAYER_MODE: PlayerMode = ((): PlayerMode => {
  const mode = QUERY.get("mode");
  if (mode === null || isPlayerMode(mode)) return mode ?? "auto";
  console.warn(`unknown ?mode=${mode}; using auto`);
  return "auto";
})();

/**
 * `?token=SECRET` (a server started with --token): sent on /api/streams as a bearer token and on the
 * stream sockets as `?token=`. The dashboard page itself is not guarded; the data is.
 */
const TOKEN = QUERY.get("token") ?? undefined;
const API_HEADERS: HeadersInit = TOKEN === undefined ? {} : { Authorization: `Bearer ${TOKEN}` };

const players = new Map<string, Player>();
window.canvascast = {
  players,
  snapshot(stream: string): Promise<Blob> {
    const player = players.get(stream);
    return player === undefined ? Promise.reject(new Error(`no stream ${stream}`)) : player.snapshot();
  },
};

function $<T extends Element>(root: ParentNode, selector: string): T {
  const el = root.querySelector<T>(selector);
  if (el === null) throw new Error(`dashboard markup has no ${selector}`);
  return el;
}

const STATE_LABELS: Record<PlayerState, string> = {
  connecting: "connecting",
  starting: "starting",
  live: "live",
  restarting: "restarting",
  offline: "offline",
  reconnecting: "reconnecting",
  paused: "paused",
  unsupported: "unsupported",
  closed: "closed",
};

const fmtFixed = (n: number, digits: number): string => (Number.isFinite(n) ? n.toFixed(digits) : "–");
const fmtMs = (n: number | null): string => (n === null ? "–" : n < 10 ? n.toFixed(1) : n.toFixed(0));
const attrMs = (n: number | null): string => (n === null ? "" : n.toFixed(1));
const fmtSeconds = (ms: number): string => (ms < 10_000 ? (ms / 1000).toFixed(1) : (ms / 1000).toFixed(0));
const fmtSigned = (n: number): string => `${n < 0 ? "−" : "+"}${Math.abs(n) < 10 ? Math.abs(n).toFixed(2) : Math.abs(n).toFixed(0)}`;

const LATENCY_TITLE_SERVER =
  "pipe → painted latency, p50 / p95 over the last ~300 frames: from the server reading the frame off the pipeline to this page drawing it, on the server's clock (offset estimated over the socket)";
const LATENCY_TITLE_LOCAL =
  "pipe → presented latency of the <video> (requestVideoFrameCallback), p50 / p95 over the last ~300 frames. Same-machine figure: the WebM socket carries no clock messages, so it assumes this computer's clock agrees with the server's — right only when the browser runs on the server's machine (or both clocks are NTP-synced)";

/** Toggles full screen on `el`; Esc leaves (the browser's own). */
function toggleFullscreen(el: HTMLElement): void {
  if (document.fullscreenElement === el) void document.exitFullscreen().catch(() => undefined);
  else if (typeof el.requestFullscreen === "function") void el.requestFullscreen().catch(() => undefined);
}

class Tile {
  readonly name: string;
  readonly el: HTMLElement;
  readonly player: Player;
  readonly #screen: HTMLElement;
  readonly #overlayState: HTMLElement;
  readonly #overlayReason: HTMLElement;
  readonly #overlayRetry: HTMLElement;
  readonly #toast: HTMLElement;
  readonly #stateLabel: HTMLElement;
  readonly #res: HTMLElement;
  readonly #fps: HTMLElement;
  readonly #kbps: HTMLElement;
  readonly #latency: HTMLElement;
  readonly #latencyCell: HTMLElement;
  readonly #viewers: HTMLElement;
  readonly #lag: HTMLElement;
  readonly #skipped: HTMLElement;
  readonly #snapshotButton: HTMLButtonElement;
  readonly #sparkline: Sparkline;
  /** The server's clock estimate (WebCodecs); undefined for MSE, whose socket has no clock messages. */
  readonly #clock: ServerClock | undefined;
  /** The stream has a tile encoding (from /api/streams). */
  #hasTile: boolean;
  /** The encoding for the picture's displayed size, once laid out. */
  #sizeEncoding: Encoding | undefined;
  readonly #stopFollowingSize: () => void;
  #lastSparkAt = -Infinity;
  #retryAt: number | undefined;
  #lastStats: PlayerStatsSnapshot | null = null;
  #countdownTimer: ReturnType<typeof setInterval> | undefined;
  #toastTimer: ReturnType<typeof setTimeout> | undefined;
  /** The recorded ranges and LIVE, in full screen, for a recorded stream. */
  #timeline: RecordingTimeline | undefined;
  readonly #rec: HTMLElement;

  /**
   * `place` puts the tile's element in the page; it is called before the player starts, so that the
   * encoding can be chosen for the size the picture is shown at.
   */
  constructor(template: HTMLTemplateElement, info: StreamInfo, place: (el: HTMLElement) => void) {
    this.name = info.name;
    // importNode, not cloneNode: a clone stays in the template's inert document, where a canvas has no context.
    const fragment = document.importNode(template.content, true);
    this.el = $<HTMLElement>(fragment, "section.tile");
    this.el.dataset.stream = info.name;
    this.#screen = $(this.el, ".screen");
    this.#overlayState = $(this.el, ".overlay-state");
    this.#overlayReason = $(this.el, ".overlay-reason");
    this.#overlayRetry = $(this.el, ".overlay-retry");
    this.#toast = $(this.el, ".toast");
    this.#rec = $(this.el, ".rec");
    this.#stateLabel = $(this.el, ".state-label");
    this.#res = $(this.el, ".res");
    this.#fps = $(this.el, ".fig-fps");
    this.#kbps = $(this.el, ".fig-kbps");
    this.#latency = $(this.el, ".fig-latency");
    this.#latencyCell = $(this.el, ".fig-latency-cell");
    this.#viewers = $(this.el, ".fig-viewers");
    this.#lag = $(this.el, ".fig-lag");
    this.#skipped = $(this.el, ".fig-skipped");
    this.#snapshotButton = $(this.el, "button.snapshot");
    this.#sparkline = new Sparkline($<SVGSVGElement>(this.el, ".spark-svg"), { maxLabel: $(this.el, ".spark-max") });
    $(this.el, ".name").textContent = info.name;
    this.#screen.addEventListener("click", () => toggleFullscreen(this.el));
    $(this.el, "button.fullscreen").addEventListener("click", () => toggleFullscreen(this.el));
    this.#snapshotButton.addEventListener("click", () => void this.saveSnapshot());
    this.#writeStats(null);
    place(this.el);

    this.#hasTile = hasTileEncoding(info);
    this.player = playStream(this.#screen, info.name, {
      encoding: this.#wantedEncoding(),
      mode: PLAYER_MODE,
      // On this thread: the tile reads the server clock estimate (clock.ts), which lives with the socket.
      worker: false,
      statsIntervalMs: STATS_INTERVAL_MS,
      paintMode: PAINT_MODE,
      ...(TOKEN === undefined ? {} : { token: TOKEN }),
    });
    this.el.dataset.mode = this.player.mode;
    this.el.dataset.encoding = this.player.encoding;
    this.#clock = this.player.mode === "webcodecs" ? serverClock(this.player.url) : undefined;
    this.el.dataset.latencyClock = this.#clock === undefined ? "local" : "server";
    this.#latencyCell.toggleAttribute("data-same-machine", this.#clock === undefined);
    this.#latencyCell.title = this.#clock === undefined ? LATENCY_TITLE_LOCAL : LATENCY_TITLE_SERVER;
    this.player.on("state", (change) => this.#showState(change));
    this.player.on("stats", (stats) => {
      this.#writeStats(stats);
      this.#showPlayback(stats.recordedAt);
    });
    this.player.on("playback", (change) => {
      if (change.error !== undefined) this.#flash(`${change.error}: ${change.message ?? ""}`);
      this.#showPlayback(this.player.stats().recordedAt);
    });
    this.player.on("hello", (hello) => {
      this.#showSize(hello.width, hello.height, hello.framerate, hello.encoding);
      this.el.dataset.shownEncoding = hello.encoding;
      this.el.dataset.mode = this.player.mode; // auto may have moved to MSE (a codec WebCodecs lacks here)
    });
    this.player.on("skipped", (message) => this.#showSkipped(message));
    this.player.on("error", (err) => console.warn(`[${info.name}] ${err.code}: ${err.message}`));
    this.#showState({ state: this.player.state, reason: this.player.reason, retryAt: this.player.retryAt });
    // The grid plays the small encoding while the picture is small; full screen plays the full one.
    this.#stopFollowingSize = followDisplaySize(this.#screen, (encoding) => {
      this.#sizeEncoding = encoding;
      this.#applyEncoding();
    });
    document.addEventListener("fullscreenchange", this.#applyEncoding);
    document.addEventListener("fullscreenchange", this.#showTimeline);
    this.update(info);
  }

  readonly #showTimeline = (): void => {
    this.#timeline?.show(document.fullscreenElement === this.el);
  };

  /** REC and when the picture on screen was recorded, while the recording plays. */
  #showPlayback(recordedAt: number | null): void {
    const recorded = this.player.playback === "recorded";
    this.el.dataset.playback = this.player.playback;
    this.el.dataset.recordedAt = recorded && recordedAt !== null ? String(Math.round(recordedAt)) : "";
    this.#rec.hidden = !recorded;
    this.#rec.textContent = recorded && recordedAt !== null ? `REC ${formatClock(recordedAt)}` : "REC";
    this.#timeline?.setPosition(recorded ? recordedAt : null);
  }

  /** The encoding the tile should play: full in full screen or when shown large, else its tile encoding if it has one. */
  #wantedEncoding(): Encoding {
    if (!this.#hasTile || document.fullscreenElement === this.el) return "full";
    return this.#sizeEncoding ?? encodingForWidth(deviceWidthOf(this.#screen));
  }

  readonly #applyEncoding = (): void => {
    const wanted = this.#wantedEncoding();
    if (this.player.encoding !== wanted) this.player.setEncoding(wanted);
    this.el.dataset.encoding = this.player.encoding;
  };

  update(info: StreamInfo): void {
    const hasTile = hasTileEncoding(info);
    if (hasTile !== this.#hasTile) {
      this.#hasTile = hasTile;
      this.#applyEncoding();
    }
    if (this.player.hello === undefined) this.#showSize(info.width, info.height, info.framerate);
    if (info.recording !== undefined && this.#timeline === undefined && this.player.mode === "webcodecs") {
      this.#timeline = new RecordingTimeline({
        url: `${API_URL}/${encodeURIComponent(this.name)}/recordings`,
        headers: API_HEADERS,
        seek: (at) => this.player.seek(at),
        live: () => this.player.live(),
      });
      this.el.insertBefore(this.#timeline.el, $(this.el, ".meta"));
      this.#showTimeline();
    }
    this.#viewers.textContent = String(info.viewers);
    this.el.title = `${info.name} — ${info.source}, target ${info.targetKbps} kbit/s, keyframe every ${info.keyframeIntervalS} s`;
  }

  /** Saves the current picture as `<stream>-<timestamp>.png`. */
  async saveSnapshot(): Promise<void> {
    const name = snapshotFileName(this.name);
    this.#snapshotButton.disabled = true;
    try {
      const blob = await this.player.snapshot();
      saveBlob(blob, name);
      this.el.dataset.snapshotName = name;
      this.el.dataset.snapshotBytes = String(blob.size);
      this.#flash("saved " + name);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      console.warn(`[${this.name}] snapshot failed: ${message}`);
      this.#flash(`no snapshot: ${message}`);
    } finally {
      this.#snapshotButton.disabled = false;
    }
  }

  close(): void {
    if (document.fullscreenElement === this.el) void document.exitFullscreen().catch(() => undefined);
    document.removeEventListener("fullscreenchange", this.#applyEncoding);
    document.removeEventListener("fullscreenchange", this.#showTimeline);
    this.#timeline?.close();
    this.#stopFollowingSize();
    this.player.close();
    if (this.#countdownTimer !== undefined) clearInterval(this.#countdownTimer);
    this.#countdownTimer = undefined;
    if (this.#toastTimer !== undefined) clearTimeout(this.#toastTimer);
    this.#toastTimer = undefined;
    this.el.remove();
  }

  #showSize(width: number, height: number, framerate: number, encoding: Encoding = "full"): void {
    const which = encoding === "full" ? "" : ` ${encoding}`;
    this.#res.textContent = `${width}×${height}${which} · ${fmtFixed(framerate, framerate % 1 === 0 ? 0 : 2)} fps`;
    this.#screen.style.setProperty("--aspect", `${width} / ${height}`);
  }

  #showState({ state, reason, retryAt }: PlayerStateChange): void {
    this.el.dataset.state = state;
    this.#stateLabel.textContent = STATE_LABELS[state];
    this.#overlayState.textContent = STATE_LABELS[state];
    this.#overlayReason.textContent = reason ?? "";
    this.#screen.title = reason ?? "";
    this.#retryAt = retryAt;
    this.#showCountdown();
    this.#writeStats(this.#lastStats); // fps and kbit/s show only while live
    if (retryAt !== undefined) this.#countdownTimer ??= setInterval(() => this.#showCountdown(), COUNTDOWN_INTERVAL_MS);
    else if (this.#countdownTimer !== undefined) {
      clearInterval(this.#countdownTimer);
      this.#countdownTimer = undefined;
    }
  }

  /** "reconnecting in 2.4 s" or "next start in 2.4 s" under the reason, while a retry is pending. */
  #showCountdown(): void {
    const at = this.#retryAt;
    if (at === undefined) {
      this.#overlayRetry.textContent = "";
      return;
    }
    const left = at - performance.now();
    const what = this.player.state === "reconnecting" ? "reconnecting" : "next start";
    this.#overlayRetry.textContent = left > 0 ? `${what} in ${fmtSeconds(left)} s` : `${what} now…`;
  }

  /** A short-lived notice over the picture: the server skipped frames because this viewer fell behind. */
  #showSkipped(message: SkippedMessage): void {
    const why = message.reason === "lagging" ? `${fmtMs(message.lagMs)} ms behind` : "send buffer full";
    this.#flash(`skipped ${message.frames} frame${message.frames === 1 ? "" : "s"} (${why})`);
  }

  /** A short-lived notice over the picture. */
  #flash(text: string): void {
    this.#toast.textContent = text;
    this.#toast.hidden = false;
    if (this.#toastTimer !== undefined) clearTimeout(this.#toastTimer);
    this.#toastTimer = setTimeout(() => {
      this.#toastTimer = undefined;
      this.#toast.hidden = true;
    }, SKIP_NOTICE_MS);
  }

  #writeStats(stats: PlayerStatsSnapshot | null): void {
    this.#lastStats = stats;
    const d = this.el.dataset;
    d.framesPainted = String(stats?.framesPainted ?? 0);
    d.decoderErrors = String(stats?.decoderErrors ?? 0);
    d.firstPaintMs = attrMs(stats?.firstPaintMs ?? null);
    d.firstPaintAt = attrMs(stats?.firstPaintAtMs ?? null);
    d.joinedFromReplay = stats?.joinedFromReplay == null ? "" : String(stats.joinedFromReplay);
    d.latencyP50 = attrMs(stats?.latencyP50Ms ?? null);
    d.latencyP95 = attrMs(stats?.latencyP95Ms ?? null);
    d.framesReceived = String(stats?.framesReceived ?? 0);
    d.lagMs = attrMs(stats?.lagMs ?? null);
    d.framesSkipped = String(stats?.framesSkippedByServer ?? 0);
    d.resyncs = String(stats?.resyncs ?? 0);
    d.reconnects = String(stats?.reconnects ?? 0);
    d.behindLiveMs = attrMs(stats?.behindLiveMs ?? null);
    d.liveSeeks = String(stats?.liveSeeks ?? 0);
    const clock = this.#clock?.estimate();
    d.clockOffsetMs = clock === undefined ? "" : clock.offsetMs.toFixed(2);
    d.clockUncertaintyMs = clock === undefined ? "" : clock.uncertaintyMs.toFixed(2);
    const live = stats !== null && this.player.state === "live";
    this.#fps.textContent = live ? fmtFixed(stats.fps, 1) : "–";
    this.#kbps.textContent = live ? fmtFixed(stats.kbps, 0) : "–";
    this.#latency.textContent =
      stats === null || stats.latencyP50Ms === null ? "–" : `${fmtMs(stats.latencyP50Ms)} / ${fmtMs(stats.latencyP95Ms)}`;
    this.#lag.textContent = stats === null || stats.lagMs === null ? "–" : fmtMs(stats.lagMs);
    // Units stay in place (hidden) without a number, so nothing shifts when one appears.
    this.#latency.parentElement?.toggleAttribute("data-none", this.#latency.textContent === "–");
    this.#lag.parentElement?.toggleAttribute("data-none", this.#lag.textContent === "–");
    this.#snapshotButton.disabled = !live;
    const now = performance.now();
    if (now - this.#lastSparkAt >= SPARK_INTERVAL_MS && stats !== null) {
      this.#lastSparkAt = now;
      this.#sparkline.push(now, live ? stats.latencyP50Ms : null, live ? stats.latencyP95Ms : null);
      if (clock !== undefined) {
        this.#latencyCell.title = `${LATENCY_TITLE_SERVER}: ${fmtSigned(clock.offsetMs)} ms ± ${clock.uncertaintyMs.toFixed(2)} ms`;
      }
    }
    const skipped = stats?.framesSkippedByServer ?? 0;
    this.#skipped.textContent = String(skipped);
    this.#skipped.title =
      stats === null ? "" : Object.entries(stats.skippedByServer).map(([reason, n]) => `${reason}: ${n}`).join(", ");
    this.#skipped.parentElement?.toggleAttribute("data-nonzero", skipped > 0);
  }
}

function hasTileEncoding(info: StreamInfo): boolean {
  // An older server lists no encodings.
  const encodings: readonly EncodingInfo[] | undefined = info.encodings;
  return encodings?.some((e) => e.name === "tile") === true;
}

function isStreamsResponse(v: unknown): v is StreamsResponse {
  if (typeof v !== "object" || v === null) return false;
  const streams = (v as { streams?: unknown }).streams;
  return (
    Array.isArray(streams) &&
    streams.every((s: unknown) => typeof s === "object" && s !== null && typeof (s as { name?: unknown }).name === "string")
  );
}

class Dashboard {
  readonly #grid = $<HTMLElement>(document, "#grid");
  readonly #summary = $<HTMLElement>(document, "#summary");
  readonly #notice = $<HTMLElement>(document, "#notice");
  readonly #warning = $<HTMLElement>(document, "#server-warning");
  readonly #clockValue = $<HTMLElement>(document, "#clock-value");
  readonly #template = $<HTMLTemplateElement>(document, "#tile-template");
  readonly #tiles = new Map<string, Tile>();
  #polls = 0;

  start(): void {
    void this.#poll();
    setInterval(() => this.#refreshSummary(), 1000);
  }

  async #poll(): Promise<void> {
    try {
      // The first poll takes the response index.html preloads (a no-store request would not);
      // the server marks every answer no-store, so later polls are never served from a cache.
      const response = await fetch(API_URL, this.#polls++ === 0 ? { headers: API_HEADERS } : { cache: "no-store", headers: API_HEADERS });
      if (response.status === 401) throw new Error(TOKEN === undefined ? "this server needs a token: open the page as /?token=SECRET" : "wrong token");
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const body: unknown = await response.json();
      if (!isStreamsResponse(body)) throw new Error("unexpected response shape");
      this.#apply(body.streams);
      this.#showWarnings(Array.isArray(body.warnings) ? body.warnings : []);
      this.#showNotice(undefined);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.#showNotice(`Cannot load ${API_URL}: ${message}. Retrying…`);
    } finally {
      setTimeout(() => void this.#poll(), POLL_INTERVAL_MS);
    }
  }

  #apply(streams: readonly StreamInfo[]): void {
    const seen = new Set<string>();
    let index = 0;
    for (const info of streams) {
      if (seen.has(info.name)) continue;
      seen.add(info.name);
      let tile = this.#tiles.get(info.name);
      if (tile === undefined) {
        try {
          const at = this.#grid.children[index] ?? null;
          tile = new Tile(this.#template, info, (el) => this.#grid.insertBefore(el, at));
        } catch (err) {
          console.error(`[${info.name}] cannot create player`, err);
          continue;
        }
        tile.player.on("state", () => this.#refreshSummary());
        this.#tiles.set(info.name, tile);
        players.set(info.name, tile.player);
      } else {
        tile.update(info);
      }
      // Keep the server's order, moving a tile only when it is out of place (moving exits fullscreen).
      const at = this.#grid.children[index] ?? null;
      if (at !== tile.el) this.#grid.insertBefore(tile.el, at);
      index++;
    }
    for (const [name, tile] of this.#tiles) {
      if (seen.has(name)) continue;
      tile.close();
      this.#tiles.delete(name);
      players.delete(name);
    }
    this.#grid.dataset.empty = String(this.#tiles.size === 0);
    this.#refreshSummary();
  }

  #refreshSummary(): void {
    const total = this.#tiles.size;
    if (total === 0) {
      this.#summary.textContent = "no streams configured";
      return;
    }
    let live = 0;
    for (const tile of this.#tiles.values()) if (tile.player.state === "live") live++;
    this.#summary.textContent = `${total} stream${total === 1 ? "" : "s"} · ${live} live`;
    this.#summary.dataset.allLive = String(live === total);
    this.#refreshClock();
  }

  /** The server clock offset, as the WebCodecs tiles' sockets estimate it (shared by every tile). */
  #refreshClock(): void {
    const webcodecs = [...this.#tiles.values()].find((tile) => tile.player.mode === "webcodecs");
    const clock = webcodecs === undefined ? undefined : serverClock(webcodecs.player.url).estimate();
    if (webcodecs === undefined && this.#tiles.size > 0) {
      this.#clockValue.textContent = "not measured (MSE): latency assumes one machine";
    } else {
      this.#clockValue.textContent =
        clock === undefined ? "–" : `${fmtSigned(clock.offsetMs)} ms (± ${clock.uncertaintyMs.toFixed(2)})`;
    }
  }

  /** The server's start-up warnings (e.g. open to the network with no token) as a banner; data-code for tests. */
  #showWarnings(warnings: readonly ServerWarning[]): void {
    const shown = warnings.filter((w) => typeof w.code === "string" && typeof w.message === "string");
    this.#warning.hidden = shown.length === 0;
    this.#warning.textContent = shown.map((w) => w.message).join(" ");
    this.#warning.dataset.code = shown.map((w) => w.code).join(" ");
  }

  #showNotice(text: string | undefined): void {
    this.#notice.hidden = text === undefined;
    this.#notice.textContent = text ?? "";
  }
}

new Dashboard().start();
