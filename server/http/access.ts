// Who may open the streams: access tokens (each optionally limited to some streams) for the
// WebSocket endpoints and /api/*, and the Origin rule for WebSocket upgrades (a page on another
// site must not open the camera through a viewer's browser: cross-site WebSocket hijacking).
// Static files (the dashboard, /canvascast.js) are not guarded; the data is.

import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Logger } from "../log.js";
import type { Refusal } from "./refusal.js";

/** One configured token; `streams` null = every stream. */
export interface TokenGrant {
  readonly token: string;
  readonly streams: readonly string[] | null;
}

export interface AccessConfig {
  /** None configured = no token needed anywhere. */
  readonly tokens: readonly TokenGrant[];
  /**
   * Origins (normalised `scheme://host[:port]`, or `*` for any) whose pages may open sockets, on top
   * of the server's own origin and loopback origins.
   */
  readonly allowOrigins: readonly string[];
}

export const NO_ACCESS_RULES: AccessConfig = { tokens: [], allowOrigins: [] };

/** Tokens go in URLs (`?token=`) unescaped: URL-unreserved characters only. */
export const TOKEN_PATTERN = /^[A-Za-z0-9._~-]{16,256}$/;
export const TOKEN_RULE = `16 to 256 letters, digits, ".", "_", "~" or "-" (e.g. from: openssl rand -hex 16)`;

export type AccessErrorCode = "CC_ERR_UNAUTHORIZED" | "CC_ERR_FORBIDDEN_STREAM" | "CC_ERR_FORBIDDEN_ORIGIN";

/** Why a request is refused: HTTP status, stable code, and a message that never contains the token. */
export interface AccessDenial extends Refusal {
  readonly ok: false;
  readonly status: 401 | 403;
  readonly code: AccessErrorCode;
}

/** What a request may see: `streams` null = every stream. */
export interface AccessGrant {
  readonly ok: true;
  readonly streams: ReadonlySet<string> | null;
}

export type AccessDecision = AccessGrant | AccessDenial;

/** The parts of a request the rules read (an IncomingMessage is one). */
export type AccessRequest = Pick<IncomingMessage, "url" | "headers">;

const EVERYTHING: AccessGrant = { ok: true, streams: null };

const sha256 = (text: string): Buffer => createHash("sha256").update(text, "utf8").digest();

export class AccessPolicy {
  readonly #grants: readonly { readonly digest: Buffer; readonly streams: ReadonlySet<string> | null }[];
  readonly #anyOrigin: boolean;
  readonly #origins: ReadonlySet<string>;
  readonly #scheme: "http" | "https";

  constructor(config: AccessConfig, options: { readonly secure: boolean }) {
    // Compared as SHA-256 digests: equal length whatever was sent, so timingSafeEqual applies and
    // the comparison time says nothing about the configured tokens.
    this.#grants = config.tokens.map((t) => ({ digest: sha256(t.token), streams: t.streams === null ? null : new Set(t.streams) }));
    this.#anyOrigin = config.allowOrigins.includes("*");
    this.#origins = new Set(config.allowOrigins.filter((o) => o !== "*").map((o) => normaliseOrigin(o) ?? o));
    this.#scheme = options.secure ? "https" : "http";
  }

  /** True when every WebSocket endpoint and /api/* needs a token. */
  get tokensRequired(): boolean {
    return this.#grants.length > 0;
  }

  /**
   * The request's token (`Authorization: Bearer`, else `?token=`) checked against the configured
   * ones; with `stream`, also that the token is valid for it.
   */
  authorize(req: AccessRequest, stream?: string): AccessDecision {
    if (!this.tokensRequired) return EVERYTHING;
    const presented = requestToken(req);
    if (presented === undefined) return deny(401, "CC_ERR_UNAUTHORIZED", "a token is required (?token= or Authorization: Bearer)");
    const digest = sha256(presented);
    let match: ReadonlySet<string> | null | undefined;
    // Every grant is compared (no early exit), so timing does not tell which one matched.
    for (const grant of this.#grants) {
      if (timingSafeEqual(grant.digest, digest) && match === undefined) match = grant.streams;
    }
    if (match === undefined) return deny(401, "CC_ERR_UNAUTHORIZED", "wrong token");
    if (stream !== undefined && match !== null && !match.has(stream)) {
      return deny(403, "CC_ERR_FORBIDDEN_STREAM", "this token is not valid for that stream");
    }
    return match === null ? EVERYTHING : { ok: true, streams: match };
  }

