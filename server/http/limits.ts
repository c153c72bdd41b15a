// What one client may ask of the server: new connections per address per second, the size of a
// request's URL and headers, how long its headers may take, and how many viewers a stream and the
// server take. Everything past a limit is refused with an HTTP status before any WebSocket opens.

import type { IncomingMessage, ServerOptions } from "node:http";
import type { Duplex } from "node:stream";
import { BurstyRateLimiter, RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";
import type { ServedStream } from "../stream/served-stream.js";
import { refuseSocket, type Refusal, type RefusalCounts } from "./refusal.js";

export interface LimitsConfig {
  /** Viewers of one stream, /ws/ and MSE together. */
  readonly maxViewersPerStream: number;
  /** Viewers of all streams together. */
  readonly maxViewers: number;
  /** New connections per client address per second; 0: no limit. */
  readonly maxConnectionsPerSecond: number;
  /** A request (or WebSocket upgrade) whose headers have not all arrived by then is answered 408. */
  readonly requestTimeoutMs: number;
}

export const DEFAULT_LIMITS: LimitsConfig = {
  // What one stream to this many viewers measured on a 2-core machine with delivery p99 within a frame (docs/benchmarks.md).
  maxViewersPerStream: 500,
  maxViewers: 1000,
  maxConnectionsPerSecond: 50,
  requestTimeoutMs: 10_000,
};

/** [min, max] of each setting, for the flags and the config file. */
export const LIMIT_RANGES = {
  viewers: [1, 100_000],
  connectionsPerSecond: [0, 100_000],
  requestTimeoutS: [0.5, 300],
} as const;

/** Request line and headers together; past it Node answers 431 (a very long URL too). */
export const MAX_HEADER_BYTES = 8 * 1024;
/** Longer URLs are answered 414: ours are short (/ws/<name>?meta=1, hashed asset names). */
export const MAX_URL_BYTES = 2 * 1024;
/** An idle keep-alive connection is closed after this. */
export const KEEP_ALIVE_TIMEOUT_MS = 5000;
/**
 * Past the per-second rate an address may open this many times the rate more connections in each
 * window, so a page that opens many streams at once (a dashboard) is not refused.
 */
export const BURST_FACTOR = 2;
export const BURST_WINDOW_S = 10;
/** Viewers refused for a full stream or server are told to come back after this. */
const VIEWERS_RETRY_AFTER_S = 10;

/** Node's HTTP server options that bound a request's size and time. */
export function httpServerLimits(limits: LimitsConfig): ServerOptions {
  return {
    maxHeaderSize: MAX_HEADER_BYTES,
    headersTimeout: limits.requestTimeoutMs,
    // We accept no request bodies (a POST gets 405), so the whole request may take no longer than its headers.
    requestTimeout: limits.requestTimeoutMs,
    // Node looks for expired requests only this often (30 s by default): keep it well below the timeout.
    connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(limits.requestTimeoutMs / 4))),
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
  };
}

/**
 * Counts new connections per client address (the first request on each connection, so keep-alive
 * requests and a WebSocket's frames are free) and refuses long URLs.
 */
export class ConnectionGate {
  private readonly limiter: BurstyRateLimiter | null;
  private readonly admitted = new WeakSet<object>();

  constructor(private readonly perSecond: number) {
    this.limiter =
      perSecond > 0
        ? new BurstyRateLimiter(
            new RateLimiterMemory({ points: perSecond, duration: 1 }),
            new RateLimiterMemory({ points: perSecond * BURST_FACTOR, duration: BURST_WINDOW_S }),
          )
        : null;
  }

  /** null when the request may go on, else why not. */
  async admit(req: IncomingMessage): Promise<Refusal | null> {
    const rate = await this.admitConnection(req);
    if (rate) return rate;
    if ((req.url ?? "").length > MAX_URL_BYTES) {
      return { status: 414, code: "CC_ERR_URL_TOO_LONG", message: `the URL is longer than ${MAX_URL_BYTES} bytes` };
    }
    return null;
  }

  private async admitConnection(req: IncomingMessage): Promise<Refusal | null> {
    const socket = req.socket;
    if (!this.limiter || this.admitted.has(socket)) return null;
    try {
      await this.limiter.consume(clientKey(socket.remoteAddress ?? ""));
      this.admitted.add(socket);
      return null;
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err;
      return {
        status: 429,
        code: "CC_ERR_RATE_LIMITED",
        message: `more than ${this.perSecond} new connections per second from this address`,
        retryAfterS: Math.max(1, Math.ceil(err.msBeforeNext / 1000)),
      };
    }
  }
}

/**
 * The rate limiter's key for a client address: an IPv4 address (also when mapped into IPv6), or an
 * IPv6 address's /64 network, since one IPv6 host usually holds a whole /64 to pick addresses from.
 */
export function clientKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(":")) return address;
  const [head = "", tail] = address.toLowerCase().split("%", 1)[0]!.split("::", 2);
  const left = head ? head.split(":") : [];
  const right = tail === undefined ? [] : tail ? tail.split(":") : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, "")).join(":")}::/64`;
}

/** Refuses a viewer when its stream, or the server, has as many as it takes. */
export function viewerCapRefusal(stream: ServedStream, all: Iterable<ServedStream>, limits: LimitsConfig): Refusal | null {
  const refuse = (message: string): Refusal => ({ status: 503, code: "CC_ERR_TOO_MANY_VIEWERS", message, retryAfterS: VIEWERS_RETRY_AFTER_S });
  if (stream.viewerCount >= limits.maxViewersPerStream) return refuse(`stream has ${limits.maxViewersPerStream} viewers, its limit`);
  let total = 0;
  for (const s of all) total += s.viewerCount;
  if (total >= limits.maxViewers) return refuse(`server has ${limits.maxViewers} viewers, its limit`);
  return null;
}

/**
 * Answers a request Node could not parse or that took too long (the server's `clientError`): 431 for
 * headers over MAX_HEADER_BYTES, 408 for a request that did not arrive in time, 400 for the rest.
 * A socket that already got (part of) a response, or is gone, is only destroyed.
 */
export function answerClientError(err: Error, socket: Duplex, counts: RefusalCounts): void {
  const code = (err as NodeJS.ErrnoException).code;
  const bytesWritten = (socket as Partial<{ bytesWritten: number }>).bytesWritten ?? 0;
  if (code === "ECONNRESET" || !socket.writable || bytesWritten > 0) {
    socket.destroy();
    return;
  }
  refuseSocket(socket, clientErrorRefusal(code), counts);
}

export function clientErrorRefusal(code: string | undefined): Refusal {
  switch (code) {
    case "HPE_HEADER_OVERFLOW":
      return { status: 431, code: "CC_ERR_HEADERS_TOO_LARGE", message: `request line and headers over ${MAX_HEADER_BYTES} bytes` };
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return { status: 408, code: "CC_ERR_REQUEST_TIMEOUT", message: "the request did not arrive in time" };
    default:
      return { status: 400, code: "CC_ERR_BAD_REQUEST", message: `malformed HTTP request${code ? ` (${code})` : ""}` };
  }
}
