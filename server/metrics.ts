// Prometheus metrics for `GET /metrics`, through prom-client. The streams already count what
// matters (frames and bytes in, skips, restarts, viewers, the GOP cache): those are read at scrape
// time in `collect()` callbacks, so the per-frame path does no extra work. Only the viewer lag
// histogram is observed as it happens, once per pong of a flow-control probe.
// One registry per app, not prom-client's global one, so several servers in one process (tests)
// do not share or clash.

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { SKIP_REASONS, STREAM_STATES, type EncodingName } from "../shared/protocol.js";
import type { RefusalCounts } from "./http/refusal.js";
import type { ServedStream, StreamEncoding } from "./stream/served-stream.js";
import { VIEWER_MODES } from "./stream/viewer.js";
import type { NatsLink } from "./cluster/nats-link.js";
import { RECORDING_STATES } from "../shared/api.js";
import type { Recorder } from "./record/recorder.js";

/** Viewer lag buckets, seconds: a healthy viewer is a few ms behind; past `--max-lag-ms` it is skipped. */
export const LAG_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface AppMetrics {
  readonly registry: Registry;
  /** The content type of `render()`'s text (Prometheus text format 0.0.4). */
  readonly contentType: string;
  render(): Promise<string>;
  /** The callback a stream encoding's fan-out calls with a viewer's delivery delay (ms) at each of its pongs. */
  lagObserver(stream: string, encoding: EncodingName): (lagMs: number) => void;
}

