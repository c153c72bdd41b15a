// Snapshots of a tile: the picture as a PNG at the video's size, saved as `<stream>-<timestamp>.png`.
// The player's own `snapshot()` is used when it has one (the only way once decoding moves to a
// worker and the tile's canvas is an OffscreenCanvas placeholder, which the page cannot read);
// until then the picture is read from the tile's <canvas> or <video> on the main thread.

import type { StreamPlayer } from "../player/mode.js";

/** A player that may offer `snapshot()` (the embeddable players do). */
type MaybeSnapshotting = StreamPlayer & { readonly snapshot?: () => Promise<Blob> };

/** The current picture of `player` as a PNG. Rejects while there is none. */
export function snapshotPlayer(player: StreamPlayer): Promise<Blob> {
  const own = (player as MaybeSnapshotting).snapshot;
  if (typeof own === "function") return own.call(player);
  const element = player.element;
  return element instanceof HTMLVideoElement ? snapshotVideo(element) : snapshotCanvas(element);
}

function snapshotCanvas(canvas: HTMLCanvasElement): Promise<Blob> {
  return new Promise((resolve, reject) => {
    try {
      canvas.toBlob((blob) => (blob === null ? reject(new DOMException("toBlob gave no image", "EncodingError")) : resolve(blob)), "image/png");
    } catch (err) {
      reject(err instanceof Error ? err : new Error(String(err))); // InvalidStateError: the canvas was handed to a worker
    }
  });
}

function snapshotVideo(video: HTMLVideoElement): Promise<Blob> {
  const { videoWidth: width, videoHeight: height } = video;
  if (width === 0 || height === 0 || video.readyState < HTMLMediaElement.HAVE_CURRENT_DATA) {
    return Promise.reject(new DOMException("no picture to snapshot yet", "InvalidStateError"));
  }
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  if (ctx === null) return Promise.reject(new Error("no 2d context for the snapshot"));
  ctx.drawImage(video, 0, 0, width, height);
  return snapshotCanvas(canvas);
}

/** `cam0-2025-11-24T14-36-05.123Z.png`: UTC, sortable, no characters that file systems refuse. */
export function snapshotFileName(stream: string, at: Date = new Date()): string {
  const safe = stream.replace(/[^A-Za-z0-9_-]/g, "_");
  return `${safe}-${at.toISOString().replace(/:/g, "-")}.png`;
}

/** Offers `blob` as a download named `name`. */
export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  // Revoking at once can cancel the download in some browsers; a minute is plenty.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
