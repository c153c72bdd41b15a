// Decodes VP8 with GStreamer's libvpx decoder (vp8dec): frames written to an IVF file and played
// through `ivfparse ! vp8dec ! fakesink`, or a WebM stream through `matroskademux ! vp8dec`,
// counting the pictures that come out.
// vp8dec drops frames it cannot decode (anything before the first keyframe), so a stream that
// breaks the keyframe rule at its start decodes to fewer pictures than it has frames.

import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** An IVF file of these frames; `fourcc` names the codec ("VP80", "VP90", "AV01"). */
export function ivf(frames: readonly Uint8Array[], width: number, height: number, fourcc = "VP80"): Uint8Array {
  const total = 32 + frames.reduce((n, f) => n + 12 + f.byteLength, 0);
  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  out.set([0x44, 0x4b, 0x49, 0x46], 0); // "DKIF"
  v.setUint16(4, 0, true); // version
  v.setUint16(6, 32, true); // header size
  out.set([...fourcc].map((c) => c.charCodeAt(0)), 8);
  v.setUint16(12, width, true);
  v.setUint16(14, height, true);
  v.setUint32(16, 30, true); // timebase denominator
  v.setUint32(20, 1, true); // numerator
  v.setUint32(24, frames.length, true);
  let at = 32;
  frames.forEach((f, i) => {
    v.setUint32(at, f.byteLength, true);
    v.setBigUint64(at + 4, BigInt(i), true);
    out.set(f, at + 12);
    at += 12 + f.byteLength;
  });
  return out;
}

/** How many pictures vp8dec outputs for these frames; -1 when gst-launch fails. */
export function decodedPictureCount(frames: readonly Uint8Array[], width: number, height: number): Promise<number> {
  return countPictures("frames.ivf", ivf(frames, width, height), "ivfparse");
}

/** How many pictures `matroskademux ! vp8dec` outputs for a WebM byte stream; -1 when gst-launch fails. */
export function decodedWebmPictureCount(webm: Uint8Array): Promise<number> {
  return countPictures("stream.webm", webm, "matroskademux");
}

function countPictures(name: string, bytes: Uint8Array, demuxer: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "canvascast-decode-"));
  const file = join(dir, name);
  writeFileSync(file, bytes);
  return new Promise((resolve) => {
    execFile(
      "gst-launch-1.0",
      ["-v", "filesrc", `location=${file}`, "!", demuxer, "!", "vp8dec", "!", "fakesink", "silent=false"],
      { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout) => {
        rmSync(dir, { recursive: true, force: true });
        resolve(err === null ? (stdout.match(/last-message = chain/g) ?? []).length : -1);
      },
    );
  });
}

/**
 * The I420 pictures vp8dec makes of these frames, one per frame it decoded, in order (an IVF file
 * through `ivfparse ! vp8dec ! filesink`). Rejects when gst-launch fails.
 */
export function decodedPictures(frames: readonly Uint8Array[], width: number, height: number): Promise<Uint8Array[]> {
  const dir = mkdtempSync(join(tmpdir(), "canvascast-decode-"));
  const input = join(dir, "frames.ivf");
  const output = join(dir, "pictures.i420");
  writeFileSync(input, ivf(frames, width, height));
  const pictureBytes = width * height + 2 * Math.ceil(width / 2) * Math.ceil(height / 2);
  return new Promise<Uint8Array[]>((resolve, reject) => {
    execFile(
      "gst-launch-1.0",
      ["-q", "filesrc", `location=${input}`, "!", "ivfparse", "!", "vp8dec", "!", "video/x-raw,format=I420", "!", "filesink", `location=${output}`],
      { timeout: 120_000 },
      (err) => {
        try {
          if (err !== null) throw new Error(`gst-launch-1.0 could not decode: ${err.message}`);
          const bytes = readFileSync(output);
          const pictures: Uint8Array[] = [];
          for (let at = 0; at + pictureBytes <= bytes.byteLength; at += pictureBytes) pictures.push(bytes.subarray(at, at + pictureBytes));
          resolve(pictures);
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    );
  });
}
