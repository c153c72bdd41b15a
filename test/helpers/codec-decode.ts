// Decodes what a viewer received with GStreamer's own decoders, for every codec: VP8, VP9 and AV1
// frames in an IVF file (`ivfparse`), H.264 access units written one after another as an Annex B
// stream (`h264parse`), and an MSE byte stream as received (`matroskademux`, `qtdemux`). Counts the
// pictures that come out; decoders drop what they cannot decode.

import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CodecName } from "../../shared/codec.js";
import { ivf } from "./vp8-decode.js";

const DECODE: Record<CodecName, { readonly fourcc: string | null; readonly chain: readonly string[] }> = {
  vp8: { fourcc: "VP80", chain: ["ivfparse", "!", "vp8dec"] },
  vp9: { fourcc: "VP90", chain: ["ivfparse", "!", "vp9dec"] },
  av1: { fourcc: "AV01", chain: ["ivfparse", "!", "av1parse", "!", "av1dec"] },
  h264: { fourcc: null, chain: ["h264parse", "!", "avdec_h264"] },
};

const DECODER: Record<CodecName, readonly string[]> = {
  vp8: ["vp8dec"],
  vp9: ["vp9dec"],
  av1: ["av1dec"],
  h264: ["h264parse", "!", "avdec_h264"],
};

/** A picture at fakesink (`-v`, silent=false) and its pts, h:mm:ss.nnnnnnnnn or none. */
const PICTURE = /last-message = chain.*? pts: (none|(\d+):(\d\d):(\d\d)\.(\d{9}))/g;

/** How many pictures GStreamer decodes from these frames; rejects when gst-launch fails. */
export async function decodedPictureCountOf(codec: CodecName, frames: readonly Uint8Array[], width: number, height: number): Promise<number> {
  const { fourcc, chain } = DECODE[codec];
  const bytes = fourcc === null ? Buffer.concat(frames) : ivf(frames, width, height, fourcc);
  return (await decodePictures(codec, bytes, chain)).length;
}

/**
 * The pictures GStreamer decodes from an MSE byte stream as a viewer received it (WebM through
 * matroskademux, MP4 through qtdemux): each picture's presentation time, ms, in output order.
 */
export function decodedMsePicturesOf(codec: CodecName, container: "webm" | "mp4", stream: Uint8Array): Promise<number[]> {
  const demux = container === "webm" ? "matroskademux" : "qtdemux";
  return decodePictures(codec, stream, [demux, "!", ...DECODER[codec]]);
}

function decodePictures(codec: CodecName, bytes: Uint8Array, chain: readonly string[]): Promise<number[]> {
  const dir = mkdtempSync(join(tmpdir(), "canvascast-decode-"));
  const file = join(dir, "frames");
  writeFileSync(file, bytes);
  return new Promise((resolve, reject) => {
    execFile(
      "gst-launch-1.0",
      ["-v", "filesrc", `location=${file}`, "!", ...chain, "!", "fakesink", "silent=false"],
      { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        rmSync(dir, { recursive: true, force: true });
        if (err !== null) reject(new Error(`gst-launch-1.0 could not decode ${codec}: ${err.message}\n${stderr}`));
        else resolve([...stdout.matchAll(PICTURE)].map((m) => (m[1] === "none" ? NaN : ((+m[2]! * 60 + +m[3]!) * 60 + +m[4]!) * 1000 + +m[5]! / 1e6)));
      },
    );
  });
}
