// Transport (web/player/transport.ts) over real sockets: `ws`'s client (the browser's WebSocket API)
// against a `ws` server the test plays by hand (test/helpers/fake-stream-server.ts).

import { afterEach, beforeEach, describe, expect, test } from "vitest";
import type { PlayerStateChange } from "../../web/player/api.js";
import type { TransportEvents, TransportOptions } from "../../web/player/transport.js";
import { Transport } from "../../web/player/transport.js";
import { PlayerStats } from "../../web/player/stats.js";
import type { ClientConnection } from "../helpers/fake-stream-server.js";
import { FakeStreamServer, FLAG, openWsSocket } from "../helpers/fake-stream-server.js";
import { sleep, until } from "../helpers/until.js";

const CLOCK_OFFSET_MS = 5000;
/** Small, so that reconnects happen within a test's patience. */
const BACKOFF = { baseMs: 20, maxMs: 40 };

type Logged = { [K in keyof TransportEvents]: { readonly type: K; readonly payload: TransportEvents[K] } }[keyof TransportEvents];

interface Subject {
  readonly transport: Transport;
  readonly stats: PlayerStats;
  readonly events: Logged[];
  /** `status()` at each `status` event. */
  readonly statuses: PlayerStateChange[];
  of<K extends keyof TransportEvents>(type: K): TransportEvents[K][];
}

/** Waits for `cond`, polling every 5 ms: both ends run in this process, so conditions turn true within milliseconds. */
async function soon(cond: () => boolean, what: string): Promise<void> {
  await until(what, 5000, () => Promise.resolve(cond() ? true : undefined), 5);
}

let server: FakeStreamServer;
const transports: Transport[] = [];

beforeEach(async () => {
  server = await FakeStreamServer.start({ clockOffsetMs: CLOCK_OFFSET_MS });
});

afterEach(async () => {
  for (const t of transports.splice(0)) t.close();
  await server.close();
});

const EVENT_TYPES: (keyof TransportEvents)[] = ["connecting", "open", "hello", "state", "skipped", "playback", "frame", "media", "frameTime", "closed", "status", "error"];

function makeTransport(options: Partial<TransportOptions> & { path?: string } = {}): Subject {
  const stats = new PlayerStats();
  const endpoint = options.endpoint ?? "ws";
  const transport = new Transport(server.url(options.path ?? `/${endpoint}/cam0`), stats, {
    endpoint,
    reconnect: options.reconnect ?? true,
    backoff: options.backoff ?? BACKOFF,
    openSocket: openWsSocket,
  });
  transports.push(transport);
  const events: Logged[] = [];
  for (const type of EVENT_TYPES) transport.on(type, (payload: unknown) => events.push({ type, payload } as Logged));
  const statuses: PlayerStateChange[] = [];
  transport.on("status", () => statuses.push(transport.status(false, "waiting for hello")));
  const of = <K extends keyof TransportEvents>(type: K): TransportEvents[K][] =>
    events.filter((e) => e.type === type).map((e) => e.payload as TransportEvents[K]);
  return { transport, stats, events, statuses, of };
}

/** Starts `subject` and waits for its socket to be open at both ends; returns the server's side. */
async function connected(subject: Subject, index = server.connections.length): Promise<ClientConnection> {
  subject.transport.start();
  await soon(() => server.connections.length > index && subject.transport.open, "the socket to open");
  return server.connections[index] as ClientConnection;
}

