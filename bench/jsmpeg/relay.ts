// The comparison player for the benchmarks: jsmpeg (@cycjimmy/jsmpeg-player, WASM MPEG-1 decoder,
// canvas 2D), fed MPEG-1 in MPEG-TS over a WebSocket relay, the way its README sets it up.
//
// GStreamer on Debian 12 cannot encode live MPEG-1 (avenc_mpeg1video refuses the caps, mpeg2enc is
// too slow), so a gst test pattern is piped as raw I420 into Debian's ffmpeg, which encodes MPEG-1
// and writes MPEG-TS, flushing each packet. The relay reads ffmpeg's stdout, forwards every chunk to
// each jsmpeg client as it arrives, and parses the TS to stamp each picture's arrival (the pipe
// time, as the canvascast server stamps each VP8 frame). A second socket per client carries those
// stamps to the page, so it can match each decoded picture to its arrival.

import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { WebSocketServer, type WebSocket } from "ws";

const JSMPEG = fileURLToPath(new URL("../../node_modules/@cycjimmy/jsmpeg-player/dist/jsmpeg-player.esm.js", import.meta.url));
const PAGE = fileURLToPath(new URL("./page.html", import.meta.url));

const TS_PACKET = 188;
/** ffmpeg's mpegts muxer puts the first video stream on PID 0x100. */
const VIDEO_PID = 0x100;

export interface JsmpegRelayOptions {
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  readonly bitrateKbps: number;
  /** Pictures between I-frames (jsmpeg can start decoding only at a sequence header). */
  readonly gop: number;
}

export interface JsmpegRelay {
  /** Page that plays the stream with jsmpeg: http://127.0.0.1:PORT/ */
  readonly url: string;
  readonly pids: { readonly gst: number; readonly ffmpeg: number };
  close(): Promise<void>;
}

interface Client {
  ts: WebSocket | null;
  timing: WebSocket | null;
  /** Stamps are sent from the first picture the client can decode: one starting with a sequence header. */
  started: boolean;
  pending: { readonly first: number; readonly at: number }[];
}

export async function startJsmpegRelay(o: JsmpegRelayOptions): Promise<JsmpegRelay> {
  const gst = spawn(
    "gst-launch-1.0",
    [
      "-q", "videotestsrc", "is-live=true", "pattern=smpte", "horizontal-speed=2",
      "!", `video/x-raw,format=I420,width=${o.width},height=${o.height},framerate=${o.fps}/1`,
      "!", "fdsink", "fd=1", "sync=false",
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const ffmpeg = spawn(
    "ffmpeg",
    [
      "-hide_banner", "-loglevel", "error",
      "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", `${o.width}x${o.height}`, "-r", String(o.fps), "-i", "-",
      "-c:v", "mpeg1video", "-b:v", `${o.bitrateKbps}k`, "-bf", "0", "-g", String(o.gop),
      "-f", "mpegts", "-flush_packets", "1", "-",
    ],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  gst.stdout.pipe(ffmpeg.stdin);
  ffmpeg.stdin.on("error", () => undefined); // ffmpeg gone: gst gets SIGPIPE

  const clients = new Map<string, Client>();
  let pictures = 0;
  let partial: Buffer = Buffer.alloc(0);
  ffmpeg.stdout.on("data", (chunk: Buffer) => {
    const at = performance.timeOrigin + performance.now();
    for (const c of clients.values()) if (c.ts?.readyState === 1) c.ts.send(chunk);
    // Stamp each picture: a PES start on the video PID begins one picture (no B-frames).
    const data = partial.length ? Buffer.concat([partial, chunk]) : chunk;
    let i = 0;
    for (; i + TS_PACKET <= data.length; i += TS_PACKET) {
      if (data[i] !== 0x47) continue;
      const pid = ((data[i + 1]! & 0x1f) << 8) | data[i + 2]!;
      const pusi = (data[i + 1]! & 0x40) !== 0;
      if (pid !== VIDEO_PID || !pusi) continue;
      const sequenceHeader = data.subarray(i + 4, i + TS_PACKET).includes(Buffer.from([0, 0, 1, 0xb3]));
      for (const c of clients.values()) {
        if (c.ts === null || (!c.started && !sequenceHeader)) continue;
        c.started = true;
        c.pending.push({ first: pictures, at });
        if (c.timing?.readyState === 1) {
          c.timing.send(JSON.stringify(c.pending));
          c.pending = [];
        }
      }
      pictures++;
    }
    partial = data.subarray(i);
  });

  const page = readFileSync(PAGE, "utf8");
  const jsmpeg = readFileSync(JSMPEG);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/") {
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(page);
    } else if (path === "/jsmpeg.js") {
      res.writeHead(200, { "Content-Type": "text/javascript" }).end(jsmpeg);
    } else {
      res.writeHead(404).end();
    }
  });
  const wss = new WebSocketServer({ server });
  wss.on("connection", (ws, req) => {
    const url = new URL(req.url ?? "/", "http://x");
    const id = url.searchParams.get("id") ?? "";
    if (url.pathname !== "/ts" && url.pathname !== "/timing") {
      ws.close();
      return;
    }
    // The two sockets of one page may arrive in either order.
    let c = clients.get(id);
    if (!c) clients.set(id, (c = { ts: null, timing: null, started: false, pending: [] }));
    if (url.pathname === "/ts") c.ts = ws;
    else c.timing = ws;
    ws.on("close", () => clients.delete(id));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const kill = (p: ChildProcess): void => {
    if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  };
  return {
    url: `http://127.0.0.1:${port}/`,
    pids: { gst: gst.pid ?? 0, ffmpeg: ffmpeg.pid ?? 0 },
    async close() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      kill(gst);
      kill(ffmpeg);
    },
  };
}
