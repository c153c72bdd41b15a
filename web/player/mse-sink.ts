// One MediaSource attached to a <video> with one SourceBuffer of the stream's type (WebM or MP4,
// given once hello names the codec, shared/mse.ts), fed from a single FIFO queue: nothing is
// appended or removed while the buffer is `updating`, and every byte is appended in the order it
// arrived (a WebM or MP4 byte stream cannot skip a message). Appends wait for the type.
//
// Old media behind the playhead is removed as playback moves on, always up to a keyframe (a WebM
// cluster's start, an MP4 fragment of a sync sample: removing a keyframe removes the frames that
// depend on it, which would cut into what is playing), so QuotaExceededError should never happen. If it does, more is removed
// and the append is retried once; if it happens again the sink reports CC_ERR_QUOTA and the owner
// starts over with a fresh MediaSource.
//
// A sink is used once: `close()` detaches it (or lets the next sink's `src` replace it), revokes
// the object URL if still held and removes every listener it added.

import { PlayerError } from "./errors.js";


/** Media kept behind the playhead, seconds. */
const KEEP_BEHIND_S = 3;
/** Remove only once at least this much can go, seconds (not a remove() per frame). */
const MIN_REMOVE_S = 2;
/** After QuotaExceededError: keep only this much behind the playhead, seconds. */
const QUOTA_KEEP_BEHIND_S = 0.5;

/** True where MediaSource exists. */
export function mseSupported(): boolean {
  return typeof globalThis.MediaSource === "function";
}

/** True where MSE plays `mimeType` (e.g. `video/mp4; codecs="avc1.42C01E"`). */
export function mseTypeSupported(mimeType: string): boolean {
  return mseSupported() && MediaSource.isTypeSupported(mimeType);
}

/** The keyframe time (ms) a message starts with — a WebM cluster's, an MP4 sync fragment's — or undefined. */
export function keyframeTimeMs(bytes: Uint8Array): number | undefined {
  return clusterTimecode(bytes) ?? syncFragmentTime(bytes);
}

/** Matroska Cluster element ID. */
const CLUSTER_ID = [0x1f, 0x43, 0xb6, 0x75] as const;
/** Matroska Cluster Timecode element ID. */
const TIMECODE_ID = 0xe7;

/**
 * When `bytes` starts a Cluster, its Timecode (in TimecodeScale units: ms for canvascast) — the
 * cluster's first block is a keyframe, so this is a random access point. Undefined otherwise.
 * Reads: Cluster ID, a size vint (canvascast writes "unknown"), then the Timecode element.
 */
export function clusterTimecode(bytes: Uint8Array): number | undefined {
  if (bytes.length < 7 || CLUSTER_ID.some((b, i) => bytes[i] !== b)) return undefined;
  let pos = CLUSTER_ID.length;
  const sizeLength = vintLength(bytes[pos]);
  if (sizeLength === undefined) return undefined;
  pos += sizeLength;
  if (bytes[pos] !== TIMECODE_ID) return undefined; // Timecode is the first child in our muxer; unknown layout: no hint
  pos++;
  const first = bytes[pos];
  const length = vintLength(first);
  if (first === undefined || length === undefined) return undefined;
  let dataSize = first & (0xff >> length);
  for (let i = 1; i < length; i++) dataSize = dataSize * 256 + (bytes[pos + i] ?? 0);
  pos += length;
  if (dataSize < 1 || dataSize > 8 || pos + dataSize > bytes.length) return undefined;
  let value = 0;
  for (let i = 0; i < dataSize; i++) value = value * 256 + (bytes[pos + i] ?? 0);
  return value;
}

const SAMPLE_IS_NON_SYNC = 0x0001_0000;

/**
 * When `bytes` starts an MP4 fragment (moof) whose first sample is a sync sample, its decode time
 * (tfdt; canvascast's timescale is ms). Reads moof → traf → tfdt and trun's first sample flags.
 */
