// Fragmented MP4 for MSE (`/mp4/<stream>`: H.264), one fragment per frame (fmp4.ts). The sample
// (the access unit in length-prefixed form) is made once per frame and shared by every viewer;
// the 108 bytes in front of it hold the viewer's timeline's time, made once per timeline.

import { avcConfig, fragmentHeader, initSegment, lengthPrefixed } from "./fmp4.js";
import type { FrameMessage } from "./frame-message.js";
import type { VideoInfo } from "./messages.js";
import { frameMsOf, PerTimeline, type MseMux } from "./mse-output.js";
import { sameBytes } from "./webm-output.js";
import { WireMessage } from "./wire-message.js";

export class Fmp4Mux implements MseMux {
  readonly container = "mp4";
  private video: VideoInfo;
  private frameMsValue: number;
  /** The init segment from the last keyframe's SPS/PPS (avcC); null before one. */
  private initMessage: WireMessage | null = null;
  private avcC: Uint8Array | null = null;
  private readonly samples = new WeakMap<FrameMessage, Uint8Array>();
  private readonly fragments = new PerTimeline();

  constructor(video: VideoInfo) {
    this.video = video;
    this.frameMsValue = frameMsOf(video);
  }

  get frameMs(): number {
    return this.frameMsValue;
  }

  setVideo(video: VideoInfo): void {
    this.video = video;
    this.frameMsValue = frameMsOf(video);
    if (this.avcC !== null) this.initMessage = WireMessage.binary(initSegment(video, this.avcC));
  }

  init(key: FrameMessage | null): WireMessage | null {
    if (key !== null) {
      const config = avcConfig(key.data);
      if (config === null) return null; // an IDR without SPS/PPS in band: not a place to start
      if (this.avcC === null || !sameBytes(config, this.avcC)) {
        this.avcC = config;
        this.initMessage = WireMessage.binary(initSegment(this.video, config));
      }
    }
    return this.initMessage;
  }

  media(frame: FrameMessage, mediaMs: number): WireMessage {
    let sample = this.samples.get(frame);
    if (sample === undefined) {
      sample = lengthPrefixed(frame.data);
      this.samples.set(frame, sample);
    }
    const payload = sample;
    // The frame's sequence number (+1: mfhd counts from 1) is the same on every timeline.
    return this.fragments.get(frame, mediaMs, () =>
      WireMessage.binary(fragmentHeader((frame.seq + 1) >>> 0 || 1, mediaMs, this.frameMsValue, frame.key, payload.byteLength), payload),
    );
  }
}
