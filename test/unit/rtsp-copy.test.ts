// rtsp:// sources and codec copy, short of running them (test/integration/rtsp.test.ts does):
// URL validation and credentials kept out of everything shown, the config rules of copy, the
// gst-launch argv per source and codec, and what the codec probe makes of the caps it sees.

import { describe, expect, test } from "vitest";
import { ConfigError, parseCli } from "../../server/config.js";
import { codecOfProbeCaps, probeArgs } from "../../server/source/codec-probe.js";
import { buildPipeline, describeSource, type EncodeSettings, type SourceSpec } from "../../server/source/pipeline.js";
import { parseRtspUrl, redactCredentials, RtspUrlError } from "../../server/source/rtsp.js";

const noCamera = { defaultWebRoot: "/srv/web", deviceExists: (): boolean => false };
const withFile = (json: unknown): typeof noCamera & { readFile: () => string } => ({ ...noCamera, readFile: () => JSON.stringify(json) });

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

const copy: EncodeSettings = { width: 640, height: 480, framerate: 30, bitrateKbps: 1500, keyframeIntervalS: 1, codec: "copy" };
const camera = parseRtspUrl("rtsp://admin:p%40ss%20w!rd@192.0.2.10:554/Streaming/Channels/101?transport=tcp");

describe("rtsp:// URLs", () => {
  test("the location loses its credentials; user and password are percent-decoded", () => {
    expect(camera).toEqual({
      kind: "rtsp",
      location: "rtsp://192.0.2.10:554/Streaming/Channels/101?transport=tcp",
      user: "admin",
      password: "p@ss w!rd",
    });
    expect(parseRtspUrl("rtsps://cam.example/live")).toEqual({ kind: "rtsp", location: "rtsps://cam.example/live", user: null, password: null });
  });

  test.each([
    ["rtsp://", /names no host/],
    ["rtsp://cam/a b", /white space/],
    ["rtsp://cam/\u0007", /control characters/],
    ["rtsp://u:p@[::1/x", /is not a URL/],
    [`rtsp://cam/${"a".repeat(2000)}`, /at most 2000/],
  ])("%j is refused: %s", (text, message) => {
    expect(() => parseRtspUrl(text)).toThrow(RtspUrlError);
    expect(() => parseRtspUrl(text)).toThrow(message);
  });

  test("credentials are redacted from URLs, fragments and argv; what is shown has none", () => {
    expect(redactCredentials("gst:rtspsrc location=rtsp://a:b@cam/x ! decodebin")).toBe("gst:rtspsrc location=rtsp://***@cam/x ! decodebin");
    expect(redactCredentials('rtspsrc location="rtsp://cam/x" user-id="admin" user-pw="p@ss w!rd" latency=0')).toBe(
      'rtspsrc location="rtsp://cam/x" user-id=*** user-pw=*** latency=0',
    );
    expect(describeSource(camera)).toBe("rtsp://***@192.0.2.10:554/Streaming/Channels/101?transport=tcp");
    expect(describeSource({ kind: "gst", fragment: "rtspsrc location=rtsp://a:b@cam/x ! rtph264depay" })).toBe(
      "gst:rtspsrc location=rtsp://***@cam/x ! rtph264depay",
    );
    const err = configError(() => parseCli(["--source", "rtsp://admin:hunter2@cam/a b"], noCamera));
    expect(err.key).toBe("--source");
    expect(err.message).not.toContain("hunter2");
  });
});

