// A stream's recording settings, and how the config file's `record` and the `--record…` flags
// become them. Each stream records into a directory of its own under `dir`.

import { join } from "node:path";
import { ConfigError } from "../config-error.js";
import type { RetainPolicy } from "./retention.js";

export interface RecordConfig {
  /** This stream's own directory (`dir`/STREAM). */
  readonly dir: string;
  /** A segment ends at the first keyframe after this many seconds. */
  readonly segmentSeconds: number;
  readonly retain: RetainPolicy;
}

export const DEFAULT_SEGMENT_SECONDS = 60;
export const DEFAULT_RETAIN_HOURS = 24;
export const SEGMENT_SECONDS_RANGE = [2, 3600] as const;
export const RETAIN_HOURS_RANGE = [0.01, 24 * 365 * 10] as const;
/** Below a few segments' worth, retention would delete what it just wrote. */
export const MIN_MAX_BYTES = 1024 * 1024;

/** The `record` object of the config file (top level: every stream; a stream's own: its settings). */
export interface RecordEntry {
  readonly dir?: string | undefined;
  readonly segmentSeconds?: number | undefined;
  readonly retain?: { readonly hours?: number | null | undefined; readonly maxBytes?: number | null | undefined } | undefined;
}

export interface RecordFlags {
  readonly dir?: string | undefined;
  readonly segmentSeconds?: number | undefined;
  readonly retainHours?: number | undefined;
  readonly maxBytes?: number | undefined;
}

/**
 * A stream's settings: the file's top-level `record` < the stream's own < the flags. Null when it is
 * not recorded (no directory anywhere, or the stream's `record: false`).
 */
export function streamRecordConfig(
  stream: string,
  top: RecordEntry | undefined,
  own: RecordEntry | false | undefined,
  flags: RecordFlags,
  key: string,
): RecordConfig | null {
  if (own === false) return null;
  const dir = flags.dir ?? own?.dir ?? top?.dir;
  if (dir === undefined) {
    if (own !== undefined) throw new ConfigError(`${key}.record`, `names no directory: set "dir" here, in the top-level "record", or give --record DIR`);
    return null;
  }
  const hours = flags.retainHours ?? pick(own?.retain?.hours, top?.retain?.hours, DEFAULT_RETAIN_HOURS);
  const maxBytes = flags.maxBytes ?? pick(own?.retain?.maxBytes, top?.retain?.maxBytes, null);
  return {
    dir: join(dir, stream),
    segmentSeconds: flags.segmentSeconds ?? own?.segmentSeconds ?? top?.segmentSeconds ?? DEFAULT_SEGMENT_SECONDS,
    retain: { hours, maxBytes },
  };
}

/** The first that is set (null included: "no limit"), else `fallback`. */
function pick<T>(a: T | null | undefined, b: T | null | undefined, fallback: T | null): T | null {
  if (a !== undefined) return a;
  if (b !== undefined) return b;
  return fallback;
}

/** `--record-max-bytes`: a number of bytes, or with a K, M, G or T suffix (powers of 1024). */
export function parseByteSize(text: string, key: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMGT]?)i?B?$/i.exec(text.trim());
  const scale = { "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 }[(m?.[2] ?? "").toUpperCase() as "" | "K" | "M" | "G" | "T"];
  const bytes = m ? Math.round(Number(m[1]) * scale) : NaN;
  if (!Number.isFinite(bytes) || bytes < MIN_MAX_BYTES) {
    throw new ConfigError(key, `expected a size of at least 1M, e.g. 500M or 20G, got "${text}"`);
  }
  return bytes;
}
