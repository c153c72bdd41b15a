// GstProcess: a listener that throws is reported through the server's logger (JSON lines, with the
// stack), never with console.error, and the other listeners still run (the "pipeline" is /bin/true:
// it exits at once, so `exit` is emitted without GStreamer). A real two-encoding pipeline comes out
// on two fds, each parsed on its own.

import { describe, expect, test, vi } from "vitest";
import { createLogger } from "../../server/log.js";
import { GstProcess, stdioFor } from "../../server/source/gst-process.js";
import { buildPipeline } from "../../server/source/pipeline.js";
import { vp8KeyframeSize } from "../helpers/frame-checks.js";
import { waitFor } from "../helpers/until.js";

const quietLog = createLogger("error", { pretty: false, destination: { write: () => undefined } });

describe("GstProcess events", () => {
  test("a listener that throws is logged with its stack through the logger, not console.error", async () => {
    const lines: string[] = [];
    const log = createLogger("debug", { pretty: false, destination: { write: (line: string) => void lines.push(line) } });
    const consoleError = vi.spyOn(console, "error").mockImplementation(() => undefined);
    try {
      const gst = new GstProcess([], { log, program: "true", outputs: [{ name: "full", fd: 1 }] });
      const boom = new Error("listener bug");
      let otherRan = false;
      gst.events.on("exit", () => {
        throw boom;
      });
      gst.events.on("exit", () => void (otherRan = true));
      await gst.exit;
      // `exit` is emitted right after the promise resolves, in the same turn.
      await new Promise((resolve) => setImmediate(resolve));
      expect(otherRan).toBe(true);
      const errors = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.level === "error");
      expect(errors).toMatchObject([{ msg: "pipeline event listener threw", event: "exit", error: "listener bug", stack: boom.stack }]);
      expect(consoleError).not.toHaveBeenCalled();
    } finally {
      consoleError.mockRestore();
    }
  });
});

describe("GstProcess outputs", () => {
  test("stdio: a pipe on each output's fd and on stderr; fds must be distinct, 1 or from 3", () => {
    expect(stdioFor([{ name: "full", fd: 1 }])).toEqual(["ignore", "pipe", "pipe"]);
    expect(stdioFor([{ name: "full", fd: 1 }, { name: "tile", fd: 3 }])).toEqual(["ignore", "pipe", "pipe", "pipe"]);
    expect(stdioFor([{ name: "tile", fd: 4 }])).toEqual(["ignore", "ignore", "pipe", "ignore", "pipe"]);
    expect(() => stdioFor([{ name: "a", fd: 2 }])).toThrow(RangeError);
    expect(() => stdioFor([{ name: "a", fd: 3 }, { name: "b", fd: 3 }])).toThrow(RangeError);
  });

  test("a teed pipeline's two encodings arrive on fd 1 and fd 3, each with its own caps and keyframe size", async () => {
    const pipeline = buildPipeline(
      {
        source: { kind: "test", pattern: "smpte" },
        settings: { width: 160, height: 120, framerate: 30, bitrateKbps: 200, keyframeIntervalS: 1, codec: "vp8" },
        tile: { width: 80, height: 60, framerate: 30, bitrateKbps: 100, source: null },
      },
      { timeOverlay: false },
    );
    const gst = new GstProcess(pipeline.args, { log: quietLog, outputs: pipeline.outputs.map((o) => ({ name: o.encoding, fd: o.fd })) });
    try {
      const caps = new Map<string, { width: number; height: number }>();
      const keySizes = new Map<string, { width: number; height: number }[]>();
      const frames = new Map<string, number>();
      gst.events.on("caps", ({ output, caps: c }) => caps.set(output, { width: c.width, height: c.height }));
      gst.events.on("frame", ({ output, frame }) => {
        frames.set(output, (frames.get(output) ?? 0) + 1);
        const size = vp8KeyframeSize(frame.data);
        if (frame.key && size) keySizes.set(output, [...(keySizes.get(output) ?? []), size]);
      });
      await waitFor(() => (frames.get("full") ?? 0) >= 10 && (frames.get("tile") ?? 0) >= 10, 15_000, "10 frames of each encoding");
      expect(caps.get("full")).toEqual({ width: 160, height: 120 });
      expect(caps.get("tile")).toEqual({ width: 80, height: 60 });
      expect(keySizes.get("full")?.[0]).toEqual({ width: 160, height: 120 });
      expect(keySizes.get("tile")?.[0]).toEqual({ width: 80, height: 60 });
    } finally {
      const exit = await gst.close();
      expect(exit.error).toBeNull();
    }
  });
});
