// CanvasCastPlayer (web/player/player.ts) with the WebCodecs backend, in Node: what only a browser
// has is faked — VideoDecoder / EncodedVideoChunk / VideoFrame globals and a canvas whose 2D
// context records what is drawn — and the sockets are real (`ws`'s client against a server the test
// plays by hand, test/helpers/fake-stream-server.ts).
//
// The fake decoder outputs one frame per decode(), asynchronously, sized from its configuration and
// tagged with the chunk's first byte (the fake server's frames carry their seq there); a chunk
// starting with CORRUPT makes it fail as a real decoder does (error callback, state "closed").
// `holdDecoders()` keeps outputs back until `releaseDecoders()`, as a decoder with latency would.

import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import type { PlayerError, PlayerOptions, PlayerStateChange } from "../../web/player/api.js";
import { CanvasCastPlayer } from "../../web/player/player.js";
import type { SocketLike } from "../../web/player/transport.js";
import { webCodecsBackend } from "../../web/player/webcodecs-backend.js";
import type { HelloMessage } from "../../shared/protocol.js";
import type { ClientConnection } from "../helpers/fake-stream-server.js";
import { FakeStreamServer, FLAG, openWsSocket } from "../helpers/fake-stream-server.js";
import { sleep, until } from "../helpers/until.js";
import { GdpParser } from "../../server/source/gdp.js";
import { readFileSync } from "node:fs";

/** First payload byte that makes the fake decoder fail. */
const CORRUPT = 0xba;
/** The player asks for a replay at most this often. */
const RESYNC_INTERVAL_MS = 1000;

class FakeVideoFrame {
  static readonly all: FakeVideoFrame[] = [];
  closed = false;
  constructor(
    readonly timestamp: number,
    readonly displayWidth: number,
    readonly displayHeight: number,
    /** The chunk's first byte: the seq of the fake server's frames. */
    readonly payload: number,
  ) {
    FakeVideoFrame.all.push(this);
  }
  close(): void {
    this.closed = true;
  }
}

class FakeEncodedVideoChunk {
  readonly type: EncodedVideoChunkType;
  readonly timestamp: number;
  readonly data: Uint8Array;
  constructor(init: EncodedVideoChunkInit) {
    this.type = init.type;
    this.timestamp = init.timestamp;
    this.data = init.data instanceof Uint8Array ? init.data.slice() : new Uint8Array(init.data as ArrayBuffer);
  }
}

let held: (() => void)[] | undefined;
const holdDecoders = (): void => void (held = []);
function releaseDecoders(): void {
  const jobs = held ?? [];
  held = undefined;
  for (const job of jobs) job();
}

class FakeVideoDecoder {
  static readonly all: FakeVideoDecoder[] = [];
  state: CodecState = "unconfigured";
  decodeQueueSize = 0;
  config: VideoDecoderConfig | undefined;
  /** The size of the last keyframe decoded. */
  #size: { width: number; height: number } | undefined;
  readonly chunks: FakeEncodedVideoChunk[] = [];
  readonly #init: VideoDecoderInit;
  /** Bumped by reset() and close(): work queued before is discarded, as the real one does. */
  #generation = 0;

  constructor(init: VideoDecoderInit) {
    this.#init = init;
    FakeVideoDecoder.all.push(this);
  }

  /** The codecs this fake decodes, as isConfigSupported answers. */
  static readonly codecs = new Set(["vp8", "vp09.00.21.08"]);

  static isConfigSupported(config: VideoDecoderConfig): Promise<VideoDecoderSupport> {
    return Promise.resolve({ supported: FakeVideoDecoder.codecs.has(config.codec), config });
  }

  configure(config: VideoDecoderConfig): void {
    if (this.state === "closed") throw new DOMException("decoder is closed", "InvalidStateError");
    this.config = config;
    this.state = "configured";
  }

