// <canvas-cast src="ws://host:8080/ws/cam0" mode="auto" quality="auto" fit="contain" stats>: a
// player in a custom element. It draws into its own canvas (or, for MSE, a <video>) in its shadow
// root, sized to the element's box (640×360 CSS unless the page sizes it), with the state over the
// picture when not live and an optional fps/latency overlay. `quality="auto"` plays the stream's
// tile encoding while the element is displayed small and the full one when it is large, switching
// without a blank frame. Scrolled out of view it pauses (nothing is sent). Removing it from the
// page closes the socket and decoder after TEARDOWN_DELAY_MS, so moving it in the DOM does not
// reconnect.
//
// Hooks for subclasses: `createPlayer()` (another player, other options), `renderState()` and
// `renderStats()` (other overlays).

import type * as Api from "./api.js";
import type { Encoding, Player, PlayerMode, PlayerStateChange, PlayerStatsSnapshot, PlayOptions, Quality } from "./api.js";
import type { ResolvedPlayerMode } from "./play.js";
import { FallbackPlayer } from "./fallback-player.js";
import { isPlayerMode, play, playVideo, resolvePlayerMode } from "./play.js";
import { deviceWidthOf, encodingForWidth, followDisplaySize } from "./quality.js";
import { socketUrl } from "./stream-url.js";
import { formatClock } from "./recorded-time.js";

export const OBSERVED_ATTRIBUTES = ["src", "mode", "quality", "fit", "stats"] as const;
type ObservedAttribute = (typeof OBSERVED_ATTRIBUTES)[number];
const FITS = ["contain", "cover"] as const;
type Fit = (typeof FITS)[number];
const QUALITIES = ["auto", "full", "tile"] as const satisfies readonly Quality[];

/** Removed from the page for this long, the element stops its player. */
export const TEARDOWN_DELAY_MS = 1000;

const STYLE = `
:host{display:inline-block;position:relative;width:640px;height:360px;background:#000;overflow:hidden;contain:content;color:#fff;font:12px/1.4 system-ui,sans-serif}
:host([hidden]){display:none}
canvas,video{display:block;width:100%;height:100%}
.state{position:absolute;inset:0;display:flex;align-items:center;justify-content:center;text-align:center;padding:1em;background:rgba(0,0,0,.55);pointer-events:none}
.rec{position:absolute;right:6px;top:6px;padding:2px 6px;border-radius:3px;background:#b00020;font-weight:600;font-variant-numeric:tabular-nums;pointer-events:none}
.stats{position:absolute;left:6px;top:6px;padding:2px 6px;border-radius:3px;background:rgba(0,0,0,.6);font-variant-numeric:tabular-nums;pointer-events:none}
[hidden]{display:none}`;

/** Where custom elements cannot exist (a bundler's server-side render), the module still loads. */
const ElementBase: typeof HTMLElement = typeof HTMLElement === "function" ? HTMLElement : (class {} as typeof HTMLElement);

const isObserved = (name: string): name is ObservedAttribute => (OBSERVED_ATTRIBUTES as readonly string[]).includes(name);
const isFit = (value: string): value is Fit => (FITS as readonly string[]).includes(value);
const isQuality = (value: string): value is Quality => (QUALITIES as readonly string[]).includes(value);

export class CanvasCastElementImpl extends ElementBase implements Api.CanvasCastElement {
  static readonly observedAttributes: readonly string[] = OBSERVED_ATTRIBUTES;

  readonly #stage: HTMLDivElement;
  readonly #stateBox: HTMLDivElement;
  readonly #statsBox: HTMLDivElement;
  readonly #recBox: HTMLDivElement;
  #player: Player | undefined;
  #media: HTMLCanvasElement | HTMLVideoElement | undefined;
  #mode: PlayerMode = "auto";
  #quality: Quality = "auto";
  /** The encoding for the media element's displayed size, once laid out (for quality="auto"). */
  #sizeEncoding: Encoding | undefined;
  #stopFollowingSize: (() => void) | undefined;
  #fit: Fit = "contain";
  #startQueued = false;
  #teardownTimer: ReturnType<typeof setTimeout> | undefined;

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    const style = document.createElement("style");
    style.textContent = STYLE;
    this.#stage = document.createElement("div");
    this.#stage.style.cssText = "position:absolute;inset:0";
    this.#stage.part.add("stage");
    this.#stateBox = document.createElement("div");
    this.#stateBox.className = "state";
    this.#stateBox.part.add("state");
    this.#statsBox = document.createElement("div");
    this.#statsBox.className = "stats";
    this.#statsBox.part.add("stats");
    this.#statsBox.hidden = true;
    this.#recBox = document.createElement("div");
    this.#recBox.className = "rec";
    this.#recBox.part.add("rec");
    this.#recBox.hidden = true;
    root.append(style, this.#stage, this.#stateBox, this.#statsBox, this.#recBox);
    this.renderState(undefined);
  }

