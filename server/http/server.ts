// The HTTP server: API, static client, WebSocket upgrades. Everything else is a 404.

import { createServer, type Server } from "node:http";
import type { Logger } from "../log.js";
import type { LiveStream } from "../stream/live-stream.js";
import { sendJson, streamsResponse } from "./api.js";
import type { StaticHandler } from "./static.js";
import type { WsRoutes } from "./ws-routes.js";

export interface HttpServerOptions {
  readonly streams: ReadonlyMap<string, LiveStream>;
  readonly staticFiles: StaticHandler;
  readonly ws: WsRoutes;
  readonly log: Logger;
}

export function createHttpServer(options: HttpServerOptions): Server {
  const { streams, staticFiles, ws, log } = options;
  const server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, (req, res) => {
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
  });
  server.on("upgrade", (req, socket, head) => ws.handleUpgrade(req, socket, head));
  server.on("clientError", (err, socket) => {
    log.debug("bad HTTP request", { error: err.message });
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    else socket.destroy();
  });
  return server;
}
