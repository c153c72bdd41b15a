// CLI parsing (config.ts) and the gst-launch argv (pipeline.ts). The argv is also run for real once,
// so the element properties it names stay ones that gst-launch-1.0 accepts.

import { spawn, type ChildProcess } from "node:child_process";
import { afterEach, describe, expect, test } from "vitest";
import { ConfigError, parseCli, parseSize, parseSource } from "../../server/config.js";
import type { VideoCaps } from "../../server/source/caps.js";
import { FrameAssembler, type EncodedFrame } from "../../server/source/frames.js";
import { GdpParser } from "../../server/source/gdp.js";
import { buildPipeline, keyframeMaxDist, splitFragment, type EncodeSettings, type SourceSpec, type TileSettings } from "../../server/source/pipeline.js";
import { millis } from "../../shared/units.js";

const noCamera = { defaultWebRoot: "/srv/web", deviceExists: (): boolean => false, env: {} };

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe("CC_ERR_CONFIG");
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("parseCli", () => {
  test("defaults", () => {
    const { help, config, sourceNote } = parseCli([], noCamera);
    expect(help).toBe(false);
    expect(config).toEqual({
      host: "127.0.0.1",
      port: 8080,
      webRoot: "/srv/web",
      logLevel: "info",
      streams: [
        {
          name: "cam0",
          source: { kind: "test", pattern: "smpte" },
          settings: { width: 640, height: 480, framerate: 30, bitrateKbps: 1500, keyframeIntervalS: 1, codec: "vp8" },
          tile: { width: 320, height: 240, framerate: 30, bitrateKbps: 300, source: null },
          record: null,
        },
      ],
      maxLagMs: 500,
      stallTimeoutMs: 5000,
      heartbeatMs: 10_000,
      limits: { maxViewersPerStream: 500, maxViewers: 1000, maxConnectionsPerSecond: 50, requestTimeoutMs: 10_000 },
      access: { tokens: [], allowOrigins: [] },
      cluster: null,
      tls: null,
      warnings: [],
    });
    expect(sourceNote).toMatch(/test pattern/);
  });

  test("--source auto picks /dev/video0 when it exists", () => {
    const asked: string[] = [];
    const deviceExists = (path: string): boolean => {
      asked.push(path);
      return path === "/dev/video0";
    };
    const { config, sourceNote } = parseCli(["--source", "auto"], { defaultWebRoot: "w", deviceExists });
    expect(config.streams[0]?.source).toEqual({ kind: "v4l2", device: "/dev/video0" });
    expect(asked).toEqual(["/dev/video0"]);
    expect(sourceNote).toContain("/dev/video0");
    // The default is auto too.
    expect(parseCli([], { defaultWebRoot: "w", deviceExists }).config.streams[0]?.source).toEqual({ kind: "v4l2", device: "/dev/video0" });
  });

  test("--source auto falls back to the test pattern without a camera", () => {
    expect(parseCli(["--source", "auto"], noCamera).config.streams[0]?.source).toEqual({ kind: "test", pattern: "smpte" });
  });

  test("every flag", () => {
    const { help, config } = parseCli(
      [
        "--port", "0", "--host", "0.0.0.0", "--source", "test:ball", "--size", "320x240", "--fps", "15",
        "--bitrate", "800", "--keyframe-interval", "2.5", "--log-level", "debug", "--web-root", "/x", "-h",
      ],
      noCamera,
    );
    expect(help).toBe(true);
    expect(config).toMatchObject({ host: "0.0.0.0", port: 0, webRoot: "/x", logLevel: "debug" });
    expect(config.streams[0]).toEqual({
      name: "cam0",
      source: { kind: "test", pattern: "ball" },
      settings: { width: 320, height: 240, framerate: 15, bitrateKbps: 800, keyframeIntervalS: 2.5, codec: "vp8" },
      // No wider than a tile: no tile encoding.
      tile: null,
      record: null,
    });
    expect(parseCli(["--source", "v4l2:/dev/video2"], noCamera).config.streams[0]?.source).toEqual({ kind: "v4l2", device: "/dev/video2" });
  });

  test.each([
    ["--size", ["--size", "641x480"]],
    ["--size", ["--size", "640x481"]],
    ["--size", ["--size", "640"]],
    ["--size", ["--size", "8x8"]],
    ["--size", ["--size", "16384x480"]],
    ["--fps", ["--fps", "0"]],
    ["--fps", ["--fps", "121"]],
    ["--fps", ["--fps", "29.97"]],
    ["--fps", ["--fps=-5"]],
    ["--bitrate", ["--bitrate", "10"]],
    ["--keyframe-interval", ["--keyframe-interval", "0"]],
    ["--port", ["--port", "65536"]],
    ["--port", ["--port", "80abc"]],
    ["--host", ["--host", "a b"]],
    ["--log-level", ["--log-level", "loud"]],
    ["--source", ["--source", "v4l2:/etc/passwd;rm"]],
    ["--source", ["--source", "v4l2:/dev/../etc/passwd"]],
    ["--source", ["--source", "v4l2:/dev/video0 ! filesink location=/tmp/x"]],
    ["--source", ["--source", "test:nope"]],
    ["--source", ["--source", "http://cam"]],
    ["--source", ["--source", "rtsp://"]],
    ["--source", ["--source", "rtsp://cam/a b"]],
  ])("ConfigError naming %s for %j", (key, argv) => {
    const err = configError(() => parseCli(argv, noCamera));
    expect(err.key).toBe(key);
    expect(err.message.startsWith(`${key}: `)).toBe(true);
  });

  test("an unknown flag, or a flag without its value → ConfigError whose key names that flag", () => {
    const err = configError(() => parseCli(["--bogus", "1"], noCamera));
    expect(err.message).toContain("--bogus");
    // Errors that node:util parseArgs finds: the key should still be the flag, as for every other error.
    const keys = Object.fromEntries(
      [["--bogus", "1"], ["-x"], ["--port"], ["--fps", "-5"]].map((argv) => [argv.join(" "), configError(() => parseCli(argv, noCamera)).key]),
    );
    expect(keys).toEqual({ "--bogus 1": "--bogus", "-x": "-x", "--port": "--port", "--fps -5": "--fps" });
  });

  test("parseSize and parseSource alone", () => {
    expect(parseSize("16x16")).toEqual({ width: 16, height: 16 });
    expect(parseSize("1920x1080")).toEqual({ width: 1920, height: 1080 });
    expect(configError(() => parseSize("1919x1080")).key).toBe("--size");
    expect(parseSource("test", () => true)).toEqual({ source: { kind: "test", pattern: "smpte" }, note: null });
  });
});

