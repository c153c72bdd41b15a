// A stream's recording as the HTTP routes and /ws/ connections use it, wherever it is kept: on
// this server's disk (LocalRecording, a Recorder's catalog) or at the origin an edge relays
// (cluster/remote-recording.ts, over NATS). One interface, so listing and seeking are written once.

import { open as openFile, type FileHandle } from "node:fs/promises";
import type { RecordingInfo, RecordingsResponse } from "../../shared/api.js";
import type { PlaybackErrorCode } from "../../shared/protocol.js";
import type { Logger } from "../log.js";
import { SegmentCatalog, fileOf, type SegmentEntry } from "./catalog.js";
import { Playback, type PlaybackEnd, type PlaybackSink } from "./playback.js";
import type { Recorder } from "./recorder.js";

/** One run of the recording to one viewer. */
export interface PlaybackRun {
  /** The sequence numbers sent so far: [first, next). */
  readonly seqRange: { readonly first: number; readonly next: number };
  /** Wall clock (recorded time) of the last frame sent; null before the first. */
  readonly lastSentAt: number | null;
  readonly ended: Promise<PlaybackEnd>;
  /** Ends the run: nothing is sent after. Safe to call twice. */
  stop(): void;
}

/** A seek's answer: a run ready to begin (nothing reaches the sink before begin()), or why there is none. */
export type PlaybackOpening =
  | { readonly ok: true; begin(): PlaybackRun; cancel(): void }
  | { readonly ok: false; readonly error: PlaybackErrorCode; readonly message: string };

/** A piece of a segment file, read where the file is kept. */
export type SegmentChunk =
  | { readonly ok: true; readonly size: number; readonly mimeType: string; readonly finished: boolean; readonly bytes: Uint8Array }
  | { readonly ok: false; readonly message: string };

export interface StreamRecording {
  readonly stream: string;
  info(): RecordingInfo;
  /** What GET /api/streams/NAME/recordings answers (the query's `from` and `to`). */
  list(query: URLSearchParams): Promise<RecordingsResponse>;
  /** A run from the last keyframe at or before `at` (wall clock, ms), its frames numbered from `firstSeq`. */
  open(at: number, sink: PlaybackSink, firstSeq: number): Promise<PlaybackOpening>;
  /** Up to `length` bytes of a listed segment file from `offset`, with the file's size and type. */
  readSegment(file: string, offset: number, length: number): Promise<SegmentChunk>;
}

/** The recordings a server can play: by stream name. */
export interface RecordingLookup {
  get(stream: string): StreamRecording | undefined;
}

/** No stream recorded. */
export const NO_RECORDINGS: RecordingLookup = { get: () => undefined };

/** A recording on this server's disk. */
export class LocalRecording implements StreamRecording {
  constructor(
    readonly recorder: Recorder,
    private readonly log: Logger,
  ) {}

  get stream(): string {
    return this.recorder.stream;
  }

  info(): RecordingInfo {
    return this.recorder.info();
  }

  list(query: URLSearchParams): Promise<RecordingsResponse> {
    return Promise.resolve(recordingsResponse(this.recorder, query));
  }

  /** The segment a file name names, if the catalog lists it (no other file of the directory is served). */
  segment(file: string): { readonly entry: SegmentEntry; readonly path: string } | null {
    const entry = this.recorder.catalog.list().find((e) => fileOf(e) === file);
    return entry === undefined ? null : { entry, path: this.recorder.catalog.pathOf(entry) };
  }

  async readSegment(file: string, offset: number, length: number): Promise<SegmentChunk> {
    const segment = this.segment(file);
    if (segment === null) return { ok: false, message: `no segment ${file.slice(0, 80)} of stream "${this.stream}"` };
    let handle: FileHandle | null = null;
    try {
      handle = await openFile(segment.path, "r");
      const { size } = await handle.stat();
      const bytes = new Uint8Array(Math.max(0, Math.min(length, size - offset)));
      let read = 0;
      while (read < bytes.byteLength) {
        const { bytesRead } = await handle.read(bytes, read, bytes.byteLength - read, offset + read);
        if (bytesRead === 0) break;
        read += bytesRead;
      }
      const mimeType = segment.entry.container === "webm" ? "video/webm" : "video/mp4";
      return { ok: true, size, mimeType, finished: segment.entry.status !== "open", bytes: bytes.subarray(0, read) };
    } catch (err) {
      return { ok: false, message: `the segment file could not be read: ${(err as Error).message}` };
    } finally {
      await handle?.close();
    }
  }

  open(at: number, sink: PlaybackSink, firstSeq: number): Promise<PlaybackOpening> {
    const catalog = this.recorder.catalog;
    if (catalog.list().length === 0) return Promise.resolve({ ok: false, error: "CC_ERR_NO_RECORDING", message: "nothing is recorded yet" });
    return Promise.resolve({
      ok: true,
      begin: () => new Playback(catalog, at, sink, { stream: this.stream, log: this.log, firstSeq }),
      cancel: () => undefined,
    });
  }
}

export function recordingsResponse(recorder: Recorder, query: URLSearchParams): RecordingsResponse {
  const from = timeParam(query.get("from"));
  const to = timeParam(query.get("to"));
  const segments = recorder.catalog
    .list()
    .filter((e) => (from === null || e.end >= from) && (to === null || e.start <= to))
    .map((e) => SegmentCatalog.describe(e, recorder.stream));
  return { stream: recorder.stream, recording: recorder.info(), ranges: recorder.catalog.ranges(), segments };
}

const timeParam = (v: string | null): number | null => {
  if (v === null) return null;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : null;
};
