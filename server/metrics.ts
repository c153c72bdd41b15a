// Prometheus metrics for `GET /metrics`, through prom-client. The streams already count what
// matters (frames and bytes in, skips, restarts, viewers, the GOP cache): those are read at scrape
// time in `collect()` callbacks, so the per-frame path does no extra work. Only the viewer lag
// histogram is observed as it happens, once per pong of a flow-control probe.
// One registry per app, not prom-client's global one, so several servers in one process (tests)
// do not share or clash.

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { SKIP_REASONS, STREAM_STATES } from "../shared/protocol.js";
import type { RefusalCounts } from "./http/refusal.js";
import type { LiveStream } from "./stream/live-stream.js";
import { VIEWER_MODES } from "./stream/viewer.js";

/** Viewer lag buckets, seconds: a healthy viewer is a few ms behind; past `--max-lag-ms` it is skipped. */
export const LAG_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface AppMetrics {
  readonly registry: Registry;
  /** The content type of `render()`'s text (Prometheus text format 0.0.4). */
  readonly contentType: string;
  render(): Promise<string>;
  /** The callback a stream's fan-out calls with a viewer's delivery delay (ms) at each of its pongs. */
  lagObserver(stream: string): (lagMs: number) => void;
}

/** `streams` is read at each scrape: streams added to the map later are included. */
export function createMetrics(streams: ReadonlyMap<string, LiveStream>, refusals: RefusalCounts): AppMetrics {
  const registry = new Registry();
  // Process and Node.js metrics under their standard names (process_cpu_seconds_total, nodejs_heap_size_used_bytes, …).
  collectDefaultMetrics({ register: registry });
  const all = (): Iterable<LiveStream> => streams.values();
  const registers = [registry];

  /** A counter whose value is the stream's own running total, read at scrape time. */
  const totalCounter = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    read: (stream: LiveStream, add: (labels: Record<L, string>, value: number) => void) => void,
  ): void => {
    new Counter<L>({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const stream of all()) read(stream, (labels, value) => this.inc(labels, value));
      },
    });
  };

  totalCounter("canvascast_pipeline_frames_total", "VP8 frames read from the stream's pipeline", ["stream"], (s, add) =>
    add({ stream: s.name }, s.fanout.framesIn),
  );
  totalCounter("canvascast_pipeline_bytes_total", "VP8 bytes read from the stream's pipeline (frame payloads)", ["stream"], (s, add) =>
    add({ stream: s.name }, s.fanout.bytesIn),
  );
  totalCounter("canvascast_pipeline_restarts_total", "Times the stream's pipeline was restarted after it ended or stalled", ["stream"], (s, add) =>
    add({ stream: s.name }, s.restarts),
  );
  totalCounter(
    "canvascast_frames_skipped_total",
    "Frames not sent to a viewer, summed over the stream's viewers, by mode and reason (lagging: it would read them too late, measured by pings; buffer-full: too much queued on its socket)",
    ["stream", "mode", "reason"],
    (s, add) => {
      for (const mode of VIEWER_MODES) {
        const skipped = s.fanout.skipped(mode);
        for (const reason of SKIP_REASONS) add({ stream: s.name, mode, reason }, skipped[reason]);
      }
    },
  );

  new Gauge({
    name: "canvascast_viewers",
    help: "Connected viewers, by mode (ws: frame protocol on /ws/; webm: WebM on /webm/)",
    labelNames: ["stream", "mode"],
    registers,
    collect() {
      this.reset();
      for (const s of all()) {
        for (const mode of VIEWER_MODES) this.set({ stream: s.name, mode }, s.fanout.viewerCount(mode));
      }
    },
  });
  new Gauge({
    name: "canvascast_gop_cache_frames",
    help: "Frames in the stream's GOP cache (the last keyframe and the frames since), replayed to joining viewers",
    labelNames: ["stream"],
    registers,
    collect() {
      this.reset();
      for (const s of all()) this.set({ stream: s.name }, s.fanout.gopFrames);
    },
  });
  new Gauge({
    name: "canvascast_gop_cache_bytes",
    help: "Bytes in the stream's GOP cache",
    labelNames: ["stream"],
    registers,
    collect() {
      this.reset();
      for (const s of all()) this.set({ stream: s.name }, s.fanout.gopBytes);
    },
  });
  new Gauge({
    name: "canvascast_stream_state",
    help: "1 for the stream's current state (starting, live, restarting, offline), 0 for the others",
    labelNames: ["stream", "state"],
    registers,
    collect() {
      this.reset();
      for (const s of all()) for (const state of STREAM_STATES) this.set({ stream: s.name, state }, s.fanout.state === state ? 1 : 0);
    },
  });

  new Counter({
    name: "canvascast_requests_refused_total",
    help: "Requests and WebSocket upgrades refused, by error code (the codes of docs/protocol.md, Refusals)",
    labelNames: ["code"],
    registers,
    collect() {
      this.reset();
      for (const [code, n] of refusals.entries()) this.inc({ code }, n);
    },
  });

  const lag = new Histogram({
    name: "canvascast_viewer_lag_seconds",
    help: "Viewers' delivery delay (a flow-control ping's time from being written to its pong), sampled at each such pong, /ws/ and /webm/ alike",
    labelNames: ["stream"],
    buckets: LAG_BUCKETS_S,
    registers,
  });

  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
    lagObserver(stream) {
      lag.zero({ stream }); // listed (with zero counts) before the first pong
      const child = lag.labels({ stream });
      return (lagMs) => child.observe(lagMs / 1000);
    },
  };
}