describe("parseCli --tile", () => {
  const tileOf = (argv: string[]): TileSettings | null | undefined => parseCli(argv, noCamera).config.streams[0]?.tile;

  test("the default tile is 320 wide with the stream's aspect and rate, 300 kbit/s; none for a stream no wider", () => {
    expect(tileOf([])).toEqual({ width: 320, height: 240, framerate: 30, bitrateKbps: 300, source: null });
    expect(tileOf(["--size", "1280x720", "--fps", "25"])).toEqual({ width: 320, height: 180, framerate: 25, bitrateKbps: 300, source: null });
    expect(tileOf(["--size", "320x240"])).toBeNull();
    expect(tileOf(["--size", "160x120"])).toBeNull();
    // --stream streams get it too.
    const { streams } = parseCli(["--stream", "a=test", "--stream", "b=test:ball"], noCamera).config;
    expect(streams.map((s) => s.tile?.width)).toEqual([320, 320]);
  });

  test("--tile WxH sizes it, --tile off removes it", () => {
    expect(tileOf(["--tile", "160x120"])).toEqual({ width: 160, height: 120, framerate: 30, bitrateKbps: 300, source: null });
    expect(tileOf(["--tile", "off"])).toBeNull();
    // A tile the stream's own size is allowed (a lower bitrate).
    expect(tileOf(["--size", "320x240", "--tile", "320x240"])).toMatchObject({ width: 320, height: 240 });
  });

  test.each([
    [["--tile", "big"], /WIDTHxHEIGHT \(e\.g\. 320x240\) or off/],
    [["--tile", "321x240"], /even numbers/],
    [["--tile", "none"], /or off/],
    [["--size", "320x240", "--tile", "640x480"], /cannot be larger than the stream \(320x240\)/],
  ])("%j → a ConfigError naming --tile", (argv, message) => {
    const err = configError(() => parseCli(argv, noCamera));
    expect(err.key).toBe("--tile");
    expect(err.message).toMatch(message);
  });
});

