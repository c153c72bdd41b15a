// What origins and edges say to each other over NATS (docs/protocol.md, "Relay between origins and edges",
// is the spec: an edge or origin in another language can be written from it). Frames travel as the
// frame protocol's own binary messages, the bytes a /ws/ viewer is sent live; hello and state as
// its JSON messages, on the same subject so that they keep their order with the frames.
//
//   PREFIX.frames.STREAM.ENCODING.ORIGIN   frames, hello and state of one encoding, from one origin
//   PREFIX.gop.STREAM.ENCODING             request {"origin"}: that origin replies with its GOP cache
//   PREFIX.announce                        each origin's streams, every second; "bye" when it stops
//   PREFIX.discover                        request: every origin replies with its announcement
//   PREFIX.recordings.STREAM               request {"origin","query"}: that origin replies with the recordings list
//   PREFIX.playback.STREAM                 request {"origin","at","firstSeq"}: that origin plays its recording to
//                                          the reply subject ("opened" or "refused", then hello, playback, frames,
//                                          "ended"); the edge sends "status" (each 500 ms) and "stop" to "control"
//   PREFIX.segment.STREAM                  request {"origin","file","offset","length"}: that origin replies with
//                                          the segment's size and type and up to SEGMENT_CHUNK_BYTES of it

import { z } from "zod";
import { RECORDING_STATES, type RecordingsResponse } from "../../shared/api.js";
import { ENCODINGS, PLAYBACK_ERRORS, STREAM_STATES, parseServerMessage, type EncodingName, type HelloMessage, type StateMessage } from "../../shared/protocol.js";
import { STREAM_NAME } from "../config-file.js";

/** How often an origin announces its streams. */
export const ANNOUNCE_INTERVAL_MS = 1000;

/** An origin's id: one per process run, a NATS subject token. */
export const ORIGIN_ID = /^[A-Za-z0-9_-]{1,64}$/;

export class RelaySubjects {
  constructor(readonly prefix: string) {}

  frames(stream: string, encoding: EncodingName, origin: string): string {
    return `${this.prefix}.frames.${stream}.${encoding}.${origin}`;
  }

  /** Every origin's frames of one encoding (an edge follows one origin at a time: the subject's last token). */
  framesOfAnyOrigin(stream: string, encoding: EncodingName): string {
    return `${this.prefix}.frames.${stream}.${encoding}.*`;
  }

  gop(stream: string, encoding: EncodingName): string {
    return `${this.prefix}.gop.${stream}.${encoding}`;
  }

  /** Every GOP request (an origin answers those for its own streams). */
  get anyGop(): string {
    return `${this.prefix}.gop.*.*`;
  }

  recordings(stream: string): string {
    return `${this.prefix}.recordings.${stream}`;
  }

  get anyRecordings(): string {
    return `${this.prefix}.recordings.*`;
  }

  playback(stream: string): string {
    return `${this.prefix}.playback.${stream}`;
  }

  get anyPlayback(): string {
    return `${this.prefix}.playback.*`;
  }

  segment(stream: string): string {
    return `${this.prefix}.segment.${stream}`;
  }

  get anySegment(): string {
    return `${this.prefix}.segment.*`;
  }

  /** The stream a recordings or playback request names (the subject's last token); null for none. */
  streamOf(subject: string): string | null {
    const stream = subject.slice(subject.lastIndexOf(".") + 1);
    return STREAM_NAME.test(stream) ? stream : null;
  }

  get announce(): string {
    return `${this.prefix}.announce`;
  }

  get discover(): string {
    return `${this.prefix}.discover`;
  }

  /** The origin of a frames subject; null for a subject that is not one. */
  originOfFrames(subject: string): string | null {
    const origin = subject.slice(subject.lastIndexOf(".") + 1);
    return ORIGIN_ID.test(origin) ? origin : null;
  }

  /** The stream and encoding a GOP request names; null for one that names none. */
  parseGop(subject: string): { stream: string; encoding: EncodingName } | null {
    const parts = subject.slice(this.prefix.length + 1).split(".");
    if (parts.length !== 3 || parts[0] !== "gop") return null;
    const [, stream = "", encoding = ""] = parts;
    return STREAM_NAME.test(stream) && (ENCODINGS as readonly string[]).includes(encoding) ? { stream, encoding: encoding as EncodingName } : null;
  }
}

const EncodingName = z.enum(ENCODINGS);
const State = z.enum(STREAM_STATES);

const AnnouncedEncodingSchema = z.object({
  name: EncodingName,
  width: z.int().min(1).max(16384),
  height: z.int().min(1).max(16384),
  framerate: z.number().min(0).max(1000),
  targetKbps: z.number().min(0),
  codec: z.string().min(1).max(64),
  fps: z.number().min(0),
  kbps: z.number().min(0),
});

