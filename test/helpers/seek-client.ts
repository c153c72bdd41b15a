// A /ws/ client written from docs/protocol.md alone (a `ws` socket, the frame header read by hand:
// u8 kind, u8 flags — bit 0 keyframe, 1 replay, 2 discontinuity, 3 recorded —, u16 header length,
// u32 sequence, f64 PTS µs, f64 server time ms) that can send the client's messages (seek, live, ack).

import WebSocket from "ws";
import { until } from "./until.js";

export interface Frame {
  key: boolean;
  replay: boolean;
  discontinuity: boolean;
  recorded: boolean;
  seq: number;
  pts: number;
  serverTime: number;
  data: Uint8Array;
  arrived: number;
}
export type Event = { text: Record<string, unknown> } | { frame: Frame };

export interface Client {
  ws: WebSocket;
  events: Event[];
  frames(after?: number): Frame[];
  texts(): Record<string, unknown>[];
  send(msg: object): void;
  wait(cond: () => boolean, ms: number, what: string): Promise<void>;
  closed: Promise<number>;
}

export async function connect(url: string): Promise<Client> {
  const ws = new WebSocket(url);
  ws.binaryType = "nodebuffer";
  const events: Event[] = [];
  ws.on("message", (data: Buffer, binary: boolean) => {
    if (!binary) {
      events.push({ text: JSON.parse(data.toString("utf8")) as Record<string, unknown> });
      return;
    }
    if (data[0] !== 1) return;
    const flags = data[1]!;
    const headerLength = data.readUInt16LE(2);
    events.push({
      frame: {
        key: (flags & 1) !== 0,
        replay: (flags & 2) !== 0,
        discontinuity: (flags & 4) !== 0,
        recorded: (flags & 8) !== 0,
        seq: data.readUInt32LE(4),
        pts: data.readDoubleLE(8),
        serverTime: data.readDoubleLE(16),
        data: new Uint8Array(data.subarray(headerLength)),
        arrived: Date.now(),
      },
    });
  });
  const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  return {
    ws,
    events,
    frames: (after = 0) => events.slice(after).flatMap((e) => ("frame" in e ? [e.frame] : [])),
    texts: () => events.flatMap((e) => ("text" in e ? [e.text] : [])),
    send: (msg) => ws.send(JSON.stringify(msg)),
    wait: async (cond, ms, what) => void await until(what, ms, () => Promise.resolve(cond() ? true : undefined), 20),
    closed,
  };
}

/** The recorded frames among those received since event `from`. */
export const recorded = (c: Client, from: number): Frame[] => c.frames(from).filter((f) => f.recorded);