describe("parseCli flow-control and supervision flags", () => {
  test("--max-viewers-per-stream, --max-viewers, --max-connections-per-second (0: off) and --request-timeout (s)", () => {
    const argv = ["--max-viewers-per-stream", "3", "--max-viewers", "5", "--max-connections-per-second", "0", "--request-timeout", "1.5"];
    expect(parseCli(argv, noCamera).config.limits).toEqual({
      maxViewersPerStream: 3,
      maxViewers: 5,
      maxConnectionsPerSecond: 0,
      requestTimeoutMs: 1500,
    });
  });

  test("--max-lag-ms, --stall-timeout (s) and --heartbeat (s)", () => {
    const { config } = parseCli(["--max-lag-ms", "300", "--stall-timeout", "2.5", "--heartbeat", "0.5"], noCamera);
    expect(config).toMatchObject({ maxLagMs: 300, stallTimeoutMs: 2500, heartbeatMs: 500 });
  });

  test.each([
    ["--max-lag-ms", "0"],
    ["--max-lag-ms", "fast"],
    ["--stall-timeout", "-1"],
    ["--heartbeat", "0"],
    ["--max-viewers-per-stream", "0"],
    ["--max-viewers", "many"],
    ["--max-viewers", "100001"],
    ["--max-connections-per-second", "-5"],
    ["--max-connections-per-second", "2.5"],
    ["--request-timeout", "0.1"],
    ["--request-timeout", "301"],
  ])("%s %s → ConfigError naming the flag", (flag, value) => {
    expect(configError(() => parseCli([flag, value], noCamera)).key).toBe(flag);
  });
});

/** The argv of a pipeline without a tile encoding. */
const buildGstArgs = (source: SourceSpec, settings: EncodeSettings, options: { timeOverlay: boolean }): readonly string[] =>
  buildPipeline({ source, settings, tile: null }, options).args;

describe("buildPipeline", () => {
  const settings: EncodeSettings = { width: 640, height: 480, framerate: 30, bitrateKbps: 1500, keyframeIntervalS: 1, codec: "vp8" };
  const args = buildGstArgs({ kind: "test", pattern: "smpte" }, settings, { timeOverlay: false });

  test("-q and -e come first", () => {
    expect(args.slice(0, 2)).toEqual(["-q", "-e"]);
  });

  test("vp8enc gets the live settings, bitrate in bits/s, keyframe distance = fps × interval", () => {
    const at = args.indexOf("vp8enc");
    expect(at).toBeGreaterThan(0);
    const next = args.indexOf("!", at);
    expect(next).toBeGreaterThan(at);
    expect(new Set(args.slice(at + 1, next))).toEqual(
      new Set([
        "deadline=1",
        "cpu-used=8",
        "end-usage=cbr",
        "target-bitrate=1500000",
        "keyframe-max-dist=30",
        "lag-in-frames=0",
        "threads=1",
        "error-resilient=default",
        // Frames dropped to hold the rate on noise (test/integration/rate.test.ts).
        "dropframe-threshold=30",
        "buffer-size=1000",
        "buffer-initial-size=500",
        "buffer-optimal-size=600",
        // Two temporal layers: odd frames update nothing (test/integration/vp8-layers.test.ts).
        "temporal-scalability-layer-flags=<no-ref-golden+no-ref-alt+no-upd-golden+no-upd-alt,no-ref-golden+no-ref-alt+no-upd-golden+no-upd-alt+no-upd-last+no-upd-entropy>",
      ]),
    );
  });

  test("keyframe-max-dist for other rates and intervals", () => {
    const dist = (framerate: number, keyframeIntervalS: number): string | undefined =>
      buildGstArgs({ kind: "test", pattern: "ball" }, { ...settings, framerate, keyframeIntervalS }, { timeOverlay: false }).find((a: string) =>
        a.startsWith("keyframe-max-dist="),
      );
    expect(dist(25, 2)).toBe("keyframe-max-dist=50");
    expect(dist(15, 0.5)).toBe("keyframe-max-dist=8");
    expect(dist(1, 0.1)).toBe("keyframe-max-dist=1");
    expect(keyframeMaxDist({ ...settings, framerate: 30, keyframeIntervalS: 4 })).toBe(120);
  });

  test("ends with gdppay ! fdsink fd=1 sync=false", () => {
    expect(args.slice(-6)).toEqual(["!", "gdppay", "!", "fdsink", "fd=1", "sync=false"]);
  });

  test("the raw caps carry the size and rate; the test source is live", () => {
    expect(args).toContain("video/x-raw,width=640,height=480,framerate=30/1");
    expect(args).toContain("is-live=true");
    expect(args).toContain("pattern=smpte");
    expect(args).not.toContain("clockoverlay");
    expect(buildGstArgs({ kind: "test", pattern: "smpte" }, settings, { timeOverlay: true })).toContain("clockoverlay");
  });

  test("a v4l2 source names its device and timestamps buffers", () => {
    const v = buildGstArgs({ kind: "v4l2", device: "/dev/video3" }, settings, { timeOverlay: false });
    expect(v.slice(2, 5)).toEqual(["v4l2src", "device=/dev/video3", "do-timestamp=true"]);
    expect(v.slice(-6)).toEqual(["!", "gdppay", "!", "fdsink", "fd=1", "sync=false"]);
  });
});

