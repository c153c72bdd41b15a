// The config file and --stream flags: every kind of mistake gets its own message naming the key.

import { describe, expect, test } from "vitest";
import { ConfigError, parseCli } from "../../server/config.js";

function withFile(json: unknown): { defaultWebRoot: string; readFile: (p: string) => string; deviceExists: () => boolean } {
  return {
    defaultWebRoot: "/srv/web",
    deviceExists: () => false,
    readFile: () => (typeof json === "string" ? json : JSON.stringify(json)),
  };
}

function errorOf(argv: string[], json: unknown): ConfigError {
  try {
    parseCli(argv, withFile(json));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe("CC_ERR_CONFIG");
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("config file", () => {
  test("streams with their own settings, defaults, and flags that win over the file", () => {
    const { config } = parseCli(
      ["--config", "c.json", "--bitrate", "900", "--stream", "extra=test:ball"],
      withFile({
        port: 9000,
        maxLagMs: 300,
        defaults: { size: "320x240", fps: 15 },
        streams: [
          { name: "door", source: "v4l2:/dev/video2", size: "1280x720", keyframeInterval: 2 },
          { name: "yard", source: "gst:videotestsrc is-live=true pattern=ball" },
        ],
      }),
    );
    expect(config.port).toBe(9000);
    expect(config.maxLagMs).toBe(300);
    expect(config.streams).toEqual([
      {
        name: "door",
        source: { kind: "v4l2", device: "/dev/video2" },
        settings: { width: 1280, height: 720, framerate: 15, bitrateKbps: 900, keyframeIntervalS: 2, codec: "vp8" },
        tile: null,
        record: null,
      },
      {
        name: "yard",
        source: { kind: "gst", fragment: "videotestsrc is-live=true pattern=ball" },
        settings: { width: 320, height: 240, framerate: 15, bitrateKbps: 900, keyframeIntervalS: 1, codec: "vp8" },
        tile: null,
        record: null,
      },
      {
        name: "extra",
        source: { kind: "test", pattern: "ball" },
        settings: { width: 320, height: 240, framerate: 15, bitrateKbps: 900, keyframeIntervalS: 1, codec: "vp8" },
        tile: null,
        record: null,
      },
    ]);
  });

  test.each([
    ["not JSON", "{ port: 80 ", "--config c.json", /not valid JSON/],
    ["an unknown top-level key", { prot: 80 }, "c.json: (top level)", /unknown key "prot"/],
    ["an unknown key in a stream", { streams: [{ name: "a", source: "test", sise: "1x1" }] }, "c.json: streams[0]", /unknown key "sise"/],
    ["a malformed size", { streams: [{ name: "a", source: "test", size: "big" }] }, "c.json: streams[0].size", /WIDTHxHEIGHT/],
    ["an odd size", { streams: [{ name: "a", source: "test", size: "641x480" }] }, "c.json: streams[0].size", /even numbers/],
    ["a bad default size", { defaults: { size: "10x10" } }, "c.json: defaults.size", /even numbers from 16/],
    ["a duplicate name", { streams: [{ name: "a", source: "test" }, { name: "a", source: "test:ball" }] }, "c.json: streams[1].name", /duplicate stream name "a"/],
    ["a bad source", { streams: [{ name: "a", source: "http://x" }] }, "c.json: streams[0].source", /expected test, test:PATTERN/],
    ["auto in a config", { streams: [{ name: "a", source: "auto" }] }, "c.json: streams[0].source", /expected test/],
    ["a bad device", { streams: [{ name: "a", source: "v4l2:/etc/passwd;x" }] }, "c.json: streams[0].source", /not a device path/],
    ["an empty gst fragment", { streams: [{ name: "a", source: "gst: " }] }, "c.json: streams[0].source", /needs a pipeline fragment/],
    ["a gst fragment ending in !", { streams: [{ name: "a", source: "gst:videotestsrc !" }] }, "c.json: streams[0].source", /must not start or end/],
    ["a wrong type", { streams: [{ name: "a", source: "test", fps: "30" }] }, "c.json: streams[0].fps", /expected int|number/i],
    ["a bad name", { streams: [{ name: "a b", source: "test" }] }, "c.json: streams[0].name", /letters, digits/],
    ["streams not a list", { streams: { a: "test" } }, "c.json: streams", /expected array/i],
    ["a port out of range", { port: 70000 }, "c.json: port", /65535/],
    ["no viewers allowed", { maxViewersPerStream: 0 }, "c.json: maxViewersPerStream", />=\s*1/],
    ["a fractional viewer cap", { maxViewers: 2.5 }, "c.json: maxViewers", /expected int/i],
    ["a negative connection rate", { maxConnectionsPerSecond: -1 }, "c.json: maxConnectionsPerSecond", />=\s*0/],
    ["a request timeout too short", { requestTimeout: 0.1 }, "c.json: requestTimeout", />=\s*0.5/],
  ])("%s", (_what, json, key, message) => {
    const err = errorOf(["--config", "c.json"], json);
    expect(err.key.startsWith(key)).toBe(true);
    expect(err.message).toMatch(message);
  });

  test("a stream's tile: its own keys, the stream's rate unless set, 300 kbit/s unless set; a substream source of its own", () => {
    const { config } = parseCli(
      ["--config", "c.json", "--fps", "25"],
      withFile({
        streams: [
          { name: "door", source: "v4l2:/dev/video2", size: "1280x720", tile: { size: "320x180", bitrate: 250 } },
          { name: "yard", source: "test", tile: {} },
          { name: "gate", source: "v4l2:/dev/video4", size: "1920x1080", tile: { source: "v4l2:/dev/video5", size: "640x360", fps: 30 } },
          { name: "side", source: "test" },
        ],
      }),
    );
    expect(Object.fromEntries(config.streams.map((s) => [s.name, s.tile]))).toEqual({
      door: { width: 320, height: 180, framerate: 25, bitrateKbps: 250, source: null },
      // No size: 320 wide with the stream's aspect.
      yard: { width: 320, height: 240, framerate: 25, bitrateKbps: 300, source: null },
      // Its own capture may have its own rate.
      gate: { width: 640, height: 360, framerate: 30, bitrateKbps: 300, source: { kind: "v4l2", device: "/dev/video5" } },
      // A file stream has a tile only when the file says so.
      side: null,
    });
  });

  test("defaults.tile for every stream that does not set its own; tile null for none; --tile wins", () => {
    const file = {
      defaults: { size: "640x480", tile: { size: "160x120", bitrate: 200 } },
      streams: [
        { name: "a", source: "test" },
        { name: "b", source: "test", tile: null },
        { name: "c", source: "test", tile: { size: "320x240" } },
      ],
    };
    const tiles = (argv: string[]): Record<string, unknown> =>
      Object.fromEntries(parseCli(["--config", "c.json", ...argv], withFile(file)).config.streams.map((s) => [s.name, s.tile]));
    expect(tiles([])).toEqual({
      a: { width: 160, height: 120, framerate: 30, bitrateKbps: 200, source: null },
      b: null,
      c: { width: 320, height: 240, framerate: 30, bitrateKbps: 300, source: null },
    });
    expect(tiles(["--tile", "off"])).toEqual({ a: null, b: null, c: null });
    // --tile sets the size of every tile the file asks for, and keeps the rest of each.
    expect(tiles(["--tile", "240x180"])).toEqual({
      a: { width: 240, height: 180, framerate: 30, bitrateKbps: 200, source: null },
      b: { width: 240, height: 180, framerate: 30, bitrateKbps: 300, source: null },
      c: { width: 240, height: 180, framerate: 30, bitrateKbps: 300, source: null },
    });
  });

  test.each([
    ["an unknown key in a tile", { streams: [{ name: "a", source: "test", tile: { sise: "320x240" } }] }, "c.json: streams[0].tile", /unknown key "sise"/],
    ["a tile that is not an object", { streams: [{ name: "a", source: "test", tile: "320x240" }] }, "c.json: streams[0].tile", /expected object/],
    ["a malformed tile size", { streams: [{ name: "a", source: "test", tile: { size: "small" } }] }, "c.json: streams[0].tile.size", /WIDTHxHEIGHT/],
    ["an odd tile size", { streams: [{ name: "a", source: "test", tile: { size: "321x240" } }] }, "c.json: streams[0].tile.size", /even numbers/],
    [
      "a tile larger than its stream",
      { streams: [{ name: "a", source: "test", size: "320x240", tile: { size: "640x480" } }] },
      "c.json: streams[0].tile.size",
      /cannot be larger than the stream \(320x240\)/,
    ],
    ["a tile faster than its stream", { streams: [{ name: "a", source: "test", fps: 15, tile: { fps: 30 } }] }, "c.json: streams[0].tile.fps", /cannot be above the stream's \(15\)/],
    ["a tile bitrate too low", { streams: [{ name: "a", source: "test", tile: { bitrate: 10 } }] }, "c.json: streams[0].tile.bitrate", />=\s*50/],
    ["a bad tile source", { streams: [{ name: "a", source: "test", tile: { source: "http://cam/sub" } }] }, "c.json: streams[0].tile.source", /expected test, test:PATTERN/],
    ["a source in defaults.tile", { defaults: { tile: { source: "test" } } }, "c.json: defaults.tile", /unknown key "source"/],
    [
      "a default tile larger than a stream",
      { defaults: { tile: { size: "640x480" } }, streams: [{ name: "a", source: "test", size: "320x240" }] },
      "c.json: defaults.tile.size",
      /the tile of stream "a" \(640x480\) is scaled from its picture, so it cannot be larger than the stream \(320x240\)/,
    ],
  ])("%s → a ConfigError naming the key", (_what, json, key, message) => {
    const err = errorOf(["--config", "c.json"], json);
    expect(err.key).toBe(key);
    expect(err.message).toMatch(message);
  });

  test("limits from the file, flags winning", () => {
    const file = { maxViewersPerStream: 4, maxViewers: 8, maxConnectionsPerSecond: 20, requestTimeout: 3 };
    expect(parseCli(["--config", "c.json"], withFile(file)).config.limits).toEqual({
      maxViewersPerStream: 4,
      maxViewers: 8,
      maxConnectionsPerSecond: 20,
      requestTimeoutMs: 3000,
    });
    expect(parseCli(["--config", "c.json", "--max-viewers", "9"], withFile(file)).config.limits.maxViewers).toBe(9);
  });

  test("the unreadable case really comes from the reader", () => {
    const err = (() => {
      try {
        parseCli(["--config", "nope.json"], {
          defaultWebRoot: "/w",
          readFile: () => {
            throw new Error("ENOENT: no such file or directory");
          },
        });
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error("no error");
    })();
    expect(err.key).toBe("--config nope.json");
    expect(err.message).toMatch(/cannot read it: ENOENT/);
  });
});

describe("--stream flags", () => {
  test("repeatable NAME=SOURCE with the global settings", () => {
    const { config } = parseCli(["--stream", "a=test", "--stream", "b=test:snow", "--size", "320x240"], withFile({}));
    expect(config.streams.map((s) => [s.name, s.source.kind, s.settings.width])).toEqual([
      ["a", "test", 320],
      ["b", "test", 320],
    ]);
  });

  test.each([
    [["--stream", "test"], "--stream", /NAME=SOURCE/],
    [["--stream", "=test"], "--stream", /NAME=SOURCE/],
    [["--stream", "a=bogus"], "--stream", /expected test/],
    [["--stream", "a=test", "--stream", "a=test:ball"], "--stream a", /duplicate stream name "a"/],
    [["--stream", "a=test", "--source", "test"], "--source", /--stream NAME=SOURCE/],
  ])("%j → %s", (argv, key, message) => {
    const err = errorOf(argv, {});
    expect(err.key).toBe(key);
    expect(err.message).toMatch(message);
  });

  test("a --stream that repeats a config file's name is a duplicate", () => {
    const err = errorOf(["--config", "c.json", "--stream", "a=test"], { streams: [{ name: "a", source: "test" }] });
    expect(err.key).toBe("--stream a");
    expect(err.message).toMatch(/first defined at c.json: streams\[0\].name/);
  });
});

describe("recording settings", () => {
  const streams = [
    { name: "door", source: "test" },
    { name: "yard", source: "test", record: { segmentSeconds: 10, retain: { hours: null, maxBytes: 50_000_000 } } },
    { name: "hall", source: "test", record: false },
  ];

  test("the top-level record applies to every stream, each in its own directory; a stream's own wins; false leaves it out", () => {
    const { config } = parseCli(["--config", "c.json"], withFile({ streams, record: { dir: "/rec", retain: { hours: 48 } } }));
    const record = Object.fromEntries(config.streams.map((s) => [s.name, s.record]));
    expect(record).toEqual({
      door: { dir: "/rec/door", segmentSeconds: 60, retain: { hours: 48, maxBytes: null } },
      yard: { dir: "/rec/yard", segmentSeconds: 10, retain: { hours: null, maxBytes: 50_000_000 } },
      hall: null,
    });
  });

  test("flags win over the file; --record alone records the default stream with the defaults", () => {
    const { config } = parseCli(
      ["--config", "c.json", "--record", "/flag", "--record-segment", "5", "--record-retain-hours", "2", "--record-max-bytes", "1.5G"],
      withFile({ streams, record: { dir: "/rec" } }),
    );
    expect(config.streams[1]!.record).toEqual({ dir: "/flag/yard", segmentSeconds: 5, retain: { hours: 2, maxBytes: 1.5 * 2 ** 30 } });
    expect(parseCli(["--record", "rec"], withFile({})).config.streams[0]!.record).toEqual({
      dir: "rec/cam0",
      segmentSeconds: 60,
      retain: { hours: 24, maxBytes: null },
    });
    expect(parseCli([], withFile({})).config.streams[0]!.record).toBeNull();
  });

  test.each([
    [{ streams, record: { dir: "" } }, "c.json: record.dir", /must not be empty/],
    [{ streams, record: { dir: "/r", segmentSeconds: 1 } }, "c.json: record.segmentSeconds", /2/],
    [{ streams, record: { dir: "/r", retain: { maxBytes: 1000 } } }, "c.json: record.retain.maxBytes", /1 MiB/],
    [{ streams, record: { dir: "/r", retain: { days: 3 } } }, "c.json: record.retain", /days/],
    [{ streams: [{ name: "a", source: "test", record: { segmentSeconds: 10 } }] }, "c.json: streams[0].record", /names no directory/],
  ])("a bad record setting is refused with its key: %j", (json, key, message) => {
    const err = errorOf(["--config", "c.json"], json);
    expect(err.key.startsWith(key)).toBe(true);
    expect(err.message).toMatch(message);
  });

  test.each([
    [["--record-max-bytes", "10k", "--record", "/r"], "--record-max-bytes", /at least 1M/],
    [["--record-segment", "0.5", "--record", "/r"], "--record-segment", /from 2 to 3600/],
    [["--record-retain-hours", "3"], "--record-retain-hours", /give --record DIR/],
    [["--edge", "--nats", "nats://127.0.0.1:4222", "--record", "/r"], "--record", /record on the origin/],
  ])("a bad record flag is refused: %j", (argv, key, message) => {
    const err = errorOf(argv, {});
    expect(err.key).toBe(key);
    expect(err.message).toMatch(message);
  });
});
