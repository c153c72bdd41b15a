// The MSE player's live-edge controller: where the playhead of a <video> fed by MSE should be.
// Chromium plays ~0.1 s behind the newest media at best and never catches up by itself, so:
// - at join (once the join burst, the server's current GOP, is appended) seek near the newest media;
// - behind by more than a few hundred ms play faster (playbackRate up to 1.5), more than 1.5 s seek;
// - before the first buffered range (a late first timecode) or at a gap, seek to the next media;
// - a seek still pending after SEEK_STUCK_MS while newer media sits in a later range is redone into
//   the newest range: Chromium was seen never to finish a seek 0.1 s before the end of a range
//   that ends at a hole (holes after the join burst are common under load);
// - a playhead that does not move (or a seek that does not finish within STALL_MS) while media
//   keeps arriving is a stall: the owner starts over.
// It decides; the owner applies (seek, rate, play) — so it runs against a plain object in tests.

/** What the controller reads of the <video>. */
export interface LiveVideo {
  readonly buffered: TimeRanges;
  readonly currentTime: number;
  readonly readyState: number;
  readonly seeking: boolean;
  readonly paused: boolean;
  readonly ended: boolean;
  readonly playbackRate: number;
}

/** Seconds behind the newest buffered media. */
export const LIVE = {
  /** Where a join or a catch-up seek lands. */
  seekTo: 0.1,
  /** Play faster above this… */
  nudgeAbove: 0.25,
  /** …until back below this. */
  nudgeUntil: 0.12,
  /** Seek instead above this. */
  seekAbove: 1.5,
  /** Playhead this close to the end of a range that has a successor: jump the gap. */
  gapEpsilon: 0.05,
} as const;
/** Media arrived but the playhead did not move for this long: start over, ms. */
export const STALL_MS = 4000;
/** A seek pending this long while a later range exists is redone into the newest range, ms. */
export const SEEK_STUCK_MS = 1000;
const HAVE_METADATA = 1;

export interface LiveEdgeInput {
  readonly now: number;
  /** Appends still queued in the sink (the join burst is still going in while > 0). */
  readonly queued: number;
  /** The page is hidden: a still playhead is not a stall there. */
  readonly hidden: boolean;
}

export interface LiveEdgeDecision {
  /** The playhead's distance to the newest buffered media, ms; null while nothing is buffered. */
  readonly behindMs: number | null;
  /** Seek here, s. */
  readonly seekTo?: number;
  /** Set playbackRate to this. */
  readonly rate?: number;
  /** Playback stalled: why. */
  readonly stalled?: string;
}

export class LiveEdge {
  readonly #liveSync: boolean;
  #joined = false;
  /**
   * Media time (s) from which presented frames count for latency: the join seek's target. Frames
   * before it are the join burst, shown at most once before the seek; their server times are old.
   */
  #liveFrom = 0;
  /** Stall watchdog: the playhead position and when it last moved; the buffered end then. */
  #lastTime: number;
  #lastMovedAt: number;
  #endWhenMoved = 0;
  /** Since when the <video> has been seeking without a break, and when this controller last re-seeked. */
  #seekingSince: number | undefined;
  #reseekedAt = -Infinity;

  constructor(video: LiveVideo, now: number, liveSync: boolean) {
    this.#liveSync = liveSync;
    this.#lastTime = video.currentTime;
    this.#lastMovedAt = now;
  }

  get liveFrom(): number {
    return this.#liveFrom;
  }

  tick(video: LiveVideo, input: LiveEdgeInput): LiveEdgeDecision {
    const buffered = video.buffered;
    if (buffered.length === 0 || video.readyState < HAVE_METADATA) {
      this.#lastMovedAt = input.now; // nothing to play yet: a still playhead is no stall
      return { behindMs: null };
    }
    const t = video.currentTime;
    const end = buffered.end(buffered.length - 1);
    const lastStart = buffered.start(buffered.length - 1);
    const behind = end - t;
    let seekTo: number | undefined;
    if (!video.seeking) this.#seekingSince = undefined;
    else this.#seekingSince ??= input.now;
    const seekingFor = this.#seekingSince === undefined ? 0 : input.now - this.#seekingSince;

    if (video.seeking) {
      // The target's range cannot grow (a later one holds the newest media): go where media arrives.
      if (input.now - Math.max(this.#seekingSince ?? input.now, this.#reseekedAt) > SEEK_STUCK_MS && lastStart > t) {
        seekTo = this.#liveSync ? Math.max(lastStart, end - LIVE.seekTo) : lastStart;
        this.#reseekedAt = input.now;
      }
    } else {
      const range = rangeAt(buffered, t);
      const nextStart = firstStartAfter(buffered, t);
      const stuckAtGap = range !== undefined && range < buffered.length - 1 && buffered.end(range) - t < LIVE.gapEpsilon;
      if (!this.#joined && this.#liveSync) {
        if (input.queued > 0) {
          // The join burst is still being appended; the playhead waits for it.
          this.#lastMovedAt = input.now;
          this.#endWhenMoved = end;
          return { behindMs: Math.max(0, behind) * 1000 };
        }
        this.#joined = true;
        this.#liveFrom = Math.max(lastStart, end - LIVE.seekTo);
        if (behind > LIVE.seekTo * 2) seekTo = this.#liveFrom;
      } else if (this.#liveSync && behind > LIVE.seekAbove) {
        seekTo = Math.max(lastStart, end - LIVE.seekTo);
      } else if ((range === undefined || stuckAtGap) && nextStart !== undefined) {
        seekTo = nextStart;
      }
    }

    let rate: number | undefined;
    if (this.#liveSync) {
      const current = video.playbackRate;
      // The distance where the playhead will be: after a seek, the landing point's.
      const behindAfter = seekTo === undefined ? behind : end - seekTo;
      const want =
        behindAfter > 0.8 ? 1.5 : behindAfter > 0.5 ? 1.25 : behindAfter > LIVE.nudgeAbove ? 1.1 : current > 1 && behindAfter > LIVE.nudgeUntil ? current : 1;
      if (want !== current) rate = want;
    }

    let stalled: string | undefined;
    // A seek counts as progress, but not one that has not finished within STALL_MS.
    const seekUnderWay = video.seeking && seekingFor <= STALL_MS;
    if ((t !== this.#lastTime && !video.seeking) || seekUnderWay || input.hidden) {
      this.#lastTime = t;
      this.#lastMovedAt = input.now;
      this.#endWhenMoved = end;
    } else if (input.now - this.#lastMovedAt > STALL_MS && end - this.#endWhenMoved > STALL_MS / 2000) {
      stalled = `playback stalled at ${t.toFixed(2)} s while media arrived up to ${end.toFixed(2)} s`;
    }
    return {
      behindMs: Math.max(0, behind) * 1000,
      ...(seekTo === undefined ? {} : { seekTo }),
      ...(rate === undefined ? {} : { rate }),
      ...(stalled === undefined ? {} : { stalled }),
    };
  }
}

/** Index of the buffered range holding `t`, if any. */
function rangeAt(ranges: TimeRanges, t: number): number | undefined {
  for (let i = 0; i < ranges.length; i++) if (t >= ranges.start(i) - 0.001 && t <= ranges.end(i)) return i;
  return undefined;
}

/** Start of the first buffered range that begins after `t`. */
function firstStartAfter(ranges: TimeRanges, t: number): number | undefined {
  for (let i = 0; i < ranges.length; i++) if (ranges.start(i) > t) return ranges.start(i);
  return undefined;
}
