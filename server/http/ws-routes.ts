// WebSocket endpoints: upgrade on /ws/<stream>, /webm/<stream> and /mp4/<stream>
// (`?encoding=full|tile`), viewer wiring, client message validation, heartbeat.

import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import { CloseCode, isEncodingName, MAX_CLIENT_MESSAGE_BYTES, parseClientMessage, ProtocolError } from "../../shared/protocol.js";
import { STREAM_NAME } from "../config-file.js";
import { errorFields, type Logger } from "../log.js";
import { wrongContainerReason, type StreamFanout } from "../stream/fanout.js";
import type { ServedStream } from "../stream/served-stream.js";
import type { ViewerMode } from "../stream/viewer.js";
import { type AccessPolicy, logRefusal } from "./access.js";
import { DEFAULT_LIMITS, viewerCapRefusal, type LimitsConfig } from "./limits.js";
import { RefusalCounts, refuseSocket } from "./refusal.js";
import { WsViewerSocket } from "./viewer-socket.js";
import { PlaybackControl } from "../record/playback-control.js";
import type { RecordingLookup } from "../record/stream-recording.js";

export interface WsRoutesOptions {
  readonly streams: ReadonlyMap<string, ServedStream>;
  readonly log: Logger;
  /** Ping interval; a socket that has not answered the previous ping is terminated. */
  readonly heartbeatMs?: number;
  /** Viewer caps (maxViewersPerStream, maxViewers). */
  readonly limits?: LimitsConfig;
  /** Origin and token rules; without it every upgrade to a known path is accepted. */
  readonly access?: AccessPolicy;
  /** Where refused upgrades are counted (for /metrics). */
  readonly refusals?: RefusalCounts;
  /** The recorded streams' recordings: a /ws/ viewer may seek in them. */
  readonly recordings?: RecordingLookup;
}

/** /ws/<stream>: frame protocol v1; /webm/<stream>: WebM for MSE; /mp4/<stream>: fragmented MP4 for MSE. */
const WS_PATH = /^\/(ws|webm|mp4)\/([^/]+)$/;

/** Close reasons are limited to 123 bytes by RFC 6455. */
const reason = (text: string): string => (Buffer.byteLength(text) <= 123 ? text : Buffer.from(text).subarray(0, 120).toString() + "…");

