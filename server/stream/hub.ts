// Fan-out of one stream to its viewers: sequence numbers, the GOP cache, join replay, and flow
// control. The rule it keeps for every viewer at every moment: after any frame a viewer was not
// sent, the next frame it receives is a keyframe.
//
// Flow control. On Linux the kernel's socket buffers autotune to megabytes, so `bufferedAmount`
// stays small while a slow viewer falls seconds behind. Viewers therefore ack the newest sequence
// they received, and the hub measures each viewer's lag in time: from the oldest frame sent and
// not yet acked to the newest frame sent (0 when everything is acked; so a gap or a pause does
// not count as lag). It also measures how fast the viewer reads (stream seconds per second): a
// viewer reading at half speed needs twice its lag to drain what is in flight, so it is skipped
// when lag / read rate passes `maxLagMs`, and resumed at a keyframe once it has acked everything
// it was sent. Viewers that never ack are governed by `bufferedAmount`, which bounds the memory
// the server holds for them.

import type { ViewerInfo } from "../../shared/api.js";
import {
  CloseCode,
  FrameFlag,
  nextSeq,
  ProtocolError,
  type ClientMessage,
  type ServerMessage,
  type SkipCounts,
  type SkippedMessage,
  type SkipReason,
  type StateMessage,
  type StreamState,
  type ViewerStatsMessage,
} from "../../shared/protocol.js";
import { wallClockMs, type Millis } from "../../shared/units.js";
import type { EncodedFrame } from "../source/frames.js";
import { FrameMessage } from "./frame-message.js";
import { FrameTimes } from "./frame-times.js";
import { GopCache, type GopCacheLimits } from "./gop-cache.js";
import { closeIfStuck, helloMessage, stateMessage } from "./messages.js";
import { RateMeter } from "./rate-meter.js";
import type { WireMessage } from "./wire-message.js";

/** What the hub needs of a socket (server/http/viewer-socket.ts adapts a `ws` WebSocket). */
export interface ViewerSocket {
  readonly readyState: number;
  readonly bufferedAmount: number;
  /** A JSON text message. */
  send(text: string): void;
  /** A binary message framed once for every socket. */
  sendWire(message: WireMessage): void;
  close(code?: number, reason?: string): void;
}

const OPEN = 1;

export interface VideoInfo {
  readonly width: number;
  readonly height: number;
  readonly framerate: number;
}

const zeroCounts = (): Record<SkipReason, number> => ({ lagging: 0, "buffer-full": 0 });

/** True when sequence number a is at or before b, in u32 wrap-around order. */
const seqAtOrBefore = (a: number, b: number): boolean => ((b - a) >>> 0) < 0x8000_0000;

interface Gap {
  readonly reason: SkipReason;
  frames: number;
  readonly lagMs: number;
}

export class Viewer {
  /** No reference frame yet (joined before any keyframe, or after a new hello / restart): only a keyframe may be sent. */
  needsKeyframe = true;
  /** Frames are being skipped; ends at a keyframe once the viewer can take it. */
  gap: Gap | null = null;
  paused = false;
  framesSent = 0;
  bytesSent = 0;
  readonly skipped: Record<SkipReason, number> = zeroCounts();
  lastSentSeq: number | null = null;
  /** Highest sequence ever sent (a resync replays older ones again): acks may not go past it. */
  newestSentSeq: number | null = null;
  /** Server time of the newest frame sent (the send time for replayed frames, which are old by design). */
  lastSentTime: Millis | null = null;
  ackedSeq: number | null = null;
  /**
   * Start of the current run of consecutive frames sent (after a join, a gap or a replay): a
   * viewer that acked everything before the run is behind by the run's unacked span only.
   */
  runStart: { readonly seq: number; readonly time: Millis } | null = null;
  /** The replayed GOP's sequence range and when it was sent: its frames count as of that moment. */
  replay: { readonly first: number; readonly last: number; readonly at: Millis } | null = null;
  /**
   * Live frames held back after a replay until the viewer acks the replay's end. A replayed GOP is
   * a burst of up to a few hundred KB: a slow viewer needs seconds to read it, and live frames
   * queued behind it would reach it seconds late. Non-null while holding.
   */
  held: FrameMessage[] | null = null;
  /** An ack inside or after the current replay has arrived (a resync replays frames acked before). */
  ackedAfterReplay = false;
  /**
   * Stream seconds the viewer reads per wall-clock second, measured from its acks while it has
   * frames outstanding (1 = keeps up). A viewer reading at half speed needs twice its lag to drain
   * what is in flight, so flow control acts on lag / rate: the lag it will have reached by then.
   */
  readRate = 1;
  rateSample: { readonly wall: Millis; readonly stream: Millis } | null = null;
  lastResyncAt = -Infinity;
  /** Since when `bufferedAmount` has been above the limit; null when below. */
  overLimitSince: Millis | null = null;

