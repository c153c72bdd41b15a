// The flow-control policy for one viewer: which frames it is sent, measured without its help.
//
// Every WebSocket client answers a ping with a pong carrying the same payload (RFC 6455; browsers
// do it in their network stack), and TCP delivers in order, so a pong proves the viewer has read
// every byte written before its ping. The fan-out writes a ping (a *probe*) behind the frames it
// sends, a few a second, and this policy turns the pongs into two figures:
//
// - lag: how long the bytes in flight will take to be read, at least the age of the oldest
//   unanswered probe, and (once the read rate is known) the bytes not yet proven read divided by
//   the rate at which the viewer reads;
// - read rate: bytes per ms, from two pongs between which the viewer had bytes waiting all along.
//
// The rule, which docs/protocol.md spells out for client authors:
// 1. A frame is not sent when the viewer would read it more than `maxLagMs` after now (or when
//    more than `maxBufferedBytes` is queued on its socket): the viewer skips to the next keyframe.
// 2. While skipping, a keyframe is sent when everything sent before is proven read (a probe
//    always follows the last frame sent, so this needs only pongs), or when the read rate says
//    the rest and the keyframe will be read within `maxLagMs`.
// 3. After a join, resync or resume, the replayed GOP is written with a probe after each frame;
//    live frames wait until the replay is proven read, for at most `maxLagMs` (then the viewer
//    skips to the next keyframe).
// Nothing depends on the client sending anything: acks are accepted but not needed.

import type { SkipReason } from "../../shared/protocol.js";
import type { Millis } from "../../shared/units.js";

export interface FlowOptions {
  /** A frame the viewer would read later than this after now is not sent. */
  readonly maxLagMs: number;
  /** Above this many bytes queued on the socket (server memory), frames are not sent. */
  readonly maxBufferedBytes: number;
  /** Least time between two probes while the previous one is answered. */
  readonly probeIntervalMs: number;
  /** Least time between two probes while one is unanswered (the viewer has bytes in flight). */
  readonly probeIntervalBusyMs: number;
}

export const DEFAULT_MAX_LAG_MS = 500;
export const DEFAULT_MAX_BUFFERED_BYTES = 2 * 1024 * 1024;

export const DEFAULT_FLOW: FlowOptions = {
  maxLagMs: DEFAULT_MAX_LAG_MS,
  maxBufferedBytes: DEFAULT_MAX_BUFFERED_BYTES,
  probeIntervalMs: 200,
  probeIntervalBusyMs: 100,
};

/** A pong within this long of its ping, with nothing else unanswered: the viewer keeps up. */
const PROMPT_PONG_MS = 50;
/** Weight of a new read-rate sample. */
const RATE_GAIN = 0.3;

/** A probe sent and not yet answered. */
export interface Probe {
  /** The newest frame sequence number sent before it (in its payload). */
  readonly seq: number;
  /** Server wall clock when it was sent (in its payload). */
  readonly sentAt: Millis;
  /** Bytes sent to the viewer up to the probe. */
  readonly bytes: number;
}

/** Frames are being skipped; the gap ends at a keyframe. */
export interface Gap {
  readonly reason: SkipReason;
  frames: number;
  /** The viewer's lag when the gap began, ms. */
  readonly lagMs: number;
}

export type Verdict =
  /** Send it. `resumed` is the gap this keyframe ends, if it ends one (tell the viewer first). */
  | { readonly send: true; readonly resumed: Gap | null }
  /** Do not send it. `skipped`: it counts as a frame the viewer missed (false: nothing to decode it against yet). */
  | { readonly send: false; readonly skipped: Gap | null };

const SEND: Verdict = { send: true, resumed: null };
const WAIT: Verdict = { send: false, skipped: null };

/** What settleHold() decided: keep holding, or end the hold with the frames it kept back. */
export type HoldOutcome<Held> =
  | { readonly outcome: "hold" }
  /** Send them, in order. */
  | { readonly outcome: "release"; readonly held: readonly Held[] }
  /** They were counted into a lagging gap: the viewer skips to a keyframe. */
  | { readonly outcome: "drop"; readonly held: readonly Held[] };

const HOLD: HoldOutcome<never> = { outcome: "hold" };
const NOTHING_HELD: HoldOutcome<never> = { outcome: "release", held: [] };

