// Player errors with stable codes: callers and tests switch on `code`, never on message text.

import type { PlayerErrorCode } from "./api.js";
import { ProtocolError } from "../../shared/protocol.js";

// The codes are listed, with what each means, in api.ts; ProtocolError's are among them.
export type { PlayerErrorCode } from "./api.js";

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
