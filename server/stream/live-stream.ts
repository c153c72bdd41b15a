// One named stream: its gst pipeline feeding a fan-out per encoding (full, and tile where
// configured), supervised. One process encodes them all, so they start, stop and restart together.
// A pipeline that exits is restarted with exponential backoff (reset after a healthy run); one in
// which any encoding produces no frame for the stall timeout is killed and restarted. Viewers and
// the API see the state and the reason. A `codec: copy` stream first probes which codec its source
// sends (kept while the source delivers; probed again after a run that gave no frame), and a probe
// that fails counts as a pipeline that failed.

import type { RecordConfig } from "../record/record-config.js";
import type { StreamInfo } from "../../shared/api.js";
import type { EncodingName, StreamState } from "../../shared/protocol.js";
import { wallClockMs, type Millis } from "../../shared/units.js";
import type { Logger } from "../log.js";
import { codecOfString, type CodecName } from "../../shared/codec.js";
import { CodecProbe } from "../source/codec-probe.js";
import { GstProcess, type GstExit } from "../source/gst-process.js";
import {
  buildPipeline,
  describeSource,
  type CopiedCodecs,
  type EncodeSettings,
  type PipelineOptions,
  type SourceSpec,
  type TileSettings,
} from "../source/pipeline.js";
import { CODECS } from "../codecs/registry.js";
import { StreamFanout, type FanoutOptions } from "./fanout.js";
import type { VideoInfo } from "./messages.js";
import { describeStream, StreamEncoding, type ServedStream } from "./served-stream.js";

export interface StreamConfig {
  readonly name: string;
  readonly source: SourceSpec;
  /** The full encoding. */
  readonly settings: EncodeSettings;
  /** The smaller encoding for grids of players; null: the stream has only its full encoding. */
  readonly tile: TileSettings | null;
  /** Where and how its full encoding is recorded; null: not recorded. */
  readonly record: RecordConfig | null;
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
  /** For every encoding's fan-out. */
  readonly fanout?: FanoutOptions;
  /** The callback each encoding's fan-out calls with a viewer's delivery delay (the metrics' lag histogram). */
  readonly viewerLagObserver?: (encoding: EncodingName) => (lagMs: number) => void;
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

/** What hello says of a copy stream before its source is probed: most cameras send H.264. */
const COPY_PROVISIONAL_CODEC: CodecName = "h264";

export class LiveStream implements ServedStream {
  /** Every encoding the stream has, "full" first. */
  readonly encodings: ReadonlyMap<EncodingName, StreamEncoding>;
  /** The full encoding's viewers, of /ws/ and MSE alike. */
  readonly fanout: StreamFanout;
  private readonly log: Logger;
  private readonly supervisor: Required<SupervisorOptions>;
  private process: GstProcess | null = null;
  /** The probes under way (codec copy), before the pipeline starts. */
  private probes: CodecProbe[] = [];
  /** What the sources send (codec copy), once probed. */
  private copied: CopiedCodecs | null = null;
  private startedAt: Millis = 0 as Millis;
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
    this.log = options.log.child({ stream: config.name });
    let viewerIds = 1;
    const encoding = (name: EncodingName, target: VideoInfo, targetKbps: number): StreamEncoding => {
      const observer = options.viewerLagObserver?.(name) ?? options.fanout?.onViewerLag;
      const fanout = new StreamFanout(config.name, target, {
        ...options.fanout,
        codec: CODECS[config.settings.codec === "copy" ? COPY_PROVISIONAL_CODEC : config.settings.codec].provisionalCodecString,
        encoding: name,
        nextViewerId: () => viewerIds++,
        ...(observer ? { onViewerLag: observer } : {}),
        onSlowViewerClosed: (viewer) => {
          this.log.warn("viewer closed: too slow", { viewer: viewer.id, mode: viewer.mode, encoding: name, remote: viewer.remote });
          options.fanout?.onSlowViewerClosed?.(viewer);
        },
      });
      return new StreamEncoding(name, target, targetKbps, fanout);
    };
    const { width, height, framerate, bitrateKbps } = config.settings;
    const full = encoding("full", { width, height, framerate }, bitrateKbps);
    const { tile } = config;
    this.encodings = new Map([
      ["full", full],
      ...(tile ? [["tile", encoding("tile", { width: tile.width, height: tile.height, framerate: tile.framerate }, tile.bitrateKbps)] as const] : []),
    ]);
    this.fanout = full.fanout;
    this.supervisor = { ...DEFAULT_SUPERVISOR, ...options.supervisor };
    this.backoffMs = this.supervisor.initialBackoffMs;
    this.watchdog = setInterval(() => this.checkStall(), WATCHDOG_INTERVAL_MS);
    this.watchdog.unref();
  }

