// Pipelines that die, stall or never start, against the real server: the supervisor restarts
// them, viewers are told, and the same connection carries on with a keyframe.

import { afterAll, afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { StreamInfo, StreamsResponse } from "../../shared/api.js";
import type { StateMessage } from "../../shared/protocol.js";
import { childPids, isAlive, startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";
import { waitFor } from "../helpers/until.js";
import { connectViewer, startAcking, type TestViewer } from "../helpers/ws-viewer.js";

const KEYFRAME = 0x01;
const DISCONTINUITY = 0x04;

async function cam0(server: ServerProcess): Promise<StreamInfo> {
  const body = (await (await fetch(server.url + "api/streams")).json()) as StreamsResponse;
  return body.streams[0]!;
}

function states(v: TestViewer): StateMessage[] {
  return v.texts().filter((m): m is StateMessage => m.type === "state");
}

describe("pipeline supervision", () => {
  const stops: (() => void)[] = [];
  afterEach(() => stops.splice(0).forEach((stop) => stop()));
  afterAll(stopAllServers);

  it("restarts a pipeline killed mid-stream; a connected viewer is told and resumes at a keyframe on the same connection", async () => {
    const server = await startServerProcess(["--source", "test", "--size", "320x240", "--keyframe-interval", "1"]);
    const v = await connectViewer(server.wsBase + "ws/cam0");
    stops.push(startAcking(v));
    await v.waitForFrames(20);
    const [gst] = childPids(server.pid, "gst-launch-1.0");
    expect(gst).toBeDefined();
    const before = v.frames().length;
    process.kill(gst!, "SIGKILL");

    await waitFor(() => states(v).some((s) => s.state === "restarting"), 10_000, "the restarting state");
    const restarting = states(v).find((s) => s.state === "restarting")!;
    expect(restarting.retryInMs).toBeGreaterThan(0);
    await waitFor(() => states(v).filter((s) => s.state === "live").length >= 2, 15_000, "live again");
    await v.waitForFrames(before + 20, 15_000);

    // The first frame after the restart is a keyframe flagged as a discontinuity.
    const frames = v.frames();
    const liveAgainAt = v.received.findIndex((r) => r.type === "text" && r.message.type === "state" && r.message.state === "restarting");
    const firstAfter = v.received.slice(liveAgainAt).find((r) => r.type === "frame");
    expect(firstAfter?.type === "frame" && firstAfter.header.flags & (KEYFRAME | DISCONTINUITY)).toBe(KEYFRAME | DISCONTINUITY);
    // Sequence numbers continue across the restart: one stream, one numbering.
    for (let i = 1; i < frames.length; i++) expect(frames[i]!.header.seq).toBe((frames[i - 1]!.header.seq + 1) >>> 0);
    // So does the stream's time: the new pipeline counts from 0, the viewer sees it go on from the
    // last frame of the old one, one frame (33 ms at 30 fps) later.
    for (let i = 1; i < frames.length; i++) expect(frames[i]!.header.pts, `PTS of frame ${i}`).toBeGreaterThan(frames[i - 1]!.header.pts);
    const restartIndex = frames.findIndex((f) => f === firstAfter);
    expect(restartIndex).toBeGreaterThan(0);
    const step = frames[restartIndex]!.header.pts - frames[restartIndex - 1]!.header.pts;
    expect(step).toBeGreaterThan(30_000);
    expect(step).toBeLessThan(36_000);
    expect(v.ws.readyState).toBe(WebSocket.OPEN);

    const info = await cam0(server);
    expect(info.state).toBe("live");
    expect(info.restarts).toBe(1);
    expect(info.pipelinePid).toBeDefined();
    expect(info.pipelinePid).not.toBe(gst);
    expect(isAlive(gst!)).toBe(false);
    v.close();
  }, 45_000);

  it("kills and restarts a pipeline that stops producing frames (stalled camera)", async () => {
    const server = await startServerProcess(["--source", "test", "--size", "160x120", "--stall-timeout", "1"]);
    const v = await connectViewer(server.wsBase + "ws/cam0");
    stops.push(startAcking(v));
    await v.waitForFrames(10);
    const [gst] = childPids(server.pid, "gst-launch-1.0");
    // A frozen process: alive, silent.
    process.kill(gst!, "SIGSTOP");
    await waitFor(() => states(v).some((s) => s.state === "restarting"), 10_000, "the restarting state");
    expect(states(v).find((s) => s.state === "restarting")?.reason).toMatch(/stalled/);
    await waitFor(() => !isAlive(gst!), 5000, "the stalled process to be killed");
    const before = v.frames().length;
    await v.waitForFrames(before + 10, 15_000);
    expect((await cam0(server)).state).toBe("live");
    v.close();
  }, 45_000);

  it("keeps retrying a source that cannot start, with the reason, while serving everything else", async () => {
    const server = await startServerProcess(["--source", "v4l2:/dev/video9"]);
    const v = await connectViewer(server.wsBase + "ws/cam0");
    await waitFor(() => states(v).some((s) => s.state === "offline"), 10_000, "the offline state");
    const offline = states(v).find((s) => s.state === "offline")!;
    expect(offline.reason).toContain("/dev/video9");
    expect(offline.retryInMs).toBeGreaterThan(0);
    // Backoff: it tries again, and waits longer each time.
    await waitFor(() => states(v).filter((s) => s.state === "offline").length >= 3, 15_000, "three attempts");
    const delays = states(v)
      .filter((s) => s.state === "offline")
      .map((s) => s.retryInMs!);
    expect(delays[1]!).toBeGreaterThan(delays[0]!);
    expect(delays[2]!).toBeGreaterThan(delays[1]!);
    const info = await cam0(server);
    expect(info).toMatchObject({ state: "offline" });
    expect(info.reason).toContain("/dev/video9");
    expect(info.restarts).toBeGreaterThanOrEqual(2);
    // The server itself is fine.
    expect((await fetch(server.url)).status).toBe(200);
    const late = await connectViewer(server.wsBase + "ws/cam0");
    await waitFor(() => states(late).some((s) => s.state === "offline"), 5000, "the late viewer's offline state");
    expect(late.frames()).toHaveLength(0);
    v.close();
    late.close();
    expect((await server.stop("SIGTERM")).code).toBe(0);
  }, 45_000);
});
