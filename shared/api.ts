// JSON shapes of the HTTP API (`GET /api/streams`), shared by the server and the dashboard.

import type { StreamState } from "./protocol.js";

export interface StreamInfo {
  readonly name: string;
  readonly state: StreamState;
  /** Why the stream is not live (the pipeline's error text), when it is not. */
  readonly reason?: string;
  /** Operator-facing description of the source, e.g. "test pattern" or "v4l2:/dev/video0". */
  readonly source: string;
  /** Configured size and rate. The live caps, once known, replace them. */
  readonly width: number;
  readonly height: number;
  readonly framerate: number;
  /** Target bitrate, kbit/s. */
  readonly targetKbps: number;
  readonly keyframeIntervalS: number;
  /** Measured over the last few seconds. */
  readonly fps: number;
  readonly kbps: number;
  readonly viewers: number;
  readonly framesIn: number;
  /** Frames in the GOP cache (last keyframe and the frames since). */
  readonly gopFrames: number;
}

export interface StreamsResponse {
  readonly streams: readonly StreamInfo[];
}
