// The JSON config file (`--config FILE`), validated with a schema: unknown keys, wrong types and
// bad values are refused with the key's path, e.g. `streams[1].size: expected WIDTHxHEIGHT…`.
//
// {
//   "port": 8080, "host": "127.0.0.1",
//   "defaults": { "size": "640x480", "fps": 30, "bitrate": 1500, "keyframeInterval": 1, "codec": "vp8" },
//   "streams": [
//     { "name": "door", "source": "v4l2:/dev/video0", "size": "1280x720", "tile": { "size": "320x180", "bitrate": 300 } },
//     { "name": "yard", "source": "rtsp://user:pass@10.0.0.5/stream", "codec": "copy" }
//   ],
//   "tokens": ["…", { "token": "…", "streams": ["door"] }],   "tokenFile": "/etc/canvascast/tokens",
//   "allowOrigins": ["https://cams.example.com"],
//   "tls": { "cert": "/etc/canvascast/cert.pem", "key": "/etc/canvascast/key.pem" }   (or { "selfSigned": true }),
//   "nats": { "servers": ["nats://10.0.0.2:4222"], "user": "cams", "passwordFile": "/etc/canvascast/nats-password" },
//   "edge": false,
//   "record": { "dir": "/var/lib/canvascast", "segmentSeconds": 60, "retain": { "hours": 24, "maxBytes": 20000000000 } }
// }
// A stream may have its own "record" (its settings over the top-level ones) or "record": false.

import { readFileSync } from "node:fs";
import { z } from "zod";
import { CODEC_SETTINGS } from "./codecs/registry.js";
import { LIMIT_RANGES } from "./http/limits.js";
import { TOKEN_PATTERN, TOKEN_RULE } from "./http/access.js";
import { MIN_MAX_BYTES, RETAIN_HOURS_RANGE, SEGMENT_SECONDS_RANGE } from "./record/record-config.js";

/** Stream names appear in URLs (/ws/<name>): keep them URL-safe. */
export const STREAM_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const SIZE = /^\d{1,5}x\d{1,5}$/;

const encodeFields = {
  size: z.string().regex(SIZE, "expected WIDTHxHEIGHT, e.g. 1280x720").optional(),
  fps: z.int().min(1).max(120).optional(),
  /** kbit/s */
  bitrate: z.int().min(50).max(50_000).optional(),
  /** seconds; at most 30 (a WebM cluster holds one GOP and may span 32.7 s) */
  keyframeInterval: z.number().min(0.1).max(30).optional(),
  /** The stream's codec; its tile encoding uses the same. `copy`: forward the source's own. */
  codec: z.enum(CODEC_SETTINGS, { error: `expected one of ${CODEC_SETTINGS.join(", ")}` }).optional(),
};

/** The smaller encoding for grids (`?encoding=tile`); every field optional. */
const tileFields = {
  size: encodeFields.size,
  /** At most the stream's, when scaled from its picture; default the stream's. */
  fps: encodeFields.fps,
  /** kbit/s */
  bitrate: encodeFields.bitrate,
};

/** A stream's tile: its fields, with a `source` of its own (a camera's substream), or null for none. */
const TileEntry = z.strictObject({ ...tileFields, source: z.string().min(1, "must not be empty").optional() }).nullable();

/** Recording: where, how long a segment is, what is kept. */
const RecordEntry = z.strictObject({
  dir: z.string().min(1, "must not be empty").optional(),
  segmentSeconds: z.number().min(SEGMENT_SECONDS_RANGE[0]).max(SEGMENT_SECONDS_RANGE[1]).optional(),
  retain: z
    .strictObject({
      /** null: kept however old */
      hours: z.number().min(RETAIN_HOURS_RANGE[0]).max(RETAIN_HOURS_RANGE[1]).nullable().optional(),
      /** null: no limit */
      maxBytes: z.int().min(MIN_MAX_BYTES, "at least 1048576 (1 MiB)").nullable().optional(),
    })
    .optional(),
});

const StreamEntry = z.strictObject({
  name: z.string().regex(STREAM_NAME, "letters, digits, - and _, at most 64, starting with a letter or digit"),
  source: z.string().min(1, "must not be empty"),
  ...encodeFields,
  tile: TileEntry.optional(),
  /** Its own recording settings over the top-level ones; false: not recorded. */
  record: z.union([z.literal(false), RecordEntry]).optional(),
});

const TokenEntry = z.preprocess(
  // A plain string is a token for every stream.
  (v) => (typeof v === "string" ? { token: v } : v),
  z.strictObject({
    token: z.string().regex(TOKEN_PATTERN, `expected ${TOKEN_RULE}`),
    /** Omitted: every stream. */
    streams: z.array(z.string().regex(STREAM_NAME, "a stream name")).min(1, "list at least one stream, or leave streams out for all").optional(),
  }),
);

