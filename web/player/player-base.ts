// What every player has, wherever it runs: the state/reason/retryAt/hello it reports, the typed
// events, and close() that runs once. The player (player.ts) and the page's side of a player in a
// worker (worker-player.ts) extend it.

import { Emitter } from "../../shared/emitter.js";
import type { Listener } from "../../shared/emitter.js";
import type {
  Encoding,
  HelloMessage,
  PauseReason,
  PlaybackChange,
  PlaybackMode,
  Player,
  PlayerEvents,
  PlayerState,
  PlayerStatsSnapshot,
  PlayerThread,
} from "./api.js";

export abstract class PlayerBase implements Player {
  abstract readonly url: string;
  abstract readonly thread: PlayerThread;
  abstract readonly mode: "webcodecs" | "mse";
  abstract readonly encoding: Encoding;
  abstract readonly pausedFor: readonly PauseReason[];
  readonly #events = new Emitter<PlayerEvents>((err) => reportError(err));
  #state: PlayerState = "connecting";
  #reason: string | undefined;
  #retryAt: number | undefined;
  #hello: HelloMessage | undefined;
  #playback: PlaybackMode = "live";
  readonly #closeHooks: (() => void)[] = [];

  /** Starts `connecting`, with `reason` if given. */
  protected constructor(reason?: string) {
    this.#reason = reason;
  }

  get state(): PlayerState {
    return this.#state;
  }

  get reason(): string | undefined {
    return this.#reason;
  }

  /** See PlayerStateChange.retryAt. */
  get retryAt(): number | undefined {
    return this.#retryAt;
  }

  get hello(): HelloMessage | undefined {
    return this.#hello;
  }

  get playback(): PlaybackMode {
    return this.#playback;
  }

  abstract stats(): PlayerStatsSnapshot;
  abstract snapshot(): Promise<Blob>;
  abstract setEncoding(encoding: Encoding): void;
  abstract pause(): void;
  abstract resume(): void;
  abstract seek(at: Date | number): void;
  abstract live(): void;

  on<K extends keyof PlayerEvents>(type: K, listener: Listener<PlayerEvents[K]>): () => void {
    return this.#events.on(type, listener);
  }

  off<K extends keyof PlayerEvents>(type: K, listener: Listener<PlayerEvents[K]>): void {
    this.#events.off(type, listener);
  }

  /** Runs teardown() once, then the close hooks, then reports `closed` and drops every listener. */
  close(): void {
    if (this.#state === "closed") return;
    this.teardown();
    for (const hook of this.#closeHooks.splice(0)) hook();
    this.setState("closed", undefined, undefined);
    this.#events.removeAllListeners();
  }

  /** Runs `hook` when the player closes (e.g. to remove the element made for it). */
  whenClosed(hook: () => void): void {
    if (this.#state === "closed") hook();
    else this.#closeHooks.push(hook);
  }

  /** Stops timers and releases what the player holds; called once, by close(). */
  protected abstract teardown(): void;

  protected emit<K extends keyof PlayerEvents>(type: K, payload: PlayerEvents[K]): void {
    this.#events.emit(type, payload);
  }

  /** Emits `state` when anything changed. */
  protected setState(state: PlayerState, reason: string | undefined, retryAt: number | undefined): void {
    if (state === this.#state && reason === this.#reason && retryAt === this.#retryAt) return;
    this.#state = state;
    this.#reason = reason;
    this.#retryAt = retryAt;
    this.#events.emit("state", { state, reason, retryAt });
  }

  /** Keeps the mode and emits `playback`. */
  protected setPlayback(change: PlaybackChange): void {
    this.#playback = change.mode;
    this.#events.emit("playback", change);
  }

  /** Keeps the latest hello (the caller emits `hello` when it is ready to). */
  protected setHello(hello: HelloMessage): void {
    this.#hello = hello;
  }
}

/** A rejected snapshot while there is no picture. */
export const noPicture = (state: PlayerState): Promise<Blob> =>
  Promise.reject(new DOMException(`no picture to snapshot (${state})`, "InvalidStateError"));
