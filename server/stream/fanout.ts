// Fan-out of one encoding of a stream (full or tile) to all its viewers, of every output (/ws/
// frames, /webm/ WebM and /mp4/ fragmented MP4): sequence numbers and the timeline, the GOP cache and join replay, the
// flow-control policy for each viewer (flow-control.ts) and the probes it feeds on. The rule it keeps for every viewer at every
// moment: after any frame a viewer was not sent, the next frame it receives is a keyframe.

import type { ViewerInfo } from "../../shared/api.js";
import {
  CloseCode,
  FrameFlag,
  nextSeq,
  ProtocolError,
  type ClientMessage,
  type EncodingName,
  type HelloMessage,
  type SkipCounts,
  type SkipReason,
  type StateMessage,
  type StreamState,
  type VideoFrameHeader,
} from "../../shared/protocol.js";
import { wallClockMs, type Micros, type Millis } from "../../shared/units.js";
import type { EncodedFrame } from "../source/frames.js";
import { DEFAULT_FLOW, type FlowOptions } from "./flow-control.js";
import { FrameMessage } from "./frame-message.js";
import { FrameOutput } from "./frame-output.js";
import { GopCache, type GopCacheLimits } from "./gop-cache.js";
import { closeIfStuck, helloMessage, stateMessage, type VideoInfo } from "./messages.js";
import type { FrameRole, ViewerOutput } from "./output.js";
import { probeMessage, readProbe } from "./probe.js";
import { RateMeter } from "./rate-meter.js";
import { GaplessTimeline, StreamTimeline } from "./timeline.js";
import { Viewer, zeroSkips, type ViewerMode, type ViewerSocket } from "./viewer.js";
import { Fmp4Mux } from "./fmp4-output.js";
import { MseOutput, type MseMux } from "./mse-output.js";
import { WebmMux } from "./webm-output.js";
import { codecOfString } from "../../shared/codec.js";
import type { MseContainer } from "../../shared/mse.js";
import type { WireMessage } from "./wire-message.js";

export interface FanoutOptions {
  /** Which of the stream's encodings this fan-out carries (in hello and the viewer list); "full" by default. */
  readonly encoding?: EncodingName;
  /**
   * The WebCodecs codec string hello announces until a keyframe declares its own ("vp8" by
   * default); a keyframe that declares another re-announces hello.
   */
  readonly codec?: string;
  /** Viewer ids; a stream's encodings share one source so that ids are unique per stream. */
  readonly nextViewerId?: () => number;
  /** The flow-control policy's limits (flow-control.ts). */
  readonly flow?: Partial<FlowOptions>;
  /** A viewer whose queue stays above `flow.maxBufferedBytes` this long is closed with 4408. */
  readonly slowViewerGraceMs?: number;
  /** Resyncs closer together than this wait for the next live keyframe instead of replaying. */
  readonly resyncMinIntervalMs?: number;
  /** How often holds, probes behind the last frames and stuck sockets are looked at. */
  readonly tickIntervalMs?: number;
  /** How often each `/ws/` viewer gets a stats message. */
  readonly statsIntervalMs?: number;
  readonly gopLimits?: GopCacheLimits;
  /** Called when a viewer is closed for being too slow. */
  readonly onSlowViewerClosed?: (viewer: Viewer) => void;
  /** Called with a viewer's measured delivery delay (ms) at each of its pongs (the metrics' lag histogram). */
  readonly onViewerLag?: (lagMs: number) => void;
  /** The wall clock (tests pass a fake one). */
  readonly clock?: () => Millis;
  /** Called with the number of viewers each time it changes (an edge subscribes to its origin only while it has some). */
  readonly onViewerCount?: (viewers: number) => void;
}

/**
 * What sees every frame and every change of format or state as the fan-out makes them, whatever
 * its viewers get: an origin's publisher to NATS (cluster/origin.ts), a stream's recorder
 * (record/recorder.ts). A tap must not block: it is called on the live path.
 */
