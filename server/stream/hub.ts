// Fan-out of one stream to its viewers: sequence numbers, the GOP cache, join replay, and the rule
// that a viewer never gets a delta frame whose reference it was not sent.

import {
  CloseCode,
  FrameFlag,
  nextSeq,
  PROTOCOL_VERSION,
  type ClientMessage,
  type HelloMessage,
  type StateMessage,
  type StreamState,
} from "../../shared/protocol.js";
import { wallClockMs, type Millis } from "../../shared/units.js";
import type { EncodedFrame } from "../source/frames.js";
import { FrameMessage } from "./frame-message.js";
import { GopCache, type GopCacheLimits } from "./gop-cache.js";
import { RateMeter } from "./rate-meter.js";

/** What the hub needs of a socket; `ws`'s WebSocket has it. */
export interface ViewerSocket {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: Uint8Array | string): void;
  close(code?: number, reason?: string): void;
}

const OPEN = 1;

export interface VideoInfo {
  readonly width: number;
  readonly height: number;
  readonly framerate: number;
}

export type SkipReason = "buffer-full" | "awaiting-keyframe";

export class Viewer {
  /** Nothing but a keyframe may be sent next: the viewer missed a frame or has no reference yet. */
  needsKeyframe = true;
  /** The next frame sent carries the discontinuity flag. */
  gapPending = false;
  framesSent = 0;
  bytesSent = 0;
  readonly skipped: Record<SkipReason, number> = { "buffer-full": 0, "awaiting-keyframe": 0 };
  lastAckSeq: number | null = null;
  lastAckAt: Millis | null = null;

  constructor(
    readonly id: number,
    readonly socket: ViewerSocket,
  ) {}
}

export interface HubOptions {
  /** Past this many bytes queued on a socket, frames are skipped for that viewer until a keyframe. */
  readonly maxBufferedBytes?: number;
  readonly gopLimits?: GopCacheLimits;
}

export const DEFAULT_MAX_BUFFERED_BYTES = 2 * 1024 * 1024;

export class StreamHub {
  private readonly viewers = new Set<Viewer>();
  private readonly gop: GopCache;
  private readonly maxBuffered: number;
  private readonly rate = new RateMeter(2000);
  private seq = 0xffffffff; // so the first frame is 0
  private nextViewerId = 1;
  private video: VideoInfo;
  private stateMessage: StateMessage = { type: "state", state: "starting" };
  framesIn = 0;
  bytesIn = 0;
  private closed = false;

  constructor(
    readonly name: string,
    initialVideo: VideoInfo,
    options: HubOptions = {},
  ) {
    this.video = initialVideo;
    this.gop = options.gopLimits ? new GopCache(options.gopLimits) : new GopCache();
    this.maxBuffered = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
  }

  get state(): StreamState {
    return this.stateMessage.state;
  }

  get stateReason(): string | undefined {
    return this.stateMessage.reason;
  }

  get videoInfo(): VideoInfo {
    return this.video;
  }

  get viewerCount(): number {
    return this.viewers.size;
  }

  get gopFrames(): number {
    return this.gop.length;
  }

  /** Frames per second and kbit/s over the last two seconds. */
  rates(now: Millis = wallClockMs()): { fps: number; kbps: number } {
    return this.rate.rates(now);
  }

  /** Adds a viewer: hello, the stream state, then the cached GOP flagged replay. */
  addViewer(socket: ViewerSocket): Viewer {
    const viewer = new Viewer(this.nextViewerId++, socket);
    if (this.closed) {
      socket.close(CloseCode.GOING_AWAY, "server shutting down");
      return viewer;
    }
    this.viewers.add(viewer);
    this.sendText(viewer, this.hello());
    this.sendText(viewer, this.stateMessage);
    const replay = this.gop.snapshot();
    for (const message of replay) this.send(viewer, message.withFlags(FrameFlag.REPLAY), message);
    if (replay.length > 0) viewer.needsKeyframe = false;
    return viewer;
  }

