// Builds the gst-launch-1.0 argv for a stream: source → raw I420 at the configured size/rate →
// the stream's encoder with live settings (server/codecs/) → gdppay → fdsink fd=1. A stream with a tile encoding gets a second
// branch in the same process (one capture): a tee after the raw caps, scaled down and encoded
// again, out on fd 3 — or, for a camera's own substream, a second source chain. With `codec: copy`
// the source's own encoded video goes through its codec's parser only (no decoding), in the codec
// the probe found (source/codec-probe.ts). Passed as an argv array, never through a shell.

import type { CodecName } from "../../shared/codec.js";
import type { EncodingName } from "../../shared/protocol.js";
import type { EncoderTarget } from "../codecs/codec-module.js";
import { CODECS, type CodecSetting } from "../codecs/registry.js";
import { describeRtsp, redactCredentials, rtspsrcArgs, type RtspSource } from "./rtsp.js";

export type SourceSpec =
  | { readonly kind: "test"; readonly pattern: string }
  | { readonly kind: "v4l2"; readonly device: string }
  /** An operator's own gst-launch fragment that ends in raw video (a file, an RTSP camera, …), or in encoded video for `copy`. */
  | { readonly kind: "gst"; readonly fragment: string }
  /** An RTSP camera (rtspsrc, TCP); decoded and encoded again, or forwarded with `copy`. */
  | RtspSource;

/** Sources that can deliver encoded video, so `codec: copy` can forward it. */
export function canCopy(source: SourceSpec): boolean {
  return source.kind === "rtsp" || source.kind === "gst";
}

export interface EncodeSettings {
  readonly width: number;
  readonly height: number;
  /** Integer frames per second. */
  readonly framerate: number;
  readonly bitrateKbps: number;
  readonly keyframeIntervalS: number;
  /** The tile encoding, when there is one, uses the same codec. `copy`: the source's own, forwarded (size, rate, bitrate and keyframes are the source's). */
  readonly codec: CodecSetting;
}

/** The smaller encoding for grids of players. */
export interface TileSettings {
  readonly width: number;
  readonly height: number;
  /** Integer frames per second. */
  readonly framerate: number;
  readonly bitrateKbps: number;
  /** A camera's own smaller stream; null: the stream's picture, scaled down. */
  readonly source: SourceSpec | null;
}

/** What one pipeline encodes: the full encoding from `source`, and the tile encoding when set. */
export interface PipelineSpec {
  readonly source: SourceSpec;
  readonly settings: EncodeSettings;
  readonly tile: TileSettings | null;
}

/** One encoding's GDP stream out of the process: fd 1 (stdout) for the full one, 3 for the tile. */
export interface PipelineOutput {
  readonly encoding: EncodingName;
  readonly fd: number;
  readonly codec: CodecName;
}

/** For `codec: copy`: the codec each source sends (full, and the tile's own source), as probed. */
export interface CopiedCodecs {
  readonly full: CodecName;
  readonly tile: CodecName | null;
}

export interface GstPipeline {
  /** Arguments for gst-launch-1.0, without the program name. */
  readonly args: readonly string[];
  readonly outputs: readonly PipelineOutput[];
}

export const FULL_FD = 1;
/** fd 2 is stderr (gst's messages); extra outputs start after it. */
export const TILE_FD = 3;

