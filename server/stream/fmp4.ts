// A live fragmented-MP4 muxer for MSE (H.264 on `/mp4/`), the ISO BMFF counterpart of webm.ts:
// only the boxes Chromium's MP4 parser needs, written by hand. The stream a viewer gets:
//   ftyp · moov (one avc1 track, avcC from the in-band SPS/PPS, mvex) · then per frame moof · mdat
// One fragment per frame, so a frame goes out the moment it is read. A fragment's moof holds its
// absolute time on the viewer's timeline (tfdt), so it is made per timeline (viewers that joined
// in the same GOP share one) and is 108 bytes; the mdat payload (the frame in length-prefixed form,
// converted once) is the same buffer for every viewer.
//
// Not mediabunny (npm), though a kept muxer was preferred: measured here on 300 frames of
// 640×480@30 H.264, its fMP4 output cuts fragments only at keyframes (the first moof came 60 frames,
// one GOP, after the first frame: that is the added latency), and one Output per viewer (each has
// its own timeline) cost 89–134 µs per frame per viewer, the payload copied per viewer. This one:
// a fan-out of 100 /mp4/ viewers spends 18–23 µs per frame in all (as /ws/ does), none copied.

import { concatBytes } from "./bytes.js";
import { NAL_PPS, NAL_SPS, nalUnitStarts } from "../../shared/h264.js";

/** Media time unit: ms, as on the WebM path (and in `?meta=1` frame messages). */
export const TIMESCALE = 1000;
const TRACK_ID = 1;
const TEXT = new TextEncoder();

function u8(...values: number[]): Uint8Array {
  return new Uint8Array(values);
}

function u16(v: number): Uint8Array {
  return u8((v >>> 8) & 0xff, v & 0xff);
}