const RecordingInfoSchema = z.object({
  state: z.enum(RECORDING_STATES),
  reason: z.string().max(1024).optional(),
  segments: z.int().min(0),
  bytes: z.number().min(0),
  oldest: z.string().max(64).optional(),
  framesDropped: z.number().min(0),
  segmentSeconds: z.number().min(0),
  retain: z.object({ hours: z.number().min(0).nullable(), maxBytes: z.number().min(0).nullable() }),
});

const AnnouncedStreamSchema = z.object({
  name: z.string().regex(STREAM_NAME),
  source: z.string().max(512),
  keyframeIntervalS: z.number().min(0),
  restarts: z.int().min(0),
  state: State,
  reason: z.string().max(1024).optional(),
  retryInMs: z.number().min(0).optional(),
  encodings: z.array(AnnouncedEncodingSchema).min(1).max(ENCODINGS.length),
  /** Present when the origin records the stream. */
  recording: RecordingInfoSchema.optional(),
});

const AnnounceSchema = z.object({
  type: z.literal("announce"),
  origin: z.string().regex(ORIGIN_ID),
  intervalMs: z.number().min(50).max(60_000),
  streams: z.array(AnnouncedStreamSchema).max(10_000),
});

const ByeSchema = z.object({ type: z.literal("bye"), origin: z.string().regex(ORIGIN_ID) });

const GopRequestSchema = z.object({ origin: z.string().regex(ORIGIN_ID) });

const GopHeadSchema = z.object({
  type: z.literal("gop"),
  origin: z.string().regex(ORIGIN_ID),
  frames: z.int().min(0).max(100_000),
  hello: z.unknown(),
  state: z.unknown(),
});

const RecordingsRequestSchema = z.object({ origin: z.string().regex(ORIGIN_ID), query: z.string().max(1024) });

const PlaybackRequestSchema = z.object({ origin: z.string().regex(ORIGIN_ID), at: z.number().finite(), firstSeq: z.int().min(0).max(0xffff_ffff) });

const Refused = z.object({ type: z.literal("refused"), error: z.enum(PLAYBACK_ERRORS), message: z.string().max(1024) });

const RecordingsReplySchema = z.union([z.object({ type: z.literal("recordings"), body: z.looseObject({ stream: z.string() }) }), Refused]);

/** What an origin sends first on a playback's reply subject. */
const PlaybackOpenedSchema = z.union([z.object({ type: z.literal("opened"), control: z.string().min(1).max(256) }), Refused]);

const PlaybackEndedSchema = z.object({ type: z.literal("ended"), reason: z.enum(["end", "none"]), message: z.string().max(1024).optional() });

const PlaybackControlSchema = z.union([z.object({ type: z.literal("status"), buffered: z.number().min(0) }), z.object({ type: z.literal("stop") })]);

/** The most of a segment file one reply carries (below NATS's default max_payload of 1 MiB). */
export const SEGMENT_CHUNK_BYTES = 512 * 1024;

const SegmentRequestSchema = z.object({
  origin: z.string().regex(ORIGIN_ID),
  file: z.string().min(1).max(256),
  offset: z.int().min(0),
  length: z.int().min(0).max(SEGMENT_CHUNK_BYTES),
});

const SegmentHeadSchema = z.union([
  z.object({ type: z.literal("chunk"), size: z.int().min(0), mimeType: z.string().max(64), finished: z.boolean(), offset: z.int().min(0) }),
  z.object({ type: z.literal("refused"), error: z.literal("CC_ERR_NO_SEGMENT"), message: z.string().max(1024) }),
]);

export type SegmentRequest = z.infer<typeof SegmentRequestSchema>;
export type SegmentHead = z.infer<typeof SegmentHeadSchema>;
export const parseSegmentRequest = (data: Uint8Array): SegmentRequest | null => parsed(SegmentRequestSchema, data);

/** A segment reply: u32 (little-endian) length of the JSON head, the head, then the chunk's bytes. */
export function encodeSegmentReply(head: SegmentHead, bytes: Uint8Array = new Uint8Array(0)): Uint8Array {
  const json = encodeJson(head);
  const out = new Uint8Array(4 + json.byteLength + bytes.byteLength);
  new DataView(out.buffer).setUint32(0, json.byteLength, true);
  out.set(json, 4);
  out.set(bytes, 4 + json.byteLength);
  return out;
}

export function parseSegmentReply(data: Uint8Array): { head: SegmentHead; bytes: Uint8Array } | null {
  if (data.byteLength < 4) return null;
  const n = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0, true);
  if (4 + n > data.byteLength) return null;
  const head = parsed(SegmentHeadSchema, data.subarray(4, 4 + n));
  return head === null ? null : { head, bytes: data.subarray(4 + n) };
}

