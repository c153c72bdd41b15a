// Every codec from the real encoder through the real server to a raw client: hello names the
// WebCodecs codec string the bitstream declares, every frame's keyframe flag agrees with the
// bitstream and with GStreamer's buffer flags, a decoder can start at a flagged keyframe, and
// GStreamer's decoder makes a picture of every frame received (from its first keyframe on: the
// replay starts with one). Its MSE path (WebM on /webm/ for VP8, VP9, AV1; fragmented MP4 on
// /mp4/ for H.264, docs/protocol.md), received by a raw client that joins mid-GOP, demuxes and
// decodes in GStreamer with a timeline from 0; the other container's path is refused, naming it.

import { afterAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { BITSTREAM_READERS, CODEC_NAMES, codecOfString, type CodecName } from "../../shared/codec.js";
import { isKeyframe, type HelloMessage } from "../../shared/protocol.js";
import { decodedMsePicturesOf, decodedPictureCountOf } from "../helpers/codec-decode.js";
import { waitFor } from "../helpers/until.js";
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
      // MSE: the codec's container plays, joined mid-GOP; the other path says where to go.
      const container = codec === "h264" ? "mp4" : "webm";
      const other = container === "mp4" ? "webm" : "mp4";
      await waitFor(() => !isKeyframe(viewer.frames().at(-1)!.header), 5_000, "the stream between keyframes (a mid-GOP join)");
      await expectMsePlays(codec, container, server.wsBase);
      expect(await tryUpgrade(server.wsBase + `${other}/cam0`)).toEqual({ opened: true });
      const refused = await closeOf(server.wsBase + `${other}/cam0`);
      expect(refused.code).toBe(4415);
      expect(refused.reason).toContain(`/${container}/cam0`);
    } finally {
      viewer.close();
      await server.stop();
    }
  });
});

/** A raw MSE viewer (docs/protocol.md, MSE): what it receives, decoded by GStreamer. */
async function expectMsePlays(codec: CodecName, container: "webm" | "mp4", wsBase: string): Promise<void> {
  const ws = new WebSocket(`${wsBase}${container}/cam0?meta=1`);
  const binary: Buffer[] = [];
  const meta: { type: string; mediaTimeMs?: number; key?: boolean; codec?: string }[] = [];
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    if (isBinary) binary.push(data);
    else meta.push(JSON.parse(data.toString("utf8")) as (typeof meta)[number]);
  });
  try {
    // The replayed GOP, then more than a GOP live: at least one more keyframe on this socket.
    await waitFor(() => meta.filter((m) => m.type === "frame").length >= 45, 30_000, `45 frames on /${container}/`);
  } finally {
    ws.close();
  }
  const frames = meta.filter((m) => m.type === "frame");
  expect(meta[0]).toMatchObject({ type: "hello" });
  expect(codecOfString(meta[0]!.codec!)).toBe(codec);
  expect(frames[0]).toMatchObject({ key: true, mediaTimeMs: 0 });
  expect(frames.slice(1).some((f) => f.key === true)).toBe(true);
  // One binary message per frame after the init segment.
  expect(binary.length).toBe(1 + frames.length);
  const pictures = await decodedMsePicturesOf(codec, container, Buffer.concat(binary));
  expect(pictures.length).toBe(frames.length);
  // The demuxer's timeline is the viewer's: from 0, a frame apart, as the frame messages said.
  expect(pictures[0]).toBe(0);
  expect(pictures).toEqual(frames.map((f) => f.mediaTimeMs));
}

function closeOf(url: string): Promise<{ code: number; reason: string }> {
  const ws = new WebSocket(url);
  ws.on("error", () => {});
  return new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
}
