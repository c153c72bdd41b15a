// Player errors with stable codes: callers and tests switch on `code`, never on message text.

import type { ProtocolErrorCode } from "../../shared/protocol.js";
import { ProtocolError } from "../../shared/protocol.js";

export type PlayerErrorCode =
  | ProtocolErrorCode
  /** The WebSocket reported an error (always followed by a close). */
  | "CC_ERR_SOCKET"
  /** A text message where a binary one was expected or the other way round, or a frame before hello. */
  | "CC_ERR_UNEXPECTED_MESSAGE"
  /** `VideoDecoder` errored; the player recovers at the next keyframe. */
  | "CC_ERR_DECODE"
  /** The decoder rejected the configuration (codec or size not supported). Fatal for this stream. */
  | "CC_ERR_DECODER_UNSUPPORTED"
  /** No WebCodecs `VideoDecoder`: insecure context (needs https or localhost) or an old browser. */
  | "CC_ERR_NO_WEBCODECS"
  /** No MediaSource, or it cannot play `video/webm; codecs="vp8"`. Fatal for the MSE player. */
  | "CC_ERR_NO_MSE"
  /** The <video> or its SourceBuffer failed (decode error, rejected append); the MSE player reconnects with a fresh MediaSource. */
  | "CC_ERR_MEDIA"
  /** The SourceBuffer stayed full (QuotaExceededError) after old media was removed; the MSE player reconnects. */
  | "CC_ERR_QUOTA"
  /** The <video> did not advance although media kept arriving; the MSE player reconnects. */
  | "CC_ERR_STALLED"
  /** The browser refused to start playback without a user gesture (unmuted autoplay). */
  | "CC_ERR_AUTOPLAY";

export class PlayerError extends Error {
  override readonly name = "PlayerError";
  constructor(
    readonly code: PlayerErrorCode,
    message: string,
    /** True when the player cannot continue on its own (no retry will help). */
    readonly fatal = false,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  static from(err: unknown, fallback: PlayerErrorCode): PlayerError {
    if (err instanceof PlayerError) return err;
    if (err instanceof ProtocolError) return new PlayerError(err.code, err.message, false, { cause: err });
    const message = err instanceof Error ? err.message : String(err);
    return new PlayerError(fallback, message, false, { cause: err });
  }
}
