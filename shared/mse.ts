// Which MSE byte stream carries a codec, shared by the server (its routes and /api/streams) and the
// player (the path it opens and the SourceBuffer type it asks for): WebM on `/webm/<stream>` for
// VP8, VP9 and AV1; fragmented MP4 on `/mp4/<stream>` for H.264 (MSE plays H.264 only in MP4 in
// Chromium, Firefox and Safari alike).

import { codecOfString, type CodecName } from "./codec.js";

export const MSE_CONTAINERS = ["webm", "mp4"] as const;
export type MseContainer = (typeof MSE_CONTAINERS)[number];

export const CONTAINER_OF: Readonly<Record<CodecName, MseContainer>> = { vp8: "webm", vp9: "webm", av1: "webm", h264: "mp4" };

/** A stream's MSE byte stream: the socket path's first segment and the SourceBuffer's MIME type. */
export interface MseFormat {
  readonly container: MseContainer;
  /** e.g. `video/webm; codecs="vp09.00.30.08"` or `video/mp4; codecs="avc1.42C01E"`. */
  readonly mimeType: string;
}

/** The MSE format of a WebCodecs codec string (hello.codec); null for one canvascast does not mux. */
export function mseFormatOf(codec: string): MseFormat | null {
  const name = codecOfString(codec);
  if (name === null) return null;
  const container = CONTAINER_OF[name];
  return { container, mimeType: `video/${container}; codecs="${codec}"` };
}

/** What a page that knows only the path assumes before hello names the codec (the first codec of each). */
export const DEFAULT_MIME: Readonly<Record<MseContainer, string>> = {
  webm: 'video/webm; codecs="vp8"',
  mp4: 'video/mp4; codecs="avc1.42E01E"',
};