/** `Held`: what the fan-out keeps back during a hold (its frames); the policy only counts them. */
export class ViewerFlow<Held = unknown> {
  /** Bytes of binary messages written to the viewer (its few small text messages are not counted). */
  private sent = 0;
  /**
   * Bytes proven read, and when the proof (a pong) came. Before the first pong there is no proof
   * to time a read from: the interval from the connection to the first pong includes the round
   * trip, and would measure the link's latency as a slow read rate.
   */
  private proven = 0;
  private provenAt = -Infinity as Millis;
  private readonly outstanding: Probe[] = [];
  /** Bytes written when the last probe was sent. */
  private probedBytes = 0;
  private lastProbeAt = -Infinity;
  /**
   * The estimate of what the viewer has left to read: `backlog` bytes at `backlogAt` (its last
   * proof or the last decision), plus `fresh` bytes written since, which earn no credit for
   * reading done before they were written: time the viewer spent with nothing to read is not time
   * it spent reading what came after.
   */
  private backlog = 0;
  private backlogAt: Millis;
  private fresh = 0;
  /** Bytes per ms the viewer reads when it has bytes waiting; null until measured, or after it kept up. */
  private rate: number | null = null;
  /** No reference frame yet (joined, a new hello, a restart): only a keyframe may be sent. Not a skip. */
  private needsKeyframe = true;
  private gap: Gap | null = null;
  /** Holding live frames back until the replay written at `at` (its first `bytes`) is proven read. */
  private hold: { readonly at: Millis; readonly bytes: number; readonly held: Held[] } | null = null;

  constructor(
    private readonly options: FlowOptions,
    now: Millis,
  ) {
    this.backlogAt = now;
  }

  // ---- what was written and what pongs prove

  /** `bytes` were written to the socket. */
  wrote(bytes: number): void {
    this.sent += bytes;
    this.fresh += bytes;
  }

  /** A probe may follow the next write: one per interval at most. */
  probeDue(now: Millis): boolean {
    const interval = this.outstanding.length > 0 ? this.options.probeIntervalBusyMs : this.options.probeIntervalMs;
    return now - this.lastProbeAt >= interval;
  }

  /** Bytes were written after the last probe: one must follow before the viewer can be proven drained. */
  get unprobed(): boolean {
    return this.sent !== this.probedBytes;
  }

  /** A probe naming `seq` was written now, behind everything written so far. */
  probed(seq: number, now: Millis): Probe {
    this.settle(now);
    const probe: Probe = { seq, sentAt: now, bytes: this.sent };
    this.outstanding.push(probe);
    this.probedBytes = this.sent;
    this.lastProbeAt = now;
    return probe;
  }

  /** A pong arrived. Returns false when it answers no probe of ours (ignored). */
  pong(seq: number, sentAt: number, now: Millis): boolean {
    const i = this.outstanding.findIndex((p) => p.seq === seq && p.sentAt === sentAt);
    if (i < 0) return false;
    const probe = this.outstanding[i]!;
    // TCP order: the viewer read everything before this probe, so every earlier probe too (a client
    // may answer only the newest of several pings, as RFC 6455 allows).
    this.outstanding.splice(0, i + 1);
    if (probe.sentAt <= this.provenAt && probe.bytes > this.proven && now > this.provenAt) {
      // The probe was already written at the last proof: the viewer had these bytes waiting all
      // along, so the interval measures how fast it reads.
      const sample = (probe.bytes - this.proven) / (now - this.provenAt);
      this.rate = this.rate === null ? sample : (1 - RATE_GAIN) * this.rate + RATE_GAIN * sample;
    } else if (this.outstanding.length === 0 && now - probe.sentAt <= PROMPT_PONG_MS) {
      this.rate = null; // it keeps up: the old rate would only hold it back
    }
    this.proven = Math.max(this.proven, probe.bytes);
    this.provenAt = now;
    // What is not proven read is, at most, what it has left.
    this.backlog = this.sent - this.proven;
    this.backlogAt = now;
    this.fresh = 0;
    return true;
  }

  /** Everything written is proven read. */
  get drained(): boolean {
    return this.outstanding.length === 0 && this.proven === this.sent;
  }

  /** Bytes per second the viewer was measured to read, when measured. */
  get readBytesPerSecond(): number | null {
    return this.rate === null ? null : this.rate * 1000;
  }

  /**
   * How long, from now, the viewer will take to read what it was sent: at least the age of the
   * oldest unanswered probe; with a known read rate, the unproven bytes it has yet to read.
   */
  lagMs(now: Millis): number {
    const oldest = this.outstanding[0];
    const age = oldest === undefined ? 0 : now - oldest.sentAt;
    return Math.max(age, this.drainMs(now, 0) ?? 0);
  }

