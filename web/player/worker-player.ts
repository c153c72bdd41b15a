// The page's side of the worker path: a Player whose socket, decoding and painting run in a worker
// on the canvas's OffscreenCanvas. It mirrors the worker player's state, stats and hello from its
// relayed events, tells it what only the main thread sees (the page hidden, the canvas out of
// view), and asks the worker for snapshots. Workers are pooled: a page with many players uses at
// most a few threads.
//
// A canvas is handed over only once its worker has said it runs: a page's CSP refuses a Blob URL
// worker after `new Worker` returned, with an error event. Until then the canvas stays the page's,
// so a refused worker falls back to a main-thread player on the same canvas.

import type { Encoding, HelloMessage, PauseReason, PlayerEvents, PlayerOptions, PlayerStatsSnapshot } from "./api.js";
import { webCodecsAvailable } from "./decoder.js";
import { PlayerError } from "./errors.js";
import { resolvePlayerOptions } from "./options.js";
import { observeOffscreen } from "./offscreen.js";
import { noPicture, PlayerBase } from "./player-base.js";
import { PlayerStats } from "./stats.js";
import { encodingOf, socketUrl } from "./stream-url.js";
import type { FromWorker, ToWorker, WireError, WorkerPlayerEvent } from "./worker-messages.js";
import { PLAYER_EVENT_TYPES } from "./worker-messages.js";
import PlayerWorker from "./worker.ts?worker&inline";

interface Slot {
  readonly worker: Worker;
  players: number;
  readonly handlers: Map<number, (message: FromWorker) => void>;
  /** Resolves true when the worker's script runs, false if it fails first. */
  readonly ready: Promise<boolean>;
  isReady: boolean;
  dead: boolean;
}

/** Players per worker are balanced over at most this many workers. */
const MAX_WORKERS = Math.max(1, Math.min(4, (globalThis.navigator?.hardwareConcurrency ?? 2) - 1));

const slots: Slot[] = [];
let nextId = 1;
/** Canvases already handed to a worker: a canvas transfers once, so later players reuse its OffscreenCanvas there. */
const transferred = new WeakMap<HTMLCanvasElement, { slot: Slot; canvasId: number }>();
const released =
  typeof FinalizationRegistry === "function"
    ? new FinalizationRegistry<{ slot: Slot; canvasId: number }>(({ slot, canvasId }) => send(slot, { type: "release", canvasId }))
    : undefined;
let visibilityForwarded = false;
/** A worker failed before it ran (a CSP without blob: workers): the page gets main-thread players. */
let workersRefused = false;

/** Whether the canvas was handed to a worker already: it can only be played there from now on. */
export function inWorker(canvas: HTMLCanvasElement): boolean {
  return transferred.has(canvas);
}

/** Whether this canvas can be played in a worker here (the caller falls back to the main thread if not). */
export function workerPathAvailable(canvas: HTMLCanvasElement): boolean {
  if (transferred.has(canvas)) return !(transferred.get(canvas)?.slot.dead ?? true);
  return (
    !workersRefused &&
    typeof Worker === "function" &&
    typeof OffscreenCanvas === "function" &&
    typeof canvas.transferControlToOffscreen === "function" &&
    // VideoDecoder is exposed to dedicated workers wherever it is to windows, under the same
    // secure-context rule (a Blob URL worker inherits the page's).
    webCodecsAvailable()
  );
}

/**
 * Starts a player in a worker, or returns undefined when it cannot (no worker can be made, or the
 * canvas has a rendering context already): the caller uses the main thread. `fallback` starts a
 * main-thread player on the same canvas if the worker is refused after this returned.
 */
export function playInWorker(canvas: HTMLCanvasElement, url: string, options: PlayerOptions, fallback: () => PlayerBase): PlayerBase | undefined {
  const known = transferred.get(canvas);
  if (known !== undefined) return new WorkerPlayer(known.slot, { canvasId: known.canvasId, offscreen: undefined }, canvas, url, options, fallback);
  let slot: Slot;
  try {
    slot = pickSlot();
  } catch {
    return undefined;
  }
  if (!slot.isReady) return new WorkerPlayer(slot, canvas, canvas, url, options, fallback);
  const target = transfer(slot, canvas);
  return target === undefined ? undefined : new WorkerPlayer(slot, target, canvas, url, options, fallback);
}

