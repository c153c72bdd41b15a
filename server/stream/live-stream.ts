// One named stream: its gst pipeline feeding its hub, and the state viewers and the API see.

import type { StreamInfo } from "../../shared/api.js";
import type { Logger } from "../log.js";
import { GstProcess } from "../source/gst-process.js";
import { buildGstArgs, describeSource, type EncodeSettings, type PipelineOptions, type SourceSpec } from "../source/pipeline.js";
import { StreamHub, type HubOptions } from "./hub.js";

export interface StreamConfig {
  readonly name: string;
  readonly source: SourceSpec;
  readonly settings: EncodeSettings;
}

export interface LiveStreamOptions {
  readonly log: Logger;
  readonly pipeline: PipelineOptions;
  readonly hub?: HubOptions;
  /** The gst-launch program (tests may point it elsewhere). */
  readonly gstProgram?: string;
}

export class LiveStream {
  readonly hub: StreamHub;
  private process: GstProcess | null = null;
  private closed = false;
  private readonly log: Logger;

  constructor(
    readonly config: StreamConfig,
    private readonly options: LiveStreamOptions,
  ) {
    const { width, height, framerate } = config.settings;
    this.hub = new StreamHub(config.name, { width, height, framerate }, options.hub);
    this.log = options.log.child({ stream: config.name });
  }

  get name(): string {
    return this.config.name;
  }

  /** The running pipeline's pid, if any. */
  get pipelinePid(): number | undefined {
    return this.process?.running ? this.process.pid : undefined;
  }

  start(): void {
    if (this.closed || this.process?.running) return;
    const args = buildGstArgs(this.config.source, this.config.settings, this.options.pipeline);
    const processOptions = this.options.gstProgram ? { log: this.log, program: this.options.gstProgram } : { log: this.log };
    const gst = new GstProcess(args, processOptions);
    this.process = gst;
    this.hub.setState("starting");
    this.log.info("pipeline started", { pid: gst.pid, source: describeSource(this.config.source) });
    gst.events.on("caps", (caps) => {
      this.hub.setVideoInfo({ width: caps.width, height: caps.height, framerate: caps.framerate || this.config.settings.framerate });
    });
    gst.events.on("frame", (frame) => {
      if (this.hub.state !== "live") this.hub.setState("live");
      this.hub.publish(frame);
    });
    gst.events.on("exit", (exit) => {
      if (this.closed) return;
      const reason = exit.error ?? "the pipeline ended";
      this.log.error("pipeline stopped", { code: exit.code, signal: exit.signal, reason });
      this.hub.setState("offline", reason);
    });
  }

  info(): StreamInfo {
    const video = this.hub.videoInfo;
    const { fps, kbps } = this.hub.rates();
    const reason = this.hub.stateReason;
    return {
      name: this.name,
      state: this.hub.state,
      ...(reason !== undefined ? { reason } : {}),
      source: describeSource(this.config.source),
      width: video.width,
      height: video.height,
      framerate: video.framerate,
      targetKbps: this.config.settings.bitrateKbps,
      keyframeIntervalS: this.config.settings.keyframeIntervalS,
      fps: Math.round(fps * 10) / 10,
      kbps: Math.round(kbps),
      viewers: this.hub.viewerCount,
      framesIn: this.hub.framesIn,
      gopFrames: this.hub.gopFrames,
    };
  }

  /** Closes viewers (1001) and stops the pipeline. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.hub.close();
    await this.process?.close();
  }
}