  constructor(
    readonly id: number,
    readonly socket: ViewerSocket,
    readonly remote: string,
    readonly connectedAt: Millis,
  ) {}

  /**
   * How far behind the viewer is, in ms of stream time: from the oldest frame sent that it has not
   * acked to the newest frame sent. 0 when it has acked everything; null before its first ack.
   */
  lagMs(frameTimes: FrameTimes): number | null {
    if (this.ackedSeq === null || this.lastSentTime === null || this.lastSentSeq === null) return null;
    if (this.ackedSeq === this.lastSentSeq) return 0;
    const run = this.runStart;
    let oldestUnacked: Millis | undefined;
    if (run !== null && !seqAtOrBefore(run.seq, this.ackedSeq)) {
      oldestUnacked = run.time; // everything before this run is acked
    } else {
      const next = (this.ackedSeq + 1) >>> 0;
      const r = this.replay;
      oldestUnacked =
        r !== null && seqAtOrBefore(r.first, next) && seqAtOrBefore(next, r.last) ? r.at : (frameTimes.get(next) ?? frameTimes.oldest());
    }
    return oldestUnacked === undefined ? null : Math.max(0, this.lastSentTime - oldestUnacked);
  }

  /** Has acked every frame it was sent. */
  caughtUp(): boolean {
    return this.lastSentSeq === null || this.ackedSeq === this.lastSentSeq;
  }
}

export interface HubOptions {
  /** Above this many bytes queued on a socket, frames are skipped for that viewer until a keyframe. */
  readonly maxBufferedBytes?: number;
  /** Lag (from acks) above which frames are skipped for that viewer until a keyframe. */
  readonly maxLagMs?: number;
  /** A viewer whose queue stays above `maxBufferedBytes` this long is closed with 4408. */
  readonly slowViewerGraceMs?: number;
  /** Resyncs closer together than this wait for the next live keyframe instead of replaying. */
  readonly resyncMinIntervalMs?: number;
  /** How often each viewer gets a stats message (and slow viewers are checked). */
  readonly statsIntervalMs?: number;
  readonly gopLimits?: GopCacheLimits;
  /** Called when a viewer is closed for being too slow. */
  readonly onSlowViewerClosed?: (viewer: Viewer) => void;
  /** Viewer ids; shared with the stream's WebM viewers so /api/streams lists both without clashes. */
  readonly nextViewerId?: () => number;
  /** Called with a viewer's lag (ms) at each of its acks (the metrics' lag histogram). */
  readonly onViewerLag?: (lagMs: number) => void;
}

export const DEFAULT_MAX_BUFFERED_BYTES = 2 * 1024 * 1024;
export const DEFAULT_MAX_LAG_MS = 500;
export const DEFAULT_SLOW_VIEWER_GRACE_MS = 10_000;
/** Shortest interval between two read-rate samples (acks come every 100–250 ms). */
const RATE_WINDOW_MS = 300;

export class StreamHub {
  private readonly viewers = new Set<Viewer>();
  private readonly gop: GopCache;
  private readonly frameTimes = new FrameTimes(4096);
  private readonly maxBuffered: number;
  private readonly maxLagMs: number;
  private readonly slowGraceMs: number;
  private readonly resyncMinIntervalMs: number;
  private readonly onSlowViewerClosed: ((viewer: Viewer) => void) | undefined;
  private readonly onViewerLag: ((lagMs: number) => void) | undefined;
  private readonly rate = new RateMeter(2000);
  private readonly timer: NodeJS.Timeout;
  private seq = 0xffffffff; // so the first frame is 0
  private readonly nextViewerId: () => number;
  private video: VideoInfo;
  private stateMessage: StateMessage = { type: "state", state: "starting" };
  /** The next frame published carries the discontinuity flag (pipeline restart). */
  private discontinuityNext = false;
  readonly skippedTotals: Record<SkipReason, number> = zeroCounts();
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
    this.maxLagMs = options.maxLagMs ?? DEFAULT_MAX_LAG_MS;
    this.slowGraceMs = options.slowViewerGraceMs ?? DEFAULT_SLOW_VIEWER_GRACE_MS;
    this.resyncMinIntervalMs = options.resyncMinIntervalMs ?? 1000;
    this.onSlowViewerClosed = options.onSlowViewerClosed;
    this.onViewerLag = options.onViewerLag;
    let id = 1;
    this.nextViewerId = options.nextViewerId ?? (() => id++);
    this.timer = setInterval(() => this.tick(), options.statsIntervalMs ?? 1000);
    this.timer.unref();
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

