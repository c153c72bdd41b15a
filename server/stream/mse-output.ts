// The output of both MSE paths (`/webm/`: WebM for VP8, VP9, AV1; `/mp4/`: fragmented MP4 for
// H.264). A container's mux (webm-output.ts, fmp4-output.ts) writes the bytes and shares what it
// can between viewers; this class keeps each viewer's timeline, the same for both containers:
//
// - it begins at 0 with the viewer's first keyframe (Chromium leaves a <video> stalled at 0 when
//   the first buffered range starts later, and some pages never seek);
// - it has no holes: after frames the viewer was not sent, its next keyframe comes one frame after
//   the last frame it got. MSE does not play across a hole, and a page that never seeks would stop
//   there; without the hole the <video> waits for data and plays on.
// Underneath is the stream time (monotonic across pipeline restarts: StreamTimeline) with the
// steps over frames the encoder dropped cut to a frame and a half (GaplessTimeline). Viewers
// that joined in the same GOP and skipped nothing are on the same timeline, so a mux can share a
// frame's message between them even where it holds an absolute time (a cluster's, a moof's).

import { codecOfString } from "../../shared/codec.js";
import type { MseContainer } from "../../shared/mse.js";
import { CloseCode, nextSeq, type HelloMessage, type StateMessage } from "../../shared/protocol.js";
import type { FrameMessage } from "./frame-message.js";
import type { VideoInfo } from "./messages.js";
import type { FrameRole, ViewerOutput } from "./output.js";
import type { Viewer } from "./viewer.js";
import type { WireMessage } from "./wire-message.js";

/** The JSON text message a `?meta=1` viewer gets before each frame. */
export interface MseFrameMeta {
  readonly type: "frame";
  /** The frame's time on this viewer's timeline: what the <video> shows as currentTime × 1000. */
  readonly mediaTimeMs: number;
  /** Server wall clock when the frame's last byte was read from the pipeline. */
  readonly serverTime: number;
  readonly seq: number;
  readonly key: boolean;
}

/** What every viewer of one stream's MSE path shares: one per stream encoding and container. */
export interface MseMux {
  readonly container: MseContainer;
  /** One frame's duration, ms: where a viewer's timeline goes on after a gap. */
  readonly frameMs: number;
  /**
   * The init segment before `key` (a keyframe) or, for null, for a viewer that just joined; null
   * while it is not known (AV1 and H.264 need a keyframe's sequence header or SPS/PPS).
   */
  init(key: FrameMessage | null): WireMessage | null;
  /** The frame's message at `mediaMs` on a viewer's timeline; null when this container cannot carry it there. */
  media(frame: FrameMessage, mediaMs: number): WireMessage | null;
  setVideo(video: VideoInfo): void;
}

/** A frame's time on the gapless timeline (timeline.ts), ms: the viewers' timelines' unit on both paths. */
export const timeMs = (frame: FrameMessage): number => Math.round(frame.mediaTime / 1000);

export function frameMsOf(video: VideoInfo): number {
  return video.framerate > 0 ? Math.max(1, Math.round(1000 / video.framerate)) : 33;
}

export class MseOutput implements ViewerOutput {
  /** Gapless time (ms) that is 0 on this viewer's timeline; null before its first keyframe. */
  private shift: number | null = null;
  /** This viewer's time of the last frame it was sent, and that frame's sequence number. */
  private last: { readonly t: number; readonly seq: number } | null = null;
  /** The init segment this viewer was sent last. */
  private sentInit: WireMessage | null = null;
  /** The hello this viewer's byte stream follows. */
  private hello: HelloMessage | null = null;

  constructor(
    private readonly viewer: Viewer,
    private readonly mux: MseMux,
    /** `?meta=1`: hello, state and per-frame timing as JSON text. */
    private readonly meta: boolean,
  ) {}

  greet(hello: HelloMessage, state: StateMessage): void {
    this.hello = hello;
    if (this.meta) {
      this.viewer.sendText(hello);
      this.viewer.sendText(state);
    }
    this.sendInit(this.mux.init(null));
  }

  writeFrame(frame: FrameMessage, _role: FrameRole, probe: WireMessage | null): boolean {
    const t = timeMs(frame);
    let shift = this.shift;
    if (frame.key) {
      const init = this.mux.init(frame);
      if (init === null) return false;
      const last = this.last;
      if (shift === null || last === null) {
        shift = t;
      } else if (frame.seq !== nextSeq(last.seq) || t - shift <= last.t) {
        // Frames were not sent to this viewer: its timeline goes on one frame after the last it got.
        shift = t - (last.t + this.mux.frameMs);
      }
      const wire = this.mux.media(frame, t - shift);
      if (wire === null) return false;
      this.sendInit(init);
      this.shift = shift;
      return this.send(frame, t - shift, wire, probe);
    }
    if (shift === null) return false;
    const wire = this.mux.media(frame, t - shift);
    return wire !== null && this.send(frame, t - shift, wire, probe);
  }

  gapEnded(): void {
    // MSE needs no notice: the next keyframe continues the timeline.
  }

  state(message: StateMessage): void {
    if (this.meta) this.viewer.sendText(message);
  }

  formatChanged(hello: HelloMessage): boolean {
    const old = this.hello;
    if (old !== null && codecOfString(old.codec) === codecOfString(hello.codec) && old.width === hello.width && old.height === hello.height) {
      // Only the profile or level changed (the first keyframe replaces the provisional string a
      // viewer that joined before it was told): the same init segment serves, and the next keyframe
      // continues this viewer's timeline.
      this.hello = hello;
      if (this.meta) this.viewer.sendText(hello);
      return true;
    }
    // Another picture size or codec needs a new init segment, which MSE takes only at a fresh start.
    this.viewer.socket.close(CloseCode.FORMAT_CHANGED, `stream format changed (now ${hello.codec} ${hello.width}x${hello.height}); reconnect`);
    return false;
  }

  stats(): void {
    // MSE viewers get no stats (an MSE page would not read them).
  }

  private sendInit(init: WireMessage | null): void {
    if (init === null || init === this.sentInit) return;
    this.viewer.sendWire(init, null);
    this.sentInit = init;
  }

  private send(frame: FrameMessage, mediaTimeMs: number, wire: WireMessage, probe: WireMessage | null): boolean {
    if (this.meta) {
      const meta: MseFrameMeta = { type: "frame", mediaTimeMs, serverTime: frame.header.serverTime, seq: frame.seq, key: frame.key };
      this.viewer.sendText(meta);
    }
    this.viewer.sendWire(wire, probe);
    this.last = { t: mediaTimeMs, seq: frame.seq };
    return true;
  }
}

/** Messages per frame, one per timeline it was asked for (few: viewers share timelines by GOP). */
export class PerTimeline {
  private readonly made = new WeakMap<FrameMessage, Map<number, WireMessage>>();

  get(frame: FrameMessage, mediaMs: number, make: () => WireMessage): WireMessage {
    let byTime = this.made.get(frame);
    if (byTime === undefined) {
      byTime = new Map();
      this.made.set(frame, byTime);
    }
    let wire = byTime.get(mediaMs);
    if (wire === undefined) {
      wire = make();
      byTime.set(mediaMs, wire);
    }
    return wire;
  }
}
