// A real RTSP camera for tests: test/helpers/rtsp_server.py (gst-rtsp-server) on Debian's own
// Python, serving a gst pipeline at rtsp://127.0.0.1:PORT/PATH. Killed by stop(), by
// stopAllRtspServers() (afterAll) and, whatever happens, when the test process exits.

import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("./rtsp_server.py", import.meta.url));
/** Debian's Python has python3-gi and the GstRtspServer typelib; another python3 may be first on the PATH. */
const PYTHON = "/usr/bin/python3";

export interface CameraOptions {
  readonly fps?: number;
  /** videotestsrc pattern; "smpte" moves (as canvascast's own test source does). */
  readonly pattern?: string;
  readonly bitrateKbps?: number;
}

/** A live H.264 camera: x264 without B-frames, a keyframe a second, in RTP (payload pay0). */
export function h264CameraPipeline(width: number, height: number, { fps = 30, pattern = "ball", bitrateKbps = 1000 }: CameraOptions = {}): string {
  const motion = pattern === "smpte" ? " horizontal-speed=2" : "";
  return (
    `videotestsrc is-live=true pattern=${pattern}${motion} ! video/x-raw,width=${width},height=${height},framerate=${fps}/1 ! ` +
    `x264enc tune=zerolatency speed-preset=ultrafast bframes=0 key-int-max=${fps} bitrate=${bitrateKbps} ! ` +
    `video/x-h264,profile=constrained-baseline ! rtph264pay name=pay0 pt=96`
  );
}

export interface RtspServer {
  readonly port: number;
  readonly pid: number;
  /** rtsp://127.0.0.1:PORT/PATH, with `user:pass@` when given. */
  url(credentials?: string): string;
  /** SIGKILL (a camera that vanishes) and wait for the exit. Safe to call twice. */
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
let exitHook = false;

export async function stopAllRtspServers(): Promise<void> {
  await Promise.all([...running].map((child) => kill(child)));
}

function kill(child: ChildProcess): Promise<void> {
  running.delete(child);
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

/** Starts the server; `port` 0 picks a free one. Rejects (and kills it) when it does not listen within 10 s. */
export async function startRtspServer(pipeline: string, port = 0, path = "cam"): Promise<RtspServer> {
  if (!exitHook) {
    exitHook = true;
    process.on("exit", () => {
      for (const child of running) child.kill("SIGKILL");
    });
  }
  const child = spawn(PYTHON, [SCRIPT, "--port", String(port), "--path", path, "--pipeline", pipeline], { stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (t: string) => (out += t));
  child.stderr.setEncoding("utf8").on("data", (t: string) => (err += t));
  const bound = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`RTSP server did not listen in 10 s: ${err}`)), 10_000);
    child.stdout.on("data", () => {
      const m = /\{"port": (\d+)\}/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`RTSP server exited (${code}) before listening: ${err}`));
    });
  }).catch(async (e: unknown) => {
    await kill(child);
    throw e;
  });
  return {
    port: bound,
    pid: child.pid!,
    url: (credentials) => `rtsp://${credentials ? `${credentials}@` : ""}127.0.0.1:${bound}/${path}`,
    stop: () => kill(child),
  };
}
