// Operations endpoints: `GET /metrics` (Prometheus text format) and `GET /healthz`. They answer
// while the HTTP server works; a stream that is offline is reported in the health body, not as an
// unhealthy server (the other streams and the dashboard still work).

import type { IncomingMessage, ServerResponse } from "node:http";
import type { StreamState } from "../../shared/protocol.js";
import type { Logger } from "../log.js";
import type { AppMetrics } from "../metrics.js";
import type { ServedStream } from "../stream/served-stream.js";
import { logRefusal } from "./access.js";
import { sendJson } from "./api.js";
import { sendRefusal, type RefusalCounts } from "./refusal.js";

export const OPS_PATHS = ["/metrics", "/healthz"] as const;
export type OpsPath = (typeof OPS_PATHS)[number];

export const isOpsPath = (path: string): path is OpsPath => (OPS_PATHS as readonly string[]).includes(path);

/** The body of `GET /healthz`. */
export interface HealthResponse {
  readonly status: "ok";
  /** Each stream's state; "offline" or "restarting" is the camera's trouble, not the server's. */
  readonly streams: Readonly<Record<string, StreamState>>;
}

export interface OpsRoutesOptions {
  readonly streams: ReadonlyMap<string, ServedStream>;
  readonly metrics: AppMetrics;
  readonly log: Logger;
  /** The streams the request's token may see; null = every stream (no tokens, or a token for all). */
  readonly visible: ReadonlySet<string> | null;
  readonly refusals: RefusalCounts;
}

export function healthResponse(streams: Iterable<ServedStream>, visible: ReadonlySet<string> | null = null): HealthResponse {
  const shown = [...streams].filter((s) => visible === null || visible.has(s.name));
  return { status: "ok", streams: Object.fromEntries(shown.map((s) => [s.name, s.fanout.state])) };
}

/** Answers a GET or HEAD of one of OPS_PATHS, once the request has passed the access rules. */
export function handleOps(path: OpsPath, req: IncomingMessage, res: ServerResponse, options: OpsRoutesOptions): void {
  if (path === "/healthz") {
    sendJson(res, 200, healthResponse(options.streams.values(), options.visible));
    return;
  }
  if (options.visible !== null) {
    // The metrics describe every stream: a token limited to some streams does not see them.
    logRefusal(options.log, req, "CC_ERR_FORBIDDEN_STREAM");
    sendRefusal(res, { status: 403, code: "CC_ERR_FORBIDDEN_STREAM", message: "/metrics needs a token valid for every stream" }, options.refusals);
    return;
  }
  options.metrics.render().then(
    (text) => {
      res.writeHead(200, {
        "Content-Type": options.metrics.contentType,
        "Content-Length": Buffer.byteLength(text),
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
      });
      res.end(text);
    },
    (err: unknown) => {
      options.log.error("metrics collection failed", { error: err instanceof Error ? err.message : String(err) });
      sendJson(res, 500, { error: "CC_ERR_METRICS", message: "metrics collection failed" });
    },
  );
}
