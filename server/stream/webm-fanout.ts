// Fan-out of one stream as WebM, for MSE clients (`WS /webm/<stream>`). One cluster per GOP: each
// frame is muxed once into a SimpleBlock whose timecode is relative to its GOP's keyframe, so the
// block bytes are the same for every viewer. Only a cluster's start differs: each viewer's timeline
// begins at 0 with its first cluster (Chromium leaves a <video> stalled at 0 when the first
// buffered range starts later, and some pages never seek).
//
// The stream's timeline (ms) follows the pipeline's PTS and stays monotonic across restarts: a new
// pipeline's first frame comes one frame after the last one, so the buffered range has no hole
// (MSE does not play across holes). Slow viewers are handled at cluster granularity: at each
// cluster start a viewer whose socket has too much queued skips the whole cluster.

import {
  CloseCode,
  type HelloMessage,
  type StateMessage,
  type StreamState,
} from "../../shared/protocol.js";
import type { ViewerInfo } from "../../shared/api.js";
import { wallClockMs, type Millis } from "../../shared/units.js";
import type { EncodedFrame } from "../source/frames.js";
import { DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_SLOW_VIEWER_GRACE_MS, type VideoInfo, type ViewerSocket } from "./hub.js";
import { closeIfStuck, helloMessage, stateMessage } from "./messages.js";
import { clusterStart, initSegment, MAX_CLUSTER_SPAN_MS, simpleBlockHeader } from "./webm.js";
import { WireMessage } from "./wire-message.js";

/** What the fan-out needs of a socket: the same as the frame-protocol hub. */
export type WebmSocket = ViewerSocket;

const OPEN = 1;

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

interface MuxedFrame {
  readonly seq: number;
  readonly key: boolean;
  /** Position on the stream's timeline, integer ms. */
  readonly t: number;
  readonly serverTime: Millis;
  /** The SimpleBlock up to the frame (timecode relative to the GOP's keyframe)… */
  readonly blockHeader: Uint8Array;
  /** …and the VP8 frame after it. */
  readonly data: Uint8Array;
  /** A delta frame's message, the same for every viewer (a keyframe's starts a viewer's cluster). */
  readonly wire: WireMessage | null;
  readonly byteLength: number;
}

export class WebmViewer {
  /** Stream time that is 0 on this viewer's timeline; set by its first cluster. */
  base: number | null = null;
  /** Inside a cluster: deltas of this GOP may be sent. */
  inCluster = false;
  framesSent = 0;
  bytesSent = 0;
  framesSkipped = 0;
  clustersSkipped = 0;
  overLimitSince: Millis | null = null;

  constructor(
    readonly id: number,
    readonly socket: WebmSocket,
    readonly meta: boolean,
    readonly remote: string,
    readonly connectedAt: Millis,
  ) {}
}

export interface WebmFanoutOptions {
  /** At a cluster start, a viewer with more than this queued skips the cluster. */
  readonly maxBufferedBytes?: number;
  /** A viewer whose queue stays above the limit this long is closed with 4408. */
  readonly slowViewerGraceMs?: number;
  /** A GOP longer than this many bytes is not cached for joiners. */
  readonly maxGopBytes?: number;
  readonly tickIntervalMs?: number;
  /** Viewer ids are shared with the frame-protocol hub so /api/streams can list both. */
  readonly nextViewerId?: () => number;
}

export class WebmFanout {
  private readonly viewers = new Set<WebmViewer>();
  /** The current GOP for joiners; null when it outgrew the limit (until the next keyframe). */
  private gop: MuxedFrame[] | null = [];
  private gopBytes = 0;
  /** Timeline position of the current cluster's keyframe; null when there is no cluster to add to. */
  private clusterKeyT: number | null = null;
  private video: VideoInfo;
  private init: WireMessage;
  private stateMessage: StateMessage = { type: "state", state: "starting" };
  /** Stream timeline: t = round(pts in ms + offset). */
  private offset = 0;
  private lastT: number | null = null;
  private discontinuityNext = false;
  private readonly maxBuffered: number;
  private readonly slowGraceMs: number;
  private readonly maxGopBytes: number;
  private readonly nextId: () => number;
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  framesSkippedTotal = 0;

