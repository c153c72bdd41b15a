// A segment file served from where it is kept, piece by piece: an edge's GET /recordings/… reads it
// from the origin over NATS. One HTTP Range (206, 416) and HEAD, as `send` serves a file on this
// disk; no ETag or Last-Modified (the edge does not see the file's).

import { once } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import parseRange from "range-parser";
import type { StreamRecording } from "../record/stream-recording.js";
import { sendJson } from "./api.js";
import { setSecurityHeaders } from "./security-headers.js";

/** Bytes asked for at a time. */
const CHUNK_BYTES = 512 * 1024;

export async function serveSegmentChunks(req: IncomingMessage, res: ServerResponse, recording: StreamRecording, file: string): Promise<void> {
  let first;
  try {
    first = await recording.readSegment(file, 0, 0);
  } catch (err) {
    sendJson(res, 502, { error: "CC_ERR_RECORDING_UNREACHABLE", message: (err as Error).message });
    return;
  }
  if (!first.ok) {
    sendJson(res, 404, { error: "CC_ERR_NO_SEGMENT", message: first.message });
    return;
  }
  const size = first.size;
  let start = 0;
  let end = size - 1;
  let status = 200;
  const range = req.headers.range;
  if (range !== undefined) {
    const ranges = parseRange(size, range, { combine: true });
    if (ranges === -1) {
      res.setHeader("Content-Range", `bytes */${size}`);
      sendJson(res, 416, { error: "CC_ERR_RANGE", message: "the range is not within the segment" });
      return;
    }
    // A malformed header, or several ranges: the whole file (as `send` does).
    if (ranges !== -2 && ranges.type === "bytes" && ranges.length === 1) {
      start = ranges[0]!.start;
      end = ranges[0]!.end;
      status = 206;
      res.setHeader("Content-Range", `bytes ${start}-${end}/${size}`);
    }
  }
  setSecurityHeaders(res);
  res.statusCode = status;
  res.setHeader("Content-Type", first.mimeType);
  res.setHeader("Accept-Ranges", "bytes");
  res.setHeader("Content-Length", String(Math.max(0, end - start + 1)));
  res.setHeader("Cache-Control", first.finished ? "private, max-age=3600" : "no-store");
  if (req.method === "HEAD") {
    res.end();
    return;
  }
  try {
    for (let offset = start; offset <= end && !res.destroyed; ) {
      const chunk = await recording.readSegment(file, offset, Math.min(CHUNK_BYTES, end - offset + 1));
      // Gone or shrunk under the transfer: the response cannot be completed.
      if (!chunk.ok || chunk.bytes.byteLength === 0) throw new Error(chunk.ok ? "the segment ended early" : chunk.message);
      offset += chunk.bytes.byteLength;
      if (!res.write(chunk.bytes)) await Promise.race([once(res, "drain"), once(res, "close")]);
    }
    res.end();
  } catch {
    res.destroy();
  }
}
