// What the server needs to know of a VP8 frame: its type from the frame tag, and the size a
// keyframe declares (RFC 6386 §9.1).

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
