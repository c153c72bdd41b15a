// The HTTP server: API, static client, WebSocket upgrades. Everything else is a 404.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Logger } from "../log.js";
import type { LiveStream } from "../stream/live-stream.js";
import { sendJson, streamsResponse } from "./api.js";
import { answerClientError, ConnectionGate, httpServerLimits, type LimitsConfig } from "./limits.js";
import { refuseSocket, sendRefusal } from "./refusal.js";
import type { StaticHandler } from "./static.js";
import type { WsRoutes } from "./ws-routes.js";

export interface HttpServerOptions {
  readonly streams: ReadonlyMap<string, LiveStream>;
  readonly staticFiles: StaticHandler;
  readonly ws: WsRoutes;
  readonly log: Logger;
  readonly limits: LimitsConfig;
}

export function createHttpServer(options: HttpServerOptions): Server {
  const { streams, staticFiles, ws, log, limits } = options;
  const gate = new ConnectionGate(limits.maxConnectionsPerSecond);
  const route = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? "/").split("?", 1)[0]!;
    const notFound = (): void => sendJson(res, 404, { error: "CC_ERR_NOT_FOUND", message: `no such path: ${path.slice(0, 200)}` });
    if (path === "/api/streams") {
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.setHeader("Allow", "GET, HEAD");
        sendJson(res, 405, { error: "CC_ERR_METHOD", message: "use GET" });
        return;
      }
      sendJson(res, 200, streamsResponse(streams.values()));
      return;
    }
    if (path.startsWith("/api/")) return notFound();
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("Allow", "GET, HEAD");
      sendJson(res, 405, { error: "CC_ERR_METHOD", message: "use GET" });
      return;
    }
    staticFiles(req, res, notFound);
  };
  const server = createServer(httpServerLimits(limits), (req, res) => {
    void gate.admit(req).then((refusal) => {
      if (!refusal) return route(req, res);
      log.debug("request refused", { code: refusal.code, remote: req.socket.remoteAddress });
      sendRefusal(res, refusal);
    });
  });
  server.on("upgrade", (req, socket, head) => {
    // Node drops its own error listener on upgrade; a reset while we decide must not crash the server.
    socket.on("error", () => socket.destroy());
    void gate.admit(req).then((refusal) => {
      if (!refusal) return ws.handleUpgrade(req, socket, head);
      log.debug("upgrade refused", { code: refusal.code, remote: req.socket.remoteAddress });
      refuseSocket(socket, refusal);
    });
  });
  server.on("clientError", (err, socket) => {
    log.debug("bad HTTP request", { error: err.message, code: (err as NodeJS.ErrnoException).code });
    answerClientError(err, socket);
  });
  return server;
}
