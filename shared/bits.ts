// An MSB-first bit reader for codec headers (VP9 uncompressed header, AV1 OBUs, H.264 SPS).
// Reading past the end yields zeros and sets `overrun`, so a parser checks once at the end.

export class BitReader {
  readonly #data: Uint8Array;
  readonly #end: number;
  #bit: number;
  overrun = false;

  constructor(data: Uint8Array, start = 0, end = data.byteLength) {
    this.#data = data;
    this.#bit = start * 8;
    this.#end = Math.min(end, data.byteLength);
  }

  /** One bit. */
  flag(): boolean {
    return this.bits(1) === 1;
  }

  /** An n-bit unsigned value (n ≤ 32). */
  bits(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) {
      const byte = this.#bit >> 3;
      let b = 0;
      if (byte < this.#end) b = (this.#data[byte]! >> (7 - (this.#bit & 7))) & 1;
      else this.overrun = true;
      this.#bit++;
      v = v * 2 + b;
    }
    return v;
  }

  /** AV1 uvlc(): leading zeros, then that many bits. */
  uvlc(): number {
    let zeros = 0;
    while (!this.flag()) {
      if (this.overrun || ++zeros >= 32) return 0;
    }
    return zeros === 0 ? 0 : this.bits(zeros) + 2 ** zeros - 1;
  }
}