export interface FanoutTap {
  format(hello: HelloMessage): void;
  state(message: StateMessage): void;
  /** Each frame, numbered, as it is cached and offered to the viewers. */
  frame(message: FrameMessage): void;
}

/** A frame numbered elsewhere (an origin's), as the frame protocol carries it. */
export interface NumberedFrame {
  readonly header: VideoFrameHeader;
  readonly data: Uint8Array;
}

export const DEFAULT_SLOW_VIEWER_GRACE_MS = 10_000;

const round1 = (n: number): number => Math.round(n * 10) / 10;

export class StreamFanout {
  private readonly viewers = new Map<Viewer, ViewerOutput>();
  private readonly gop: GopCache;
  private readonly timeline = new StreamTimeline();
  /** The MSE paths' time of each frame. */
  private readonly gapless = new GaplessTimeline();
  /** The MSE mux of the stream's codec (WebM or MP4); null for a codec no container here carries. */
  private mseMux: MseMux | null;
  private readonly flow: FlowOptions;
  private readonly slowGraceMs: number;
  private readonly resyncMinIntervalMs: number;
  private readonly onSlowViewerClosed: ((viewer: Viewer) => void) | undefined;
  private readonly onViewerLag: ((lagMs: number) => void) | undefined;
  private readonly onViewerCount: ((viewers: number) => void) | undefined;
  /** See every frame, format and state (an origin's NATS publisher, a recorder). */
  private readonly taps = new Set<FanoutTap>();
  private readonly clock: () => Millis;
  private readonly statsIntervalMs: number;
  private lastStatsAt = -Infinity;
  private readonly rate = new RateMeter(2000);
  private readonly timer: NodeJS.Timeout;
  private seq = 0xffffffff; // so the first frame is 0
  private readonly nextViewerId: () => number;
  readonly encoding: EncodingName;
  private video: VideoInfo;
  private codec: string;
  private stateMessage: StateMessage = { type: "state", state: "starting" };
  /** The next frame published carries the discontinuity flag (pipeline restart). */
  private discontinuityNext = false;
  /** Gapless time of the current GOP's keyframe; null until a keyframe (after start or a restart). */
  private gopStart: Micros | null = null;
  /** The probe last made: viewers sent the same frame at the same moment share it. */
  private lastProbe: { readonly seq: number; readonly at: Millis; readonly wire: WireMessage } | null = null;
  private readonly skippedByMode: Record<ViewerMode, Record<SkipReason, number>> = { ws: zeroSkips(), webm: zeroSkips(), mp4: zeroSkips() };
  framesIn = 0;
  bytesIn = 0;
  private closed = false;

