// For `codec: copy`: which codec a source sends, found before its pipeline is built, because each
// codec needs its own depayloader and parser (parsebin cannot do it: it hands H.264 on as avc and
// its h264parse repeats no SPS/PPS). The source's encoded part runs into a fakesink under
// `gst-launch-1.0 -v`, which prints the caps that reach it: for an RTSP camera the RTP caps with the
// SDP's encoding name (right after PLAY: 0.16 s against a local gst-rtsp-server), for a gst:
// fragment the caps of what it ends in. A source that fails fails here with GStreamer's own error.

import { spawn } from "node:child_process";
import type { CodecName } from "../../shared/codec.js";
import { codecOfMediaType, codecOfRtpEncoding } from "../codecs/registry.js";
import type { Logger } from "../log.js";
import { GST_LAUNCH } from "./gst-process.js";
import { splitFragment, type SourceSpec } from "./pipeline.js";
import { redactCredentials, rtspsrcArgs } from "./rtsp.js";

export type ProbeResult = { readonly ok: true; readonly codec: CodecName } | { readonly ok: false; readonly reason: string };

export interface CodecProbeOptions {
  readonly log: Logger;
  /** No caps within this long: the probe fails. */
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly program?: string;
}

const PROBE_SINK = "ccprobe";
/** How long the probe may take to stop on SIGINT (rtspsrc sends its TEARDOWN, so the camera frees the session). */
const STOP_GRACE_MS = 1000;
/** What gst-launch prints once its pipeline is built, before it starts it. */
const PIPELINE_BUILT = "Setting pipeline to PAUSED";
/** Bound on gst-launch's start-up (plugin registry, parsing) before the wait for video begins. */
const STARTUP_BOUND_MS = 30_000;

/** The gst-launch arguments of a probe of `source`. */
export function probeArgs(source: SourceSpec, connectTimeoutMs: number): string[] {
  const head = ["-v"];
  const sink = ["!", "fakesink", `name=${PROBE_SINK}`, "sync=false"];
  switch (source.kind) {
    case "rtsp":
      return [...head, ...rtspsrcArgs(source, { connectTimeoutMs }), ...sink];
    case "gst":
      return [...head, ...splitFragment(source.fragment), ...sink];
    case "test":
    case "v4l2":
      throw new RangeError(`a ${source.kind} source delivers raw video: nothing to copy`);
  }
}

/** The codec named by the caps line `gst-launch -v` printed for the probe's sink, or why there is none. */
export function codecOfProbeCaps(caps: string): ProbeResult {
  const mediaType = caps.split(",", 1)[0]!.trim();
  if (mediaType === "application/x-rtp") {
    const name = /encoding-name=\(string\)"?([A-Za-z0-9_-]+)/.exec(caps)?.[1] ?? "?";
    const codec = codecOfRtpEncoding(name);
    return codec !== null ? { ok: true, codec: codec.name } : { ok: false, reason: notForwardable(`RTP ${name}`) };
  }
  const codec = codecOfMediaType(mediaType);
  return codec !== null ? { ok: true, codec: codec.name } : { ok: false, reason: notForwardable(mediaType) };
}

const notForwardable = (what: string): string =>
  `the source sends ${what}, which codec copy cannot forward (it forwards H.264, VP8, VP9 and AV1; use a codec to transcode)`;

/** One probe run; `result` settles once (caps seen, gst failed, or timed out). */
export class CodecProbe {
  readonly result: Promise<ProbeResult>;
  private stop: () => void = () => {};

  constructor(source: SourceSpec, options: CodecProbeOptions) {
    this.result = new Promise<ProbeResult>((resolve) => {
      const child = spawn(options.program ?? GST_LAUNCH, probeArgs(source, options.connectTimeoutMs), { stdio: ["ignore", "pipe", "pipe"] });
      let settled = false;
      let stdout = "";
      const stderr: string[] = [];
      let killTimer: NodeJS.Timeout | null = null;
      const end = (): void => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill("SIGINT");
        killTimer ??= setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
        killTimer.unref();
      };
      const settle = (result: ProbeResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timeout);
        resolve(result);
        end();
      };
      const timedOut = (): void =>
        settle({ ok: false, reason: `no video from the source within ${Math.round(options.timeoutMs / 100) / 10} s (probing its codec)` });
      // The wait for video starts once gst-launch has built its pipeline: on a new machine its first
      // run builds the plugin registry, which on a loaded machine alone takes seconds. A gst-launch
      // that never gets that far is given a generous bound of its own.
      let timeout = setTimeout(timedOut, Math.max(options.timeoutMs * 4, STARTUP_BOUND_MS));
      let waitingForVideo = false;
      this.stop = () => settle({ ok: false, reason: "stopped" });
      child.stdout.setEncoding("utf8").on("data", (text: string) => {
        stdout += text;
        if (!waitingForVideo && stdout.includes(PIPELINE_BUILT)) {
          waitingForVideo = true;
          clearTimeout(timeout);
          timeout = setTimeout(timedOut, options.timeoutMs);
        }
        const caps = new RegExp(`GstFakeSink:${PROBE_SINK}\\.GstPad:sink: caps = (.*)`).exec(stdout)?.[1];
        if (caps !== undefined) settle(codecOfProbeCaps(caps));
        else stdout = stdout.slice(-4096);
      });
      child.stderr.setEncoding("utf8").on("data", (text: string) => {
        for (const line of text.split("\n")) if (line.trim()) stderr.push(redactCredentials(line.trim()));
      });
      child.once("error", (err) => settle({ ok: false, reason: `cannot run ${options.program ?? GST_LAUNCH}: ${err.message}` }));
      child.once("close", (code, signal) => {
        if (killTimer) clearTimeout(killTimer);
        const errors = stderr.filter((l) => /ERROR/.test(l));
        options.log.debug("codec probe ended", { code, signal, stderr: stderr.slice(-5).join("\n") });
        settle({ ok: false, reason: errors.join("\n") || stderr.slice(-3).join("\n") || `the source ended before sending video (${signal ?? code})` });
      });
    });
  }

  /** Ends the probe (its result: not ok). Safe to call twice. */
  close(): void {
    this.stop();
  }
}
