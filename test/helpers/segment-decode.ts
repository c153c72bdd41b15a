// Decodes a recorded segment file with GStreamer (matroskademux or qtdemux, then the codec's
// decoder) and reports each decoded picture's timestamp, and GStreamer's errors and warnings.

import { spawn } from "node:child_process";

export interface DecodedSegment {
  /** Timestamps (µs) of the pictures the decoder put out, in order. */
  readonly pts: readonly number[];
  /** gst-launch's ERROR and WARNING lines. */
  readonly problems: readonly string[];
  readonly exitCode: number | null;
}

const DECODERS: Record<string, string[]> = {
  vp8: ["vp8dec"],
  vp9: ["vp9dec"],
  av1: ["av1dec"],
  h264: ["h264parse", "!", "avdec_h264"],
};

export function decodeSegment(path: string, codec: "vp8" | "vp9" | "av1" | "h264"): Promise<DecodedSegment> {
  const demux = path.endsWith(".mp4") ? "qtdemux" : "matroskademux";
  const args = ["-v", "filesrc", `location=${path}`, "!", demux, "!", ...DECODERS[codec]!, "!", "fakesink", "name=out", "silent=false", "sync=false"];
  return new Promise((resolve, reject) => {
    const child = spawn("gst-launch-1.0", args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (t: string) => (out += t));
    child.stderr.setEncoding("utf8").on("data", (t: string) => (err += t));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      const pts: number[] = [];
      for (const line of out.split("\n")) {
        if (!line.includes("(out:sink)") || !line.includes("chain")) continue;
        const m = /pts: (\d+):(\d\d):(\d\d)\.(\d{9})/.exec(line);
        if (m) pts.push((Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3])) * 1e6 + Math.round(Number(m[4]) / 1000));
      }
      const problems = (out + "\n" + err).split("\n").filter((l) => /^(ERROR|WARNING)/.test(l.trim()));
      resolve({ pts, problems, exitCode: code });
    });
  });
}
