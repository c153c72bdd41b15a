// Reads a fragmented-MP4 byte stream back into the facts the tests check: box order, the avc1
// track's size and avcC, and per fragment its sequence number, decode time, sample duration,
// size, sync flag and bytes. Written from ISO/IEC 14496-12/-15, independent of the muxer.

export interface ParsedFragment {
  readonly sequence: number;
  /** tfdt, in the track's timescale. */
  readonly time: number;
  readonly duration: number;
  readonly sync: boolean;
  readonly sample: Uint8Array;
}

export interface ParsedMp4 {
  /** Top-level box types in order, e.g. ["ftyp", "moov", "moof", "mdat", …]. */
  readonly order: string[];
  readonly timescale: number | undefined;
  readonly width: number | undefined;
  readonly height: number | undefined;
  readonly avcC: Uint8Array | undefined;
  readonly fragments: ParsedFragment[];
}

interface Box {
  readonly type: string;
  /** Where the box starts and its body starts and ends. */
  readonly start: number;
  readonly body: number;
  readonly end: number;
}

function boxes(bytes: Uint8Array, start: number, end: number): Box[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Box[] = [];
  for (let at = start; at < end; ) {
    const size = view.getUint32(at);
    if (size < 8 || at + size > end) throw new Error(`bad box size ${size} at ${at}`);
    out.push({ type: String.fromCharCode(...bytes.subarray(at + 4, at + 8)), start: at, body: at + 8, end: at + size });
    at += size;
  }
  return out;
}

const child = (bytes: Uint8Array, parent: Box, type: string): Box | undefined => boxes(bytes, parent.body, parent.end).find((b) => b.type === type);

export function readMp4(bytes: Uint8Array): ParsedMp4 {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const top = boxes(bytes, 0, bytes.byteLength);
  let timescale: number | undefined;
  let width: number | undefined;
  let height: number | undefined;
  let avcC: Uint8Array | undefined;
  const fragments: ParsedFragment[] = [];
  for (let i = 0; i < top.length; i++) {
    const box = top[i]!;
    if (box.type === "moov") {
      const trak = child(bytes, box, "trak")!;
      const tkhd = child(bytes, trak, "tkhd")!;
      width = view.getUint32(tkhd.end - 8) / 0x1_0000;
      height = view.getUint32(tkhd.end - 4) / 0x1_0000;
      const mdia = child(bytes, trak, "mdia")!;
      timescale = view.getUint32(child(bytes, mdia, "mdhd")!.body + 12);
      const stbl = child(bytes, child(bytes, mdia, "minf")!, "stbl")!;
      const stsd = child(bytes, stbl, "stsd")!;
      const avc1 = boxes(bytes, stsd.body + 8, stsd.end)[0]!;
      if (avc1.type !== "avc1") throw new Error(`sample entry ${avc1.type}`);
      // VisualSampleEntry: 78 bytes before its child boxes.
      const config = boxes(bytes, avc1.body + 78, avc1.end).find((b) => b.type === "avcC");
      avcC = config === undefined ? undefined : bytes.slice(config.body, config.end);
    } else if (box.type === "moof") {
      const mdat = top[i + 1];
      if (mdat?.type !== "mdat") throw new Error("moof without mdat after it");
      const sequence = view.getUint32(child(bytes, box, "mfhd")!.body + 4);
      const traf = child(bytes, box, "traf")!;
      const tfhd = child(bytes, traf, "tfhd")!;
      if ((view.getUint32(tfhd.body) & 0x02_0000) === 0) throw new Error("tfhd without default-base-is-moof");
      const tfdt = child(bytes, traf, "tfdt")!;
      const time = bytes[tfdt.body] === 1 ? view.getUint32(tfdt.body + 4) * 2 ** 32 + view.getUint32(tfdt.body + 8) : view.getUint32(tfdt.body + 4);
      const trun = child(bytes, traf, "trun")!;
      const flags = view.getUint32(trun.body) & 0xff_ffff;
      const count = view.getUint32(trun.body + 4);
      if (count !== 1) throw new Error(`trun with ${count} samples`);
      let at = trun.body + 8;
      const dataOffset = flags & 0x1 ? view.getInt32(at) : 0;
      at += flags & 0x1 ? 4 : 0;
      const firstFlags = flags & 0x4 ? view.getUint32(at) : undefined;
      at += flags & 0x4 ? 4 : 0;
      const duration = flags & 0x100 ? view.getUint32(at) : 0;
      at += flags & 0x100 ? 4 : 0;
      const size = flags & 0x200 ? view.getUint32(at) : 0;
      at += flags & 0x200 ? 4 : 0;
      const sampleFlags = firstFlags ?? (flags & 0x400 ? view.getUint32(at) : 0);
      const sampleStart = box.start + dataOffset;
      if (sampleStart < mdat.body || sampleStart + size > mdat.end) throw new Error("sample outside its mdat");
      fragments.push({ sequence, time, duration, sync: (sampleFlags & 0x1_0000) === 0, sample: bytes.slice(sampleStart, sampleStart + size) });
    }
  }
  return { order: top.map((b) => b.type), timescale, width, height, avcC, fragments };
}
