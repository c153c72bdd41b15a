// A /ws/ viewer written from docs/protocol.md alone (none of shared/protocol.ts or the player):
// a `ws` client (which answers pings, as every WebSocket client must) that sends nothing and keeps
// every JSON text message and every video frame. Frame header, little-endian: u8 kind (1 = video),
// u8 flags (bit 0 keyframe, bit 1 replay, bit 2 discontinuity), u16 header length, u32 sequence,
// f64 PTS µs, f64 server time ms; the encoded frame starts at the header length.

import WebSocket from "ws";

export interface SpecFrame {
  readonly key: boolean;
  readonly replay: boolean;
  readonly discontinuity: boolean;
  readonly seq: number;
  readonly pts: number;
  readonly data: Uint8Array;
  /** This process's clock when the message arrived, ms. */
  readonly at: number;
}

export type SpecEvent = { readonly type: "text"; readonly msg: Record<string, unknown> } | { readonly type: "frame"; readonly frame: SpecFrame };

export interface SpecWsViewer {
  readonly events: SpecEvent[];
  frames(): SpecFrame[];
  texts(): Record<string, unknown>[];
  /** Resolves when `cond` holds after some message (checked on each); rejects after `timeoutMs`, saying `what`. */
  until(cond: () => boolean, timeoutMs: number, what: string): Promise<void>;
  /** True while the socket is open (the same connection throughout). */
  readonly open: boolean;
  close(): void;
}

export async function connectSpecViewer(url: string): Promise<SpecWsViewer> {
  const ws = new WebSocket(url);
  ws.binaryType = "nodebuffer";
  const events: SpecEvent[] = [];
  const checks = new Set<() => void>();
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    if (!isBinary) {
      events.push({ type: "text", msg: JSON.parse(data.toString("utf8")) as Record<string, unknown> });
    } else if (data.byteLength >= 24 && data.readUInt8(0) === 1) {
      const flags = data.readUInt8(1);
      const headerLength = data.readUInt16LE(2);
      events.push({
        type: "frame",
        frame: {
          key: (flags & 1) !== 0,
          replay: (flags & 2) !== 0,
          discontinuity: (flags & 4) !== 0,
          seq: data.readUInt32LE(4),
          pts: data.readDoubleLE(8),
          data: new Uint8Array(data.buffer, data.byteOffset + headerLength, data.byteLength - headerLength),
          at: Date.now(),
        },
      });
    }
    for (const check of [...checks]) check();
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  return {
    events,
    frames: () => events.flatMap((e) => (e.type === "frame" ? [e.frame] : [])),
    texts: () => events.flatMap((e) => (e.type === "text" ? [e.msg] : [])),
    until(cond, timeoutMs, what) {
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (!cond()) return;
          checks.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          checks.delete(check);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs);
        checks.add(check);
        check();
      });
    },
    get open() {
      return ws.readyState === WebSocket.OPEN;
    },
    close: () => ws.close(),
  };
}