const TlsEntry = z.union([
  z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }),
  z.strictObject({ selfSigned: z.literal(true), dir: z.string().min(1).optional() }),
], { error: 'expected {"cert": FILE, "key": FILE} or {"selfSigned": true, "dir": DIR}' });

const NatsFileEntry = z.strictObject({
  /** nats://HOST:PORT (tls://… for TLS), one or several of the cluster's servers. */
  servers: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  /** The first token of every subject (default "canvascast"): deployments that share a cluster use different ones. */
  prefix: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, "1-32 of A-Z a-z 0-9 _ -").optional(),
  user: z.string().min(1).optional(),
  passwordFile: z.string().min(1).optional(),
  tokenFile: z.string().min(1).optional(),
  nkeyFile: z.string().min(1).optional(),
  credsFile: z.string().min(1).optional(),
  tls: z.strictObject({ caFile: z.string().min(1).optional(), certFile: z.string().min(1).optional(), keyFile: z.string().min(1).optional() }).optional(),
});

export const ConfigFileSchema = z.strictObject({
  host: z.string().min(1).optional(),
  port: z.int().min(0).max(65535).optional(),
  logLevel: z.enum(["debug", "info", "warn", "error"]).optional(),
  maxLagMs: z.int().min(50).max(60_000).optional(),
  /** seconds */
  stallTimeout: z.number().min(0.5).max(600).optional(),
  /** seconds */
  heartbeat: z.number().min(0.2).max(3600).optional(),
  maxViewersPerStream: z.int().min(LIMIT_RANGES.viewers[0]).max(LIMIT_RANGES.viewers[1]).optional(),
  maxViewers: z.int().min(LIMIT_RANGES.viewers[0]).max(LIMIT_RANGES.viewers[1]).optional(),
  /** 0: no limit */
  maxConnectionsPerSecond: z.int().min(LIMIT_RANGES.connectionsPerSecond[0]).max(LIMIT_RANGES.connectionsPerSecond[1]).optional(),
  /** seconds */
  requestTimeout: z.number().min(LIMIT_RANGES.requestTimeoutS[0]).max(LIMIT_RANGES.requestTimeoutS[1]).optional(),
  /** `tile` here gives every stream of the file that does not set its own a tile encoding. */
  defaults: z.strictObject({ ...encodeFields, tile: z.strictObject(tileFields).optional() }).optional(),
  streams: z.array(StreamEntry).optional(),
  /** Access tokens: "SECRET" or {"token": "SECRET", "streams": ["door"]}. */
  tokens: z.array(TokenEntry).optional(),
  /** A file of more tokens, one `--token` value a line (like tls.cert, as given: relative to the working directory). */
  tokenFile: z.string().min(1, "must not be empty").optional(),
  /** Origins whose pages may open the streams, besides the server's own and loopback; "*" for any. */
  allowOrigins: z.array(z.string().min(1)).optional(),
  tls: TlsEntry.optional(),
  /** Publish the streams to a NATS cluster (an origin), or with `edge`, serve those origins publish. */
  nats: NatsFileEntry.optional(),
  /** An edge: no pipelines of its own; it serves the streams origins publish on `nats`. */
  edge: z.boolean().optional(),
  /** Record every stream (a stream's own `record` changes its settings or, false, leaves it out). */
  record: RecordEntry.optional(),
});

export type ConfigFile = z.infer<typeof ConfigFileSchema>;
export type ConfigFileStream = z.infer<typeof StreamEntry>;
export type ConfigFileTile = NonNullable<z.infer<typeof TileEntry>>;
export type ConfigFileNats = z.infer<typeof NatsFileEntry>;

/** A problem with the file: `key` is the path in it ("streams[1].size"), or "" for the file as a whole. */
export class ConfigFileError extends Error {
  override readonly name = "ConfigFileError";
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(message);
  }
}

export function readConfigFile(path: string, read: (path: string) => string = (p) => readFileSync(p, "utf8")): ConfigFile {
  let text: string;
  try {
    text = read(path);
  } catch (err) {
    throw new ConfigFileError("", `cannot read it: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigFileError("", `not valid JSON: ${(err as Error).message}`);
  }
  const result = ConfigFileSchema.safeParse(raw);
  if (!result.success) {
    // One clear message: the first problem, with its path.
    const issue = result.error.issues[0]!;
    throw new ConfigFileError(formatPath(issue.path) || "(top level)", describeIssue(issue));
  }
  return result.data;
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) out += typeof part === "number" ? `[${part}]` : out ? `.${String(part)}` : String(part);
  return out;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === "unrecognized_keys") return `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}`;
  return issue.message;
}
