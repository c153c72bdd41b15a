// Command-line flags → a validated configuration. Every problem names the flag and what is wrong.

import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { parseAccessConfig, parseTlsConfig, TOKENS_ENV } from "./access-config.js";
import { parseClusterConfig, type ClusterConfig } from "./cluster/nats-config.js";
import { ConfigError } from "./config-error.js";
import { ConfigFileError, readConfigFile, STREAM_NAME, type ConfigFile, type ConfigFileStream, type ConfigFileTile } from "./config-file.js";
import {
  DEFAULT_RETAIN_HOURS,
  DEFAULT_SEGMENT_SECONDS,
  parseByteSize,
  RETAIN_HOURS_RANGE,
  SEGMENT_SECONDS_RANGE,
  streamRecordConfig,
  type RecordConfig,
  type RecordFlags,
} from "./record/record-config.js";
import { BURST_FACTOR, BURST_WINDOW_S, DEFAULT_LIMITS, LIMIT_RANGES, type LimitsConfig } from "./http/limits.js";
import type { ServerWarning } from "../shared/api.js";
import type { AccessConfig } from "./http/access.js";
import type { TlsConfig } from "./http/tls.js";
import { CODEC_SETTINGS, DEFAULT_CODEC, isCodecSetting, type CodecSetting } from "./codecs/registry.js";
import type { LogLevel } from "./log.js";
import { isLogLevel } from "./log.js";
import { canCopy, describeSource, type EncodeSettings, type SourceSpec } from "./source/pipeline.js";
import { parseRtspUrl, redactCredentials, RtspUrlError } from "./source/rtsp.js";
import type { StreamConfig } from "./stream/live-stream.js";
import { DEFAULT_TILE_KBPS, DEFAULT_TILE_WIDTH, fileStreamTile, flagStreamTile, type TileFlag, type TileRequest } from "./tile-config.js";

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
  codec: DEFAULT_CODEC,
};

/** videotestsrc patterns worth offering (gst-inspect-1.0 videotestsrc lists them all). */
const TEST_PATTERNS = new Set([
  "smpte", "snow", "black", "white", "red", "green", "blue", "checkers-1", "checkers-2", "checkers-4",
  "checkers-8", "circular", "blink", "smpte75", "zone-plate", "gamut", "chroma-zone-plate", "solid-color",
  "ball", "smpte100", "bar", "pinwheel", "spokes", "gradient", "colors", "smpte-rp-219",
]);