describe("buildPipeline with a tile encoding", () => {
  const settings: EncodeSettings = { width: 640, height: 480, framerate: 30, bitrateKbps: 1500, keyframeIntervalS: 2, codec: "vp8" };
  const tile: TileSettings = { width: 320, height: 240, framerate: 30, bitrateKbps: 300, source: null };
  const source: SourceSpec = { kind: "test", pattern: "smpte" };
  /** Each vp8enc's properties, in order. */
  const encoders = (args: readonly string[]): string[][] =>
    args.flatMap((a, i) => (a === "vp8enc" ? [args.slice(i + 1, args.indexOf("!", i + 1))] : []));
  /** The arguments of the branch that starts at the n-th "t." (to the next "t." or the end). */
  const branch = (args: readonly string[], n: number): readonly string[] => {
    const starts = args.flatMap((a, i) => (a === "t." ? [i] : []));
    return args.slice(starts[n], starts[n + 1]);
  };

  test("one capture, teed: full on fd 1, the tile scaled and encoded again on fd 3", () => {
    const { args, outputs } = buildPipeline({ source, settings, tile }, { timeOverlay: false });
    expect(outputs).toEqual([
      { encoding: "full", fd: 1, codec: "vp8" },
      { encoding: "tile", fd: 3, codec: "vp8" },
    ]);
    expect(args.filter((a) => a === "videotestsrc")).toHaveLength(1);
    expect(args.slice(args.indexOf("tee"), args.indexOf("tee") + 2)).toEqual(["tee", "name=t"]);
    const [full, small] = encoders(args);
    expect(full).toContain("target-bitrate=1500000");
    expect(small).toContain("target-bitrate=300000");
    // Both GOPs are the stream's keyframe interval.
    expect(full).toContain("keyframe-max-dist=60");
    expect(small).toContain("keyframe-max-dist=60");
    // Same live settings on both.
    for (const setting of ["deadline=1", "cpu-used=8", "end-usage=cbr", "lag-in-frames=0", "threads=1", "error-resilient=default"]) {
      expect(small).toContain(setting);
    }
    const fullBranch = branch(args, 0);
    const tileBranch = branch(args, 1);
    // A queue of one buffer each; only the tile's leaks (it must never hold up the full encoding).
    expect(fullBranch.slice(0, 6)).toEqual(["t.", "!", "queue", "max-size-buffers=1", "max-size-bytes=0", "max-size-time=0"]);
    expect(fullBranch).not.toContain("leaky=downstream");
    expect(tileBranch).toContain("leaky=downstream");
    expect(fullBranch.slice(-6)).toEqual(["!", "gdppay", "!", "fdsink", "fd=1", "sync=false"]);
    expect(tileBranch.slice(-6)).toEqual(["!", "gdppay", "!", "fdsink", "fd=3", "sync=false"]);
    expect(tileBranch).toContain("videoscale");
    expect(tileBranch).toContain("video/x-raw,width=320,height=240");
    // Same rate as the stream: no videorate.
    expect(tileBranch).not.toContain("videorate");
  });

  test("a tile at a lower rate drops frames with videorate; its GOP stays the stream's length in time", () => {
    const { args } = buildPipeline({ source, settings, tile: { ...tile, framerate: 10 } }, { timeOverlay: false });
    const tileBranch = branch(args, 1);
    expect(tileBranch).toContain("videorate");
    expect(tileBranch).toContain("video/x-raw,framerate=10/1");
    expect(encoders(args)[1]).toContain("keyframe-max-dist=20");
  });

  test("a tile with a source of its own (a camera's substream): a second chain, no tee", () => {
    const { args, outputs } = buildPipeline(
      { source: { kind: "v4l2", device: "/dev/video0" }, settings, tile: { ...tile, framerate: 15, source: { kind: "v4l2", device: "/dev/video1" } } },
      { timeOverlay: false },
    );
    expect(outputs.map((o) => o.fd)).toEqual([1, 3]);
    expect(args).not.toContain("tee");
    const second = args.indexOf("device=/dev/video1");
    expect(args[second - 1]).toBe("v4l2src");
    // The chains: full from video0 to fd 1, then the tile from video1 at its own size and rate to fd 3.
    expect(args.indexOf("fd=1")).toBeLessThan(second);
    expect(args.slice(second)).toContain("video/x-raw,width=320,height=240,framerate=15/1");
    expect(args.slice(-6)).toEqual(["!", "gdppay", "!", "fdsink", "fd=3", "sync=false"]);
  });
});

