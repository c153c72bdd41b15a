// Every codec from the real encoder through the real server to a raw client: hello names the
// WebCodecs codec string the bitstream declares, every frame's keyframe flag agrees with the
// bitstream and with GStreamer's buffer flags, a decoder can start at a flagged keyframe, and
// GStreamer's decoder makes a picture of every frame received (from its first keyframe on: the
// replay starts with one).

import { afterAll, describe, expect, it } from "vitest";
import { BITSTREAM_READERS, CODEC_NAMES, codecOfString } from "../../shared/codec.js";
import { isKeyframe, type HelloMessage } from "../../shared/protocol.js";
import { decodedPictureCountOf } from "../helpers/codec-decode.js";
import { startServerProcess, stopAllServers } from "../helpers/server-process.js";
import { connectViewer, tryUpgrade } from "../helpers/ws-viewer.js";

const WIDTH = 320;
const HEIGHT = 240;
/** A bit over two GOPs at the 1 s keyframe interval. */
const FRAMES = 70;

describe.each(CODEC_NAMES)("codec %s", (codec) => {
  afterAll(stopAllServers);

  it("hello names the bitstream's codec, keyframe flags agree with it, and gst decodes every frame", async () => {
    const server = await startServerProcess(["--source", "test", "--size", `${WIDTH}x${HEIGHT}`, "--codec", codec, "--tile", "off"]);
    const viewer = await connectViewer(server.wsBase + "ws/cam0");
    try {
      await viewer.waitForFrames(FRAMES, 30_000);
      const hellos = viewer.texts().filter((m): m is HelloMessage => m.type === "hello");
      const frames = viewer.frames().slice(0, FRAMES);
      expect(isKeyframe(frames[0]!.header)).toBe(true);
      const infos = frames.map((f) => BITSTREAM_READERS[codec](f.data, 30));
      infos.forEach((info, i) => {
        expect(info, `frame ${i} reads as ${codec}`).not.toBeNull();
        expect(isKeyframe(frames[i]!.header), `frame ${i}'s keyframe flag`).toBe(info!.key);
      });
      // One keyframe a second at 30 fps: 70 frames from a keyframe hold three at most.
      const keys = infos.flatMap((info, i) => (info!.key ? [i] : []));
      expect(keys.length).toBeGreaterThanOrEqual(2);
      expect(keys.length).toBeLessThanOrEqual(3);
      // GStreamer's buffer flags said the same of every frame (the server warns when they disagree)
      // and every buffer read as the codec's.
      expect(server.stderr()).not.toMatch(/FRAME_WARN_(KEY_MISMATCH|BAD_FRAME|BAD_CAPS)/);
      // A keyframe is one a decoder can start at: the frames from the last one decode on their own.
      const fromLastKey = frames.slice(keys.at(-1)).map((f) => f.data);
      expect(await decodedPictureCountOf(codec, fromLastKey, WIDTH, HEIGHT)).toBe(fromLastKey.length);
      // The hello in force when the frames came says what their keyframes declare.
      const declared = infos[0]!.codec;
      expect(declared).not.toBeNull();
      expect(codecOfString(declared!)).toBe(codec);
      expect(hellos.at(-1)?.codec).toBe(declared);
      const pictures = await decodedPictureCountOf(codec, frames.map((f) => f.data), WIDTH, HEIGHT);
      expect(pictures).toBe(frames.length);
      // WebM is muxed as VP8 only: another codec's stream is not offered there.
      const webm = await tryUpgrade(server.wsBase + "webm/cam0");
      if (codec === "vp8") expect(webm).toEqual({ opened: true });
      else expect(webm).toMatchObject({ opened: false, status: 404, code: "CC_ERR_NOT_FOUND" });
    } finally {
      viewer.close();
      await server.stop();
    }
  });
});
