// JSON API: GET /api/streams.

import type { ServerResponse } from "node:http";
import type { StreamsResponse } from "../../shared/api.js";
import type { LiveStream } from "../stream/live-stream.js";

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

export function streamsResponse(streams: Iterable<LiveStream>): StreamsResponse {
  return { streams: [...streams].map((s) => s.info()) };
}
