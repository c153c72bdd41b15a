// Bad input and limits against the real server and real pipelines: each attack gets a clear refusal
// (a documented HTTP status with a stable error code, or a WebSocket close code) while a viewer that
// was watching before it keeps receiving frames, in order.

import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { StreamsResponse } from "../../shared/api.js";
import { gapsEndAtKeyframes } from "../helpers/frame-checks.js";
import { mulberry32 } from "../helpers/random.js";
import { closeCodeOf, nextReply, openRaw, parseReply, rawGet, rawRequest, upgradeRequest, type RawReply } from "../helpers/raw-http.js";
import { isAlive, startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";
import { sleep } from "../helpers/until.js";
import { connectViewer, type TestViewer } from "../helpers/ws-viewer.js";

// Written out again rather than imported: the tests pin the documented values.
const CLOSE_PROTOCOL_ERROR = 1002;
const CLOSE_INVALID_DATA = 1007;
const CLOSE_MESSAGE_TOO_BIG = 1009;
const CLOSE_UNKNOWN_STREAM = 4404;
const MAX_VIEWERS_PER_STREAM = 3;
const MAX_VIEWERS = 4;
const CONNECTIONS_PER_SECOND = 20;
const REQUEST_TIMEOUT_S = 1;
const KEEP_ALIVE_TIMEOUT_MS = 5000;

/** Markers of files outside the web root that a traversal could reach. */
const PACKAGE_JSON = readFileSync(new URL("../../package.json", import.meta.url), "utf8");
const OUTSIDE = ['"name": "canvascast"', "canvascast server CLI", "root:x:0:0", PACKAGE_JSON.slice(0, 60)];

/** Waits until /api/streams reports these viewer counts, stream by stream (the server sees a close a moment later). */
async function viewerCountsReach(server: ServerProcess, expected: number[]): Promise<void> {
  const deadline = Date.now() + 5000;
  let counts: number[] = [];
  while (Date.now() < deadline) {
    counts = ((await (await fetch(server.url + "api/streams")).json()) as StreamsResponse).streams.map((s) => s.viewers);
    if (counts.join() === expected.join()) return;
    await sleep(50);
  }
  throw new Error(`viewer counts ${counts.join()} did not reach ${expected.join()}`);
}

function expectRefusal(reply: RawReply, status: number, code: string, what: string): void {
  expect(reply.status, what).toBe(status);
  expect(reply.headers["content-type"], what).toMatch(/^application\/json/);
  expect((JSON.parse(reply.body) as { error: string }).error, what).toBe(code);
}

describe("bad input while a viewer watches", () => {
  let server: ServerProcess;
  let watcher: TestViewer;
  let ackTimer: NodeJS.Timeout | undefined;
  const viewers: TestViewer[] = [];
  const viewer = async (path: string): Promise<TestViewer> => {
    const v = await connectViewer(server.wsBase + path);
    viewers.push(v);
    return v;
  };

  /** Runs an attack; the watcher must receive frames during it and go on after it with every gap ending at a keyframe. */
  async function underAttack(attack: () => Promise<void>): Promise<void> {
    const before = watcher.frames().length;
    await attack();
    await watcher.waitForFrames(before + 10, 10_000);
    expect(watcher.ws.readyState).toBe(WebSocket.OPEN);
    gapsEndAtKeyframes(watcher.frames());
  }

  beforeAll(async () => {
    server = await startServerProcess([
      "--stream", "cam0=test",
      "--stream", "cam1=test:ball",
      "--size", "160x120",
      "--fps", "30",
      "--keyframe-interval", "1",
      "--max-viewers-per-stream", String(MAX_VIEWERS_PER_STREAM),
      "--max-viewers", String(MAX_VIEWERS),
      "--max-connections-per-second", String(CONNECTIONS_PER_SECOND),
      "--request-timeout", String(REQUEST_TIMEOUT_S),
    ]);
    watcher = await connectViewer(server.wsBase + "ws/cam0");
    // A well-behaved viewer acks what it receives.
    ackTimer = setInterval(() => {
      const seq = watcher.frames().at(-1)?.header.seq;
      if (seq !== undefined && watcher.ws.readyState === WebSocket.OPEN) watcher.ws.send(JSON.stringify({ type: "ack", seq }));
    }, 100);
    await watcher.waitForFrames(10);
  });
  afterAll(async () => {
    clearInterval(ackTimer);
    for (const v of [watcher, ...viewers]) v?.close();
    await stopAllServers();
  });

  it("never serves a file outside the web root, in any encoding of a traversal", async () => {
    await underAttack(async () => {
      // The helper and the server are right about a path that exists.
      expect((await rawGet(server.url, "/index.html")).status).toBe(200);
      const paths = [
        "/../package.json",
        "/../../package.json",
        "/%2e%2e/%2e%2e/package.json",
        "/%2e%2e%2f%2e%2e%2fpackage.json",
        "/%2E%2E%2F%2E%2E%2Fpackage.json",
        "/.%2e/.%2e/package.json",
        "/%252e%252e%252f%252e%252e%252fpackage.json",
        "/..%5c..%5cpackage.json",
        "/..\\..\\package.json",
        "/%c0%ae%c0%ae/%c0%ae%c0%ae/package.json",
        "/%c0%ae%c0%ae%c0%af%c0%ae%c0%ae%c0%afpackage.json",
        "/%e0%80%ae%e0%80%ae/package.json",
        "/assets/../../../package.json",
        "/assets/%2e%2e/%2e%2e/%2e%2e/package.json",
        "/..;/..;/package.json",
        "/../server/main.js",
        "/%2e%2e/server/main.js",
        "//etc/passwd",
        "/%2fetc%2fpasswd",
        "/../../../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/index.html%00.json",
        "/%00../../package.json",
        "/ws/..%2f..%2f..%2fpackage.json",
        "/webm/..%2f..%2fetc%2fpasswd",
      ];
      for (const path of paths) {
        const reply = await rawGet(server.url, path);
        expectRefusal(reply, 404, "CC_ERR_NOT_FOUND", path);
        for (const marker of OUTSIDE) expect(reply.body, path).not.toContain(marker);
      }
      // The same names as WebSocket endpoints: refused with 404 before any WebSocket opens.
      const wsPaths = [
        "/ws/..%2f..%2fpackage.json",
        "/ws/%2e%2e",
        "/ws/..",
        "/ws/cam0/../cam1",
        "/ws/cam0%2f..%2fcam1",
        "/ws/cam0%00",
        "/ws/%c0%ae%c0%ae",
        "/ws/%252e%252e",
        "/ws/cam0%5c..",
        "/webm/..%2f..%2fetc%2fpasswd",
        "/webm/%2e%2e%2fcam0",
        "/ws/%zz",
        "/ws/",
      ];
      for (const path of wsPaths) {
        const reply = await rawRequest(server.url, upgradeRequest(server.url, path));
        expectRefusal(reply, 404, "CC_ERR_NOT_FOUND", path);
      }
      // A well-formed name that is not a stream opens and is closed with 4404.
      const unknown = await viewer("ws/nosuch");
      expect((await unknown.closed).code).toBe(CLOSE_UNKNOWN_STREAM);
    });
  });

  it("survives a message over 4096 bytes or not UTF-8 on an unknown stream's socket before its 4404 close completes", async () => {
    await underAttack(async () => {
      for (const path of ["ws/nosuch", "webm/nosuch"]) {
        for (const [what, data] of [
          ["5000 bytes", Buffer.alloc(5000, 0x78)],
          ["not UTF-8", Buffer.from([0xff])],
        ] as const) {
          const ws = new WebSocket(server.wsBase + path);
          ws.on("error", () => undefined);
          const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
          // Sent at once, so it reaches the server before the client's answer to the close frame.
          ws.once("open", () => ws.send(data, { binary: false }));
          expect(await closed, `${path}: ${what}`).toBe(CLOSE_UNKNOWN_STREAM);
          await sleep(100);
          expect(isAlive(server.pid), `the server survived ${what} on ${path}`).toBe(true);
        }
      }
    });
  });

  it("answers 431 to oversized headers and 414 or 431 to oversized URLs, for requests and upgrades", async () => {
    await underAttack(async () => {
      const { host } = new URL(server.url);
      const bigHeader = `X-Padding: ${"a".repeat(9000)}\r\n`;
      const cases: [string, string, number, string][] = [
        ["a 9 kB header", `GET / HTTP/1.1\r\nHost: ${host}\r\n${bigHeader}\r\n`, 431, "CC_ERR_HEADERS_TOO_LARGE"],
        ["200 headers of 50 bytes", `GET / HTTP/1.1\r\nHost: ${host}\r\n${`X-A: ${"b".repeat(45)}\r\n`.repeat(200)}\r\n`, 431, "CC_ERR_HEADERS_TOO_LARGE"],
        ["a 3 kB URL", `GET /${"a".repeat(3000)} HTTP/1.1\r\nHost: ${host}\r\n\r\n`, 414, "CC_ERR_URL_TOO_LONG"],
        ["a 3 kB query", `GET /api/streams?${"q=1&".repeat(750)} HTTP/1.1\r\nHost: ${host}\r\n\r\n`, 414, "CC_ERR_URL_TOO_LONG"],
        ["a 10 kB URL", `GET /${"a".repeat(10_000)} HTTP/1.1\r\nHost: ${host}\r\n\r\n`, 431, "CC_ERR_HEADERS_TOO_LARGE"],
        ["an upgrade with a 3 kB URL", upgradeRequest(server.url, `/ws/cam0?${"x".repeat(3000)}`), 414, "CC_ERR_URL_TOO_LONG"],
        ["an upgrade with a 9 kB header", upgradeRequest(server.url, "/ws/cam0", { extraHeaders: bigHeader }), 431, "CC_ERR_HEADERS_TOO_LARGE"],
      ];
      for (const [what, request, status, code] of cases) expectRefusal(await rawRequest(server.url, request), status, code, what);
    });
  });

  it("answers a bad WebSocket handshake with 400 (405 for another method) and closes the socket", async () => {
    await underAttack(async () => {
      const cases: [string, string, number][] = [
        ["no key", upgradeRequest(server.url, "/ws/cam0", { key: null }), 400],
        ["a key that is not 16 bytes", upgradeRequest(server.url, "/ws/cam0", { key: "c2hvcnQ=" }), 400],
        ["a key that is not base64", upgradeRequest(server.url, "/ws/cam0", { key: "!!!!!!!!!!!!!!!!!!!!!!==" }), 400],
        ["version 12", upgradeRequest(server.url, "/ws/cam0", { version: "12" }), 400],
        ["no version", upgradeRequest(server.url, "/ws/cam0", { version: null }), 400],
        ["Upgrade: h2c", upgradeRequest(server.url, "/ws/cam0", { upgrade: "h2c" }), 400],
        ["POST", upgradeRequest(server.url, "/webm/cam0", { method: "POST" }), 405],
      ];
      for (const [what, request, status] of cases) {
        const reply = await rawRequest(server.url, request);
        expect(reply.status, what).toBe(status);
        if (what === "version 12") expect(reply.headers["sec-websocket-version"]).toMatch(/13/);
      }
    });
  });

  it("answers garbage instead of HTTP with 400, and garbage after a handshake closes only that socket (1002, 1007 or 1009)", async () => {
    await underAttack(async () => {
      const random = mulberry32(7);
      const noise = Buffer.from(Array.from({ length: 512 }, () => Math.floor(random() * 256)));
      for (const bytes of [noise, Buffer.from("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), Buffer.from("HELLO\r\n\r\n")]) {
        expectRefusal(await rawRequest(server.url, bytes), 400, "CC_ERR_BAD_REQUEST", bytes.subarray(0, 8).toString("hex"));
      }
      const mask = Buffer.from([1, 2, 3, 4]);
      const afterHandshake: [string, Buffer, number[]][] = [
        ["text, not frames", Buffer.from("this is not a WebSocket frame\r\n"), [CLOSE_PROTOCOL_ERROR]],
        ["an unmasked frame", Buffer.from([0x81, 0x05, ...Buffer.from("hello")]), [CLOSE_PROTOCOL_ERROR]],
        ["an unknown opcode", Buffer.concat([Buffer.from([0x83, 0x80 | 4]), mask, Buffer.from("abcd")]), [CLOSE_PROTOCOL_ERROR]],
        // A length is checked before anything is allocated: 1 TiB declared, nothing sent.
        ["a 1 TiB frame header", Buffer.concat([Buffer.from([0x81, 0x80 | 127]), Buffer.from([0, 0, 1, 0, 0, 0, 0, 0]), mask]), [CLOSE_MESSAGE_TOO_BIG]],
        ["random bytes", noise, [CLOSE_PROTOCOL_ERROR, CLOSE_INVALID_DATA, CLOSE_MESSAGE_TOO_BIG]],
      ];
      for (const [what, bytes, codes] of afterHandshake) {
        const conn = await openRaw(server.url);
        conn.socket.write(upgradeRequest(server.url, "/ws/cam1"));
        await conn.waitForText("\r\n\r\n");
        expect(parseReply(conn.data()).status, what).toBe(101);
        conn.socket.write(bytes);
        const code = closeCodeOf(parseReply(await conn.closed).rest);
        expect(codes, `${what} → ${code}`).toContain(code);
      }
    });
  });

  it("times out half-open requests and upgrades with 408, and closes idle keep-alive connections", async () => {
    await underAttack(async () => {
      const { host } = new URL(server.url);
      const timeoutMs = (REQUEST_TIMEOUT_S + 5) * 1000;
      const silent = rawRequest(server.url, "", { timeoutMs });
      const halfHeaders = rawRequest(server.url, `GET / HTTP/1.1\r\nHost: ${host}\r\n`, { timeoutMs });
      const halfUpgrade = rawRequest(server.url, upgradeRequest(server.url, "/ws/cam0").replace(/\r\n$/, ""), { timeoutMs });
      // Slowloris: a header line every 100 ms, never the blank line that ends them.
      const drip = await openRaw(server.url);
      drip.socket.write(`GET / HTTP/1.1\r\nHost: ${host}\r\n`);
      const dripping = (async () => {
        for (let i = 0; i < 100 && !drip.socket.destroyed && drip.data().length === 0; i++) {
          drip.socket.write(`X-Drip-${i}: still coming\r\n`);
          await sleep(100);
        }
      })();
      // A complete request on a keep-alive connection, then nothing.
      const idle = await openRaw(server.url);
      idle.socket.write(`GET /api/streams HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      const idleClosed = Promise.race([
        idle.closed,
        sleep(KEEP_ALIVE_TIMEOUT_MS + 5000).then(() => {
          throw new Error("the idle keep-alive connection was not closed");
        }),
      ]);

      for (const [what, reply] of [
        ["no bytes at all", await silent],
        ["half the headers", await halfHeaders],
        ["half an upgrade", await halfUpgrade],
      ] as const) {
        expectRefusal(reply, 408, "CC_ERR_REQUEST_TIMEOUT", what);
      }
      await dripping;
      expectRefusal(parseReply(await drip.closed), 408, "CC_ERR_REQUEST_TIMEOUT", "slowloris");
      const idleReply = parseReply(await idleClosed);
      expect(idleReply.status).toBe(200);
      expect(idleReply.headers["keep-alive"]).toMatch(/timeout=5/);
    });
  });

  it("refuses viewers past the per-stream and total caps with 503 before the handshake, and admits again when one leaves", async () => {
    await underAttack(async () => {
      // Only the watcher is left from the tests before.
      await viewerCountsReach(server, [1, 0]);
      // cam0: the watcher, a frame-protocol viewer and a WebM viewer fill it: both modes count.
      const second = await viewer("ws/cam0");
      await viewer("webm/cam0");
      const full = await rawRequest(server.url, upgradeRequest(server.url, "/ws/cam0"));
      expectRefusal(full, 503, "CC_ERR_TOO_MANY_VIEWERS", "cam0 full");
      expect(Number(full.headers["retry-after"])).toBeGreaterThan(0);
      expectRefusal(await rawRequest(server.url, upgradeRequest(server.url, "/webm/cam0")), 503, "CC_ERR_TOO_MANY_VIEWERS", "cam0 full (webm)");
      // A browser's WebSocket sees a failed handshake (it cannot read the status).
      await expect(connectViewer(server.wsBase + "ws/cam0")).rejects.toThrow("HTTP 503");
      // cam1 has room, the server one more: 4 viewers in all.
      const cam1 = await viewer("ws/cam1");
      await cam1.waitForFrames(1);
      expectRefusal(await rawRequest(server.url, upgradeRequest(server.url, "/ws/cam1")), 503, "CC_ERR_TOO_MANY_VIEWERS", "server full");
      // One leaves: a new viewer of cam0 gets in and is served.
      second.close();
      await second.closed;
      await viewerCountsReach(server, [2, 1]);
      const again = await viewer("ws/cam0");
      await again.waitForFrames(5);
      for (const v of viewers) v.close();
      await Promise.all(viewers.map((v) => v.closed));
      await viewerCountsReach(server, [1, 0]);
    });
  });

  it("refuses a burst of connections from one address with 429 and Retry-After, others unaffected, and recovers", async () => {
    await underAttack(async () => {
      const attacker = { localAddress: "127.0.0.2" };
      const { host } = new URL(server.url);
      // A keep-alive connection the attacker's address opened before the burst.
      const kept = await openRaw(server.url, attacker);
      const keptRequest = `GET /api/streams HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
      kept.socket.write(keptRequest);
      expect((await nextReply(kept, 0)).status).toBe(200);
      // 200 at once from 127.0.0.2: plain requests and (bad-version) upgrades, which ws answers 400 when let through.
      const replies = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          i % 2 === 0 ? rawGet(server.url, "/api/streams", attacker) : rawRequest(server.url, upgradeRequest(server.url, "/ws/cam1", { version: "12" }), attacker),
        ),
      );
      const refused = replies.filter((r) => r.status === 429);
      expect(replies.every((r, i) => r.status === 429 || r.status === (i % 2 === 0 ? 200 : 400))).toBe(true);
      expect(refused.length).toBeGreaterThan(0);
      expect(replies.some((r) => r.status === 200)).toBe(true);
      expect(replies.some((r, i) => i % 2 === 1 && r.status === 429)).toBe(true);
      for (const r of refused) {
        expectRefusal(r, 429, "CC_ERR_RATE_LIMITED", "burst");
        expect(Number(r.headers["retry-after"])).toBeGreaterThanOrEqual(1);
      }
      // Requests on a connection already admitted do not count: only new connections do.
      const offset = kept.data().length;
      kept.socket.write(keptRequest);
      expect((await nextReply(kept, offset)).status).toBe(200);
      kept.destroy();
      // Another address is not limited by it.
      expect((await rawGet(server.url, "/api/streams")).status).toBe(200);
      // After Retry-After the attacker's address may connect again.
      await sleep(Number(refused.at(-1)!.headers["retry-after"]) * 1000 + 100);
      expect((await rawGet(server.url, "/api/streams", attacker)).status).toBe(200);
    });
  });
});
