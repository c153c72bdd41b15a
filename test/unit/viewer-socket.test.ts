// WsViewerSocket writes pre-framed binary messages straight to the TCP socket: a real `ws` server
// and client check that what arrives is exactly the message, in order with text and pings.

import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, test } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { ViewerSocketError, WsViewerSocket } from "../../server/http/viewer-socket.js";
import { WireMessage } from "../../server/stream/wire-message.js";
import { expectErrorCode } from "../helpers/errors.js";
import { mulberry32 } from "../helpers/random.js";

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((f) => f()));

type Got = { binary: boolean; bytes: Buffer };

/** A server on a free port and one client; resolves with the server side's socket. */
async function pair(options: { deflate?: boolean } = {}): Promise<{ server: WebSocket; client: WebSocket; got: Got[]; pings: number[] }> {
  const wss = new WebSocketServer({ port: 0, host: "127.0.0.1", perMessageDeflate: options.deflate ?? false });
  cleanups.push(() => {
    for (const c of wss.clients) c.terminate();
    wss.close();
  });
  await new Promise<void>((resolve) => wss.once("listening", resolve));
  const { port } = wss.address() as AddressInfo;
  const serverSide = new Promise<WebSocket>((resolve) => wss.once("connection", resolve));
  const client = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: options.deflate ?? false });
  cleanups.push(() => client.terminate());
  const got: Got[] = [];
  const pings: number[] = [];
  client.on("message", (data: Buffer, binary: boolean) => got.push({ binary, bytes: data }));
  client.on("ping", () => pings.push(got.length));
  await new Promise<void>((resolve) => client.once("open", resolve));
  return { server: await serverSide, client, got, pings };
}

function bytes(n: number, seed: number): Uint8Array {
  const rand = mulberry32(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));
}

const until = async (check: () => boolean): Promise<void> => {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
};

describe("WsViewerSocket", () => {
  test("a message of every length class arrives whole, in order with text messages and pings", async () => {
    const { server, got, pings } = await pair();
    const socket = new WsViewerSocket(server);
    // Lengths around the 7-bit, 16-bit and 64-bit length encodings of RFC 6455.
    const sizes: [number, number][] = [[0, 0], [1, 0], [24, 101], [24, 102], [24, 103], [24, 65_511], [24, 65_512], [30, 200_000]];
    const expected: Got[] = [];
    sizes.forEach(([headSize, bodySize], i) => {
      const head = bytes(headSize, i);
      const body = bytes(bodySize, 100 + i);
      socket.sendWire(bodySize > 0 ? WireMessage.binary(head, body) : WireMessage.binary(head));
      expected.push({ binary: true, bytes: Buffer.concat([head, body]) });
      socket.send(`{"n":${i}}`);
      expected.push({ binary: false, bytes: Buffer.from(`{"n":${i}}`) });
      if (i === 3) server.ping();
    });
    await until(() => got.length === expected.length);
    expect(got.map((g) => g.binary)).toEqual(expected.map((e) => e.binary));
    got.forEach((g, i) => expect(g.bytes.equals(expected[i]!.bytes), `message ${i}`).toBe(true));
    expect(pings).toEqual([8]); // after message 3's text, before message 4
  });

  test("the same message object can go to many sockets; its buffers are not consumed", async () => {
    const a = await pair();
    const b = await pair();
    const message = WireMessage.binary(bytes(24, 1), bytes(5000, 2));
    const sa = new WsViewerSocket(a.server);
    const sb = new WsViewerSocket(b.server);
    for (let i = 0; i < 3; i++) {
      sa.sendWire(message);
      sb.sendWire(message);
    }
    await until(() => a.got.length === 3 && b.got.length === 3);
    for (const g of [...a.got, ...b.got]) expect(g.bytes.equals(message.payload())).toBe(true);
  });

  test("nothing is written after close(): the client sees a clean close with the server's code", async () => {
    const { server, client, got } = await pair();
    const socket = new WsViewerSocket(server);
    socket.sendWire(WireMessage.binary(bytes(10, 3)));
    socket.close(4000, "bye");
    socket.sendWire(WireMessage.binary(bytes(10, 4))); // after the close frame: dropped
    const closed = await new Promise<number>((resolve) => client.once("close", resolve));
    expect(closed).toBe(4000);
    expect(got).toHaveLength(1);
  });

  test("refuses a socket with an extension negotiated (its frames would not be ours to write)", async () => {
    const { server } = await pair({ deflate: true });
    expect(server.extensions).toContain("permessage-deflate");
    expectErrorCode(() => new WsViewerSocket(server), ViewerSocketError, "CC_ERR_WS_SOCKET");
  });
});