/** `streams` is read at each scrape: streams added to the map later are included. */
export function createMetrics(
  streams: ReadonlyMap<string, ServedStream>,
  refusals: RefusalCounts,
  nats: NatsLink | null = null,
  recorders: ReadonlyMap<string, Recorder> = new Map(),
): AppMetrics {
  const registry = new Registry();
  // Process and Node.js metrics under their standard names (process_cpu_seconds_total, nodejs_heap_size_used_bytes, …).
  collectDefaultMetrics({ register: registry });
  const all = (): Iterable<ServedStream> => streams.values();
  /** Every encoding of every stream, with the labels that name it. */
  function* encodings(): Iterable<[{ stream: string; encoding: EncodingName }, StreamEncoding]> {
    for (const s of streams.values()) for (const e of s.encodings.values()) yield [{ stream: s.name, encoding: e.name }, e];
  }
  const registers = [registry];

  /** A counter whose value is the streams' own running total, read at scrape time. */
  const totalCounter = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    read: (add: (labels: Record<L, string>, value: number) => void) => void,
  ): void => {
    new Counter<L>({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        read((labels, value) => this.inc(labels, value));
      },
    });
  };
  /** A gauge read from the streams at scrape time. */
  const scrapedGauge = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    read: (set: (labels: Record<L, string>, value: number) => void) => void,
  ): void => {
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        read((labels, value) => this.set(labels, value));
      },
    });
  };

  totalCounter("canvascast_pipeline_frames_total", "Encoded frames read from the stream's pipeline, by encoding (full, tile)", ["stream", "encoding"], (add) => {
    for (const [labels, e] of encodings()) add(labels, e.fanout.framesIn);
  });
  totalCounter("canvascast_pipeline_bytes_total", "Encoded bytes read from the stream's pipeline (frame payloads), by encoding", ["stream", "encoding"], (add) => {
    for (const [labels, e] of encodings()) add(labels, e.fanout.bytesIn);
  });
  totalCounter("canvascast_pipeline_restarts_total", "Times the stream's pipeline was restarted after it ended or stalled", ["stream"], (add) => {
    for (const s of all()) add({ stream: s.name }, s.restarts);
  });
  totalCounter(
    "canvascast_frames_skipped_total",
    "Frames not sent to a viewer, summed over the stream's viewers, by encoding, mode and reason (lagging: it would read them too late, measured by pings; buffer-full: too much queued on its socket)",
    ["stream", "encoding", "mode", "reason"],
    (add) => {
      for (const [labels, e] of encodings()) {
        for (const mode of VIEWER_MODES) {
          const skipped = e.fanout.skipped(mode);
          for (const reason of SKIP_REASONS) add({ ...labels, mode, reason }, skipped[reason]);
        }
      }
    },
  );
  scrapedGauge(
    "canvascast_viewers",
    "Connected viewers, by encoding and mode (ws: frame protocol on /ws/; webm: WebM on /webm/; mp4: fragmented MP4 on /mp4/)",
    ["stream", "encoding", "mode"],
    (add) => {
      for (const [labels, e] of encodings()) for (const mode of VIEWER_MODES) add({ ...labels, mode }, e.fanout.viewerCount(mode));
    },
  );
  scrapedGauge(
    "canvascast_gop_cache_frames",
    "Frames in the encoding's GOP cache (the last keyframe and the frames since), replayed to joining viewers",
    ["stream", "encoding"],
    (add) => {
      for (const [labels, e] of encodings()) add(labels, e.fanout.gopFrames);
    },
  );
  scrapedGauge("canvascast_gop_cache_bytes", "Bytes in the encoding's GOP cache", ["stream", "encoding"], (add) => {
    for (const [labels, e] of encodings()) add(labels, e.fanout.gopBytes);
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

  // Recording (streams with `record`).
  new Gauge({
    name: "canvascast_recording_state",
    help: "1 for the stream recorder's current state (recording, waiting: for a keyframe, error: cannot write), 0 for the others",
    labelNames: ["stream", "state"],
    registers,
    collect() {
      this.reset();
      for (const r of recorders.values()) for (const state of RECORDING_STATES) this.set({ stream: r.stream, state }, r.state === state ? 1 : 0);
    },
  });
  scrapedGauge("canvascast_recording_bytes", "Bytes of the stream's recorded segments kept on disk", ["stream"], (set) => {
    for (const r of recorders.values()) set({ stream: r.stream }, r.catalog.totalBytes);
  });
  scrapedGauge("canvascast_recording_segments", "The stream's recorded segments kept on disk", ["stream"], (set) => {
    for (const r of recorders.values()) set({ stream: r.stream }, r.catalog.list().length);
  });
  totalCounter("canvascast_recording_errors_total", "Writes of the stream's recording that failed (each stops recording until a retry succeeds)", ["stream"], (add) => {
    for (const r of recorders.values()) add({ stream: r.stream }, r.errors);
  });
  totalCounter("canvascast_recording_frames_dropped_total", "Frames not recorded: the disk did not keep up, or could not be written", ["stream"], (add) => {
    for (const r of recorders.values()) add({ stream: r.stream }, r.framesDropped);
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

  // On an edge: what came from the origins over NATS.
  totalCounter("canvascast_relay_frames_total", "Frames an edge received from its origin over NATS, by encoding", ["stream", "encoding"], (add) => {
    for (const [labels, e] of encodings()) if (e.relay !== null) add(labels, e.relay.info().framesIn);
  });
  totalCounter(
    "canvascast_relay_frames_lost_total",
    "Frames lost between the origin and this edge (gaps in the origin's sequence numbers; viewers skip to the next keyframe)",
    ["stream", "encoding"],
    (add) => {
      for (const [labels, e] of encodings()) if (e.relay !== null) add(labels, e.relay.info().framesLost);
    },
  );
  if (nats !== null) {
    scrapedGauge("canvascast_nats_connected", "1 while connected to a NATS server, 0 while not", [], (set) => set({}, nats.connected ? 1 : 0));
    totalCounter("canvascast_nats_publishes_dropped_total", "Messages not published to NATS: not connected, or larger than the servers' max_payload", [], (add) =>
      add({}, nats.dropped),
    );
  }

  const lag = new Histogram({
    name: "canvascast_viewer_lag_seconds",
    help: "Viewers' delivery delay (a flow-control ping's time from being written to its pong), sampled at each such pong, every mode alike",
    labelNames: ["stream", "encoding"],
    buckets: LAG_BUCKETS_S,
    registers,
  });

  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
    lagObserver(stream, encoding) {
      lag.zero({ stream, encoding }); // listed (with zero counts) before the first pong
      const child = lag.labels({ stream, encoding });
      return (lagMs) => child.observe(lagMs / 1000);
    },
  };
}