  get gopBytes(): number {
    return this.gop.byteLength;
  }

  /** Frames per second and kbit/s over the last two seconds. */
  rates(now: Millis = wallClockMs()): { fps: number; kbps: number } {
    return this.rate.rates(now);
  }

  /** Adds a viewer: hello, the stream state, then the cached GOP flagged replay. */
  addViewer(socket: ViewerSocket, remote = ""): Viewer {
    const viewer = new Viewer(this.nextViewerId(), socket, remote, wallClockMs());
    if (this.closed) {
      socket.close(CloseCode.GOING_AWAY, "server shutting down");
      return viewer;
    }
    this.viewers.add(viewer);
    this.sendText(viewer, helloMessage(this.name, this.video));
    this.sendText(viewer, this.stateMessage);
    this.replayTo(viewer, FrameFlag.REPLAY);
    return viewer;
  }

  removeViewer(viewer: Viewer): void {
    this.viewers.delete(viewer);
  }

  viewerList(): readonly Viewer[] {
    return [...this.viewers];
  }

  viewerInfos(): ViewerInfo[] {
    return this.viewerList().map((v) => ({
      id: v.id,
      mode: "ws",
      remote: v.remote,
      connectedAt: v.connectedAt,
      lagMs: roundLag(v.lagMs(this.frameTimes)),
      acks: v.ackedSeq !== null,
      readRate: Math.round(v.readRate * 100) / 100,
      paused: v.paused,
      framesSent: v.framesSent,
      bytesSent: v.bytesSent,
      bufferedBytes: v.socket.bufferedAmount,
      skipped: { ...v.skipped },
    }));
  }

  /** Applies a validated client message. Throws ProtocolError for one that makes no sense here. */
  onClientMessage(viewer: Viewer, message: ClientMessage): void {
    switch (message.type) {
      case "ack":
        this.onAck(viewer, message.seq);
        break;
      case "pause":
        viewer.paused = true;
        viewer.held = null;
        break;
      case "resume":
        if (!viewer.paused) break;
        viewer.paused = false;
        this.resync(viewer);
        break;
      case "resync":
        viewer.paused = false;
        this.resync(viewer);
        break;
      case "clock":
        this.sendText(viewer, { type: "clock", t: message.t, serverTime: wallClockMs() });
        break;
    }
  }

  /** New caps from the pipeline. A changed size or rate re-announces hello and restarts at a keyframe. */
  setVideoInfo(info: VideoInfo): void {
    const v = this.video;
    if (v.width === info.width && v.height === info.height && v.framerate === info.framerate) return;
    this.video = info;
    this.gop.clear();
    const hello = helloMessage(this.name, this.video);
    for (const viewer of this.viewers) {
      viewer.needsKeyframe = true;
      viewer.held = null; // frames of the old format must not follow the new hello
      this.sendText(viewer, hello);
    }
  }

  setState(state: StreamState, reason?: string, retryInMs?: number): void {
    const m = this.stateMessage;
    const retry = retryInMs === undefined ? undefined : Math.round(retryInMs);
    if (state === m.state && reason === m.reason && retry === m.retryInMs) return;
    this.stateMessage = stateMessage(state, reason, retry);
    if (state !== "live") {
      // The pipeline is gone: the cache belongs to it, and every viewer restarts at a keyframe.
      this.gop.clear();
      this.discontinuityNext = true;
    }
    for (const viewer of this.viewers) {
      if (state !== "live") {
        viewer.needsKeyframe = true;
        viewer.held = null; // the old pipeline's frames must not follow
      }
      this.sendText(viewer, this.stateMessage);
    }
  }

  /** Encodes a frame once, caches it and sends it to every viewer that may have it. */
  publish(frame: EncodedFrame): FrameMessage {
    this.seq = nextSeq(this.seq);
    let flags = 0;
    if (frame.key) flags |= FrameFlag.KEYFRAME;
    if (frame.discont || this.discontinuityNext) flags |= FrameFlag.DISCONTINUITY;
    this.discontinuityNext = false;
    const message = FrameMessage.encode({ flags, seq: this.seq, pts: frame.pts, serverTime: frame.receivedAt }, frame.data);
    this.framesIn++;
    this.bytesIn += frame.data.byteLength;
    this.rate.add(frame.receivedAt, frame.data.byteLength);
    this.frameTimes.record(this.seq, frame.receivedAt);
    this.gop.push(message);
    for (const viewer of this.viewers) this.deliver(viewer, message);
    return message;
  }

