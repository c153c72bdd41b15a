// Leveled structured logs on stderr, through pino: one JSON object per line when stderr is not a
// terminal (for log collectors), readable coloured lines through pino-pretty when it is. stdout is
// left to the start-up lines that scripts and tests read.

import { pino, type DestinationStream } from "pino";
import { prettyFactory } from "pino-pretty";

export type LogLevel = "debug" | "info" | "warn" | "error";
const LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

export type LogFields = Record<string, unknown>;

/** The logging interface the rest of the server uses; pino stays behind it. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  /** Where lines go; default stderr (fd 2), written synchronously so nothing is lost at exit. */
  readonly destination?: DestinationStream;
  /** Readable lines instead of JSON; default: when stderr is a terminal. */
  readonly pretty?: boolean;
  /** Colours in readable lines; default: when they go to stderr and it is a terminal. */
  readonly colorize?: boolean;
}

/** Values that must never reach a log, wherever a caller puts them. */
export const REDACT_PATHS = [
  "token",
  "*.token",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "headers.cookie",
  "*.headers.authorization",
  "*.headers.cookie",
];
export const REDACTED = "[redacted]";

/** `token=` (and `access_token=`) values in URLs logged as `url`: the rest of the URL is worth keeping. */
const URL_TOKEN = /([?&](?:access_)?token=)[^&#\s]*/gi;

export function createLogger(level: LogLevel = "info", options: LoggerOptions = {}): Logger {
  const sink = options.destination ?? pino.destination({ dest: 2, sync: true });
  const prettyLines = options.pretty ?? process.stderr.isTTY === true;
  // prettyFactory formats each line synchronously in this thread (pino-pretty's stream form is
  // asynchronous and can lose the last lines at process.exit).
  const colorize = options.colorize ?? (options.destination === undefined && process.stderr.isTTY === true);
  const destination: DestinationStream = prettyLines ? prettyDestination(sink, colorize) : sink;
  const logger = pino(
    {
      level,
      // The server's pid on every line (the pipeline's is `pipelinePid`); no hostname.
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Level names, not numbers: `"level":"info"` reads the same in a file and in a query.
      formatters: {
        level: (label) => ({ level: label }),
        log: scrubUrl,
      },
      redact: { paths: REDACT_PATHS, censor: REDACTED },
    },
    destination,
  );
  return wrap(logger);
}

function prettyDestination(sink: DestinationStream, colorize: boolean): DestinationStream {
  const format = prettyFactory({ colorize, translateTime: "SYS:HH:MM:ss.l", singleLine: true });
  return { write: (line: string) => sink.write(format(line)) };
}

function scrubUrl(fields: LogFields): LogFields {
  return typeof fields.url === "string" ? { ...fields, url: fields.url.replace(URL_TOKEN, `$1${REDACTED}`) } : fields;
}

function wrap(logger: pino.Logger): Logger {
  return {
    debug: (msg, fields) => logger.debug(fields ?? {}, msg),
    info: (msg, fields) => logger.info(fields ?? {}, msg),
    warn: (msg, fields) => logger.warn(fields ?? {}, msg),
    error: (msg, fields) => logger.error(fields ?? {}, msg),
    child: (fields) => wrap(logger.child(scrubUrl(fields))),
  };
}

/** A caught error as log fields: its message and, for an Error, its stack. Never throws, whatever was thrown. */
export function errorFields(err: unknown): { error: string; stack?: string } {
  if (err instanceof Error) return typeof err.stack === "string" ? { error: String(err.message), stack: err.stack } : { error: String(err.message) };
  try {
    return { error: String(err) };
  } catch {
    return { error: "a thrown value that cannot be printed" }; // e.g. Object.create(null)
  }
}

export function isLogLevel(v: string): v is LogLevel {
  return (LEVELS as readonly string[]).includes(v);
}