  // --- attributes as properties ------------------------------------------------------------

  get src(): string {
    return this.getAttribute("src") ?? "";
  }
  set src(value: string) {
    this.setAttribute("src", value);
  }

  get mode(): PlayerMode {
    return this.#mode;
  }
  set mode(value: PlayerMode) {
    this.setAttribute("mode", value);
  }

  get quality(): Quality {
    return this.#quality;
  }
  set quality(value: Quality) {
    this.setAttribute("quality", value);
  }

  get fit(): Fit {
    return this.#fit;
  }
  set fit(value: Fit) {
    this.setAttribute("fit", value);
  }

  get stats(): boolean {
    return this.hasAttribute("stats");
  }
  set stats(value: boolean) {
    this.toggleAttribute("stats", value);
  }

  /** The player now running, if any. */
  get player(): Player | undefined {
    return this.#player;
  }

  /** The current picture as a PNG at the video's size. */
  snapshot(): Promise<Blob> {
    return this.#player?.snapshot() ?? Promise.reject(new DOMException("<canvas-cast> is not playing", "InvalidStateError"));
  }

  // --- lifecycle ---------------------------------------------------------------------------

  attributeChangedCallback(name: string, oldValue: string | null, value: string | null): void {
    if (!isObserved(name) || oldValue === value) return;
    switch (name) {
      case "src":
        this.#startSoon();
        break;
      case "mode": {
        const mode = value === null ? "auto" : value;
        if (!isPlayerMode(mode)) console.warn(`<canvas-cast>: mode="${value}" is not auto, webcodecs or mse; using auto`);
        const next = isPlayerMode(mode) ? mode : "auto";
        if (next !== this.#mode) {
          this.#mode = next;
          this.#startSoon();
        }
        break;
      }
      case "quality": {
        const quality = value ?? "auto";
        if (!isQuality(quality)) console.warn(`<canvas-cast>: quality="${value}" is not auto, full or tile; using auto`);
        this.#quality = isQuality(quality) ? quality : "auto";
        this.#player?.setEncoding(this.#encoding());
        break;
      }
      case "fit": {
        const fit = value ?? "contain";
        if (!isFit(fit)) console.warn(`<canvas-cast>: fit="${value}" is not contain or cover; using contain`);
        this.#fit = isFit(fit) ? fit : "contain";
        if (this.#media !== undefined) this.#media.style.objectFit = this.#fit;
        break;
      }
      case "stats":
        this.#statsBox.hidden = value === null;
        if (this.#player !== undefined) this.renderStats(this.#player.stats(), this.#player);
        break;
      default: {
        const unhandled: never = name;
        throw new Error(`unhandled attribute ${String(unhandled)}`);
      }
    }
  }

  connectedCallback(): void {
    if (this.#teardownTimer !== undefined) {
      // Moved in the DOM: the player carries on.
      clearTimeout(this.#teardownTimer);
      this.#teardownTimer = undefined;
    }
    if (this.#player === undefined) this.#startSoon();
  }

  disconnectedCallback(): void {
    if (this.#teardownTimer !== undefined) return;
    this.#teardownTimer = setTimeout(() => {
      this.#teardownTimer = undefined;
      if (!this.isConnected) this.#stop();
    }, TEARDOWN_DELAY_MS);
  }

  // --- hooks -------------------------------------------------------------------------------

  /** Starts the player for a mode into the element the element made for it. Override for other options. */
  protected createPlayer(media: HTMLCanvasElement | HTMLVideoElement, url: string, mode: ResolvedPlayerMode, encoding: Encoding): Player {
    const options: PlayOptions = { encoding };
    return mode === "mse" && media instanceof HTMLVideoElement ? playVideo(media, url, options) : play(media as HTMLCanvasElement, url, options);
  }

  /** Shows the state over the picture when not live; `change` is undefined when there is no player. */
  protected renderState(change: PlayerStateChange | undefined): void {
    const box = this.#stateBox;
    if (change === undefined) {
      box.hidden = false;
      box.textContent = this.src === "" ? "no src" : "";
      return;
    }
    box.hidden = change.state === "live";
    if (box.hidden) return;
    let text = change.state;
    if (change.reason !== undefined) text += ` — ${change.reason}`;
    if (change.retryAt !== undefined) text += ` (retry in ${Math.max(0, Math.ceil((change.retryAt - performance.now()) / 1000))} s)`;
    box.textContent = text;
  }

  /** While the recording plays: "REC" and when the picture was recorded (this page's local time), instead of nothing. */
  protected renderRecorded(recordedAt: number | null, player: Player): void {
    const box = this.#recBox;
    box.hidden = player.playback !== "recorded";
    if (box.hidden) return;
    box.textContent = recordedAt === null ? "REC" : `REC ${formatClock(recordedAt)}`;
  }

  /** Fills the stats overlay (shown with the `stats` attribute). */
  protected renderStats(stats: PlayerStatsSnapshot, player: Player): void {
    if (this.#statsBox.hidden) return;
    const latency = stats.latencyP50Ms === null ? "–" : `${Math.round(stats.latencyP50Ms)}`;
    this.#statsBox.textContent = `${stats.fps.toFixed(0)} fps · ${latency} ms · ${Math.round(stats.kbps)} kbit/s · ${player.state}${player.thread === "worker" ? " · worker" : ""}`;
  }

  // --- the player --------------------------------------------------------------------------

  /** Coalesces attribute changes made together (src, then mode) into one start. */
  #startSoon(): void {
    if (this.#startQueued) return;
    this.#startQueued = true;
    queueMicrotask(() => {
      this.#startQueued = false;
      if (this.isConnected) this.#start();
    });
  }

  #start(): void {
    this.#stop();
    const src = this.src;
    if (src === "") {
      this.renderState(undefined);
      return;
    }
    const mode = resolvePlayerMode(this.#mode);
    const media = this.#addMedia(mode);
    let player: Player;
    try {
      player = this.createPlayer(media, socketUrl(src, { endpoint: mode === "mse" ? "webm" : "ws" }), mode, this.#encoding());
      if (this.#mode === "auto" && mode === "webcodecs") {
        // WebCodecs cannot decode the codec but MSE plays it: a <video> on the codec's path replaces the canvas.
        player = new FallbackPlayer(player, (container) => {
          this.#stopFollowingSize?.();
          this.#media?.remove();
          const video = this.#addMedia("mse");
          return this.createPlayer(video, socketUrl(src, { endpoint: container }), "mse", this.#encoding());
        });
      }
    } catch (err) {
      media.remove();
      this.#media = undefined;
      this.renderState({ state: "offline", reason: err instanceof Error ? err.message : String(err), retryAt: undefined });
      return;
    }
    this.#player = player;
    player.on("state", (change) => {
      this.renderState(change);
      this.dispatchEvent(new CustomEvent("cc-state", { detail: change }));
    });
    player.on("playback", (change) => {
      this.renderRecorded(player.stats().recordedAt, player);
      this.dispatchEvent(new CustomEvent("cc-playback", { detail: change }));
    });
    player.on("stats", (stats) => {
      this.renderStats(stats, player);
      this.renderRecorded(stats.recordedAt, player);
      // Refresh a countdown.
      if (player.retryAt !== undefined) this.renderState({ state: player.state, reason: player.reason, retryAt: player.retryAt });
    });
    player.on("error", (error) => this.dispatchEvent(new CustomEvent("cc-error", { detail: error })));
    this.renderState({ state: player.state, reason: player.reason, retryAt: player.retryAt });
    this.dispatchEvent(new CustomEvent("cc-player", { detail: player }));
  }

  /** A <canvas> or <video> for the mode, in the stage, its displayed size followed. */
  #addMedia(mode: ResolvedPlayerMode): HTMLCanvasElement | HTMLVideoElement {
    const media = document.createElement(mode === "mse" ? "video" : "canvas");
    media.style.objectFit = this.#fit;
    media.part.add(mode === "mse" ? "video" : "canvas");
    this.#stage.append(media);
    this.#media = media;
    this.#watchSize(media);
    return media;
  }

  /** The encoding for the `quality` attribute and, for `auto`, the displayed size. */
  #encoding(): Encoding {
    if (this.#quality !== "auto") return this.#quality;
    // Before the first layout: the element's box, as CSS sizes it.
    return this.#sizeEncoding ?? encodingForWidth(deviceWidthOf(this));
  }

  /** Follows the picture's displayed size, for `quality="auto"`. */
  #watchSize(media: HTMLElement): void {
    this.#stopFollowingSize = followDisplaySize(media, (encoding) => {
      this.#sizeEncoding = encoding;
      if (this.#quality === "auto") this.#player?.setEncoding(encoding);
    });
  }

  #stop(): void {
    this.#stopFollowingSize?.();
    this.#stopFollowingSize = undefined;
    this.#sizeEncoding = undefined;
    this.#player?.close();
    this.#player = undefined;
    this.#media?.remove();
    this.#media = undefined;
    this.#recBox.hidden = true;
    this.renderState(undefined);
  }
}
