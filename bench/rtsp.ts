// An RTSP H.264 camera (a real gst-rtsp-server, test/helpers/rtsp_server.py) served two ways: `codec:
// copy` (depayload and parse only) against transcoding to VP8 (decodebin + vp8enc, the default).
// Per way: the gst process's CPU, the server's, and the bytes per second one raw viewer receives;
// the camera's own CPU (its x264 encoder) is shown apart, as it is not canvascast's.

import WebSocket from "ws";
import { cpuSeconds } from "./proc.js";
import { h264CameraPipeline, startRtspServer, stopAllRtspServers } from "../test/helpers/rtsp-server.js";
import { childPids, startServerProcess } from "../test/helpers/server-process.js";

export type RtspWay = "copy" | "vp8";

export interface RtspCameraCost {
  readonly way: RtspWay;
  readonly width: number;
  readonly height: number;
  readonly seconds: number;
  /** % of one core over the window. */
  readonly cpu: { readonly gst: number; readonly server: number; readonly camera: number };
  /** What the viewer received: frames and payload bytes per second. */
  readonly fps: number;
  readonly bytesPerSecond: number;
}

/** One way for `seconds`, after the stream is live and 2 s of settling. */
export async function measureRtspCamera(way: RtspWay, width: number, height: number, seconds: number, bitrateKbps = 2500): Promise<RtspCameraCost> {
  // The moving SMPTE pattern at the bitrate the VP8 stream is given: both ways carry about as much.
  const camera = await startRtspServer(h264CameraPipeline(width, height, { pattern: "smpte", bitrateKbps }));
  const server = await startServerProcess([
    "--source", camera.url(),
    ...(way === "copy" ? ["--codec", "copy"] : ["--codec", "vp8", "--size", `${width}x${height}`, "--bitrate", String(bitrateKbps)]),
    "--tile", "off",
  ]);
  try {
    const ws = new WebSocket(`${server.wsBase}ws/cam0`);
    let frames = 0;
    let bytes = 0;
    let counting = false;
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (!isBinary || !counting) return;
      frames++;
      bytes += data.byteLength - data.readUInt16LE(2); // the encoded frame, after the header
    });
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    const deadline = Date.now() + 20_000;
    let gst: number | undefined;
    while ((gst = childPids(server.pid, "gst-launch-1.0")[0]) === undefined || frames === 0) {
      counting = true;
      if (Date.now() > deadline) throw new Error(`rtsp ${way}: no frames within 20 s:\n${server.output().slice(-2000)}`);
      await sleep(200);
    }
    await sleep(2000);
    const sample = (): number[] => [cpuSeconds(gst), cpuSeconds(server.pid), cpuSeconds(camera.pid)];
    const before = sample();
    const [f0, b0, t0] = [frames, bytes, performance.now()];
    await sleep(seconds * 1000);
    const after = sample();
    const elapsed = (performance.now() - t0) / 1000;
    ws.close();
    const pct = (i: number): number => Math.round((1000 * (after[i]! - before[i]!)) / elapsed) / 10;
    return {
      way,
      width,
      height,
      seconds: Math.round(elapsed * 10) / 10,
      cpu: { gst: pct(0), server: pct(1), camera: pct(2) },
      fps: Math.round(((frames - f0) / elapsed) * 10) / 10,
      bytesPerSecond: Math.round((bytes - b0) / elapsed),
    };
  } finally {
    await server.stop();
    await stopAllRtspServers();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
