// The server's clock as seen from this page, estimated over the frame-protocol socket (NTP-style).
// A client sends `{"type":"clock","t":T0}`; the server answers with its time S; the reply arrives at
// T1. Taking S to be the midpoint of the round trip gives offset = S − (T0 + T1) / 2, wrong by at
// most half the round trip (the uncertainty); an offset within its own uncertainty of 0 is taken as 0. Queueing (a keyframe ahead of the reply, a busy main
// thread) only lengthens a round trip, so the sample with the shortest round trip among recent ones
// is the best: that is the estimate. Samples age out so that clock drift is followed.
//
// Local times here are wall-clock ms on the same scale as the player's latency figures:
// `performance.timeOrigin + performance.now()` (monotonic within the page, unlike Date.now()).
//
// The offset belongs to the server, not to one socket: every connection to the same host feeds
// one shared estimator (`serverClock(url)`), so a dashboard with many tiles has one, better, figure.

import type { ClockMessage, ClockReplyMessage } from "../../shared/protocol.js";
import type { Millis } from "../../shared/units.js";

export interface ClockEstimate {
  /** Server clock − this page's clock, ms. Add it to a local time to get the server's. */
  readonly offsetMs: number;
  /** Half the round trip of the sample used: the offset is right to within this, ms. */
  readonly uncertaintyMs: number;
  /** Round trip of the sample used, ms. */
  readonly rttMs: number;
  /** Samples currently considered. */
  readonly samples: number;
  /** Local wall-clock ms when the sample used was taken. */
  readonly sampledAt: number;
}

interface Sample {
  readonly offsetMs: number;
  readonly rttMs: number;
  /** Local wall-clock ms at the reply. */
  readonly at: number;
}

export interface ServerClockOptions {
  /** Samples kept (the newest). Default 12: with a probe every 10 s, about two minutes. */
  readonly keep?: number;
  /** Samples older than this are dropped, ms. Default 120 000. */
  readonly maxAgeMs?: number;
}

/** Wall-clock ms on the page's monotonic clock (the scale the player's latency figures use). */
export const localWallClock = (): number => performance.timeOrigin + performance.now();

export class ServerClock {
  readonly #keep: number;
  readonly #maxAgeMs: number;
  #samples: Sample[] = [];
  #best: Sample | undefined;

  constructor(options: ServerClockOptions = {}) {
    this.#keep = Math.max(1, options.keep ?? 12);
    this.#maxAgeMs = options.maxAgeMs ?? 120_000;
  }

