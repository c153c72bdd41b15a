// JSON API: GET /api/streams (a stream's recordings: recording-routes.ts).

import type { ServerResponse } from "node:http";
import type { ServerWarning, StreamsResponse } from "../../shared/api.js";
import { NO_RECORDINGS, type RecordingLookup } from "../record/stream-recording.js";
import type { ServedStream } from "../stream/served-stream.js";

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(text),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
  });
  res.end(text);
}

/** `visible` null = every stream (no tokens, or a token for every stream). */
export function streamsResponse(
  streams: Iterable<ServedStream>,
  visible: ReadonlySet<string> | null = null,
  warnings: readonly ServerWarning[] = [],
  recordings: RecordingLookup = NO_RECORDINGS,
): StreamsResponse {
  const shown = [...streams].filter((s) => visible === null || visible.has(s.name));
  return {
    streams: shown.map((s) => {
      const recording = recordings.get(s.name);
      return recording === undefined ? s.info() : { ...s.info(), recording: recording.info() };
    }),
    warnings,
  };
}
