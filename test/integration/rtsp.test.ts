// RTSP cameras against a real gst-rtsp-server (test/helpers/rtsp_server.py) serving live H.264, and
// a client written from docs/protocol.md alone. One canvascast server with four streams: the camera
// copied, the same camera transcoded (the default), a gst: fragment ending in VP9 copied, and a
// camera that is not there. Last, the camera is killed and started again on the same port.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodedPictureCountOf } from "../helpers/codec-decode.js";
import { h264CameraPipeline, startRtspServer, stopAllRtspServers, type RtspServer } from "../helpers/rtsp-server.js";
import { startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";
import { connectSpecViewer, type SpecFrame } from "../helpers/spec-ws-viewer.js";
import { until } from "../helpers/until.js";

const WIDTH = 320;
const HEIGHT = 240;
const CAMERA = h264CameraPipeline(WIDTH, HEIGHT);
const PASSWORD = "s3cr3t-pw";
/** A bit over two GOPs at the camera's one keyframe a second. */
const FRAMES = 70;

/** nal_unit_type of each NAL unit after an Annex B start code (00 00 01, or 00 00 00 01). */
function nalTypes(data: Uint8Array): number[] {
  const types: number[] = [];
  for (let i = 0; i + 3 < data.byteLength; i++) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      types.push(data[i + 3]! & 0x1f);
      i += 2;
    }
  }
  return types;
}

/** avc1.PPCCLL from the first SPS (type 7): the three bytes after its NAL header. */
function codecStringOfSps(data: Uint8Array): string | null {
  for (let i = 0; i + 6 < data.byteLength; i++) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1 && (data[i + 3]! & 0x1f) === 7) {
      const hex = (b: number): string => b.toString(16).toUpperCase().padStart(2, "0");
      return `avc1.${hex(data[i + 4]!)}${hex(data[i + 5]!)}${hex(data[i + 6]!)}`;
    }
  }
  return null;
}

