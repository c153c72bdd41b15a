// handleClientMessage (server/http/ws-routes.ts): how one client message's errors end, with a fake
// socket and logger, then with real `ws` sockets in this process.

import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, test } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { handleClientMessage } from "../../server/http/ws-routes.js";
import type { LogFields, Logger } from "../../server/log.js";
import { ProtocolError } from "../../shared/protocol.js";

// Written out again rather than imported: the tests pin the documented values.
const CLOSE_BAD_MESSAGE = 4400;
const CLOSE_INTERNAL_ERROR = 1011;

interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly fields: LogFields;
}

function fakeLog(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at =
    (level: string) =>
    (msg: string, fields: LogFields = {}): void =>
      void lines.push({ level, msg, fields });
  const log: Logger = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error"), child: () => log };
  return { log, lines };
}

function fakeWs(): { ws: Pick<WebSocket, "close">; closes: [number | undefined, string | undefined][] } {
  const closes: [number | undefined, string | undefined][] = [];
  return { ws: { close: (code?: number, reason?: string | Buffer) => void closes.push([code, reason?.toString()]) }, closes };
}

describe("handleClientMessage", () => {
  test("a handler that throws a plain Error closes that socket with 1011 and CC_ERR_INTERNAL, and logs it with its stack", () => {
    const { ws, closes } = fakeWs();
    const { log, lines } = fakeLog();
    const boom = new Error("hub state is inconsistent");
    expect(() =>
      handleClientMessage(ws, log, 7, () => {
        throw boom;
      }),
    ).not.toThrow();
    expect(closes).toHaveLength(1);
    const [code, reason] = closes[0]!;
    expect(code).toBe(CLOSE_INTERNAL_ERROR);
    expect(reason).toMatch(/^CC_ERR_INTERNAL\b/);
    expect(Buffer.byteLength(reason!)).toBeLessThanOrEqual(123);
    // The client is not told what went wrong; the log is.
    expect(reason).not.toContain("inconsistent");
    expect(lines).toEqual([{ level: "error", msg: expect.any(String) as string, fields: { viewer: 7, error: boom.message, stack: boom.stack } }]);
  });

  test("anything else thrown (a TypeError, a string, an object without toString) ends the same way", () => {
    const throwables: unknown[] = [new TypeError("x is undefined"), "a string", 0, Object.create(null), null];
    for (const thrown of throwables) {
      const { ws, closes } = fakeWs();
      const { log, lines } = fakeLog();
      handleClientMessage(ws, log, 1, () => {
        throw thrown;
      });
      expect(closes.map(([c]) => c), String(typeof thrown)).toEqual([CLOSE_INTERNAL_ERROR]);
      expect(lines.map((l) => l.level)).toEqual(["error"]);
      expect(typeof lines[0]!.fields.error).toBe("string");
    }
  });

  test("a ProtocolError is the client's fault: 4400 with its code, logged as a warning", () => {
    const { ws, closes } = fakeWs();
    const { log, lines } = fakeLog();
    handleClientMessage(ws, log, 3, () => {
      throw new ProtocolError("CC_ERR_BAD_JSON", "message is not JSON");
    });
    expect(closes).toEqual([[CLOSE_BAD_MESSAGE, "CC_ERR_BAD_JSON: message is not JSON"]]);
    expect(lines).toMatchObject([{ level: "warn", fields: { viewer: 3, code: "CC_ERR_BAD_JSON" } }]);
  });

  test("a handler that returns closes nothing and logs nothing", () => {
    const { ws, closes } = fakeWs();
    const { log, lines } = fakeLog();
    let ran = false;
    handleClientMessage(ws, log, 1, () => void (ran = true));
    expect(ran).toBe(true);
    expect(closes).toEqual([]);
    expect(lines).toEqual([]);
  });

  describe("with real ws sockets", () => {
    let wss: WebSocketServer | undefined;
    const clients: WebSocket[] = [];
    afterEach(async () => {
      for (const c of clients) c.terminate();
      clients.length = 0;
      await new Promise<void>((resolve) => (wss ? wss.close(() => resolve()) : resolve()));
      wss = undefined;
    });

    test("a bug while handling one socket's message closes that socket with 1011; the process and the other socket go on", async () => {
      const { log, lines } = fakeLog();
      wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
      await new Promise<void>((resolve) => wss!.once("listening", () => resolve()));
      let id = 0;
      wss.on("connection", (ws) => {
        const viewer = ++id;
        ws.on("message", (data: Buffer) =>
          handleClientMessage(ws, log, viewer, () => {
            if (data.toString() === "boom") throw new Error("a bug");
            ws.send(`echo ${data.toString()}`);
          }),
        );
      });
      const uncaught: unknown[] = [];
      const onUncaught = (err: unknown): void => void uncaught.push(err);
      process.on("uncaughtException", onUncaught);
      try {
        const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
        const open = async (): Promise<WebSocket> => {
          const c = new WebSocket(url);
          clients.push(c);
          await new Promise<void>((resolve, reject) => c.once("open", () => resolve()).once("error", reject));
          return c;
        };
        const bad = await open();
        const good = await open();
        const badClosed = new Promise<[number, string]>((resolve) => bad.once("close", (code, why) => resolve([code, why.toString()])));
        bad.send("boom");
        const [code, reason] = await badClosed;
        expect(code).toBe(CLOSE_INTERNAL_ERROR);
        expect(reason).toMatch(/^CC_ERR_INTERNAL\b/);
        const reply = new Promise<string>((resolve) => good.once("message", (d: Buffer) => resolve(d.toString())));
        good.send("still there?");
        expect(await reply).toBe("echo still there?");
        expect(good.readyState).toBe(WebSocket.OPEN);
        expect(lines).toMatchObject([{ level: "error", fields: { viewer: 1, error: "a bug" } }]);
        expect(uncaught).toEqual([]);
      } finally {
        process.off("uncaughtException", onUncaught);
      }
    });
  });
});