  constructor(
    readonly name: string,
    video: VideoInfo,
    options: WebmFanoutOptions = {},
  ) {
    this.video = video;
    this.init = WireMessage.binary(initSegment(video));
    // The same limits as the frame-protocol hub: one rule for a viewer's queue, whatever it watches.
    this.maxBuffered = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    this.slowGraceMs = options.slowViewerGraceMs ?? DEFAULT_SLOW_VIEWER_GRACE_MS;
    this.maxGopBytes = options.maxGopBytes ?? 16 * 1024 * 1024;
    let id = 1;
    this.nextId = options.nextViewerId ?? (() => id++);
    this.timer = setInterval(() => this.tick(), options.tickIntervalMs ?? 1000);
    this.timer.unref();
  }

  get viewerCount(): number {
    return this.viewers.size;
  }

  addViewer(socket: WebmSocket, meta: boolean, remote = ""): WebmViewer {
    const viewer = new WebmViewer(this.nextId(), socket, meta, remote, wallClockMs());
    if (this.closed) {
      socket.close(CloseCode.GOING_AWAY, "server shutting down");
      return viewer;
    }
    this.viewers.add(viewer);
    if (meta) {
      this.sendText(viewer, helloMessage(this.name, this.video));
      this.sendText(viewer, this.stateMessage);
    }
    this.sendBinary(viewer, this.init);
    // The current GOP, at once, as the viewer's first cluster.
    for (const frame of this.gop ?? []) this.deliver(viewer, frame, true);
    return viewer;
  }

  removeViewer(viewer: WebmViewer): void {
    this.viewers.delete(viewer);
  }

  viewerInfos(): ViewerInfo[] {
    return [...this.viewers].map((v) => ({
      id: v.id,
      mode: "webm",
      remote: v.remote,
      connectedAt: v.connectedAt,
      lagMs: null,
      acks: false,
      readRate: 1,
      paused: false,
      framesSent: v.framesSent,
      bytesSent: v.bytesSent,
      bufferedBytes: v.socket.bufferedAmount,
      skipped: { lagging: 0, "buffer-full": v.framesSkipped },
    }));
  }

  /** New caps. Another picture size needs a new init segment: viewers reconnect for it (4409). */
  setVideoInfo(info: VideoInfo): void {
    const v = this.video;
    if (v.width === info.width && v.height === info.height && v.framerate === info.framerate) return;
    const what = `stream format changed (${v.width}x${v.height} → ${info.width}x${info.height}); reconnect`;
    this.video = info;
    this.init = WireMessage.binary(initSegment(info));
    this.endCluster();
    for (const viewer of this.viewers) viewer.socket.close(CloseCode.FORMAT_CHANGED, what);
    this.viewers.clear();
  }

  setState(state: StreamState, reason?: string, retryInMs?: number): void {
    this.stateMessage = stateMessage(state, reason, retryInMs);
    if (state !== "live") {
      // The old pipeline's GOP is over; the next cluster starts at the new pipeline's first keyframe.
      this.endCluster();
      this.discontinuityNext = true;
    }
    for (const viewer of this.viewers) {
      if (state !== "live") viewer.inCluster = false;
      if (viewer.meta) this.sendText(viewer, this.stateMessage);
    }
  }

  /** Muxes a frame once and sends it to every viewer that is inside its cluster (or starts one). */
  publish(frame: EncodedFrame, seq: number): void {
    const t = this.timelineMs(frame);
    if (frame.key) {
      this.clusterKeyT = t;
      this.clearGop();
    } else if (this.clusterKeyT === null || t - this.clusterKeyT > MAX_CLUSTER_SPAN_MS) {
      // No cluster to put it in (no keyframe yet, or the GOP outgrew a cluster): wait for a keyframe.
      this.clusterKeyT = null;
      this.gop = null;
      for (const viewer of this.viewers) viewer.inCluster = false;
      return;
    }
    const blockHeader = simpleBlockHeader(t - this.clusterKeyT, frame.key, frame.data.byteLength);
    const muxed: MuxedFrame = {
      seq,
      key: frame.key,
      t,
      serverTime: frame.receivedAt,
      blockHeader,
      data: frame.data,
      wire: frame.key ? null : WireMessage.binary(blockHeader, frame.data),
      byteLength: blockHeader.byteLength + frame.data.byteLength,
    };
    if (this.gop !== null) {
      this.gop.push(muxed);
      this.gopBytes += muxed.byteLength;
      // Too big to replay to joiners (they wait for the next keyframe); still sent live.
      if (this.gopBytes > this.maxGopBytes) this.gop = null;
    }
    for (const viewer of this.viewers) this.deliver(viewer, muxed, false);
  }

