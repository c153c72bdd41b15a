// Per codec, one server encoding the live test pattern: what it costs (the server's and its gst
// child's CPU), what it sends (bytes/s and frames/s a raw /ws/ viewer received), how late it is
// painted (pipe → drawn, WebCodecs on the main thread, from the latency trace) and how fast a
// bare page joins. And the rate on noise (test:snow): each encoder against its target bitrate.

import WebSocket from "ws";
import type { Page } from "puppeteer";
import { CODEC_NAMES, type CodecName } from "../shared/codec.js";
import { decodeBinaryMessage, isReplay } from "../shared/protocol.js";
import type { TestBrowser } from "../test/helpers/browser.js";
import { childPids, startServerProcess } from "../test/helpers/server-process.js";
import { BARE_PLAYER_SELECTOR, startBarePages } from "./bare-page.js";
import { measureJoin } from "./join.js";
import { measureLatency } from "./latency.js";
import { cpuSeconds } from "./proc.js";
import { pct, type Summary } from "./stats.js";

export { CODEC_NAMES };

export interface CodecSize {
  readonly width: number;
  readonly height: number;
  readonly bitrateKbps: number;
}

export const CODEC_SIZES: readonly CodecSize[] = [
  { width: 640, height: 480, bitrateKbps: 1500 },
  { width: 1280, height: 720, bitrateKbps: 3000 },
];

/** What one raw viewer received over the window, and the processes' CPU meanwhile. */
export interface StreamLoad {
  readonly seconds: number;
  readonly fps: number;
  readonly kbps: number;
  /** % of one core. */
  readonly serverCpu: number;
  readonly gstCpu: number;
  /** hello's codec string. */
  readonly codecString: string;
}

export interface CodecResult extends CodecSize, StreamLoad {
  readonly codec: CodecName;
  readonly targetKbps: number;
  readonly drawn: Summary | undefined;
  readonly joinP50: number;
  readonly joins: number[];
}

/**
 * A raw viewer of `wsUrl` (frame protocol v1, acking each frame) for `seconds` after its replayed
 * GOP, with the CPU of `serverPid` and its gst child over the same window.
 */
export async function measureStreamLoad(wsUrl: string, serverPid: number, seconds: number): Promise<StreamLoad> {
  const ws = new WebSocket(wsUrl);
  let measuring = false;
  let frames = 0;
  let bytes = 0;
  let codecString = "";
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    if (!isBinary) {
      const msg = JSON.parse(data.toString()) as { type: string; codec?: string };
      if (msg.type === "hello" && msg.codec) codecString = msg.codec;
      return;
    }
    const msg = decodeBinaryMessage(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    if (msg.kind !== "video") return;
    ws.send(JSON.stringify({ type: "ack", seq: msg.header.seq }));
    if (!measuring || isReplay(msg.header)) return;
    frames++;
    bytes += msg.data.byteLength;
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  try {
    await new Promise((r) => setTimeout(r, 1500)); // past the replayed GOP and the first second
    const [gst] = childPids(serverPid, "gst-launch-1.0");
    const at = performance.now();
    const server0 = cpuSeconds(serverPid);
    const gst0 = gst === undefined ? 0 : cpuSeconds(gst);
    measuring = true;
    await new Promise((r) => setTimeout(r, seconds * 1000));
    measuring = false;
    const wall = (performance.now() - at) / 1000;
    return {
      seconds: wall,
      fps: frames / wall,
      kbps: (bytes * 8) / wall / 1000,
      serverCpu: (100 * (cpuSeconds(serverPid) - server0)) / wall,
      gstCpu: gst === undefined ? NaN : (100 * (cpuSeconds(gst) - gst0)) / wall,
      codecString,
    };
  } finally {
    ws.close();
  }
}

export interface CodecRunOptions {
  readonly loadSeconds: number;
  readonly latencySeconds: number;
  readonly joins: number;
}

/** One codec at one size: load, latency and joins, against one server. */
export async function measureCodec(browser: TestBrowser, analyzer: Page, codec: CodecName, size: CodecSize, options: CodecRunOptions): Promise<CodecResult> {
  const server = await startServerProcess([
    "--source", "test", "--codec", codec, "--size", `${size.width}x${size.height}`, "--fps", "30", "--bitrate", String(size.bitrateKbps),
  ]);
  const bare = await startBarePages(server.url, "cam0");
  try {
    await new Promise((r) => setTimeout(r, 1500));
    const load = await measureStreamLoad(`${server.wsBase}ws/cam0`, server.pid, options.loadSeconds);
    const latency = await measureLatency(browser, { serverUrl: server.url, jsmpegUrl: "" }, ["main"], 1, options.latencySeconds);
    const joins: number[] = [];
    for (let i = 0; i < options.joins; i++) {
      const sample = await measureJoin(browser, analyzer, { kind: "bare", url: bare.url("main"), selector: BARE_PLAYER_SELECTOR }, false);
      joins.push(sample.firstPaintMs);
      await new Promise((r) => setTimeout(r, 137 + Math.random() * 400));
    }
    joins.sort((a, b) => a - b);
    return { codec, ...size, ...load, targetKbps: size.bitrateKbps, drawn: latency.paths.main?.drawn, joinP50: pct(joins, 50), joins };
  } finally {
    await bare.close();
    await server.stop();
  }
}

export interface SnowRate extends StreamLoad {
  readonly codec: CodecName;
  readonly targetKbps: number;
  /** kbps ÷ target. */
  readonly ratio: number;
}

/** One codec encoding noise at 640×480@30, 1.5 Mbit/s: the rate it holds. */
export async function measureSnowRate(codec: CodecName, seconds: number): Promise<SnowRate> {
  const targetKbps = 1500;
  const server = await startServerProcess(["--source", "test:snow", "--codec", codec, "--size", "640x480", "--fps", "30", "--bitrate", String(targetKbps)]);
  try {
    await new Promise((r) => setTimeout(r, 1500));
    const load = await measureStreamLoad(`${server.wsBase}ws/cam0`, server.pid, seconds);
    return { codec, targetKbps, ...load, ratio: load.kbps / targetKbps };
  } finally {
    await server.stop();
  }
}