  /**
   * One round trip: sent at local `t0`, answered at server time `serverTime`, reply read at local
   * `t1` (all ms). Returns false, and ignores it, when the times are not plausible.
   */
  addSample(t0: number, serverTime: number, t1: number): boolean {
    if (!Number.isFinite(t0) || !Number.isFinite(t1) || !Number.isFinite(serverTime)) return false;
    const rttMs = t1 - t0;
    if (rttMs < 0) return false;
    const midpoint = serverTime - (t0 + t1) / 2;
    // The true offset lies within ± rtt/2 of the midpoint. When 0 lies there too the clocks agree as
    // far as this sample can tell (one machine, or clocks synchronised by NTP): use 0, so a lopsided
    // round trip does not shift every latency figure by up to half of it (down to below zero).
    const offsetMs = Math.abs(midpoint) <= rttMs / 2 ? 0 : midpoint;
    this.#samples.push({ offsetMs, rttMs, at: t1 });
    if (this.#samples.length > this.#keep) this.#samples.splice(0, this.#samples.length - this.#keep);
    this.#choose(t1);
    return true;
  }

  /** The current estimate, or undefined before the first reply (or after every sample aged out). */
  estimate(now: number = localWallClock()): ClockEstimate | undefined {
    if (this.#best !== undefined && now - this.#best.at > this.#maxAgeMs) this.#choose(now);
    const best = this.#best;
    if (best === undefined) return undefined;
    return {
      offsetMs: best.offsetMs,
      uncertaintyMs: best.rttMs / 2,
      rttMs: best.rttMs,
      samples: this.#samples.length,
      sampledAt: best.at,
    };
  }

  /**
   * A server wall-clock time on this page's clock: `serverTime − offset`. Unchanged while no
   * estimate exists (the clocks are then assumed to agree, as on one machine).
   */
  toLocal(serverTime: Millis): Millis {
    const offset = this.#best?.offsetMs;
    return offset === undefined ? serverTime : ((serverTime - offset) as Millis);
  }

  #choose(now: number): void {
    this.#samples = this.#samples.filter((s) => now - s.at <= this.#maxAgeMs);
    let best: Sample | undefined;
    for (const s of this.#samples) if (best === undefined || s.rttMs <= best.rttMs) best = s; // ties: the newer
    this.#best = best;
  }
}

const clocks = new Map<string, ServerClock>();

/**
 * The shared estimator of the server a socket URL points at (by host and port). URLs that do not
 * parse get their own, unshared one.
 */
export function serverClock(url: string): ServerClock {
  let key: string;
  try {
    key = new URL(url).host;
  } catch {
    return new ServerClock();
  }
  let clock = clocks.get(key);
  if (clock === undefined) clocks.set(key, (clock = new ServerClock()));
  return clock;
}

export interface ClockProbeOptions {
  /** Probes soon after the socket opens. Default 5. */
  readonly burst?: number;
  /** Between the burst's probes, ms. Default 100. */
  readonly burstIntervalMs?: number;
  /** Then one probe every this many ms. Default 10 000. */
  readonly intervalMs?: number;
}

/**
 * Sends `clock` messages on one socket and feeds the replies to a ServerClock: a short burst when
 * the socket opens, then one now and then. Only replies that echo a `t` it sent count.
 */
export class ClockProbe {
  readonly clock: ServerClock;
  readonly #send: (message: ClockMessage) => boolean;
  readonly #options: Required<ClockProbeOptions>;
  /** `t` values sent and not yet answered (performance.now() ms). */
  readonly #pending = new Set<number>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #sent = 0;
  #stopped = false;

  constructor(clock: ServerClock, send: (message: ClockMessage) => boolean, options: ClockProbeOptions = {}) {
    this.clock = clock;
    this.#send = send;
    this.#options = {
      burst: options.burst ?? 5,
      burstIntervalMs: options.burstIntervalMs ?? 100,
      intervalMs: options.intervalMs ?? 10_000,
    };
  }

  /**
   * The socket is open: start probing, one burst interval from now. Not at once: a server sends
   * hello and the replayed GOP as a socket opens, and a reply queued behind them would make the
   * only sample (so, for a moment, the estimate) one with a long, lopsided round trip.
   */
  start(): void {
    if (this.#stopped || this.#timer !== undefined || this.#sent > 0) return;
    this.#timer = setTimeout(this.#probe, this.#options.burstIntervalMs);
  }

  /**
   * A `clock` reply arrived; `receivedAt` is performance.now() when its message event ran.
   * Returns whether it answered one of our probes.
   */
  reply(message: ClockReplyMessage, receivedAt: number = performance.now()): boolean {
    if (!this.#pending.delete(message.t)) return false;
    return this.clock.addSample(performance.timeOrigin + message.t, message.serverTime, performance.timeOrigin + receivedAt);
  }

  /** Stops probing. Safe to call more than once. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending.clear();
  }

  readonly #probe = (): void => {
    this.#timer = undefined;
    if (this.#stopped) return;
    const t = performance.now();
    if (this.#send({ type: "clock", t })) {
      this.#sent++;
      this.#pending.add(t);
      // A reply that never comes must not pin memory: keep the newest few.
      if (this.#pending.size > 8) this.#pending.delete(this.#pending.values().next().value ?? t);
    }
    const wait = this.#sent < this.#options.burst ? this.#options.burstIntervalMs : this.#options.intervalMs;
    this.#timer = setTimeout(this.#probe, wait);
  };
}
