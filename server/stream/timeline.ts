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
