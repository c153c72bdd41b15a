// What the HTTP side (viewer sockets, /api/streams, /metrics, limits) needs of a stream, whoever
// feeds it: a pipeline of this process (live-stream.ts) or an origin through NATS (cluster/edge-stream.ts).
// A player cannot tell the two apart.

import type { EncodingInfo, MseInfo, RelayInfo, StreamInfo } from "../../shared/api.js";
import { mseFormatOf } from "../../shared/mse.js";
import type { EncodingName, SkipCounts } from "../../shared/protocol.js";
import type { Millis } from "../../shared/units.js";
import type { StreamFanout } from "./fanout.js";
import type { VideoInfo } from "./messages.js";
import { VIEWER_MODES } from "./viewer.js";

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
    /** On an edge: how it comes from the origin. */
    readonly relay: { info(): RelayInfo } | null = null,
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
      ...(this.relay !== null ? { relay: this.relay.info() } : {}),
    };
  }
}

/** What only the stream's feeder knows, for its /api/streams entry. */
export interface StreamFacts {
  readonly source: string;
  readonly keyframeIntervalS: number;
  readonly restarts: number;
  readonly pipelinePid?: number;
  /** An edge's: the origin it follows. */
  readonly origin?: string;
}

/** The stream's /api/streams entry: what its fan-outs measure, and `facts`. */
export function describeStream(stream: ServedStream, facts: StreamFacts, encodings: readonly EncodingInfo[] = [...stream.encodings.values()].map((e) => e.info())): StreamInfo {
  const full = encodings[0]!;
  const reason = stream.fanout.stateReason;
  const fanouts = [...stream.encodings.values()].map((e) => e.fanout);
  return {
    name: stream.name,
    state: stream.fanout.state,
    ...(reason !== undefined ? { reason } : {}),
    source: facts.source,
    ...(facts.origin !== undefined ? { origin: facts.origin } : {}),
    width: full.width,
    height: full.height,
    framerate: full.framerate,
    targetKbps: full.targetKbps,
    keyframeIntervalS: facts.keyframeIntervalS,
    codec: stream.fanout.codecString,
    mse: mseInfo(stream.name, stream.fanout.codecString),
    fps: full.fps,
    kbps: full.kbps,
    viewers: stream.viewerCount,
    framesIn: full.framesIn,
    gopFrames: full.gopFrames,
    skipped: sumSkips(fanouts.flatMap((f) => VIEWER_MODES.map((mode) => f.skipped(mode)))),
    restarts: facts.restarts,
    ...(facts.pipelinePid !== undefined ? { pipelinePid: facts.pipelinePid } : {}),
    encodings,
    clients: fanouts.flatMap((f) => f.viewerInfos()),
  };
}

function sumSkips(counts: readonly SkipCounts[]): SkipCounts {
  let lagging = 0;
  let bufferFull = 0;
  for (const c of counts) {
    lagging += c.lagging;
    bufferFull += c["buffer-full"];
  }
  return { lagging, "buffer-full": bufferFull };
}

/** Where `stream` plays through MSE, for the codec string hello says. */
export function mseInfo(stream: string, codec: string): MseInfo | null {
  const format = mseFormatOf(codec);
  if (format === null) return null;
  return { path: `/${format.container}/${encodeURIComponent(stream)}`, container: format.container, mimeType: format.mimeType };
}