  get name(): string {
    return this.config.name;
  }

  /** The fan-out of one of its encodings; undefined for one it does not have. */
  encoding(name: EncodingName): StreamFanout | undefined {
    return this.encodings.get(name)?.fanout;
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
    if (this.config.settings.codec === "copy" && this.copied === null) {
      this.probeThenLaunch();
      return;
    }
    this.startPipeline();
  }

  /** An RTSP camera may take this long to connect and answer: within the stall timeout, so its own error is the reason. */
  private get pipelineOptions(): PipelineOptions {
    return { ...this.options.pipeline, connectTimeoutMs: Math.max(500, this.supervisor.stallTimeoutMs - 1000) };
  }

  private probeThenLaunch(): void {
    this.startedAt = wallClockMs();
    for (const e of this.encodings.values()) e.lastFrameAt = null;
    if (this.fanout.state !== "restarting" && this.fanout.state !== "offline") this.setState("starting");
    const sources = [this.config.source, ...(this.config.tile?.source ? [this.config.tile.source] : [])];
    const options = {
      log: this.log,
      timeoutMs: this.supervisor.stallTimeoutMs,
      connectTimeoutMs: this.pipelineOptions.connectTimeoutMs!,
      ...(this.options.gstProgram ? { program: this.options.gstProgram } : {}),
    };
    const probes = sources.map((source) => new CodecProbe(source, options));
    this.probes = probes;
    void Promise.all(probes.map((p) => p.result)).then((results) => {
      if (this.closed || this.probes !== probes) return;
      this.probes = [];
      const failed = results.find((r) => !r.ok);
      if (failed !== undefined && !failed.ok) {
        this.failed(failed.reason, false);
        return;
      }
      const codecs = results.flatMap((r) => (r.ok ? [r.codec] : []));
      this.copied = { full: codecs[0]!, tile: codecs[1] ?? null };
      this.log.info("source codec probed", { codecs });
      for (const [name, e] of this.encodings) {
        const codec = name === "full" ? this.copied.full : this.copied.tile;
        // Until a keyframe tells its profile and level: what that codec's encoder here makes.
        if (codec !== null && codecOfString(e.fanout.codecString) !== codec) e.fanout.declareCodec(CODECS[codec].provisionalCodecString);
      }
      this.startPipeline();
    });
  }

  private startPipeline(): void {
    const pipeline = buildPipeline(this.config, this.pipelineOptions, this.copied ?? undefined);
    const outputs = pipeline.outputs.map((o) => ({ name: o.encoding, fd: o.fd, codec: CODECS[o.codec] }));
    const gst = new GstProcess(pipeline.args, { log: this.log, outputs, ...(this.options.gstProgram ? { program: this.options.gstProgram } : {}) });
    this.process = gst;
    this.startedAt = wallClockMs();
    for (const e of this.encodings.values()) e.lastFrameAt = null;
    this.killReason = null;
    if (this.fanout.state !== "restarting" && this.fanout.state !== "offline") this.setState("starting");
    this.log.info("pipeline started", {
      pipelinePid: gst.pid,
      source: describeSource(this.config.source),
      encodings: [...this.encodings.keys()],
      restarts: this.restarts,
    });
    gst.events.on("caps", ({ output, caps }) => {
      const encoding = this.encodings.get(output as EncodingName);
      if (gst !== this.process || encoding === undefined) return;
      encoding.fanout.setVideoInfo({ width: caps.width, height: caps.height, framerate: caps.framerate || encoding.target.framerate });
    });
    gst.events.on("frame", ({ output, frame }) => {
      const encoding = this.encodings.get(output as EncodingName);
      if (gst !== this.process || encoding === undefined) return;
      encoding.lastFrameAt = frame.receivedAt;
      // Each encoding is live for its viewers from its own first frame.
      if (encoding.fanout.state !== "live") {
        encoding.fanout.setState("live");
        this.log.info("stream live", { pipelinePid: gst.pid, encoding: encoding.name });
      }
      encoding.fanout.publish(frame);
    });
    gst.events.on("exit", (exit) => this.onExit(gst, exit));
  }

