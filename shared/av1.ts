// What canvascast reads of an AV1 temporal unit (AV1 spec §5, low-overhead bitstream format: OBUs
// with size fields): a keyframe is a unit with a sequence header and a shown KEY_FRAME, where a
// decoder can start; the sequence header gives the codec string av01.P.LLT.DD.

import { BitReader } from "./bits.js";
import type { FrameInfo } from "./codec.js";

const OBU_SEQUENCE_HEADER = 1;
const OBU_FRAME_HEADER = 3;
const OBU_FRAME = 6;

export interface Av1SequenceInfo {
  readonly profile: number;
  readonly level: number;
  /** 0 main, 1 high. */
  readonly tier: number;
  readonly bitDepth: number;
  readonly reducedStillPictureHeader: boolean;
}

interface Obu {
  readonly type: number;
  readonly start: number;
  readonly end: number;
}

/** The OBUs of a temporal unit; null when the bytes are not a sequence of sized OBUs. */
export function splitObus(data: Uint8Array): Obu[] | null {
  const obus: Obu[] = [];
  let at = 0;
  while (at < data.byteLength) {
    const header = data[at]!;
    if (header & 0x80) return null; // forbidden bit
    const type = (header >> 3) & 0x0f;
    const extension = (header & 0x04) !== 0;
    if ((header & 0x02) === 0) return null; // no size field: not the low-overhead format
    let p = at + 1 + (extension ? 1 : 0);
    let size = 0;
    for (let i = 0; ; i++) {
      if (p >= data.byteLength || i === 8) return null;
      const b = data[p++]!;
      size += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) break;
    }
    if (p + size > data.byteLength) return null;
    obus.push({ type, start: p, end: p + size });
    at = p + size;
  }
  return obus.length > 0 ? obus : null;
}

export function readAv1Frame(data: Uint8Array): FrameInfo | null {
  const obus = splitObus(data);
  if (obus === null) return null;
  const seqObu = obus.find((o) => o.type === OBU_SEQUENCE_HEADER);
  const sequence = seqObu === undefined ? null : readSequenceHeader(data, seqObu.start, seqObu.end);
  const frameObu = obus.find((o) => o.type === OBU_FRAME || o.type === OBU_FRAME_HEADER);
  if (frameObu === undefined) return { key: false, codec: null };
  let shownKeyFrame: boolean;
  if (sequence?.reducedStillPictureHeader === true) {
    shownKeyFrame = true;
  } else {
    const r = new BitReader(data, frameObu.start, frameObu.end);
    const showExisting = r.flag();
    const frameType = r.bits(2); // 0 = KEY_FRAME
    const showFrame = r.flag();
    shownKeyFrame = !showExisting && frameType === 0 && showFrame && !r.overrun;
  }
  const key = shownKeyFrame && sequence !== null;
  return { key, codec: key && sequence !== null ? av1CodecString(sequence) : null };
}

/** §5.5 sequence_header_obu up to color_config's bit depth. */
export function readSequenceHeader(data: Uint8Array, start: number, end: number): Av1SequenceInfo | null {
  const r = new BitReader(data, start, end);
  const profile = r.bits(3);
  r.bits(1); // still_picture
  const reduced = r.flag();
  let level: number;
  let tier = 0;
  let frameIdNumbers = false;
  if (reduced) {
    level = r.bits(5);
  } else {
    let decoderModelInfo = false;
    let bufferDelayLength = 0;
    if (r.flag()) {
      // timing_info
      r.bits(32);
      r.bits(32);
      if (r.flag()) r.uvlc(); // equal_picture_interval → num_ticks_per_picture_minus_1
      decoderModelInfo = r.flag();
      if (decoderModelInfo) {
        bufferDelayLength = r.bits(5) + 1;
        r.bits(32); // num_units_in_decoding_tick
        r.bits(5 + 5); // buffer_removal_time_length_minus_1, frame_presentation_time_length_minus_1
      }
    }
    const initialDisplayDelay = r.flag();
    const operatingPoints = r.bits(5) + 1;
    level = 0;
    for (let i = 0; i < operatingPoints; i++) {
      r.bits(12); // operating_point_idc
      const opLevel = r.bits(5);
      const opTier = opLevel > 7 ? r.bits(1) : 0;
      if (i === 0) {
        level = opLevel;
        tier = opTier;
      }
      if (decoderModelInfo && r.flag()) r.bits(bufferDelayLength * 2 + 1);
      if (initialDisplayDelay && r.flag()) r.bits(4);
    }
  }
  const widthBits = r.bits(4) + 1;
  const heightBits = r.bits(4) + 1;
  r.bits(widthBits);
  r.bits(heightBits);
  if (!reduced) frameIdNumbers = r.flag();
  if (frameIdNumbers) r.bits(4 + 3);
  r.bits(3); // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
  if (!reduced) {
    r.bits(4); // interintra_compound, masked_compound, warped_motion, dual_filter
    const orderHint = r.flag();
    if (orderHint) r.bits(2); // enable_jnt_comp, enable_ref_frame_mvs
    const chooseScreenContent = r.flag();
    const forceScreenContent = chooseScreenContent ? 2 : r.bits(1);
    if (forceScreenContent > 0 && !r.flag()) r.bits(1); // seq_choose_integer_mv, else seq_force_integer_mv
    if (orderHint) r.bits(3); // order_hint_bits_minus_1
  }
  r.bits(3); // enable_superres, enable_cdef, enable_restoration
  const highBitDepth = r.flag();
  const bitDepth = profile === 2 && highBitDepth ? (r.flag() ? 12 : 10) : highBitDepth ? 10 : 8;
  if (r.overrun || profile > 2) return null;
  return { profile, level, tier, bitDepth, reducedStillPictureHeader: reduced };
}

/** av01.P.LLT.DD */
export function av1CodecString(s: Av1SequenceInfo): string {
  return `av01.${s.profile}.${String(s.level).padStart(2, "0")}${s.tier ? "H" : "M"}.${String(s.bitDepth).padStart(2, "0")}`;
}

/**
 * The AV1CodecConfigurationRecord (av1C, AV1-ISOBMFF §2.3; Matroska's CodecPrivate for V_AV1)
 * from a temporal unit with a sequence header: the header's profile, level, tier and bit depth,
 * then the sequence header OBU itself as configOBUs. Chroma is written as 4:2:0, not monochrome:
 * what the encoders canvascast runs deliver (decoders take the real values from the OBU). Null
 * when the unit has no readable sequence header.
 */
export function av1CodecConfig(data: Uint8Array): Uint8Array | null {
  const obus = splitObus(data);
  if (obus === null) return null;
  const index = obus.findIndex((o) => o.type === OBU_SEQUENCE_HEADER);
  const obu = obus[index];
  if (obu === undefined) return null;
  const s = readSequenceHeader(data, obu.start, obu.end);
  if (s === null) return null;
  const obuStart = index === 0 ? 0 : obus[index - 1]!.end;
  const record = new Uint8Array(4 + obu.end - obuStart);
  record[0] = 0x81; // marker 1, version 1
  record[1] = (s.profile << 5) | s.level;
  // tier, high_bitdepth, twelve_bit, monochrome 0, chroma_subsampling_x 1, _y 1, chroma_sample_position 0
  record[2] = (s.tier << 7) | ((s.bitDepth > 8 ? 1 : 0) << 6) | ((s.bitDepth === 12 ? 1 : 0) << 5) | 0b01100;
  record[3] = 0; // no initial_presentation_delay
  record.set(data.subarray(obuStart, obu.end), 4);
  return record;
}
