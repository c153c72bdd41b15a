// What canvascast reads of a VP8 frame (RFC 6386): its type from the frame tag, the size a keyframe
// declares (§9.1), and whether the frame changes anything a later frame decodes against (§9.7–9.11):
// the server checks keyframes against the bitstream, the player skips replayed frames no later frame
// needs, which halves the decoding a join waits for when the encoder makes such frames (temporal layers).

export interface Vp8FrameInfo {
  readonly key: boolean;
  /** Only keyframes carry dimensions. */
  readonly width?: number;
  readonly height?: number;
}

const START_CODE = [0x9d, 0x01, 0x2a] as const;

/** Returns null when the bytes are not a plausible VP8 frame. */
export function parseVp8Frame(data: Uint8Array): Vp8FrameInfo | null {
  if (data.byteLength < 3) return null;
  // Frame tag bit 0: 0 = keyframe, 1 = interframe.
  const key = (data[0]! & 0x01) === 0;
  if (!key) return { key };
  if (data.byteLength < 10) return null;
  if (data[3] !== START_CODE[0] || data[4] !== START_CODE[1] || data[5] !== START_CODE[2]) return null;
  // 14-bit dimensions; the top two bits are the scaling mode.
  const width = (data[6]! | (data[7]! << 8)) & 0x3fff;
  const height = (data[8]! | (data[9]! << 8)) & 0x3fff;
  return { key, width, height };
}

/**
 * True when `data` is an interframe that updates no reference buffer (last, golden, altref, no
 * buffer copies) and keeps no probability update (refresh_entropy_probs 0): no later frame depends
 * on it, so a decoder that skips it decodes every later frame the same. False for keyframes and
 * for anything that cannot be read.
 */
export function isDisposableVp8Frame(data: Uint8Array): boolean {
  if (data.byteLength < 4 || (data[0]! & 0x01) === 0) return false;
  const firstPartitionSize = (data[0]! | (data[1]! << 8) | (data[2]! << 16)) >>> 5;
  const end = Math.min(data.byteLength, 3 + firstPartitionSize);
  const bits = new BoolDecoder(data, 3, end);
  // The frame header of an interframe, §19.2, up to refresh_last.
  if (bits.flag()) {
    // segmentation_enabled
    const updateMap = bits.flag();
    if (bits.flag()) {
      // update_segment_feature_data
      bits.literal(1); // segment_feature_mode
      for (let i = 0; i < 4; i++) if (bits.flag()) bits.literal(7 + 1); // quantizer value + sign
      for (let i = 0; i < 4; i++) if (bits.flag()) bits.literal(6 + 1); // loop filter value + sign
    }
    if (updateMap) for (let i = 0; i < 3; i++) if (bits.flag()) bits.literal(8); // segment_prob
  }
  bits.literal(1 + 6 + 3); // filter_type, loop_filter_level, sharpness_level
  if (bits.flag() && bits.flag()) {
    // loop_filter_adj_enable, mode_ref_lf_delta_update: ref_frame and mb_mode deltas
    for (let i = 0; i < 8; i++) if (bits.flag()) bits.literal(6 + 1);
  }
  bits.literal(2); // log2_nbr_of_dct_partitions
  bits.literal(7); // y_ac_qi
  for (let i = 0; i < 5; i++) if (bits.flag()) bits.literal(4 + 1); // the five delta quantizers
  const refreshGolden = bits.flag();
  const refreshAlternate = bits.flag();
  const copyToGolden = refreshGolden ? 0 : bits.literal(2);
  const copyToAlternate = refreshAlternate ? 0 : bits.literal(2);
  bits.literal(2); // sign_bias_golden, sign_bias_alternate
  const refreshEntropy = bits.flag();
  const refreshLast = bits.flag();
  if (bits.overrun) return false;
  return !refreshGolden && !refreshAlternate && copyToGolden === 0 && copyToAlternate === 0 && !refreshEntropy && !refreshLast;
}

/** The boolean entropy decoder of RFC 6386 §7.3, for header fields (probability 128). */
class BoolDecoder {
  readonly #data: Uint8Array;
  readonly #end: number;
  #pos: number;
  #value: number;
  #range = 255;
  #bitCount = 0;
  /** Read past the partition: the fields read are not the frame's. */
  overrun = false;

  constructor(data: Uint8Array, start: number, end: number) {
    this.#data = data;
    this.#end = end;
    this.#value = (this.#byte(start) << 8) | this.#byte(start + 1);
    this.#pos = start + 2;
  }

  flag(): boolean {
    const split = 1 + (((this.#range - 1) * 128) >> 8);
    const bigSplit = split << 8;
    let bit: boolean;
    if (this.#value >= bigSplit) {
      bit = true;
      this.#range -= split;
      this.#value -= bigSplit;
    } else {
      bit = false;
      this.#range = split;
    }
    while (this.#range < 128) {
      this.#value <<= 1;
      this.#range <<= 1;
      if (++this.#bitCount === 8) {
        this.#bitCount = 0;
        this.#value |= this.#byte(this.#pos++);
      }
    }
    return bit;
  }

  /** An n-bit unsigned literal, most significant bit first. */
  literal(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v = (v << 1) | (this.flag() ? 1 : 0);
    return v;
  }

  #byte(at: number): number {
    if (at >= this.#end) {
      // The decoder reads up to two bytes ahead of the bits it returns: only more than that is an overrun.
      if (at >= this.#end + 2) this.overrun = true;
      return 0;
    }
    return this.#data[at]!;
  }
}
