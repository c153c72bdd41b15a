// Command-line flags → a validated configuration. Every problem names the flag and what is wrong.

import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import type { LogLevel } from "./log.js";
import { isLogLevel } from "./log.js";
import type { EncodeSettings, SourceSpec } from "./source/pipeline.js";
import type { StreamConfig } from "./stream/live-stream.js";

export const DEFAULT_PORT = 8080;
export const DEFAULT_HOST = "127.0.0.1";
export const DEFAULT_STREAM = "cam0";
export const DEFAULT_CAMERA = "/dev/video0";

export const DEFAULT_SETTINGS: EncodeSettings = {
  width: 640,
  height: 480,
  framerate: 30,
  bitrateKbps: 1500,
  keyframeIntervalS: 1,
};

/** videotestsrc patterns worth offering (gst-inspect-1.0 videotestsrc lists them all). */
const TEST_PATTERNS = new Set([
  "smpte", "snow", "black", "white", "red", "green", "blue", "checkers-1", "checkers-2", "checkers-4",
  "checkers-8", "circular", "blink", "smpte75", "zone-plate", "gamut", "chroma-zone-plate", "solid-color",
  "ball", "smpte100", "bar", "pinwheel", "spokes", "gradient", "colors", "smpte-rp-219",
]);

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly code = "CC_ERR_CONFIG";
  constructor(
    /** The flag (or config key) at fault. */
    readonly key: string,
    message: string,
  ) {
    super(`${key}: ${message}`);
  }
}

export interface AppConfig {
  readonly host: string;
  readonly port: number;
  readonly webRoot: string;
  readonly logLevel: LogLevel;
  readonly streams: readonly StreamConfig[];
  /** A viewer lagging more than this (from its acks) skips to the next keyframe. */
  readonly maxLagMs: number;
  /** A pipeline with no frame for this long is restarted. */
  readonly stallTimeoutMs: number;
  /** WebSocket ping interval; a socket silent for two intervals is terminated. */
  readonly heartbeatMs: number;
}

export const DEFAULT_MAX_LAG_MS = 500;
export const DEFAULT_STALL_TIMEOUT_S = 5;
export const DEFAULT_HEARTBEAT_S = 10;

export interface ParsedCli {
  readonly help: boolean;
  readonly config: AppConfig;
  /** How `--source auto` was resolved, for the start-up message. */
  readonly sourceNote: string | null;
}

export const USAGE = `Usage: npm run serve -- [options]

  --port N                 HTTP port (default ${DEFAULT_PORT}; 0 picks a free one)
  --host ADDR              address to listen on (default ${DEFAULT_HOST}; 0.0.0.0 for every interface)
  --source SRC             auto | test | test:PATTERN | v4l2:/dev/videoN (default auto:
                           ${DEFAULT_CAMERA} if it exists, otherwise the test pattern)
  --size WxH               picture size (default ${DEFAULT_SETTINGS.width}x${DEFAULT_SETTINGS.height})
  --fps N                  frames per second (default ${DEFAULT_SETTINGS.framerate})
  --bitrate KBPS           target bitrate in kbit/s (default ${DEFAULT_SETTINGS.bitrateKbps})
  --keyframe-interval S    seconds between keyframes (default ${DEFAULT_SETTINGS.keyframeIntervalS})
  --max-lag-ms MS          a viewer further behind than this skips to the next keyframe
                           (default ${DEFAULT_MAX_LAG_MS})
  --stall-timeout S        restart a pipeline that produced no frame for S seconds
                           (default ${DEFAULT_STALL_TIMEOUT_S})
  --heartbeat S            ping viewers every S seconds; drop those silent for two pings
                           (default ${DEFAULT_HEARTBEAT_S})
  --log-level LEVEL        debug | info | warn | error (default info)
  --web-root DIR           built web client to serve (default dist/web)
  -h, --help               this text
`;

export interface ParseOptions {
  readonly defaultWebRoot: string;
  /** Injected for tests; defaults to fs.existsSync. */
  readonly deviceExists?: (path: string) => boolean;
}

