// JSON API: GET /api/streams.

import type { ServerResponse } from "node:http";
import type { ServerWarning, StreamsResponse } from "../../shared/api.js";
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
): StreamsResponse {
  return { streams: [...streams].filter((s) => visible === null || visible.has(s.name)).map((s) => s.info()), warnings };
}
