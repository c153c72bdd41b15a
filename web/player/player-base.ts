// What every Player has, whatever plays the video: the state/reason/retryAt/hello it reports, the
// typed events, and close() that runs once. The WebCodecs player (player.ts), the MSE player
// (mse-player.ts) and the page's side of the worker player (worker-player.ts) extend PlayerBase and
// keep their own logic; the wrappers that hand a Player on with a few extras use forwardPlayer().

import type { HelloMessage } from "../../shared/protocol.js";
import { Emitter } from "../../shared/emitter.js";
import type { Listener } from "../../shared/emitter.js";
import type { Player, PlayerEvents, PlayerState } from "./player.js";
import type { PlayerStatsSnapshot } from "./stats.js";

export abstract class PlayerBase implements Player {
  readonly url: string;
  readonly #events = new Emitter<PlayerEvents>((err) => reportError(err));
  #state: PlayerState = "connecting";
  #reason: string | undefined;
  #retryAt: number | undefined;
  #hello: HelloMessage | undefined;

  /** Starts `connecting`, with `reason` if given. */
  protected constructor(url: string, reason?: string) {
    this.url = url;
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

  abstract stats(): PlayerStatsSnapshot;

  on<K extends keyof PlayerEvents>(type: K, listener: Listener<PlayerEvents[K]>): () => void {
    return this.#events.on(type, listener);
  }

  off<K extends keyof PlayerEvents>(type: K, listener: Listener<PlayerEvents[K]>): void {
    this.#events.off(type, listener);
  }

  /** Runs teardown() once, then reports `closed` and drops every listener. */
  close(): void {
    if (this.#state === "closed") return;
    this.teardown();
    this.setState("closed", undefined, undefined);
    this.#events.removeAllListeners();
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

  /** Keeps the latest hello (the caller emits `hello` when it is ready to). */
  protected setHello(hello: HelloMessage): void {
    this.#hello = hello;
  }
}

/**
 * An object with `player`'s surface plus `extras`. The getters stay live (they read the player on
 * every access), and `extras` may replace any member (e.g. a `close` that also removes an element).
 */
export function forwardPlayer<const E extends object>(player: Player, extras: E): Player & NoInfer<E> {
  const forwarded: Player = {
    url: player.url,
    get state() {
      return player.state;
    },
    get reason() {
      return player.reason;
    },
    get retryAt() {
      return player.retryAt;
    },
    get hello() {
      return player.hello;
    },
    stats: () => player.stats(),
    on: (type, listener) => player.on(type, listener),
    off: (type, listener) => player.off(type, listener),
    close: () => player.close(),
  };
  // Descriptors, not a spread: a getter in `extras` stays a getter.
  return Object.defineProperties(forwarded, Object.getOwnPropertyDescriptors(extras)) as Player & E;
}
