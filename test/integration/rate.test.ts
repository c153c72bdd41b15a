// The rate holds on content no quantizer compresses (test:snow): what a raw viewer receives per
// second of the frames' own timestamps stays within ±25 % of the target. Timestamps, not the wall
// clock, so a loaded machine (an encoder falling behind) changes nothing. AV1 is not here: its
// encoder cannot drop frames in this GStreamer (server/codecs/av1.ts), and it sends ~1.8× on noise.
// The frames the encoders drop leave no hole on the MSE paths: there each step is at most a frame
// and a half (a longer one is a hole in a <video>'s buffered ranges).

import { afterAll, describe, expect, it } from "vitest";
import type { CodecName } from "../../shared/codec.js";
import { CONTAINER_OF } from "../../shared/mse.js";
import { startServerProcess, stopAllServers } from "../helpers/server-process.js";
import { until } from "../helpers/until.js";
import { connectViewer, startAcking } from "../helpers/ws-viewer.js";

// A quarter of the bench's 640×480 at 1.5 Mbit/s: the same bits per pixel at a quarter of the CPU.
const TARGET_KBPS = 400;
/** Stream time measured, after the first second (the first keyframe and the rate model's start). */
const WINDOW_S = 6;
const RATE_HELD: readonly CodecName[] = ["vp8", "vp9", "h264"];

describe("the rate on noise", () => {
  afterAll(stopAllServers);

  it.each(RATE_HELD)("%s stays within ±25 % of its target on test:snow", async (codec) => {
    const server = await startServerProcess(["--source", "test:snow", "--codec", codec, "--size", "320x240", "--fps", "30", "--bitrate", String(TARGET_KBPS), "--tile", "off"]);
    const viewer = await connectViewer(server.wsBase + "ws/cam0");
    const stopAcking = startAcking(viewer);
    const mse = await connectViewer(`${server.wsBase}${CONTAINER_OF[codec]}/cam0?meta=1`);
    try {
      const spanS = (): number => {
        const frames = viewer.frames();
        return frames.length < 2 ? 0 : (frames.at(-1)!.header.pts - frames[0]!.header.pts) / 1e6;
      };
      await until(`${1 + WINDOW_S} s of ${codec} stream time`, 60_000, () => Promise.resolve(spanS() >= 1 + WINDOW_S + 0.1 ? true : undefined));
      const frames = viewer.frames();
      const start = frames[0]!.header.pts + 1e6;
      const window = frames.filter((f) => f.header.pts >= start && f.header.pts < start + WINDOW_S * 1e6);
      // Every frame of the window was sent: the rate is the encoder's, not flow control's.
      window.forEach((f, i) => i > 0 && expect(f.header.seq).toBe(window[i - 1]!.header.seq + 1));
      const kbps = (window.reduce((n, f) => n + f.data.byteLength, 0) * 8) / WINDOW_S / 1000;
      console.log(`${codec} on test:snow: ${kbps.toFixed(0)} kbit/s (target ${TARGET_KBPS}), ${(window.length / WINDOW_S).toFixed(1)} frames/s`);
      expect(kbps).toBeGreaterThan(TARGET_KBPS * 0.75);
      expect(kbps).toBeLessThan(TARGET_KBPS * 1.25);
      // The MSE viewer's timeline (what its <video> shows as currentTime) steps by 1.5 frames at most,
      // also where the stream's timestamps jump over dropped frames.
      const frameMs = 1000 / 30;
      const ptsSteps = steps(frames.map((f) => f.header.pts / 1000));
      const mediaSteps = steps(mse.texts().flatMap((m) => (m.type === "unknown" && (m.raw as { type?: unknown }).type === "frame" ? [(m.raw as { mediaTimeMs: number }).mediaTimeMs] : [])));
      expect(mediaSteps.length).toBeGreaterThan(10);
      expect(Math.max(...mediaSteps)).toBeLessThanOrEqual(Math.ceil(1.5 * frameMs));
      expect(Math.min(...mediaSteps)).toBeGreaterThan(0);
      // vp8 drops most frames of noise at this rate: the test sees the jumps it closes.
      if (codec === "vp8") expect(Math.max(...ptsSteps)).toBeGreaterThan(3 * frameMs);
    } finally {
      stopAcking();
      mse.close();
      viewer.close();
      await server.stop();
    }
  }, 90_000);
});

const steps = (times: readonly number[]): number[] => times.slice(1).map((t, i) => t - times[i]!);