  /**
   * The Origin rule for WebSocket upgrades. Browsers always send Origin on a WebSocket handshake and
   * pages cannot change it; a request without one is not from a browser page (e.g. `ws` in Node),
   * so the rule does not apply to it (tokens still do).
   */
  checkOrigin(req: AccessRequest): AccessDenial | null {
    const origin = req.headers.origin;
    if (origin === undefined || this.#anyOrigin) return null;
    const normalised = normaliseOrigin(origin);
    if (normalised !== undefined && (this.#origins.has(normalised) || isLoopbackOrigin(normalised) || this.#ownOrigins(req).includes(normalised))) {
      return null;
    }
    return deny(403, "CC_ERR_FORBIDDEN_ORIGIN", "pages from this origin may not open streams (see --allow-origin)");
  }

  /** Origin check, then token check for `stream`: what a WebSocket upgrade must pass. */
  checkUpgrade(req: AccessRequest, stream: string): AccessDecision {
    return this.checkOrigin(req) ?? this.authorize(req, stream);
  }

  /**
   * The origins this server is reached as: the Host header with our scheme, and, behind a proxy,
   * X-Forwarded-Host with X-Forwarded-Proto. Trusting the forwarded headers is safe here: the rule
   * guards against pages in browsers, and a page cannot set headers on a WebSocket handshake.
   */
  #ownOrigins(req: AccessRequest): string[] {
    const own: string[] = [];
    const host = req.headers.host;
    if (host !== undefined) {
      const o = normaliseOrigin(`${this.#scheme}://${host}`);
      if (o !== undefined) own.push(o);
    }
    const fwdHost = firstHeaderValue(req.headers["x-forwarded-host"]);
    if (fwdHost !== undefined) {
      const proto = firstHeaderValue(req.headers["x-forwarded-proto"]) ?? this.#scheme;
      const o = normaliseOrigin(`${proto}://${fwdHost}`);
      if (o !== undefined) own.push(o);
    }
    return own;
  }
}

function deny(status: 401 | 403, code: AccessErrorCode, message: string): AccessDenial {
  // A 401 names the scheme it wants (RFC 6750).
  return { ok: false, status, code, message, ...(status === 401 ? { headers: { "WWW-Authenticate": 'Bearer realm="canvascast"' } } : {}) };
}

/** The token a request carries: `Authorization: Bearer` first, else the `token` query parameter. */
export function requestToken(req: AccessRequest): string | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(auth);
    if (m) return m[1];
  }
  const query = (req.url ?? "").split("?", 2)[1];
  if (query === undefined) return undefined;
  return new URLSearchParams(query).get("token") ?? undefined;
}


/** `scheme://host[:port]` of an http(s) origin, lower-case with default ports dropped; undefined for anything else (e.g. "null"). */
export function normaliseOrigin(text: string): string | undefined {
  try {
    const url = new URL(text);
    if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
    return url.origin;
  } catch {
    return undefined;
  }
}

/** http(s)://localhost, 127.0.0.0/8 and [::1], any port. */
export function isLoopbackOrigin(origin: string): boolean {
  try {
    return isLoopbackHost(new URL(origin).hostname);
  } catch {
    return false;
  }
}

/** localhost, 127.0.0.0/8, ::1 (with or without brackets). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h) || h === "::ffff:127.0.0.1";
}

function firstHeaderValue(value: string | string[] | undefined): string | undefined {
  const first = (Array.isArray(value) ? value[0] : value)?.split(",", 1)[0]?.trim();
  return first === undefined || first === "" ? undefined : first;
}

/** A refused request or upgrade, in the log (the logger scrubs tokens from every `url` field). */
export function logRefusal(log: Logger, req: IncomingMessage, code: AccessErrorCode): void {
  log.info("request refused", { code, url: req.url ?? "/", remote: req.socket.remoteAddress, origin: req.headers.origin });
}

export const OPEN_TO_NETWORK = "CC_WARN_OPEN_TO_NETWORK";

/**
 * Start-up warnings about exposure, shown on the console and the dashboard: listening beyond
 * loopback with no token lets anyone who can reach the port watch every camera.
 */
export function exposureWarnings(host: string, tokensRequired: boolean): { code: typeof OPEN_TO_NETWORK; message: string }[] {
  if (tokensRequired || isLoopbackHost(host)) return [];
  return [
    {
      code: OPEN_TO_NETWORK,
      message: `listening on ${host} beyond loopback with no token: anyone who can reach this port can watch every stream. Configure a token (--token-file, CANVASCAST_TOKENS or "tokens" in the config file), or listen on --host 127.0.0.1.`,
    },
  ];
}