export function syncFragmentTime(bytes: Uint8Array): number | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const boxes = (start: number, end: number): Map<string, [number, number]> => {
    const found = new Map<string, [number, number]>();
    for (let at = start; at + 8 <= end; ) {
      const size = view.getUint32(at);
      if (size < 8 || at + size > end) break;
      const type = String.fromCharCode(bytes[at + 4]!, bytes[at + 5]!, bytes[at + 6]!, bytes[at + 7]!);
      if (!found.has(type)) found.set(type, [at + 8, at + size]);
      at += size;
    }
    return found;
  };
  const moof = boxes(0, bytes.byteLength).get("moof");
  const traf = moof === undefined ? undefined : boxes(...moof).get("traf");
  if (traf === undefined) return undefined;
  const children = boxes(...traf);
  const tfdt = children.get("tfdt");
  const trun = children.get("trun");
  if (tfdt === undefined || trun === undefined || trun[1] - trun[0] < 12) return undefined;
  const time = bytes[tfdt[0]] === 1 ? view.getUint32(tfdt[0] + 4) * 2 ** 32 + view.getUint32(tfdt[0] + 8) : view.getUint32(tfdt[0] + 4);
  const flags = view.getUint32(trun[0]) & 0xff_ffff;
  let at = trun[0] + 8 + (flags & 0x1 ? 4 : 0);
  let sampleFlags: number | undefined;
  if (flags & 0x4) sampleFlags = view.getUint32(at); // first_sample_flags
  else if (flags & 0x400) {
    at += (flags & 0x100 ? 4 : 0) + (flags & 0x200 ? 4 : 0);
    if (at + 4 <= trun[1]) sampleFlags = view.getUint32(at);
  }
  return sampleFlags !== undefined && (sampleFlags & SAMPLE_IS_NON_SYNC) === 0 ? time : undefined;
}

/** Length of an EBML vint from its first byte (1–8), or undefined for 0x00. */
function vintLength(first: number | undefined): number | undefined {
  if (first === undefined || first === 0) return undefined;
  return Math.clz32(first) - 23;
}

type Operation =
  | { readonly kind: "append"; readonly data: ArrayBuffer }
  | { readonly kind: "remove"; readonly start: number; readonly end: number };

export interface MseSinkOptions {
  /** A failure the sink cannot get past: the owner should replace it. Called at most once. */
  readonly onError: (err: PlayerError) => void;
  /** An append finished (the buffered ranges changed). */
  readonly onAppended?: () => void;
}

export class MseSink {
  readonly #video: HTMLVideoElement;
  readonly #options: MseSinkOptions;
  readonly #mediaSource: MediaSource;
  readonly #listeners = new AbortController();
  #objectUrl: string | undefined;
  #sourceBuffer: SourceBuffer | undefined;
  readonly #queue: Operation[] = [];
  /** The SourceBuffer's MIME type, once known. */
  #type: string | undefined;
  /** Start times (s) of the keyframes (WebM clusters, MP4 sync fragments) appended and not yet removed, ascending. */
  #clusterStarts: number[] = [];
  /** Set after a QuotaExceededError freed space for the append at the head of the queue. */
  #quotaRetry = false;
  #failed = false;
  #closed = false;

  constructor(video: HTMLVideoElement, options: MseSinkOptions) {
    this.#video = video;
    this.#options = options;
    this.#mediaSource = new MediaSource();
    const signal = this.#listeners.signal;
    this.#mediaSource.addEventListener("sourceopen", () => this.#onSourceOpen(), { once: true, signal });
    this.#objectUrl = URL.createObjectURL(this.#mediaSource);
    video.src = this.#objectUrl;
  }

  /** The SourceBuffer exists and the MediaSource is open. */
  get open(): boolean {
    return !this.#closed && this.#sourceBuffer !== undefined && this.#mediaSource.readyState === "open";
  }

  /** Operations waiting for the SourceBuffer. */
  get queued(): number {
    return this.#queue.length;
  }

  /** The type the SourceBuffer is made for (the first call decides), e.g. `video/webm; codecs="vp8"`. */
  get type(): string | undefined {
    return this.#type;
  }