export { ConfigError };

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
  /** Viewer caps, connection rate, request timeout. */
  readonly limits: LimitsConfig;
  /** Tokens and allowed origins. */
  readonly access: AccessConfig;
  /** Null: plain http. */
  readonly tls: TlsConfig | null;
  /** Found while reading the configuration (e.g. a token file other users may read); shown like the app's own. */
  readonly warnings: readonly ServerWarning[];
  /** Null: this process alone (the default). Otherwise an origin publishing to NATS, or an edge serving what origins publish. */
  readonly cluster: ClusterConfig | null;
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

  --config FILE            JSON config file (streams, defaults, server settings; see README)
  --stream NAME=SOURCE     serve a stream (repeatable); SOURCE is test | test:PATTERN |
                           v4l2:/dev/videoN | rtsp://[USER:PASS@]HOST[:PORT]/PATH |
                           gst:PIPELINE-FRAGMENT (ending in raw video, or encoded for --codec copy)
  --source SRC             the single stream "${DEFAULT_STREAM}" when no streams are configured: auto | test |
                           test:PATTERN | v4l2:/dev/videoN | rtsp://… | gst:FRAGMENT (default auto:
                           ${DEFAULT_CAMERA} if it exists, otherwise the test pattern)
  --port N                 HTTP port (default ${DEFAULT_PORT}; 0 picks a free one)
  --host ADDR              address to listen on (default ${DEFAULT_HOST}; 0.0.0.0 for every
                           interface: then configure a token, or a warning says anyone can watch)
  --size WxH               picture size (default ${DEFAULT_SETTINGS.width}x${DEFAULT_SETTINGS.height})
  --fps N                  frames per second (default ${DEFAULT_SETTINGS.framerate})
  --bitrate KBPS           target bitrate in kbit/s (default ${DEFAULT_SETTINGS.bitrateKbps})
  --keyframe-interval S    seconds between keyframes, at most 30 (default ${DEFAULT_SETTINGS.keyframeIntervalS})
  --codec NAME             ${CODEC_SETTINGS.join(" | ")} (default ${DEFAULT_SETTINGS.codec}); the tile encoding uses the same;
                           copy forwards what an rtsp:// or gst: source already encodes (H.264, VP8, VP9, AV1)
  --tile WxH | off         the smaller encoding for grids (/ws/NAME?encoding=tile), encoded in the
                           same pipeline: its size, or off for none (default: ${DEFAULT_TILE_WIDTH} wide with the
                           stream's aspect, its fps, ${DEFAULT_TILE_KBPS} kbit/s, for streams from flags that are
                           wider; config-file streams get one when the file sets "tile")
  --max-lag-ms MS          a viewer further behind than this skips to the next keyframe
                           (default ${DEFAULT_MAX_LAG_MS})
  --stall-timeout S        restart a pipeline that produced no frame for S seconds
                           (default ${DEFAULT_STALL_TIMEOUT_S})
  --heartbeat S            ping viewers every S seconds; drop those silent for two pings
                           (default ${DEFAULT_HEARTBEAT_S})
  --max-viewers-per-stream N
                           viewers of one stream, /ws/ and /webm/ together; more are
                           refused with HTTP 503 (default ${DEFAULT_LIMITS.maxViewersPerStream})
  --max-viewers N          viewers of all streams together (default ${DEFAULT_LIMITS.maxViewers})
  --max-connections-per-second N
                           new connections per client address per second, with a burst of
                           ${BURST_FACTOR}N more per ${BURST_WINDOW_S} s; more are refused with HTTP 429; 0: no limit
                           (default ${DEFAULT_LIMITS.maxConnectionsPerSecond})
  --request-timeout S      a request whose headers have not all arrived after S seconds is
                           answered 408 and closed (default ${DEFAULT_LIMITS.requestTimeoutMs / 1000})
  --token SECRET[:STREAMS] require this token on every stream socket and /api/* (repeatable);
                           :door,yard limits it to those streams. ?token= in URLs or
                           Authorization: Bearer. SECRET: 16-256 of A-Z a-z 0-9 . _ ~ -
                           Other users can read command lines (ps): prefer --token-file
                           or the environment variable ${TOKENS_ENV}
  --token-file FILE        more tokens, one SECRET[:STREAMS] a line; blank lines and # comments
                           skipped (repeatable; keep it chmod 600, or a warning says so)
  --allow-origin ORIGIN    pages from ORIGIN may open stream sockets (repeatable; * for any);
                           the server's own origin and loopback origins always may
  --tls-cert FILE          serve https and wss with this certificate (PEM) ...
  --tls-key FILE           ... and its private key (PEM)
  --tls-self-signed        make (once) and reuse a self-signed certificate; prints its fingerprint
  --tls-dir DIR            where --tls-self-signed keeps it (default
                           $XDG_STATE_HOME/canvascast/tls or ~/.local/state/canvascast/tls)
  --nats URL[,URL…]        an origin: also publish the streams to this NATS cluster
                           (nats://HOST:PORT, tls://HOST:PORT), for edges to serve
  --edge                   an edge: no pipelines; serve the streams origins publish on --nats
  --nats-prefix P          first token of the NATS subjects (default canvascast)
  --nats-user NAME         NATS user; its password from --nats-password-file FILE or
                           the environment variable CANVASCAST_NATS_PASSWORD
  --nats-token-file FILE   NATS token (or CANVASCAST_NATS_TOKEN)
  --nats-nkey-file FILE    NATS nkey seed (SU…)
  --nats-creds FILE        NATS user credentials file (.creds: JWT and seed)
  --nats-tls-ca FILE       CA that signed the NATS servers' certificates (PEM)
  --nats-tls-cert FILE     client certificate for NATS (PEM), with --nats-tls-key FILE
  --record DIR             record every stream into DIR/STREAM/ (segments of WebM, or MP4 for H.264)
  --record-segment S       seconds per segment, ending at the next keyframe (default ${DEFAULT_SEGMENT_SECONDS})
  --record-retain-hours H  delete segments older than H hours (default ${DEFAULT_RETAIN_HOURS})
  --record-max-bytes SIZE  and the oldest beyond SIZE per stream, e.g. 500M, 20G (default: no limit)
  --log-level LEVEL        debug | info | warn | error (default info)
  --web-root DIR           built web client to serve (default dist/web)
  -h, --help               this text

--size, --fps, --bitrate, --keyframe-interval, --codec and --tile apply to every stream; flags win over
the config file. Tokens add up: the config file's ("tokens", "tokenFile"), --token, --token-file and
${TOKENS_ENV} (SECRET[:STREAMS] values separated by white space).
`;

export interface ParseOptions {
  readonly defaultWebRoot: string;
  /** Injected for tests; defaults to fs.existsSync. */
  readonly deviceExists?: (path: string) => boolean;
  /** Injected for tests; defaults to reading the file as UTF-8. */
  readonly readFile?: (path: string) => string;
  /** Injected for tests; defaults to process.env (read: CANVASCAST_TOKENS, CANVASCAST_NATS_PASSWORD, CANVASCAST_NATS_TOKEN). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** Built-in defaults < config file < command-line flags. */
