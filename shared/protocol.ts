// canvascast frame protocol v1, shared by the server and the browser. docs/protocol.md is the spec.
// Everything here works on Uint8Array/DataView so it runs unchanged in Node and in the browser.

import type { Micros, Millis } from "./units.js";

export const PROTOCOL_VERSION = 1;

/** Byte layout of the v1 binary frame header (little-endian). */
export const FrameHeader = {
  KIND: 0,
  FLAGS: 1,
  HEADER_LENGTH: 2,
  SEQUENCE: 4,
  PTS_US: 8,
  SERVER_TIME_MS: 16,
  /** Length of the header this implementation writes. Readers skip any extra bytes. */
  SIZE: 24,
} as const;

export const MessageKind = {
  VIDEO_FRAME: 1,
} as const;

export const FrameFlag = {
  KEYFRAME: 1 << 0,
  /** Sent from the GOP cache at join or resync: decode it, paint only the newest. */
  REPLAY: 1 << 1,
  /** First frame after a gap or a pipeline restart. */
  DISCONTINUITY: 1 << 2,
  /** From the stream's recording (after a seek), not live: its server time is when it was recorded. */
  RECORDED: 1 << 3,
} as const;

/** WebSocket close codes the server uses. Stable: clients act on them. */
export const CloseCode = {
  /** Server shutting down. */
  GOING_AWAY: 1001,
  /** The client sent a binary message; v1 clients send only JSON text. */
  UNSUPPORTED_DATA: 1003,
  /** A client message above the size limit (sent by `ws` itself). */
  MESSAGE_TOO_BIG: 1009,
  /** The server failed handling this socket's message (a server bug); only this socket is closed. Reason: `CC_ERR_INTERNAL: …`. */
  INTERNAL_ERROR: 1011,
  /** Malformed client message: not JSON, not an object, unknown type, bad field. */
  BAD_MESSAGE: 4400,
  /** No stream of that name. */
  UNKNOWN_STREAM: 4404,
  /** The stream has no encoding of the name asked for (`?encoding=`). Reason: `CC_ERR_UNKNOWN_ENCODING: …`, naming those it has. */
  UNKNOWN_ENCODING: 4406,
  /** A viewer that does not ack kept more than the hard limit queued for longer than the grace period. */
  TOO_SLOW: 4408,
  /** MSE (/webm/, /mp4/) only: the pipeline came back with another picture size or codec; reconnect for a new init segment. */
  FORMAT_CHANGED: 4409,
  /**
   * MSE (/webm/, /mp4/): the stream's codec plays in the other container. Reason:
   * `CC_ERR_WRONG_PATH: …`, naming the path (WebM on /webm/ for VP8, VP9, AV1; MP4 on /mp4/ for H.264).
   */
  WRONG_CONTAINER: 4415,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** Largest client→server text message the server accepts, in bytes. */
export const MAX_CLIENT_MESSAGE_BYTES = 4096;

export interface VideoFrameHeader {
  readonly flags: number;
  /** Per-stream sequence number, u32, wraps. */
  readonly seq: number;
  readonly pts: Micros;
  /** Server wall clock when the frame's last byte was read from the pipeline. */
  readonly serverTime: Millis;
}

export type BinaryMessage =
  | { readonly kind: "video"; readonly header: VideoFrameHeader; readonly data: Uint8Array }
  | { readonly kind: "unknown"; readonly kindByte: number };

export type ProtocolErrorCode =
  | "CC_ERR_SHORT_MESSAGE"
  | "CC_ERR_BAD_HEADER_LENGTH"
  | "CC_ERR_BAD_JSON"
  | "CC_ERR_BAD_MESSAGE";

export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export const isKeyframe = (h: VideoFrameHeader): boolean => (h.flags & FrameFlag.KEYFRAME) !== 0;
export const isReplay = (h: VideoFrameHeader): boolean => (h.flags & FrameFlag.REPLAY) !== 0;
export const isRecorded = (h: VideoFrameHeader): boolean => (h.flags & FrameFlag.RECORDED) !== 0;

/** Next sequence number: u32 arithmetic, wraps to 0. */
export const nextSeq = (seq: number): number => (seq + 1) >>> 0;

/** Writes a header into the first FrameHeader.SIZE bytes of `target`. */
export function writeFrameHeader(target: Uint8Array, header: VideoFrameHeader): void {
  if (target.byteLength < FrameHeader.SIZE) {
    throw new RangeError(`frame header needs ${FrameHeader.SIZE} bytes, got ${target.byteLength}`);
  }
  const view = new DataView(target.buffer, target.byteOffset, FrameHeader.SIZE);
  view.setUint8(FrameHeader.KIND, MessageKind.VIDEO_FRAME);
  view.setUint8(FrameHeader.FLAGS, header.flags & 0xff);
  view.setUint16(FrameHeader.HEADER_LENGTH, FrameHeader.SIZE, true);
  view.setUint32(FrameHeader.SEQUENCE, header.seq >>> 0, true);
  view.setFloat64(FrameHeader.PTS_US, header.pts, true);
  view.setFloat64(FrameHeader.SERVER_TIME_MS, header.serverTime, true);
}

/** One binary message: header then the encoded frame, in a single allocation. */
export function encodeVideoFrame(header: VideoFrameHeader, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(FrameHeader.SIZE + data.byteLength);
  writeFrameHeader(out, header);
  out.set(data, FrameHeader.SIZE);
  return out;
}

/** Decodes a binary message. `data` is a view into `message`, not a copy. */
export function decodeBinaryMessage(message: ArrayBuffer | Uint8Array): BinaryMessage {
  const bytes = message instanceof Uint8Array ? message : new Uint8Array(message);
  if (bytes.byteLength < 4) {
    throw new ProtocolError("CC_ERR_SHORT_MESSAGE", `binary message of ${bytes.byteLength} bytes`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const kind = view.getUint8(FrameHeader.KIND);
  if (kind !== MessageKind.VIDEO_FRAME) return { kind: "unknown", kindByte: kind };
  const headerLength = view.getUint16(FrameHeader.HEADER_LENGTH, true);
  if (headerLength < FrameHeader.SIZE) {
    throw new ProtocolError("CC_ERR_BAD_HEADER_LENGTH", `header length ${headerLength} < ${FrameHeader.SIZE}`);
  }
  if (bytes.byteLength < headerLength) {
    throw new ProtocolError(
      "CC_ERR_SHORT_MESSAGE",
      `header length ${headerLength} but message has ${bytes.byteLength} bytes`,
    );
  }
  return {
    kind: "video",
    header: {
      flags: view.getUint8(FrameHeader.FLAGS),
      seq: view.getUint32(FrameHeader.SEQUENCE, true),
      pts: view.getFloat64(FrameHeader.PTS_US, true) as Micros,
      serverTime: view.getFloat64(FrameHeader.SERVER_TIME_MS, true) as Millis,
    },
    data: bytes.subarray(headerLength),
  };
}

// ---------------------------------------------------------------------------------------------
// JSON messages

export const STREAM_STATES = ["starting", "live", "restarting", "offline"] as const;
export type StreamState = (typeof STREAM_STATES)[number];

/** Why frames were not sent to a viewer. */
export const SKIP_REASONS = ["lagging", "buffer-full"] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];
export type SkipCounts = Readonly<Record<SkipReason, number>>;

/**
 * The encodings a stream can have: "full" (its configured size, every stream has it) and "tile" (a
 * smaller one for grids of players, where configured). A viewer picks one with `?encoding=`.
 */
export const ENCODINGS = ["full", "tile"] as const;
export type EncodingName = (typeof ENCODINGS)[number];
export const isEncodingName = (v: unknown): v is EncodingName => ENCODINGS.includes(v as EncodingName);

export interface HelloMessage {
  readonly type: "hello";
  readonly protocol: typeof PROTOCOL_VERSION;
  readonly stream: string;
  /** The encoding this connection carries (docs/protocol.md, Encodings); width, height and framerate are its own. */
  readonly encoding: EncodingName;
  /**
   * The WebCodecs codec string of the frames (docs/protocol.md, Codecs): "vp8", "vp09.PP.LL.DD",
   * "av01.P.LLT.DD" or "avc1.PPCCLL". A client that cannot decode it says so rather than guess.
   */
  readonly codec: string;
  readonly width: number;
  readonly height: number;
  readonly framerate: number;
  /** Server wall clock when hello was sent, ms since the epoch. */
  readonly serverTime: number;
}

export interface StateMessage {
  readonly type: "state";
  readonly state: StreamState;
  /** Why, when the state is not live (e.g. the pipeline's error text). */
  readonly reason?: string;
  /** When restarting or offline: the next attempt to start the pipeline, in ms. */
  readonly retryInMs?: number;
}

/** Sent right before the keyframe that ends a gap: this viewer was not sent `frames` frames. */
export interface SkippedMessage {
  readonly type: "skipped";
  readonly reason: SkipReason;
  readonly frames: number;
  /** The viewer's lag when the gap began, ms. */
  readonly lagMs: number;
}

/** The server's view of this viewer, about once a second while frames flow. */
export interface ViewerStatsMessage {
  readonly type: "stats";
  /**
   * How far behind the viewer is, ms: from the oldest frame sent to it and not yet acked to the
   * newest frame sent (0 when it has acked everything); null before its first ack.
   */
  readonly lagMs: number | null;
  readonly framesSent: number;
  readonly skipped: SkipCounts;
}

/** Reply to a client's `clock` message: its time echoed, and the server's when it answered. */
export interface ClockReplyMessage {
  readonly type: "clock";
  /** The client's `t`, echoed. */
  readonly t: number;
  /** Server wall clock when it answered, ms since the epoch. */
  readonly serverTime: number;
}

/**
 * What this connection plays: the recording from `at` (after a seek; the frames that follow are
 * flagged recorded) or live (after `live`, at the end of the recording, or when a seek cannot be
 * served: then `error` and `message` say why).
 */
export interface PlaybackMessage {
  readonly type: "playback";
  readonly mode: "recorded" | "live";
  /** mode recorded: the wall clock (ms since the epoch) of the first frame sent, the keyframe at or before the time asked for. */
  readonly at?: number;
  /**
   * A seek that could not be served: CC_ERR_NOT_RECORDED (the stream is not recorded), CC_ERR_NO_RECORDING (nothing
   * recorded then or after), CC_ERR_RECORDING_UNREACHABLE (an edge could not reach the origin that records it).
   */
  readonly error?: PlaybackErrorCode | (string & {});
  readonly message?: string;
}

export const PLAYBACK_ERRORS = ["CC_ERR_NOT_RECORDED", "CC_ERR_NO_RECORDING", "CC_ERR_RECORDING_UNREACHABLE"] as const;
export type PlaybackErrorCode = (typeof PLAYBACK_ERRORS)[number];

export type ServerMessage = HelloMessage | StateMessage | SkippedMessage | ViewerStatsMessage | ClockReplyMessage | PlaybackMessage;
/** A server message this client does not know; ignored, never fatal. */
export interface UnknownServerMessage {
  readonly type: "unknown";
  readonly raw: unknown;
}

export interface AckMessage {
  readonly type: "ack";
  /** Newest frame sequence number received. */
  readonly seq: number;
}

/** Stop sending frames (the page is hidden). The server sends no frames until resume. */
export interface PauseMessage {
  readonly type: "pause";
}

/** Start sending again: the server replays the cached GOP, then live frames. */
export interface ResumeMessage {
  readonly type: "resume";
}

/** Replay the cached GOP to this viewer now (its decoder was reset), then live frames. */
export interface ResyncMessage {
  readonly type: "resync";
}

/**
 * Asks the server for its clock, to estimate the offset between the clocks (NTP-style: the
 * server's time is taken to be at the midpoint of the round trip), so latency from the header's
 * server time is right from another machine too.
 */
export interface ClockMessage {
  readonly type: "clock";
  /** The client's clock when sent, in any unit it likes (echoed back). */
  readonly t: number;
}

/** Play the stream's recording from the last keyframe at or before `at`, at real time. */
export interface SeekMessage {
  readonly type: "seek";
  /** Wall clock, ms since the Unix epoch. */
  readonly at: number;
}

/** Back to live at once (the cached GOP, then live frames). */
export interface LiveMessage {
  readonly type: "live";
}

export type ClientMessage = AckMessage | PauseMessage | ResumeMessage | ResyncMessage | ClockMessage | SeekMessage | LiveMessage;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** JSON text → an object with a string `type`, or a ProtocolError. */
function parseTypedObject(text: string, what: string): Record<string, unknown> & { type: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ProtocolError("CC_ERR_BAD_JSON", `${what} is not JSON`);
  }
  if (!isRecord(raw) || typeof raw.type !== "string") {
    throw new ProtocolError("CC_ERR_BAD_MESSAGE", `${what} is not an object with a string type`);
  }
  return raw as Record<string, unknown> & { type: string };
}

const isCount = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;
const isNonNegative = (v: unknown): v is number => typeof v === "number" && v >= 0 && Number.isFinite(v);

/** A WebCodecs codec string: what a client knows of it is its own business (codecOfString in codec.ts). */
const isCodecString = (v: unknown): v is string => typeof v === "string" && /^[A-Za-z0-9.]{1,64}$/.test(v);

const isDimension = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0 && (v as number) <= 16384;

/** Parses a server text message. Unknown types decode as `unknown`; malformed known ones throw. */
export function parseServerMessage(text: string): ServerMessage | UnknownServerMessage {
  const raw = parseTypedObject(text, "server message");
  switch (raw.type) {
    case "hello": {
      const { protocol, stream, codec, width, height, framerate, serverTime } = raw;
      // Servers from before encodings sent none: theirs was the full one.
      const encoding = raw.encoding ?? "full";
      if (
        protocol !== PROTOCOL_VERSION ||
        typeof stream !== "string" ||
        !isEncodingName(encoding) ||
        !isCodecString(codec) ||
        !isDimension(width) ||
        !isDimension(height) ||
        typeof framerate !== "number" ||
        !(framerate > 0) ||
        typeof serverTime !== "number"
      ) {
        throw new ProtocolError("CC_ERR_BAD_MESSAGE", "malformed hello");
      }
      return { type: "hello", protocol, stream, encoding, codec, width, height, framerate, serverTime };
    }
    case "state": {
      const { state, reason, retryInMs } = raw;
      if (
        !STREAM_STATES.includes(state as StreamState) ||
        (reason !== undefined && typeof reason !== "string") ||
        (retryInMs !== undefined && !isNonNegative(retryInMs))
      ) {
        throw new ProtocolError("CC_ERR_BAD_MESSAGE", "malformed state");
      }
      return {
        type: "state",
        state: state as StreamState,
        ...(reason !== undefined ? { reason } : {}),
        ...(retryInMs !== undefined ? { retryInMs } : {}),
      };
    }
    case "skipped": {
      const { reason, frames, lagMs } = raw;
      if (!SKIP_REASONS.includes(reason as SkipReason) || !isCount(frames) || !isNonNegative(lagMs)) {
        throw new ProtocolError("CC_ERR_BAD_MESSAGE", "malformed skipped");
      }
      return { type: "skipped", reason: reason as SkipReason, frames, lagMs };
    }
    case "clock": {
      const { t, serverTime } = raw;
      if (typeof t !== "number" || typeof serverTime !== "number") throw new ProtocolError("CC_ERR_BAD_MESSAGE", "malformed clock");
      return { type: "clock", t, serverTime };
    }
    case "stats": {
      const { lagMs, framesSent, skipped } = raw;
      if (
        (lagMs !== null && typeof lagMs !== "number") ||
        !isCount(framesSent) ||
        !isRecord(skipped) ||
        !SKIP_REASONS.every((r) => isCount(skipped[r]))
      ) {
        throw new ProtocolError("CC_ERR_BAD_MESSAGE", "malformed stats");
      }
      const counts = Object.fromEntries(SKIP_REASONS.map((r) => [r, skipped[r] as number])) as Record<SkipReason, number>;
      return { type: "stats", lagMs, framesSent, skipped: counts };
    }
    case "playback": {
      const { mode, at, error, message } = raw;
      if (
        (mode !== "recorded" && mode !== "live") ||
        (at !== undefined && !isNonNegative(at)) ||
        (error !== undefined && typeof error !== "string") ||
        (message !== undefined && typeof message !== "string")
      ) {
        throw new ProtocolError("CC_ERR_BAD_MESSAGE", "malformed playback");
      }
      return {
        type: "playback",
        mode,
        ...(at !== undefined ? { at } : {}),
        ...(error !== undefined ? { error } : {}),
        ...(message !== undefined ? { message } : {}),
      };
    }
    default:
      return { type: "unknown", raw };
  }
}

/** Parses a client text message strictly: the server closes the socket on any error. */
export function parseClientMessage(text: string): ClientMessage {
  const raw = parseTypedObject(text, "message");
  switch (raw.type) {
    case "ack": {
      const { seq } = raw;
      if (!Number.isInteger(seq) || (seq as number) < 0 || (seq as number) > 0xffffffff) {
        throw new ProtocolError("CC_ERR_BAD_MESSAGE", "ack.seq must be a u32");
      }
      return { type: "ack", seq: seq as number };
    }
    case "pause":
    case "resume":
    case "resync":
    case "live":
      return { type: raw.type };
    case "seek": {
      const { at } = raw;
      if (typeof at !== "number" || !Number.isFinite(at) || at < 0) throw new ProtocolError("CC_ERR_BAD_MESSAGE", "seek.at must be a wall-clock time in ms since the epoch");
      return { type: "seek", at };
    }
    case "clock": {
      const { t } = raw;
      if (typeof t !== "number" || !Number.isFinite(t)) throw new ProtocolError("CC_ERR_BAD_MESSAGE", "clock.t must be a finite number");
      return { type: "clock", t };
    }
    default:
      throw new ProtocolError("CC_ERR_BAD_MESSAGE", `unknown message type ${JSON.stringify(raw.type).slice(0, 40)}`);
  }
}
