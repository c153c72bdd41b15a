// GstProcess's events: a listener that throws is reported through the server's logger (JSON lines,
// with the stack), never with console.error, and the other listeners still run. The "pipeline" is
// /bin/true: it exits at once, so `exit` is emitted without GStreamer.

import { describe, expect, test, vi } from "vitest";
import { createLogger } from "../../server/log.js";
import { GstProcess } from "../../server/source/gst-process.js";

describe("GstProcess events", () => {
  test("a listener that throws is logged with its stack through the logger, not console.error", async () => {
    const lines: string[] = [];
    const log = createLogger("debug", { pretty: false, destination: { write: (line: string) => void lines.push(line) } });
    const consoleError = vi.spyOn(console, "error").mockImplementation(() => undefined);
    try {
      const gst = new GstProcess([], { log, program: "true" });
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