export function parseCli(argv: readonly string[], options: ParseOptions): ParsedCli {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: "string" },
        host: { type: "string" },
        source: { type: "string" },
        size: { type: "string" },
        fps: { type: "string" },
        bitrate: { type: "string" },
        "keyframe-interval": { type: "string" },
        "log-level": { type: "string" },
        "max-lag-ms": { type: "string" },
        "stall-timeout": { type: "string" },
        heartbeat: { type: "string" },
        "web-root": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (err) {
    // parseArgs quotes the flag at fault: "Unknown option '--bogus'", "Option '--port <value>' argument missing".
    const message = (err as Error).message;
    throw new ConfigError(/'(-{1,2}[A-Za-z0-9-]+)/.exec(message)?.[1] ?? "arguments", message);
  }
  const deviceExists = options.deviceExists ?? existsSync;
  const { source, note } = parseSource(values.source ?? "auto", deviceExists);
  const size = values.size === undefined ? null : parseSize(values.size);
  const settings: EncodeSettings = {
    width: size?.width ?? DEFAULT_SETTINGS.width,
    height: size?.height ?? DEFAULT_SETTINGS.height,
    framerate: values.fps === undefined ? DEFAULT_SETTINGS.framerate : intInRange("--fps", values.fps, 1, 120),
    bitrateKbps: values.bitrate === undefined ? DEFAULT_SETTINGS.bitrateKbps : intInRange("--bitrate", values.bitrate, 50, 50_000),
    keyframeIntervalS:
      values["keyframe-interval"] === undefined
        ? DEFAULT_SETTINGS.keyframeIntervalS
        : // At most 30 s: a WebM cluster (one GOP) can span at most 32.7 s.
          numberInRange("--keyframe-interval", values["keyframe-interval"], 0.1, 30),
  };
  const logLevel = values["log-level"] ?? "info";
  if (!isLogLevel(logLevel)) throw new ConfigError("--log-level", `expected debug, info, warn or error, got "${logLevel}"`);
  return {
    help: values.help ?? false,
    sourceNote: note,
    config: {
      host: parseHost(values.host ?? DEFAULT_HOST),
      port: values.port === undefined ? DEFAULT_PORT : intInRange("--port", values.port, 0, 65535),
      webRoot: values["web-root"] ?? options.defaultWebRoot,
      logLevel,
      streams: [{ name: DEFAULT_STREAM, source, settings }],
      maxLagMs: values["max-lag-ms"] === undefined ? DEFAULT_MAX_LAG_MS : intInRange("--max-lag-ms", values["max-lag-ms"], 50, 60_000),
      stallTimeoutMs:
        1000 * (values["stall-timeout"] === undefined ? DEFAULT_STALL_TIMEOUT_S : numberInRange("--stall-timeout", values["stall-timeout"], 0.5, 600)),
      heartbeatMs:
        1000 * (values.heartbeat === undefined ? DEFAULT_HEARTBEAT_S : numberInRange("--heartbeat", values.heartbeat, 0.2, 3600)),
    },
  };
}

export function parseSource(text: string, deviceExists: (path: string) => boolean): { source: SourceSpec; note: string | null } {
  if (text === "auto") {
    return deviceExists(DEFAULT_CAMERA)
      ? { source: { kind: "v4l2", device: DEFAULT_CAMERA }, note: `found camera ${DEFAULT_CAMERA}` }
      : { source: { kind: "test", pattern: "smpte" }, note: `no camera at ${DEFAULT_CAMERA}; using the test pattern` };
  }
  if (text === "test") return { source: { kind: "test", pattern: "smpte" }, note: null };
  if (text.startsWith("test:")) {
    const pattern = text.slice(5);
    if (!TEST_PATTERNS.has(pattern)) {
      throw new ConfigError("--source", `unknown test pattern "${pattern}" (try smpte, ball, snow, pinwheel)`);
    }
    return { source: { kind: "test", pattern }, note: null };
  }
  if (text.startsWith("v4l2:")) {
    const device = text.slice(5);
    // The path becomes part of a gst-launch description: allow only plain device paths.
    if (!/^\/dev\/[A-Za-z0-9_./-]+$/.test(device) || device.includes("..")) {
      throw new ConfigError("--source", `"${device}" is not a device path like /dev/video0`);
    }
    return { source: { kind: "v4l2", device }, note: null };
  }
  throw new ConfigError("--source", `expected auto, test, test:PATTERN or v4l2:/dev/videoN, got "${text}"`);
}

export function parseSize(text: string): { width: number; height: number } {
  const m = /^(\d{1,5})x(\d{1,5})$/.exec(text);
  const width = m ? Number(m[1]) : NaN;
  const height = m ? Number(m[2]) : NaN;
  // VP8 needs even dimensions for 4:2:0 and at most 16383.
  if (!m || width < 16 || height < 16 || width > 16383 || height > 16383 || width % 2 || height % 2) {
    throw new ConfigError("--size", `expected WIDTHxHEIGHT with even numbers from 16 to 16382, got "${text}"`);
  }
  return { width, height };
}

function parseHost(text: string): string {
  if (!/^[A-Za-z0-9.:\-[\]]+$/.test(text)) throw new ConfigError("--host", `"${text}" is not a host name or address`);
  return text;
}

function intInRange(key: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) {
    throw new ConfigError(key, `expected a whole number from ${min} to ${max}, got "${text}"`);
  }
  return n;
}

function numberInRange(key: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || n < min || n > max) {
    throw new ConfigError(key, `expected a number from ${min} to ${max}, got "${text}"`);
  }
  return n;
}
