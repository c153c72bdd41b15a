// Incremental parser for GStreamer Data Protocol 1.0 (what `gdppay` writes).
// push(chunk) → zero or more packets; any chunking of the byte stream gives the same packets.
// Payloads are views into the chunks read from the pipe; bytes are copied only when a payload
// spans chunks. It runs once per frame per stream, so it allocates only what it hands out: headers
// are read in place (or from one scratch buffer when they span chunks), with no DataView, BigInt
// or intermediate header object.

import type { Nanos } from "../../shared/units.js";

export const GDP_HEADER_SIZE = 62;
/** Default ceiling on a declared payload length: far above any VP8 frame (and any caps string). */
export const GDP_DEFAULT_MAX_PAYLOAD = 16 * 1024 * 1024;

export const GdpPayloadType = {
  BUFFER: 1,
  CAPS: 2,
  /** Event packets are EVENT_NONE + GstEventType. */
  EVENT_NONE: 64,
} as const;

export const GdpHeaderFlag = {
  HEADER_CRC: 1 << 0,
  PAYLOAD_CRC: 1 << 1,
} as const;

/** GstBufferFlags carried in a buffer packet. */
export const GstBufferFlag = {
  DISCONT: 0x40,
  HEADER: 0x400,
  GAP: 0x800,
  DELTA_UNIT: 0x2000,
} as const;

export type GdpPacket =
  | {
      readonly type: "buffer";
      readonly pts: Nanos | null;
      readonly dts: Nanos | null;
      readonly duration: Nanos | null;
      /** GstBufferFlags (see GstBufferFlag). */
      readonly flags: number;
      readonly payload: Uint8Array;
    }
  | { readonly type: "caps"; readonly caps: string }
  | { readonly type: "event"; readonly eventType: number; readonly structure: string };

export type GdpErrorCode =
  | "GDP_ERR_BAD_VERSION"
  | "GDP_ERR_HEADER_CRC"
  | "GDP_ERR_PAYLOAD_CRC"
  | "GDP_ERR_PAYLOAD_TOO_LARGE"
  | "GDP_ERR_UNKNOWN_TYPE";

export class GdpError extends Error {
  override readonly name = "GdpError";
  constructor(
    readonly code: GdpErrorCode,
    message: string,
    /** Offset of the offending packet in the byte stream. */
    readonly streamOffset: number,
  ) {
    super(message);
  }

  /** Packets completed by the failing push before the error, so none is lost to how the pipe split the bytes. */
  completed: readonly GdpPacket[] = [];
}

/** CRC-16/CCITT lookup table (poly 0x1021, MSB first): one step per byte instead of eight. */
const CRC_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** CRC-16/CCITT as GStreamer's gst_dp_crc computes it (init 0xFFFF, xorout 0xFFFF) over bytes[start, end). */
export function gdpCrc16(bytes: Uint8Array, start = 0, end = bytes.byteLength): number {
  let crc = 0xffff;
  for (let i = start; i < end; i++) crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 8) ^ bytes[i]!) & 0xff]!) & 0xffff;
  return crc ^ 0xffff;
}

const u16 = (b: Uint8Array, at: number): number => (b[at]! << 8) | b[at + 1]!;
const u32 = (b: Uint8Array, at: number): number => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

/** A GDP u64 time in ns; all ones means none. Exact below 2^53 ns (104 days), like Number(BigInt). */
function readTime(b: Uint8Array, at: number): Nanos | null {
  const hi = u32(b, at);
  const lo = u32(b, at + 4);
  return hi === 0xffff_ffff && lo === 0xffff_ffff ? null : ((hi * 0x1_0000_0000 + lo) as Nanos);
}

const NO_PACKETS: readonly GdpPacket[] = Object.freeze([]);
const EMPTY = new Uint8Array(0);

export interface GdpParserOptions {
  /** Declared payload lengths above this are an error, checked before anything is allocated. */
  readonly maxPayloadBytes?: number;
}

export class GdpParser {
  private readonly maxPayload: number;
  private readonly chunks: Uint8Array[] = [];
  /** Bytes of chunks[0] already consumed. */
  private headOffset = 0;
  private buffered = 0;
  /** Stream offset of the next unconsumed byte. */
  private consumed = 0;
  /** Holds a header that spans chunks; read at once, so one buffer serves every packet. */
  private readonly scratch = new Uint8Array(GDP_HEADER_SIZE);
  private failure: GdpError | null = null;

  // The header read, waiting for its payload (payloadLength < 0: none pending).
  private payloadLength = -1;
  private payloadType = 0;
  private headerFlags = 0;
  private payloadCrc = 0;
  private bufferFlags = 0;
  private pts: Nanos | null = null;
  private dts: Nanos | null = null;
  private duration: Nanos | null = null;

  constructor(options: GdpParserOptions = {}) {
    this.maxPayload = options.maxPayloadBytes ?? GDP_DEFAULT_MAX_PAYLOAD;
  }

  /** Bytes received but not yet returned as packets. */
  get pendingBytes(): number {
    return this.buffered + (this.payloadLength < 0 ? 0 : GDP_HEADER_SIZE);
  }