export interface PipelineOptions {
  /** Draw the wall-clock time on test patterns (needs the clockoverlay element). */
  readonly timeOverlay: boolean;
  /** How long an RTSP camera may take to connect and answer; 5 s when not given. */
  readonly connectTimeoutMs?: number;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

export function describeSource(source: SourceSpec): string {
  switch (source.kind) {
    case "test":
      return `test pattern (${source.pattern})`;
    case "v4l2":
      return `v4l2:${source.device}`;
    case "gst": {
      const fragment = redactCredentials(source.fragment);
      return `gst:${fragment.length > 80 ? fragment.slice(0, 77) + "…" : fragment}`;
    }
    case "rtsp":
      return describeRtsp(source);
  }
}

export function keyframeMaxDist(settings: Pick<EncodeSettings, "framerate" | "keyframeIntervalS">): number {
  return Math.max(1, Math.round(settings.framerate * settings.keyframeIntervalS));
}

function inputArgs(source: SourceSpec, rawCaps: string, options: PipelineOptions): string[] {
  switch (source.kind) {
    case "test":
      return [
        "videotestsrc", "is-live=true", `pattern=${source.pattern}`,
        // A moving picture, so a frozen player is visible at a glance.
        ...(source.pattern === "smpte" ? ["horizontal-speed=2"] : []),
        "!", rawCaps,
        ...(options.timeOverlay ? ["!", "clockoverlay", "time-format=%H:%M:%S", "halignment=right", "valignment=bottom", "shaded-background=true"] : []),
      ];
    case "v4l2":
      return [
        "v4l2src", `device=${source.device}`, "do-timestamp=true",
        "!", "videoconvert", "!", "videoscale", "!", "videorate",
        "!", rawCaps,
      ];
    case "gst":
      // gst-launch escapes the spaces inside each argument, so the fragment goes in as its tokens.
      // Whatever it delivers is converted to the configured size and rate.
      return [...splitFragment(source.fragment), "!", "videoconvert", "!", "videoscale", "!", "videorate", "!", rawCaps];
    case "rtsp":
      return [...rtspsrcArgs(source, rtspOptions(options)), "!", "decodebin", "!", "videoconvert", "!", "videoscale", "!", "videorate", "!", rawCaps];
  }
}

/** A source's encoded video in `codec`, as frames of that codec (its parser, no decoding): what `copy` forwards. */
export function encodedInputArgs(source: SourceSpec, codec: CodecName, options: PipelineOptions): string[] {
  const module = CODECS[codec];
  switch (source.kind) {
    case "rtsp":
      return [...rtspsrcArgs(source, rtspOptions(options), module.rtp.encodingName), "!", module.rtp.depayloader, ...module.parseArgs];
    case "gst":
      return [...splitFragment(source.fragment), ...module.parseArgs];
    case "test":
    case "v4l2":
      // The config refuses these with copy: they deliver raw video.
      throw new RangeError(`a ${source.kind} source delivers raw video: nothing to copy`);
  }
}

const rtspOptions = (options: PipelineOptions): { connectTimeoutMs: number } => ({
  connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
});

/** Splits a pipeline fragment at white space outside double quotes (quotes stay for gst to read). */
export function splitFragment(fragment: string): string[] {
  return fragment.match(/(?:[^\s"]+|"[^"]*")+/g) ?? [];
}

const HEAD = [
  "-q", // without -q status lines go to stdout and corrupt the GDP stream
  "-e", // SIGINT sends EOS: a clean exit on a packet boundary
];

/** The gst-launch-1.0 arguments and where each encoding comes out. `copied`: what the sources send, for `codec: copy`. */
export function buildPipeline(spec: PipelineSpec, options: PipelineOptions, copied?: CopiedCodecs): GstPipeline {
  const { settings, tile } = spec;
  if (settings.codec === "copy") {
    if (copied === undefined) throw new RangeError("codec copy: the pipeline needs the codec the source sends (probe it first)");
    return copyPipeline(spec, options, copied);
  }
  const input = inputArgs(spec.source, rawCaps(settings), options);
  const codec = CODECS[settings.codec];
  const name = settings.codec;
  const encoderArgs = (target: EncoderTarget): string[] => codec.encoderArgs(target);
  const fullTail = [...encoderArgs({ bitrateKbps: settings.bitrateKbps, keyframeDistance: keyframeMaxDist(settings) }), ...sinkArgs(FULL_FD)];
  if (tile === null) {
    return { args: [...HEAD, ...input, ...toI420, ...fullTail], outputs: [{ encoding: "full", fd: FULL_FD, codec: name }] };
  }
  const tileEncode = [
    ...encoderArgs({
      bitrateKbps: tile.bitrateKbps,
      keyframeDistance: keyframeMaxDist({ framerate: tile.framerate, keyframeIntervalS: settings.keyframeIntervalS }),
    }),
    ...sinkArgs(TILE_FD),
  ];
  const outputs: PipelineOutput[] = [
    { encoding: "full", fd: FULL_FD, codec: name },
    { encoding: "tile", fd: TILE_FD, codec: name },
  ];
  if (tile.source !== null) {
    // Two captures, each its own chain (and streaming thread) in the one process.
    const tileInput = inputArgs(tile.source, rawCaps(tile), options);
    return { args: [...HEAD, ...input, ...toI420, ...fullTail, ...tileInput, ...toI420, ...tileEncode], outputs };
  }
  // One capture, teed. Each branch has its own queue, so each encoder runs in its own thread and a
  // non-live source can preroll both sinks; one buffer at most, so a queue adds no latency. The
  // full branch blocks when its queue is full, as the single-encoding pipeline does (every captured
  // frame is encoded); the tile branch drops its oldest buffer instead, so a tile encoder that falls
  // behind never holds up the full one.
  const scaled = [
    "!", "videoscale", "!", `video/x-raw,width=${tile.width},height=${tile.height}`,
    ...(tile.framerate !== settings.framerate ? ["!", "videorate", "!", `video/x-raw,framerate=${tile.framerate}/1`] : []),
  ];
  return {
    args: [
      ...HEAD, ...input, ...toI420, "!", "tee", "name=t",
      "t.", "!", ...queueArgs(false), ...fullTail,
      "t.", "!", ...queueArgs(true), ...scaled, ...tileEncode,
    ],
    outputs,
  };
}

/** Each source's own encoded video, parsed and forwarded: a tile needs a source of its own (nothing is decoded to scale). */
function copyPipeline(spec: PipelineSpec, options: PipelineOptions, copied: CopiedCodecs): GstPipeline {
  const full = [...encodedInputArgs(spec.source, copied.full, options), ...sinkArgs(FULL_FD)];
  const outputs: PipelineOutput[] = [{ encoding: "full", fd: FULL_FD, codec: copied.full }];
  if (spec.tile === null) return { args: [...HEAD, ...full], outputs };
  if (spec.tile.source === null || copied.tile === null) throw new RangeError("codec copy: a tile needs a source of its own");
  const tile = [...encodedInputArgs(spec.tile.source, copied.tile, options), ...sinkArgs(TILE_FD)];
  return { args: [...HEAD, ...full, ...tile], outputs: [...outputs, { encoding: "tile", fd: TILE_FD, codec: copied.tile }] };
}

const rawCaps = (video: { width: number; height: number; framerate: number }): string =>
  `video/x-raw,width=${video.width},height=${video.height},framerate=${video.framerate}/1`;

const toI420 = ["!", "videoconvert", "!", "video/x-raw,format=I420"];

function queueArgs(leaky: boolean): string[] {
  return ["queue", "max-size-buffers=1", "max-size-bytes=0", "max-size-time=0", ...(leaky ? ["leaky=downstream"] : []), "silent=true"];
}

function sinkArgs(fd: number): string[] {
  return ["!", "gdppay", "!", "fdsink", `fd=${fd}`, "sync=false"];
}