  /** Sets the SourceBuffer's type; later calls change nothing (a new type needs a new sink). */
  setType(mimeType: string): void {
    if (this.#closed || this.#type !== undefined) return;
    this.#type = mimeType;
    if (this.#mediaSource.readyState === "open") this.#addSourceBuffer();
  }

  /** Queues one message of the byte stream. Nothing is dropped: order matters. */
  append(data: ArrayBuffer): void {
    if (this.#closed || this.#failed) return;
    // An MP4 fragment's moof is 100 bytes in front of its sample; a WebM cluster's timecode comes in 32.
    const timecode = keyframeTimeMs(new Uint8Array(data, 0, Math.min(data.byteLength, 128)));
    if (timecode !== undefined) this.#clusterStarts.push(timecode / 1000);
    this.#queue.push({ kind: "append", data });
    this.#pump();
  }

  /**
   * Releases everything. With `detach`, the <video> is emptied (no `src`); without, the caller is
   * about to give it a new `src`, which detaches this MediaSource anyway. Safe to call twice.
   */
  close(detach: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.abort();
    this.#queue.length = 0;
    const sourceBuffer = this.#sourceBuffer;
    this.#sourceBuffer = undefined;
    if (sourceBuffer !== undefined && this.#mediaSource.readyState === "open" && sourceBuffer.updating) {
      try {
        sourceBuffer.abort();
      } catch {
        // Already detached: nothing left to stop.
      }
    }
    const url = this.#objectUrl;
    this.#objectUrl = undefined;
    if (detach) {
      this.#video.removeAttribute("src");
      this.#video.load();
    }
    if (url !== undefined) URL.revokeObjectURL(url);
  }

  #onSourceOpen(): void {
    if (this.#closed) return;
    // The element holds the MediaSource now; the URL is no longer needed.
    if (this.#objectUrl !== undefined) URL.revokeObjectURL(this.#objectUrl);
    this.#objectUrl = undefined;
    if (this.#type !== undefined) this.#addSourceBuffer();
  }

  #addSourceBuffer(): void {
    const type = this.#type;
    if (type === undefined || this.#sourceBuffer !== undefined) return;
    let sourceBuffer: SourceBuffer;
    try {
      sourceBuffer = this.#mediaSource.addSourceBuffer(type);
    } catch (err) {
      this.#fail(PlayerError.from(err, "CC_ERR_NO_MSE"));
      return;
    }
    this.#sourceBuffer = sourceBuffer;
    const signal = this.#listeners.signal;
    sourceBuffer.addEventListener("updateend", () => this.#onUpdateEnd(), { signal });
    sourceBuffer.addEventListener(
      "error",
      () => this.#fail(new PlayerError("CC_ERR_MEDIA", `SourceBuffer error: the browser rejected the ${type} data`)),
      { signal },
    );
    this.#pump();
  }

  #onUpdateEnd(): void {
    if (this.#closed) return;
    this.#options.onAppended?.();
    this.#trim();
    this.#pump();
  }

  /** Starts the next queued operation unless one is running. */
  #pump(): void {
    const sourceBuffer = this.#sourceBuffer;
    if (this.#closed || this.#failed || sourceBuffer === undefined || sourceBuffer.updating) return;
    if (this.#mediaSource.readyState !== "open") return;
    const op = this.#queue[0];
    if (op === undefined) return;
    try {
      if (op.kind === "append") sourceBuffer.appendBuffer(op.data);
      else sourceBuffer.remove(op.start, op.end);
      this.#queue.shift();
      if (op.kind === "append") this.#quotaRetry = false;
    } catch (err) {
      if (op.kind === "append" && isQuotaExceeded(err)) {
        this.#onQuotaExceeded();
        return;
      }
      this.#fail(PlayerError.from(err, "CC_ERR_MEDIA"));
    }
  }

  /** The append at the head of the queue did not fit: free space once, then retry it (from updateend). */
  #onQuotaExceeded(): void {
    const sourceBuffer = this.#sourceBuffer;
    const end = this.#quotaRetry ? undefined : this.#removableBefore(this.#video.currentTime - QUOTA_KEEP_BEHIND_S);
    if (sourceBuffer === undefined || end === undefined) {
      this.#fail(new PlayerError("CC_ERR_QUOTA", "SourceBuffer full (QuotaExceededError) with nothing left to remove"));
      return;
    }
    this.#quotaRetry = true;
    try {
      sourceBuffer.remove(0, end);
      this.#forgetClustersBefore(end);
    } catch (err) {
      this.#fail(PlayerError.from(err, "CC_ERR_MEDIA"));
    }
  }

  /** Queues the removal of media well behind the playhead (ahead of the pending appends). */
  #trim(): void {
    if (this.#queue[0]?.kind === "remove") return;
    const buffered = this.#sourceBuffer?.buffered;
    if (buffered === undefined || buffered.length === 0) return;
    const end = this.#removableBefore(this.#video.currentTime - KEEP_BEHIND_S);
    if (end === undefined || end - buffered.start(0) < MIN_REMOVE_S) return;
    this.#queue.unshift({ kind: "remove", start: 0, end });
    this.#forgetClustersBefore(end);
  }

  /** The latest cluster start at or before `time`, if any is later than the start of the buffer. */
  #removableBefore(time: number): number | undefined {
    let best: number | undefined;
    for (const start of this.#clusterStarts) {
      if (start > time) break;
      best = start;
    }
    const buffered = this.#sourceBuffer?.buffered;
    if (best === undefined || buffered === undefined || buffered.length === 0 || best <= buffered.start(0)) return undefined;
    return best;
  }

  #forgetClustersBefore(time: number): void {
    this.#clusterStarts = this.#clusterStarts.filter((t) => t >= time);
  }

  #fail(err: PlayerError): void {
    if (this.#failed || this.#closed) return;
    this.#failed = true;
    this.#queue.length = 0;
    this.#options.onError(err);
  }
}

function isQuotaExceeded(err: unknown): boolean {
  return err instanceof DOMException && err.name === "QuotaExceededError";
}