  private onExit(gst: GstProcess, exit: GstExit): void {
    if (this.closed || gst !== this.process) return;
    const hadFrames = [...this.encodings.values()].some((e) => e.lastFrameAt !== null);
    // A live source does not end by itself: a clean end after an element's warning (a camera that
    // closed the connection) is that warning.
    const ended = exit.warning !== null ? `${exit.warning} (the pipeline ended)` : "the pipeline ended";
    this.failed(this.killReason ?? exit.error ?? ended, hadFrames, exit);
  }

  /** The pipeline (or the probe before it) ended: restart it after the backoff. */
  private failed(reason: string, hadFrames: boolean, exit?: GstExit): void {
    const now = wallClockMs();
    if (hadFrames && now - this.startedAt >= this.supervisor.healthyAfterMs) this.backoffMs = this.supervisor.initialBackoffMs;
    // A source that gave nothing may have changed codec: probe it again.
    if (!hadFrames) this.copied = null;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.supervisor.maxBackoffMs);
    // A pipeline that never produced a frame is not coming back by itself (missing camera, bad
    // pipeline): offline. One that was live and died is restarting.
    const state = hadFrames ? "restarting" : "offline";
    this.log.error("pipeline stopped", { code: exit?.code, signal: exit?.signal, reason, state, retryInMs: delay });
    this.setState(state, reason, delay);
    this.restarts++;
    this.restartTimer = setTimeout(() => this.launch(), delay);
  }

  /** The pipeline's state is every encoding's. */
  private setState(state: StreamState, reason?: string, retryInMs?: number): void {
    for (const e of this.encodings.values()) e.fanout.setState(state, reason, retryInMs);
  }

  private checkStall(): void {
    const gst = this.process;
    if (this.closed || gst === null || !gst.running || this.killReason !== null) return;
    // The quietest encoding decides: a tile branch (or a camera's substream) that stops is a stall too.
    let quietest: StreamEncoding | null = null;
    for (const e of this.encodings.values()) {
      if (quietest === null || (e.lastFrameAt ?? this.startedAt) < (quietest.lastFrameAt ?? this.startedAt)) quietest = e;
    }
    if (quietest === null) return;
    const quietMs = wallClockMs() - (quietest.lastFrameAt ?? this.startedAt);
    if (quietMs < this.supervisor.stallTimeoutMs) return;
    const of = this.encodings.size > 1 ? ` of the ${quietest.name} encoding` : "";
    this.killReason =
      quietest.lastFrameAt === null
        ? `no frame${of} within ${Math.round(quietMs / 100) / 10} s of starting the pipeline (stalled)`
        : `no frame${of} for ${Math.round(quietMs / 100) / 10} s (stalled)`;
    this.log.warn("pipeline stalled; killing it", { pipelinePid: gst.pid, reason: this.killReason });
    gst.kill();
  }

  info(): StreamInfo {
    const pid = this.pipelinePid;
    return describeStream(this, {
      source: describeSource(this.config.source),
      keyframeIntervalS: this.config.settings.keyframeIntervalS,
      restarts: this.restarts,
      ...(pid !== undefined ? { pipelinePid: pid } : {}),
    });
  }

  /** Viewers of every encoding and both modes. */
  get viewerCount(): number {
    let n = 0;
    for (const e of this.encodings.values()) n += e.fanout.viewerCount();
    return n;
  }

  /** Closes viewers (1001) and stops the pipeline. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.watchdog);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    for (const probe of this.probes) probe.close();
    this.probes = [];
    for (const e of this.encodings.values()) e.fanout.close();
    await this.process?.close();
  }
}
