// The payload of a flow-control ping: 12 bytes, little-endian — u32 the newest frame sequence
// number sent before the ping, f64 the server wall clock (ms since the epoch) when it was sent.
// A client only echoes it (every WebSocket client answers pings); docs/protocol.md documents it so
// that one can read its own lag from it. Pings the heartbeat sends are empty and are not probes.

import type { Millis } from "../../shared/units.js";
import { WireMessage } from "./wire-message.js";

export const PROBE_PAYLOAD_BYTES = 12;

export function probeMessage(seq: number, sentAt: Millis): WireMessage {
  const payload = new Uint8Array(PROBE_PAYLOAD_BYTES);
  const view = new DataView(payload.buffer);
  view.setUint32(0, seq >>> 0, true);
  view.setFloat64(4, sentAt, true);
  return WireMessage.ping(payload);
}

/** A pong's payload read back; null when it is not one of our probes. */
export function readProbe(payload: Uint8Array): { seq: number; sentAt: number } | null {
  if (payload.byteLength !== PROBE_PAYLOAD_BYTES) return null;
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const sentAt = view.getFloat64(4, true);
  if (!Number.isFinite(sentAt)) return null;
  return { seq: view.getUint32(0, true), sentAt };
}