  decode(chunk: FakeEncodedVideoChunk): void {
    if (this.state !== "configured") throw new DOMException(`decode() while ${this.state}`, "InvalidStateError");
    this.chunks.push(chunk);
    this.decodeQueueSize++;
    const generation = this.#generation;
    const job = (): void => {
      if (generation !== this.#generation || this.state !== "configured") return;
      this.decodeQueueSize--;
      const config = this.config as VideoDecoderConfig;
      if (chunk.data[0] === CORRUPT) {
        this.state = "closed";
        this.#generation++;
        this.#init.error(new DOMException("corrupt VP8 frame", "EncodingError"));
        return;
      }
      // Like VP8, a keyframe carries its size (bytes 4–7 here, u16 LE); the configured one is only a hint.
      if (chunk.type === "key" && chunk.data.length >= 8) {
        const d = chunk.data;
        this.#size = { width: d[4]! | (d[5]! << 8), height: d[6]! | (d[7]! << 8) };
      }
      const width = this.#size?.width ?? config.codedWidth ?? 0;
      const height = this.#size?.height ?? config.codedHeight ?? 0;
      this.#init.output(new FakeVideoFrame(chunk.timestamp, width, height, chunk.data[0] ?? -1) as unknown as VideoFrame);
    };
    if (held !== undefined) held.push(job);
    else setTimeout(job, 0);
  }

  reset(): void {
    if (this.state === "closed") throw new DOMException("decoder is closed", "InvalidStateError");
    this.#generation++;
    this.decodeQueueSize = 0;
    this.state = "unconfigured";
  }

  close(): void {
    this.#generation++;
    this.decodeQueueSize = 0;
    this.state = "closed";
  }
}

type CanvasOp = { readonly op: "draw"; readonly frame: FakeVideoFrame } | { readonly op: "fill"; readonly style: string };

/** A canvas whose 2D context records drawImage and fillRect. */
class FakeCanvas {
  width = 300;
  height = 150;
  readonly style = { objectFit: "" };
  readonly ops: CanvasOp[] = [];
  readonly #ctx = {
    fillStyle: "",
    fillRect: (): void => void this.ops.push({ op: "fill", style: this.#ctx.fillStyle }),
    drawImage: (frame: FakeVideoFrame): void => void this.ops.push({ op: "draw", frame }),
  };
  getContext(type: string): unknown {
    return type === "2d" ? this.#ctx : null;
  }
  toBlob(callback: (blob: Blob | null) => void, type?: string): void {
    callback(new Blob([`${this.width}x${this.height}`], { type: type ?? "image/png" }));
  }
  /** The seqs of the frames drawn, in order. */
  get drawn(): number[] {
    return this.ops.flatMap((o) => (o.op === "draw" ? [o.frame.payload] : []));
  }
}

interface Subject {
  readonly player: CanvasCastPlayer;
  readonly canvas: FakeCanvas;
  readonly states: PlayerStateChange[];
  readonly errors: PlayerError[];
  readonly hellos: HelloMessage[];
  /** Every event the player emitted (but stats), in order. */
  readonly events: string[];
}

/** Waits for `cond`, polling every 5 ms: both ends run in this process, so conditions turn true within milliseconds. */
async function soon(cond: () => boolean, what: string): Promise<void> {
  await until(what, 5000, () => Promise.resolve(cond() ? true : undefined), 5);
}

let server: FakeStreamServer;
const players: CanvasCastPlayer[] = [];
/** Every message the players sent, as they sent it (performance.now()). */
let clientSent: { readonly type: string; readonly at: number }[];

/** The test's sockets, recording what the player sends when it sends it. */
function openRecordingSocket(url: string): SocketLike {
  const socket = openWsSocket(url);
  const send = socket.send.bind(socket);
  socket.send = (data: string): void => {
    clientSent.push({ type: (JSON.parse(data) as { type: string }).type, at: performance.now() });
    send(data);
  };
  return socket;
}
/** What reached the global reportError (a listener that threw, a frame callback that threw): nothing should. */
let reported: unknown[];

beforeEach(async () => {
  server = await FakeStreamServer.start();
  reported = [];
  clientSent = [];
  held = undefined;
  FakeVideoFrame.all.length = 0;
  FakeVideoDecoder.all.length = 0;
  vi.stubGlobal("VideoDecoder", FakeVideoDecoder);
  vi.stubGlobal("EncodedVideoChunk", FakeEncodedVideoChunk);
  vi.stubGlobal("VideoFrame", FakeVideoFrame);
  vi.stubGlobal("reportError", (err: unknown) => reported.push(err));
});

afterEach(async () => {
  for (const p of players.splice(0)) p.close();
  vi.unstubAllGlobals();
  await server.close();
  expect(reported).toEqual([]);
});

function makePlayer(options: PlayerOptions = {}): Subject {
  const canvas = new FakeCanvas();
  const player = new CanvasCastPlayer(
    webCodecsBackend(canvas as unknown as HTMLCanvasElement),
    server.url("/ws/cam0"),
    { reconnectDelayMs: 40, maxReconnectDelayMs: 80, statsIntervalMs: 60_000, ...options },
    { thread: "main", openSocket: openRecordingSocket },
  );
  players.push(player);
  const subject: Subject = { player, canvas, states: [], errors: [], hellos: [], events: [] };
  player.on("state", (s) => void (subject.states.push(s), subject.events.push(`state ${s.state}`)));
  player.on("error", (e) => void (subject.errors.push(e), subject.events.push(`error ${e.code}`)));
  player.on("hello", (h) => void (subject.hellos.push(h), subject.events.push("hello")));
  player.on("skipped", () => void subject.events.push("skipped"));
  return subject;
}

/** Waits for connection `index` to be open at both ends (the player asks for hello); returns the server's side. */
async function connection(index: number): Promise<ClientConnection> {
  await soon(() => server.connections[index]?.open === true, `connection ${index}`);
  return server.connections[index] as ClientConnection;
}

/** A player showing frame 1 of a live stream. */
async function livePlayer(options: PlayerOptions = {}): Promise<{ subject: Subject; conn: ClientConnection }> {
  const subject = makePlayer(options);
  const conn = await connection(0);
  conn.hello();
  conn.state("live");
  conn.frame(1, FLAG.KEY);
  await soon(() => subject.player.state === "live", "live");
  return { subject, conn };
}

describe("CanvasCastPlayer (WebCodecs, fake decoder and canvas, real sockets)", () => {
  test("connecting → hello → a keyframe → live, once the first picture is painted", async () => {
    const s = makePlayer();
    expect(s.player.state).toBe("connecting");
    expect(s.player.reason).toBe("opening connection");
    const drawnAtLive: number[] = [];
    s.player.on("state", (st) => void (st.state === "live" && drawnAtLive.push(s.canvas.drawn.length)));
    const conn = await connection(0);
    await soon(() => s.player.reason === "waiting for hello", "waiting for hello");
    conn.hello();
    conn.state("live");
    await soon(() => s.player.reason === "waiting for a keyframe", "waiting for a keyframe");
    expect(s.hellos).toMatchObject([{ width: 640, height: 480 }]);
    expect(s.player.hello?.width).toBe(640);
    // Configured before hello, so that the decoder starts while the socket connects: VP8 needs no size.
    expect(FakeVideoDecoder.all[0]?.config).toMatchObject({ codec: "vp8", optimizeForLatency: true });

    conn.frame(1, FLAG.KEY);
    await soon(() => s.player.state === "live", "live");
    expect(drawnAtLive).toEqual([1]);
    expect(s.canvas.drawn).toEqual([1]);
    expect([s.canvas.width, s.canvas.height]).toEqual([640, 480]);
    expect(s.states.map((st) => [st.state, st.reason])).toEqual([
      ["connecting", "waiting for hello"],
      ["connecting", "waiting for a keyframe"],
      ["live", undefined],
    ]);
    conn.frame(2, 0);
    await soon(() => s.canvas.drawn.length === 2, "frame 2");
    const stats = s.player.stats();
    expect(stats).toMatchObject({ framesReceived: 2, framesDecoded: 2, framesPainted: 2, joinedFromReplay: false, latencySamples: 2 });
    expect(stats.firstPaintMs).not.toBeNull();
    await expect(s.player.snapshot()).resolves.toBeInstanceOf(Blob);
    expect(s.errors).toEqual([]);
  });

  test("another codec in hello: checked with isConfigSupported, frames held meanwhile, then decoded with it", async () => {
    const s = makePlayer();
    const conn = await connection(0);
    conn.hello({ width: 640, height: 480 }, "vp09.00.21.08");
    conn.state("live");
    conn.frame(1, FLAG.KEY | FLAG.REPLAY);
    conn.frame(2, FLAG.REPLAY);
    await soon(() => s.player.state === "live", "live");
    const decoder = FakeVideoDecoder.all.at(-1)!;
    expect(decoder.config).toMatchObject({ codec: "vp09.00.21.08", codedWidth: 640, codedHeight: 480 });
    expect(decoder.chunks.map((c) => c.type)).toEqual(["key", "delta"]);
    expect(s.errors).toEqual([]);
  });

  test("a codec the browser cannot decode: fatal CC_ERR_CODEC_UNSUPPORTED naming it, nothing decoded", async () => {
    const s = makePlayer();
    const conn = await connection(0);
    conn.hello({ width: 640, height: 480 }, "hev1.1.6.L93.B0");
    conn.state("live");
    conn.frame(1, FLAG.KEY);
    await soon(() => s.errors.length > 0, "an error");
    expect(s.errors[0]).toMatchObject({ code: "CC_ERR_CODEC_UNSUPPORTED", fatal: true });
    expect(s.errors[0]!.message).toContain("hev1.1.6.L93.B0");
    expect(FakeVideoDecoder.all.flatMap((d) => d.chunks)).toEqual([]);
    // It stops: the state says why, and its socket is closed.
    expect(s.player.state).toBe("unsupported");
    expect(s.player.reason).toContain("CC_ERR_CODEC_UNSUPPORTED");
    await soon(() => conn.closed !== undefined, "the socket closed");
  });

  test("a replayed GOP is decoded whole and only its newest frame painted", async () => {
    const s = makePlayer();
    const conn = await connection(0);
    conn.hello();
    conn.state("live");
    holdDecoders();
    conn.frame(1, FLAG.KEY | FLAG.REPLAY);
    for (let seq = 2; seq <= 5; seq++) conn.frame(seq, FLAG.REPLAY);
    await soon(() => FakeVideoDecoder.all[0]?.chunks.length === 5, "5 chunks in the decoder");
    releaseDecoders();
    await soon(() => s.player.state === "live", "live");
    expect(s.canvas.drawn).toEqual([5]);
    expect(s.player.stats()).toMatchObject({ framesDecoded: 5, framesPainted: 1, framesReplaySkipped: 4, joinedFromReplay: true, latencySamples: 0 });

    conn.frame(6, 0);
    await soon(() => s.canvas.drawn.length === 2, "the live frame");
    expect(s.canvas.drawn).toEqual([5, 6]);
    expect(s.player.stats().latencySamples).toBe(1);
  });

  test("replayed frames no later frame depends on are not decoded at all", async () => {
    // Real interframes of the server's two temporal layers: d b d b after the keyframe.
    const layered = new GdpParser()
      .push(new Uint8Array(readFileSync(new URL("../fixtures/videotestsrc-vp8-layers-160x120.gdp", import.meta.url))))
      .flatMap((p) => (p.type === "buffer" ? [p.payload] : []));
    const s = makePlayer();
    const conn = await connection(0);
    conn.hello();
    conn.state("live");
    holdDecoders();
    conn.frame(1, FLAG.KEY | FLAG.REPLAY);
    for (let seq = 2; seq <= 5; seq++) conn.frame(seq, FLAG.REPLAY, layered[seq - 1]);
    await soon(() => s.player.stats().framesReceived === 5, "the replay received");
    await soon(() => FakeVideoDecoder.all[0]?.chunks.length === 3, "3 chunks in the decoder");
    releaseDecoders();
    await soon(() => s.player.state === "live", "live");
    expect(FakeVideoDecoder.all[0]!.chunks.map((c) => c.data[0])).toEqual([1, layered[2]![0], layered[4]![0]]);
    expect(s.player.stats()).toMatchObject({ framesDecoded: 3, framesPainted: 1, framesReplaySkipped: 2, framesReplayDisposable: 2 });

    // Live frames are all decoded, whatever they are.
    conn.frame(6, 0, layered[6]);
    conn.frame(7, 0, layered[7]);
    await soon(() => s.player.stats().framesDecoded === 5, "the live frames decoded");
    expect(s.player.stats().framesReplayDisposable).toBe(2);
  });

  test("the server restarting its pipeline: state restarting, the picture dropped, live again from the next keyframe", async () => {
    const { subject: s, conn } = await livePlayer();
    conn.state("restarting", { reason: "pipeline exited", retryInMs: 2000 });
    await soon(() => s.player.state === "restarting", "restarting");
    expect(s.player.reason).toBe("pipeline exited");
    expect(s.player.retryAt).toBeGreaterThan(performance.now());
    // The frozen picture goes: black at the next frame, and no snapshot of it.
    await soon(() => s.canvas.ops.at(-1)?.op === "fill", "the canvas painted black");
    await expect(s.player.snapshot()).rejects.toMatchObject({ name: "InvalidStateError" });

    conn.frame(2, 0); // a delta frame cannot be decoded before the next keyframe
    conn.state("live");
    conn.frame(3, FLAG.KEY | FLAG.DISCONTINUITY);
    await soon(() => s.player.state === "live", "live again");
    expect(s.canvas.drawn).toEqual([1, 3]);
    await expect(s.player.snapshot()).resolves.toBeInstanceOf(Blob);
  });

  test("a decoder error: CC_ERR_DECODE, and a resync asked for at most once a second", async () => {
    const { subject: s, conn } = await livePlayer();
    conn.frame(2, FLAG.KEY, new Uint8Array([CORRUPT]));
    await soon(() => conn.sent("resync").length === 1, "a resync");
    expect(s.errors.map((e) => [e.code, e.fatal])).toEqual([["CC_ERR_DECODE", false]]);
    // Another broken keyframe right away: an error, but the resync waits for the interval.
    conn.frame(3, FLAG.KEY, new Uint8Array([CORRUPT]));
    await soon(() => s.errors.length === 2, "the second error");
    // No keyframe came in between: it asks again, once the interval has passed.
    await soon(() => conn.sent("resync").length === 2, "the second resync");
    const [first, second] = clientSent.filter((m) => m.type === "resync").map((m) => m.at);
    expect((second ?? 0) - (first ?? 0)).toBeGreaterThanOrEqual(RESYNC_INTERVAL_MS - 2); // timers may run a ms early
    conn.frame(4, FLAG.KEY | FLAG.REPLAY | FLAG.DISCONTINUITY);
    await soon(() => s.canvas.drawn.at(-1) === 4, "the replayed keyframe painted");
    expect(s.player.state).toBe("live");
    expect(s.player.stats()).toMatchObject({ decoderErrors: 2, resyncs: 2 });
  });

  test("pause() and resume(): paused state and pausedFor, pause/resume sent, the codec released and rebuilt", async () => {
    const { subject: s, conn } = await livePlayer();
    s.player.pause();
    expect(s.player.state).toBe("paused");
    expect(s.player.reason).toBe("paused");
    expect(s.player.pausedFor).toEqual(["user"]);
    expect(FakeVideoDecoder.all.map((d) => d.state)).toEqual(["closed"]);
    await soon(() => conn.control.some((m) => m.type === "pause"), "pause");
    conn.frame(2, 0); // in flight before the server read the pause
    await soon(() => s.player.stats().framesDropped === 1, "the frame dropped");

    s.player.resume();
    expect(s.player.pausedFor).toEqual([]);
    expect(s.player.state).toBe("connecting");
    expect(s.player.reason).toBe("waiting for a keyframe");
    await soon(() => conn.control.some((m) => m.type === "resume"), "resume");
    conn.frame(3, FLAG.KEY | FLAG.REPLAY | FLAG.DISCONTINUITY);
    await soon(() => s.player.state === "live", "live after resume");
    expect(s.canvas.drawn).toEqual([1, 3]);
    expect(FakeVideoDecoder.all.map((d) => d.state)).toEqual(["closed", "configured"]);
    expect(conn.control.filter((m) => m.type !== "ack")).toEqual([{ type: "pause" }, { type: "resume" }]);
  });

  test("setPausedFor: reasons combine; the stream resumes only when none is left", async () => {
    const { subject: s, conn } = await livePlayer();
    s.player.setPausedFor("offscreen", true);
    s.player.pause();
    expect(s.player.pausedFor).toEqual(["offscreen", "user"]);
    expect(s.player.reason).toBe("out of view, paused");
    s.player.resume();
    expect(s.player.state).toBe("paused");
    expect(s.player.reason).toBe("out of view");
    await sleep(100);
    expect(conn.control.filter((m) => m.type !== "ack")).toEqual([{ type: "pause" }]);
    s.player.setPausedFor("offscreen", false);
    expect(s.player.state).toBe("connecting");
    await soon(() => conn.control.some((m) => m.type === "resume"), "resume");

    // A reason the options turn off is ignored.
    const other = makePlayer({ pauseWhenOffscreen: false, pauseWhenHidden: false });
    other.player.setPausedFor("offscreen", true);
    other.player.setPausedFor("hidden", true);
    expect(other.player.pausedFor).toEqual([]);
    expect(other.player.state).not.toBe("paused");
  });

  test("setEncoding while live: a second socket; the old picture stays until the new encoding paints, then one socket", async () => {
    const { subject: s, conn: full } = await livePlayer();
    const before = s.states.length;
    s.player.setEncoding("tile");
    expect(s.player.encoding).toBe("tile");
    expect(s.player.url).toContain("encoding=tile");
    const tile = await connection(1);
    expect(tile.path).toBe("/ws/cam0?encoding=tile");
    // The old encoding keeps painting meanwhile.
    full.frame(2, 0);
    await soon(() => s.canvas.drawn.includes(2), "the old encoding's frame");
    tile.hello({ width: 320, height: 240 });
    tile.state("live");
    await soon(() => FakeVideoDecoder.all[1]?.state === "configured", "the new decoder configured");
    expect(s.player.hello?.width).toBe(640); // announced when its picture replaces the old one
    expect(full.open).toBe(true);

    tile.frame(101, FLAG.KEY | FLAG.REPLAY);
    await soon(() => s.canvas.drawn.includes(101), "the new encoding's first picture");
    await soon(() => full.closed !== undefined, "the old socket closed");
    expect(server.open).toEqual([tile]);
    expect(s.player.encoding).toBe("tile");
    expect(s.player.hello?.width).toBe(320);
    expect(s.hellos.map((h) => h.width)).toEqual([640, 320]);
    expect([s.canvas.width, s.canvas.height]).toEqual([320, 240]);
    // No blank or waiting state on the way.
    expect(s.states.slice(before)).toEqual([]);
    expect(s.player.state).toBe("live");
    expect(s.canvas.ops.slice(s.canvas.ops.findIndex((o) => o.op === "draw")).some((o) => o.op === "fill")).toBe(false);
    // Asking for the encoding it plays does nothing.
    s.player.setEncoding("tile");
    await sleep(100);
    expect(server.connections).toHaveLength(2);
  });

  test("an encoding the stream lacks (close 4406): CC_ERR_UNKNOWN_ENCODING, the full encoding kept, and not asked for again", async () => {
    const { subject: s, conn: full } = await livePlayer();
    s.player.setEncoding("tile");
    const tile = await connection(1);
    tile.socket.close(4406, 'CC_ERR_UNKNOWN_ENCODING: stream "cam0" has no encoding "tile" (it has: full)');
    await soon(() => s.errors.some((e) => e.code === "CC_ERR_UNKNOWN_ENCODING"), "the error");
    expect(s.player.encoding).toBe("full");
    expect(full.open).toBe(true);
    full.frame(2, 0);
    await soon(() => s.canvas.drawn.includes(2), "the full encoding still painting");
    expect(s.player.state).toBe("live");
    // Asked again (an element following its size): it stays on full, with no new socket.
    s.player.setEncoding("tile");
    await sleep(100);
    expect(server.connections).toHaveLength(2);
    expect(s.player.encoding).toBe("full");
  });

  test("setEncoding while paused replaces the socket at once (paused from its start)", async () => {
    const { subject: s, conn: full } = await livePlayer();
    s.player.pause();
    s.player.setEncoding("tile");
    expect(s.player.encoding).toBe("tile");
    const tile = await connection(1);
    await soon(() => full.closed !== undefined, "the old socket closed");
    await soon(() => tile.control.length === 1, "pause on the new socket");
    expect(tile.control).toEqual([{ type: "pause" }]);
    expect(s.player.state).toBe("paused");
    // The last picture stays while paused, though its socket is gone…
    await expect(s.player.snapshot()).resolves.toBeInstanceOf(Blob);
    tile.hello({ width: 320, height: 240 });
    await soon(() => s.player.hello?.width === 320, "the new hello");
    // …until the new encoding's stream says it is not live.
    tile.state("restarting");
    await soon(() => s.canvas.ops.at(-1)?.op === "fill", "the canvas painted black");
    await expect(s.player.snapshot()).rejects.toMatchObject({ name: "InvalidStateError" });
    tile.state("live");
    s.player.resume();
    await soon(() => tile.control.length === 2, "resume");
    tile.frame(7, FLAG.KEY | FLAG.REPLAY | FLAG.DISCONTINUITY);
    await soon(() => s.player.state === "live", "live on tile");
    expect(server.open).toEqual([tile]);
  });

  test("pausing in the middle of a switch finishes it: the new encoding's socket and hello", async () => {
    const { subject: s, conn: full } = await livePlayer();
    s.player.setEncoding("tile");
    const tile = await connection(1);
    tile.hello({ width: 320, height: 240 });
    await soon(() => FakeVideoDecoder.all[1]?.state === "configured", "the new decoder configured");
    s.player.pause();
    await soon(() => full.closed !== undefined, "the old socket closed");
    expect(s.player.encoding).toBe("tile");
    expect(s.player.hello?.width).toBe(320);
    expect(s.hellos.map((h) => h.width)).toEqual([640, 320]);
  });

  test("close() closes every socket (two during a switch); twice is safe; nothing is emitted after", async () => {
    const { subject: s, conn: full } = await livePlayer();
    s.player.setEncoding("tile");
    const tile = await connection(1);
    s.player.close();
    s.player.close();
    expect(s.player.state).toBe("closed");
    const events = s.events.length;
    await soon(() => full.closed !== undefined && tile.closed !== undefined, "both sockets closed");
    expect(full.closed).toEqual({ code: 1000, reason: "player closed" });
    await sleep(100);
    expect(s.events).toHaveLength(events);
    expect(server.connections).toHaveLength(2);
    expect(FakeVideoDecoder.all.every((d) => d.state === "closed")).toBe(true);
    expect(FakeVideoFrame.all.every((f) => f.closed)).toBe(true);
    await expect(s.player.snapshot()).rejects.toMatchObject({ name: "InvalidStateError" });
    s.player.pause();
    s.player.setEncoding("full");
    expect(s.player.state).toBe("closed");
  });

  test("every decoded frame is closed: painted, skipped or dropped", async () => {
    const { subject: s, conn } = await livePlayer({ paintMode: "raf" });
    for (let seq = 2; seq <= 20; seq++) conn.frame(seq, seq % 5 === 0 ? FLAG.KEY : 0);
    await soon(() => s.player.stats().framesDecoded === 20, "20 frames decoded");
    await soon(() => FakeVideoFrame.all.every((f) => f.closed), "every frame closed");
    expect(s.canvas.drawn.at(-1)).toBe(20);
  });

  test("no WebCodecs: unsupported, with a fatal CC_ERR_NO_WEBCODECS", async () => {
    vi.stubGlobal("VideoDecoder", undefined);
    const s = makePlayer();
    expect(s.player.state).toBe("unsupported");
    await soon(() => s.errors.length === 1, "the error");
    expect(s.errors[0]).toMatchObject({ code: "CC_ERR_NO_WEBCODECS", fatal: true });
    await sleep(50);
    expect(server.connections).toHaveLength(0);
  });
});