export class WsRoutes {
  private readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_CLIENT_MESSAGE_BYTES,
    perMessageDeflate: false, // VP8 does not compress; deflate would only cost CPU and latency
  });
  private readonly alive = new WeakMap<WebSocket, boolean>();
  private readonly heartbeat: NodeJS.Timeout;
  private closed = false;
  private readonly refusals: RefusalCounts;

  constructor(private readonly options: WsRoutesOptions) {
    this.refusals = options.refusals ?? new RefusalCounts();
    this.heartbeat = setInterval(() => this.pingAll(), options.heartbeatMs ?? 10_000);
    this.heartbeat.unref();
  }

  /**
   * Handles an HTTP upgrade. Refused with an HTTP status before the handshake: a path that is not
   * ours or a name that cannot be a stream (404), the access rules (401 no or wrong token, 403 a
   * token for other streams or a foreign Origin), a full stream or server (503); ws itself answers
   * a bad handshake (400). An unknown stream (4404) or encoding (4406), and an MSE path of the
   * other container than the stream's codec plays in (4415), are told after the handshake, with a
   * close code, since a browser's WebSocket cannot read an HTTP status.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const [path = "/", query = ""] = (req.url ?? "/").split("?", 2);
    const match = WS_PATH.exec(path);
    let name = "";
    try {
      name = decodeURIComponent(match?.[2] ?? "");
    } catch {
      // malformed percent-encoding: not a stream name
    }
    if (this.closed) {
      refuseSocket(socket, { status: 503, code: "CC_ERR_SHUTTING_DOWN", message: "the server is shutting down" }, this.refusals);
      return;
    }
    if (!match || !STREAM_NAME.test(name)) {
      refuseSocket(socket, { status: 404, code: "CC_ERR_NOT_FOUND", message: "no such WebSocket endpoint" }, this.refusals);
      return;
    }
    const mode = match[1] as ViewerMode;
    const decision = this.options.access?.checkUpgrade(req, name);
    if (decision !== undefined && !decision.ok) {
      logRefusal(this.options.log, req, decision.code);
      refuseSocket(socket, decision, this.refusals);
      return;
    }
    const params = new URLSearchParams(query);
    const meta = params.get("meta") === "1";
    // No parameter: the full encoding (every stream has it).
    const encoding = params.get("encoding") ?? "full";
    const stream = this.options.streams.get(name);
    const full = stream && viewerCapRefusal(stream, this.options.streams.values(), this.options.limits ?? DEFAULT_LIMITS);
    if (full) {
      this.options.log.info("viewer refused: too many viewers", { stream: name, mode, remote: req.socket.remoteAddress, reason: full.message });
      refuseSocket(socket, full, this.refusals);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const log = this.options.log.child({ stream: name, mode, encoding: encoding.slice(0, 24), remote: req.socket.remoteAddress });
      const fanout = stream && isEncodingName(encoding) ? stream.encoding(encoding) : undefined;
      if (!stream || !fanout) {
        // Until the close handshake ends, ws still reads this socket and reports what it sends that
        // breaks the protocol (over 4096 bytes, not UTF-8) as an 'error': without a listener that
        // would end the process.
        ws.on("error", (err) => log.warn("viewer socket error", { error: err.message }));
        if (!stream) {
          log.info("viewer refused: unknown stream");
          ws.close(CloseCode.UNKNOWN_STREAM, reason(`unknown stream "${name}"`));
        } else {
          log.info("viewer refused: unknown encoding");
          const asked = JSON.stringify(encoding.slice(0, 24));
          const has = [...stream.encodings.keys()].join(", ");
          ws.close(CloseCode.UNKNOWN_ENCODING, reason(`CC_ERR_UNKNOWN_ENCODING: stream "${name}" has no encoding ${asked} (it has: ${has})`));
        }
        return;
      }
      if (mode !== "ws" && fanout.mseContainer !== mode) {
        ws.on("error", (err) => log.warn("viewer socket error", { error: err.message }));
        log.info("viewer refused: the stream's codec plays in another container", { codec: fanout.codecString });
        ws.close(CloseCode.WRONG_CONTAINER, wrongContainerReason(name, fanout.codecString, fanout.mseContainer));
        return;
      }
      this.alive.set(ws, true);
      this.attach(ws, fanout, req, mode, meta, log);
    });
  }

  /**
   * Wires a viewer of any mode to the fan-out of the encoding it asked for. Pongs feed flow
   * control. A /ws/ viewer's text messages are validated and applied; an MSE viewer's messages
   * are ignored (MSE pages send nothing), as are binary messages there.
   */
  private attach(ws: WebSocket, fanout: StreamFanout, req: IncomingMessage, mode: ViewerMode, meta: boolean, log: Logger): void {
    const viewer = fanout.addViewer(new WsViewerSocket(ws), mode, req.socket.remoteAddress ?? "", meta);
    log.info("viewer connected", { viewer: viewer.id, viewers: fanout.viewerCount() });
    ws.on("pong", (data: Buffer) => {
      this.alive.set(ws, true);
      fanout.onPong(viewer, data);
    });
    // seek and live switch a /ws/ viewer between live and the stream's recording (of its full encoding).
    const playback = mode === "ws" ? new PlaybackControl(viewer, fanout, this.options.recordings?.get(fanout.name) ?? null, log) : null;
    if (playback !== null) {
      ws.on("message", (data: RawData, isBinary: boolean) => {
        if (isBinary) {
          ws.close(CloseCode.UNSUPPORTED_DATA, "binary messages are not accepted");
          return;
        }
        handleClientMessage(ws, log, viewer.id, () => {
          const message = parseClientMessage(rawToString(data));
          if (!playback.handle(message)) fanout.onClientMessage(viewer, message);
        });
      });
    }
    ws.on("error", (err) => {
      // ws reports protocol violations (e.g. a message over maxPayload → 1009) here and closes.
      log.warn("viewer socket error", { viewer: viewer.id, error: err.message });
    });
    ws.on("close", (code, why) => {
      playback?.close();
      fanout.removeViewer(viewer);
      log.info("viewer disconnected", {
        viewer: viewer.id,
        code,
        reason: why.toString(),
        framesSent: viewer.framesSent,
        skipped: viewer.skipped,
        viewers: fanout.viewerCount(),
      });
    });
  }

  private pingAll(): void {
    for (const ws of this.wss.clients) {
      if (this.alive.get(ws) === false) {
        ws.terminate();
        continue;
      }
      this.alive.set(ws, false);
      ws.ping();
    }
  }

  /**
   * Stops the heartbeat, gives sockets already sent a close frame up to `graceMs` to finish the
   * handshake, then terminates the rest. Safe to call twice.
   */
  async close(graceMs = 0): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      clearInterval(this.heartbeat);
    }
    const deadline = Date.now() + graceMs;
    while (this.wss.clients.size > 0 && Date.now() < deadline) await sleep(20);
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
  }
}

/**
 * Handles one client message on its socket. A ProtocolError (the client's fault) closes the socket
 * with 4400. Any other error is a bug of ours: it closes this socket only, with 1011, and is logged
 * with its stack. Nothing is rethrown: an error thrown out of ws's event listener would end the
 * process and every other viewer with it.
 */
export function handleClientMessage(ws: Pick<WebSocket, "close">, log: Logger, viewer: number, handle: () => void): void {
  try {
    handle();
  } catch (err) {
    if (err instanceof ProtocolError) {
      log.warn("bad client message; closing", { viewer, code: err.code });
      ws.close(CloseCode.BAD_MESSAGE, reason(`${err.code}: ${err.message}`));
      return;
    }
    log.error("internal error handling a client message; closing the socket", { viewer, ...errorFields(err) });
    ws.close(CloseCode.INTERNAL_ERROR, "CC_ERR_INTERNAL: internal server error");
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function rawToString(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString("utf8");
  return data.toString("utf8");
}