describe("gst: sources", () => {
  test("the fragment goes in as tokens, quoted values kept whole, then conversion to the configured size and rate", () => {
    expect(splitFragment('filesrc location="my file.mp4" ! decodebin')).toEqual(["filesrc", 'location="my file.mp4"', "!", "decodebin"]);
    const args = buildGstArgs(
      { kind: "gst", fragment: "rtspsrc location=rtsp://cam/1 latency=0 ! decodebin" },
      { width: 320, height: 240, framerate: 15, bitrateKbps: 800, keyframeIntervalS: 1, codec: "vp8" },
      { timeOverlay: true },
    );
    expect(args.slice(2, 14)).toEqual([
      "rtspsrc", "location=rtsp://cam/1", "latency=0", "!", "decodebin",
      "!", "videoconvert", "!", "videoscale", "!", "videorate", "!",
    ]);
    expect(args).toContain("video/x-raw,width=320,height=240,framerate=15/1");
    expect(args).not.toContain("clockoverlay");
  });
});

describe("buildGstArgs, run for real", () => {
  let child: ChildProcess | null = null;

  afterEach(() => {
    if (child !== null && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    child = null;
  });

  test("gst-launch-1.0 with the test-pattern argv streams 160x120 VP8, keyframe first", async () => {
    const args = buildGstArgs(
      { kind: "test", pattern: "smpte" },
      { width: 160, height: 120, framerate: 30, bitrateKbps: 200, keyframeIntervalS: 1, codec: "vp8" },
      { timeOverlay: false },
    );
    const proc = spawn("gst-launch-1.0", args, { stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    const parser = new GdpParser();
    const assembler = new FrameAssembler();
    const caps: VideoCaps[] = [];
    const frames: EncodedFrame[] = [];
    const warnings: string[] = [];
    let stderr = "";
    proc.stderr.setEncoding("utf8");
    proc.stderr.on("data", (t: string) => (stderr += t));

    await new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | null = null;
      // Read for 1 s from the first byte (starting gst can take a while on a busy machine).
      const overall = setTimeout(() => reject(new Error(`no output from gst-launch-1.0 in 15 s; stderr: ${stderr}`)), 15_000);
      proc.stdout.on("data", (chunk: Buffer) => {
        timer ??= setTimeout(() => {
          clearTimeout(overall);
          resolve();
        }, 1_000);
        try {
          for (const packet of parser.push(chunk)) {
            for (const e of assembler.accept(packet, millis(Date.now()))) {
              if (e.type === "caps") caps.push(e.caps);
              else if (e.type === "frame") frames.push(e.frame);
              else warnings.push(e.code);
            }
          }
        } catch (err) {
          clearTimeout(overall);
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
      proc.once("error", reject);
      proc.once("exit", (code, signal) => {
        if (timer === null) {
          clearTimeout(overall);
          reject(new Error(`gst-launch-1.0 exited (${signal ?? code}) before any output; stderr: ${stderr}`));
        }
      });
    });

    expect(stderr).toBe("");
    expect(warnings).toEqual([]);
    expect(caps).toHaveLength(1);
    expect(caps[0]).toMatchObject({ mediaType: "video/x-vp8", width: 160, height: 120, framerate: 30 });
    expect(frames.length).toBeGreaterThanOrEqual(10);
    expect(frames[0]?.key).toBe(true);
    for (let i = 1; i < frames.length; i++) expect(frames[i]!.pts).toBeGreaterThan(frames[i - 1]!.pts);
  });
});
