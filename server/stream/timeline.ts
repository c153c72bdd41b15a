// The stream's own time: the pipeline's PTS, shifted so that it never goes back. A restarted
// pipeline counts its PTS from 0 again; the stream goes on one frame after the last frame the old
// pipeline gave, so viewers that mux, record or compute durations see one increasing timeline
// (and MSE sees no hole). Both outputs (frames on /ws/, WebM on /webm/) and recordings use it.

import type { Micros } from "../../shared/units.js";

export class StreamTimeline {
  /** Added to the pipeline's PTS. */
  private offset = 0;
  private last: number | null = null;
  private restartNext = false;

  /** The next frame comes from a new pipeline (or after a jump): continue one frame after the last. */
  markRestart(): void {
    this.restartNext = true;
  }

  /**
   * The stream time of a frame with pipeline PTS `pts`. `frameUs` is one frame's duration: where a
   * restarted stream continues. A jump forward (frames the source dropped) is kept as it is.
   */
  place(pts: Micros, frameUs: number): Micros {
    let t = pts + this.offset;
    if (this.last !== null && (this.restartNext || t <= this.last)) {
      this.offset = this.last + frameUs - pts;
      t = this.last + frameUs;
    }
    this.restartNext = false;
    this.last = t;
    return t as Micros;
  }
}

/**
 * The MSE paths' timeline: the stream time with every step longer than a frame and a half cut to
 * one. MSE containers give each frame one fixed duration (WebM's DefaultDuration, the fMP4
 * track's), so frames the encoder dropped (it does on content too hard for the bitrate) would
 * leave holes in a <video>'s buffered ranges, and MSE does not play across a hole. Shortened, the
 * <video> shows each frame it has and waits for the next. Steps up to 1.5 frames are kept, so the
 * timeline keeps the source's own pace (its jitter too), and MSE sees no discontinuity (it starts
 * one beyond twice the last frame's duration).
 */
export class GaplessTimeline {
  private last: { readonly pts: number; readonly time: number } | null = null;

  /** The gapless time of a frame at stream time `pts` (monotonic, StreamTimeline's); `frameUs`: one frame. */
  place(pts: Micros, frameUs: number): Micros {
    const time = this.last === null ? pts : this.last.time + Math.min(pts - this.last.pts, 1.5 * frameUs);
    this.last = { pts, time };
    return time as Micros;
  }
}
