// Incremental parser for GStreamer Data Protocol 1.0 (what `gdppay` writes).
// push(chunk) → zero or more packets; any chunking of the byte stream gives the same packets.
// Payloads are views into the chunks read from the pipe; bytes are copied only when a header or
// payload spans chunks.

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

/** CRC-16/CCITT as GStreamer's gst_dp_crc computes it: poly 0x1021, init 0xFFFF, xorout 0xFFFF. */
export function gdpCrc16(bytes: Uint8Array): number {
  let crc = 0xffff;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc ^ 0xffff;
}

const NONE_U64 = 0xffff_ffff_ffff_ffffn;

function readTime(view: DataView, offset: number): Nanos | null {
  const v = view.getBigUint64(offset, false);
  return v === NONE_U64 ? null : (Number(v) as Nanos);
}

interface PendingHeader {
  readonly flags: number;
  readonly payloadType: number;
  readonly payloadLength: number;
  readonly payloadCrc: number;
  readonly view: DataView;
}

export interface GdpParserOptions {
  /** Declared payload lengths above this are an error, checked before anything is allocated. */
  readonly maxPayloadBytes?: number;
}

export class GdpParser {
  private readonly maxPayload: number;
  private readonly chunks: Uint8Array[] = [];
  private buffered = 0;
  /** Stream offset of the first byte in `chunks`. */
  private consumed = 0;
  private header: PendingHeader | null = null;
  private failure: GdpError | null = null;

  constructor(options: GdpParserOptions = {}) {
    this.maxPayload = options.maxPayloadBytes ?? GDP_DEFAULT_MAX_PAYLOAD;
  }

  /** Bytes received but not yet returned as packets. */
  get pendingBytes(): number {
    return this.buffered + (this.header === null ? 0 : GDP_HEADER_SIZE);
  }

  /**
   * Feeds bytes; returns every packet completed by them. After an error the stream is out of
   * sync and every later push throws the same error; the first throw carries the packets the
   * failing push completed before it (`GdpError.completed`).
   */
  push(chunk: Uint8Array): GdpPacket[] {
    if (this.failure) throw this.failure;
    if (chunk.byteLength > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.byteLength;
    }
    const packets: GdpPacket[] = [];
    try {
      for (;;) {
        if (this.header === null) {
          if (this.buffered < GDP_HEADER_SIZE) break;
          this.header = this.parseHeader(this.take(GDP_HEADER_SIZE));
        }
        if (this.buffered < this.header.payloadLength) break;
        const header = this.header;
        this.header = null;
        const payload = this.take(header.payloadLength);
        packets.push(this.toPacket(header, payload));
      }
    } catch (err) {
      if (err instanceof GdpError) {
        this.failure = err;
        err.completed = packets;
      }
      throw err;
    }
    return packets;
  }

  private parseHeader(bytes: Uint8Array): PendingHeader {
    const offset = this.consumed - GDP_HEADER_SIZE;
    const view = new DataView(bytes.buffer, bytes.byteOffset, GDP_HEADER_SIZE);
    const major = view.getUint8(0);
    const minor = view.getUint8(1);
    if (major !== 1 || minor !== 0) {
      throw new GdpError("GDP_ERR_BAD_VERSION", `GDP version ${major}.${minor}, expected 1.0`, offset);
    }
    const flags = view.getUint8(2);
    if (flags & GdpHeaderFlag.HEADER_CRC) {
      const expected = view.getUint16(58, false);
      const actual = gdpCrc16(bytes.subarray(0, 58));
      if (expected !== actual) {
        throw new GdpError(
          "GDP_ERR_HEADER_CRC",
          `GDP header CRC 0x${actual.toString(16)} does not match 0x${expected.toString(16)}`,
          offset,
        );
      }
    }
    const payloadType = view.getUint16(4, false);
    if (payloadType !== GdpPayloadType.BUFFER && payloadType !== GdpPayloadType.CAPS && payloadType < GdpPayloadType.EVENT_NONE) {
      throw new GdpError("GDP_ERR_UNKNOWN_TYPE", `GDP payload type ${payloadType}`, offset);
    }
    const payloadLength = view.getUint32(6, false);
    if (payloadLength > this.maxPayload) {
      throw new GdpError(
        "GDP_ERR_PAYLOAD_TOO_LARGE",
        `GDP payload of ${payloadLength} bytes exceeds the ${this.maxPayload}-byte limit`,
        offset,
      );
    }
    return { flags, payloadType, payloadLength, payloadCrc: view.getUint16(60, false), view };
  }

  private toPacket(header: PendingHeader, payload: Uint8Array): GdpPacket {
    if (header.flags & GdpHeaderFlag.PAYLOAD_CRC && payload.byteLength > 0) {
      const actual = gdpCrc16(payload);
      if (actual !== header.payloadCrc) {
        throw new GdpError(
          "GDP_ERR_PAYLOAD_CRC",
          `GDP payload CRC 0x${actual.toString(16)} does not match 0x${header.payloadCrc.toString(16)}`,
          this.consumed - payload.byteLength - GDP_HEADER_SIZE,
        );
      }
    }
    const { view } = header;
    switch (header.payloadType) {
      case GdpPayloadType.BUFFER:
        return {
          type: "buffer",
          pts: readTime(view, 10),
          duration: readTime(view, 18),
          flags: view.getUint16(42, false),
          dts: readTime(view, 44),
          payload,
        };
      case GdpPayloadType.CAPS:
        return { type: "caps", caps: cString(payload) };
      default:
        return {
          type: "event",
          eventType: header.payloadType - GdpPayloadType.EVENT_NONE,
          structure: cString(payload),
        };
    }
  }

  /** Removes n ≤ buffered bytes from the front: a view when one chunk holds them, else a copy. */
  private take(n: number): Uint8Array {
    this.buffered -= n;
    this.consumed += n;
    if (n === 0) return new Uint8Array(0);
    const first = this.chunks[0]!;
    if (first.byteLength >= n) {
      if (first.byteLength === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0]!;
      const want = n - filled;
      if (chunk.byteLength <= want) {
        out.set(chunk, filled);
        filled += chunk.byteLength;
        this.chunks.shift();
      } else {
        out.set(chunk.subarray(0, want), filled);
        this.chunks[0] = chunk.subarray(want);
        filled = n;
      }
    }
    return out;
  }
}

const textDecoder = new TextDecoder();

/** Caps and event payloads are NUL-terminated strings. */
function cString(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  return textDecoder.decode(nul === -1 ? bytes : bytes.subarray(0, nul));
}
