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
import { EdgeDirectory } from "./cluster/edge-directory.js";
import { EdgeStream } from "./cluster/edge-stream.js";
import { NatsLink } from "./cluster/nats-link.js";
import { newOriginId, OriginPublisher } from "./cluster/origin.js";
import { RelaySubjects } from "./cluster/relay-protocol.js";
import { LiveStream } from "./stream/live-stream.js";
import { Recorder } from "./record/recorder.js";
import { LocalRecording, type RecordingLookup } from "./record/stream-recording.js";
import { OriginRecordings } from "./cluster/origin-recordings.js";
import type { ServedStream } from "./stream/served-stream.js";

export interface App {
  /** Base URL, e.g. http://127.0.0.1:8080/ */
  readonly url: string;
  readonly port: number;
  /** Its own pipelines' streams, or on an edge those its origins announce (the map changes as they do). */
  readonly streams: ReadonlyMap<string, ServedStream>;
  /** On an origin: its id on NATS. */
  readonly originId: string | undefined;
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
/** An edge keeps its subscription to an encoding this long after its last viewer left. */
const EDGE_LINGER_MS = 5000;
/** An edge waits this long for an origin's GOP before going on with its live frames. */
const EDGE_GOP_TIMEOUT_MS = 1000;
/** At start, an edge waits at most this long to hear the origins before it listens (NATS may be down). */
const EDGE_DISCOVER_WAIT_MS = 2000;

export async function startApp(config: AppConfig, options: AppOptions): Promise<App> {
  const { log } = options;
  const staticFiles = createStaticHandler(config.webRoot);
  const tls = config.tls === null ? undefined : await loadTls(config.tls);
  const access = new AccessPolicy(config.access, { secure: tls !== undefined });
  const warnings = [...exposureWarnings(config.host, access.tokensRequired), ...config.warnings];
  const timeOverlay = await hasGstElement("clockoverlay");
  if (!timeOverlay) log.info("clockoverlay not available; the test pattern will not show the time");

  const refusals = new RefusalCounts();
  const fanout = { flow: { maxLagMs: config.maxLagMs } };
  const cluster = config.cluster;
  const link = cluster === null ? null : new NatsLink(cluster.nats, log.child({ component: "nats" }));
  const subjects = cluster === null ? null : new RelaySubjects(cluster.nats.prefix);
  const edge = cluster?.role === "edge" && link !== null && subjects !== null ? { link, subjects } : null;
  // Made before any stream, so that each stream's fan-outs get their lag observers; read at each scrape.
  const liveMap = new Map<string, LiveStream>();
  const edgeMap = new Map<string, EdgeStream>();
  const streams: ReadonlyMap<string, ServedStream> = edge !== null ? edgeMap : liveMap;
  const recorders = new Map<string, Recorder>();
  const metrics = createMetrics(streams, refusals, link, recorders);
  const directory =
    edge === null
      ? null
      : new EdgeDirectory({
          ...edge,
          streams: edgeMap,
          log: log.child({ component: "edge" }),
          makeStream: (announced, origin) =>
            new EdgeStream(announced, origin, {
              log,
              relay: { ...edge, lingerMs: EDGE_LINGER_MS, gopTimeoutMs: EDGE_GOP_TIMEOUT_MS },
              fanout,
              viewerLagObserver: (encoding) => metrics.lagObserver(announced.name, encoding),
            }),
        });
  for (const streamConfig of edge === null ? config.streams : []) {
    liveMap.set(
      streamConfig.name,
      new LiveStream(streamConfig, {
        log,
        pipeline: { timeOverlay },
        fanout,
        viewerLagObserver: (encoding) => metrics.lagObserver(streamConfig.name, encoding),
        supervisor: { stallTimeoutMs: config.stallTimeoutMs },
      }),
    );
  }
  const liveStreams = [...liveMap.values()];
  const closeRecorders = (): Promise<unknown> => Promise.all([...recorders.values()].map((r) => r.close()));
  try {
    for (const streamConfig of edge === null ? config.streams : []) {
      if (streamConfig.record === null) continue;
      const recorderLog = log.child({ component: "recorder", stream: streamConfig.name });
      recorders.set(streamConfig.name, await Recorder.start(streamConfig.name, streamConfig.record, liveMap.get(streamConfig.name)!.fanout, { log: recorderLog }));
    }
  } catch (err) {
    await Promise.all([closeRecorders(), link?.close(), ...liveStreams.map((s) => s.close())]);
    throw err;
  }
  // Seeks and lists: a recording of this server's disk, or (an edge's) its origin's over NATS.
  const local = new Map([...recorders].map(([name, recorder]) => [name, new LocalRecording(recorder, log.child({ component: "playback", stream: name }))]));
  const recordings: RecordingLookup = edge === null ? local : { get: (name) => edgeMap.get(name)?.recording ?? undefined };
  const originId = cluster?.role === "origin" ? newOriginId() : undefined;
  const originLog = log.child({ component: "origin", origin: originId });
  const publisher = link !== null && subjects !== null && originId !== undefined ? new OriginPublisher(link, subjects, streams, originId, originLog, local) : null;
  const originRecordings = link !== null && subjects !== null && originId !== undefined && local.size > 0 ? new OriginRecordings(link, subjects, local, originId, originLog) : null;
  const ws = new WsRoutes({ streams, log, heartbeatMs: config.heartbeatMs, limits: config.limits, access, refusals, recordings });
  const server = createHttpServer({ streams, staticFiles, ws, metrics, log, limits: config.limits, access, refusals, warnings, tls, recordings });

  // An edge that listened before hearing its origins would refuse viewers of their streams.
  await directory?.ready(EDGE_DISCOVER_WAIT_MS);
  try {
    await listen(server, config.port, config.host);
  } catch (err) {
    publisher?.close();
    originRecordings?.close();
    await Promise.all([ws.close(), directory?.close(), link?.close(), ...liveStreams.map((s) => s.close())]);
    await closeRecorders();
    throw err;
  }
  for (const stream of liveStreams) stream.start();

  const { port } = server.address() as AddressInfo;
  const hostForUrl = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host.includes(":") ? `[${config.host}]` : config.host;
  let closing: Promise<void> | null = null;
  return {
    url: `${tls ? "https" : "http"}://${hostForUrl}:${port}/`,
    port,
    streams,
    originId,
    tls,
    warnings,
    close() {
      closing ??= (async () => {
        server.close();
        // Edges hear at once that this origin is gone, instead of after three silent announcement periods.
        publisher?.close();
        originRecordings?.close();
        // Viewers get 1001 and the pipelines their SIGINT at the same time.
        const stopped = Promise.all([...streams.values()].map((s) => s.close()));
        await ws.close(CLOSE_HANDSHAKE_MS);
        server.closeAllConnections();
        await stopped;
        // After the pipelines: each recorder finishes its open segment with the last frames.
        await closeRecorders();
        await directory?.close();
        await link?.close();
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
