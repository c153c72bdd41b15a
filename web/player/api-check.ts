// Keeps the public types (api.ts, shipped as canvascast.d.ts) honest where they cannot be the
// implementation's own: api.ts imports nothing, so the wire types of shared/protocol.ts are copied
// there, and the runtime lists behind PlayerMode and the protocol's error codes live elsewhere. Each
// copy must match, or this file fails the web typecheck. Types only; emits nothing.

import type { EncodingName, HelloMessage, ProtocolErrorCode, SkippedMessage, SkipCounts } from "../../shared/protocol.js";
import type * as Api from "./api.js";
import type { PlayerError } from "./errors.js";
import type { PLAYER_MODES } from "./play.js";

/** Mutual assignability, plus the same keys (so an optional field added on one side is caught). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? ([keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false) : false) : false;
type Assert<T extends true> = T;

export type ApiChecks = [
  Assert<Same<Api.HelloMessage, HelloMessage>>,
  Assert<Same<Api.Encoding, EncodingName>>,
  Assert<Same<Api.SkippedMessage, SkippedMessage>>,
  Assert<Same<Api.SkipCounts, SkipCounts>>,
  Assert<[ProtocolErrorCode] extends [Api.PlayerErrorCode] ? true : false>,
  Assert<PlayerError extends Api.PlayerError ? true : false>,
  Assert<Same<Api.PlayerMode, (typeof PLAYER_MODES)[number]>>,
];