export function parseCli(argv: readonly string[], options: ParseOptions): ParsedCli {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: "string" },
        stream: { type: "string", multiple: true },
        port: { type: "string" },
        host: { type: "string" },
        source: { type: "string" },
        size: { type: "string" },
        fps: { type: "string" },
        bitrate: { type: "string" },
        "keyframe-interval": { type: "string" },
        codec: { type: "string" },
        tile: { type: "string" },
        "log-level": { type: "string" },
        "max-lag-ms": { type: "string" },
        "stall-timeout": { type: "string" },
        heartbeat: { type: "string" },
        "max-viewers-per-stream": { type: "string" },
        "max-viewers": { type: "string" },
        "max-connections-per-second": { type: "string" },
        "request-timeout": { type: "string" },
        "web-root": { type: "string" },
        token: { type: "string", multiple: true },
        "token-file": { type: "string", multiple: true },
        "allow-origin": { type: "string", multiple: true },
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
        "tls-self-signed": { type: "boolean" },
        "tls-dir": { type: "string" },
        nats: { type: "string" },
        edge: { type: "boolean" },
        "nats-prefix": { type: "string" },
        "nats-user": { type: "string" },
        "nats-password-file": { type: "string" },
        "nats-token-file": { type: "string" },
        "nats-nkey-file": { type: "string" },
        "nats-creds": { type: "string" },
        "nats-tls-ca": { type: "string" },
        "nats-tls-cert": { type: "string" },
        "nats-tls-key": { type: "string" },
        record: { type: "string" },
        "record-segment": { type: "string" },
        "record-retain-hours": { type: "string" },
        "record-max-bytes": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (err) {
    // parseArgs quotes the flag at fault: "Unknown option '--bogus'", "Option '--port <value>' argument missing".
    const message = (err as Error).message;
    throw new ConfigError(/'(-{1,2}[A-Za-z0-9-]+)/.exec(message)?.[1] ?? "arguments", message);
  }
  const deviceExists = options.deviceExists ?? existsSync;
  const file = values.config === undefined ? undefined : loadConfigFile(values.config, options.readFile);
  const fileKey = (key: string): string => `${values.config}: ${key}`;

  // Encoding defaults for every stream: built-in < file "defaults" < flags.
  const fileDefaults = file?.defaults;
  const fileSize = fileDefaults?.size === undefined ? undefined : parseSize(fileDefaults.size, fileKey("defaults.size"));
  const flagSize = values.size === undefined ? undefined : parseSize(values.size);
  const base: EncodeSettings = {
    width: flagSize?.width ?? fileSize?.width ?? DEFAULT_SETTINGS.width,
    height: flagSize?.height ?? fileSize?.height ?? DEFAULT_SETTINGS.height,
    framerate: values.fps === undefined ? (fileDefaults?.fps ?? DEFAULT_SETTINGS.framerate) : intInRange("--fps", values.fps, 1, 120),
    bitrateKbps:
      values.bitrate === undefined ? (fileDefaults?.bitrate ?? DEFAULT_SETTINGS.bitrateKbps) : intInRange("--bitrate", values.bitrate, 50, 50_000),
    keyframeIntervalS:
      values["keyframe-interval"] === undefined
        ? (fileDefaults?.keyframeInterval ?? DEFAULT_SETTINGS.keyframeIntervalS)
        : // At most 30 s: a WebM cluster (one GOP) can span at most 32.7 s.
          numberInRange("--keyframe-interval", values["keyframe-interval"], 0.1, 30),
    codec: values.codec === undefined ? (fileDefaults?.codec ?? DEFAULT_SETTINGS.codec) : parseCodec(values.codec),
  };
  const flagsOverride = {
    ...(flagSize ? { width: flagSize.width, height: flagSize.height } : {}),
    ...(values.fps !== undefined ? { framerate: base.framerate } : {}),
    ...(values.bitrate !== undefined ? { bitrateKbps: base.bitrateKbps } : {}),
    ...(values["keyframe-interval"] !== undefined ? { keyframeIntervalS: base.keyframeIntervalS } : {}),
    ...(values.codec !== undefined ? { codec: base.codec } : {}),
  };

  const tileFlag = parseTileFlag(values.tile);
  const recordFlags: RecordFlags = {
    dir: values.record,
    segmentSeconds:
      values["record-segment"] === undefined ? undefined : numberInRange("--record-segment", values["record-segment"], ...SEGMENT_SECONDS_RANGE),
    retainHours:
      values["record-retain-hours"] === undefined
        ? undefined
        : numberInRange("--record-retain-hours", values["record-retain-hours"], ...RETAIN_HOURS_RANGE),
    maxBytes: values["record-max-bytes"] === undefined ? undefined : parseByteSize(values["record-max-bytes"], "--record-max-bytes"),
  };
  if (recordFlags.dir === undefined && file?.record?.dir === undefined) {
    const without = (["record-segment", "record-retain-hours", "record-max-bytes"] as const).find((k) => values[k] !== undefined);
    if (without !== undefined) throw new ConfigError(`--${without}`, "applies to recordings: give --record DIR (or \"record\" in the config file) too");
  }
  const recordOf = (name: string, own: ConfigFileStream["record"], key: string): RecordConfig | null =>
    streamRecordConfig(name, file?.record, own, recordFlags, key);

  // Streams: the file's, then --stream flags; without any, the single default stream from --source.
  const streams: StreamConfig[] = [];
  const seen = new Map<string, string>();
  const addStream = (name: string, source: SourceSpec, settings: EncodeSettings, tile: StreamConfig["tile"], key: string, record: RecordConfig | null): void => {
    const first = seen.get(name);
    if (first !== undefined) throw new ConfigError(key, `duplicate stream name "${name}" (first defined at ${first})`);
    seen.set(name, key);
    streams.push({ name, source, settings, tile, record });
  };
  const fileDefaultTile = fileDefaults?.tile === undefined ? null : tileRequest(fileDefaults.tile, fileKey("defaults.tile"));
  for (const [i, entry] of (file?.streams ?? []).entries()) {
    const key = fileKey(`streams[${i}]`);
    const size = entry.size === undefined ? undefined : parseSize(entry.size, `${key}.size`);
    const own: EncodeSettings = {
      width: size?.width ?? base.width,
      height: size?.height ?? base.height,
      framerate: entry.fps ?? base.framerate,
      bitrateKbps: entry.bitrate ?? base.bitrateKbps,
      keyframeIntervalS: entry.keyframeInterval ?? base.keyframeIntervalS,
      codec: entry.codec ?? base.codec,
    };
    const { source } = parseSource(entry.source, () => false, `${key}.source`, false);
    const settings = { ...own, ...flagsOverride };
    checkCopySource(source, settings, values.codec !== undefined ? "--codec" : entry.codec !== undefined ? `${key}.codec` : fileKey("defaults.codec"));
    // Its own tile (null: none), else the file's default one.
    const request = entry.tile === undefined ? fileDefaultTile : entry.tile === null ? null : tileRequest(entry.tile, `${key}.tile`);
    const tileKey = entry.tile === undefined ? fileKey("defaults.tile") : `${key}.tile`;
    const tile = fileStreamTile(entry.name, settings, request, tileFlag, tileKey);
    if (tile?.source) checkCopySource(tile.source, settings, `${tileKey}.source`);
    addStream(entry.name, source, settings, tile, `${key}.name`, recordOf(entry.name, entry.record, key));
  }
  for (const spec of values.stream ?? []) {
    const eq = spec.indexOf("=");
    const name = eq > 0 ? spec.slice(0, eq) : "";
    if (!STREAM_NAME.test(name)) {
      throw new ConfigError("--stream", `expected NAME=SOURCE with a name of letters, digits, - and _, got "${spec}"`);
    }
    const { source } = parseSource(spec.slice(eq + 1), () => false, "--stream", false);
    checkCopySource(source, base, values.codec !== undefined ? "--codec" : fileKey("defaults.codec"));
    addStream(name, source, base, flagStreamTile(name, base, tileFlag), `--stream ${name}`, recordOf(name, undefined, `--stream ${name}`));
  }
  const env = options.env ?? process.env;
  const cluster = parseClusterConfig(
    {
      nats: values.nats,
      edge: values.edge,
      prefix: values["nats-prefix"],
      user: values["nats-user"],
      passwordFile: values["nats-password-file"],
      tokenFile: values["nats-token-file"],
      nkeyFile: values["nats-nkey-file"],
      credsFile: values["nats-creds"],
      tlsCa: values["nats-tls-ca"],
      tlsCert: values["nats-tls-cert"],
      tlsKey: values["nats-tls-key"],
    },
    file,
    fileKey,
    env,
  );
  const edge = cluster.cluster?.role === "edge";
  let sourceNote: string | null = null;
  if (edge) {
    // An edge's streams are its origins': it runs no pipeline.
    const own = streams.length > 0 ? (values.stream !== undefined ? "--stream" : fileKey("streams")) : values.source !== undefined ? "--source" : null;
    if (own !== null) throw new ConfigError(own, "an edge (--edge) serves the streams its origins publish and has none of its own: configure streams on an origin");
    const record = values.record !== undefined ? "--record" : file?.record !== undefined ? fileKey("record") : null;
    if (record !== null) throw new ConfigError(record, "an edge (--edge) has no pipelines of its own to record: record on the origin");
  } else if (streams.length === 0) {
    const parsed = parseSource(values.source ?? "auto", deviceExists);
    sourceNote = parsed.note;
    checkCopySource(parsed.source, base, values.codec !== undefined ? "--codec" : fileKey("defaults.codec"));
    streams.push({
      name: DEFAULT_STREAM,
      source: parsed.source,
      settings: base,
      tile: flagStreamTile(DEFAULT_STREAM, base, tileFlag),
      record: recordOf(DEFAULT_STREAM, undefined, DEFAULT_STREAM),
    });
  } else if (values.source !== undefined) {
    throw new ConfigError("--source", "names the single default stream; with streams configured, add it as --stream NAME=SOURCE");
  }

  const logLevel = values["log-level"] ?? file?.logLevel ?? "info";
  if (!isLogLevel(logLevel)) throw new ConfigError("--log-level", `expected debug, info, warn or error, got "${logLevel}"`);
  const access = parseAccessConfig(
    { token: values.token, tokenFile: values["token-file"], tokensEnv: env[TOKENS_ENV], allowOrigin: values["allow-origin"] },
    file,
    fileKey,
    // An edge learns its streams from the origins later: token stream names are checked then by their grants alone.
    edge ? null : new Set(streams.map((s) => s.name)),
  );
  return {
    help: values.help ?? false,
    sourceNote,
    config: {
      host: values.host !== undefined ? parseHost(values.host, "--host") : parseHost(file?.host ?? DEFAULT_HOST, fileKey("host")),
      port: values.port === undefined ? (file?.port ?? DEFAULT_PORT) : intInRange("--port", values.port, 0, 65535),
      webRoot: values["web-root"] ?? options.defaultWebRoot,
      logLevel,
      streams,
      maxLagMs:
        values["max-lag-ms"] === undefined ? (file?.maxLagMs ?? DEFAULT_MAX_LAG_MS) : intInRange("--max-lag-ms", values["max-lag-ms"], 50, 60_000),
      stallTimeoutMs:
        1000 *
        (values["stall-timeout"] === undefined
          ? (file?.stallTimeout ?? DEFAULT_STALL_TIMEOUT_S)
          : numberInRange("--stall-timeout", values["stall-timeout"], 0.5, 600)),
      heartbeatMs:
        1000 * (values.heartbeat === undefined ? (file?.heartbeat ?? DEFAULT_HEARTBEAT_S) : numberInRange("--heartbeat", values.heartbeat, 0.2, 3600)),
      limits: {
        maxViewersPerStream:
          values["max-viewers-per-stream"] === undefined
            ? (file?.maxViewersPerStream ?? DEFAULT_LIMITS.maxViewersPerStream)
            : intInRange("--max-viewers-per-stream", values["max-viewers-per-stream"], ...LIMIT_RANGES.viewers),
        maxViewers:
          values["max-viewers"] === undefined
            ? (file?.maxViewers ?? DEFAULT_LIMITS.maxViewers)
            : intInRange("--max-viewers", values["max-viewers"], ...LIMIT_RANGES.viewers),
        maxConnectionsPerSecond:
          values["max-connections-per-second"] === undefined
            ? (file?.maxConnectionsPerSecond ?? DEFAULT_LIMITS.maxConnectionsPerSecond)
            : intInRange("--max-connections-per-second", values["max-connections-per-second"], ...LIMIT_RANGES.connectionsPerSecond),
        requestTimeoutMs:
          1000 *
          (values["request-timeout"] === undefined
            ? (file?.requestTimeout ?? DEFAULT_LIMITS.requestTimeoutMs / 1000)
            : numberInRange("--request-timeout", values["request-timeout"], ...LIMIT_RANGES.requestTimeoutS)),
      },
      access: access.access,
      tls: parseTlsConfig(
        { cert: values["tls-cert"], key: values["tls-key"], selfSigned: values["tls-self-signed"], dir: values["tls-dir"] },
        file,
      ),
      cluster: cluster.cluster,
      warnings: [...access.warnings, ...cluster.warnings],
    },
  };
}

