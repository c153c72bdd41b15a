// A live WebM muxer for MSE (VP8, VP9, AV1): just the EBML that Chromium's WebM parser needs,
// written by hand because it is small and the bytes are shared between viewers. The stream a viewer gets:
//   EBML header · Segment (unknown size) · Info · Tracks · Cluster (unknown size) · SimpleBlock …
// Clusters have unknown size too, so a frame can go out the moment it is read. The TrackEntry's
// DefaultDuration gives every SimpleBlock a duration, so the player need not wait for the next
// block to know when the current one ends (a frame of latency otherwise).

import { concatBytes } from "./bytes.js";

/** Element IDs (with their length marker bits, as written). */
export const EbmlId = {
  EBML: 0x1a45dfa3,
  EBMLVersion: 0x4286,
  EBMLReadVersion: 0x42f7,
  EBMLMaxIDLength: 0x42f2,
  EBMLMaxSizeLength: 0x42f3,
  DocType: 0x4282,
  DocTypeVersion: 0x4287,
  DocTypeReadVersion: 0x4285,
  Segment: 0x18538067,
  Info: 0x1549a966,
  TimecodeScale: 0x2ad7b1,
  MuxingApp: 0x4d80,
  WritingApp: 0x5741,
  Tracks: 0x1654ae6b,
  TrackEntry: 0xae,
  TrackNumber: 0xd7,
  TrackUID: 0x73c5,
  TrackType: 0x83,
  FlagLacing: 0x9c,
  CodecID: 0x86,
  CodecPrivate: 0x63a2,
  DefaultDuration: 0x23e383,
  Video: 0xe0,
  PixelWidth: 0xb0,
  PixelHeight: 0xba,
  Cluster: 0x1f43b675,
  Timecode: 0xe7,
  SimpleBlock: 0xa3,
} as const;

/** The size field for "unknown": all ones in an 8-byte vint. Live Segments and Clusters use it. */
const UNKNOWN_SIZE = new Uint8Array([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

/** Block timecodes are int16 ms relative to their cluster: a cluster may span at most this long. */
export const MAX_CLUSTER_SPAN_MS = 32_767;

const TRACK = 1;
const TEXT = new TextEncoder();

function idBytes(id: number): Uint8Array {
  const out: number[] = [];
  for (let v = id; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return new Uint8Array(out);
}

/** EBML variable-length size: the shortest encoding (all-ones values are reserved for "unknown"). */
export function vintSize(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`EBML size ${n}`);
  for (let len = 1; len <= 8; len++) {
    const max = 2 ** (7 * len) - 1; // exclusive of the reserved all-ones value
    if (n < max) {
      const out = new Uint8Array(len);
      let v = n;
      for (let i = len - 1; i >= 0; i--) {
        out[i] = v % 256;
        v = Math.floor(v / 256);
      }
      out[0]! |= 1 << (8 - len);
      return out;
    }
  }
  throw new RangeError(`EBML size ${n} too large`);
}

function element(id: number, body: Uint8Array): Uint8Array {
  return concatBytes([idBytes(id), vintSize(body.byteLength), body]);
}

function master(id: number, children: readonly Uint8Array[]): Uint8Array {
  return element(id, concatBytes(children));
}

function uint(id: number, value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`EBML uint ${value}`);
  const bytes: number[] = [];
  for (let v = value; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return element(id, new Uint8Array(bytes.length ? bytes : [0]));
}

function str(id: number, value: string): Uint8Array {
  return element(id, TEXT.encode(value));
}

export interface WebmTrackInfo {
  readonly width: number;
  readonly height: number;
  readonly framerate: number;
}

/** What the TrackEntry says of the codec: its Matroska CodecID and, for AV1, the av1C record. */
export interface WebmCodec {
  readonly id: "V_VP8" | "V_VP9" | "V_AV1";
  readonly private?: Uint8Array;
}

export const VP8_TRACK: WebmCodec = { id: "V_VP8" };

/** Initialisation segment: EBML header, Segment start (unknown size), Info, Tracks. */
export function initSegment(track: WebmTrackInfo, codec: WebmCodec = VP8_TRACK): Uint8Array {
  const ebml = master(EbmlId.EBML, [
    uint(EbmlId.EBMLVersion, 1),
    uint(EbmlId.EBMLReadVersion, 1),
    uint(EbmlId.EBMLMaxIDLength, 4),
    uint(EbmlId.EBMLMaxSizeLength, 8),
    str(EbmlId.DocType, "webm"),
    uint(EbmlId.DocTypeVersion, 4),
    uint(EbmlId.DocTypeReadVersion, 2),
  ]);
  const info = master(EbmlId.Info, [
    uint(EbmlId.TimecodeScale, 1_000_000), // 1 ms; no Duration: it is live
    str(EbmlId.MuxingApp, "canvascast"),
    str(EbmlId.WritingApp, "canvascast"),
  ]);
  const trackEntry = master(EbmlId.TrackEntry, [
    uint(EbmlId.TrackNumber, TRACK),
    uint(EbmlId.TrackUID, TRACK),
    uint(EbmlId.TrackType, 1), // video
    uint(EbmlId.FlagLacing, 0),
    str(EbmlId.CodecID, codec.id),
    ...(codec.private !== undefined ? [element(EbmlId.CodecPrivate, codec.private)] : []),
    ...(track.framerate > 0 ? [uint(EbmlId.DefaultDuration, Math.round(1e9 / track.framerate))] : []),
    master(EbmlId.Video, [uint(EbmlId.PixelWidth, track.width), uint(EbmlId.PixelHeight, track.height)]),
  ]);
  const tracks = master(EbmlId.Tracks, [trackEntry]);
  return concatBytes([ebml, idBytes(EbmlId.Segment), UNKNOWN_SIZE, info, tracks]);
}

/** The start of a Cluster of unknown size with its Timecode (ms on the viewer's timeline). */
export function clusterStart(timecodeMs: number): Uint8Array {
  return concatBytes([idBytes(EbmlId.Cluster), UNKNOWN_SIZE, uint(EbmlId.Timecode, timecodeMs)]);
}

/**
 * The start of one SimpleBlock, up to its frame: ID, size, track 1, timecode relative to its
 * cluster (int16 ms), keyframe flag. The frame follows it unchanged, so it is never copied.
 */
export function simpleBlockHeader(relativeMs: number, key: boolean, frameLength: number): Uint8Array {
  if (!Number.isInteger(relativeMs) || relativeMs < -32768 || relativeMs > MAX_CLUSTER_SPAN_MS) {
    throw new RangeError(`block timecode ${relativeMs} ms is outside int16`);
  }
  const header = new Uint8Array(4);
  header[0] = 0x80 | TRACK; // track number as a 1-byte vint
  new DataView(header.buffer).setInt16(1, relativeMs, false);
  header[3] = key ? 0x80 : 0x00;
  return concatBytes([idBytes(EbmlId.SimpleBlock), vintSize(header.byteLength + frameLength), header]);
}
