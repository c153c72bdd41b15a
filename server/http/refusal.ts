// Refusals: an HTTP status with a stable error code, written to a response or straight to a raw
// socket (WebSocket upgrades and requests Node could not parse never get a ServerResponse).

import { STATUS_CODES, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";

export type RefusalCode =
  | "CC_ERR_BAD_REQUEST"
  | "CC_ERR_NOT_FOUND"
  | "CC_ERR_REQUEST_TIMEOUT"
  | "CC_ERR_URL_TOO_LONG"
  | "CC_ERR_RATE_LIMITED"
  | "CC_ERR_HEADERS_TOO_LARGE"
  | "CC_ERR_SHUTTING_DOWN"
  | "CC_ERR_TOO_MANY_VIEWERS"
  | "CC_ERR_UNAUTHORIZED"
  | "CC_ERR_FORBIDDEN_STREAM"
  | "CC_ERR_FORBIDDEN_ORIGIN";

export interface Refusal {
  readonly status: 400 | 401 | 403 | 404 | 408 | 414 | 429 | 431 | 503;
  readonly code: RefusalCode;
  readonly message: string;
  /** Seconds, sent as Retry-After. */
  readonly retryAfterS?: number;
  /** More response headers, e.g. WWW-Authenticate on a 401. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Refusals so far, by code: what `/metrics` reports as canvascast_requests_refused_total. */
export class RefusalCounts {
  readonly #counts = new Map<RefusalCode, number>();

  record(code: RefusalCode): void {
    this.#counts.set(code, (this.#counts.get(code) ?? 0) + 1);
  }

  entries(): IterableIterator<[RefusalCode, number]> {
    return this.#counts.entries();
  }
}

/** A peer that never reads or closes does not keep a refused socket open longer than this. */
const LINGER_MS = 2000;

function refusalHeaders(refusal: Refusal, body: string): Record<string, string | number> {
  return {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(body),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    ...(refusal.retryAfterS !== undefined ? { "Retry-After": refusal.retryAfterS } : {}),
    ...refusal.headers,
  };
}

const refusalBody = (refusal: Refusal): string => JSON.stringify({ error: refusal.code, message: refusal.message });

/** Answers an ordinary request with the refusal and closes its connection. */
export function sendRefusal(res: ServerResponse, refusal: Refusal, counts: RefusalCounts): void {
  counts.record(refusal.code);
  const body = refusalBody(refusal);
  res.shouldKeepAlive = false;
  res.writeHead(refusal.status, { ...refusalHeaders(refusal, body), Connection: "close" });
  res.end(body);
}

/** Writes the refusal as a whole HTTP response to a socket that has no ServerResponse, then closes it. */
export function refuseSocket(socket: Duplex, refusal: Refusal, counts: RefusalCounts): void {
  counts.record(refusal.code);
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = refusalBody(refusal);
  const headers = Object.entries({ Connection: "close", ...refusalHeaders(refusal, body) })
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("");
  socket.end(`HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status]}\r\n${headers}\r\n${body}`);
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}
