// One named stream: its gst pipeline feeding its fan-out, supervised. A pipeline that exits is
// restarted with exponential backoff (reset after a healthy run); one that produces no frame for
// the stall timeout is killed and restarted. Viewers and the API see the state and the reason.

import type { StreamInfo } from "../../shared/api.js";
import type { SkipCounts, StreamState } from "../../shared/protocol.js";
import { wallClockMs, type Millis } from "../../shared/units.js";
import type { Logger } from "../log.js";
import { GstProcess, type GstExit } from "../source/gst-process.js";
import { buildGstArgs, describeSource, type EncodeSettings, type PipelineOptions, type SourceSpec } from "../source/pipeline.js";
import { StreamFanout, type FanoutOptions } from "./fanout.js";

export interface StreamConfig {
  readonly name: string;
  readonly source: SourceSpec;
  readonly settings: EncodeSettings;
}

export interface SupervisorOptions {
  /** First restart delay; doubles on each failure up to `maxBackoffMs`. */
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** A pipeline that ran this long with frames resets the backoff. */
  readonly healthyAfterMs?: number;
  /** No frame for this long (after the first, or after start) → the pipeline is killed and restarted. */
  readonly stallTimeoutMs?: number;
}

export interface LiveStreamOptions {
  readonly log: Logger;
  readonly pipeline: PipelineOptions;
  readonly fanout?: FanoutOptions;
  readonly supervisor?: SupervisorOptions;
  /** The gst-launch program (tests may point it elsewhere). */
  readonly gstProgram?: string;
}

export const DEFAULT_SUPERVISOR: Required<SupervisorOptions> = {
  initialBackoffMs: 500,
  maxBackoffMs: 30_000,
  healthyAfterMs: 10_000,
  stallTimeoutMs: 5_000,
};

/** How often the watchdog looks at the frame clock. */
const WATCHDOG_INTERVAL_MS = 250;

export class LiveStream {
  /** Every viewer, of /ws/ and /webm/ alike. */
  readonly fanout: StreamFanout;
  private readonly log: Logger;
  private readonly supervisor: Required<SupervisorOptions>;
  private process: GstProcess | null = null;
  private startedAt: Millis = 0 as Millis;
  private lastFrameAt: Millis | null = null;
  /** Why we killed the current process ourselves (stall), to report instead of its exit code. */
  private killReason: string | null = null;
  private backoffMs: number;
  private restartTimer: NodeJS.Timeout | null = null;
  private readonly watchdog: NodeJS.Timeout;
  private started = false;
  private closed = false;
  restarts = 0;

  constructor(
    readonly config: StreamConfig,
    private readonly options: LiveStreamOptions,
  ) {
    const { width, height, framerate } = config.settings;
    this.log = options.log.child({ stream: config.name });
    this.fanout = new StreamFanout(config.name, { width, height, framerate }, {
      ...options.fanout,
      onSlowViewerClosed: (viewer) => {
        this.log.warn("viewer closed: too slow", { viewer: viewer.id, mode: viewer.mode, remote: viewer.remote });
        options.fanout?.onSlowViewerClosed?.(viewer);
      },
    });
    this.supervisor = { ...DEFAULT_SUPERVISOR, ...options.supervisor };
    this.backoffMs = this.supervisor.initialBackoffMs;
    this.watchdog = setInterval(() => this.checkStall(), WATCHDOG_INTERVAL_MS);
    this.watchdog.unref();
  }

  get name(): string {
    return this.config.name;
  }

  /** The running pipeline's pid, if any. */
  get pipelinePid(): number | undefined {
    return this.process?.running ? this.process.pid : undefined;
  }

  /** Starts the pipeline (once; restarts are the supervisor's). */
  start(): void {
    if (this.closed || this.started) return;
    this.started = true;
    this.launch();
  }

