// Checks on the frames one viewer received, as the protocol promises them.

import { expect } from "vitest";
import type { VideoFrameHeader } from "../../shared/protocol.js";

// Written out again rather than imported: the tests pin the documented values.
const KEYFRAME = 0x01;
const DISCONTINUITY = 0x04;

/** After any missing sequence number, a keyframe flagged discontinuity; returns how many gaps there were. */
export function gapsEndAtKeyframes(frames: readonly { readonly header: VideoFrameHeader }[]): { gaps: number } {
  let gaps = 0;
  for (let i = 1; i < frames.length; i++) {
    const prev = frames[i - 1]!.header;
    const cur = frames[i]!.header;
    if (cur.seq !== ((prev.seq + 1) >>> 0)) {
      gaps++;
      expect(cur.flags & KEYFRAME, `frame ${cur.seq} after gap from ${prev.seq}`).toBe(KEYFRAME);
      expect(cur.flags & DISCONTINUITY, `frame ${cur.seq} after gap from ${prev.seq}`).toBe(DISCONTINUITY);
    }
  }
  return { gaps };
}
