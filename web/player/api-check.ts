// Keeps the hand-written public types (api.ts, shipped as canvascast.d.ts) honest: each must be
// the same as the implementation's, or this file fails the web typecheck. Types only; emits nothing.

import type { HelloMessage, SkippedMessage, SkipCounts } from "../../shared/protocol.js";
import type * as Api from "./api.js";
import type { PlayerError, PlayerErrorCode } from "./errors.js";
import type { PlayerMode } from "./mode.js";
import type { PlayerEvents, PlayerOptions, PlayerState, PlayerStateChange } from "./player.js";
import type { PaintMode } from "./renderer.js";
import type { PlayerStatsSnapshot } from "./stats.js";

/** Mutual assignability, plus the same keys (so an optional field added on one side is caught). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? ([keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false) : false) : false;
type Assert<T extends true> = T;

export type ApiChecks = [
  Assert<Same<Api.PlayerState, PlayerState>>,
  Assert<Same<Api.PlayerStateChange, PlayerStateChange>>,
  Assert<Same<Api.HelloMessage, HelloMessage>>,
  Assert<Same<Api.SkippedMessage, SkippedMessage>>,
  Assert<Same<Api.SkipCounts, SkipCounts>>,
  Assert<Same<Api.PlayerStatsSnapshot, PlayerStatsSnapshot>>,
  Assert<Same<Api.PlayerErrorCode, PlayerErrorCode>>,
  Assert<PlayerError extends Api.PlayerError ? true : false>,
  Assert<Same<Api.PlayerOptions, PlayerOptions>>,
  Assert<Same<Api.PaintMode, PaintMode>>,
  Assert<Same<Api.PlayerMode, PlayerMode>>,
  Assert<Same<keyof Api.PlayerEvents, keyof PlayerEvents>>,
  Assert<Same<Api.PlayerEvents["stats"], PlayerEvents["stats"]>>,
  Assert<Same<Api.PlayerEvents["state"], PlayerEvents["state"]>>,
];
