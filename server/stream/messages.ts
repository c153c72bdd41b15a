// JSON messages both outputs (/ws/ and /webm/?meta=1) send, and the rule for a socket that does not read.

import { CloseCode, PROTOCOL_VERSION, type HelloMessage, type EncodingName, type StateMessage, type StreamState } from "../../shared/protocol.js";
import { wallClockMs, type Millis } from "../../shared/units.js";

export interface VideoInfo {
  readonly width: number;
  readonly height: number;
  readonly framerate: number;
}

/** `codec`: the WebCodecs codec string (docs/protocol.md, Codecs). */
export function helloMessage(stream: string, encoding: EncodingName, video: VideoInfo, codec: string): HelloMessage {
  return {
    type: "hello",
    protocol: PROTOCOL_VERSION,
    stream,
    encoding,
    codec,
    width: video.width,
    height: video.height,
    framerate: video.framerate,
    serverTime: wallClockMs(),
  };
}

export function stateMessage(state: StreamState, reason?: string, retryInMs?: number): StateMessage {
  return {
    type: "state",
    state,
    ...(reason !== undefined ? { reason } : {}),
    ...(retryInMs !== undefined ? { retryInMs: Math.round(retryInMs) } : {}),
  };
}

/** What the slow-socket rule needs of a viewer. */
export interface QueueWatched {
  readonly socket: { readonly bufferedAmount: number; close(code?: number, reason?: string): void };
  /** Since when the socket's queue has been over the limit; null while under it. */
  overLimitSince: Millis | null;
}

/**
 * A socket whose queue stays over `limitBytes` for longer than `graceMs` is not reading at all:
 * closes it with 4408 and returns true.
 */
export function closeIfStuck(viewer: QueueWatched, now: Millis, limitBytes: number, graceMs: number): boolean {
  const queued = viewer.socket.bufferedAmount;
  if (queued <= limitBytes) {
    viewer.overLimitSince = null;
    return false;
  }
  viewer.overLimitSince ??= now;
  if (now - viewer.overLimitSince <= graceMs) return false;
  viewer.socket.close(CloseCode.TOO_SLOW, `too slow: ${queued} bytes queued for over ${Math.round(graceMs / 1000)} s`);
  return true;
}
