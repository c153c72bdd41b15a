// Adapts a `ws` WebSocket to what the fan-outs need: JSON text through `ws`, binary messages
// framed once per frame (WireMessage) and written straight to the TCP socket, the same buffers
// for every viewer.
//
// Why writing past `ws` is safe: its Sender writes every frame to the socket synchronously unless
// it is compressing or reading a Blob, and canvascast uses neither (perMessageDeflate is off, the
// server sends no Blob). So frames written here and by `ws` keep their order and never interleave,
// and `ws.bufferedAmount` (the socket's write queue) still counts them.

import type { Duplex } from "node:stream";
import { WebSocket } from "ws";
import type { ViewerSocket } from "../stream/viewer.js";
import type { WireMessage } from "../stream/wire-message.js";

/** The one `ws` internal this relies on: the TCP socket of an open WebSocket. */
interface WsInternals {
  readonly _socket: Duplex | null;
}

export class ViewerSocketError extends Error {
  override readonly name = "ViewerSocketError";
  readonly code = "CC_ERR_WS_SOCKET";
}

export class WsViewerSocket implements ViewerSocket {
  private readonly socket: Duplex;

  constructor(private readonly ws: WebSocket) {
    const socket = (ws as unknown as WsInternals)._socket;
    // Fail loudly (tests run this) if a `ws` upgrade ever changes what the comment above relies on.
    if (ws.extensions !== "" || socket === null || typeof socket?.cork !== "function") {
      throw new ViewerSocketError("WsViewerSocket needs an open WebSocket without extensions");
    }
    this.socket = socket;
  }

  get readyState(): number {
    return this.ws.readyState;
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  send(text: string): void {
    this.ws.send(text);
  }

  sendWire(message: WireMessage, ping?: WireMessage): void {
    // After close() has sent (or is sending) the close frame, nothing may follow it.
    if (this.ws.readyState !== WebSocket.OPEN) return;
    const { parts } = message;
    if (parts.length === 1 && ping === undefined) {
      this.socket.write(parts[0]!);
      return;
    }
    this.socket.cork(); // one writev for the header, the payload and the ping
    for (const part of parts) this.socket.write(part);
    if (ping !== undefined) for (const part of ping.parts) this.socket.write(part);
    this.socket.uncork();
  }

  close(code?: number, reason?: string): void {
    this.ws.close(code, reason);
  }
}
