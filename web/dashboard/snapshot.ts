// Snapshots of a tile: the picture as a PNG at the video's size, saved as `<stream>-<timestamp>.png`.
// The picture comes from the player's own snapshot(), which works whichever thread paints.

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
