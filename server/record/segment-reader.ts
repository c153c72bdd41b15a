// Reads the frames of a recorded segment back (for recovery after a crash, and for playback from
// the recording), with mediabunny's demuxers, as the live stream carries them: H.264, which an MP4
// holds length-prefixed with its parameter sets in avcC, comes back in Annex B with SPS and PPS on
// every keyframe (avcc.ts). A segment still being written is read up to its last complete cluster
// or fragment.

import { ALL_FORMATS, EncodedPacketSink, FilePathSource, Input, type EncodedPacket } from "mediabunny";
import { avccToAnnexB, parseAvcC, type AvcConfig } from "./avcc.js";

export interface RecordedFrame {
  readonly data: Uint8Array;
  readonly key: boolean;
  /** µs from the segment's start. */
  readonly timeUs: number;
  readonly durationUs: number;
}

export class SegmentReader {
  private constructor(
    private readonly input: Input,
    private readonly sink: EncodedPacketSink,
    /** An MP4's H.264: its avcC, to turn each frame back into Annex B; null for the codecs WebM holds as they are. */
    private readonly avc: AvcConfig | null,
  ) {}

  /** Opens `path`; rejects when it is not a readable segment (no video track, no complete cluster). */
  static async open(path: string): Promise<SegmentReader> {
    const input = new Input({ source: new FilePathSource(path), formats: ALL_FORMATS });
    try {
      const track = await input.getPrimaryVideoTrack();
      if (track === null) throw new Error("the file has no video track");
      const config = await track.getDecoderConfig();
      const description = bytesOf(config?.description);
      const avc = config?.codec.startsWith("avc1") && description !== undefined ? parseAvcC(description) : null;
      return new SegmentReader(input, new EncodedPacketSink(track), avc);
    } catch (err) {
      input.dispose();
      throw err;
    }
  }

  /**
   * The frames from the last keyframe at or before `fromUs` (the first keyframe when it is before
   * them all) to the end of what is written.
   */
  async *frames(fromUs = 0): AsyncGenerator<RecordedFrame> {
    const start = (await this.sink.getKeyPacket(fromUs / 1e6, { verifyKeyPackets: true })) ?? (await this.sink.getFirstPacket());
    if (start === null) return;
    for await (const packet of this.sink.packets(start)) yield this.recordedFrame(packet);
  }

  /** The frames after the one at `afterUs` (for following a segment that is still being written). */
  async *framesAfter(afterUs: number): AsyncGenerator<RecordedFrame> {
    const at = await this.sink.getPacket(afterUs / 1e6);
    const next = at === null ? await this.sink.getFirstPacket() : await this.sink.getNextPacket(at);
    if (next === null) return;
    for await (const packet of this.sink.packets(next)) if (Math.round(packet.timestamp * 1e6) > afterUs) yield this.recordedFrame(packet);
  }

  private recordedFrame(packet: EncodedPacket): RecordedFrame {
    const key = packet.type === "key";
    return {
      data: this.avc === null ? packet.data : avccToAnnexB(packet.data, this.avc, key),
      key,
      timeUs: Math.round(packet.timestamp * 1e6),
      durationUs: Math.round(packet.duration * 1e6),
    };
  }

  close(): void {
    this.input.dispose();
  }
}

function bytesOf(source: ArrayBufferLike | ArrayBufferView | undefined): Uint8Array | undefined {
  if (source === undefined) return undefined;
  return ArrayBuffer.isView(source) ? new Uint8Array(source.buffer, source.byteOffset, source.byteLength) : new Uint8Array(source);
}
