// JSON shapes of the HTTP API (`GET /api/streams`), shared by the server and the dashboard.

import type { MseContainer } from "./mse.js";
import type { EncodingName, SkipCounts, StreamState } from "./protocol.js";

/** Where a stream plays through MSE (shared/mse.ts): its socket path and the SourceBuffer's type. */
export interface MseInfo {
  /** `/webm/<stream>` (VP8, VP9, AV1) or `/mp4/<stream>` (H.264), percent-encoded as a URL path. */
  readonly path: string;
  readonly container: MseContainer;
  /** For `MediaSource.isTypeSupported` and `addSourceBuffer`, e.g. `video/mp4; codecs="avc1.42C01E"`. */
  readonly mimeType: string;
}

/** One connected viewer, as the server sees it. */
export interface ViewerInfo {
  readonly id: number;
  /** "ws": frame protocol on /ws/; "webm": WebM for MSE on /webm/; "mp4": fragmented MP4 for MSE on /mp4/. All get the same flow control. */
  readonly mode: "ws" | "webm" | "mp4";
  /** The encoding it watches (`?encoding=`). */
  readonly encoding: EncodingName;
  readonly remote: string;
  readonly connectedAt: number;
  /**
   * How long the viewer will take to read what it was sent, ms, measured by flow-control pings:
   * at least the age of its oldest unanswered probe (docs/protocol.md, Flow control).
   */
  readonly lagMs: number;
  /** It has sent acks (optional in the protocol). */
  readonly acks: boolean;
  /** What it reads, as a share of the stream's bitrate, when measured (1 = keeps up, or not measured). */
  readonly readRate: number;
  readonly paused: boolean;
  readonly framesSent: number;
  readonly bytesSent: number;
  readonly bufferedBytes: number;
  readonly skipped: SkipCounts;
}

/** On an edge: how one encoding comes from its origin over NATS. */
export interface RelayInfo {
  /** Subscribed to the origin's frames (only while the encoding has viewers, and a few seconds after). */
  readonly subscribed: boolean;
  /** Frames received from the origin since the edge started. */
  readonly framesIn: number;
  /** Frames lost between the origin and the edge (gaps in the origin's sequence numbers). */
  readonly framesLost: number;
  /** The hop, ms: this edge's clock when a frame is handed to its viewers minus the frame's server time (the origin's clock). Over the last 1024 frames; null before any. */
  readonly hopMsP50: number | null;
  readonly hopMsP99: number | null;
}

/** One encoding of a stream: what `/ws/<stream>?encoding=<name>` and its MSE path carry. */
export interface EncodingInfo {
  readonly name: EncodingName;
  /** Configured size and rate; the live caps, once known, replace them. */
  readonly width: number;
  readonly height: number;
  readonly framerate: number;
  /** Target bitrate, kbit/s. */
  readonly targetKbps: number;
  /** Measured over the last few seconds. */
  readonly fps: number;
  readonly kbps: number;
  /** On an edge: how it comes from the origin. */
  readonly relay?: RelayInfo;
  /** Its viewers, /ws/ and MSE together, and how many of them are paused. */
  readonly viewers: number;
  readonly pausedViewers: number;
  readonly framesIn: number;
  /** Frames in its GOP cache. */
  readonly gopFrames: number;
}

/** The stream's top-level size, rate, bitrates, framesIn and gopFrames are its full encoding's. */
export interface StreamInfo {
  readonly name: string;
  readonly state: StreamState;
  /** Why the stream is not live (the pipeline's error text), when it is not. */
  readonly reason?: string;
  /** Operator-facing description of the source, e.g. "test pattern" or "v4l2:/dev/video0". */
  readonly source: string;
  /** On an edge: the origin it follows (its id on NATS); absent on an origin or a lone server. */
  readonly origin?: string;
  /** Configured size and rate. The live caps, once known, replace them. */
  readonly width: number;
  readonly height: number;
  readonly framerate: number;
  /** Target bitrate, kbit/s. */
  readonly targetKbps: number;
  readonly keyframeIntervalS: number;
  /** The WebCodecs codec string hello says (docs/protocol.md, Codecs). */
  readonly codec: string;
  /** Its MSE path and type; null for a codec no MSE container here carries. */
  readonly mse: MseInfo | null;
  /** Measured over the last few seconds. */
  readonly fps: number;
  readonly kbps: number;
  /** Viewers of every encoding. */
  readonly viewers: number;
  readonly framesIn: number;
  /** Frames in the GOP cache (last keyframe and the frames since). */
  readonly gopFrames: number;
  /** Frames not sent to viewers, summed over every viewer this stream has had (every encoding), by reason. */
  readonly skipped: SkipCounts;
  /** Times the pipeline was (re)started after the first start. */
  readonly restarts: number;
  /** The running pipeline's process id, when one runs. */
  readonly pipelinePid?: number;
  /** Every encoding it has, "full" first; one pipeline process encodes them all. */
  readonly encodings: readonly EncodingInfo[];
  /** Viewers of every encoding. */
  readonly clients: readonly ViewerInfo[];
  /** Present when the stream is recorded. */
  readonly recording?: RecordingInfo;
}

/**
 * A recorder's state: `recording` (a segment is open), `waiting` (for a keyframe to start one at),
 * `error` (it cannot write: `reason` says why; it tries again every few seconds).
 */
export const RECORDING_STATES = ["recording", "waiting", "error"] as const;
export type RecordingState = (typeof RECORDING_STATES)[number];

export interface RecordingInfo {
  readonly state: RecordingState;
  /** Why it is in error, e.g. "ENOSPC: no space left on device". */
  readonly reason?: string;
  readonly segments: number;
  /** Bytes of every segment kept. */
  readonly bytes: number;
  /** Wall clock (ISO 8601) of the oldest recorded frame kept; absent with nothing recorded. */
  readonly oldest?: string;
  /** Frames not recorded because the disk could not keep up, or could not be written. */
  readonly framesDropped: number;
  readonly segmentSeconds: number;
  readonly retain: { readonly hours: number | null; readonly maxBytes: number | null };
}

/** A recorded time range (wall clock, ISO 8601); between two ranges nothing was recorded. */
export interface RecordedRange {
  readonly start: string;
  readonly end: string;
}

/** One segment file: `url` plays in a <video> (HTTP Range supported). */
export interface RecordedSegment {
  readonly id: string;
  readonly url: string;
  readonly start: string;
  readonly end: string;
  readonly durationMs: number;
  readonly frames: number;
  readonly bytes: number;
  /** The WebCodecs codec string of its video. */
  readonly codec: string;
  readonly mimeType: "video/webm" | "video/mp4";
  /** `open`: being written (readable up to its last complete cluster or fragment); `partial`: cut short. */
  readonly status: "open" | "finished" | "partial";
}

/** `GET /api/streams/<name>/recordings`. */
export interface RecordingsResponse {
  readonly stream: string;
  readonly recording: RecordingInfo;
  readonly ranges: readonly RecordedRange[];
  readonly segments: readonly RecordedSegment[];
}

/** Something the operator should fix, e.g. `CC_WARN_OPEN_TO_NETWORK` (no token while listening beyond loopback). */
export interface ServerWarning {
  readonly code: string;
  readonly message: string;
}

export interface StreamsResponse {
  /** The streams the request's token may see (every stream when no tokens are configured). */
  readonly streams: readonly StreamInfo[];
  /** Start-up warnings for the dashboard's banner; empty when all is well. */
  readonly warnings: readonly ServerWarning[];
}
