// One run of a stream's recording to one viewer, at real time: from the last keyframe at or before
// the time asked for, segment after segment. A gap where nothing was recorded is jumped over (the
// next frame is a keyframe flagged discontinuity); the segment being written is read again as it
// grows. When there is nothing more to read, or the run is within a few seconds of the newest
// recorded frames (having jumped gaps), the run ends and the viewer goes back to live. A viewer that reads too slowly skips to a keyframe,
// as live: the keyframe rule holds for recorded frames too.

import { FrameFlag, type HelloMessage, type VideoFrameHeader } from "../../shared/protocol.js";
import { PROTOCOL_VERSION } from "../../shared/protocol.js";
import { micros, millis, wallClockMs } from "../../shared/units.js";
import type { Logger } from "../log.js";
import { FrameMessage } from "../stream/frame-message.js";
import { RANGE_JOIN_MS, type SegmentCatalog, type SegmentEntry } from "./catalog.js";
import { SegmentReader, type RecordedFrame } from "./segment-reader.js";
import type { PlaybackRun } from "./stream-recording.js";

/** Where a run sends what it reads. */
export interface PlaybackSink {
  sendText(message: object): void;
  sendFrame(frame: FrameMessage): void;
  /** Bytes queued on the socket, not yet sent. */
  readonly bufferedAmount: number;
}

export interface PlaybackOptions {
  readonly stream: string;
  readonly log: Logger;
  /** Past this many bytes queued on the socket, frames are skipped until a keyframe. */
  readonly maxBufferedBytes?: number;
  /** The first sequence number this run gives its frames (recorded frames are numbered on their own). */
  readonly firstSeq: number;
}

const DEFAULT_MAX_BUFFERED = 1024 * 1024;
/**
 * A run this close behind the newest recorded frames has caught up (a segment being written can be
 * read up to its last complete cluster, a keyframe interval behind): it hands over to live.
 */
const CAUGHT_UP_MS = 3000;

/** How a run ended. */
export type PlaybackEnd = { readonly reason: "stopped" } | { readonly reason: "end" } | { readonly reason: "none"; readonly message: string };

export class Playback implements PlaybackRun {
  private stopped = false;
  private wake: (() => void) | null = null;
  /** Sequence number of the next frame sent. */
  private nextSeq: number;
  /** Wall clock of the last frame sent; null before the first. */
  lastSentAt: number | null = null;
  /** Resolves when the run ends: at the newest recorded frame, on stop(), or with nothing to play. */
  readonly ended: Promise<PlaybackEnd>;

  constructor(
    private readonly catalog: SegmentCatalog,
    from: number,
    private readonly sink: PlaybackSink,
    private readonly options: PlaybackOptions,
  ) {
    this.nextSeq = options.firstSeq;
    this.ended = this.run(from).catch((err: unknown) => {
      options.log.error("playback failed", { stream: options.stream, error: (err as Error).message });
      return { reason: "end" } as const;
    });
  }

  /** The sequence numbers sent so far: [first, next). */
  get seqRange(): { readonly first: number; readonly next: number } {
    return { first: this.options.firstSeq, next: this.nextSeq };
  }

