// The current group of pictures: the last keyframe and every frame since. A joining viewer is sent
// these so it can decode at once instead of waiting for the next keyframe.

import type { FrameMessage } from "./frame-message.js";

export interface GopCacheLimits {
  /** A GOP longer than this (e.g. a very long keyframe interval) is dropped, not truncated. */
  readonly maxFrames: number;
  readonly maxBytes: number;
}

export const DEFAULT_GOP_LIMITS: GopCacheLimits = { maxFrames: 600, maxBytes: 16 * 1024 * 1024 };

export class GopCache {
  private frames: FrameMessage[] = [];
  private bytes = 0;
  /** GOPs dropped for exceeding the limits. */
  overflows = 0;

  constructor(private readonly limits: GopCacheLimits = DEFAULT_GOP_LIMITS) {}

  push(message: FrameMessage): void {
    if (message.key) {
      this.frames = [message];
      this.bytes = message.byteLength;
    } else {
      // Delta frames are only useful after their keyframe.
      if (this.frames.length === 0) return;
      this.frames.push(message);
      this.bytes += message.byteLength;
    }
    if (this.frames.length > this.limits.maxFrames || this.bytes > this.limits.maxBytes) {
      // A partial GOP cannot be decoded without its start: drop it all until the next keyframe.
      this.clear();
      this.overflows++;
    }
  }

  /** Keyframe first, then the deltas in order; empty when there is no decodable GOP. */
  snapshot(): readonly FrameMessage[] {
    return this.frames.slice();
  }

  get length(): number {
    return this.frames.length;
  }

  get byteLength(): number {
    return this.bytes;
  }

  clear(): void {
    this.frames = [];
    this.bytes = 0;
  }
}
