// Every socket URL the player opens is built here: a stream's `/ws/` (frame protocol), `/webm/`
// (WebM for MSE) or `/mp4/` (fragmented MP4 for MSE) endpoint on a server, another endpoint of a
// URL given for one, and the query parameters (`token`, `encoding`, `meta`).

import type { MseContainer } from "../../shared/mse.js";
import type { EncodingName } from "../../shared/protocol.js";
import { isEncodingName } from "../../shared/protocol.js";

/** The server's viewer endpoints: `/ws/<stream>` (frame protocol v1), `/webm/<stream>` and `/mp4/<stream>` (MSE). */
export type Endpoint = "ws" | MseContainer;

const pageUrl = (): string => globalThis.location?.href ?? "http://localhost/";

/** `url` (absolute, or relative to `base`) as a ws:/wss: URL; http(s) map to ws(s). */
export function toWebSocketUrl(url: string, base: string = pageUrl()): URL {
  const u = new URL(url, base);
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  return u;
}

const ENDPOINT_PATH = /^(.*\/)(ws|webm|mp4)\/([^/]+)\/?$/;

/** Which endpoint a socket URL names; a path that names none is taken as a frame-protocol socket. */
export function endpointOf(url: string): Endpoint {
  try {
    const endpoint = ENDPOINT_PATH.exec(new URL(url, pageUrl()).pathname)?.[2];
    return endpoint === "webm" || endpoint === "mp4" ? endpoint : "ws";
  } catch {
    return "ws";
  }
}

export interface SocketUrlParams {
  readonly endpoint: Endpoint;
  /** Default `full` (no parameter). */
  readonly encoding?: EncodingName;
  /** Access token, for a server started with --token: browsers cannot set headers on a WebSocket handshake. */
  readonly token?: string;
  /** MSE paths only: ask for the server's JSON messages too (`?meta=1`). */
  readonly meta?: boolean;
}

/**
 * The socket URL for `src`, which names a stream as `…/ws/<name>`, `…/webm/<name>` or `…/mp4/<name>` (http(s) or
 * ws(s)): the path is switched to the endpoint asked for, and the query gets the parameters. A
 * path that names no stream is used as it is. Throws (TypeError) for a URL that does not parse.
 */
export function socketUrl(src: string, params: SocketUrlParams, base: string = pageUrl()): string {
  const url = toWebSocketUrl(src, base);
  const match = ENDPOINT_PATH.exec(url.pathname);
  if (match !== null) url.pathname = `${match[1]}${params.endpoint}/${match[3]}`;
  const query = url.searchParams;
  if (params.encoding !== undefined && params.encoding !== "full") query.set("encoding", params.encoding);
  else if (params.encoding === "full") query.delete("encoding");
  if (params.token !== undefined && params.token !== "") query.set("token", params.token);
  if (params.endpoint !== "ws" && params.meta === true && !query.has("meta")) query.set("meta", "1");
  return url.href;
}

/** The socket URL of `stream` on the server at `server` (an http(s) URL; default: this page's origin). */
export function streamSocketUrl(stream: string, params: SocketUrlParams, server: string = pageUrl()): string {
  return socketUrl(new URL(`ws/${encodeURIComponent(stream)}`, new URL("/", server)).href, params);
}

/** The encoding a socket URL asks for. */
export function encodingOf(url: string): EncodingName {
  try {
    const value = new URL(url, pageUrl()).searchParams.get("encoding");
    return isEncodingName(value) ? value : "full";
  } catch {
    return "full";
  }
}