  constructor(
    readonly name: string,
    initialVideo: VideoInfo,
    options: FanoutOptions = {},
  ) {
    this.video = initialVideo;
    this.codec = options.codec ?? "vp8";
    this.encoding = options.encoding ?? "full";
    let ids = 1;
    this.nextViewerId = options.nextViewerId ?? (() => ids++);
    this.mseMux = createMseMux(this.codec, initialVideo);
    this.gop = options.gopLimits ? new GopCache(options.gopLimits) : new GopCache();
    this.flow = { ...DEFAULT_FLOW, ...options.flow };
    this.slowGraceMs = options.slowViewerGraceMs ?? DEFAULT_SLOW_VIEWER_GRACE_MS;
    this.resyncMinIntervalMs = options.resyncMinIntervalMs ?? 1000;
    this.onSlowViewerClosed = options.onSlowViewerClosed;
    this.onViewerLag = options.onViewerLag;
    this.onViewerCount = options.onViewerCount;
    this.clock = options.clock ?? wallClockMs;
    this.statsIntervalMs = options.statsIntervalMs ?? 1000;
    this.timer = setInterval(() => this.tick(), options.tickIntervalMs ?? 250);
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

  viewerCount(mode?: ViewerMode): number {
    if (mode === undefined) return this.viewers.size;
    let n = 0;
    for (const viewer of this.viewers.keys()) if (viewer.mode === mode) n++;
    return n;
  }

  /** Viewers that asked for no frames for now (`pause`: a hidden page, a tile scrolled away). */
  get pausedViewerCount(): number {
    let n = 0;
    for (const viewer of this.viewers.keys()) if (viewer.paused) n++;
    return n;
  }

  get gopFrames(): number {
    return this.gop.length;
  }

  get gopBytes(): number {
    return this.gop.byteLength;
  }

  /** Frames not sent to viewers of `mode`, summed over every viewer the stream has had. */
  skipped(mode: ViewerMode): SkipCounts {
    return { ...this.skippedByMode[mode] };
  }

  /** Frames per second and kbit/s over the last two seconds. */
  rates(now: Millis = this.clock()): { fps: number; kbps: number } {
    return this.rate.rates(now);
  }

  /** The MSE container the stream's codec plays in (`/webm/` or `/mp4/`); null for none. */
  get mseContainer(): MseContainer | null {
    return this.mseMux?.container ?? null;
  }

  /**
   * Adds a viewer: `/ws/` gets hello, the state, then the cached GOP flagged replay; `/webm/` and
   * `/mp4/` the init segment (after hello and state with `meta`), then the cached GOP from its
   * keyframe. An MSE viewer of the other container's path is closed with 4415, naming the right one.
   */
  addViewer(socket: ViewerSocket, mode: ViewerMode, remote = "", meta = false): Viewer {
    const now = this.clock();
    const viewer = new Viewer(this.nextViewerId(), mode, socket, remote, now, this.flow);
    if (this.closed) {
      socket.close(CloseCode.GOING_AWAY, "server shutting down");
      return viewer;
    }
    const mux = this.mseMux;
    if (mode !== "ws" && mux?.container !== mode) {
      socket.close(CloseCode.WRONG_CONTAINER, wrongContainerReason(this.name, this.codec, mux?.container ?? null));
      return viewer;
    }
    const output = mode === "ws" || mux === null ? new FrameOutput(viewer) : new MseOutput(viewer, mux, meta);
    this.viewers.set(viewer, output);
    this.onViewerCount?.(this.viewers.size);
    output.greet(helloMessage(this.name, this.encoding, this.video, this.codec), this.stateMessage);
    this.replayTo(viewer, output, "replay", now);
    return viewer;
  }

  removeViewer(viewer: Viewer): void {
    if (this.viewers.delete(viewer)) this.onViewerCount?.(this.viewers.size);
  }

  viewerList(): readonly Viewer[] {
    return [...this.viewers.keys()];
  }

  viewerInfos(now: Millis = this.clock()): ViewerInfo[] {
    const streamBytesPerSecond = (this.rate.rates(now).kbps * 1000) / 8;
    return this.viewerList().map((v) => {
      const readBps = v.flow.readBytesPerSecond;
      return {
        id: v.id,
        mode: v.mode,
        encoding: this.encoding,
        remote: v.remote,
        connectedAt: v.connectedAt,
        lagMs: round1(v.flow.lagMs(now)),
        acks: v.acks,
        readRate: readBps === null || streamBytesPerSecond <= 0 ? 1 : Math.round(Math.min(1.5, readBps / streamBytesPerSecond) * 100) / 100,
        paused: v.paused,
        framesSent: v.framesSent,
        bytesSent: v.bytesSent,
        bufferedBytes: v.socket.bufferedAmount,
        skipped: { ...v.skipped },
      };
    });
  }

  /** Applies a validated client message (`/ws/` viewers). Throws ProtocolError for one that makes no sense here. */
  onClientMessage(viewer: Viewer, message: ClientMessage): void {
    const output = this.viewers.get(viewer);
    if (output === undefined) return;
    const now = this.clock();
    switch (message.type) {
      case "ack": {
        const { firstSentSeq: first, newestSentSeq: newest } = viewer;
        // Sent to it: from the first frame it got to the newest (u32 order, wrapping).
        if (first === null || newest === null || ((message.seq - first) >>> 0) > ((newest - first) >>> 0)) {
          throw new ProtocolError("CC_ERR_BAD_MESSAGE", `ack for frame ${message.seq}, which was not sent`);
        }
        // Acks are optional: flow control runs on probes. A valid ack only marks the client as acking.
        viewer.acks = true;
        break;
      }
      case "pause":
        viewer.paused = true;
        viewer.flow.restartAtKeyframe();
        break;
      case "resume":
        // A viewer away on a recording is resumed by its playback (record/playback.ts), not here.
        if (!viewer.paused || viewer.away) break;
        viewer.paused = false;
        this.resync(viewer, output, now);
        break;
      case "resync":
        if (viewer.away) break;
        viewer.paused = false;
        this.resync(viewer, output, now);
        break;
      case "clock":
        viewer.sendText({ type: "clock", t: message.t, serverTime: wallClockMs() });
        break;
    }
  }

  /** A pong from the viewer's socket. Pongs that answer no probe (the heartbeat's) are ignored. */
  onPong(viewer: Viewer, payload: Uint8Array): void {
    const probe = readProbe(payload);
    if (probe === null || !this.viewers.has(viewer)) return;
    const now = this.clock();
    if (!viewer.flow.pong(probe.seq, probe.sentAt, now)) return;
    this.onViewerLag?.(Math.max(0, now - probe.sentAt));
    if (viewer.flow.holding) this.settleHold(viewer, now);
  }

  /** New caps from the pipeline. A changed size or rate re-announces hello and restarts at a keyframe. */
  setVideoInfo(info: VideoInfo): void {
    const v = this.video;
    if (v.width === info.width && v.height === info.height && v.framerate === info.framerate) return;
    this.video = info;
    this.mseMux?.setVideo(info);
    this.announceFormat();
  }

  /** The WebCodecs codec string hello says. */
  get codecString(): string {
    return this.codec;
  }

  /** Frames from here on are of a new format: a new hello, and every viewer restarts at a keyframe. */
  private announceFormat(): void {
    this.gop.clear();
    this.gopStart = null;
    const hello = helloMessage(this.name, this.encoding, this.video, this.codec);
    for (const [viewer, output] of this.viewers) {
      viewer.flow.restartAtKeyframe(); // frames of the old format (held ones too) must not follow the new hello
      // A viewer away on a recording gets the live hello when it comes back.
      if (!viewer.away && !output.formatChanged(hello)) this.removeViewer(viewer);
    }
    for (const tap of this.taps) tap.format(hello);
  }

  setState(state: StreamState, reason?: string, retryInMs?: number): void {
    const m = this.stateMessage;
    const retry = retryInMs === undefined ? undefined : Math.round(retryInMs);
    if (state === m.state && reason === m.reason && retry === m.retryInMs) return;
    this.stateMessage = stateMessage(state, reason, retry);
    // The pipeline is gone: the cache belongs to it, and every viewer restarts at a keyframe.
    if (state !== "live") this.discontinuity();
    for (const [viewer, output] of this.viewers) if (!viewer.away) output.state(this.stateMessage);
    for (const tap of this.taps) tap.state(this.stateMessage);
  }

  /** The state message a joiner is greeted with. */
  currentState(): StateMessage {
    return this.stateMessage;
  }

  /**
   * The viewer plays a recording on its socket (record/playback.ts): no live frames, stats, hello
   * or state until it comes back with returnToLive.
   */
  leaveLive(viewer: Viewer): void {
    if (!this.viewers.has(viewer)) return;
    viewer.away = true;
    viewer.paused = true;
    viewer.flow.restartAtKeyframe();
  }

  /** Back from a recording: hello and state again, then at once the cached GOP (replay + discontinuity) and live frames. */
  returnToLive(viewer: Viewer): void {
    const output = this.viewers.get(viewer);
    if (output === undefined || !viewer.away) return;
    viewer.away = false;
    viewer.paused = false;
    output.greet(this.currentHello(), this.stateMessage);
    const now = this.clock();
    viewer.lastResyncAt = now;
    this.replayTo(viewer, output, "resync", now);
  }

  /** Adds a tap; the function returned removes it (safe to call twice). */
  addTap(tap: FanoutTap): () => void {
    this.taps.add(tap);
    return () => this.taps.delete(tap);
  }

  /** The hello a joiner is greeted with. */
  currentHello(): HelloMessage {
    return helloMessage(this.name, this.encoding, this.video, this.codec);
  }

  /**
   * The frames before this point cannot be continued (the pipeline ended, frames were lost on the
   * way from an origin): the cache is dropped, every viewer waits for a keyframe, and the next
   * frame sent is flagged discontinuity.
   */
  discontinuity(): void {
    this.gop.clear();
    this.gopStart = null;
    this.discontinuityNext = true;
    this.timeline.markRestart();
    // The frames before (held ones too) must not be followed by a delta.
    for (const viewer of this.viewers.keys()) viewer.flow.restartAtKeyframe();
  }

  /** The codec string hello says from now on (a source found to send another codec): a new hello when it changes. */
  declareCodec(codec: string): void {
    if (codec === this.codec) return;
    const before = codecOfString(this.codec);
    this.codec = codec;
    // Another codec (not only another profile or level) needs the other container's mux.
    if (codecOfString(codec) !== before) this.mseMux = createMseMux(codec, this.video);
    this.announceFormat();
  }

  /** Numbers a frame of the pipeline, encodes it once, caches it and offers it to every viewer. */
  publish(frame: EncodedFrame): FrameMessage {
    // A keyframe that declares another profile or level than hello said: say it before this frame.
    if (frame.codec !== undefined) this.declareCodec(frame.codec);
    const seq = nextSeq(this.seq);
    const discont = frame.discont || this.discontinuityNext;
    return this.accept(frame.key, discont, { seq, pts: frame.pts, serverTime: frame.receivedAt }, frame.data, frame.receivedAt, true);
  }

  /**
   * A frame an origin numbered (an edge's, through NATS), offered as it is: its sequence number
   * and server time are kept. A sequence number that does not follow the last frame's means frames
   * were lost on the way: every viewer waits for the next keyframe. Frames not after the last one are dropped.
   */
  relay(frame: NumberedFrame): FrameMessage | null {
    return this.follows(frame.header.seq) ? this.acceptNumbered(frame, true) : null;
  }

  /**
   * An origin's cached GOP (keyframe first), for an edge that just subscribed or came back: cached,
   * and replayed to every viewer waiting for a keyframe, as a joiner's (or a resync's) would be.
   */
  prime(frames: readonly NumberedFrame[]): void {
    // With no decodable GOP cached (every viewer waits for a keyframe), the origin's is taken whole,
    // frames relayed before included: replays carry older numbers anyway.
    const first = frames[0];
    if (this.gopStart === null && first !== undefined && this.framesIn > 0) this.seq = (first.header.seq - 1) >>> 0;
    for (const frame of frames) if (this.follows(frame.header.seq)) this.acceptNumbered(frame, false);
    const now = this.clock();
    for (const [viewer, output] of this.viewers) {
      if (viewer.paused || !viewer.flow.awaitingKeyframe) continue;
      this.replayTo(viewer, output, viewer.firstSentSeq === null ? "replay" : "resync", now);
    }
  }

  /** False for a frame not after the last one; a gap before it is a discontinuity. */
  private follows(seq: number): boolean {
    if (this.framesIn === 0) return true;
    const step = (seq - this.seq) >>> 0;
    if (step === 0 || step >= 0x8000_0000) return false;
    if (step > 1) this.discontinuity();
    return true;
  }

  private acceptNumbered({ header, data }: NumberedFrame, deliver: boolean): FrameMessage {
    const key = (header.flags & FrameFlag.KEYFRAME) !== 0;
    const discont = (header.flags & FrameFlag.DISCONTINUITY) !== 0 || (this.discontinuityNext && key);
    return this.accept(key, discont, header, data, this.clock(), deliver);
  }

  /**
   * Places a numbered frame on the timelines, caches it and (`deliver`) offers it to every viewer.
   * `arrivedAt`: when it reached this process (the rate meter's clock).
   */
  private accept(key: boolean, discont: boolean, numbered: Omit<VideoFrameHeader, "flags">, data: Uint8Array, arrivedAt: Millis, deliver: boolean): FrameMessage {
    this.seq = numbered.seq;
    let flags = 0;
    if (key) flags |= FrameFlag.KEYFRAME;
    if (discont) flags |= FrameFlag.DISCONTINUITY;
    // Held until a keyframe: a delta after a discontinuity can be sent to no one.
    if (key || !this.discontinuityNext) this.discontinuityNext = false;
    const frameUs = 1e6 / (this.video.framerate > 0 ? this.video.framerate : 30);
    const pts = this.timeline.place(numbered.pts, frameUs);
    const mediaTime = this.gapless.place(pts, frameUs);
    if (key) this.gopStart = mediaTime;
    const header = { flags, seq: numbered.seq, pts, serverTime: numbered.serverTime };
    const message = FrameMessage.encode(header, data, { time: mediaTime, gopStart: this.gopStart ?? mediaTime });
    this.framesIn++;
    this.bytesIn += data.byteLength;
    this.rate.add(arrivedAt, data.byteLength);
    // A delta with no keyframe before it (the pipeline's first frames) can be sent to no one.
    if (!key && this.gopStart === null) return message;
    this.gop.push(message);
    for (const tap of this.taps) tap.frame(message);
    if (!deliver) return message;
    const now = this.clock();
    for (const [viewer, output] of this.viewers) this.deliver(viewer, output, message, now);
    return message;
  }

  /** The sequence number of the last frame published or relayed; null before the first. */
  get lastSeq(): number | null {
    return this.framesIn === 0 ? null : this.seq;
  }

  /** The cached GOP: the last keyframe and every frame since (what an origin sends an edge that subscribes). */
  gopSnapshot(): readonly FrameMessage[] {
    return this.gop.snapshot();
  }

  /** Periodic work: stats, holds that timed out, probes behind the last frames, sockets that stay full. */
  tick(now: Millis = this.clock()): void {
    const stats = now - this.lastStatsAt >= this.statsIntervalMs;
    if (stats) this.lastStatsAt = now;
    for (const [viewer, output] of this.viewers) {
      if (!viewer.open) continue;
      if (closeIfStuck(viewer, now, this.flow.maxBufferedBytes, this.slowGraceMs)) {
        this.removeViewer(viewer);
        this.onSlowViewerClosed?.(viewer);
        continue;
      }
      if (viewer.flow.holding) this.settleHold(viewer, now);
      if (viewer.flow.unprobed && viewer.flow.probeDue(now)) this.sendTrailingProbe(viewer, now);
      if (stats && !viewer.paused) {
        output.stats({ type: "stats", lagMs: round1(viewer.flow.lagMs(now)), framesSent: viewer.framesSent, skipped: { ...viewer.skipped } });
      }
    }
  }

  /** Closes every viewer socket and stops the timer. Later viewers are refused. Safe to call twice. */
  close(code: number = CloseCode.GOING_AWAY, reason = "server shutting down"): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const viewer of this.viewers.keys()) viewer.socket.close(code, reason);
    this.viewers.clear();
    this.gop.clear();
  }

  private resync(viewer: Viewer, output: ViewerOutput, now: Millis): void {
    if (now - viewer.lastResyncAt < this.resyncMinIntervalMs) {
      // Replays are bursts: one a second at most. Otherwise wait for the next live keyframe.
      viewer.flow.restartAtKeyframe();
      return;
    }
    viewer.lastResyncAt = now;
    this.replayTo(viewer, output, "resync", now);
  }

  /**
   * Writes the cached GOP, a probe behind each frame (so the pongs measure how fast the viewer
   * reads it), then holds live frames until it is read. With no cache the viewer waits for a keyframe.
   */
  private replayTo(viewer: Viewer, output: ViewerOutput, role: "replay" | "resync", now: Millis): void {
    const frames = this.gop.snapshot();
    viewer.flow.restartAtKeyframe();
    if (frames.length === 0 || !viewer.open) return;
    for (const message of frames) {
      if (!this.write(viewer, output, message, role, now, true)) return;
    }
    viewer.flow.replayed(now);
  }

  private deliver(viewer: Viewer, output: ViewerOutput, message: FrameMessage, now: Millis): void {
    if (viewer.paused || !viewer.open) return;
    if (viewer.flow.holdBack(message)) {
      this.settleHold(viewer, now);
      return;
    }
    const verdict = viewer.flow.admit(message.key, message.wire.wireLength, now, viewer.socket.bufferedAmount);
    if (!verdict.send) {
      if (verdict.skipped !== null) this.countSkips(viewer, verdict.skipped.reason, 1);
      // So that a pong can prove the viewer has read everything, and it can resume.
      if (viewer.flow.unprobed) this.sendTrailingProbe(viewer, now);
      return;
    }
    if (verdict.resumed !== null) output.gapEnded(verdict.resumed);
    this.write(viewer, output, message, verdict.resumed !== null ? "resume" : "live", now, false);
  }

  /** Ends a hold once its outcome is known (see ViewerFlow.settleHold). */
  private settleHold(viewer: Viewer, now: Millis): void {
    const settled = viewer.flow.settleHold(now);
    if (settled.outcome === "hold") return;
    if (settled.outcome === "drop") {
      this.countSkips(viewer, "lagging", settled.held.length);
      return;
    }
    const output = this.viewers.get(viewer);
    if (output === undefined) return;
    for (const message of settled.held) this.deliver(viewer, output, message, now);
  }

  private write(viewer: Viewer, output: ViewerOutput, message: FrameMessage, role: FrameRole, now: Millis, probe: boolean): boolean {
    const withProbe = probe || viewer.flow.probeDue(now);
    const wire = withProbe ? this.probe(message.seq, now) : null;
    if (!output.writeFrame(message, role, wire)) {
      viewer.flow.restartAtKeyframe();
      return false;
    }
    if (wire !== null) viewer.flow.probed(message.seq, now);
    viewer.framesSent++;
    viewer.lastSentSeq = message.seq;
    viewer.firstSentSeq ??= message.seq;
    const newest = viewer.newestSentSeq;
    if (newest === null || ((message.seq - newest) >>> 0) < 0x8000_0000) viewer.newestSentSeq = message.seq;
    return true;
  }

  private sendTrailingProbe(viewer: Viewer, now: Millis): void {
    const seq = viewer.lastSentSeq ?? 0;
    viewer.sendProbe(this.probe(seq, now));
    viewer.flow.probed(seq, now);
  }

  private probe(seq: number, now: Millis): WireMessage {
    const last = this.lastProbe;
    if (last !== null && last.seq === seq && last.at === now) return last.wire;
    const wire = probeMessage(seq, now);
    this.lastProbe = { seq, at: now, wire };
    return wire;
  }

  private countSkips(viewer: Viewer, reason: SkipReason, frames: number): void {
    viewer.skipped[reason] += frames;
    this.skippedByMode[viewer.mode][reason] += frames;
  }
}

/** The mux of the container that carries `codec` (a WebCodecs codec string); null for a codec none carries. */
export function createMseMux(codec: string, video: VideoInfo): MseMux | null {
  const name = codecOfString(codec);
  if (name === null) return null;
  return name === "h264" ? new Fmp4Mux(video) : new WebmMux(video, name);
}

/** The close reason for an MSE socket on the wrong path (at most 123 bytes). */
export function wrongContainerReason(stream: string, codec: string, container: MseContainer | null): string {
  const name = stream.length > 40 ? `${stream.slice(0, 40)}…` : stream;
  const where = container === null ? "no MSE path here; play it through /ws/" : `play it on /${container}/${name}`;
  return `CC_ERR_WRONG_PATH: stream is ${codec.slice(0, 24)}: ${where}`;
}