describe("Transport (/ws/)", () => {
  test("parses hello, state, skipped and stats into events and stats; clock replies give the server's offset", async () => {
    const s = makeTransport();
    const conn = await connected(s);
    expect(s.events.slice(0, 4).map((e) => e.type)).toEqual(["connecting", "status", "open", "status"]);
    expect(s.transport.status(false, "waiting for hello")).toEqual({ state: "connecting", reason: "waiting for hello", retryAt: undefined });

    conn.hello({ width: 320, height: 240 });
    conn.state("starting", { reason: "warming up", retryInMs: 1000 });
    conn.json({ type: "skipped", reason: "lagging", frames: 31, lagMs: 466.2 });
    conn.json({ type: "stats", lagMs: 33.4, framesSent: 1804, skipped: { lagging: 31, "buffer-full": 2 } });
    conn.json({ type: "something-new", field: 1 }); // a later version's type: ignored
    await soon(() => s.of("skipped").length === 1 && s.stats.snapshot().lagMs !== null, "skipped and stats");

    expect(s.of("hello")).toMatchObject([{ type: "hello", width: 320, height: 240, framerate: 30 }]);
    expect(s.transport.hello?.width).toBe(320);
    expect(s.of("state")).toEqual([{ type: "state", state: "starting", reason: "warming up", retryInMs: 1000 }]);
    expect(s.transport.status(false, "w")).toMatchObject({ state: "starting", reason: "warming up" });
    expect(s.of("skipped")).toEqual([{ type: "skipped", reason: "lagging", frames: 31, lagMs: 466.2 }]);
    const snapshot = s.stats.snapshot();
    expect(snapshot.lagMs).toBe(33.4);
    expect(snapshot.skippedByServer).toEqual({ lagging: 31, "buffer-full": 2 });
    expect(s.of("error")).toEqual([]);

    // The clock probes start 100 ms after open; the server here runs 5 s ahead.
    const estimate = await until("a clock estimate", 5000, () => Promise.resolve(s.transport.clock.estimate()));
    expect(conn.sent("clock").length).toBeGreaterThanOrEqual(1);
    expect(Math.abs(estimate.offsetMs - CLOCK_OFFSET_MS)).toBeLessThan(50);
    // A frame's server time arrives on this page's clock.
    const serverTime = Date.now() + CLOCK_OFFSET_MS;
    conn.frame(1, FLAG.KEY, undefined, serverTime);
    await soon(() => s.of("frame").length === 1, "the frame");
    expect(Math.abs((s.of("frame")[0]?.header.serverTime ?? 0) - (serverTime - CLOCK_OFFSET_MS))).toBeLessThan(50);
  });

  test("binary frames become frame events; acks go out at most every 100 ms, carrying the newest seq", async () => {
    const s = makeTransport();
    const conn = await connected(s);
    conn.hello();
    // One burst: the client reads it in one go, so frames 2..10 arrive within 100 ms of the ack for 1.
    conn.frame(1, FLAG.KEY | FLAG.REPLAY, new Uint8Array([9, 8, 7]));
    for (let seq = 2; seq <= 10; seq++) conn.frame(seq, FLAG.REPLAY);
    await soon(() => s.of("frame").length === 10, "10 frames");
    const frames = s.of("frame");
    expect(frames.map((f) => f.header.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(frames[0]?.header.flags).toBe(FLAG.KEY | FLAG.REPLAY);
    expect([...(frames[0]?.data ?? [])]).toEqual([9, 8, 7]);
    expect(frames[1]?.header.pts).toBe(2 * 33_333);
    expect(s.stats.snapshot().framesReceived).toBe(10);

    await soon(() => conn.sent("ack").some((a) => a.seq === 10), "the ack for seq 10");
    expect(conn.sent("ack")).toEqual([
      { type: "ack", seq: 1 },
      { type: "ack", seq: 10 },
    ]);
    // Nothing new received: nothing more to ack.
    await sleep(150);
    expect(conn.sent("ack")).toHaveLength(2);

    // A binary message of a kind v1 does not know is skipped, like an unknown JSON type.
    conn.socket.send(new Uint8Array([9, 0, 24, 0, 1, 2, 3, 4]));
    conn.frame(11, 0);
    await soon(() => s.of("frame").length === 11, "frame 11");
    expect(s.of("error")).toEqual([]);
    await soon(() => conn.sent("ack").length === 3, "the ack for seq 11");
    expect(conn.sent("ack")[2]).toEqual({ type: "ack", seq: 11 });
  });

  test("a malformed message is an error event with a stable code, and the socket stays open", async () => {
    const s = makeTransport();
    const conn = await connected(s);
    conn.text("{not json");
    conn.json({ type: "hello", protocol: 1 }); // a known type with missing fields
    conn.socket.send(new Uint8Array([1, 0])); // shorter than any header
    conn.hello();
    await soon(() => s.of("hello").length === 1, "the hello after the bad messages");
    expect(s.of("error").map((e) => e.code)).toEqual(["CC_ERR_BAD_JSON", "CC_ERR_BAD_MESSAGE", "CC_ERR_SHORT_MESSAGE"]);
    expect(s.of("error").every((e) => !e.fatal)).toBe(true);
    expect(s.transport.open).toBe(true);
    expect(conn.open).toBe(true);
    expect(s.of("closed")).toEqual([]);
  });

  test("pause() sends pause, resume() sends resume; frames in flight while paused are dropped", async () => {
    const s = makeTransport();
    const conn = await connected(s);
    conn.hello();
    s.transport.pause();
    s.transport.pause(); // once is enough
    expect(s.transport.paused).toBe(true);
    expect(s.transport.resync()).toBe(false); // paused: the resume replays anyway
    await soon(() => conn.control.length === 1, "pause");
    expect(conn.control).toEqual([{ type: "pause" }]);

    conn.frame(1, FLAG.KEY); // sent before the server read the pause
    await soon(() => s.stats.snapshot().framesDropped === 1, "the frame to be dropped");
    expect(s.of("frame")).toEqual([]);

    s.transport.resume();
    s.transport.resume();
    expect(s.transport.resync()).toBe(true);
    await soon(() => conn.control.length >= 3, "resume and resync");
    expect(conn.control.filter((m) => m.type !== "ack")).toEqual([{ type: "pause" }, { type: "resume" }, { type: "resync" }]);
    conn.frame(2, FLAG.KEY | FLAG.REPLAY | FLAG.DISCONTINUITY);
    await soon(() => s.of("frame").length === 1, "a frame after resume");
  });

  test("seek() asks for the recording, keeps recorded server times as they are, and a new socket asks again from the last recorded frame; live() and the server's live end it", async () => {
    const RECORDED = 0x08;
    const s = makeTransport();
    const conn = await connected(s);
    conn.hello();
    s.transport.seek(1_796_000_000_000);
    await soon(() => conn.sent("seek").length === 1, "seek");
    expect(conn.sent("seek")).toEqual([{ type: "seek", at: 1_796_000_000_000 }]);
    conn.json({ type: "playback", mode: "recorded", at: 1_795_999_999_500 });
    conn.frame(0, FLAG.KEY | FLAG.DISCONTINUITY | RECORDED, undefined, 1_795_999_999_500);
    conn.frame(1, RECORDED, undefined, 1_795_999_999_533);
    await soon(() => s.of("frame").length === 2, "two recorded frames");
    // When it was recorded, on the server's clock: not moved by the clock offset as live frames are.
    expect(s.of("frame").map((f) => f.header.serverTime)).toEqual([1_795_999_999_500, 1_795_999_999_533]);
    expect(s.of("playback")).toEqual([{ type: "playback", mode: "recorded", at: 1_795_999_999_500 }]);

    conn.close(1011, "gone");
    const next = await connected(s, 1);
    await soon(() => next.sent("seek").length === 1, "seek on the new socket");
    expect(next.sent("seek")).toEqual([{ type: "seek", at: 1_795_999_999_533 }]);

    s.transport.live();
    await soon(() => next.sent("live").length === 1, "live");
    next.close(1011, "gone again");
    const third = await connected(s, 2);
    third.hello();
    await sleep(50);
    expect(third.sent("seek")).toEqual([]);

    // The server going back to live by itself ends it too.
    s.transport.seek(1_796_000_000_000);
    await soon(() => third.sent("seek").length === 1, "seek on the third socket");
    third.json({ type: "playback", mode: "live" });
    await soon(() => s.of("playback").length === 2, "the server's live");
    third.close(1011, "and again");
    const fourth = await connected(s, 3);
    fourth.hello();
    await sleep(50);
    expect(fourth.sent("seek")).toEqual([]);
  });

  test("paused before the socket opened: pause is sent as it opens", async () => {
    const s = makeTransport();
    s.transport.pause();
    const conn = await connected(s);
    await soon(() => conn.control.length === 1, "pause");
    expect(conn.control).toEqual([{ type: "pause" }]);
  });

  test("the server closes: closed, reconnecting with retryAt, a new socket after the backoff", async () => {
    const s = makeTransport();
    const first = await connected(s);
    first.state("live");
    await soon(() => s.of("state").length === 1, "state");
    const before = performance.now();
    first.close(1001, "shutting down");
    const second = await connected(s, 1);
    expect(s.of("closed")).toEqual([{ code: 1001, reason: "shutting down" }]);
    // Between the two sockets: reconnecting, with the close reason and when it retries.
    const reconnecting = s.statuses.filter((st) => st.state === "reconnecting");
    expect(reconnecting).toHaveLength(1);
    expect(reconnecting[0]?.reason).toBe("connection closed: shutting down");
    // The first retry waits between half the base delay and all of it.
    expect(reconnecting[0]?.retryAt).toBeGreaterThanOrEqual(before + BACKOFF.baseMs / 2);
    expect(reconnecting[0]?.retryAt).toBeLessThanOrEqual(performance.now());
    expect(s.events.map((e) => e.type).filter((t) => t === "connecting" || t === "open" || t === "closed")).toEqual([
      "connecting",
      "open",
      "closed",
      "connecting",
      "open",
    ]);

    expect(second.path).toBe("/ws/cam0");
    // What the last socket's server said no longer holds.
    expect(s.transport.status(false, "waiting for hello")).toEqual({ state: "connecting", reason: "waiting for hello", retryAt: undefined });
    expect(s.of("open")).toHaveLength(2);
    expect(s.stats.snapshot().reconnects).toBe(1);
  });

  test("reconnect off: a closed socket leaves it offline, and nothing reopens it", async () => {
    const s = makeTransport({ reconnect: false });
    const conn = await connected(s);
    conn.close(1000, "bye");
    await soon(() => s.of("closed").length === 1, "closed");
    expect(s.transport.status(false, "w")).toEqual({ state: "offline", reason: "connection closed: bye", retryAt: undefined });
    // Not even a pause and resume.
    s.transport.pause();
    s.transport.resume();
    await sleep(4 * BACKOFF.maxMs);
    expect(server.connections).toHaveLength(1);
    expect(s.transport.status(false, "w").state).toBe("offline");
  });

  test("restart(reason) drops the socket with that reason and opens a new one after the backoff", async () => {
    const s = makeTransport();
    const first = await connected(s);
    s.transport.restart("recovering: the media failed");
    expect(s.of("closed")).toEqual([{ code: 1000, reason: "recovering: the media failed" }]);
    expect(s.transport.status(false, "w")).toMatchObject({ state: "reconnecting", reason: "recovering: the media failed" });
    expect(s.transport.status(false, "w").retryAt).toBeGreaterThan(performance.now());
    await soon(() => first.closed !== undefined, "the server to see the close");
    expect(first.closed).toEqual({ code: 1000, reason: "recovering: the media failed" });
    s.transport.start(); // only ever opens the first socket: not one more beside the pending reconnect
    await connected(s, 1);
    await sleep(2 * BACKOFF.maxMs);
    expect(server.connections).toHaveLength(2);

    // Reasons longer than a close frame holds (123 bytes of UTF-8) are cut, not thrown at the caller.
    s.transport.restart(`recovering: ${"é".repeat(200)}`);
    const second = server.connections[1];
    await soon(() => second?.closed !== undefined, "the second close");
    expect(Buffer.byteLength(second?.closed?.reason ?? "")).toBeLessThanOrEqual(123);
    expect(second?.closed?.reason.startsWith("recovering: é")).toBe(true);
    await connected(s, 2);
  });

  test("close() closes the socket and stops reconnecting; twice is safe; nothing is emitted after it", async () => {
    const s = makeTransport();
    const first = await connected(s);
    // Closed while its reconnect is pending (from a listener, as a page might).
    let count = 0;
    s.transport.on("status", () => {
      if (s.transport.status(false, "w").state !== "reconnecting") return;
      s.transport.close();
      s.transport.close();
      count = s.events.length;
    });
    first.close(1001);
    await soon(() => count > 0, "reconnecting");
    await sleep(4 * BACKOFF.maxMs);
    expect(server.connections).toHaveLength(1);
    expect(s.events).toHaveLength(count);

    // Closing an open socket says so to the server.
    const t = makeTransport();
    const conn = await connected(t);
    t.transport.close();
    await soon(() => conn.closed !== undefined, "the close");
    expect(conn.closed).toEqual({ code: 1000, reason: "player closed" });
    expect(t.events.at(-1)?.type).toBe("status");
    // Closing one that is still connecting is as quiet.
    const early = makeTransport();
    early.transport.start();
    early.transport.close();
    const earlyCount = early.events.length;
    await sleep(100);
    expect(early.events).toHaveLength(earlyCount);
    expect(early.transport.open).toBe(false);
  });
});

describe("Transport (/webm/)", () => {
  test("media messages in order (the first is the init segment); ?meta=1 frame times; no client messages", async () => {
    const s = makeTransport({ endpoint: "webm", path: "/webm/cam0?meta=1" });
    const conn = await connected(s);
    conn.socket.send(new Uint8Array([0x1a, 0x45, 0xdf, 0xa3]));
    conn.json({ type: "frame", mediaTimeMs: 0, serverTime: 1_700_000_000_000, seq: 7, key: true });
    conn.socket.send(new Uint8Array([0x1f, 0x43, 0xb6, 0x75, 1]));
    await soon(() => s.of("media").length === 2, "two media messages");
    expect(s.of("media").map((m) => [m.index, new Uint8Array(m.data)[0]])).toEqual([
      [0, 0x1a],
      [1, 0x1f],
    ]);
    expect(s.of("frameTime")).toEqual([{ mediaTimeMs: 0, serverTime: 1_700_000_000_000 }]);
    // Only the frames count as received, not the init segment.
    expect(s.stats.snapshot().framesReceived).toBe(1);
    conn.json({ type: "frame", mediaTimeMs: "soon" });
    await soon(() => s.of("error").length === 1, "the error");
    expect(s.of("error")[0]?.code).toBe("CC_ERR_BAD_MESSAGE");
    expect(s.transport.resync()).toBe(false);
    await sleep(150); // past the first clock probe a /ws/ socket would send
    expect(conn.received).toEqual([]);
  });

  test("pause closes the socket (no reconnect); resume opens a new one", async () => {
    const s = makeTransport({ endpoint: "webm" });
    const first = await connected(s);
    s.transport.pause();
    expect(s.of("closed")).toEqual([{ code: 1000, reason: "paused" }]);
    await soon(() => first.closed !== undefined, "the server to see the close");
    expect(first.closed).toEqual({ code: 1000, reason: "paused" });
    await sleep(4 * BACKOFF.maxMs);
    expect(server.connections).toHaveLength(1);

    s.transport.resume();
    const second = await connected(s, 1);
    expect(second.path).toBe("/webm/cam0");
    expect(first.received).toEqual([]);
  });

  test("paused before start: no socket until resume", async () => {
    const s = makeTransport({ endpoint: "webm" });
    s.transport.pause();
    s.transport.start();
    await sleep(100);
    expect(server.connections).toHaveLength(0);
    s.transport.resume();
    await connected(s, 0);
  });

  test("4409 (the picture size changed) reconnects at once, whatever the backoff", async () => {
    const s = makeTransport({ endpoint: "webm", backoff: { baseMs: 60_000, maxMs: 60_000 } });
    const first = await connected(s);
    first.close(4409, "stream format changed");
    await connected(s, 1);
    expect(s.of("closed")).toEqual([{ code: 4409, reason: "stream format changed" }]);
  });
});
