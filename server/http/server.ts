// The HTTP(S) server: API, operations endpoints, static client, WebSocket upgrades. Everything else is a 404.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { Duplex } from "node:stream";
import type { ServerWarning } from "../../shared/api.js";
import type { Logger } from "../log.js";
import type { AppMetrics } from "../metrics.js";
import type { ServedStream } from "../stream/served-stream.js";
import { type AccessPolicy, logRefusal } from "./access.js";
import { sendJson, streamsResponse } from "./api.js";
import { handleOps, isOpsPath } from "./ops-routes.js";
import { handleRecording, recordingRoute } from "./recording-routes.js";
import { NO_RECORDINGS, type RecordingLookup } from "../record/stream-recording.js";
import { answerClientError, ConnectionGate, httpServerLimits, type LimitsConfig } from "./limits.js";
import { type RefusalCounts, refuseSocket, sendRefusal } from "./refusal.js";
import type { StaticHandler } from "./static.js";
import type { TlsMaterial } from "./tls.js";
import type { WsRoutes } from "./ws-routes.js";

export interface HttpServerOptions {
  readonly streams: ReadonlyMap<string, ServedStream>;
  readonly staticFiles: StaticHandler;
  readonly ws: WsRoutes;
  readonly metrics: AppMetrics;
  readonly log: Logger;
  readonly limits: LimitsConfig;
  /** Tokens for /api/*, /metrics and /healthz (the WebSocket routes check their own). */
  readonly access: AccessPolicy;
  /** Where refusals are counted (for /metrics). */
  readonly refusals: RefusalCounts;
  /** Shown on the dashboard through /api/streams. */
  readonly warnings?: readonly ServerWarning[];
  /** Certificate and key: serve https (and wss on the same port). */
  readonly tls?: TlsMaterial | undefined;
  /** The recorded streams' recordings (here, or at an edge's origin). */
  readonly recordings?: RecordingLookup;
}

export type AnyServer = Server | HttpsServer;

export function createHttpServer(options: HttpServerOptions): AnyServer {
  const { streams, staticFiles, ws, metrics, log, limits, access, refusals, warnings = [], recordings = NO_RECORDINGS } = options;
  const gate = new ConnectionGate(limits.maxConnectionsPerSecond);
  const route = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? "/").split("?", 1)[0]!;
    const notFound = (): void => sendJson(res, 404, { error: "CC_ERR_NOT_FOUND", message: `no such path: ${path.slice(0, 200)}` });
    /** Every route here is read-only: anything but GET and HEAD gets 405. */
    const readOnly = (): boolean => {
      if (req.method === "GET" || req.method === "HEAD") return true;
      res.setHeader("Allow", "GET, HEAD");
      sendJson(res, 405, { error: "CC_ERR_METHOD", message: "use GET" });
      return false;
    };
    const recording = recordingRoute(path);
    if (recording !== null) {
      // A stream's recordings are the stream's: a token must be valid for it.
      const decision = access.authorize(req, recording.stream);
      if (!decision.ok) {
        logRefusal(log, req, decision.code);
        sendRefusal(res, decision, refusals);
        return;
      }
      if (readOnly()) handleRecording(recording, req, res, recordings, (name) => streams.has(name));
      return;
    }
    // /api/*, /metrics and /healthz tell about the streams: tokens apply to them (when configured).
    if (path.startsWith("/api/") || isOpsPath(path)) {
      const decision = access.authorize(req);
      if (!decision.ok) {
        logRefusal(log, req, decision.code);
        sendRefusal(res, decision, refusals);
        return;
      }
      if (isOpsPath(path)) {
        if (readOnly()) handleOps(path, req, res, { streams, metrics, log, visible: decision.streams, refusals });
        return;
      }
      if (path !== "/api/streams") return notFound();
      if (readOnly()) sendJson(res, 200, streamsResponse(streams.values(), decision.streams, warnings, recordings));
      return;
    }
    if (readOnly()) staticFiles(req, res, notFound);
  };
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    gate
      .admit(req)
      .then((refusal) => {
        if (!refusal) return route(req, res);
        log.debug("request refused", { code: refusal.code, remote: req.socket.remoteAddress });
        sendRefusal(res, refusal, refusals);
      })
      // A bug in one request's handling answers that request 500; it must not end the process.
      .catch((err: unknown) => {
        log.error("request failed", { error: err instanceof Error ? err.message : String(err) });
        if (!res.headersSent) sendJson(res, 500, { error: "CC_ERR_INTERNAL", message: "internal error" });
        else res.destroy();
      });
  };
  const server: AnyServer = options.tls
    ? createHttpsServer({ ...httpServerLimits(limits), cert: options.tls.cert, key: options.tls.key }, handler)
    : createServer(httpServerLimits(limits), handler);
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Node drops its own error listener on upgrade; a reset while we decide must not crash the server.
    socket.on("error", () => socket.destroy());
    gate
      .admit(req)
      .then((refusal) => {
        if (!refusal) return ws.handleUpgrade(req, socket, head);
        log.debug("upgrade refused", { code: refusal.code, remote: req.socket.remoteAddress });
        refuseSocket(socket, refusal, refusals);
      })
      .catch((err: unknown) => {
        log.error("upgrade failed", { error: err instanceof Error ? err.message : String(err) });
        socket.destroy();
      });
  });
  server.on("clientError", (err: Error, socket: Duplex) => {
    log.debug("bad HTTP request", { error: err.message, code: (err as NodeJS.ErrnoException).code });
    answerClientError(err, socket, refusals);
  });
  return server;
}
