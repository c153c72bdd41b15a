// Which encoding a picture needs for the size it is displayed at: the stream's tile encoding while
// it is small (a grid), the full one otherwise. `<canvas-cast quality="auto">` and the dashboard's
// tiles follow their element's size with it.

import type { Encoding } from "./api.js";

/**
 * The tile encoding while the picture is at most this many device pixels wide (a 320-pixel tile
 * scaled up by at most 1.5), else the full one.
 */
export const TILE_MAX_DEVICE_WIDTH = 480;

export function encodingForWidth(deviceWidth: number): Encoding {
  return deviceWidth > 0 && deviceWidth <= TILE_MAX_DEVICE_WIDTH ? "tile" : "full";
}

/** The element's width in device pixels as laid out now (0 before layout). */
export function deviceWidthOf(element: Element): number {
  return element.getBoundingClientRect().width * (globalThis.devicePixelRatio || 1);
}

/**
 * Calls `onChange` with the encoding for `element`'s displayed width whenever that changes
 * (ResizeObserver). A width of 0 (not displayed, e.g. while being moved in the DOM) keeps the last
 * choice. Returns the function that stops watching.
 */
export function followDisplaySize(element: Element, onChange: (encoding: Encoding) => void): () => void {
  if (typeof ResizeObserver !== "function") return () => undefined;
  let last: Encoding | undefined;
  const observer = new ResizeObserver((entries) => {
    const entry = entries.at(-1);
    if (entry === undefined) return;
    const devicePixels = entry.devicePixelContentBoxSize?.[0]?.inlineSize;
    const width = devicePixels ?? (entry.contentBoxSize[0]?.inlineSize ?? 0) * (globalThis.devicePixelRatio || 1);
    if (width === 0) return;
    const encoding = encodingForWidth(width);
    if (encoding === last) return;
    last = encoding;
    onChange(encoding);
  });
  try {
    observer.observe(element, { box: "device-pixel-content-box" });
  } catch {
    observer.observe(element); // browsers without device-pixel-content-box
  }
  return () => observer.disconnect();
}
