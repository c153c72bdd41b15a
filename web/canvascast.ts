// The embeddable module, served as /canvascast.js (one self-contained ES module, CORS-readable) and
// importable from the package: defines <canvas-cast> and exports the player API. Its public types
// are player/api.ts, shipped as canvascast.d.ts. docs/embedding.md shows how to use it.

import type { CanvasCastElementConstructor, PlayFunction } from "./player/api.js";
import { CanvasCastElementImpl } from "./player/element.js";
import { markJoin } from "./player/join-marks.js";
import { play as playCanvas } from "./player/play.js";

markJoin("module");

export type * from "./player/api.js";

/**
 * Plays the frame protocol socket `url` (e.g. `ws://host:8080/ws/cam0`) into `canvas` with
 * WebCodecs — in a worker on an OffscreenCanvas where the browser allows it (option `worker`).
 */
export const play: PlayFunction = playCanvas;

/** The class behind `<canvas-cast>`, defined on import. */
export const CanvasCastElement: CanvasCastElementConstructor = CanvasCastElementImpl;

// Loaded twice (two URLs, or a page and a bundle), the first definition stays.
if (typeof customElements !== "undefined" && customElements.get("canvas-cast") === undefined) {
  customElements.define("canvas-cast", CanvasCastElementImpl);
}
