// A binary WebSocket message framed once and written to many sockets. `ws.send()` frames every
// message again for every socket (a header buffer and a Buffer view each time); a fan-out to
// hundreds of viewers sends the same frame to all of them, so the RFC 6455 frame header is built
// once per message, together with the small header of our own that precedes the payload, and every
// socket is handed the same buffers: no per-viewer copy and no per-viewer framing.

/** Server→client frames are unmasked: FIN + opcode 2 (binary), then a 7-, 16- or 64-bit length. */
function frameHeaderSize(payloadLength: number): number {
  return payloadLength < 126 ? 2 : payloadLength < 0x1_0000 ? 4 : 10;
}

export class WireMessage {
  /** Bytes on the wire: the WebSocket frame header and the payload (read per viewer per frame: computed once). */
  readonly wireLength: number;

  private constructor(
    /** What goes on the wire, in order: the frame header with `head` after it, then the body. */
    readonly parts: readonly Uint8Array[],
    /** The message's length as the receiver sees it (without the WebSocket frame header). */
    readonly payloadLength: number,
  ) {
    let n = 0;
    for (const part of parts) n += part.byteLength;
    this.wireLength = n;
  }

  /** A binary message `head ‖ body`; `head` (small) is copied behind the frame header, `body` is not copied. */
  static binary(head: Uint8Array, body?: Uint8Array): WireMessage {
    const payloadLength = head.byteLength + (body?.byteLength ?? 0);
    const headerSize = frameHeaderSize(payloadLength);
    const first = new Uint8Array(headerSize + head.byteLength);
    first[0] = 0x82;
    if (headerSize === 2) {
      first[1] = payloadLength;
    } else if (headerSize === 4) {
      first[1] = 126;
      first[2] = payloadLength >>> 8;
      first[3] = payloadLength & 0xff;
    } else {
      first[1] = 127;
      // 64-bit length: the top bytes stay 0 (a message is far below 2^32 bytes).
      new DataView(first.buffer).setUint32(6, payloadLength, false);
    }
    first.set(head, headerSize);
    return new WireMessage(body && body.byteLength > 0 ? [first, body] : [first], payloadLength);
  }

  /**
   * A ping control frame (FIN + opcode 9) with `payload` (at most 125 bytes, RFC 6455 §5.5). The
   * client answers with a pong carrying the same bytes.
   */
  static ping(payload: Uint8Array): WireMessage {
    if (payload.byteLength > 125) throw new RangeError(`ping payload of ${payload.byteLength} bytes (at most 125)`);
    const first = new Uint8Array(2 + payload.byteLength);
    first[0] = 0x89;
    first[1] = payload.byteLength;
    first.set(payload, 2);
    return new WireMessage([first], payload.byteLength);
  }


  /** The message as the receiver gets it, in one new buffer: for tests and diagnostics, not the hot path. */
  payload(): Uint8Array {
    const out = new Uint8Array(this.payloadLength);
    const first = this.parts[0]!;
    const headerSize = this.wireLength - this.payloadLength;
    out.set(first.subarray(headerSize), 0);
    if (this.parts.length > 1) out.set(this.parts[1]!, first.byteLength - headerSize);
    return out;
  }
}
