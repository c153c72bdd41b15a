// Records one stream: the frames its full encoding already has (a tap on its fan-out; no second
// encoder) go to segment files of about `segmentSeconds`, each starting at a keyframe. The live
// path only queues: a writer works through the queue on its own, so a slow disk delays the
// recording and never a viewer. When the queue outgrows its bound, or a write fails (a full or
// unwritable disk), the segment is cut where its written frames end, and recording starts again
// at a keyframe (after a failure, every few seconds until the disk takes it: `error` until then).
// A new segment also starts where the stream's frames cannot be continued (a pipeline restart, a
// change of codec or size) and when the stream stops being live.

import type { RecordingInfo, RecordingState } from "../../shared/api.js";
import { codecOfString } from "../../shared/codec.js";
import { FrameFlag, type HelloMessage, type StateMessage } from "../../shared/protocol.js";
import { wallClockMs } from "../../shared/units.js";
import type { Logger } from "../log.js";
import type { FanoutTap, StreamFanout } from "../stream/fanout.js";
import type { FrameMessage } from "../stream/frame-message.js";
import { SegmentCatalog, type SegmentEntry } from "./catalog.js";
import type { RecordConfig } from "./record-config.js";
import { expiredSegments } from "./retention.js";
import { containerOf, SegmentFile, type SegmentFormat } from "./segment-file.js";

export interface RecorderOptions {
  readonly log: Logger;
  /** Wall clock, for retention (tests inject one). */
  readonly clock?: () => number;
  /** After a write error, a new segment is tried at the first keyframe this long after. */
  readonly retryMs?: number;
  /** Frames queued for the disk beyond this many bytes are dropped (the segment is cut there). */
  readonly maxQueuedBytes?: number;
  /** How often retention is applied besides at each finished segment. */
  readonly retentionIntervalMs?: number;
}

export const DEFAULT_RETRY_MS = 2000;
/** Some seconds of a high-bitrate stream: a disk that stalls longer than that loses frames, not memory. */
export const DEFAULT_MAX_QUEUED_BYTES = 32 * 1024 * 1024;
const DEFAULT_RETENTION_INTERVAL_MS = 60_000;

type WriteOp =
  | { readonly op: "open"; readonly entry: SegmentEntry }
  | { readonly op: "frame"; readonly data: Uint8Array; readonly key: boolean; readonly timeUs: number; readonly durationUs: number }
  | { readonly op: "close" };

/** The segment the live path is filling (what it knows; the writer has its own). */
interface Filling {
  readonly entry: SegmentEntry;
  readonly startPts: number;
  lastPts: number;
  readonly frameUs: number;
}

export class Recorder {
  private format: SegmentFormat | null = null;
  /** The next keyframe starts a new segment (the format changed). */
  private cutAtKey = false;
  private filling: Filling | null = null;
  private readonly queue: WriteOp[] = [];
  private queuedBytes = 0;
  private draining: Promise<void> | null = null;
  /** The writer's open segment. */
  private writing: { readonly file: SegmentFile; readonly entry: SegmentEntry } | null = null;
  /** Where the last segment the live path filled ends (wall clock): the next starts no earlier. */
  private timelineEnd: number;
  private stateNow: RecordingState = "waiting";
  private reason: string | null = null;
  private retryAt = 0;
  private framesDroppedCount = 0;
  private errorsCount = 0;
  private closed = false;
  private readonly untap: () => void;
  private readonly retentionTimer: NodeJS.Timeout;
  private readonly clock: () => number;
  private readonly retryMs: number;
  private readonly maxQueuedBytes: number;
  private readonly log: Logger;

  private constructor(
    readonly stream: string,
    readonly config: RecordConfig,
    readonly catalog: SegmentCatalog,
    fanout: StreamFanout,
    options: RecorderOptions,
  ) {
    this.log = options.log;
    this.clock = options.clock ?? wallClockMs;
    this.retryMs = options.retryMs ?? DEFAULT_RETRY_MS;
    this.maxQueuedBytes = options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    this.timelineEnd = catalog.lastEnd ?? -Infinity;
    this.takeFormat(fanout.currentHello());
    const tap: FanoutTap = {
      format: (hello) => this.takeFormat(hello),
      state: (message) => this.takeState(message),
      frame: (message) => this.takeFrame(message),
    };
    this.untap = fanout.addTap(tap);
    this.retentionTimer = setInterval(() => void this.applyRetention(), options.retentionIntervalMs ?? DEFAULT_RETENTION_INTERVAL_MS);
    this.retentionTimer.unref();
  }

