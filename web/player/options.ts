// The player's options with their defaults, written once: every player (main thread, worker,
// MSE) resolves what it was given here.

import type { Encoding, PaintMode, PlayerOptions } from "./api.js";

export type ResolvedPlayerOptions = {
  readonly [K in keyof PlayerOptions]-?: Exclude<PlayerOptions[K], undefined>;
};

export const DEFAULT_PLAYER_OPTIONS: ResolvedPlayerOptions = {
  reconnect: true,
  statsIntervalMs: 500,
  reconnectDelayMs: 500,
  maxReconnectDelayMs: 10_000,
  pauseWhenHidden: true,
  pauseWhenOffscreen: true,
  paintMode: "decode" satisfies PaintMode,
  encoding: "full" satisfies Encoding,
  meta: true,
  liveSync: true,
};

/** `options` with every unset (or `undefined`) option at its default. */
export function resolvePlayerOptions(options: PlayerOptions = {}): ResolvedPlayerOptions {
  const out: Record<string, unknown> = { ...DEFAULT_PLAYER_OPTIONS };
  for (const key of Object.keys(DEFAULT_PLAYER_OPTIONS) as (keyof PlayerOptions)[]) {
    const value = options[key];
    if (value !== undefined) out[key] = value;
  }
  return out as ResolvedPlayerOptions;
}

/** Only the player's own options, e.g. from PlayOptions that also carry `worker` (for postMessage). */
export function playerOptionsOf(options: PlayerOptions): PlayerOptions {
  return resolvePlayerOptions(options);
}