describe("codec copy in the config", () => {
  test("--source rtsp://… --codec copy: the camera copied, no default tile (nothing is decoded to scale one)", () => {
    const { config } = parseCli(["--source", "rtsp://u:p@cam/main", "--codec", "copy"], noCamera);
    expect(config.streams).toEqual([
      {
        name: "cam0",
        source: { kind: "rtsp", location: "rtsp://cam/main", user: "u", password: "p" },
        settings: { ...copy },
        tile: null,
        record: null,
      },
    ]);
    // Transcoded (the default) it gets the default tile as any 640×480 stream.
    expect(parseCli(["--source", "rtsp://cam/main"], noCamera).config.streams[0]!.tile).toMatchObject({ width: 320, height: 240 });
  });

  test.each([
    ["a test pattern", ["--source", "test", "--codec", "copy"], "--codec", /test pattern \(smpte\) delivers raw video/],
    ["a V4L2 camera", ["--stream", "a=v4l2:/dev/video0", "--codec", "copy"], "--codec", /v4l2:\/dev\/video0 delivers raw video/],
    ["an asked-for tile", ["--source", "rtsp://cam/main", "--codec", "copy", "--tile", "320x240"], "--tile", /forwards its source's video \(codec copy\)/],
    ["an unknown codec", ["--codec", "hevc"], "--codec", /vp8, vp9, av1, h264, copy/],
  ])("refused: %s", (_what, argv, key, message) => {
    const err = configError(() => parseCli(argv, noCamera));
    expect(err.key).toBe(key);
    expect(err.message).toMatch(message);
  });

  test("config file: a copy stream's tile needs a source of its own, and it is copied too", () => {
    const tileless = { streams: [{ name: "door", source: "rtsp://cam/main", codec: "copy", tile: { size: "320x180" } }] };
    const err = configError(() => parseCli(["--config", "c.json"], withFile(tileless)));
    expect(err.key).toBe("c.json: streams[0].tile");
    expect(err.message).toMatch(/"tile": \{"source": "rtsp:\/\/…"\}/);
    const raw = { streams: [{ name: "door", source: "rtsp://cam/main", codec: "copy", tile: { source: "test" } }] };
    expect(configError(() => parseCli(["--config", "c.json"], withFile(raw))).key).toBe("c.json: streams[0].tile.source");
    const sub = { streams: [{ name: "door", source: "rtsp://cam/main", codec: "copy", tile: { source: "rtsp://cam/sub" } }] };
    const stream = parseCli(["--config", "c.json"], withFile(sub)).config.streams[0]!;
    expect(stream.tile?.source).toEqual({ kind: "rtsp", location: "rtsp://cam/sub", user: null, password: null });
  });
});

describe("gst-launch argv", () => {
  const opts = { timeOverlay: false, connectTimeoutMs: 4000 };
  const rtspsrc = ['location="rtsp://192.0.2.10:554/Streaming/Channels/101?transport=tcp"', 'user-id="admin"', 'user-pw="p@ss w!rd"'];

  test("an RTSP camera transcoded: rtspsrc over TCP, its video stream only, decodebin, then the encoder", () => {
    const { args } = buildPipeline({ source: camera, settings: { ...copy, codec: "vp8" }, tile: null }, opts);
    expect(args.slice(2, 17)).toEqual([
      "rtspsrc", ...rtspsrc, "latency=0", "protocols=tcp", "tcp-timeout=4000000",
      "!", "application/x-rtp,media=video", "!", "decodebin", "!", "videoconvert", "!", "videoscale",
    ]);
    expect(args).toContain("vp8enc");
  });

  test("an RTSP camera copied: the codec's depayloader and parser, SPS/PPS on every IDR, no decoder or encoder", () => {
    const { args, outputs } = buildPipeline({ source: camera, settings: copy, tile: null }, opts, { full: "h264", tile: null });
    expect(args.slice(2)).toEqual([
      "rtspsrc", ...rtspsrc, "latency=0", "protocols=tcp", "tcp-timeout=4000000",
      "!", "application/x-rtp,media=video,encoding-name=H264", "!", "rtph264depay",
      "!", "h264parse", "config-interval=-1", "!", "video/x-h264,stream-format=byte-stream,alignment=au",
      "!", "gdppay", "!", "fdsink", "fd=1", "sync=false",
    ]);
    expect(outputs).toEqual([{ encoding: "full", fd: 1, codec: "h264" }]);
  });

  test("a gst: fragment copied, with a substream tile of another codec: each chain parsed for its codec, out on fd 1 and 3", () => {
    const source: SourceSpec = { kind: "gst", fragment: "v4l2src ! video/x-h264" };
    const tile = { width: 320, height: 180, framerate: 30, bitrateKbps: 300, source: { kind: "gst", fragment: "filesrc location=a.ivf ! ivfparse" } as const };
    const { args, outputs } = buildPipeline({ source, settings: copy, tile }, opts, { full: "h264", tile: "vp9" });
    expect(args.slice(2).join(" ")).toBe(
      "v4l2src ! video/x-h264 ! h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au ! gdppay ! fdsink fd=1 sync=false " +
        "filesrc location=a.ivf ! ivfparse ! vp9parse ! video/x-vp9,alignment=super-frame ! gdppay ! fdsink fd=3 sync=false",
    );
    expect(outputs.map((o) => [o.encoding, o.fd, o.codec])).toEqual([
      ["full", 1, "h264"],
      ["tile", 3, "vp9"],
    ]);
    expect(() => buildPipeline({ source, settings: copy, tile: null }, opts)).toThrow(/probe it first/);
  });
});

describe("codec probe", () => {
  test("its argv: the source's encoded part into a named fakesink, verbose", () => {
    expect(probeArgs({ kind: "gst", fragment: "videotestsrc ! vp8enc" }, 4000)).toEqual(["-v", "videotestsrc", "!", "vp8enc", "!", "fakesink", "name=ccprobe", "sync=false"]);
    expect(probeArgs(camera, 4000).slice(0, 2)).toEqual(["-v", "rtspsrc"]);
  });

  test.each([
    ["application/x-rtp, media=(string)video, payload=(int)96, clock-rate=(int)90000, encoding-name=(string)H264, packetization-mode=(string)1", "h264"],
    ["application/x-rtp, media=(string)video, encoding-name=(string)VP8", "vp8"],
    ["video/x-vp9, width=(int)320, height=(int)240", "vp9"],
    ["video/x-av1, stream-format=(string)obu-stream", "av1"],
  ])("%s → %s", (caps, codec) => {
    expect(codecOfProbeCaps(caps)).toEqual({ ok: true, codec });
  });

  test.each([
    ["application/x-rtp, media=(string)video, encoding-name=(string)H265", /sends RTP H265, which codec copy cannot forward/],
    ["video/x-raw, format=(string)I420", /sends video\/x-raw/],
  ])("%s → not forwardable", (caps, reason) => {
    const result = codecOfProbeCaps(caps);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });
});