  removeViewer(viewer: Viewer): void {
    this.viewers.delete(viewer);
  }

  viewerList(): readonly Viewer[] {
    return [...this.viewers];
  }

  onClientMessage(viewer: Viewer, message: ClientMessage): void {
    switch (message.type) {
      case "ack":
        viewer.lastAckSeq = message.seq;
        viewer.lastAckAt = wallClockMs();
        break;
    }
  }

  /** New caps from the pipeline. A changed size or rate re-announces hello and restarts at a keyframe. */
  setVideoInfo(info: VideoInfo): void {
    const v = this.video;
    if (v.width === info.width && v.height === info.height && v.framerate === info.framerate) return;
    this.video = info;
    this.gop.clear();
    const hello = this.hello();
    for (const viewer of this.viewers) {
      viewer.needsKeyframe = true;
      this.sendText(viewer, hello);
    }
  }

  setState(state: StreamState, reason?: string): void {
    if (state === this.stateMessage.state && reason === this.stateMessage.reason) return;
    this.stateMessage = reason === undefined ? { type: "state", state } : { type: "state", state, reason };
    if (state !== "live") this.gop.clear();
    for (const viewer of this.viewers) {
      if (state !== "live") viewer.needsKeyframe = true;
      this.sendText(viewer, this.stateMessage);
    }
  }

  /** Encodes a frame once, caches it and sends it to every viewer that may have it. */
  publish(frame: EncodedFrame): FrameMessage {
    this.seq = nextSeq(this.seq);
    let flags = 0;
    if (frame.key) flags |= FrameFlag.KEYFRAME;
    if (frame.discont) flags |= FrameFlag.DISCONTINUITY;
    const message = FrameMessage.encode({ flags, seq: this.seq, pts: frame.pts, serverTime: frame.receivedAt }, frame.data);
    this.framesIn++;
    this.bytesIn += frame.data.byteLength;
    this.rate.add(frame.receivedAt, frame.data.byteLength);
    this.gop.push(message);
    for (const viewer of this.viewers) this.deliver(viewer, message);
    return message;
  }

  /** Closes every viewer socket. Later viewers are refused. Safe to call twice. */
  close(code: number = CloseCode.GOING_AWAY, reason = "server shutting down"): void {
    if (this.closed) return;
    this.closed = true;
    for (const viewer of this.viewers) viewer.socket.close(code, reason);
    this.viewers.clear();
    this.gop.clear();
  }

  private deliver(viewer: Viewer, message: FrameMessage): void {
    if (viewer.socket.readyState !== OPEN) return;
    if (viewer.needsKeyframe && !message.key) {
      viewer.skipped["awaiting-keyframe"]++;
      return;
    }
    if (viewer.socket.bufferedAmount > this.maxBuffered) {
      // The socket is backed up: skip until it drains, and restart it at a keyframe.
      viewer.skipped["buffer-full"]++;
      viewer.needsKeyframe = true;
      viewer.gapPending = true;
      return;
    }
    const bytes = viewer.gapPending ? message.withFlags(FrameFlag.DISCONTINUITY) : message.bytes;
    viewer.gapPending = false;
    viewer.needsKeyframe = false;
    this.send(viewer, bytes, message);
  }

  private send(viewer: Viewer, bytes: Uint8Array, message: FrameMessage): void {
    viewer.socket.send(bytes);
    viewer.framesSent++;
    viewer.bytesSent += message.byteLength;
  }

  private sendText(viewer: Viewer, message: HelloMessage | StateMessage): void {
    if (viewer.socket.readyState === OPEN) viewer.socket.send(JSON.stringify(message));
  }

  private hello(): HelloMessage {
    return {
      type: "hello",
      protocol: PROTOCOL_VERSION,
      stream: this.name,
      codec: "vp8",
      width: this.video.width,
      height: this.video.height,
      framerate: this.video.framerate,
      serverTime: wallClockMs(),
    };
  }
}
