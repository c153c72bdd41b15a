// Builds the gst-launch-1.0 argv for a stream: source → raw I420 at the configured size/rate →
// vp8enc with live settings → gdppay → fdsink fd=1. Passed as an argv array, never through a shell.

export type SourceSpec =
  | { readonly kind: "test"; readonly pattern: string }
  | { readonly kind: "v4l2"; readonly device: string }
  /** An operator's own gst-launch fragment that ends in raw video (a file, an RTSP camera, …). */
  | { readonly kind: "gst"; readonly fragment: string };

export interface EncodeSettings {
  readonly width: number;
  readonly height: number;
  /** Integer frames per second. */
  readonly framerate: number;
  readonly bitrateKbps: number;
  readonly keyframeIntervalS: number;
}

export interface PipelineOptions {
  /** Draw the wall-clock time on test patterns (needs the clockoverlay element). */
  readonly timeOverlay: boolean;
}

export function describeSource(source: SourceSpec): string {
  switch (source.kind) {
    case "test":
      return `test pattern (${source.pattern})`;
    case "v4l2":
      return `v4l2:${source.device}`;
    case "gst":
      return `gst:${source.fragment.length > 80 ? source.fragment.slice(0, 77) + "…" : source.fragment}`;
  }
}

export function keyframeMaxDist(settings: EncodeSettings): number {
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
  }
}

/** Splits a pipeline fragment at white space outside double quotes (quotes stay for gst to read). */
export function splitFragment(fragment: string): string[] {
  return fragment.match(/(?:[^\s"]+|"[^"]*")+/g) ?? [];
}

/** Arguments for gst-launch-1.0, without the program name. */
export function buildGstArgs(source: SourceSpec, settings: EncodeSettings, options: PipelineOptions): string[] {
  const { width, height, framerate } = settings;
  const rawCaps = `video/x-raw,width=${width},height=${height},framerate=${framerate}/1`;
  const input = inputArgs(source, rawCaps, options);
  return [
    "-q", // without -q status lines go to stdout and corrupt the GDP stream
    "-e", // SIGINT sends EOS: a clean exit on a packet boundary
    ...input,
    "!", "videoconvert", "!", "video/x-raw,format=I420",
    "!", "vp8enc",
    // vp8enc defaults are for files (deadline 1 s); these are the live settings measured in DESIGN.md.
    "deadline=1", "cpu-used=8", "end-usage=cbr",
    `target-bitrate=${Math.round(settings.bitrateKbps * 1000)}`,
    `keyframe-max-dist=${keyframeMaxDist(settings)}`,
    "lag-in-frames=0", "threads=1", "error-resilient=default",
    "!", "gdppay",
    "!", "fdsink", "fd=1", "sync=false",
  ];
}
