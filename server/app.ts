// Wires configuration, streams and the HTTP server together; one close() stops it all.

import type { AddressInfo } from "node:net";
import type { ServerWarning } from "../shared/api.js";
import type { AppConfig } from "./config.js";
import { AccessPolicy, exposureWarnings } from "./http/access.js";
import { createHttpServer, type AnyServer } from "./http/server.js";
import { createStaticHandler } from "./http/static.js";
import { WsRoutes } from "./http/ws-routes.js";
import type { Logger } from "./log.js";
import { loadTls, type TlsMaterial } from "./http/tls.js";
import { createMetrics } from "./metrics.js";
import { RefusalCounts } from "./http/refusal.js";
import { hasGstElement } from "./source/gst-env.js";
import { LiveStream } from "./stream/live-stream.js";

export interface App {
  /** Base URL, e.g. http://127.0.0.1:8080/ */
  readonly url: string;
  readonly port: number;
  readonly streams: ReadonlyMap<string, LiveStream>;
  /** The certificate in use, when serving https. */
  readonly tls: TlsMaterial | undefined;
  /** What the operator should fix (also on the dashboard), e.g. no token while listening beyond loopback. */
  readonly warnings: readonly ServerWarning[];
  close(): Promise<void>;
}

export interface AppOptions {
  readonly log: Logger;
}

/** How long viewers get to complete the close handshake on shutdown before their sockets are cut. */
const CLOSE_HANDSHAKE_MS = 1000;

export async function startApp(config: AppConfig, options: AppOptions): Promise<App> {
  const { log } = options;
  const staticFiles = createStaticHandler(config.webRoot);
  const tls = config.tls === null ? undefined : await loadTls(config.tls);
  const access = new AccessPolicy(config.access, { secure: tls !== undefined });
  const warnings = [...exposureWarnings(config.host, access.tokensRequired), ...config.warnings];
  const timeOverlay = await hasGstElement("clockoverlay");
  if (!timeOverlay) log.info("clockoverlay not available; the test pattern will not show the time");

  const streams = new Map<string, LiveStream>();
  const refusals = new RefusalCounts();
  const metrics = createMetrics(streams, refusals);
  for (const streamConfig of config.streams) {
    streams.set(
      streamConfig.name,
      new LiveStream(streamConfig, {
        log,
        pipeline: { timeOverlay },
        fanout: { flow: { maxLagMs: config.maxLagMs } },
        viewerLagObserver: (encoding) => metrics.lagObserver(streamConfig.name, encoding),
        supervisor: { stallTimeoutMs: config.stallTimeoutMs },
      }),
    );
  }
  const ws = new WsRoutes({ streams, log, heartbeatMs: config.heartbeatMs, limits: config.limits, access, refusals });
  const server = createHttpServer({ streams, staticFiles, ws, metrics, log, limits: config.limits, access, refusals, warnings, tls });

  try {
    await listen(server, config.port, config.host);
  } catch (err) {
    await ws.close();
    throw err;
  }
  for (const stream of streams.values()) stream.start();

  const { port } = server.address() as AddressInfo;
  const hostForUrl = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host.includes(":") ? `[${config.host}]` : config.host;
  let closing: Promise<void> | null = null;
  return {
    url: `${tls ? "https" : "http"}://${hostForUrl}:${port}/`,
    port,
    streams,
    tls,
    warnings,
    close() {
      closing ??= (async () => {
        server.close();
        // Viewers get 1001 and the pipelines their SIGINT at the same time.
        const stopped = Promise.all([...streams.values()].map((s) => s.close()));
        await ws.close(CLOSE_HANDSHAKE_MS);
        server.closeAllConnections();
        await stopped;
      })();
      return closing;
    },
  };
}

function listen(server: AnyServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}