interface Transferred {
  readonly canvasId: number;
  /** Set when this player hands the canvas over; undefined when the worker has it already. */
  readonly offscreen: OffscreenCanvas | undefined;
}

/** Hands `canvas` to `slot`'s worker; undefined if it cannot be (it has a rendering context). */
function transfer(slot: Slot, canvas: HTMLCanvasElement): Transferred | undefined {
  const known = transferred.get(canvas); // another player handed it over meanwhile
  if (known !== undefined) return known.slot === slot ? { canvasId: known.canvasId, offscreen: undefined } : undefined;
  let offscreen: OffscreenCanvas;
  try {
    if (canvas.style.objectFit === "") canvas.style.objectFit = "contain"; // the worker cannot reach CSS
    offscreen = canvas.transferControlToOffscreen();
  } catch {
    return undefined; // InvalidStateError: the canvas has a rendering context
  }
  const target = { slot, canvasId: nextId++ };
  transferred.set(canvas, target);
  released?.register(canvas, target);
  return { canvasId: target.canvasId, offscreen };
}

function pickSlot(): Slot {
  const live = slots.filter((s) => !s.dead);
  const idle = live.reduce<Slot | undefined>((best, s) => (best === undefined || s.players < best.players ? s : best), undefined);
  if (idle !== undefined && (idle.players === 0 || live.length >= MAX_WORKERS)) return idle;
  const worker = new PlayerWorker({ name: "canvascast" });
  let settle: (ok: boolean) => void = () => undefined;
  const ready = new Promise<boolean>((resolve) => (settle = resolve));
  const slot: Slot = { worker, players: 0, handlers: new Map(), ready, isReady: false, dead: false };
  worker.onmessage = (event: MessageEvent<FromWorker>) => {
    if (event.data.type === "ready") {
      slot.isReady = true;
      settle(true);
    }
    else slot.handlers.get(event.data.id)?.(event.data);
  };
  worker.onerror = (event: ErrorEvent) => {
    // The worker failed (refused by a CSP, its script did not load, or it threw at top level).
    event.preventDefault();
    slot.dead = true;
    // Refused before it ran: this page will refuse the next one too, so stop trying.
    if (!slot.isReady) workersRefused = true;
    settle(false);
    const detail = typeof event.message === "string" && event.message !== "" ? event.message : "refused, or its script failed";
    const error: WireError = { name: "PlayerError", code: "CC_ERR_DECODER_UNSUPPORTED", message: `player worker failed: ${detail}`, fatal: true };
    for (const [id, handler] of slot.handlers) {
      handler({ type: "event", id, event: { type: "error", payload: error } });
      handler({ type: "event", id, event: { type: "state", payload: { state: "offline", reason: error.message, retryAt: undefined } } });
    }
  };
  slots.push(slot);
  forwardVisibility();
  return slot;
}

function send(slot: Slot, message: ToWorker, transfer: Transferable[] = []): void {
  if (!slot.dead) slot.worker.postMessage(message, transfer);
}

function pageHidden(): boolean {
  return typeof document !== "undefined" && document.visibilityState === "hidden";
}

function forwardVisibility(): void {
  if (visibilityForwarded || typeof document === "undefined") return;
  visibilityForwarded = true;
  document.addEventListener("visibilitychange", () => {
    for (const slot of slots) send(slot, { type: "hidden", hidden: pageHidden() });
  });
}

function toError(wire: WireError): Error {
  if (wire.code !== undefined) return new PlayerError(wire.code, wire.message, wire.fatal);
  return new DOMException(wire.message, wire.name);
}

class WorkerPlayer extends PlayerBase {
  readonly mode = "webcodecs";
  readonly #slot: Slot;
  readonly #id = nextId++;
  readonly #baseUrl: string;
  readonly #options: PlayerOptions;
  #encoding: Encoding;
  /** seek()'s time while the recording is asked for (sent on start too); null: live. */
  #seekAt: number | null = null;
  /** Reasons the page knows of (out of view, pause()); the worker adds the page's visibility itself. */
  readonly #pausedFor = new Set<PauseReason>();
  #stopObserving: (() => void) | undefined;
  /** Until the worker's first stats: zeros. */
  #stats: PlayerStatsSnapshot = new PlayerStats().snapshot();
  #nextRequest = 0;
  readonly #snapshots = new Map<number, { resolve: (blob: Blob) => void; reject: (err: Error) => void }>();
  /** The worker was refused before the canvas was handed over: this main-thread player plays instead. */
  #fallback: PlayerBase | undefined;
  #started = false;

