// The socket-and-server half of a player's state, kept by its transport (transport.ts): whether the
// socket is open, what the server last said about the stream, and the reconnect with backoff and
// jitter. The player adds the rest: pausing, and whether a picture is shown ("live").

import type { StateMessage, StreamState } from "../../shared/protocol.js";
import { CloseCode } from "../../shared/protocol.js";
import type { BackoffOptions } from "./backoff.js";
import { backoffDelay } from "./backoff.js";
import type { PlayerStateChange } from "./api.js";
import type { PlayerStats } from "./stats.js";

/** Close codes after which retrying soon will not help: retry at the slowest rate. */
const SLOW_RETRY_CODES: ReadonlySet<number> = new Set([CloseCode.UNKNOWN_STREAM, CloseCode.BAD_MESSAGE, CloseCode.UNSUPPORTED_DATA]);

export class ConnectionStatus {
  readonly #backoff: BackoffOptions;
  readonly #stats: PlayerStats;
  #socketOpen = false;
  /** Sockets opened so far; every one after the first is a reconnect. */
  #connections = 0;
  /** Consecutive connections that failed (each player says what success is: see succeeded()). */
  #failedAttempts = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  /** `performance.now()` when the pending reconnect fires. */
  #reconnectAt: number | undefined;
  /** What the server last said about the stream on this connection. */
  #serverState: StreamState | undefined;
  #serverReason: string | undefined;
  #serverRetryAt: number | undefined;
  /** Why the last connection ended: the reason while reconnecting. */
  lastClose: string | undefined;
  /** No new socket will be opened (reconnect is off, or the URL is malformed): why. */
  #stoppedFor: string | undefined;

  constructor(backoff: BackoffOptions, stats: PlayerStats) {
    this.#backoff = backoff;
    this.#stats = stats;
  }

  get socketOpen(): boolean {
    return this.#socketOpen;
  }

  get serverState(): StreamState | undefined {
    return this.#serverState;
  }

  get failedAttempts(): number {
    return this.#failedAttempts;
  }

  /** A new socket is being opened: what the server said on the last one no longer holds. */
  connecting(): void {
    this.#reconnectTimer = undefined;
    this.#stoppedFor = undefined;
    this.#socketOpen = false;
    this.#serverState = undefined;
    this.#serverReason = undefined;
    this.#serverRetryAt = undefined;
  }

  /** The socket opened; counted in the stats (every one after the first as a reconnect). */
  opened(): void {
    this.#socketOpen = true;
    this.#connections++;
    this.#stats.connectionStarted();
    if (this.#connections > 1) this.#stats.reconnected();
  }

  socketClosed(): void {
    this.#socketOpen = false;
  }

  /** Sets `lastClose` from a close code and reason. */
  closedWith(code: number, reason: string): string {
    this.lastClose = `connection closed: ${reason !== "" ? reason : closeCodeText(code)}`;
    return this.lastClose;
  }

  /** The server's `state` message. */
  serverSaid(message: StateMessage): void {
    this.#serverState = message.state;
    this.#serverReason = message.reason;
    this.#serverRetryAt = message.retryInMs === undefined ? undefined : performance.now() + message.retryInMs;
  }

  /** This connection works: the next failure starts the backoff afresh. */
  succeeded(): void {
    this.#failedAttempts = 0;
  }

  /**
   * Calls `connect` after the backoff delay for the failures so far (the slowest after a close
   * code in SLOW_RETRY_CODES), or after `delayMs` if given.
   */
  scheduleReconnect(connect: () => void, { closeCode, delayMs }: { closeCode?: number; delayMs?: number } = {}): void {
    this.cancelReconnect();
    const slow = closeCode !== undefined && SLOW_RETRY_CODES.has(closeCode);
    const delay = delayMs ?? backoffDelay(slow ? Infinity : this.#failedAttempts, this.#backoff);
    this.#failedAttempts++;
    this.#reconnectAt = performance.now() + delay;
    this.#reconnectTimer = setTimeout(connect, delay);
  }

  /** A reconnect is scheduled. */
  get reconnectPending(): boolean {
    return this.#reconnectTimer !== undefined;
  }

  /** No socket will be opened again: the state is `offline` with this reason. */
  stopped(reason: string): void {
    this.#stoppedFor = reason;
  }

  /** stopped() was called, and no socket has been opened since. */
  get isStopped(): boolean {
    return this.#stoppedFor !== undefined;
  }

  cancelReconnect(): void {
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
  }

  /**
   * The state derived from what the socket and the server have said. `live`: pictures are shown on
   * this connection; `waitingFor`: the reason while the stream is live and none is shown yet.
   */
  state(live: boolean, waitingFor: string): PlayerStateChange {
    if (!this.#socketOpen) {
      if (this.#stoppedFor !== undefined) return { state: "offline", reason: this.#stoppedFor, retryAt: undefined };
      return this.#reconnectTimer !== undefined
        ? { state: "reconnecting", reason: this.lastClose ?? "connection closed", retryAt: this.#reconnectAt }
        : { state: "connecting", reason: "opening connection", retryAt: undefined };
    }
    switch (this.#serverState) {
      case "offline":
        return { state: "offline", reason: this.#serverReason ?? "stream offline", retryAt: this.#serverRetryAt };
      case "restarting":
        return { state: "restarting", reason: this.#serverReason ?? "pipeline restarting", retryAt: this.#serverRetryAt };
      case "starting":
        return { state: "starting", reason: this.#serverReason ?? "pipeline starting", retryAt: this.#serverRetryAt };
      default:
        return live ? { state: "live", reason: undefined, retryAt: undefined } : { state: "connecting", reason: waitingFor, retryAt: undefined };
    }
  }
}

function closeCodeText(code: number): string {
  switch (code) {
    case 1000:
      return "closed normally (1000)";
    case 1001:
      return "server going away (1001)";
    case 1006:
      return "connection lost (1006)";
    case CloseCode.UNKNOWN_STREAM:
      return "unknown stream (4404)";
    case CloseCode.TOO_SLOW:
      return "too slow (4408)";
    case CloseCode.FORMAT_CHANGED:
      return "stream format changed (4409)";
    default:
      return `code ${code}`;
  }
}
