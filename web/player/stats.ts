// Rolling player statistics: painted fps, received bitrate, pipe→painted latency percentiles,
// frame counters and time to first paint. All times are `performance.now()` unless noted. Both
// players use it: the WebCodecs player counts drawImage paints, the MSE player frames presented by
// the <video> (requestVideoFrameCallback).

import type { SkipReason, ViewerStatsMessage } from "../../shared/protocol.js";
import { SKIP_REASONS } from "../../shared/protocol.js";
import type { Millis } from "../../shared/units.js";
import type { PlayerStatsSnapshot } from "./api.js";

export type { PlayerStatsSnapshot } from "./api.js";

const LATENCY_SAMPLES = 300;
const RATE_WINDOW_MS = 2000;

/** A fixed-size ring of numbers. */
class Ring {
  readonly #values: Float64Array;
  #next = 0;
  #size = 0;
  constructor(capacity: number) {
    this.#values = new Float64Array(capacity);
  }
  push(value: number): void {
    this.#values[this.#next] = value;
    this.#next = (this.#next + 1) % this.#values.length;
    if (this.#size < this.#values.length) this.#size++;
  }
  get size(): number {
    return this.#size;
  }
  sorted(): Float64Array {
    return this.#values.slice(0, this.#size).sort();
  }
}

/** Events in time with a weight; sums the weights over the last `windowMs`. */
class RateWindow {
  #times: number[] = [];
  #weights: number[] = [];
  #head = 0;
  constructor(readonly windowMs: number) {}
  add(now: number, weight: number): void {
    this.#times.push(now);
    this.#weights.push(weight);
  }
  /** Weight per second over the window ending at `now`. */
  perSecond(now: number, since: number): number {
    this.#prune(now);
    let sum = 0;
    for (let i = this.#head; i < this.#weights.length; i++) sum += this.#weights[i] ?? 0;
    // Before the window has filled, divide by the time actually observed.
    const span = Math.min(this.windowMs, now - since);
    return span > 0 ? (sum * 1000) / span : 0;
  }
  #prune(now: number): void {
    const cutoff = now - this.windowMs;
    while (this.#head < this.#times.length && (this.#times[this.#head] ?? Infinity) < cutoff) this.#head++;
    if (this.#head > 256 && this.#head * 2 > this.#times.length) {
      this.#times = this.#times.slice(this.#head);
      this.#weights = this.#weights.slice(this.#head);
      this.#head = 0;
    }
  }
}

function percentile(sorted: Float64Array, p: number): number | null {
  if (sorted.length === 0) return null;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? null;
}

export class PlayerStats {
  readonly startedAt: number;
  #received = 0;
  #bytes = 0;
  #decoded = 0;
  #painted = 0;
  #dropped = 0;
  #replaySkipped = 0;
  #replayDisposable = 0;
  #decoderErrors = 0;
  #firstPaintMs: number | null = null;
  #joinedFromReplay: boolean | null = null;
  #firstPaintAtMs: number | null = null;
  #firstKeyframeReplay: boolean | null = null;
  #lagMs: number | null = null;
  #resyncs = 0;
  #reconnects = 0;
  #behindLiveMs: number | null = null;
  #liveSeeks = 0;
  #recordedAt: number | null = null;
  /** Server skips on connections that have ended. */
  readonly #skippedBefore = zeroCounts();
  /** On this connection: frames announced by `skipped` messages, and the server's own counters from `stats`. */
  #skippedMessages = zeroCounts();
  #skippedStats = zeroCounts();
  readonly #latency = new Ring(LATENCY_SAMPLES);
  readonly #paints = new RateWindow(RATE_WINDOW_MS);
  readonly #bits = new RateWindow(RATE_WINDOW_MS);

  constructor(now: number = performance.now()) {
    this.startedAt = now;
  }

  received(messageBytes: number, now: number): void {
    this.#received++;
    this.#bytes += messageBytes;
    this.#bits.add(now, messageBytes * 8);
  }

  decoded(): void {
    this.#decoded++;
  }

  dropped(count = 1): void {
    this.#dropped += count;
  }

  replaySkipped(): void {
    this.#replaySkipped++;
  }

  replayDisposable(): void {
    this.#replayDisposable++;
  }

  /** A keyframe went to the decoder; the first one tells how the player joined. */
  keyframeSubmitted(replay: boolean): void {
    this.#firstKeyframeReplay ??= replay;
  }

  decoderError(): void {
    this.#decoderErrors++;
  }

  /** A new connection begins: the server's per-connection figures start again from zero. */
  connectionStarted(): void {
    const current = this.#skippedOnConnection();
    for (const r of SKIP_REASONS) this.#skippedBefore[r] += current[r];
    this.#skippedMessages = zeroCounts();
    this.#skippedStats = zeroCounts();
    this.#lagMs = null;
  }