function u32(v: number): Uint8Array {
  return u8((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
}

const zeros = (n: number): Uint8Array => new Uint8Array(n);

function box(type: string, ...body: Uint8Array[]): Uint8Array {
  const payload = concatBytes(body);
  return concatBytes([u32(8 + payload.byteLength), TEXT.encode(type), payload]);
}

function fullBox(type: string, version: number, flags: number, ...body: Uint8Array[]): Uint8Array {
  return box(type, u32(((version & 0xff) << 24) | (flags & 0xffffff)), ...body);
}

/** The unity transformation matrix of mvhd and tkhd. */
const MATRIX = concatBytes([u32(0x0001_0000), u32(0), u32(0), u32(0), u32(0x0001_0000), u32(0), u32(0), u32(0), u32(0x4000_0000)]);

/** NAL units of an Annex B access unit, without start codes (or the zero bytes before the next one). */
function nalUnits(accessUnit: Uint8Array): Uint8Array[] {
  const starts = nalUnitStarts(accessUnit);
  return starts.map((start, i) => {
    let end = i + 1 < starts.length ? starts[i + 1]! - 3 : accessUnit.byteLength;
    while (end > start && accessUnit[end - 1] === 0) end--;
    return accessUnit.subarray(start, end);
  });
}

/**
 * The AVCDecoderConfigurationRecord (avcC, ISO/IEC 14496-15 §5.3.3) from the SPS and PPS in an
 * access unit (every keyframe carries them in band); null when it has none.
 */
export function avcConfig(accessUnit: Uint8Array): Uint8Array | null {
  const nals = nalUnits(accessUnit);
  const sps = nals.filter((n) => n.byteLength >= 4 && (n[0]! & 0x1f) === NAL_SPS);
  const pps = nals.filter((n) => n.byteLength >= 1 && (n[0]! & 0x1f) === NAL_PPS);
  const first = sps[0];
  if (first === undefined || pps.length === 0) return null;
  return concatBytes([
    u8(1, first[1]!, first[2]!, first[3]!, 0xfc | 3), // version, profile, compatibility, level; 4-byte lengths
    u8(0xe0 | sps.length),
    ...sps.flatMap((n) => [u16(n.byteLength), n]),
    u8(pps.length),
    ...pps.flatMap((n) => [u16(n.byteLength), n]),
  ]);
}

/** The access unit as an MP4 sample: each NAL unit behind its 4-byte length instead of a start code. */
export function lengthPrefixed(accessUnit: Uint8Array): Uint8Array {
  const nals = nalUnits(accessUnit);
  const out = new Uint8Array(nals.reduce((n, nal) => n + 4 + nal.byteLength, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const nal of nals) {
    view.setUint32(at, nal.byteLength);
    out.set(nal, at + 4);
    at += 4 + nal.byteLength;
  }
  return out;
}

export interface Mp4TrackInfo {
  readonly width: number;
  readonly height: number;
}

/** Initialisation segment: ftyp, then moov with one H.264 track (`avcC`) and mvex for fragments. */
export function initSegment(track: Mp4TrackInfo, avcC: Uint8Array): Uint8Array {
  const ftyp = box("ftyp", TEXT.encode("iso5"), u32(0x200), TEXT.encode("iso5"), TEXT.encode("iso6"), TEXT.encode("avc1"), TEXT.encode("mp41"));
  // No durations anywhere: the stream is live.
  const mvhd = fullBox("mvhd", 0, 0, u32(0), u32(0), u32(TIMESCALE), u32(0), u32(0x0001_0000), u16(0x0100), zeros(10), MATRIX, zeros(24), u32(TRACK_ID + 1));
  const tkhd = fullBox(
    "tkhd", 0, 0x3, // enabled, in movie
    u32(0), u32(0), u32(TRACK_ID), u32(0), u32(0), zeros(8), u16(0), u16(0), u16(0), u16(0), MATRIX,
    u32(track.width * 0x1_0000), u32(track.height * 0x1_0000),
  );
  const mdhd = fullBox("mdhd", 0, 0, u32(0), u32(0), u32(TIMESCALE), u32(0), u16(0x55c4 /* "und" */), u16(0));
  const hdlr = fullBox("hdlr", 0, 0, u32(0), TEXT.encode("vide"), zeros(12), TEXT.encode("canvascast\0"));
  const avc1 = box(
    "avc1",
    zeros(6), u16(1), // reserved, data_reference_index
    zeros(16), u16(track.width), u16(track.height),
    u32(0x0048_0000), u32(0x0048_0000), u32(0), u16(1), // 72 dpi, reserved, frame_count
    zeros(32), u16(0x18), u16(0xffff), // compressorname, depth, pre_defined -1
    box("avcC", avcC),
  );
  const stbl = box(
    "stbl",
    fullBox("stsd", 0, 0, u32(1), avc1),
    fullBox("stts", 0, 0, u32(0)),
    fullBox("stsc", 0, 0, u32(0)),
    fullBox("stsz", 0, 0, u32(0), u32(0)),
    fullBox("stco", 0, 0, u32(0)),
  );
  const dinf = box("dinf", fullBox("dref", 0, 0, u32(1), fullBox("url ", 0, 1)));
  const minf = box("minf", fullBox("vmhd", 0, 1, zeros(8)), dinf, stbl);
  const trak = box("trak", tkhd, box("mdia", mdhd, hdlr, minf));
  const mvex = box("mvex", fullBox("trex", 0, 0, u32(TRACK_ID), u32(1), u32(0), u32(0), u32(0)));
  return concatBytes([ftyp, box("moov", mvhd, trak, mvex)]);
}

/** moof (100 bytes) and the mdat header (8) of a one-sample fragment: what precedes the sample. */
export const FRAGMENT_HEADER_SIZE = 108;
const SAMPLE_FLAGS_SYNC = 0x0200_0000; // depends on no other sample
const SAMPLE_FLAGS_DELTA = 0x0101_0000; // depends on others; not a sync sample

/**
 * The start of one fragment, up to its sample: moof (sequence number, the sample's decode time on
 * the viewer's timeline, duration, size, sync flag) and the mdat header. The sample follows.
 */
export function fragmentHeader(sequence: number, decodeTimeMs: number, durationMs: number, key: boolean, sampleSize: number): Uint8Array {
  if (!Number.isSafeInteger(decodeTimeMs) || decodeTimeMs < 0) throw new RangeError(`fragment time ${decodeTimeMs} ms`);
  const out = new Uint8Array(FRAGMENT_HEADER_SIZE);
  const v = new DataView(out.buffer);
  let at = 0;
  const head = (size: number, type: string): void => {
    v.setUint32(at, size);
    out.set(TEXT.encode(type), at + 4);
    at += 8;
  };
  head(100, "moof");
  head(16, "mfhd");
  v.setUint32(at, 0); // version, flags
  v.setUint32(at + 4, sequence >>> 0);
  at += 8;
  head(76, "traf");
  head(16, "tfhd");
  v.setUint32(at, 0x02_0000); // default-base-is-moof
  v.setUint32(at + 4, TRACK_ID);
  at += 8;
  head(20, "tfdt");
  v.setUint32(at, 0x0100_0000); // version 1: 64-bit time
  v.setUint32(at + 4, Math.floor(decodeTimeMs / 2 ** 32));
  v.setUint32(at + 8, decodeTimeMs >>> 0);
  at += 12;
  head(32, "trun");
  v.setUint32(at, 0x00_0701); // data offset, sample duration, size and flags present
  v.setUint32(at + 4, 1); // sample_count
  v.setInt32(at + 8, FRAGMENT_HEADER_SIZE); // from the moof's start to the sample
  v.setUint32(at + 12, durationMs);
  v.setUint32(at + 16, sampleSize);
  v.setUint32(at + 20, key ? SAMPLE_FLAGS_SYNC : SAMPLE_FLAGS_DELTA);
  at += 24;
  head(8 + sampleSize, "mdat");
  return out;
}