export type RecordingsRequest = z.infer<typeof RecordingsRequestSchema>;
export type RecordingsReply = { readonly type: "recordings"; readonly body: RecordingsResponse } | z.infer<typeof Refused>;
export type PlaybackRequest = z.infer<typeof PlaybackRequestSchema>;
export type PlaybackOpened = z.infer<typeof PlaybackOpenedSchema>;
export type PlaybackEnded = z.infer<typeof PlaybackEndedSchema>;
export type PlaybackControlMessage = z.infer<typeof PlaybackControlSchema>;

export const parseRecordingsRequest = (data: Uint8Array): RecordingsRequest | null => parsed(RecordingsRequestSchema, data);
export const parsePlaybackRequest = (data: Uint8Array): PlaybackRequest | null => parsed(PlaybackRequestSchema, data);
export const parsePlaybackControl = (data: Uint8Array): PlaybackControlMessage | null => parsed(PlaybackControlSchema, data);
// The origin's body is its HTTP API's answer, relayed as it is.
export const parseRecordingsReply = (data: Uint8Array): RecordingsReply | null => parsed(RecordingsReplySchema, data) as RecordingsReply | null;

/** A message on a playback's reply subject: opened/refused, ended, a frame, or a viewer's message (hello, playback). */
export function classifyPlaybackMessage(
  data: Uint8Array,
): { kind: "opened"; opened: PlaybackOpened } | { kind: "ended"; ended: PlaybackEnded } | { kind: "frame" } | { kind: "message"; message: object } | null {
  if (data.byteLength === 0) return null;
  if (data[0] !== JSON_OPEN_BRACE) return { kind: "frame" };
  const raw = parseJson(data);
  const opened = PlaybackOpenedSchema.safeParse(raw);
  if (opened.success) return { kind: "opened", opened: opened.data };
  const ended = PlaybackEndedSchema.safeParse(raw);
  if (ended.success) return { kind: "ended", ended: ended.data };
  try {
    const message = parseServerMessage(JSON.stringify(raw));
    return message.type === "hello" || message.type === "playback" ? { kind: "message", message } : null;
  } catch {
    return null;
  }
}

function parsed<T>(schema: z.ZodType<T>, data: Uint8Array): T | null {
  const result = schema.safeParse(parseJson(data));
  return result.success ? result.data : null;
}

export type AnnouncedEncoding = z.infer<typeof AnnouncedEncodingSchema>;
export type AnnouncedStream = z.infer<typeof AnnouncedStreamSchema>;
export type AnnounceMessage = z.infer<typeof AnnounceSchema>;
export type ByeMessage = z.infer<typeof ByeSchema>;
export interface GopHead {
  readonly type: "gop";
  readonly origin: string;
  /** How many frame messages follow on the reply subject, keyframe first. */
  readonly frames: number;
  readonly hello: HelloMessage;
  readonly state: StateMessage;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const encodeJson = (message: object): Uint8Array => encoder.encode(JSON.stringify(message));

function parseJson(data: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(data));
  } catch {
    return undefined;
  }
}

/** A message on `PREFIX.announce`; null for anything else (logged by the caller). */
export function parseAnnouncement(data: Uint8Array): AnnounceMessage | ByeMessage | null {
  const raw = parseJson(data);
  const announce = AnnounceSchema.safeParse(raw);
  if (announce.success) return announce.data;
  const bye = ByeSchema.safeParse(raw);
  return bye.success ? bye.data : null;
}

export function parseGopRequest(data: Uint8Array): { origin: string } | null {
  const parsed = GopRequestSchema.safeParse(parseJson(data));
  return parsed.success ? parsed.data : null;
}

export function parseGopHead(data: Uint8Array): GopHead | null {
  const parsed = GopHeadSchema.safeParse(parseJson(data));
  if (!parsed.success) return null;
  const hello = asServerMessage(parsed.data.hello);
  const state = asServerMessage(parsed.data.state);
  if (hello?.type !== "hello" || state?.type !== "state") return null;
  return { type: "gop", origin: parsed.data.origin, frames: parsed.data.frames, hello, state };
}

/** The first byte of a JSON message on a frames subject; a frame message starts with its kind (1). */
const JSON_OPEN_BRACE = 0x7b;

/** A message on a frames subject: a frame (binary), or hello or state (JSON); null for anything else. */
export function classifyFramesMessage(data: Uint8Array): { kind: "frame" } | { kind: "hello"; hello: HelloMessage } | { kind: "state"; state: StateMessage } | null {
  if (data.byteLength === 0) return null;
  if (data[0] !== JSON_OPEN_BRACE) return { kind: "frame" };
  const message = asServerMessage(parseJson(data));
  if (message?.type === "hello") return { kind: "hello", hello: message };
  if (message?.type === "state") return { kind: "state", state: message };
  return null;
}

function asServerMessage(raw: unknown): HelloMessage | StateMessage | null {
  if (raw === undefined || raw === null || typeof raw !== "object") return null;
  try {
    const message = parseServerMessage(JSON.stringify(raw));
    return message.type === "hello" || message.type === "state" ? message : null;
  } catch {
    return null;
  }
}