  reconnected(): void {
    this.#reconnects++;
  }

  resynced(): void {
    this.#resyncs++;
  }

  /** The server's figures for this viewer on the current connection. */
  serverStats(message: ViewerStatsMessage): void {
    this.#lagMs = message.lagMs;
    for (const r of SKIP_REASONS) this.#skippedStats[r] = message.skipped[r];
  }

  /** The server announced a gap of `frames` frames on the current connection. */
  serverSkipped(reason: SkipReason, frames: number): void {
    this.#skippedMessages[reason] += frames;
  }

  /** The lag is unknown (paused, disconnected) until the server's next `stats`. */
  lagUnknown(): void {
    this.#lagMs = null;
  }

  /**
   * `paintedAt` is performance.now() after the paint; `serverTime` is the frame header's, already
   * on this page's clock (Connection translates it with the estimated server clock offset).
   */
  painted(paintedAt: number, serverTime: Millis, replay: boolean, recorded = false): void {
    this.#countPaint(paintedAt, 1);
    // A recorded frame's server time is when it was recorded: no latency, but the time it shows.
    this.#recordedAt = recorded ? serverTime : null;
    if (!replay && !recorded) this.#latency.push(performance.timeOrigin + paintedAt - serverTime);
  }

  /**
   * MSE: the <video> presented `frames` new frames (requestVideoFrameCallback), the newest at
   * `presentedAt` (performance.now() clock). `serverTime` is that frame's, when known.
   */
  presented(presentedAt: number, serverTime: Millis | null, frames = 1): void {
    this.#countPaint(presentedAt, frames);
    if (serverTime !== null) this.#latency.push(performance.timeOrigin + presentedAt - serverTime);
  }

  /** MSE: the playhead's distance to the newest buffered media, ms (null: nothing buffered). */
  behindLive(ms: number | null): void {
    this.#behindLiveMs = ms;
  }

  liveSeeked(): void {
    this.#liveSeeks++;
  }

  #countPaint(at: number, frames: number): void {
    this.#painted += frames;
    this.#paints.add(at, frames);
    if (this.#firstPaintMs === null) {
      this.#firstPaintMs = at - this.startedAt;
      this.#firstPaintAtMs = at;
      this.#joinedFromReplay = this.#firstKeyframeReplay;
    }
  }

  snapshot(now: number = performance.now()): PlayerStatsSnapshot {
    const sorted = this.#latency.sorted();
    const current = this.#skippedOnConnection();
    const skipped = zeroCounts();
    for (const r of SKIP_REASONS) skipped[r] = this.#skippedBefore[r] + current[r];
    return {
      fps: this.#paints.perSecond(now, this.startedAt),
      kbps: this.#bits.perSecond(now, this.startedAt) / 1000,
      latencyP50Ms: percentile(sorted, 50),
      latencyP95Ms: percentile(sorted, 95),
      latencyP99Ms: percentile(sorted, 99),
      latencySamples: sorted.length,
      framesReceived: this.#received,
      framesDecoded: this.#decoded,
      framesPainted: this.#painted,
      framesDropped: this.#dropped,
      framesReplaySkipped: this.#replaySkipped,
      framesReplayDisposable: this.#replayDisposable,
      decoderErrors: this.#decoderErrors,
      bytesReceived: this.#bytes,
      firstPaintMs: this.#firstPaintMs,
      firstPaintAtMs: this.#firstPaintAtMs,
      joinedFromReplay: this.#joinedFromReplay,
      lagMs: this.#lagMs,
      framesSkippedByServer: SKIP_REASONS.reduce((sum, r) => sum + skipped[r], 0),
      skippedByServer: skipped,
      resyncs: this.#resyncs,
      reconnects: this.#reconnects,
      behindLiveMs: this.#behindLiveMs,
      liveSeeks: this.#liveSeeks,
      recordedAt: this.#recordedAt,
    };
  }

  /**
   * Skips on the current connection: the `skipped` messages and the server's `stats` counters each
   * see them, at different moments (a gap is announced when it ends; counters grow while it lasts).
   */
  #skippedOnConnection(): Record<SkipReason, number> {
    const out = zeroCounts();
    for (const r of SKIP_REASONS) out[r] = Math.max(this.#skippedMessages[r], this.#skippedStats[r]);
    return out;
  }
}

function zeroCounts(): Record<SkipReason, number> {
  return Object.fromEntries(SKIP_REASONS.map((r) => [r, 0])) as Record<SkipReason, number>;
}