function loadConfigFile(path: string, read?: (path: string) => string): ConfigFile {
  try {
    return readConfigFile(path, read);
  } catch (err) {
    if (err instanceof ConfigFileError) throw new ConfigError(err.key ? `${path}: ${err.key}` : `--config ${path}`, err.message);
    throw err;
  }
}

function parseTileFlag(text: string | undefined): TileFlag {
  if (text === undefined || text === "off") return text;
  if (!/^\d+x\d+$/.test(text)) throw new ConfigError("--tile", `expected WIDTHxHEIGHT (e.g. 320x240) or off, got "${text}"`);
  return parseSize(text, "--tile");
}

/** The file's tile keys, sizes and sources parsed; `key` is e.g. "cams.json: streams[1].tile". */
function tileRequest(entry: Partial<ConfigFileTile>, key: string): TileRequest {
  return {
    size: entry.size === undefined ? undefined : parseSize(entry.size, `${key}.size`),
    framerate: entry.fps,
    bitrateKbps: entry.bitrate,
    source: entry.source === undefined ? undefined : parseSource(entry.source, () => false, `${key}.source`, false).source,
  };
}

/** `codec: copy` forwards encoded video: a source of raw video (the test pattern, a V4L2 camera) has none. */
function checkCopySource(source: SourceSpec, settings: EncodeSettings, key: string): void {
  if (settings.codec !== "copy" || canCopy(source)) return;
  throw new ConfigError(
    key,
    `codec copy forwards video the source has already encoded, and ${describeSource(source)} delivers raw video: ` +
      `use an rtsp:// camera or a gst: fragment that ends in H.264, VP8, VP9 or AV1 (e.g. "gst:v4l2src ! video/x-h264"), or a codec to encode in`,
  );
}

