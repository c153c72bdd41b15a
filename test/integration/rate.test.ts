// The rate holds on content no quantizer compresses (test:snow): what a raw viewer receives per
// second of the frames' own timestamps stays within ±25 % of the target. Timestamps, not the wall
// clock, so a loaded machine (an encoder falling behind) changes nothing. AV1 is not here: its
// encoder cannot drop frames in this GStreamer (server/codecs/av1.ts), and it sends ~1.8× on noise.

import { afterAll, describe, expect, it } from "vitest";
import type { CodecName } from "../../shared/codec.js";
import { startServerProcess, stopAllServers } from "../helpers/server-process.js";
import { until } from "../helpers/until.js";
import { connectViewer, startAcking } from "../helpers/ws-viewer.js";

const TARGET_KBPS = 1500;
/** Stream time measured, after the first second (the first keyframe and the rate model's start). */
const WINDOW_S = 6;
const RATE_HELD: readonly CodecName[] = ["vp8", "vp9", "h264"];

describe("the rate on noise", () => {
  afterAll(stopAllServers);

  it.each(RATE_HELD)("%s stays within ±25 % of its target on test:snow", async (codec) => {
    const server = await startServerProcess(["--source", "test:snow", "--codec", codec, "--size", "640x480", "--fps", "30", "--bitrate", String(TARGET_KBPS), "--tile", "off"]);
    const viewer = await connectViewer(server.wsBase + "ws/cam0");
    const stopAcking = startAcking(viewer);
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
    } finally {
      stopAcking();
      viewer.close();
      await server.stop();
    }
  }, 90_000);
});