  /** Periodic work: stats to each viewer, and closing viewers that stay too slow. */
  tick(now: Millis = wallClockMs()): void {
    for (const viewer of this.viewers) {
      if (viewer.socket.readyState !== OPEN) continue;
      if (closeIfStuck(viewer, now, this.maxBuffered, this.slowGraceMs)) {
        this.viewers.delete(viewer);
        this.onSlowViewerClosed?.(viewer);
        continue;
      }
      if (viewer.paused) continue;
      this.settleHold(viewer, now);
      const stats: ViewerStatsMessage = {
        type: "stats",
        lagMs: roundLag(viewer.lagMs(this.frameTimes)),
        framesSent: viewer.framesSent,
        skipped: { ...viewer.skipped },
      };
      this.sendText(viewer, stats);
    }
  }

  /** Closes every viewer socket and stops the timer. Later viewers are refused. Safe to call twice. */
  close(code: number = CloseCode.GOING_AWAY, reason = "server shutting down"): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const viewer of this.viewers) viewer.socket.close(code, reason);
    this.viewers.clear();
    this.gop.clear();
  }

  get skippedCounts(): SkipCounts {
    return { ...this.skippedTotals };
  }

  private onAck(viewer: Viewer, seq: number): void {
    if (viewer.newestSentSeq === null || !seqAtOrBefore(seq, viewer.newestSentSeq)) {
      throw new ProtocolError("CC_ERR_BAD_MESSAGE", `ack for frame ${seq}, which was not sent`);
    }
    // Acks arrive in order over TCP; an older one changes nothing.
    if (viewer.ackedSeq !== null && !seqAtOrBefore(viewer.ackedSeq, seq)) return;
    viewer.ackedSeq = seq;
    this.measureReadRate(viewer, seq);
    if (this.onViewerLag !== undefined) {
      const lag = viewer.lagMs(this.frameTimes);
      if (lag !== null) this.onViewerLag(lag);
    }
    if (viewer.held !== null) {
      const r = viewer.replay;
      if (r !== null && seqAtOrBefore(r.first, seq)) viewer.ackedAfterReplay = true;
      this.settleHold(viewer, wallClockMs());
    }
  }

  private measureReadRate(viewer: Viewer, seq: number): void {
    const now = wallClockMs();
    const r = viewer.replay;
    const stream = r !== null && seqAtOrBefore(r.first, seq) && seqAtOrBefore(seq, r.last) ? r.at : this.frameTimes.get(seq);
    if (stream === undefined) return;
    const sample = viewer.rateSample;
    if (sample !== null && now - sample.wall < RATE_WINDOW_MS) return;
    // Only while frames are outstanding (also while a gap drains them) does the ack rate say how
    // fast the viewer reads; a caught-up viewer reads as fast as frames come.
    if (sample !== null && !viewer.caughtUp()) {
      const inst = (stream - sample.stream) / (now - sample.wall);
      viewer.readRate = Math.min(1.5, Math.max(0.05, 0.6 * viewer.readRate + 0.4 * inst));
    }
    viewer.rateSample = { wall: now, stream };
  }

  private resync(viewer: Viewer): void {
    const now = wallClockMs();
    viewer.gap = null;
    if (now - viewer.lastResyncAt < this.resyncMinIntervalMs) {
      // Replays are bursts: one a second at most. Otherwise wait for the next live keyframe.
      viewer.needsKeyframe = true;
      viewer.held = null;
      return;
    }
    viewer.lastResyncAt = now;
    this.replayTo(viewer, FrameFlag.REPLAY | FrameFlag.DISCONTINUITY);
  }

  /** Sends the cached GOP with `flags` added; with no cache the viewer waits for a keyframe. */
  private replayTo(viewer: Viewer, flags: number): void {
    const frames = this.gop.snapshot();
    if (frames.length === 0 || viewer.socket.readyState !== OPEN) {
      viewer.needsKeyframe = true;
      viewer.held = null;
      return;
    }
    const at = wallClockMs();
    for (const message of frames) this.send(viewer, message.withFlags(flags), message, at);
    viewer.replay = { first: frames[0]!.seq, last: frames.at(-1)!.seq, at };
    viewer.needsKeyframe = false;
    viewer.held = [];
    viewer.ackedAfterReplay = false;
  }

  /**
   * Ends a hold once its outcome is known: the viewer acked the replay (send what was held), or
   * `maxLagMs` passed without that (an acking viewer is too slow: drop what was held and skip to a
   * keyframe; a viewer that has never acked is governed by bufferedAmount: send what was held).
   */
  private settleHold(viewer: Viewer, now: Millis): void {
    const held = viewer.held;
    const replay = viewer.replay;
    if (held === null || replay === null) return;
    const ackedReplay = viewer.ackedSeq !== null && seqAtOrBefore(replay.last, viewer.ackedSeq) && viewer.ackedAfterReplay;
    if (ackedReplay || (now - replay.at > this.maxLagMs && viewer.ackedSeq === null)) {
      viewer.held = null;
      for (const message of held) this.send(viewer, message.wire, message);
      return;
    }
    if (now - replay.at > this.maxLagMs) {
      viewer.held = null;
      const gap: Gap = { reason: "lagging", frames: 0, lagMs: roundLag(now - replay.at) ?? 0 };
      viewer.gap = gap;
      for (let i = 0; i < held.length; i++) this.countSkip(viewer, gap);
    }
  }

  private deliver(viewer: Viewer, message: FrameMessage): void {
    if (viewer.paused || viewer.socket.readyState !== OPEN) return;
    const gap = viewer.gap;
    if (gap !== null) {
      if (message.key && this.canResume(viewer)) {
        const notice: SkippedMessage = { type: "skipped", reason: gap.reason, frames: gap.frames, lagMs: gap.lagMs };
        this.sendText(viewer, notice);
        viewer.gap = null;
        viewer.needsKeyframe = false;
        this.send(viewer, message.withFlags(FrameFlag.DISCONTINUITY), message);
      } else {
        this.countSkip(viewer, gap);
      }
      return;
    }
    // Nothing to decode against yet: wait for a keyframe (not a skip: nothing was missed).
    if (viewer.needsKeyframe && !message.key) return;
    if (viewer.held !== null) {
      viewer.held.push(message);
      this.settleHold(viewer, message.header.serverTime);
      return;
    }
    const lag = viewer.lagMs(this.frameTimes);
    const projected = lag === null ? null : lag / Math.min(1, viewer.readRate);
    const reason: SkipReason | null =
      projected !== null && projected > this.maxLagMs ? "lagging" : viewer.socket.bufferedAmount > this.maxBuffered ? "buffer-full" : null;
    if (reason !== null) {
      const newGap: Gap = { reason, frames: 0, lagMs: roundLag(lag) ?? 0 };
      viewer.gap = newGap;
      this.countSkip(viewer, newGap);
      return;
    }
    viewer.needsKeyframe = false;
    this.send(viewer, message.wire, message);
  }

  /** A skipping viewer may resume (at a keyframe) once it has drained what it was sent. */
  private canResume(viewer: Viewer): boolean {
    if (viewer.socket.bufferedAmount > this.maxBuffered / 2) return false;
    return viewer.ackedSeq === null || viewer.caughtUp();
  }

  private countSkip(viewer: Viewer, gap: Gap): void {
    gap.frames++;
    viewer.skipped[gap.reason]++;
    this.skippedTotals[gap.reason]++;
  }

  private send(viewer: Viewer, wire: WireMessage, message: FrameMessage, replayedAt?: Millis): void {
    viewer.socket.sendWire(wire);
    const time = replayedAt ?? message.header.serverTime;
    const continues = viewer.lastSentSeq !== null && message.seq === nextSeq(viewer.lastSentSeq);
    if (!continues) {
      viewer.runStart = { seq: message.seq, time };
      // Stream time jumps over a gap or back for a replay: measure the read rate afresh.
      viewer.rateSample = null;
    }
    viewer.framesSent++;
    viewer.bytesSent += message.byteLength;
    viewer.lastSentSeq = message.seq;
    viewer.lastSentTime = time;
    if (viewer.newestSentSeq === null || seqAtOrBefore(viewer.newestSentSeq, message.seq)) viewer.newestSentSeq = message.seq;
  }

  private sendText(viewer: Viewer, message: ServerMessage): void {
    if (viewer.socket.readyState === OPEN) viewer.socket.send(JSON.stringify(message));
  }

}

function roundLag(lag: number | null): number | null {
  return lag === null ? null : Math.round(lag * 10) / 10;
}