  /** Time to read what is in flight plus `extra` bytes, from the read rate; null when it is not known. */
  private drainMs(now: Millis, extra: number): number | null {
    if (this.rate === null) return null;
    const left = Math.max(0, this.backlog - this.rate * Math.max(0, now - this.backlogAt)) + this.fresh;
    return (left + extra) / this.rate;
  }

  /**
   * Moves the backlog estimate to `now`: what was left at `backlogAt` less what the viewer read
   * since, plus what was written since (counted as written now: never credited with reading done
   * before it was there). Without a rate nothing is credited; a rate comes only with a pong, which
   * starts the estimate again.
   */
  private settle(now: Millis): void {
    if (now < this.backlogAt) return;
    const rate = this.rate ?? 0;
    this.backlog = Math.max(0, this.backlog - rate * (now - this.backlogAt)) + this.fresh;
    this.backlogAt = now;
    this.fresh = 0;
  }

  // ---- decisions

  /** A frame of `bytes` bytes, `key` or not, is ready for this viewer now. */
  admit(key: boolean, bytes: number, now: Millis, bufferedBytes: number): Verdict {
    this.settle(now);
    const gap = this.gap;
    if (gap !== null) {
      if (key && this.canResume(bytes, now, bufferedBytes)) {
        this.gap = null;
        this.needsKeyframe = false;
        return { send: true, resumed: gap };
      }
      gap.frames++;
      return { send: false, skipped: gap };
    }
    if (this.needsKeyframe) {
      if (!key) return WAIT;
      this.needsKeyframe = false;
      return SEND;
    }
    const reason = this.overLimit(bytes, now, bufferedBytes);
    if (reason !== null) {
      const started: Gap = { reason, frames: 1, lagMs: Math.round(this.lagMs(now) * 10) / 10 };
      this.gap = started;
      return { send: false, skipped: started };
    }
    return SEND;
  }

  private overLimit(bytes: number, now: Millis, bufferedBytes: number): SkipReason | null {
    const oldest = this.outstanding[0];
    const age = oldest === undefined ? 0 : now - oldest.sentAt;
    const projected = Math.max(age, this.drainMs(now, bytes) ?? 0);
    if (projected > this.options.maxLagMs) return "lagging";
    if (bufferedBytes > this.options.maxBufferedBytes) return "buffer-full";
    return null;
  }

  private canResume(keyBytes: number, now: Millis, bufferedBytes: number): boolean {
    if (bufferedBytes > this.options.maxBufferedBytes / 2) return false;
    if (this.drained) return true;
    const drain = this.drainMs(now, keyBytes);
    return drain !== null && drain <= this.options.maxLagMs;
  }

  /** The viewer has nothing to decode against (a new hello, a restart): wait for a keyframe, not a skip. */
  restartAtKeyframe(): void {
    this.needsKeyframe = true;
    this.gap = null;
    this.hold = null;
  }

  /** A replay (decodable from its first frame) was just written: hold live frames until it is read. */
  replayed(now: Millis): void {
    this.needsKeyframe = false;
    this.gap = null;
    this.hold = { at: now, bytes: this.sent, held: [] };
  }

  /** Waiting for a keyframe it can start from (joined, restarted) and not skipping for being slow. */
  get awaitingKeyframe(): boolean {
    return this.needsKeyframe && this.gap === null && this.hold === null;
  }

  get holding(): boolean {
    return this.hold !== null;
  }

  /** Keeps a live frame back while holding; returns false when not holding (the caller admits it instead). */
  holdBack(frame: Held): boolean {
    if (this.hold === null) return false;
    this.hold.held.push(frame);
    return true;
  }

  /**
   * While holding: "release" once the replay is proven read, "drop" once it has not been within
   * `maxLagMs` (the viewer then skips to a keyframe, the held frames counted as skipped), else "hold".
   * A hold that times out with no frame held is released: nothing was kept from the viewer, and
   * the next frame is judged like any other (skipped if the replay is still not read).
   */
  settleHold(now: Millis): HoldOutcome<Held> {
    const hold = this.hold;
    if (hold === null) return NOTHING_HELD;
    if (this.proven >= hold.bytes) {
      this.hold = null;
      return { outcome: "release", held: hold.held };
    }
    if (now - hold.at <= this.options.maxLagMs) return HOLD;
    this.hold = null;
    if (hold.held.length === 0) return NOTHING_HELD;
    this.gap = { reason: "lagging", frames: hold.held.length, lagMs: Math.round((now - hold.at) * 10) / 10 };
    return { outcome: "drop", held: hold.held };
  }

  /** The gap the viewer is in, if any (for diagnostics and tests). */
  get currentGap(): Gap | null {
    return this.gap;
  }
}