  /**
   * Feeds bytes; returns every packet completed by them. After an error the stream is out of
   * sync and every later push throws the same error; the first throw carries the packets the
   * failing push completed before it (`GdpError.completed`).
   */
  push(chunk: Uint8Array): readonly GdpPacket[] {
    if (this.failure) throw this.failure;
    if (chunk.byteLength > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.byteLength;
    }
    let packets: GdpPacket[] | null = null;
    try {
      for (;;) {
        if (this.payloadLength < 0) {
          if (this.buffered < GDP_HEADER_SIZE) break;
          this.readHeader();
        }
        if (this.buffered < this.payloadLength) break;
        const packet = this.toPacket(this.take(this.payloadLength));
        this.payloadLength = -1;
        (packets ??= []).push(packet);
      }
    } catch (err) {
      if (err instanceof GdpError) {
        this.failure = err;
        err.completed = packets ?? NO_PACKETS;
      }
      throw err;
    }
    return packets ?? NO_PACKETS;
  }

  /** Consumes the next 62 bytes as a header: in place when one chunk holds them, else via scratch. */
  private readHeader(): void {
    const first = this.chunks[0]!;
    let b: Uint8Array;
    let at: number;
    if (first.byteLength - this.headOffset >= GDP_HEADER_SIZE) {
      b = first;
      at = this.headOffset;
      this.skip(GDP_HEADER_SIZE);
    } else {
      b = this.scratch;
      at = 0;
      this.copyInto(this.scratch, GDP_HEADER_SIZE);
    }
    const offset = this.consumed - GDP_HEADER_SIZE;
    const major = b[at]!;
    const minor = b[at + 1]!;
    if (major !== 1 || minor !== 0) {
      throw new GdpError("GDP_ERR_BAD_VERSION", `GDP version ${major}.${minor}, expected 1.0`, offset);
    }
    const flags = b[at + 2]!;
    if (flags & GdpHeaderFlag.HEADER_CRC) {
      const expected = u16(b, at + 58);
      const actual = gdpCrc16(b, at, at + 58);
      if (expected !== actual) {
        throw new GdpError(
          "GDP_ERR_HEADER_CRC",
          `GDP header CRC 0x${actual.toString(16)} does not match 0x${expected.toString(16)}`,
          offset,
        );
      }
    }
    const payloadType = u16(b, at + 4);
    if (payloadType !== GdpPayloadType.BUFFER && payloadType !== GdpPayloadType.CAPS && payloadType < GdpPayloadType.EVENT_NONE) {
      throw new GdpError("GDP_ERR_UNKNOWN_TYPE", `GDP payload type ${payloadType}`, offset);
    }
    const payloadLength = u32(b, at + 6);
    if (payloadLength > this.maxPayload) {
      throw new GdpError(
        "GDP_ERR_PAYLOAD_TOO_LARGE",
        `GDP payload of ${payloadLength} bytes exceeds the ${this.maxPayload}-byte limit`,
        offset,
      );
    }
    this.headerFlags = flags;
    this.payloadType = payloadType;
    this.payloadLength = payloadLength;
    this.payloadCrc = u16(b, at + 60);
    if (payloadType === GdpPayloadType.BUFFER) {
      this.pts = readTime(b, at + 10);
      this.duration = readTime(b, at + 18);
      this.bufferFlags = u16(b, at + 42);
      this.dts = readTime(b, at + 44);
    }
  }

  private toPacket(payload: Uint8Array): GdpPacket {
    if (this.headerFlags & GdpHeaderFlag.PAYLOAD_CRC && payload.byteLength > 0) {
      const actual = gdpCrc16(payload);
      if (actual !== this.payloadCrc) {
        throw new GdpError(
          "GDP_ERR_PAYLOAD_CRC",
          `GDP payload CRC 0x${actual.toString(16)} does not match 0x${this.payloadCrc.toString(16)}`,
          this.consumed - payload.byteLength - GDP_HEADER_SIZE,
        );
      }
    }
    switch (this.payloadType) {
      case GdpPayloadType.BUFFER:
        return { type: "buffer", pts: this.pts, duration: this.duration, flags: this.bufferFlags, dts: this.dts, payload };
      case GdpPayloadType.CAPS:
        return { type: "caps", caps: cString(payload) };
      default:
        return { type: "event", eventType: this.payloadType - GdpPayloadType.EVENT_NONE, structure: cString(payload) };
    }
  }

  /** Removes n ≤ buffered bytes from the front: a view when one chunk holds them, else a copy. */
  private take(n: number): Uint8Array {
    if (n === 0) return EMPTY;
    const first = this.chunks[0]!;
    if (first.byteLength - this.headOffset >= n) {
      const view = first.subarray(this.headOffset, this.headOffset + n);
      this.skip(n);
      return view;
    }
    const out = new Uint8Array(n);
    this.copyInto(out, n);
    return out;
  }

  /** Consumes n bytes that chunks[0] holds. */
  private skip(n: number): void {
    this.buffered -= n;
    this.consumed += n;
    this.headOffset += n;
    if (this.headOffset === this.chunks[0]!.byteLength) {
      this.chunks.shift();
      this.headOffset = 0;
    }
  }

  /** Consumes n ≤ buffered bytes, copying them to the front of `out`. */
  private copyInto(out: Uint8Array, n: number): void {
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0]!;
      const count = Math.min(n - filled, chunk.byteLength - this.headOffset);
      out.set(chunk.subarray(this.headOffset, this.headOffset + count), filled);
      filled += count;
      this.skip(count);
    }
  }
}

const textDecoder = new TextDecoder();

/** Caps and event payloads are NUL-terminated strings. */
function cString(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  return textDecoder.decode(nul === -1 ? bytes : bytes.subarray(0, nul));
}
