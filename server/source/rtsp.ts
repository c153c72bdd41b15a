// An RTSP camera given as the URL its settings page shows (`rtsp://user:pass@192.0.2.10:554/stream`):
// validated, its credentials kept apart from the location so that nothing the server prints or
// serves (logs, /api/streams, start-up lines, config errors) carries them, and the rtspsrc that reads it.

export interface RtspSource {
  readonly kind: "rtsp";
  /** The URL without user and password. */
  readonly location: string;
  /** Percent-decoded; null when the URL has none. */
  readonly user: string | null;
  readonly password: string | null;
}

/** Not a usable RTSP URL; the message quotes it with its credentials redacted. */
export class RtspUrlError extends Error {
  override readonly name = "RtspUrlError";
}

const MAX_URL_LENGTH = 2000;

export function parseRtspUrl(text: string): RtspSource {
  const shown = redactCredentials(text);
  if (text.length > MAX_URL_LENGTH) throw new RtspUrlError(`the RTSP URL must be at most ${MAX_URL_LENGTH} characters`);
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  if (/[\s\u0000-\u001f\u007f]/.test(text)) throw new RtspUrlError(`"${shown}" has white space or control characters (percent-encode them)`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new RtspUrlError(`"${shown}" is not a URL like rtsp://192.0.2.10:554/stream`);
  }
  if (url.protocol !== "rtsp:" && url.protocol !== "rtsps:") throw new RtspUrlError(`"${shown}" is not an rtsp:// or rtsps:// URL`);
  if (url.hostname === "") throw new RtspUrlError(`"${shown}" names no host (rtsp://HOST[:PORT]/PATH)`);
  let user: string | null;
  let password: string | null;
  try {
    user = url.username === "" ? null : decodeURIComponent(url.username);
    password = url.password === "" ? null : decodeURIComponent(url.password);
  } catch {
    throw new RtspUrlError(`"${shown}": the user or password is not valid percent-encoding`);
  }
  const location = `${url.protocol}//${url.host}${url.pathname}${url.search}`;
  return { kind: "rtsp", location, user, password };
}

/**
 * `text` (a URL, a gst fragment or argv, a log line) with every `scheme://user:pass@` and every
 * rtspsrc `user-id=…` / `user-pw=…` replaced by `***`.
 */
export function redactCredentials(text: string): string {
  return text
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/\s@"]*@/gi, "$1***@")
    .replace(/\b(user-id|user-pw)=("(?:[^"\\]|\\.)*"|[^\s!]*)/g, "$1=***");
}

/** The camera as logs and the API show it: credentials stand as `***`. */
export function describeRtsp(source: RtspSource): string {
  if (source.user === null && source.password === null) return source.location;
  return source.location.replace("://", "://***@");
}

export interface RtspOptions {
  /**
   * How long rtspsrc waits for the camera to connect and answer (tcp-timeout), so an unreachable
   * camera fails with GStreamer's own reason before the stall watchdog would kill it.
   */
  readonly connectTimeoutMs: number;
}

/**
 * rtspsrc and the caps filter that keeps only its video stream (a camera's audio stays unlinked),
 * of one RTP encoding (e.g. "H264") when given.
 * Interleaved over the RTSP connection (TCP), so a camera that goes away closes the connection
 * and the pipeline ends at once; latency=0, as the jitter buffer has nothing to reorder on TCP.
 */
export function rtspsrcArgs(source: RtspSource, options: RtspOptions, encodingName?: string): string[] {
  return [
    "rtspsrc",
    quotedProperty("location", source.location),
    ...(source.user !== null ? [quotedProperty("user-id", source.user)] : []),
    ...(source.password !== null ? [quotedProperty("user-pw", source.password)] : []),
    "latency=0",
    "protocols=tcp",
    `tcp-timeout=${Math.max(1, Math.round(options.connectTimeoutMs)) * 1000}`,
    "!", `application/x-rtp,media=video${encodingName === undefined ? "" : `,encoding-name=${encodingName}`}`,
  ];
}

/** `name="value"` with `"` and `\` escaped: gst-launch reads it back verbatim, `!` and spaces included. */
function quotedProperty(name: string, value: string): string {
  return `${name}="${value.replace(/[\\"]/g, "\\$&")}"`;
}