/** The longest gst: fragment accepted; a pipeline description is a line, not a program. */
const MAX_GST_FRAGMENT = 2000;

export function parseSource(
  text: string,
  deviceExists: (path: string) => boolean,
  key = "--source",
  allowAuto = true,
): { source: SourceSpec; note: string | null } {
  if (text === "auto" && allowAuto) {
    return deviceExists(DEFAULT_CAMERA)
      ? { source: { kind: "v4l2", device: DEFAULT_CAMERA }, note: `found camera ${DEFAULT_CAMERA}` }
      : { source: { kind: "test", pattern: "smpte" }, note: `no camera at ${DEFAULT_CAMERA}; using the test pattern` };
  }
  if (text === "test") return { source: { kind: "test", pattern: "smpte" }, note: null };
  if (text.startsWith("test:")) {
    const pattern = text.slice(5);
    if (!TEST_PATTERNS.has(pattern)) {
      throw new ConfigError(key, `unknown test pattern "${pattern}" (try smpte, ball, snow, pinwheel)`);
    }
    return { source: { kind: "test", pattern }, note: null };
  }
  if (text.startsWith("v4l2:")) {
    const device = text.slice(5);
    // The path becomes part of a gst-launch description: allow only plain device paths.
    if (!/^\/dev\/[A-Za-z0-9_./-]+$/.test(device) || device.includes("..")) {
      throw new ConfigError(key, `"${device}" is not a device path like /dev/video0`);
    }
    return { source: { kind: "v4l2", device }, note: null };
  }
  if (/^rtsps?:/i.test(text)) {
    try {
      return { source: parseRtspUrl(text), note: null };
    } catch (err) {
      if (err instanceof RtspUrlError) throw new ConfigError(key, err.message);
      throw err;
    }
  }
  if (text.startsWith("gst:")) {
    // The operator's own pipeline fragment (never a client's): anything gst-launch can parse that ends in raw video.
    const fragment = text.slice(4).trim();
    if (!fragment) throw new ConfigError(key, `"gst:" needs a pipeline fragment that ends in raw video, e.g. "gst:filesrc location=cam.mp4 ! decodebin"`);
    if (fragment.length > MAX_GST_FRAGMENT || /[\0\r\n]/.test(fragment)) {
      throw new ConfigError(key, `the gst: fragment must be one line of at most ${MAX_GST_FRAGMENT} characters`);
    }
    if (/(^|!)\s*$|^\s*!/.test(fragment)) throw new ConfigError(key, `the gst: fragment must not start or end with "!"`);
    return { source: { kind: "gst", fragment }, note: null };
  }
  throw new ConfigError(
    key,
    `expected ${allowAuto ? "auto, " : ""}test, test:PATTERN, v4l2:/dev/videoN, rtsp://HOST/PATH or gst:FRAGMENT, got "${redactCredentials(text)}"`,
  );
}

export function parseSize(text: string, key = "--size"): { width: number; height: number } {
  const m = /^(\d{1,5})x(\d{1,5})$/.exec(text);
  const width = m ? Number(m[1]) : NaN;
  const height = m ? Number(m[2]) : NaN;
  // VP8 needs even dimensions for 4:2:0 and at most 16383.
  if (!m || width < 16 || height < 16 || width > 16383 || height > 16383 || width % 2 || height % 2) {
    throw new ConfigError(key, `expected WIDTHxHEIGHT with even numbers from 16 to 16382, got "${text}"`);
  }
  return { width, height };
}

function parseHost(text: string, key: string): string {
  if (!/^[A-Za-z0-9.:\-[\]]+$/.test(text)) throw new ConfigError(key, `"${text}" is not a host name or address`);
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

function parseCodec(value: string): CodecSetting {
  if (!isCodecSetting(value)) throw new ConfigError("--codec", `expected one of ${CODEC_SETTINGS.join(", ")}, got "${value}"`);
  return value;
}
