// What the HTTP side (viewer sockets, /api/streams, /metrics, limits) needs of a stream, whoever
// feeds it: a pipeline of this process (live-stream.ts) or an origin through NATS (cluster/edge-stream.ts).
// A player cannot tell the two apart.

import type { EncodingInfo, StreamInfo } from "../../shared/api.js";
import type { EncodingName } from "../../shared/protocol.js";
import type { Millis } from "../../shared/units.js";
import type { StreamFanout } from "./fanout.js";
import type { VideoInfo } from "./messages.js";

export interface ServedStream {
  readonly name: string;
  /** Every encoding the stream has, "full" first. */
  readonly encodings: ReadonlyMap<EncodingName, StreamEncoding>;
  /** The full encoding's viewers, of /ws/ and MSE alike. */
  readonly fanout: StreamFanout;
  /** The fan-out of one of its encodings; undefined for one it does not have. */
  encoding(name: EncodingName): StreamFanout | undefined;
  /** Viewers of every encoding and mode. */
  readonly viewerCount: number;
  /** Times its pipeline was restarted after the first start (an edge reports its origin's count). */
  readonly restarts: number;
  info(): StreamInfo;
  /** Closes its viewers (1001) and stops what feeds it. Safe to call twice. */
  close(): Promise<void>;
}

/** One encoding of a stream: what it was configured as, its viewers, and when its last frame came. */
export class StreamEncoding {
  lastFrameAt: Millis | null = null;
  constructor(
    readonly name: EncodingName,
    /** Configured size and rate (hello uses the live caps once known). */
    readonly target: VideoInfo,
    readonly targetKbps: number,
    readonly fanout: StreamFanout,
  ) {}

  info(): EncodingInfo {
    const video = this.fanout.videoInfo;
    const { fps, kbps } = this.fanout.rates();
    return {
      name: this.name,
      width: video.width,
      height: video.height,
      framerate: video.framerate,
      targetKbps: this.targetKbps,
      fps: Math.round(fps * 10) / 10,
      kbps: Math.round(kbps),
      viewers: this.fanout.viewerCount(),
      pausedViewers: this.fanout.pausedViewerCount,
      framesIn: this.fanout.framesIn,
      gopFrames: this.fanout.gopFrames,
    };
  }
}
