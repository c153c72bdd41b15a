// One recorded segment on disk, written with mediabunny: WebM for VP8, VP9 and AV1, MP4 for H.264.
// While open, every frame goes to the file as mediabunny emits it (no chunking, no in-memory
// index): a SIGKILL or power loss leaves a file that demuxers read up to its last complete WebM
// cluster or fMP4 fragment. Finishing it writes the duration and index (WebM Cues, the MP4
// fragments' random-access table), so any player can seek in a finished segment.

import { open, type FileHandle } from "node:fs/promises";
import { EncodedPacket, EncodedVideoPacketSource, Mp4OutputFormat, Output, StreamTarget, WebMOutputFormat, type VideoCodec } from "mediabunny";
import type { CodecName } from "../../shared/codec.js";

export type SegmentContainer = "webm" | "mp4";

/** What a segment holds: one video track. */
export interface SegmentFormat {
  readonly codecName: CodecName;
  /** The WebCodecs codec string (hello's). */
  readonly codec: string;
  readonly width: number;
  readonly height: number;
  readonly framerate: number;
}

export const containerOf = (codec: CodecName): SegmentContainer => (codec === "h264" ? "mp4" : "webm");

const MEDIABUNNY_CODEC: Readonly<Record<CodecName, VideoCodec>> = { vp8: "vp8", vp9: "vp9", av1: "av1", h264: "avc" };

/** A WebM cluster or MP4 fragment starts at each keyframe (a keyframe interval, 1 s by default): what a crash can lose. */
const FRAGMENT_S = 0;

export class SegmentFile {
  private readonly output: Output;
  private readonly source: EncodedVideoPacketSource;
  private started = false;
  private ended = false;
  /** Bytes written to the file so far. */
  bytes = 0;
  frames = 0;

  private constructor(
    readonly path: string,
    private readonly file: FileHandle,
    readonly format: SegmentFormat,
  ) {
    const target = new StreamTarget(
      new WritableStream({
        write: async (chunk: { data: Uint8Array; position: number }) => {
          await this.file.write(chunk.data, 0, chunk.data.byteLength, chunk.position);
          this.bytes = Math.max(this.bytes, chunk.position + chunk.data.byteLength);
        },
      }),
      { chunked: false },
    );
    const container = containerOf(format.codecName);
    this.output = new Output({
      format:
        container === "webm"
          ? new WebMOutputFormat({ minimumClusterDuration: FRAGMENT_S })
          : new Mp4OutputFormat({ fastStart: "fragmented", minimumFragmentDuration: FRAGMENT_S }),
      target,
    });
    this.source = new EncodedVideoPacketSource(MEDIABUNNY_CODEC[format.codecName]);
    // No frameRate: mediabunny would round every timestamp to it, and a camera's are its own.
    this.output.addVideoTrack(this.source);
  }

  /** Creates (truncates) the file at `path`. Rejects with the file system's error (ENOSPC, EACCES, …). */
  static async create(path: string, format: SegmentFormat): Promise<SegmentFile> {
    const file = await open(path, "w", 0o644);
    return new SegmentFile(path, file, format);
  }

  /** Adds one frame; `timeUs` from the segment's start, increasing; the first must be a keyframe. */
  async add(data: Uint8Array, key: boolean, timeUs: number, durationUs: number): Promise<void> {
    if (this.ended) throw new Error("segment already ended");
    if (!this.started) {
      if (!key) throw new RangeError("a segment starts at a keyframe");
      await this.output.start();
      this.started = true;
    }
    const packet = new EncodedPacket(data, key ? "key" : "delta", timeUs / 1e6, durationUs / 1e6);
    await this.source.add(
      packet,
      this.frames === 0
        ? { decoderConfig: { codec: this.format.codec, codedWidth: this.format.width, codedHeight: this.format.height } }
        : undefined,
    );
    this.frames++;
  }

  /** Writes the index and duration and closes the file. */
  async finish(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    try {
      if (this.started) await this.output.finalize();
      else await this.output.cancel();
    } finally {
      await this.file.close();
    }
  }

  /** Closes the file as it is (after a write error: what is written stays readable). Safe to call twice. */
  async abandon(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.output.cancel().catch(() => {});
    await this.file.close().catch(() => {});
  }
}
