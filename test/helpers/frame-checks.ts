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

/**
 * The picture size a VP8 keyframe declares (RFC 6386 §9.1): after the 3-byte frame tag (bit 0 of
 * the first byte 0 = keyframe), the start code 9d 01 2a at bytes 3–5, then u16 little-endian
 * width and height whose top two bits are the scaling. null for anything else.
 */
export function vp8KeyframeSize(frame: Uint8Array): { width: number; height: number } | null {
  if (frame.byteLength < 10 || (frame[0]! & 1) !== 0 || frame[3] !== 0x9d || frame[4] !== 0x01 || frame[5] !== 0x2a) return null;
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  return { width: view.getUint16(6, true) & 0x3fff, height: view.getUint16(8, true) & 0x3fff };
}
