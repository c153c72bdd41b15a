// The real CLI with several streams from a config file and --stream flags, and with broken configs.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { StreamsResponse } from "../../shared/api.js";
import { childPids, startServerProcess, stopAllServers } from "../helpers/server-process.js";
import { waitFor } from "../helpers/until.js";
import { connectViewer } from "../helpers/ws-viewer.js";

const dir = mkdtempSync(join(tmpdir(), "canvascast-config-"));
function configFile(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
}

afterAll(async () => {
  await stopAllServers();
  rmSync(dir, { recursive: true, force: true });
});

describe("several streams", () => {
  it("serves every stream of the config file and of --stream flags, each from its own pipeline", async () => {
    const file = configFile("three.json", {
      defaults: { size: "160x120", fps: 15 },
      streams: [
        { name: "front", source: "test:ball" },
        { name: "back", source: "gst:videotestsrc is-live=true pattern=pinwheel", size: "320x240" },
      ],
    });
    const server = await startServerProcess(["--config", file, "--stream", "side=test:snow"]);
    await waitFor(() => childPids(server.pid, "gst-launch-1.0").length === 3, 10_000, "three pipelines");
    const body = (await (await fetch(server.url + "api/streams")).json()) as StreamsResponse;
    expect(body.streams.map((s) => [s.name, s.width, s.height, s.framerate])).toEqual([
      ["front", 160, 120, 15],
      ["back", 320, 240, 15],
      ["side", 160, 120, 15],
    ]);
    for (const name of ["front", "back", "side"]) {
      const v = await connectViewer(`${server.wsBase}ws/${name}`);
      await v.waitForFrames(3);
      expect(v.texts()[0]).toMatchObject({ type: "hello", stream: name });
      v.close();
    }
    expect((await server.stop("SIGTERM")).code).toBe(0);
  });
});

describe("a broken config", () => {
  it.each([
    ["a missing file", ["--config", join(dir, "nope.json")], /--config .*nope\.json: cannot read it/],
    ["bad JSON", ["--config", configFile("bad.json", "{ streams: ")], /bad\.json: not valid JSON/],
    ["an unknown key", ["--config", configFile("key.json", { streams: [{ name: "a", source: "test", bitrat: 5 }] })], /streams\[0\]: unknown key "bitrat"/],
    ["a bad size", ["--config", configFile("size.json", { streams: [{ name: "a", source: "test", size: "641x480" }] })], /streams\[0\]\.size: expected WIDTHxHEIGHT/],
    [
      "a duplicate name",
      ["--config", configFile("dup.json", { streams: [{ name: "a", source: "test" }, { name: "a", source: "test:ball" }] })],
      /streams\[1\]\.name: duplicate stream name "a"/,
    ],
    ["a bad --stream", ["--stream", "cam=http://camera"], /--stream: expected test, test:PATTERN/],
  ])("%s: exits 2 with a message naming the key, before any pipeline starts", async (_what, argv, message) => {
    const err = await startServerProcess(argv).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err).not.toBeNull();
    expect(err!.message).toMatch(/exited \(2\)/);
    expect(err!.message).toMatch(message);
    expect(err!.message).not.toContain("pipeline started");
  });
});
