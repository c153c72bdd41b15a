// WebM for MSE (`/webm/<stream>`): one Cluster per GOP. A frame is muxed once into a SimpleBlock
// whose timecode is relative to its GOP's keyframe, so a delta frame's block is the same bytes for
// every viewer; only a cluster's start differs, because each viewer has a timeline of its own:
//
// - it begins at 0 with the viewer's first cluster (Chromium leaves a <video> stalled at 0 when the
//   first buffered range starts later, and some pages never seek);
// - it has no holes: after frames the viewer was not sent, its next cluster starts one frame after
//   the last frame it got. MSE does not play across a hole, and a page that never seeks would stop
//   there; without the hole the <video> waits for data and plays on.
// The stream time underneath stays monotonic across pipeline restarts (StreamTimeline).

import { CloseCode, nextSeq, type HelloMessage, type StateMessage } from "../../shared/protocol.js";
import type { FrameMessage } from "./frame-message.js";
import type { FrameRole, ViewerOutput } from "./output.js";
import type { VideoInfo } from "./messages.js";
import type { Viewer } from "./viewer.js";
import { clusterStart, initSegment, MAX_CLUSTER_SPAN_MS, simpleBlockHeader } from "./webm.js";
import { WireMessage } from "./wire-message.js";

/** The JSON text message a `?meta=1` viewer gets before each frame. */
export interface WebmFrameMeta {
  readonly type: "frame";
  /** The frame's time on this viewer's timeline: what the <video> shows as currentTime × 1000. */
  readonly mediaTimeMs: number;
  /** Server wall clock when the frame's last byte was read from the pipeline. */
  readonly serverTime: number;
  readonly seq: number;
  readonly key: boolean;
}

const timeMs = (frame: FrameMessage): number => Math.round(frame.header.pts / 1000);

/** What every WebM viewer of one stream shares: the init segment and the delta frames' blocks. */
export class WebmMux {
  private initMessage: WireMessage;
  private frameMsValue: number;
  /** A delta frame's block, made for the first viewer that needs it; null: outside its cluster's reach. */
  private readonly blocks = new WeakMap<FrameMessage, WireMessage | null>();

  constructor(video: VideoInfo) {
    this.initMessage = WireMessage.binary(initSegment(video));
    this.frameMsValue = frameMs(video);
  }

  get init(): WireMessage {
    return this.initMessage;
  }

  /** One frame's duration, ms: where a viewer's timeline goes on after a gap. */
  get frameMs(): number {
    return this.frameMsValue;
  }

  setVideo(video: VideoInfo): void {
    this.initMessage = WireMessage.binary(initSegment(video));
    this.frameMsValue = frameMs(video);
  }

  /** A delta frame's SimpleBlock (shared by every viewer), or null when its GOP outgrew a cluster. */
  delta(frame: FrameMessage): WireMessage | null {
    let block = this.blocks.get(frame);
    if (block === undefined) {
      const relative = timeMs(frame) - Math.round(frame.gopStart / 1000);
      block = relative < 0 || relative > MAX_CLUSTER_SPAN_MS ? null : WireMessage.binary(simpleBlockHeader(relative, false, frame.data.byteLength), frame.data);
      this.blocks.set(frame, block);
    }
    return block;
  }
}

function frameMs(video: VideoInfo): number {
  return video.framerate > 0 ? Math.max(1, Math.round(1000 / video.framerate)) : 33;
}

export class WebmOutput implements ViewerOutput {
  /** Stream time (ms) that is 0 on this viewer's timeline; null before its first cluster. */
  private shift: number | null = null;
  /** This viewer's time of the last frame it was sent, and that frame's sequence number. */
  private last: { readonly t: number; readonly seq: number } | null = null;

  constructor(
    private readonly viewer: Viewer,
    private readonly mux: WebmMux,
    /** `?meta=1`: hello, state and per-frame timing as JSON text. */
    private readonly meta: boolean,
  ) {}

  greet(hello: HelloMessage, state: StateMessage): void {
    if (this.meta) {
      this.viewer.sendText(hello);
      this.viewer.sendText(state);
    }
    this.viewer.sendWire(this.mux.init, null);
  }

  writeFrame(frame: FrameMessage, _role: FrameRole, probe: WireMessage | null): boolean {
    const t = timeMs(frame);
    let wire: WireMessage | null;
    if (frame.key) {
      const last = this.last;
      if (this.shift === null || last === null) {
        this.shift = t;
      } else if (frame.seq !== nextSeq(last.seq) || t - this.shift <= last.t) {
        // Frames were not sent to this viewer: its timeline goes on one frame after the last it got.
        this.shift = t - (last.t + this.mux.frameMs);
      }
      // One message: this viewer's cluster start, then the keyframe's block (the frame not copied).
      const start = clusterStart(t - this.shift);
      const block = simpleBlockHeader(0, true, frame.data.byteLength);
      const head = new Uint8Array(start.byteLength + block.byteLength);
      head.set(start, 0);
      head.set(block, start.byteLength);
      wire = WireMessage.binary(head, frame.data);
    } else {
      wire = this.shift === null ? null : this.mux.delta(frame);
    }
    if (wire === null || this.shift === null) return false;
    const mediaTimeMs = t - this.shift;
    if (this.meta) {
      const meta: WebmFrameMeta = { type: "frame", mediaTimeMs, serverTime: frame.header.serverTime, seq: frame.seq, key: frame.key };
      this.viewer.sendText(meta);
    }
    this.viewer.sendWire(wire, probe);
    this.last = { t: mediaTimeMs, seq: frame.seq };
    return true;
  }

  gapEnded(): void {
    // MSE needs no notice: the next cluster continues the timeline.
  }

  state(message: StateMessage): void {
    if (this.meta) this.viewer.sendText(message);
  }

  formatChanged(hello: HelloMessage): boolean {
    // Another picture size needs a new init segment, which MSE takes only at a fresh start.
    this.viewer.socket.close(CloseCode.FORMAT_CHANGED, `stream format changed (now ${hello.width}x${hello.height}); reconnect`);
    return false;
  }

  stats(): void {
    // WebM viewers get no stats (an MSE page would not read them).
  }
}