  private launch(): void {
    this.restartTimer = null;
    if (this.closed) return;
    const args = buildGstArgs(this.config.source, this.config.settings, this.options.pipeline);
    const processOptions = this.options.gstProgram ? { log: this.log, program: this.options.gstProgram } : { log: this.log };
    const gst = new GstProcess(args, processOptions);
    this.process = gst;
    this.startedAt = wallClockMs();
    this.lastFrameAt = null;
    this.killReason = null;
    if (this.fanout.state !== "restarting" && this.fanout.state !== "offline") this.setState("starting");
    this.log.info("pipeline started", { pipelinePid: gst.pid, source: describeSource(this.config.source), restarts: this.restarts });
    gst.events.on("caps", (caps) => {
      const info = { width: caps.width, height: caps.height, framerate: caps.framerate || this.config.settings.framerate };
      this.fanout.setVideoInfo(info);
    });
    gst.events.on("frame", (frame) => {
      if (gst !== this.process) return;
      this.lastFrameAt = frame.receivedAt;
      if (this.fanout.state !== "live") {
        this.setState("live");
        this.log.info("stream live", { pipelinePid: gst.pid });
      }
      this.fanout.publish(frame);
    });
    gst.events.on("exit", (exit) => this.onExit(gst, exit));
  }

  private onExit(gst: GstProcess, exit: GstExit): void {
    if (this.closed || gst !== this.process) return;
    const now = wallClockMs();
    const hadFrames = this.lastFrameAt !== null;
    if (hadFrames && now - this.startedAt >= this.supervisor.healthyAfterMs) this.backoffMs = this.supervisor.initialBackoffMs;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.supervisor.maxBackoffMs);
    const reason = this.killReason ?? exit.error ?? "the pipeline ended";
    // A pipeline that never produced a frame is not coming back by itself (missing camera, bad
    // pipeline): offline. One that was live and died is restarting.
    const state = hadFrames ? "restarting" : "offline";
    this.log.error("pipeline stopped", { code: exit.code, signal: exit.signal, reason, state, retryInMs: delay });
    this.setState(state, reason, delay);
    this.restarts++;
    this.restartTimer = setTimeout(() => this.launch(), delay);
  }

  private setState(state: StreamState, reason?: string, retryInMs?: number): void {
    this.fanout.setState(state, reason, retryInMs);
  }

  private checkStall(): void {
    const gst = this.process;
    if (this.closed || gst === null || !gst.running || this.killReason !== null) return;
    const since = this.lastFrameAt ?? this.startedAt;
    const quietMs = wallClockMs() - since;
    if (quietMs < this.supervisor.stallTimeoutMs) return;
    this.killReason =
      this.lastFrameAt === null
        ? `no frame within ${Math.round(quietMs / 100) / 10} s of starting the pipeline (stalled)`
        : `no frame for ${Math.round(quietMs / 100) / 10} s (stalled)`;
    this.log.warn("pipeline stalled; killing it", { pipelinePid: gst.pid, reason: this.killReason });
    gst.kill();
  }

  info(): StreamInfo {
    const video = this.fanout.videoInfo;
    const { fps, kbps } = this.fanout.rates();
    const reason = this.fanout.stateReason;
    const pid = this.pipelinePid;
    return {
      name: this.name,
      state: this.fanout.state,
      ...(reason !== undefined ? { reason } : {}),
      source: describeSource(this.config.source),
      width: video.width,
      height: video.height,
      framerate: video.framerate,
      targetKbps: this.config.settings.bitrateKbps,
      keyframeIntervalS: this.config.settings.keyframeIntervalS,
      fps: Math.round(fps * 10) / 10,
      kbps: Math.round(kbps),
      viewers: this.viewerCount,
      framesIn: this.fanout.framesIn,
      gopFrames: this.fanout.gopFrames,
      skipped: sumSkips(this.fanout.skipped("ws"), this.fanout.skipped("webm")),
      restarts: this.restarts,
      ...(pid !== undefined ? { pipelinePid: pid } : {}),
      clients: this.fanout.viewerInfos(),
    };
  }

  /** Viewers of both modes. */
  get viewerCount(): number {
    return this.fanout.viewerCount();
  }

  /** Closes viewers (1001) and stops the pipeline. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.watchdog);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.fanout.close();
    await this.process?.close();
  }
}

function sumSkips(a: SkipCounts, b: SkipCounts): SkipCounts {
  return { lagging: a.lagging + b.lagging, "buffer-full": a["buffer-full"] + b["buffer-full"] };
}