  /** `target` is the canvas when the worker has not said it runs yet: it is handed over once it has. */
  constructor(slot: Slot, target: Transferred | HTMLCanvasElement, canvas: HTMLCanvasElement, url: string, options: PlayerOptions, fallback: () => PlayerBase) {
    super("starting the player worker");
    this.#slot = slot;
    this.#baseUrl = url;
    this.#options = resolvePlayerOptions(options);
    this.#encoding = options.encoding ?? encodingOf(url);
    slot.players++;
    slot.handlers.set(this.#id, (message) => this.#onMessage(message));
    if (this.#options.pauseWhenOffscreen !== false) {
      this.#stopObserving = observeOffscreen(canvas, (offscreen) => this.#setPausedFor("offscreen", offscreen));
    }
    if (!(target instanceof HTMLCanvasElement)) {
      this.#start(target);
      return;
    }
    void slot.ready.then((ok) => {
      if (this.state === "closed") return;
      const transferredTarget = ok ? transfer(slot, target) : undefined;
      if (transferredTarget !== undefined) this.#start(transferredTarget);
      else this.#useMainThread(fallback);
    });
  }

  get thread(): "main" | "worker" {
    return this.#fallback === undefined ? "worker" : "main";
  }

  get url(): string {
    if (this.#fallback !== undefined) return this.#fallback.url;
    try {
      return socketUrl(this.#baseUrl, { endpoint: "ws", encoding: this.#encoding });
    } catch {
      return this.#baseUrl;
    }
  }

  get encoding(): Encoding {
    return this.#fallback?.encoding ?? this.#encoding;
  }

  get pausedFor(): readonly PauseReason[] {
    if (this.#fallback !== undefined) return this.#fallback.pausedFor;
    return this.state === "paused" && pageHidden() ? [...new Set<PauseReason>(["hidden", ...this.#pausedFor])] : [...this.#pausedFor];
  }

  override get hello(): HelloMessage | undefined {
    return this.#fallback?.hello ?? super.hello;
  }

  stats(): PlayerStatsSnapshot {
    return this.#fallback?.stats() ?? this.#stats;
  }

  snapshot(): Promise<Blob> {
    if (this.#fallback !== undefined) return this.#fallback.snapshot();
    if (this.state === "closed" || this.#slot.dead || !this.#started) return noPicture(this.state);
    const request = this.#nextRequest++;
    return new Promise((resolve, reject) => {
      this.#snapshots.set(request, { resolve, reject });
      send(this.#slot, { type: "snapshot", id: this.#id, request });
    });
  }

  setEncoding(encoding: Encoding): void {
    if (this.state === "closed") return;
    this.#encoding = encoding;
    this.#fallback?.setEncoding(encoding);
    if (this.#started) send(this.#slot, { type: "encoding", id: this.#id, encoding });
  }

  pause(): void {
    this.#setPausedFor("user", true);
  }

  seek(at: Date | number): void {
    if (this.state === "closed") return;
    const ms = typeof at === "number" ? at : at.getTime();
    if (!Number.isFinite(ms)) throw new RangeError("seek() needs a Date or a time in ms since the epoch");
    this.#seekAt = ms;
    if (this.#fallback !== undefined) this.#fallback.seek(ms);
    else if (this.#started) send(this.#slot, { type: "seek", id: this.#id, at: ms });
  }

  live(): void {
    if (this.state === "closed") return;
    this.#seekAt = null;
    if (this.#fallback !== undefined) this.#fallback.live();
    else if (this.#started) send(this.#slot, { type: "seek", id: this.#id, at: null });
  }

  resume(): void {
    this.#setPausedFor("user", false);
  }

  protected override teardown(): void {
    this.#stopObserving?.();
    this.#stopObserving = undefined;
    if (this.#started) send(this.#slot, { type: "close", id: this.#id });
    this.#detach();
    this.#fallback?.close();
    for (const pending of this.#snapshots.values()) pending.reject(new DOMException("the player was closed", "AbortError"));
    this.#snapshots.clear();
  }

  #setPausedFor(reason: PauseReason, paused: boolean): void {
    if (this.state === "closed" || paused === this.#pausedFor.has(reason)) return;
    if (paused) this.#pausedFor.add(reason);
    else this.#pausedFor.delete(reason);
    if (this.#fallback !== undefined) {
      if (reason === "user") {
        if (paused) this.#fallback.pause();
        else this.#fallback.resume();
      }
      return; // the main-thread player watches its canvas itself
    }
    if (this.#started) send(this.#slot, { type: "paused", id: this.#id, reason, paused });
  }

  #start({ canvasId, offscreen }: Transferred): void {
    this.#started = true;
    send(
      this.#slot,
      {
        type: "play",
        id: this.#id,
        canvasId,
        canvas: offscreen,
        url: this.#baseUrl,
        options: { ...this.#options, encoding: this.#encoding },
        pausedFor: [...(pageHidden() ? ["hidden" as const] : []), ...this.#pausedFor],
        timeOrigin: performance.timeOrigin,
        markPaints: (globalThis as { canvascastMarkPaints?: unknown }).canvascastMarkPaints === true,
      },
      offscreen === undefined ? [] : [offscreen],
    );
    if (this.#seekAt !== null) send(this.#slot, { type: "seek", id: this.#id, at: this.#seekAt });
  }

  #detach(): void {
    if (!this.#slot.handlers.delete(this.#id)) return;
    this.#slot.players--;
  }

  /** The worker was refused (e.g. by the page's CSP) before it got the canvas: play on this thread. */
  #useMainThread(fallback: () => PlayerBase): void {
    this.#detach();
    this.#stopObserving?.();
    this.#stopObserving = undefined;
    const player = fallback();
    this.#fallback = player;
    if (this.#encoding !== player.encoding) player.setEncoding(this.#encoding);
    if (this.#pausedFor.has("user")) player.pause();
    if (this.#seekAt !== null) player.seek(this.#seekAt);
    for (const type of PLAYER_EVENT_TYPES) player.on(type, (payload) => this.#relay({ type, payload } as RelayedEvent));
    this.setState(player.state, player.reason, player.retryAt);
  }

  #onMessage(message: FromWorker): void {
    // Before the canvas is handed over, nothing from the worker is about this player (a refused
    // worker's error included: the main-thread fallback takes over then).
    if (this.state === "closed" || !this.#started || message.type === "ready") return;
    if (message.type === "snapshot") {
      const pending = this.#snapshots.get(message.request);
      this.#snapshots.delete(message.request);
      if (message.blob !== undefined) pending?.resolve(message.blob);
      else pending?.reject(toError(message.error ?? { name: "Error", code: undefined, message: "snapshot failed", fatal: false }));
      return;
    }
    this.#relay(fromWire(message.event));
  }

  /** One event of the player that plays (in the worker, or the fallback here), as this player's. */
  #relay(event: RelayedEvent): void {
    switch (event.type) {
      case "state":
        if (event.payload.state !== "closed") this.setState(event.payload.state, event.payload.reason, event.payload.retryAt);
        break;
      case "stats":
        this.#stats = event.payload;
        this.emit("stats", event.payload);
        break;
      case "hello":
        this.setHello(event.payload);
        this.emit("hello", event.payload);
        break;
      case "error":
        this.emit("error", event.payload);
        break;
      case "skipped":
        this.emit("skipped", event.payload);
        break;
      case "playback":
        if (event.payload.mode === "live") this.#seekAt = null;
        this.setPlayback(event.payload);
        break;
      default: {
        const unknown: never = event;
        throw new Error(`unrelayed event ${JSON.stringify(unknown)}`);
      }
    }
  }
}

type RelayedEvent = { [K in keyof PlayerEvents]: { readonly type: K; readonly payload: PlayerEvents[K] } }[keyof PlayerEvents];

function fromWire(event: WorkerPlayerEvent): RelayedEvent {
  if (event.type !== "error") return event;
  const err = toError(event.payload);
  return { type: "error", payload: err instanceof PlayerError ? err : PlayerError.from(err, "CC_ERR_DECODER_UNSUPPORTED") };
}