  tick(now: Millis = wallClockMs()): void {
    for (const viewer of this.viewers) {
      if (closeIfStuck(viewer, now, this.maxBuffered, this.slowGraceMs)) this.viewers.delete(viewer);
    }
  }

  /** Closes every viewer. Safe to call twice. */
  close(code: number = CloseCode.GOING_AWAY, reason = "server shutting down"): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const viewer of this.viewers) viewer.socket.close(code, reason);
    this.viewers.clear();
    this.endCluster();
  }

  private deliver(viewer: WebmViewer, frame: MuxedFrame, replay: boolean): void {
    if (viewer.socket.readyState !== OPEN) return;
    if (frame.key) {
      // Cluster granularity: a backed-up viewer skips the whole cluster, never part of one.
      if (!replay && viewer.socket.bufferedAmount > this.maxBuffered) {
        viewer.inCluster = false;
        viewer.clustersSkipped++;
        this.skip(viewer);
        return;
      }
      viewer.base ??= frame.t;
      viewer.inCluster = true;
      this.sendMeta(viewer, frame);
      // One message: this viewer's cluster start, then the keyframe's block (the frame not copied).
      const start = clusterStart(frame.t - viewer.base);
      const head = new Uint8Array(start.byteLength + frame.blockHeader.byteLength);
      head.set(start, 0);
      head.set(frame.blockHeader, start.byteLength);
      const wire = WireMessage.binary(head, frame.data);
      viewer.socket.sendWire(wire);
      this.count(viewer, wire.payloadLength);
      return;
    }
    if (!viewer.inCluster) {
      this.skip(viewer);
      return;
    }
    this.sendMeta(viewer, frame);
    viewer.socket.sendWire(frame.wire!);
    this.count(viewer, frame.byteLength);
  }

  private skip(viewer: WebmViewer): void {
    // Frames a viewer joined too late for (before its first cluster) are not skips.
    if (viewer.base === null) return;
    viewer.framesSkipped++;
    this.framesSkippedTotal++;
  }

  private count(viewer: WebmViewer, bytes: number): void {
    viewer.framesSent++;
    viewer.bytesSent += bytes;
  }

  private sendMeta(viewer: WebmViewer, frame: MuxedFrame): void {
    if (!viewer.meta || viewer.base === null) return;
    const meta: WebmFrameMeta = {
      type: "frame",
      mediaTimeMs: frame.t - viewer.base,
      serverTime: frame.serverTime,
      seq: frame.seq,
      key: frame.key,
    };
    this.sendText(viewer, meta);
  }

  private sendBinary(viewer: WebmViewer, message: WireMessage): void {
    if (viewer.socket.readyState !== OPEN) return;
    viewer.socket.sendWire(message);
    viewer.bytesSent += message.payloadLength;
  }

  private sendText(viewer: WebmViewer, message: HelloMessage | StateMessage | WebmFrameMeta): void {
    if (viewer.socket.readyState === OPEN) viewer.socket.send(JSON.stringify(message));
  }

  /** The frame's place on the stream timeline: PTS in ms, shifted to stay monotonic across restarts. */
  private timelineMs(frame: EncodedFrame): number {
    const ptsMs = frame.pts / 1000;
    const step = this.video.framerate > 0 ? 1000 / this.video.framerate : 33;
    let t = Math.round(ptsMs + this.offset);
    if (this.lastT !== null && (this.discontinuityNext || frame.discont || t <= this.lastT)) {
      // A new pipeline (PTS from 0 again) or a jump back: continue one frame after the last.
      this.offset = this.lastT + step - ptsMs;
      t = Math.max(this.lastT + 1, Math.round(ptsMs + this.offset));
    }
    this.discontinuityNext = false;
    this.lastT = t;
    return t;
  }

  private clearGop(): void {
    this.gop = [];
    this.gopBytes = 0;
  }

  /** Forgets the current cluster: the next frame any viewer gets starts a new one at a keyframe. */
  private endCluster(): void {
    this.clearGop();
    this.clusterKeyT = null;
  }

}
