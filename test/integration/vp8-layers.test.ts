// The stream's two temporal layers, from the real encoder through the real server: every other
// frame is one no later frame depends on (shared/vp8.ts reads that from the bitstream), and a
// decoder that skips those frames makes the very same pictures of the others — what a joining
// player relies on when it leaves them out of the replayed GOP.

import { afterAll, describe, expect, it } from "vitest";
import { isKeyframe } from "../../shared/protocol.js";
import { isDisposableVp8Frame, parseVp8Frame } from "../../shared/vp8.js";
import { startServerProcess, stopAllServers } from "../helpers/server-process.js";
import { decodedPictures } from "../helpers/vp8-decode.js";
import { connectViewer } from "../helpers/ws-viewer.js";

const WIDTH = 320;
const HEIGHT = 240;

describe("VP8 temporal layers", () => {
  afterAll(stopAllServers);

  it("every other frame updates no reference, and skipping those leaves every other picture as it was", async () => {
    const server = await startServerProcess(["--source", "test", "--size", `${WIDTH}x${HEIGHT}`, "--keyframe-interval", "1", "--tile", "off"]);
    const viewer = await connectViewer(server.wsBase + "ws/cam0");
    try {
      await viewer.waitForFrames(75, 20_000);
      const all = viewer.frames();
      // From a keyframe on (the replay starts with one), over two GOPs.
      const start = all.findIndex((f) => isKeyframe(f.header));
      const frames = all.slice(start, start + 70);
      expect(frames).toHaveLength(70);
      expect(parseVp8Frame(frames[0]!.data)?.key).toBe(true);
      const disposable = frames.map((f) => isDisposableVp8Frame(f.data));
      expect(disposable[0]).toBe(false); // a keyframe never is
      // The layer pattern runs on through keyframes, so count rather than insist on odd positions.
      const count = disposable.filter(Boolean).length;
      expect(count).toBeGreaterThanOrEqual(30);
      expect(count).toBeLessThanOrEqual(36);
      // Never two in a row: the base layer is every other frame.
      for (let i = 1; i < disposable.length; i++) expect(disposable[i] && disposable[i - 1], `frames ${i - 1} and ${i}`).toBe(false);

      const everything = await decodedPictures(frames.map((f) => f.data), WIDTH, HEIGHT);
      const kept = frames.flatMap((f, i) => (disposable[i] ? [] : [i]));
      const baseOnly = await decodedPictures(kept.map((i) => frames[i]!.data), WIDTH, HEIGHT);
      expect(everything).toHaveLength(frames.length);
      expect(baseOnly).toHaveLength(kept.length);
      kept.forEach((frameIndex, k) => {
        expect(Buffer.compare(Buffer.from(baseOnly[k]!), Buffer.from(everything[frameIndex]!)), `picture of frame ${frameIndex}`).toBe(0);
      });
    } finally {
      viewer.close();
      await server.stop();
    }
  });
});
