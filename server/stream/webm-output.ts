// WebM for MSE (`/webm/<stream>`: VP8, VP9, AV1): one Cluster per GOP. A frame is muxed once into
// a SimpleBlock whose timecode is relative to its GOP's keyframe, so a delta frame's block is the
// same bytes for every viewer; only a cluster's start differs between timelines (mse-output.ts).

import { av1CodecConfig } from "../../shared/av1.js";
import type { CodecName } from "../../shared/codec.js";
import type { FrameMessage } from "./frame-message.js";
import type { VideoInfo } from "./messages.js";
import { frameMsOf, PerTimeline, timeMs, type MseMux } from "./mse-output.js";
import { clusterStart, initSegment, MAX_CLUSTER_SPAN_MS, simpleBlockHeader, type WebmCodec } from "./webm.js";
import { WireMessage } from "./wire-message.js";

export type WebmCodecName = Exclude<CodecName, "h264">;

// Chromium's MSE plays V_VP9 with neither CodecPrivate nor Colour (the profile and colour are in
// each keyframe's header); V_AV1 gets the av1C record as CodecPrivate, as Matroska's AV1 mapping asks.
const CODEC_IDS: Readonly<Record<WebmCodecName, WebmCodec["id"]>> = { vp8: "V_VP8", vp9: "V_VP9", av1: "V_AV1" };

export class WebmMux implements MseMux {
  readonly container = "webm";
  private video: VideoInfo;
  private frameMsValue: number;
  /** The init segment; for AV1 the one from the last keyframe's sequence header, null before one. */
  private initMessage: WireMessage | null = null;
  /** AV1: the av1C record the init segment holds. */
  private av1Config: Uint8Array | null = null;
  /** A delta frame's block, made for the first viewer that needs it; null: outside its cluster's reach. */
  private readonly blocks = new WeakMap<FrameMessage, WireMessage | null>();
  /** A keyframe's cluster start and block, per timeline. */
  private readonly clusters = new PerTimeline();

  constructor(
    video: VideoInfo,
    private readonly codec: WebmCodecName = "vp8",
  ) {
    this.video = video;
    this.frameMsValue = frameMsOf(video);
    if (codec !== "av1") this.initMessage = this.makeInit();
  }

  get frameMs(): number {
    return this.frameMsValue;
  }

  setVideo(video: VideoInfo): void {
    this.video = video;
    this.frameMsValue = frameMsOf(video);
    if (this.codec !== "av1" || this.av1Config !== null) this.initMessage = this.makeInit();
  }

  init(key: FrameMessage | null): WireMessage | null {
    if (key !== null && this.codec === "av1") {
      // Matroska's V_AV1 carries the sequence header in CodecPrivate; a new one means a new init segment.
      const config = av1CodecConfig(key.data);
      if (config === null) return null;
      if (this.av1Config === null || !sameBytes(config, this.av1Config)) {
        this.av1Config = config;
        this.initMessage = this.makeInit();
      }
    }
    return this.initMessage;
  }

  media(frame: FrameMessage, mediaMs: number): WireMessage | null {
    if (frame.key) {
      // One message: the timeline's cluster start, then the keyframe's block (the frame not copied).
      return this.clusters.get(frame, mediaMs, () => {
        const start = clusterStart(mediaMs);
        const block = simpleBlockHeader(0, true, frame.data.byteLength);
        const head = new Uint8Array(start.byteLength + block.byteLength);
        head.set(start, 0);
        head.set(block, start.byteLength);
        return WireMessage.binary(head, frame.data);
      });
    }
    let block = this.blocks.get(frame);
    if (block === undefined) {
      const relative = timeMs(frame) - Math.round(frame.gopStart / 1000);
      block = relative < 0 || relative > MAX_CLUSTER_SPAN_MS ? null : WireMessage.binary(simpleBlockHeader(relative, false, frame.data.byteLength), frame.data);
      this.blocks.set(frame, block);
    }
    return block;
  }

  private makeInit(): WireMessage {
    const codec: WebmCodec = { id: CODEC_IDS[this.codec], ...(this.av1Config !== null ? { private: this.av1Config } : {}) };
    return WireMessage.binary(initSegment(this.video, codec));
  }
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
