// Slow and dead viewers against the real server and pipeline, read through Node's `ws` (the Python
// spec clients of flow-control.test.ts cover the read rates and buffers): lag control with the
// skips told, the keyframe rule after every gap, bounded memory on a stream of noise, and the heartbeat.

import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { StreamsResponse } from "../../shared/api.js";
import { gapsEndAtKeyframes } from "../helpers/frame-checks.js";
import { startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";
import { connectThrottledViewer } from "../helpers/throttled-viewer.js";
import { sleep, until, waitFor } from "../helpers/until.js";
import { connectViewer, startAcking } from "../helpers/ws-viewer.js";
import { decodedPictureCount } from "../helpers/vp8-decode.js";


async function streams(server: ServerProcess): Promise<StreamsResponse> {
  return (await (await fetch(server.url + "api/streams")).json()) as StreamsResponse;
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1]);
}

describe("a viewer on a slow link", () => {
  let server: ServerProcess;

  beforeAll(async () => {
    // No tile encoding: these viewers watch the full one, and its branch would only take CPU (encodings.test.ts covers it).
    server = await startServerProcess(["--source", "test", "--size", "640x480", "--fps", "30", "--bitrate", "1500", "--keyframe-interval", "1", "--tile", "off"]);
  });
  afterAll(stopAllServers);

  it("that acks stays under 1.5 s behind once its rate is measured, is told of the skips, and every gap ends at a keyframe; others see no gap", async () => {
    const healthy = await connectViewer(server.wsBase + "ws/cam0");
    await healthy.waitForFrames(30);
    const stopAcking = startAcking(healthy);
    // Half the stream's real bitrate (1.5 Mbit/s target: ~94 KB/s; read at ~94 KB/s / 2).
    const bytesPerSecond = 1_500_000 / 8 / 2;
    const connectedAt = Date.now();
    const slow = await connectThrottledViewer(server.wsBase + "ws/cam0", { bytesPerSecond, ackEveryMs: 100 });
    await sleep(20_000);
    slow.close();
    stopAcking();

    const frames = slow.frames;
    // It reads half the bytes; keyframes cost more than their share, and gaps end only at keyframes.
    expect(frames.length).toBeGreaterThan(60);
    // Lag as the viewer lives it: how old each frame is when it is read (replayed frames are old by design).
    const live = frames.filter((f) => (f.header.flags & 0x02) === 0);
    const lagOf = (f: (typeof live)[number]): number => f.readAt - f.header.serverTime;
    const lags = live.map(lagOf).sort((a, b) => a - b);
    const worst = live.reduce((a, b) => (lagOf(b) > lagOf(a) ? b : a));
    // Its first seconds are the one catch-up of docs/protocol.md: until two pongs have measured its
    // read rate, a viewer slower than the stream is judged by probe age alone, and reads the replayed
    // GOP at its own pace. From then on it stays within the limit (500 ms) and a keyframe's reading
    // time (~160 ms here); 1.5 s is the bound the flow-control tests hold every viewer to. It is
    // measured against the healthy viewer in this same process, which read the same frame: a test
    // process starved of CPU on a loaded machine delays both alike (a CI run saw 1.7 s absolute once).
    const healthyAt = new Map(healthy.frames().map((f) => [f.header.seq, f.at]));
    const settled = live.filter((f) => f.readAt - connectedAt >= 3000);
    const behind = settled.flatMap((f) => {
      const at = healthyAt.get(f.header.seq);
      return at === undefined ? [] : [f.readAt - at];
    });
    expect(behind.length).toBeGreaterThan(settled.length / 2);
    const maxSettled = Math.max(...settled.map(lagOf));
    const maxBehind = Math.max(...behind);
    console.log(
      `slow viewer: ${frames.length} frames read of ~600, lag p50 ${lags[Math.floor(lags.length / 2)]!.toFixed(0)} ms, ` +
        `max ${lagOf(worst).toFixed(0)} ms (${((worst.readAt - connectedAt) / 1000).toFixed(1)} s in), after the first 3 s max ${maxSettled.toFixed(0)} ms, ` +
        `${maxBehind.toFixed(0)} ms behind the healthy viewer`,
    );
    expect(maxBehind).toBeLessThan(1500);

    const { gaps } = gapsEndAtKeyframes(frames);
    expect(gaps).toBeGreaterThan(0);
    const notices = slow.texts.filter((m) => m.type === "skipped");
    expect(notices.length).toBeGreaterThanOrEqual(gaps - 1); // the last gap may still be open
    expect(notices.every((n) => n.type === "skipped" && n.reason === "lagging" && n.frames > 0)).toBe(true);
    // libvpx decodes every frame it got: none was dropped for want of a keyframe.
    expect(await decodedPictureCount(frames.map((f) => f.data), 640, 480)).toBe(frames.length);

    // The healthy viewer got every frame, in order.
    const hf = healthy.frames();
    for (let i = 1; i < hf.length; i++) expect(hf[i]!.header.seq).toBe((hf[i - 1]!.header.seq + 1) >>> 0);
    expect(healthy.texts().some((m) => m.type === "skipped")).toBe(false);
    healthy.close();

    const { streams: [cam0] } = await streams(server);
    expect(cam0!.skipped.lagging).toBeGreaterThan(0);
  }, 60_000);
});