/** A port nothing listens on. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

interface ApiStream {
  name: string;
  state: string;
  reason?: string;
  source: string;
}

async function apiStreams(server: ServerProcess): Promise<ApiStream[]> {
  const res = await fetch(server.url + "api/streams");
  return ((await res.json()) as { streams: ApiStream[] }).streams;
}

const lastHello = (texts: Record<string, unknown>[]): Record<string, unknown> | undefined => texts.filter((m) => m.type === "hello").at(-1);

describe("RTSP cameras", () => {
  let camera: RtspServer;
  let server: ServerProcess;
  let dir: string;

  beforeAll(async () => {
    camera = await startRtspServer(CAMERA);
    dir = mkdtempSync(join(tmpdir(), "canvascast-rtsp-"));
    const config = join(dir, "cams.json");
    writeFileSync(
      config,
      JSON.stringify({
        defaults: { size: `${WIDTH}x${HEIGHT}`, bitrate: 400 },
        streams: [
          { name: "copy", source: camera.url(`viewer:${PASSWORD}`), codec: "copy" },
          { name: "vp8", source: camera.url() },
          {
            name: "frag",
            source: "gst:videotestsrc is-live=true ! video/x-raw,format=I420,width=160,height=120,framerate=30/1 ! vp9enc deadline=1 cpu-used=8 lag-in-frames=0 keyframe-max-dist=30",
            codec: "copy",
          },
          { name: "dead", source: `rtsp://127.0.0.1:${await closedPort()}/cam`, codec: "copy" },
        ],
      }),
    );
    server = await startServerProcess(["--config", config, "--log-level", "debug"]);
  });

  afterAll(async () => {
    await stopAllServers();
    await stopAllRtspServers();
    rmSync(dir, { recursive: true, force: true });
  });

  it("copy: hello names the camera's SPS, keyframe flags are the IDR access units, each with SPS and PPS, and avdec_h264 decodes every frame", async () => {
    const viewer = await connectSpecViewer(server.wsBase + "ws/copy");
    try {
      await viewer.until(() => viewer.frames().length >= FRAMES, 30_000, `${FRAMES} frames`);
      const frames = viewer.frames().slice(0, FRAMES);
      expect(frames[0]!.key).toBe(true);
      frames.forEach((f, i) => {
        const types = nalTypes(f.data);
        expect(f.key, `frame ${i} (NAL types ${types.join(",")}): keyframe flag = has an IDR slice`).toBe(types.includes(5));
        // In band before every IDR, so a decoder configured without a description starts at any keyframe.
        if (f.key) expect(types.indexOf(7), `frame ${i}: SPS, then PPS, before the IDR`).toBeLessThan(types.indexOf(8));
        if (f.key) expect(types.indexOf(8)).toBeLessThan(types.indexOf(5));
      });
      const keys = frames.flatMap((f, i) => (f.key ? [i] : []));
      expect(keys.length).toBeGreaterThanOrEqual(2);
      const hello = lastHello(viewer.texts());
      expect(hello?.codec).toBe(codecStringOfSps(frames[0]!.data));
      expect(hello?.codec).toMatch(/^avc1\.[0-9A-F]{6}$/);
      expect([hello?.width, hello?.height]).toEqual([WIDTH, HEIGHT]);
      // GStreamer's buffer flags said the same of every frame (the server warns when they disagree), and
      // every buffer and caps read as H.264.
      const warnings = server.stderr().split("\n").filter((l) => l.includes("FRAME_WARN_") && l.includes('"stream":"copy"'));
      expect(warnings).toEqual([]);
      expect(await decodedPictureCountOf("h264", frames.map((f) => f.data), WIDTH, HEIGHT)).toBe(frames.length);
      const fromLastKey = frames.slice(keys.at(-1)).map((f) => f.data);
      expect(await decodedPictureCountOf("h264", fromLastKey, WIDTH, HEIGHT)).toBe(fromLastKey.length);
      // The camera's password is in no log line and not in the API; the source shows as rtsp://***@….
      const copy = (await apiStreams(server)).find((s) => s.name === "copy")!;
      expect(copy.source).toBe(`rtsp://***@127.0.0.1:${camera.port}/cam`);
      expect(server.output()).toContain("rtspsrc"); // the debug log has the argv, redacted
      expect(server.output()).not.toContain(PASSWORD);
    } finally {
      viewer.close();
    }
  });

  it("transcoded by default: the camera as VP8, decoded by vp8dec frame for frame", async () => {
    const viewer = await connectSpecViewer(server.wsBase + "ws/vp8");
    try {
      await viewer.until(() => viewer.frames().length >= 40, 30_000, "40 frames");
      const frames = viewer.frames().slice(0, 40);
      expect(lastHello(viewer.texts())?.codec).toBe("vp8");
      // VP8 frame tag (RFC 6386 §9.1): bit 0 of the first byte is 0 on a key frame.
      for (const f of frames) expect(f.key).toBe((f.data[0]! & 1) === 0);
      expect(await decodedPictureCountOf("vp8", frames.map((f) => f.data), WIDTH, HEIGHT)).toBe(frames.length);
    } finally {
      viewer.close();
    }
  });

  it("copy of a gst: fragment that ends in VP9: the server appends the parser, vp9dec decodes every frame", async () => {
    const viewer = await connectSpecViewer(server.wsBase + "ws/frag");
    try {
      await viewer.until(() => viewer.frames().length >= 40, 30_000, "40 frames");
      const frames = viewer.frames().slice(0, 40);
      const hello = lastHello(viewer.texts());
      expect(hello?.codec).toMatch(/^vp09\.00\.\d\d\.08$/);
      expect([hello?.width, hello?.height]).toEqual([160, 120]);
      expect(frames[0]!.key).toBe(true);
      expect(await decodedPictureCountOf("vp9", frames.map((f) => f.data), 160, 120)).toBe(frames.length);
    } finally {
      viewer.close();
    }
  });

  it("a camera not there at start: offline with GStreamer's reason, retried; the server and the other streams go on", async () => {
    const dead = await until("the dead camera's stream to fail", 20_000, async () => {
      const s = (await apiStreams(server)).find((x) => x.name === "dead")!;
      return s.reason !== undefined ? s : undefined;
    });
    expect(dead.state).toBe("offline");
    expect(dead.reason).toMatch(/Could not open resource for reading and writing/);
    const viewer = await connectSpecViewer(server.wsBase + "ws/dead");
    try {
      await viewer.until(() => viewer.texts().some((m) => m.type === "state"), 5000, "a state message");
      const state = viewer.texts().find((m) => m.type === "state")!;
      expect(state.state).toBe("offline");
      expect(state.retryInMs).toBeGreaterThan(0);
    } finally {
      viewer.close();
    }
    const others = (await apiStreams(server)).filter((s) => s.name !== "dead");
    expect(others.map((s) => [s.name, s.state])).toEqual([
      ["copy", "live"],
      ["vp8", "live"],
      ["frag", "live"],
    ]);
    expect(server.child.exitCode).toBeNull();
  });

  it("the camera killed and started again on its port: restarting with gst's reason, then live again on the same socket, one timeline", async () => {
    const viewer = await connectSpecViewer(server.wsBase + "ws/copy");
    try {
      await viewer.until(() => viewer.frames().length >= 10, 20_000, "frames before the camera goes");
      const port = camera.port;
      await camera.stop();
      await viewer.until(() => viewer.texts().some((m) => m.type === "state" && m.state === "restarting"), 20_000, "state restarting");
      const restarting = viewer.texts().find((m) => m.type === "state" && m.state === "restarting")!;
      expect(restarting.reason).toMatch(/Could not read from resource/);
      const before = viewer.frames().length;
      camera = await startRtspServer(CAMERA, port);
      const liveAgain = (): boolean => viewer.texts().slice(viewer.texts().indexOf(restarting)).some((m) => m.type === "state" && m.state === "live");
      await viewer.until(() => liveAgain() && viewer.frames().length >= before + 30, 30_000, "live again with 30 new frames");
      expect(viewer.open).toBe(true);
      const frames = viewer.frames();
      const first: SpecFrame = frames[before]!;
      expect(first.key).toBe(true);
      expect(first.discontinuity).toBe(true);
      expect(first.seq).toBe(frames[before - 1]!.seq + 1);
      for (let i = 1; i < frames.length; i++) expect(frames[i]!.pts, `frame ${i}'s PTS`).toBeGreaterThan(frames[i - 1]!.pts);
      const after = frames.slice(before).map((f) => f.data);
      expect(await decodedPictureCountOf("h264", after, WIDTH, HEIGHT)).toBe(after.length);
    } finally {
      viewer.close();
    }
  });
});
