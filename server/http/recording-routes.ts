// Finding and fetching recordings: `GET /api/streams/NAME/recordings` lists the recorded time
// ranges and segments; `GET /recordings/NAME/SEGMENT.webm|.mp4` serves a segment file with HTTP
// Range (through `send`), so a <video> plays and seeks in it directly. Tokens apply as to the stream.

import type { IncomingMessage, ServerResponse } from "node:http";
import send from "send";
import { LocalRecording, type RecordingLookup } from "../record/stream-recording.js";
import { sendJson } from "./api.js";
import { serveSegmentChunks } from "./segment-chunks.js";
import { setSecurityHeaders } from "./security-headers.js";

const LIST_PATH = /^\/api\/streams\/([^/]+)\/recordings$/;
const FILE_PATH = /^\/recordings\/([^/]+)\/([^/]+)$/;

export type RecordingRoute = { readonly kind: "list" | "file"; readonly stream: string; readonly file?: string };

/** The recording route `path` names, or null for another path. */
export function recordingRoute(path: string): RecordingRoute | null {
  const list = LIST_PATH.exec(path);
  if (list) return { kind: "list", stream: safeDecode(list[1]!) };
  const file = FILE_PATH.exec(path);
  if (file) return { kind: "file", stream: safeDecode(file[1]!), file: safeDecode(file[2]!) };
  return null;
}

const safeDecode = (s: string): string => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

/**
 * Answers a recording route once the request's token was checked for the stream. `recordings`:
 * the recorded streams; `isStream`: whether a name is a stream at all (unrecorded → its own error).
 */
export function handleRecording(
  route: RecordingRoute,
  req: IncomingMessage,
  res: ServerResponse,
  recordings: RecordingLookup,
  isStream: (name: string) => boolean,
): void {
  const recording = recordings.get(route.stream);
  if (recording === undefined) {
    if (isStream(route.stream)) sendJson(res, 404, { error: "CC_ERR_NOT_RECORDED", message: `stream "${route.stream.slice(0, 64)}" is not recorded` });
    else sendJson(res, 404, { error: "CC_ERR_UNKNOWN_STREAM", message: `no stream named "${route.stream.slice(0, 64)}"` });
    return;
  }
  if (route.kind === "list") {
    recording.list(new URL(req.url ?? "/", "http://x").searchParams).then(
      (body) => sendJson(res, 200, body),
      (err: unknown) => sendJson(res, 502, { error: "CC_ERR_RECORDING_UNREACHABLE", message: (err as Error).message }),
    );
    return;
  }
  // Not on this disk (an edge's, at its origin): read from where it is kept, piece by piece.
  if (!(recording instanceof LocalRecording)) {
    void serveSegmentChunks(req, res, recording, String(route.file));
    return;
  }
  // Only a segment the catalog lists is served: no other file of the directory, whatever the name.
  const segment = recording.segment(String(route.file));
  if (segment === null) {
    sendJson(res, 404, { error: "CC_ERR_NO_SEGMENT", message: `no segment ${String(route.file).slice(0, 80)} of stream "${route.stream}"` });
    return;
  }
  const { entry, path } = segment;
  setSecurityHeaders(res);
  // A segment being written grows: it must not be cached as it is now.
  const finished = entry.status !== "open";
  send(req, path, { etag: finished, lastModified: finished, cacheControl: false, dotfiles: "deny" })
    .on("headers", (r: ServerResponse) => {
      r.setHeader("Content-Type", entry.container === "webm" ? "video/webm" : "video/mp4");
      r.setHeader("Cache-Control", finished ? "private, max-age=3600" : "no-store");
    })
    .on("error", (err: { status?: number; headers?: Record<string, string> }) => {
      if (res.headersSent) return void res.destroy();
      for (const [name, value] of Object.entries(err.headers ?? {})) res.setHeader(name, value);
      const [status, code, message] =
        err.status === 404 ? [404, "CC_ERR_NO_SEGMENT", "the segment file is gone"]
        : err.status === 416 ? [416, "CC_ERR_RANGE", "the range is not within the segment"]
        : err.status === 412 ? [412, "CC_ERR_PRECONDITION", "the segment changed"]
        : [500, "CC_ERR_INTERNAL", "could not read the segment"];
      sendJson(res, status, { error: code, message });
    })
    .pipe(res);
}
