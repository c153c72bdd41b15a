// The real server CLI with a real gst-launch-1.0 test-pattern pipeline, real `ws` clients.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { StreamsResponse } from "../../shared/api.js";
import { deafViewer, rawGet } from "../helpers/raw-http.js";
import { childPids, isAlive, startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";
import { waitFor } from "../helpers/until.js";
import { connectViewer, type TestViewer } from "../helpers/ws-viewer.js";

// Written out again rather than imported: the tests pin the documented values.
const KEYFRAME = 0x01;
const REPLAY = 0x02;
const CLOSE_BAD_MESSAGE = 4400;
const CLOSE_UNKNOWN_STREAM = 4404;
const CLOSE_UNSUPPORTED_DATA = 1003;
const CLOSE_MESSAGE_TOO_BIG = 1009;

async function getJson<T>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as T };
}

describe("a stream from a real pipeline", () => {
  let server: ServerProcess;
  const viewers: TestViewer[] = [];
  const viewer = async (path = "ws/cam0"): Promise<TestViewer> => {
    const v = await connectViewer(server.wsBase + path);
    viewers.push(v);
    return v;
  };

  beforeAll(async () => {
    server = await startServerProcess(["--source", "test", "--size", "320x240", "--fps", "30", "--keyframe-interval", "1"]);
  });
  afterAll(async () => {
    for (const v of viewers) v.close();
    await stopAllServers();
  });

  it("sends hello first, then a keyframe, then frames with consecutive sequence numbers and rising PTS", async () => {
    const v = await viewer();
    await v.waitForFrames(45);
    const first = v.received[0];
    expect(first?.type).toBe("text");
    expect(first?.type === "text" && first.message).toMatchObject({
      type: "hello",
      protocol: 1,
      stream: "cam0",
      codec: "vp8",
      width: 320,
      height: 240,
      framerate: 30,
    });
    const frames = v.frames();
    expect(frames[0]!.header.flags & KEYFRAME).toBe(KEYFRAME);
    // The first VP8 keyframe declares the picture size (bytes 6–9).
    const data = frames[0]!.data;
    expect([data[3], data[4], data[5]]).toEqual([0x9d, 0x01, 0x2a]);
    expect((data[6]! | (data[7]! << 8)) & 0x3fff).toBe(320);
    for (let i = 1; i < frames.length; i++) {
      expect(frames[i]!.header.seq).toBe((frames[i - 1]!.header.seq + 1) >>> 0);
      expect(frames[i]!.header.pts).toBeGreaterThan(frames[i - 1]!.header.pts);
      expect(frames[i]!.header.serverTime).toBeGreaterThanOrEqual(frames[i - 1]!.header.serverTime);
    }
    // A keyframe at least every second at 30 fps.
    const keys = frames.filter((f) => f.header.flags & KEYFRAME).map((f) => f.header.seq);
    expect(keys.length).toBeGreaterThanOrEqual(2);
  });

  it("starts a viewer that joins 3 s later with the replayed GOP, then live frames without a gap", async () => {
    const early = await viewer();
    await early.waitForFrames(1);
    await new Promise((r) => setTimeout(r, 3000));
    const late = await viewer();
    await late.waitForFrames(40);
    expect(late.texts()[0]).toMatchObject({ type: "hello" });
    const frames = late.frames();
    expect(frames[0]!.header.flags & (KEYFRAME | REPLAY)).toBe(KEYFRAME | REPLAY);
    const replayed = frames.filter((f) => f.header.flags & REPLAY);
    // Replayed frames come first and are one GOP: exactly one keyframe.
    expect(frames.slice(0, replayed.length)).toEqual(replayed);
    expect(replayed.filter((f) => f.header.flags & KEYFRAME)).toHaveLength(1);
    for (let i = 1; i < frames.length; i++) {
      expect(frames[i]!.header.seq).toBe((frames[i - 1]!.header.seq + 1) >>> 0);
    }
    // The live frames are the same frames (same sequence numbers and bytes) the early viewer got.
    const live = frames[replayed.length]!;
    const same = early.frames().find((f) => f.header.seq === live.header.seq);
    expect(same).toBeDefined();
    expect(Buffer.from(same!.data).equals(Buffer.from(live.data))).toBe(true);
    expect(same!.header.flags & REPLAY).toBe(0);
  });

  it("reports the stream in /api/streams", async () => {
    const v = await viewer();
    await v.waitForFrames(5);
    const { status, body } = await getJson<StreamsResponse>(server.url + "api/streams");
    expect(status).toBe(200);
    const cam0 = body.streams.find((s) => s.name === "cam0");
    expect(cam0).toMatchObject({ state: "live", width: 320, height: 240, framerate: 30, targetKbps: 1500, keyframeIntervalS: 1 });
    expect(cam0!.viewers).toBeGreaterThanOrEqual(1);
    expect(cam0!.framesIn).toBeGreaterThan(0);
    expect(cam0!.fps).toBeGreaterThan(0);
  });

  it("refuses an unknown stream with close code 4404 and an unknown WebSocket path with HTTP 404", async () => {
    const v = await viewer("ws/nosuch");
    const closed = await v.closed;
    expect(closed.code).toBe(CLOSE_UNKNOWN_STREAM);
    expect(closed.reason).toContain("nosuch");
    await expect(connectViewer(server.wsBase + "elsewhere")).rejects.toThrow("HTTP 404");
  });

  it("closes only the socket that sends a malformed, binary or oversized message", async () => {
    const bystander = await viewer();
    await bystander.waitForFrames(1);
    const cases: [string | Buffer, number][] = [
      ["not json", CLOSE_BAD_MESSAGE],
      ['{"type":"ack","seq":-1}', CLOSE_BAD_MESSAGE],
      ['{"type":"launch-missiles"}', CLOSE_BAD_MESSAGE],
      ["[1,2,3]", CLOSE_BAD_MESSAGE],
      [Buffer.from([1, 2, 3]), CLOSE_UNSUPPORTED_DATA],
      [JSON.stringify({ type: "ack", seq: 1, pad: "x".repeat(5000) }), CLOSE_MESSAGE_TOO_BIG],
    ];
    for (const [payload, code] of cases) {
      const bad = await viewer();
      await bad.waitForFrames(1);
      bad.ws.send(payload);
      expect((await bad.closed).code).toBe(code);
    }
    const before = bystander.frames().length;
    await bystander.waitForFrames(before + 10);
    expect(bystander.ws.readyState).toBe(WebSocket.OPEN);
    // A valid ack (of a frame this viewer was sent) keeps the socket open.
    const ok = await viewer();
    await ok.waitForFrames(1);
    ok.ws.send(JSON.stringify({ type: "ack", seq: ok.frames()[0]!.header.seq }));
    await ok.waitForFrames(ok.frames().length + 5);
    expect(ok.ws.readyState).toBe(WebSocket.OPEN);
  });

  it("serves the client with content types, 404s unknown paths and never leaves the web root", async () => {
    const index = await fetch(server.url);
    expect(index.status).toBe(200);
    expect(index.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await index.text();
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const js = await fetch(server.url + script!.slice(1));
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toMatch(/javascript/);
    expect((await fetch(server.url + "nope.html")).status).toBe(404);
    expect((await fetch(server.url + "api/nope")).status).toBe(404);
    for (const path of ["/../package.json", "/%2e%2e/package.json", "/..%2fpackage.json", "/assets/../../../package.json", "/%2e%2e%2f%2e%2e%2fetc/passwd"]) {
      const res = await rawGet(server.url, path);
      expect(res.status, path).toBe(404);
      expect(res.body, path).not.toContain('"name": "canvascast"');
    }
  });
});

describe("the server process", () => {
  afterAll(stopAllServers);

  it("stops its pipeline when it is stopped with SIGTERM", async () => {
    const server = await startServerProcess(["--source", "test", "--size", "160x120"]);
    await waitFor(() => childPids(server.pid, "gst-launch-1.0").length === 1, 10_000, "the gst child");
    const [gst] = childPids(server.pid, "gst-launch-1.0");
    const v = await connectViewer(server.wsBase + "ws/cam0");
    await v.waitForFrames(1);
    const exit = await server.stop("SIGTERM");
    expect(exit.code).toBe(0);
    expect((await v.closed).code).toBe(1001);
    expect(isAlive(gst!)).toBe(false);
  });

  it("leaves no pipeline behind when it is killed with SIGKILL", async () => {
    const server = await startServerProcess(["--source", "test", "--size", "160x120"]);
    await waitFor(() => childPids(server.pid, "gst-launch-1.0").length === 1, 10_000, "the gst child");
    const [gst] = childPids(server.pid, "gst-launch-1.0");
    const v = await connectViewer(server.wsBase + "ws/cam0");
    await v.waitForFrames(1);
    await server.stop("SIGKILL");
    // gst dies of SIGPIPE at its next write into the closed pipe (one frame later).
    await waitFor(() => !isAlive(gst!), 10_000, `gst pid ${gst} to exit`);
  });

  it("exits at once on a second signal, still leaving no pipeline behind", async () => {
    const server = await startServerProcess(["--source", "test", "--size", "160x120"]);
    await waitFor(() => childPids(server.pid, "gst-launch-1.0").length === 1, 10_000, "the gst child");
    const [gst] = childPids(server.pid, "gst-launch-1.0");
    // A viewer that reads nothing after the handshake never completes the close handshake: shutdown waits for it.
    const deaf = await deafViewer(server.url, "/ws/cam0");
    process.kill(server.pid, "SIGTERM");
    await waitFor(() => server.output().includes("shutting down"), 5000, "the first signal to be handled");
    process.kill(server.pid, "SIGTERM");
    const exit = await server.exited;
    expect(exit.code).toBe(130);
    await waitFor(() => !isAlive(gst!), 5000, `gst pid ${gst} to exit`);
    deaf.destroy();
  });

  it("rejects bad flags with a message naming the flag", async () => {
    await expect(startServerProcess(["--size", "641x480"])).rejects.toThrow(/--size: expected WIDTHxHEIGHT/);
  });
});