  /** Reads the stream's recordings (recovering a segment a killed server left open) and starts recording its full encoding. */
  static async start(stream: string, config: RecordConfig, fanout: StreamFanout, options: RecorderOptions): Promise<Recorder> {
    let catalog: SegmentCatalog;
    try {
      catalog = await SegmentCatalog.load(config.dir, options.log);
    } catch (err) {
      throw Object.assign(new Error(`cannot use the recording directory ${config.dir} of stream "${stream}": ${(err as Error).message}`), {
        code: "CC_ERR_RECORDING_DIR",
      });
    }
    const recorder = new Recorder(stream, config, catalog, fanout, options);
    await recorder.applyRetention();
    return recorder;
  }

  get state(): RecordingState {
    return this.stateNow;
  }

  get framesDropped(): number {
    return this.framesDroppedCount;
  }

  /** Write errors since start (each one stopped recording until a retry succeeded). */
  get errors(): number {
    return this.errorsCount;
  }

  info(): RecordingInfo {
    const segments = this.catalog.list();
    return {
      state: this.stateNow,
      ...(this.reason !== null ? { reason: this.reason } : {}),
      segments: segments.length,
      bytes: this.catalog.totalBytes,
      ...(segments.length > 0 ? { oldest: new Date(segments[0]!.start).toISOString() } : {}),
      framesDropped: this.framesDroppedCount,
      segmentSeconds: this.config.segmentSeconds,
      retain: this.config.retain,
    };
  }

  /** Stops taking frames, finishes the open segment. Safe to call twice. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.untap();
      clearInterval(this.retentionTimer);
      this.cut();
    }
    await this.drained();
  }

  /** Resolves once the writer has written everything queued so far (the tests' way to wait for the disk). */
  async drained(): Promise<void> {
    while (this.draining !== null) await this.draining;
  }

  /** Deletes what the retention policy no longer keeps. */
  async applyRetention(): Promise<void> {
    for (const entry of expiredSegments(this.catalog.list(), this.config.retain, this.clock())) {
      try {
        await this.catalog.remove(entry);
        this.log.debug("recording: segment deleted by retention", { stream: this.stream, segment: entry.id });
      } catch (err) {
        this.log.warn("recording: a segment could not be deleted", { stream: this.stream, segment: entry.id, error: (err as Error).message });
      }
    }
  }

  private takeFormat(hello: HelloMessage): void {
    const codecName = codecOfString(hello.codec);
    const next: SegmentFormat | null =
      codecName === null ? null : { codecName, codec: hello.codec, width: hello.width, height: hello.height, framerate: hello.framerate };
    const f = this.format;
    if (f !== null && next !== null && f.codec === next.codec && f.width === next.width && f.height === next.height) return;
    this.format = next;
    this.cutAtKey = true;
  }

  private takeState(message: StateMessage): void {
    // A segment ends with the stream's frames: a stream that is not live may not be again for hours.
    if (message.state !== "live") this.cut();
  }

  /** On the live path: decides where segments start and end, and queues. Never waits. */
  private takeFrame(message: FrameMessage): void {
    if (this.closed || this.format === null) return;
    const { header, data } = message;
    const key = message.key;
    const pts = header.pts;
    if (this.filling !== null && key) {
      const discont = (header.flags & FrameFlag.DISCONTINUITY) !== 0;
      const long = pts - this.filling.startPts >= this.config.segmentSeconds * 1e6;
      if (discont || long || this.cutAtKey) this.cut();
    }
    if (this.filling === null) {
      if (!key) return;
      if (this.stateNow === "error" && this.clock() < this.retryAt) {
        this.framesDroppedCount++;
        return;
      }
      this.cutAtKey = false;
      // The recorded timeline only goes forward, whatever the wall clock does.
      const start = Math.ceil(Math.max(header.serverTime, this.timelineEnd));
      const entry: SegmentEntry = {
        id: this.catalog.newId(start),
        container: containerOf(this.format.codecName),
        format: this.format,
        start,
        end: start,
        streamStartUs: Math.round(pts),
        frames: 0,
        bytes: 0,
        status: "open",
      };
      this.filling = { entry, startPts: pts, lastPts: pts, frameUs: this.frameUs };
      this.enqueue({ op: "open", entry }, 0);
    }
    if (this.queuedBytes + data.byteLength > this.maxQueuedBytes) {
      this.framesDroppedCount++;
      if (this.reason === null) this.log.warn("recording: the disk does not keep up; frames dropped, segment cut", { code: "CC_WARN_RECORDING_BEHIND", stream: this.stream });
      this.cut();
      return;
    }
    this.filling.lastPts = pts;
    this.enqueue({ op: "frame", data, key, timeUs: pts - this.filling.startPts, durationUs: this.filling.frameUs }, data.byteLength);
  }