describe("a viewer that never acks", () => {
  afterAll(stopAllServers);

  it("is held back by what its pongs prove, so server memory stays bounded on a stream of noise", async () => {
    // Noise at 8 Mbit/s: a megabyte a second, more than the kernel's socket buffers can hide for long.
    const server = await startServerProcess(["--source", "test:snow", "--size", "640x480", "--bitrate", "8000", "--keyframe-interval", "1", "--tile", "off"]);
    await until("frames from the pipeline", 10_000, async () => ((await streams(server)).streams[0]!.framesIn > 10 ? true : undefined));
    const before = rssKiB(server.pid);
    // Reads a tenth of the stream and never acks: only its pongs (and bufferedAmount) tell the server.
    const slow = await connectThrottledViewer(server.wsBase + "ws/cam0", { bytesPerSecond: 100_000, ackEveryMs: null });
    let maxBuffered = 0;
    let maxRss = before;
    for (let i = 0; i < 30; i++) {
      await sleep(500);
      const { streams: [cam0] } = await streams(server);
      const me = cam0!.clients[0];
      maxBuffered = Math.max(maxBuffered, me?.bufferedBytes ?? 0);
      maxRss = Math.max(maxRss, rssKiB(server.pid));
    }
    const { streams: [cam0] } = await streams(server);
    console.log(
      `non-acking slow viewer: max bufferedAmount ${maxBuffered} B, skipped ${JSON.stringify(cam0!.skipped)}, server RSS ${before} → max ${maxRss} KiB`,
    );
    // It was held back: frames skipped, because it would have read them too late (or its queue was full)...
    expect(cam0!.skipped.lagging + cam0!.skipped["buffer-full"]).toBeGreaterThan(0);
    // ...and the queue stayed near the 2 MiB limit (plus at most a frame or two), as did the server's memory.
    expect(maxBuffered).toBeLessThan(2 * 1024 * 1024 + 512 * 1024);
    expect(maxRss - before).toBeLessThan(48 * 1024);
    gapsEndAtKeyframes(slow.frames);
    slow.close();
  }, 60_000);
});

describe("a viewer that stops reading and answering", () => {
  afterAll(stopAllServers);

  it("is terminated by the heartbeat", async () => {
    const server = await startServerProcess(["--source", "test", "--size", "160x120", "--heartbeat", "0.5"]);
    const ws = new WebSocket(server.wsBase + "ws/cam0", { autoPong: false });
    const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
    // A socket that answers pings stays.
    const good = await connectViewer(server.wsBase + "ws/cam0");
    expect(await closed).toBe(1006); // terminated: no close frame
    await waitFor(() => good.frames().length > 0, 5000, "frames to the good viewer");
    expect(good.ws.readyState).toBe(WebSocket.OPEN);
    good.close();
  }, 30_000);
});