  /** Ends the run (no frame is sent after). Safe to call twice. */
  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  private async run(from: number): Promise<PlaybackEnd> {
    const index = startIndex(this.catalog.list(), from);
    if (index < 0) return { reason: "none", message: `nothing is recorded at or after ${new Date(from).toISOString()}` };
    let segment = this.catalog.list()[index]!;
    let offsetUs = Math.max(0, from - segment.start) * 1000;
    let format: string | null = null;
    /** Real time and wall time of the frame the pacing counts from; reset after a gap. */
    let anchor: { real: number; wall: number } | null = null;
    let discontinuity = true;
    let skipping = false;
    let lastTimeUs: number | null = null;
    for (;;) {
      if (this.stopped) return { reason: "stopped" };
      const wasFinished = segment.status !== "open";
      let read = 0;
      let reader: SegmentReader | null = null;
      try {
        reader = await SegmentReader.open(this.catalog.pathOf(segment));
        const frames: AsyncIterable<RecordedFrame> = lastTimeUs === null ? reader.frames(offsetUs) : reader.framesAfter(lastTimeUs);
        for await (const frame of frames) {
          if (this.stopped) return { reason: "stopped" };
          read++;
          lastTimeUs = frame.timeUs;
          const wall = segment.start + frame.timeUs / 1000;
          if (anchor === null) {
            const key = `${segment.format.codec} ${segment.format.width}x${segment.format.height}`;
            if (format !== key) {
              format = key;
              this.sink.sendText(helloOf(this.options.stream, segment));
            }
            if (this.lastSentAt === null) this.sink.sendText({ type: "playback", mode: "recorded", at: Math.round(wall) });
            anchor = { real: wallClockMs(), wall };
          }
          await this.until(anchor.real + (wall - anchor.wall));
          if (this.stopped) return { reason: "stopped" };
          if (this.sink.bufferedAmount > (this.options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED)) skipping = true;
          if (skipping) {
            if (!frame.key || this.sink.bufferedAmount > (this.options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED)) continue;
            skipping = false;
            discontinuity = true;
          }
          this.send(frame, segment, wall, discontinuity);
          discontinuity = false;
        }
      } catch (err) {
        // Deleted by retention while played, or unreadable: go on with the next segment.
        this.options.log.debug("playback: a segment could not be read", { stream: this.options.stream, segment: segment.id, error: (err as Error).message });
      } finally {
        reader?.close();
      }
      if (!wasFinished && read > 0) {
        // Still being written. Within a few seconds of live there is no more to wait for: live it is.
        if (this.lastSentAt !== null && wallClockMs() - this.lastSentAt < CAUGHT_UP_MS) return { reason: "end" };
        continue; // read what it has grown by
      }
      // Finished (or nothing new in the open one): the next segment, if there is one.
      const list = this.catalog.list();
      const at = list.indexOf(segment);
      const next = at >= 0 ? list[at + 1] : list.find((e) => e.start >= segment.end);
      if (next === undefined || (!wasFinished && read === 0 && segment.status === "open")) return { reason: "end" };
      if (next.start - segment.end > RANGE_JOIN_MS) {
        // Nothing was recorded in between: jump over it.
        anchor = null;
        discontinuity = true;
      } else if (anchor !== null) {
        // Segments that follow on keep the pace of the wall clock across the boundary.
        anchor = { real: anchor.real + (next.start - anchor.wall), wall: next.start };
      }
      segment = next;
      offsetUs = 0;
      lastTimeUs = null;
    }
  }

  private send(frame: RecordedFrame, segment: SegmentEntry, wall: number, discontinuity: boolean): void {
    let flags = FrameFlag.RECORDED;
    if (frame.key) flags |= FrameFlag.KEYFRAME;
    if (discontinuity) flags |= FrameFlag.DISCONTINUITY;
    const header: VideoFrameHeader = {
      flags,
      seq: this.nextSeq,
      pts: micros(segment.streamStartUs + frame.timeUs),
      serverTime: millis(wall),
    };
    this.nextSeq = (this.nextSeq + 1) >>> 0;
    this.sink.sendFrame(FrameMessage.encode(header, frame.data));
    this.lastSentAt = wall;
  }

  /** Waits until the wall clock reaches `t` (or stop()). */
  private until(t: number): Promise<void> {
    const ms = t - wallClockMs();
    if (ms <= 0 || this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }
}

/** The segment holding `from`, else the first that starts after it; -1 for none. */
function startIndex(list: readonly SegmentEntry[], from: number): number {
  for (let i = 0; i < list.length; i++) {
    const e = list[i]!;
    if (from < e.end || (e.status === "open" && from >= e.start)) return i;
  }
  return -1;
}

function helloOf(stream: string, segment: SegmentEntry): HelloMessage {
  const f = segment.format;
  return {
    type: "hello",
    protocol: PROTOCOL_VERSION,
    stream,
    encoding: "full",
    codec: f.codec,
    width: f.width,
    height: f.height,
    framerate: f.framerate,
    serverTime: wallClockMs(),
  };
}