  private get frameUs(): number {
    return Math.round(1e6 / (this.format !== null && this.format.framerate > 0 ? this.format.framerate : 30));
  }

  /** Ends the segment being filled after the frames queued for it. */
  private cut(): void {
    const f = this.filling;
    if (f === null) return;
    this.filling = null;
    this.timelineEnd = Math.max(this.timelineEnd, f.entry.start + Math.round((f.lastPts - f.startPts + f.frameUs) / 1000));
    this.enqueue({ op: "close" }, 0);
  }

  private enqueue(op: WriteOp, bytes: number): void {
    this.queue.push(op);
    this.queuedBytes += bytes;
    this.draining ??= this.drain().finally(() => {
      this.draining = null;
    });
  }

  private async drain(): Promise<void> {
    for (let op = this.queue.shift(); op !== undefined; op = this.queue.shift()) {
      if (op.op === "frame") this.queuedBytes -= op.data.byteLength;
      try {
        await this.write(op);
      } catch (err) {
        await this.fail(err as NodeJS.ErrnoException);
      }
    }
  }

  private async write(op: WriteOp): Promise<void> {
    switch (op.op) {
      case "open": {
        const path = this.catalog.pathOf(op.entry);
        await this.catalog.add(op.entry);
        this.writing = { file: await SegmentFile.create(path, op.entry.format), entry: op.entry };
        if (this.stateNow !== "recording") {
          if (this.stateNow === "error") this.log.info("recording resumed", { stream: this.stream, segment: op.entry.id });
          this.stateNow = "recording";
          this.reason = null;
        }
        return;
      }
      case "frame": {
        if (this.writing === null) return;
        const { file, entry } = this.writing;
        await file.add(op.data, op.key, op.timeUs, op.durationUs);
        entry.frames = file.frames;
        entry.bytes = file.bytes;
        entry.end = entry.start + Math.round((op.timeUs + op.durationUs) / 1000);
        return;
      }
      case "close": {
        if (this.writing === null) return;
        const { file, entry } = this.writing;
        this.writing = null;
        await file.finish();
        entry.bytes = file.bytes;
        entry.status = "finished";
        if (entry.frames === 0) await this.catalog.remove(entry);
        else await this.catalog.save(entry);
        if (this.stateNow === "recording" && this.filling === null) this.stateNow = "waiting";
        await this.applyRetention();
        return;
      }
    }
  }

  /** A write failed: the segment keeps what was written; recording stops until a retry succeeds. */
  private async fail(err: NodeJS.ErrnoException): Promise<void> {
    const reason = err.code !== undefined ? `${err.code}: ${err.message.replace(/^[A-Z]+: /, "")}` : err.message;
    this.errorsCount++;
    if (this.stateNow !== "error" || this.reason !== reason) {
      this.log.error("recording stopped: cannot write", { code: "CC_ERR_RECORDING_WRITE", stream: this.stream, error: reason });
    }
    const writing = this.writing;
    this.writing = null;
    // Before any await: whoever sees the error state sees the segment it cut as partial.
    if (writing !== null) writing.entry.status = "partial";
    this.stateNow = "error";
    this.reason = reason;
    this.retryAt = this.clock() + this.retryMs;
    for (const op of this.queue) if (op.op === "frame") this.framesDroppedCount++;
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.filling = null;
    if (writing === null) {
      // The sidecar could not be written: the segment never opened.
      for (const entry of this.catalog.list()) if (entry.status === "open" && entry.frames === 0) await this.catalog.remove(entry).catch(() => {});
      return;
    }
    const { file, entry } = writing;
    await file.abandon();
    if (entry.frames === 0) {
      await this.catalog.remove(entry).catch(() => {});
      return;
    }
    entry.bytes = file.bytes;
    // On a full disk this may fail too: the sidecar then still says "open", and the next start recovers the file.
    await this.catalog.save(entry).catch(() => {});
  }
}
