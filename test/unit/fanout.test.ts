// StreamFanout with in-memory sockets and a fake clock, plus GopCache, FrameMessage and RateMeter.
// (The real-socket tests are in test/integration.)
//
// Time is explicit: the fan-out's `clock` reads the fake `now`, frames are stamped with it, and
// `tick(now)` is called by hand (the fan-out's own timer is set to an hour). A fake socket records
// what it is sent, pings (flow-control probes) included; `answer()` plays the viewer's WebSocket
// client, which answers every ping with a pong carrying the same payload.

import { afterEach, beforeEach, describe, expect, test } from "vitest";
import type { EncodedFrame } from "../../server/source/frames.js";
import { StreamFanout, type FanoutOptions } from "../../server/stream/fanout.js";
import { FrameMessage } from "../../server/stream/frame-message.js";
import { GopCache } from "../../server/stream/gop-cache.js";
import type { VideoInfo } from "../../server/stream/messages.js";
import { RateMeter } from "../../server/stream/rate-meter.js";
import type { Viewer, ViewerMode, ViewerSocket } from "../../server/stream/viewer.js";
import type { WireMessage } from "../../server/stream/wire-message.js";
import { CloseCode, decodeBinaryMessage, nextSeq, ProtocolError, type VideoFrameHeader } from "../../shared/protocol.js";
import { micros, millis } from "../../shared/units.js";
import { expectErrorCode } from "../helpers/errors.js";
import { mulberry32 } from "../helpers/random.js";
import { readMp4, type ParsedMp4 } from "../helpers/mp4-reader.js";
import { expectValidLiveWebm, readWebm, type ParsedWebm } from "../helpers/webm-reader.js";

// Frame protocol v1 flags, close codes and ws readyState values, written out again.
const KEY = 0x01;
const REPLAY = 0x02;
const DISCONTINUITY = 0x04;
const TOO_SLOW = 4408;
const FORMAT_CHANGED = 4409;
const OPEN = 1;
const CLOSED = 3;
/** WebSocket opcode byte of an unfragmented ping (FIN + 9). */
const PING_OPCODE = 0x89;
const FRAME_MS = 33;
/** One frame on a /webm/ viewer's timeline at 30 fps, ms. */
const WEBM_FRAME_MS = 33;
const HOUR_MS = 3_600_000;
const NO_SKIPS = { lagging: 0, "buffer-full": 0 };

type Sent =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "binary"; readonly wire: WireMessage }
  | { readonly kind: "ping"; readonly wire: WireMessage };

const isPing = (wire: WireMessage): boolean => wire.parts[0]![0] === PING_OPCODE;

class FakeSocket implements ViewerSocket {
  readyState = OPEN;
  bufferedAmount = 0;
  /** Set by join(): the viewer this socket belongs to. */
  viewer: Viewer | null = null;
  /** Everything sent, in order: text, binary messages (the very WireMessage objects) and pings. */
  readonly sent: Sent[] = [];
  /** Every ping ever received (clear() keeps them), with the fake time it came. */
  readonly pings: { readonly wire: WireMessage; readonly at: number }[] = [];
  /** How many of `pings` were answered. */
  answered = 0;
  readonly closes: { code: number | undefined; reason: string | undefined }[] = [];

  send(text: string): void {
    this.sent.push({ kind: "text", text });
  }

  sendWire(message: WireMessage, ping?: WireMessage): void {
    this.take(message);
    if (ping !== undefined) this.take(ping);
  }

  close(code?: number, reason?: string): void {
    this.closes.push({ code, reason });
    this.readyState = CLOSED;
  }

  private take(wire: WireMessage): void {
    if (isPing(wire)) {
      this.sent.push({ kind: "ping", wire });
      this.pings.push({ wire, at: now });
    } else {
      this.sent.push({ kind: "binary", wire });
    }
  }

  /** JSON text messages, parsed. */
  texts(): Record<string, unknown>[] {
    return this.sent.flatMap((m) => (m.kind === "text" ? [JSON.parse(m.text) as Record<string, unknown>] : []));
  }

  /** Binary messages (not pings). */
  wires(): WireMessage[] {
    return this.sent.flatMap((m) => (m.kind === "binary" ? [m.wire] : []));
  }

  /** Frame-protocol binary messages as [seq, flags]. */
  frames(): [number, number][] {
    return this.wires().map((w) => {
      const d = decodeBinaryMessage(w.payload());
      if (d.kind !== "video") throw new Error("not a video frame");
      return [d.header.seq, d.header.flags];
    });
  }

  /** Pings sent since the last clear(). */
  pingCount(): number {
    return this.sent.filter((m) => m.kind === "ping").length;
  }

  /** Everything sent, in order, as short labels: "hello", "state:live", "skipped", "3:k", "4:d+replay", "ping"… */
  log(options: { pings?: boolean } = {}): string[] {
    return this.sent.flatMap((m) => {
      if (m.kind === "ping") return options.pings ? ["ping"] : [];
      if (m.kind === "text") {
        const j = JSON.parse(m.text) as { type: string; state?: string };
        return [j.type === "state" ? `state:${j.state}` : j.type];
      }
      const d = decodeBinaryMessage(m.wire.payload());
      return [d.kind === "video" ? label(d.header.seq, d.header.flags) : "bin"];
    });
  }

  /** WebM bytes received, parsed (a /webm/ viewer). */
  webm(): ParsedWebm {
    return readWebm(Buffer.concat(this.wires().map((w) => w.payload())));
  }

  /** Forgets what was sent (not the pings: they can still be answered). */
  clear(): void {
    this.sent.length = 0;
  }
}

function label(seq: number, flags: number): string {
  return `${seq}:${flags & KEY ? "k" : "d"}${flags & REPLAY ? "+replay" : ""}${flags & DISCONTINUITY ? "+disc" : ""}`;
}

/** A probe's payload: u32 LE the newest frame sequence number sent before it, f64 LE the server clock. */
function readPayload(wire: WireMessage): { seq: number; sentAt: number } {
  const p = wire.payload();
  expect(p.byteLength).toBe(12);
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  return { seq: view.getUint32(0, true), sentAt: view.getFloat64(4, true) };
}

/** The fake wall clock, ms. */
let now = 0;
const advance = (ms: number): void => {
  now += ms;
};

beforeEach(() => {
  now = 1_000_000_000;
});

const fanouts: StreamFanout[] = [];
afterEach(() => {
  for (const f of fanouts.splice(0)) f.close();
});

const VIDEO: VideoInfo = { width: 640, height: 480, framerate: 30 };

function makeFanout(options: FanoutOptions = {}): StreamFanout {
  const f = new StreamFanout("cam0", VIDEO, { statsIntervalMs: HOUR_MS, tickIntervalMs: HOUR_MS, clock: () => millis(now), ...options });
  fanouts.push(f);
  return f;
}

/** A new fake socket added to `f` as a viewer of `mode`. */
function join(f: StreamFanout, mode: ViewerMode = "ws", remote = "", meta = false): [FakeSocket, Viewer] {
  const s = new FakeSocket();
  const v = f.addViewer(s, mode, remote, meta);
  s.viewer = v;
  return [s, v];
}

/**
 * Plays the viewer's client: answers, in order, every ping the socket got and has not answered
 * (only the first `upTo` it ever got, when given), at fake time `at` (now when not given).
 * Returns how many it answered.
 */
function answer(f: StreamFanout, s: FakeSocket, options: { at?: number; upTo?: number } = {}): number {
  if (options.at !== undefined) now = options.at;
  const viewer = s.viewer;
  if (viewer === null) throw new Error("socket not joined");
  const upTo = Math.min(options.upTo ?? s.pings.length, s.pings.length);
  let n = 0;
  for (; s.answered < upTo; s.answered++, n++) f.onPong(viewer, s.pings[s.answered]!.wire.payload());
  return n;
}

/** Answers the pings that came at least `ageMs` ago (a viewer that far away, reading at once). */
function answerOlderThan(f: StreamFanout, s: FakeSocket, ageMs: number): number {
  let upTo = s.answered;
  while (upTo < s.pings.length && s.pings[upTo]!.at <= now - ageMs) upTo++;
  return answer(f, s, { upTo });
}

/** The next frame from the pipeline: the clock moves one frame interval and stamps it. */
function frame(key: boolean, size = 100, discont = false, pts?: number): EncodedFrame {
  advance(FRAME_MS);
  const data = new Uint8Array(size).fill(key ? 0x10 : 0x11);
  data[0] = key ? 0x10 : 0x11; // VP8 frame tag bit 0: 0 for a keyframe
  return { pts: micros(pts ?? now * 1000), key, discont, data, receivedAt: millis(now) };
}

/**
 * Publishes frames; "k" a keyframe, "d" a delta. After each, the `prompt` sockets answer every
 * ping they got (viewers that keep up). Returns the frames' sequence numbers.
 */
function publishAll(f: StreamFanout, pattern: string, ...prompt: FakeSocket[]): number[] {
  return [...pattern].map((c) => {
    const seq = f.publish(frame(c === "k")).seq;
    for (const s of prompt) answer(f, s);
    return seq;
  });
}

const ack = (f: StreamFanout, viewer: Viewer, seq: number): void => f.onClientMessage(viewer, { type: "ack", seq });
const send = (f: StreamFanout, viewer: Viewer, type: "pause" | "resume" | "resync"): void => f.onClientMessage(viewer, { type });
/** The viewer's lag as the fan-out reports it (viewerInfos). */
const lagOf = (f: StreamFanout, viewer: Viewer): number | null | undefined => f.viewerInfos().find((i) => i.id === viewer.id)?.lagMs;
/** The labels after the last one equal to `after`, but the periodic stats. */
const logAfter = (s: FakeSocket, after: string, options: { pings?: boolean } = {}): string[] => {
  const log = s.log(options);
  return log.slice(log.lastIndexOf(after) + 1).filter((l) => l !== "stats");
};

describe("StreamFanout", () => {
  test("answers a clock message with the client's time echoed and its own wall clock", () => {
    const f = makeFanout();
    const [s, v] = join(f);
    // The server's wall clock is performance.timeOrigin + performance.now() (not the fake clock).
    const wall = (): number => performance.timeOrigin + performance.now();
    const before = wall();
    f.onClientMessage(v, { type: "clock", t: 42.5 });
    const after = wall();
    const reply = s.texts().at(-1);
    expect(reply).toMatchObject({ type: "clock", t: 42.5 });
    expect(reply?.serverTime as number).toBeGreaterThanOrEqual(before);
    expect(reply?.serverTime as number).toBeLessThanOrEqual(after);
  });

  test("a viewer's first messages are hello, then state", () => {
    const f = makeFanout();
    const [s] = join(f);
    const [hello, state] = s.texts();
    expect(s.sent).toHaveLength(2);
    expect(hello).toMatchObject({ type: "hello", protocol: 1, stream: "cam0", codec: "vp8", width: 640, height: 480, framerate: 30 });
    expect(typeof hello?.serverTime).toBe("number");
    expect(Math.abs((hello?.serverTime as number) - Date.now())).toBeLessThan(5_000);
    expect(state).toEqual({ type: "state", state: "starting" });
    expect(f.viewerCount()).toBe(1);
    expect(f.viewerCount("ws")).toBe(1);
    expect(f.viewerCount("webm")).toBe(0);
  });

  test("a keyframe that declares another codec string than hello said: a new hello before it, and only it and later frames follow", () => {
    const f = makeFanout({ codec: "avc1.42C01E" });
    const [s] = join(f);
    expect(s.texts()[0]).toMatchObject({ type: "hello", codec: "avc1.42C01E" });
    f.setState("live");
    // The bitstream says otherwise: hello is said again, then the keyframe.
    const key = f.publish({ ...frame(true), codec: "avc1.640028" }).seq;
    const next = f.publish(frame(false)).seq;
    answer(f, s);
    const order = s.sent.flatMap((m) => (m.kind === "text" ? [(JSON.parse(m.text) as { type: string; codec?: string }).codec ?? "text"] : m.kind === "binary" ? ["frame"] : []));
    expect(order).toEqual(["avc1.42C01E", "text", "text", "avc1.640028", "frame", "frame"]);
    expect(s.frames().map(([seq]) => seq)).toEqual([key, next]);
    // The same string again changes nothing.
    f.publish({ ...frame(true), codec: "avc1.640028" });
    expect(s.texts().filter((m) => m.type === "hello")).toHaveLength(2);
    expect(f.codecString).toBe("avc1.640028");
  });

  test("a fan-out of the tile encoding says so in hello and in its viewer list; encodings of one stream share viewer ids", () => {
    let ids = 1;
    const nextViewerId = (): number => ids++;
    const full = makeFanout({ nextViewerId });
    const tile = new StreamFanout("cam0", { width: 320, height: 240, framerate: 30 }, {
      statsIntervalMs: HOUR_MS,
      tickIntervalMs: HOUR_MS,
      clock: () => millis(now),
      encoding: "tile",
      nextViewerId,
    });
    fanouts.push(tile);
    const [fs, fv] = join(full);
    const [ts, tv] = join(tile);
    expect(fs.texts()[0]).toMatchObject({ type: "hello", stream: "cam0", encoding: "full", width: 640, height: 480 });
    expect(ts.texts()[0]).toMatchObject({ type: "hello", stream: "cam0", encoding: "tile", width: 320, height: 240 });
    expect([fv.id, tv.id]).toEqual([1, 2]);
    expect(tile.viewerInfos().map((i) => [i.id, i.encoding])).toEqual([[2, "tile"]]);
    expect(full.viewerInfos().map((i) => [i.id, i.encoding])).toEqual([[1, "full"]]);
  });

  test("paused viewers are counted until they resume", () => {
    const f = makeFanout();
    f.setState("live");
    publishAll(f, "kd");
    const [, a] = join(f);
    join(f);
    expect(f.pausedViewerCount).toBe(0);
    f.onClientMessage(a, { type: "pause" });
    expect(f.pausedViewerCount).toBe(1);
    f.onClientMessage(a, { type: "resume" });
    expect(f.pausedViewerCount).toBe(0);
  });

  test("sequence numbers start at 0 and go up by one", () => {
    const f = makeFanout();
    expect(publishAll(f, "kdd")).toEqual([0, 1, 2]);
  });

  test("a viewer joining mid-GOP gets the cached GOP flagged replay, keyframe first, a probe behind each frame, then live frames once the replay is read", () => {
    const f = makeFanout();
    f.setState("live");
    publishAll(f, "kdkdd"); // the GOP restarts at 2
    const [s, v] = join(f);
    expect(s.log({ pings: true })).toEqual(["hello", "state:live", "2:k+replay", "ping", "3:d+replay", "ping", "4:d+replay", "ping"]);
    ack(f, v, 4); // a client may ack what it decoded: that releases nothing
    publishAll(f, "d"); // 5, held
    expect(s.log().at(-1)).toBe("4:d+replay");
    answer(f, s);
    publishAll(f, "k", s);
    expect(s.log()).toEqual(["hello", "state:live", "2:k+replay", "3:d+replay", "4:d+replay", "5:d", "6:k"]);
    expect(v.skipped).toEqual(NO_SKIPS);
  });

  test("replay bytes are the frame's bytes with only the flags byte changed", () => {
    const f = makeFanout();
    const live = f.publish(frame(true, 50));
    const [s] = join(f);
    const replayWire = s.wires()[0]!;
    const replay = replayWire.payload();
    const liveBytes = live.wire.payload();
    expect(replayWire).not.toBe(live.wire);
    expect(replay[1]).toBe(KEY | REPLAY);
    expect(liveBytes[1]).toBe(KEY);
    expect(replay.subarray(2)).toEqual(liveBytes.subarray(2));
  });

  test("a viewer joining before any keyframe gets no delta until a keyframe; those deltas are not skips", () => {
    const f = makeFanout();
    const [s, v] = join(f);
    publishAll(f, "ddkd"); // 0 and 1 have no reference for this viewer
    expect(s.log()).toEqual(["hello", "state:starting", "2:k", "3:d"]);
    expect(v.skipped).toEqual(NO_SKIPS);
    expect(f.skipped("ws")).toEqual(NO_SKIPS);
    expect(v.framesSent).toBe(2);
  });

  test("every viewer is sent the same message instance for a live frame", () => {
    const f = makeFanout();
    const sockets = [join(f)[0], join(f)[0], join(f)[0]];
    const key = f.publish(frame(true));
    const delta = f.publish(frame(false));
    for (const s of sockets) {
      expect(s.wires()[0]).toBe(key.wire);
      expect(s.wires()[1]).toBe(delta.wire);
    }
  });

  test("a backed-up viewer skips to a keyframe: skipped notice, then the keyframe flagged discontinuity; every frame of the gap counts as buffer-full", () => {
    const f = makeFanout({ flow: { maxBufferedBytes: 1000 } });
    const [slow, v] = join(f);
    const [fast, fv] = join(f);
    const both = [slow, fast];
    publishAll(f, "kd", ...both); // 0 1
    slow.bufferedAmount = 1000; // at the limit: still sent
    publishAll(f, "d", ...both); // 2
    slow.bufferedAmount = 1001; // over it
    publishAll(f, "dd", ...both); // 3 starts the gap, 4 is in it
    slow.bufferedAmount = 0; // drained
    publishAll(f, "d", ...both); // 5: still in the gap, a delta cannot end it
    publishAll(f, "kdk", ...both); // 6 ends the gap; 7; 8: the discontinuity flag is not repeated
    expect(slow.log().slice(2)).toEqual(["0:k", "1:d", "2:d", "skipped", "6:k+disc", "7:d", "8:k"]);
    expect(slow.texts().find((t) => t.type === "skipped")).toEqual({ type: "skipped", reason: "buffer-full", frames: 3, lagMs: 0 });
    expect(v.skipped).toEqual({ lagging: 0, "buffer-full": 3 });
    expect(f.skipped("ws")).toEqual({ lagging: 0, "buffer-full": 3 });
    expect(v.framesSent).toBe(6);
    // The other viewer is unaffected and shares the live bytes.
    expect(fast.frames().map(([seq, flags]) => [seq, flags & DISCONTINUITY])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8].map((n) => [n, 0]));
    expect(fv.skipped).toEqual(NO_SKIPS);
  });

  test("a viewer still backed up when the keyframe comes (above half the limit) waits for the next one", () => {
    const f = makeFanout({ flow: { maxBufferedBytes: 10 } });
    const [s, v] = join(f);
    publishAll(f, "k", s); // 0
    s.bufferedAmount = 11;
    publishAll(f, "dk", s); // 1 starts the gap; 2 is a keyframe, but the queue is over the limit
    s.bufferedAmount = 6; // under the limit, but above half of it: not drained enough to resume
    publishAll(f, "dk", s); // 3, 4
    s.bufferedAmount = 5;
    publishAll(f, "dk", s); // 5; 6 resumes
    expect(s.log().slice(2)).toEqual(["0:k", "skipped", "6:k+disc"]);
    expect(s.texts().at(-1)).toEqual({ type: "skipped", reason: "buffer-full", frames: 5, lagMs: 0 });
    expect(v.skipped).toEqual({ lagging: 0, "buffer-full": 5 });
  });

  test("the discontinuity variant is made once and shared by every viewer that needs it", () => {
    const f = makeFanout({ flow: { maxBufferedBytes: 10 } });
    const [a] = join(f);
    const [b] = join(f);
    publishAll(f, "k", a, b);
    a.bufferedAmount = b.bufferedAmount = 100;
    publishAll(f, "d", a, b);
    a.bufferedAmount = b.bufferedAmount = 0;
    const key = f.publish(frame(true));
    const aLast = a.wires().at(-1);
    expect(aLast).toBe(b.wires().at(-1));
    expect(aLast).not.toBe(key.wire);
    expect(aLast?.payload()[1]).toBe(KEY | DISCONTINUITY);
  });

  test("a frame that carries GStreamer's discont goes out flagged discontinuity to everyone", () => {
    const f = makeFanout();
    const [s] = join(f);
    f.publish(frame(true, 100, true));
    expect(s.log().slice(2)).toEqual(["0:k+disc"]);
  });

  test("a caps change sends a new hello, and the next frame each viewer gets is a keyframe", () => {
    const f = makeFanout();
    const [a] = join(f);
    publishAll(f, "k", a); // 0
    const [b] = join(f); // b gets 0 as replay
    answer(f, b);
    publishAll(f, "d", a, b); // 1
    expect(b.log().at(-1)).toBe("1:d");
    a.clear();
    b.clear();
    f.setVideoInfo({ width: 320, height: 240, framerate: 30 });
    publishAll(f, "dk", a, b); // 2: a delta from the new pipeline — nobody may get it; 3
    for (const s of [a, b]) {
      expect(s.log()).toEqual(["hello", "3:k"]);
      expect(s.texts()[0]).toMatchObject({ type: "hello", width: 320, height: 240, framerate: 30 });
    }
    expect(f.videoInfo).toEqual({ width: 320, height: 240, framerate: 30 });
  });

  test("a caps change empties the GOP cache: a viewer joining right after gets no old-size frames", () => {
    const f = makeFanout();
    publishAll(f, "kd");
    expect(f.gopFrames).toBe(2);
    f.setVideoInfo({ width: 640, height: 360, framerate: 30 });
    expect(f.gopFrames).toBe(0);
    expect(f.gopBytes).toBe(0);
    const [s] = join(f);
    expect(s.log({ pings: true })).toEqual(["hello", "state:starting"]);
    expect(s.texts()[0]).toMatchObject({ width: 640, height: 360 });
  });

  test("the same caps again change nothing", () => {
    const f = makeFanout();
    const [s] = join(f);
    publishAll(f, "k", s);
    f.setVideoInfo({ ...VIDEO });
    publishAll(f, "d", s);
    expect(s.log()).toEqual(["hello", "state:starting", "0:k", "1:d"]);
    expect(f.gopFrames).toBe(2);
  });

  test("setState broadcasts to every viewer, once per change", () => {
    const f = makeFanout();
    const [a] = join(f);
    const [b] = join(f);
    f.setState("live");
    f.setState("live");
    f.setState("offline", "pipeline exited (1)");
    f.setState("offline", "pipeline exited (1)");
    for (const s of [a, b]) {
      expect(s.texts().slice(2)).toEqual([
        { type: "state", state: "live" },
        { type: "state", state: "offline", reason: "pipeline exited (1)" },
      ]);
    }
    expect(f.state).toBe("offline");
    expect(f.stateReason).toBe("pipeline exited (1)");
    // A viewer joining now is told the current state.
    const [c] = join(f);
    expect(c.texts()[1]).toEqual({ type: "state", state: "offline", reason: "pipeline exited (1)" });
  });

  test("restarting carries the reason and retryInMs (rounded); a new retry time is a change", () => {
    const f = makeFanout();
    const [s] = join(f);
    f.setState("restarting", "pipeline exited (1)", 1999.6);
    f.setState("restarting", "pipeline exited (1)", 1999.6);
    f.setState("restarting", "pipeline exited (1)", 4000);
    expect(s.texts().slice(2)).toEqual([
      { type: "state", state: "restarting", reason: "pipeline exited (1)", retryInMs: 2000 },
      { type: "state", state: "restarting", reason: "pipeline exited (1)", retryInMs: 4000 },
    ]);
    expect(f.state).toBe("restarting");
    const [late] = join(f);
    expect(late.texts()[1]).toEqual({ type: "state", state: "restarting", reason: "pipeline exited (1)", retryInMs: 4000 });
  });

  test("leaving live empties the GOP and makes viewers wait for a keyframe", () => {
    const f = makeFanout();
    const [s, v] = join(f);
    f.setState("live");
    publishAll(f, "k", s); // 0
    f.setState("starting"); // pipeline restarting
    expect(f.gopFrames).toBe(0);
    f.setState("live");
    publishAll(f, "dk", s); // 1: no reference, not sent, not a skip; 2
    expect(s.log()).toEqual(["hello", "state:starting", "state:live", "0:k", "state:starting", "state:live", "2:k+disc"]);
    expect(v.skipped).toEqual(NO_SKIPS);
  });

  test("leaving live: the next frame published carries discontinuity, once; a joiner gets no replay from the old pipeline", () => {
    const f = makeFanout();
    const [s] = join(f);
    f.setState("live");
    publishAll(f, "kdd", s); // 0 1 2
    f.setState("restarting", "pipeline stalled", 500);
    expect(f.gopFrames).toBe(0);
    const [joiner] = join(f);
    expect(joiner.log({ pings: true })).toEqual(["hello", "state:restarting"]);
    f.setState("live");
    const first = f.publish(frame(true)); // 3: the new pipeline's first frame
    const second = f.publish(frame(false)); // 4
    expect(first.wire.payload()[1]).toBe(KEY | DISCONTINUITY);
    expect(second.wire.payload()[1]).toBe(0);
    expect(s.log().slice(-3)).toEqual(["state:live", "3:k+disc", "4:d"]);
    expect(joiner.log().slice(-3)).toEqual(["state:live", "3:k+disc", "4:d"]);
  });

  test("leaving live when the new pipeline starts with deltas: the flag stays until the keyframe viewers start at", () => {
    const f = makeFanout();
    const [s] = join(f);
    f.setState("live");
    publishAll(f, "kd", s); // 0 1
    f.setState("offline", "gst died");
    f.setState("live");
    const delta = f.publish(frame(false)); // 2
    expect(delta.wire.payload()[1]).toBe(DISCONTINUITY);
    publishAll(f, "dkd", s); // 3 4 5
    expect(s.log().slice(-3)).toEqual(["state:live", "4:k+disc", "5:d"]);
  });

  test("/ws/ PTS stay monotonic across a pipeline restart: the new pipeline's PTS start at 0 again, the stream goes on one frame after the last", () => {
    const f = makeFanout();
    const [s] = join(f);
    f.setState("live");
    const frameUs = 1e6 / 30;
    for (let i = 0; i < 5; i++) f.publish(frame(i === 0, 100, false, 9_000_000 + i * frameUs)); // 9 s into the old pipeline
    answer(f, s);
    f.setState("restarting", "pipeline exited (1)", 1000);
    advance(1500);
    f.setState("live");
    for (let i = 0; i < 5; i++) f.publish(frame(i === 0, 100, false, i * frameUs)); // the new one counts from 0
    answer(f, s);
    const pts = s.wires().map((w) => {
      const d = decodeBinaryMessage(w.payload());
      if (d.kind !== "video") throw new Error("not a video frame");
      return d.header.pts;
    });
    expect(pts).toHaveLength(10);
    for (let i = 1; i < pts.length; i++) expect(pts[i]! - pts[i - 1]!, `frame ${i}`).toBeCloseTo(frameUs, 3);
    expect(pts[0]).toBe(9_000_000);
    expect(s.log().slice(-6)).toEqual(["state:live", "5:k+disc", "6:d", "7:d", "8:d", "9:d"]);
  });

  test("sockets that are not open are sent nothing", () => {
    const f = makeFanout();
    const [s, v] = join(f);
    s.readyState = CLOSED;
    f.publish(frame(true));
    f.setState("live");
    f.tick(millis(now));
    expect(s.sent).toHaveLength(2);
    expect(v.skipped).toEqual(NO_SKIPS);
  });

  test("removeViewer stops delivery, and its pongs are ignored", () => {
    const f = makeFanout();
    const [s, v] = join(f);
    f.publish(frame(true));
    f.removeViewer(v);
    f.publish(frame(false));
    f.tick(millis(now + 1000));
    expect(s.log({ pings: true })).toEqual(["hello", "state:starting", "0:k", "ping"]);
    expect(answer(f, s)).toBe(1); // ignored, no throw
    expect(f.viewerCount()).toBe(0);
  });

  test("close() closes every socket with 1001, is safe twice, and refuses later viewers", () => {
    const f = makeFanout();
    const [a] = join(f);
    const [b] = join(f, "webm");
    f.publish(frame(true));
    f.close();
    f.close();
    for (const s of [a, b]) {
      expect(s.closes).toHaveLength(1);
      expect(s.closes[0]?.code).toBe(1001);
    }
    expect(f.viewerCount()).toBe(0);
    expect(f.gopFrames).toBe(0);
    const [late] = join(f);
    expect(late.closes.map((c) => c.code)).toEqual([1001]);
    expect(late.sent).toEqual([]);
    expect(f.viewerCount()).toBe(0);
  });

  test("counts frames and bytes in, and rates over the last two seconds", () => {
    const f = makeFanout();
    const start = millis(1_000_000);
    for (let i = 0; i < 30; i++) {
      f.publish({ pts: micros(i * 33_333), key: i === 0, discont: false, data: new Uint8Array(500), receivedAt: millis(start + i * 33) });
    }
    expect(f.framesIn).toBe(30);
    expect(f.bytesIn).toBe(15_000);
    expect(f.rates(millis(start + 1000))).toEqual({ fps: 15, kbps: 60 });
  });

  test("viewerInfos() describes each viewer", () => {
    const f = makeFanout();
    const joinedAt = now;
    const [a, va] = join(f, "ws", "10.0.0.7");
    advance(5);
    join(f);
    publishAll(f, "kd"); // 124 bytes each
    answer(f, a);
    ack(f, va, 1);
    a.bufferedAmount = 777;
    send(f, va, "pause");
    const infos = f.viewerInfos();
    expect(infos).toHaveLength(2);
    expect(infos).toMatchObject([
      {
        id: 1,
        mode: "ws",
        remote: "10.0.0.7",
        connectedAt: joinedAt,
        lagMs: 0,
        acks: true,
        readRate: 1,
        paused: true,
        framesSent: 2,
        bytesSent: 248,
        bufferedBytes: 777,
        skipped: NO_SKIPS,
      },
      {
        id: 2,
        mode: "ws",
        remote: "",
        connectedAt: joinedAt + 5,
        lagMs: FRAME_MS, // its probe behind frame 0 is unanswered, one frame old
        acks: false,
        readRate: 1,
        paused: false,
        framesSent: 2,
        bytesSent: 248,
        bufferedBytes: 0,
        skipped: NO_SKIPS,
      },
    ]);
    // The skip counts are a copy.
    (infos[0]?.skipped as { lagging: number }).lagging = 99;
    expect(va.skipped.lagging).toBe(0);
  });
});

describe("StreamFanout probes and lag", () => {
  test("a probe follows the first frame sent; then at most one per probeIntervalBusyMs while one is unanswered, one per probeIntervalMs while all are answered", () => {
    const f = makeFanout(); // 200 ms, 100 ms busy
    const [silent] = join(f);
    const [prompt] = join(f);
    publishAll(f, "k" + "d".repeat(11), prompt); // 0..11, every 33 ms
    // Unanswered: after 0, then 4 (132 ms later), then 8.
    expect(silent.log({ pings: true }).slice(2).join(" ")).toBe("0:k ping 1:d 2:d 3:d 4:d ping 5:d 6:d 7:d 8:d ping 9:d 10:d 11:d");
    // Answered at once: after 0, then 7 (231 ms later).
    expect(prompt.log({ pings: true }).slice(2).join(" ")).toBe("0:k ping 1:d 2:d 3:d 4:d 5:d 6:d 7:d ping 8:d 9:d 10:d 11:d");
  });

  test("a probe's payload is 12 bytes: the newest frame sent before it and the fan-out's clock; viewers sent the same frame at once share it", () => {
    const f = makeFanout();
    const [a] = join(f);
    const [b] = join(f);
    publishAll(f, "k");
    expect(readPayload(a.pings[0]!.wire)).toEqual({ seq: 0, sentAt: now });
    expect(a.pings[0]!.wire).toBe(b.pings[0]!.wire);
    // A ping is a control frame: FIN + opcode 9, its 12-byte length, then the payload.
    expect(a.pings[0]!.wire.parts[0]!.subarray(0, 2)).toEqual(new Uint8Array([PING_OPCODE, 12]));
  });

  test("a trailing probe follows the last frame sent on tick, once one is due, so that a pong can prove the viewer drained", () => {
    const f = makeFanout();
    const [s, v] = join(f);
    publishAll(f, "kd"); // 0 with a probe; 1 without (the first is unanswered, 33 ms ago)
    expect(s.log({ pings: true }).slice(2)).toEqual(["0:k", "ping", "1:d"]);
    advance(50);
    f.tick(millis(now)); // 83 ms after the probe: not yet
    expect(s.pingCount()).toBe(1);
    advance(17);
    f.tick(millis(now)); // 100 ms
    expect(s.pingCount()).toBe(2);
    expect(readPayload(s.pings[1]!.wire)).toEqual({ seq: 1, sentAt: now });
    advance(1000);
    f.tick(millis(now)); // nothing written since: no more probes
    expect(s.pingCount()).toBe(2);
    answer(f, s);
    expect(v.flow.drained).toBe(true);
    expect(lagOf(f, v)).toBe(0);
  });

  test("the lag is the age of the oldest unanswered probe; 0 once all are answered", () => {
    const f = makeFanout({ flow: { maxLagMs: 10_000 } });
    const [s, v] = join(f);
    expect(lagOf(f, v)).toBe(0);
    publishAll(f, "k"); // probe at t0
    const t0 = now;
    publishAll(f, "dddd"); // a probe behind 4 (132 ms later)
    expect(lagOf(f, v)).toBe(now - t0);
    answer(f, s, { upTo: 1 });
    expect(lagOf(f, v)).toBe(0); // the second probe was just written
    advance(40.25);
    expect(lagOf(f, v)).toBe(40.3); // rounded to 0.1 ms
    answer(f, s);
    expect(lagOf(f, v)).toBe(0);
  });

  test("pongs that answer no probe change nothing: the heartbeat's empty ones, other payloads, a payload that is not a number", () => {
    const lags: number[] = [];
    const f = makeFanout({ onViewerLag: (lag) => lags.push(lag) });
    const [s, v] = join(f);
    publishAll(f, "kd");
    const before = lagOf(f, v);
    f.onPong(v, new Uint8Array(0));
    const other = new Uint8Array(12);
    new DataView(other.buffer).setUint32(0, 1, true);
    new DataView(other.buffer).setFloat64(4, now, true);
    f.onPong(v, other); // frame 1 was never probed
    const nan = new Uint8Array(s.pings[0]!.wire.payload());
    new DataView(nan.buffer).setFloat64(4, Number.NaN, true);
    f.onPong(v, nan);
    f.onPong(v, new Uint8Array(13));
    expect(lagOf(f, v)).toBe(before);
    expect(lagOf(f, v)).toBeGreaterThan(0);
    expect(v.flow.drained).toBe(false);
    expect(lags).toEqual([]);
  });

  test("onViewerLag is called at each pong that answers a probe with how long it took (the metrics' lag histogram)", () => {
    const lags: number[] = [];
    const f = makeFanout({ onViewerLag: (lag) => lags.push(lag) });
    const [s] = join(f);
    publishAll(f, "kdddd"); // probes behind 0 and 4
    answer(f, s, { at: now + 10 });
    expect(lags).toEqual([4 * FRAME_MS + 10, 10]);
    answer(f, s); // none left
    expect(lags).toHaveLength(2);
  });

  test("an ack for a frame never sent is a CC_ERR_BAD_MESSAGE ProtocolError", () => {
    const f = makeFanout({ flow: { maxBufferedBytes: 1000 } });
    const [s, v] = join(f);
    // Nothing sent yet.
    expectErrorCode(() => ack(f, v, 0), ProtocolError, "CC_ERR_BAD_MESSAGE");
    publishAll(f, "kd", s); // 0 1 sent
    // Ahead of what was sent.
    expectErrorCode(() => ack(f, v, 2), ProtocolError, "CC_ERR_BAD_MESSAGE");
    expectErrorCode(() => ack(f, v, 1000), ProtocolError, "CC_ERR_BAD_MESSAGE");
    // Published but skipped for this viewer.
    s.bufferedAmount = 2000;
    publishAll(f, "dd", s); // 2 3 not sent
    expectErrorCode(() => ack(f, v, 3), ProtocolError, "CC_ERR_BAD_MESSAGE");
    // None of that counted as an ack.
    expect(f.viewerInfos()[0]?.acks).toBe(false);
    ack(f, v, 1);
    ack(f, v, 0); // an older one is fine too
    expect(f.viewerInfos()[0]?.acks).toBe(true);
  });

  test("acks are optional: a valid ack marks the viewer as acking and changes nothing of its flow control", () => {
    const f = makeFanout();
    const [s, v] = join(f);
    publishAll(f, "kddd");
    const before = f.viewerInfos()[0];
    ack(f, v, 3);
    expect(f.viewerInfos()[0]).toEqual({ ...before, acks: true });
    expect(v.flow.drained).toBe(false);
    answer(f, s);
    expect(lagOf(f, v)).toBe(0);
  });

  test("a viewer that never answers is skipped once its oldest probe is older than maxLagMs, then gets nothing but a trailing probe", () => {
    const f = makeFanout(); // maxLagMs 500
    f.setState("live");
    const [s, v] = join(f);
    const [fast, fv] = join(f);
    publishAll(f, "k" + "d".repeat(29), fast); // 0..29, one second
    const t0 = now - 29 * FRAME_MS;
    // Sent while its first probe (behind frame 0) was at most 500 ms old: 0..15 (15 × 33 = 495).
    expect(s.frames().map(([seq]) => seq)).toEqual([...Array(16).keys()]);
    expect(v.skipped).toEqual({ lagging: 14, "buffer-full": 0 });
    // Behind the last frame sent (15, unprobed), one probe, written when the gap began (frame 16).
    expect(logAfter(s, "15:d", { pings: true })).toEqual(["ping"]);
    expect(readPayload(s.pings.at(-1)!.wire)).toEqual({ seq: 15, sentAt: t0 + 16 * FRAME_MS });
    const pings = s.pingCount();
    // More frames, keyframes too, and ticks: nothing (but the periodic stats).
    for (let i = 0; i < 4; i++) {
      publishAll(f, "k" + "d".repeat(29), fast);
      f.tick(millis(now));
    }
    expect(logAfter(s, "15:d", { pings: true })).toEqual(["ping"]);
    expect(s.pingCount()).toBe(pings);
    expect(v.skipped).toEqual({ lagging: 14 + 4 * 30, "buffer-full": 0 });
    expect(f.skipped("ws")).toEqual({ lagging: 14 + 4 * 30, "buffer-full": 0 });
    expect(lagOf(f, v)).toBe(now - t0); // its first probe, unanswered since
    // The viewer that answers got everything.
    expect(fast.frames()).toHaveLength(150);
    expect(fv.skipped).toEqual(NO_SKIPS);
  });

  test("once it answers, a skipped viewer resumes at the next keyframe: a skipped notice (all it missed, its lag when the gap began), then the keyframe flagged discontinuity", () => {
    const f = makeFanout();
    f.setState("live");
    const [s, v] = join(f);
    publishAll(f, "k" + "d".repeat(29)); // 0..15 sent, 16..29 skipped
    answer(f, s, { at: now + 700 }); // its pongs arrive, late
    publishAll(f, "dd"); // 30 31: a delta cannot end the gap
    expect(s.log().at(-1)).toBe("15:d");
    publishAll(f, "kdd"); // 32 ends it; 33 34 follow
    expect(logAfter(s, "15:d")).toEqual(["skipped", "32:k+disc", "33:d", "34:d"]);
    const notice = s.texts().find((t) => t.type === "skipped");
    expect(notice).toEqual({ type: "skipped", reason: "lagging", frames: 16, lagMs: 16 * FRAME_MS });
    expect(v.skipped).toEqual({ lagging: 16, "buffer-full": 0 });
    expect(f.viewerInfos()[0]?.skipped).toEqual({ lagging: 16, "buffer-full": 0 });
  });

  test("a skipped viewer that answers only the newest ping resumes too (a pong proves everything before it)", () => {
    const f = makeFanout();
    const [s] = join(f);
    publishAll(f, "k" + "d".repeat(29));
    advance(300);
    f.onPong(s.viewer!, s.pings.at(-1)!.wire.payload());
    publishAll(f, "k");
    expect(s.log().slice(-2)).toEqual(["skipped", "30:k+disc"]);
  });

  test("a viewer that answers every probe at once is never skipped, whatever the frame sizes", () => {
    const f = makeFanout();
    f.setState("live");
    const [s, v] = join(f);
    const rand = mulberry32(5);
    for (let i = 0; i < 300; i++) {
      f.publish(frame(i % 30 === 0, 1000 + Math.floor(rand() * 60_000)));
      answer(f, s);
      expect(lagOf(f, v)).toBe(0);
    }
    expect(s.frames().map(([seq, flags]) => [seq, flags & DISCONTINUITY])).toEqual([...Array(300).keys()].map((n) => [n, 0]));
    expect(v.skipped).toEqual(NO_SKIPS);
    expect(s.texts().filter((t) => t.type === "skipped")).toEqual([]);
  });

  test("a viewer 300 ms away that keeps up is never skipped: its lag is its round trip, under maxLagMs", () => {
    const f = makeFanout();
    f.setState("live");
    const [s, v] = join(f);
    for (let i = 0; i < 600; i++) {
      f.publish(frame(i % 30 === 0, i % 30 === 0 ? 15_000 : 5_000));
      answerOlderThan(f, s, 300);
    }
    expect(v.skipped).toEqual(NO_SKIPS);
    expect(s.frames()).toHaveLength(600);
    expect(lagOf(f, v)).toBeLessThanOrEqual(300 + FRAME_MS);
  });

  test("a viewer 300 ms away that joins as the first keyframe is published, and reads at once, is never skipped", () => {
    // Its first pong comes a round trip after the keyframe was written, as it connected: that is
    // latency, not a read rate (50 bytes per ms for the 15 KB keyframe).
    const f = makeFanout();
    f.setState("live");
    const first = frame(true, 15_000);
    const [s, v] = join(f);
    f.publish(first);
    for (let i = 1; i < 300; i++) {
      f.publish(frame(i % 30 === 0, i % 30 === 0 ? 15_000 : 5_000));
      answerOlderThan(f, s, 300);
    }
    expect(v.skipped).toEqual(NO_SKIPS);
    expect(s.frames()).toHaveLength(300);
  });

  test("after a pipeline restart, a viewer that answered everything is not lagging by the length of the outage", () => {
    const f = makeFanout();
    const [s, v] = join(f);
    f.setState("live");
    publishAll(f, "kdd", s); // 0 1 2
    f.setState("restarting", "pipeline exited (1)", 2000);
    for (let i = 0; i < 12; i++) {
      advance(250);
      f.tick(millis(now)); // probes behind what it was last sent, answered
      answer(f, s);
    }
    f.setState("live");
    publishAll(f, "kdd", s); // 3 4 5 from the new pipeline
    expect(s.log().slice(-3)).toEqual(["3:k+disc", "4:d", "5:d"]);
    expect(v.skipped).toEqual(NO_SKIPS);
  });

  test("skip counts add up across viewers and gaps, by mode; a removed viewer's stay counted", () => {
    const f = makeFanout({ flow: { maxBufferedBytes: 1000 } });
    f.setState("live");
    const [, va] = join(f); // never answers: lagging
    const [b, vb] = join(f); // answers, but its queue is full: buffer-full
    const [, vc] = join(f, "webm"); // never answers: lagging, for /webm/
    expect(f.viewerCount()).toBe(3);
    expect(f.viewerCount("ws")).toBe(2);
    expect(f.viewerCount("webm")).toBe(1);
    publishAll(f, "kd", b); // 0 1
    b.bufferedAmount = 5000;
    advance(600);
    publishAll(f, "dddd", b); // 2..5
    expect(va.skipped).toEqual({ lagging: 4, "buffer-full": 0 });
    expect(vb.skipped).toEqual({ lagging: 0, "buffer-full": 4 });
    expect(vc.skipped).toEqual({ lagging: 4, "buffer-full": 0 });
    expect(f.skipped("ws")).toEqual({ lagging: 4, "buffer-full": 4 });
    expect(f.skipped("webm")).toEqual({ lagging: 4, "buffer-full": 0 });
    f.removeViewer(vb);
    expect(f.skipped("ws")).toEqual({ lagging: 4, "buffer-full": 4 });
    // The totals are a copy.
    (f.skipped("ws") as { lagging: number }).lagging = 100;
    expect(f.skipped("ws").lagging).toBe(4);
  });

  test("a viewer both lagging and backed up counts its gap as lagging, and all of it", () => {
    const f = makeFanout({ flow: { maxBufferedBytes: 1000 } });
    const [s, v] = join(f);
    publishAll(f, "kd"); // 0 1
    advance(1000);
    s.bufferedAmount = 5000;
    publishAll(f, "ddk"); // 2 3 4: lagging (4 too: not read, and the queue is full)
    answer(f, s);
    publishAll(f, "k"); // 5: all read, but the queue is still full
    expect(v.skipped).toEqual({ lagging: 4, "buffer-full": 0 });
    s.bufferedAmount = 0;
    publishAll(f, "k"); // 6
    expect(s.texts().at(-1)).toMatchObject({ type: "skipped", reason: "lagging", frames: 4 });
    expect(s.log().at(-1)).toBe("6:k+disc");
  });
});

describe("StreamFanout hold after a replay", () => {
  test("live frames are held until the replay is proven read: released in order on the pong of the probe behind its last frame, not on earlier ones", () => {
    const f = makeFanout();
    f.setState("live");
    publishAll(f, "kdd"); // 0 1 2
    const [s, v] = join(f);
    expect(s.pingCount()).toBe(3);
    publishAll(f, "dd"); // 3 4 held
    expect(s.log().at(-1)).toBe("2:d+replay");
    answer(f, s, { upTo: 2 });
    expect(s.log().at(-1)).toBe("2:d+replay");
    answer(f, s);
    expect(s.log().slice(-3)).toEqual(["2:d+replay", "3:d", "4:d"]);
    publishAll(f, "d", s);
    expect(s.log().at(-1)).toBe("5:d");
    expect(v.skipped).toEqual(NO_SKIPS);
  });

  test("a replay not proven read within maxLagMs: the held frames are dropped as lagging skips; once read, the next keyframe resumes with a skipped notice", () => {
    const f = makeFanout(); // maxLagMs 500
    f.setState("live");
    publishAll(f, "kdd"); // 0 1 2
    const [s, v] = join(f);
    publishAll(f, "d".repeat(15)); // 3..17 held (495 ms)
    expect(v.skipped).toEqual(NO_SKIPS);
    publishAll(f, "d"); // 18, 528 ms after the replay: all 16 dropped
    expect(v.skipped).toEqual({ lagging: 16, "buffer-full": 0 });
    expect(f.skipped("ws")).toEqual({ lagging: 16, "buffer-full": 0 });
    publishAll(f, "dd"); // 19 20 skipped
    answer(f, s); // now the replay is read
    publishAll(f, "d"); // 21: a delta cannot end the gap
    expect(s.log().at(-1)).toBe("2:d+replay");
    publishAll(f, "k");
    expect(logAfter(s, "2:d+replay")).toEqual(["skipped", "22:k+disc"]);
    expect(s.texts().at(-1)).toEqual({ type: "skipped", reason: "lagging", frames: 19, lagMs: 16 * FRAME_MS });
    expect(v.skipped).toEqual({ lagging: 19, "buffer-full": 0 });
  });

  test("the hold also times out on tick when no frame comes: the frames held are dropped", () => {
    const f = makeFanout();
    f.setState("live");
    publishAll(f, "kd");
    const [s, v] = join(f);
    publishAll(f, "dd"); // held
    advance(500);
    f.tick(millis(now));
    expect(v.skipped).toEqual({ lagging: 2, "buffer-full": 0 });
    answer(f, s);
    publishAll(f, "dk");
    expect(logAfter(s, "1:d+replay")).toEqual(["skipped", "5:k+disc"]);
    expect(s.texts().at(-1)).toMatchObject({ reason: "lagging", frames: 3 });
  });

  test("a hold that times out with no frame held skips nothing: a viewer that has read its replay by the next frame gets it", () => {
    // A stalled pipeline, or a frame rate below 2 fps: no live frame comes while the replay is read.
    const f = makeFanout();
    f.setState("live");
    for (const key of [true, false, false]) f.publish(frame(key, 50_000)); // 0 1 2
    const [s, v] = join(f);
    advance(600);
    f.tick(millis(now)); // the replay is not read yet, but nothing is held back
    answer(f, s, { at: now + 100 }); // read now (150 KB in 700 ms: a delta is read in no time)
    publishAll(f, "dd"); // 3 4 follow 2
    expect(logAfter(s, "2:d+replay")).toEqual(["3:d", "4:d"]);
    expect(v.skipped).toEqual(NO_SKIPS);
    expect(s.texts().filter((t) => t.type === "skipped")).toEqual([]);
  });

  test("a hold that times out with no frame held, the replay still unread when the next frame comes: a lagging gap starts at that frame", () => {
    const f = makeFanout();
    f.setState("live");
    publishAll(f, "kdd");
    const [s, v] = join(f);
    const joinedAt = now;
    advance(600);
    f.tick(millis(now));
    publishAll(f, "d"); // 3: the replay's probes are 633 ms old
    expect(v.skipped).toEqual({ lagging: 1, "buffer-full": 0 });
    answer(f, s);
    publishAll(f, "k");
    expect(logAfter(s, "2:d+replay")).toEqual(["skipped", "4:k+disc"]);
    expect(s.texts().at(-1)).toEqual({ type: "skipped", reason: "lagging", frames: 1, lagMs: 600 + FRAME_MS });
    expect(joinedAt).toBeLessThan(now);
  });
});

describe("StreamFanout pause, resume, resync", () => {
  test("pause: no frames and no stats until resume; frames missed while paused are not skips; resume replays the GOP", () => {
    const f = makeFanout({ statsIntervalMs: 0 });
    f.setState("live");
    const [s, v] = join(f);
    publishAll(f, "kd", s); // 0 1
    send(f, v, "pause");
    expect(v.paused).toBe(true);
    s.clear();
    publishAll(f, "ddkdd", s); // 2..6
    f.tick(millis(now));
    expect(s.log()).toEqual([]);
    expect(v.skipped).toEqual(NO_SKIPS);
    // A second pause changes nothing; resume replays the cached GOP (4 5 6), then live.
    send(f, v, "pause");
    advance(2000);
    send(f, v, "resume");
    expect(v.paused).toBe(false);
    answer(f, s);
    publishAll(f, "d", s); // 7
    expect(s.log()).toEqual(["4:k+replay+disc", "5:d+replay+disc", "6:d+replay+disc", "7:d"]);
    f.tick(millis(now));
    expect(s.texts().at(-1)).toMatchObject({ type: "stats", framesSent: 6 });
  });

  test("resume when not paused does nothing", () => {
    const f = makeFanout();
    const [s, v] = join(f);
    publishAll(f, "kd", s);
    s.clear();
    send(f, v, "resume");
    publishAll(f, "d", s);
    expect(s.log()).toEqual(["2:d"]);
  });

  test("resume with nothing cached waits for the next keyframe", () => {
    const f = makeFanout();
    const [s, v] = join(f);
    send(f, v, "pause");
    publishAll(f, "dd"); // no keyframe yet: nothing cached
    send(f, v, "resume");
    publishAll(f, "dkd", s);
    expect(s.log().slice(2)).toEqual(["3:k", "4:d"]);
  });

  test("resync replays the cached GOP flagged replay and discontinuity, a probe behind each frame, then live frames", () => {
    const f = makeFanout();
    const [s, v] = join(f);
    publishAll(f, "kdkd", s); // 0..3; the GOP is 2 3
    s.clear();
    send(f, v, "resync");
    expect(s.log({ pings: true })).toEqual(["2:k+replay+disc", "ping", "3:d+replay+disc", "ping"]);
    answer(f, s);
    publishAll(f, "dd", s);
    expect(s.log()).toEqual(["2:k+replay+disc", "3:d+replay+disc", "4:d", "5:d"]);
  });

  test("resync while paused unpauses and replays", () => {
    const f = makeFanout();
    const [s, v] = join(f);
    publishAll(f, "k", s);
    send(f, v, "pause");
    publishAll(f, "d");
    s.clear();
    send(f, v, "resync");
    expect(v.paused).toBe(false);
    answer(f, s);
    publishAll(f, "d", s);
    expect(s.log()).toEqual(["0:k+replay+disc", "1:d+replay+disc", "2:d"]);
  });

  test("a second resync within resyncMinIntervalMs does not replay: the viewer waits for the next keyframe", () => {
    const f = makeFanout({ resyncMinIntervalMs: 1000 });
    const [s, v] = join(f);
    publishAll(f, "kd", s); // 0 1
    send(f, v, "resync"); // replays 0 1
    answer(f, s);
    advance(500);
    s.clear();
    send(f, v, "resync"); // too soon
    expect(s.sent).toEqual([]);
    publishAll(f, "dd", s); // 2 3: its decoder was reset, so no deltas
    expect(s.log()).toEqual([]);
    expect(v.skipped).toEqual(NO_SKIPS); // a decoder reset is not a skip
    publishAll(f, "kd", s); // 4 5
    expect(s.frames().map(([seq, flags]) => [seq, flags & (KEY | REPLAY)])).toEqual([
      [4, KEY],
      [5, 0],
    ]);
    // Once the interval has passed, a resync replays again (the throttled one did not restart the interval).
    advance(1000);
    s.clear();
    send(f, v, "resync");
    expect(s.log()).toEqual(["4:k+replay+disc", "5:d+replay+disc"]);
  });

  test("resync ends a gap without a skipped notice: the replay starts at a keyframe", () => {
    const f = makeFanout({ flow: { maxBufferedBytes: 1000 } });
    const [s, v] = join(f);
    publishAll(f, "k", s);
    s.bufferedAmount = 5000;
    publishAll(f, "dd", s);
    s.bufferedAmount = 0;
    s.clear();
    send(f, v, "resync");
    answer(f, s);
    publishAll(f, "dk", s);
    expect(s.log()).toEqual(["0:k+replay+disc", "1:d+replay+disc", "2:d+replay+disc", "3:d", "4:k"]);
    expect(v.skipped).toEqual({ lagging: 0, "buffer-full": 2 });
  });

  test("a pause, then a resume long after: once the replay is read, live frames flow (the pause is not lag)", () => {
    const f = makeFanout();
    const [s, v] = join(f);
    publishAll(f, "kddddd", s); // 0..5
    send(f, v, "pause");
    publishAll(f, "d".repeat(24) + "k" + "d".repeat(35)); // 6..65 over two seconds; the GOP is 30..65
    s.clear();
    send(f, v, "resume");
    expect(s.frames()[0]).toEqual([30, KEY | REPLAY | DISCONTINUITY]);
    expect(s.frames()).toHaveLength(36);
    answer(f, s);
    publishAll(f, "dd", s); // 66 67
    expect(s.log().slice(-2)).toEqual(["66:d", "67:d"]);
    expect(v.skipped).toEqual(NO_SKIPS);
    expect(lagOf(f, v)).toBe(0);
  });

  test("a caps change while a joiner has not read its replay: nothing from the old format follows the new hello", () => {
    const f = makeFanout();
    const [a] = join(f);
    publishAll(f, "k", a); // 0
    const [b] = join(f); // replay: 0
    publishAll(f, "d", a); // 1 (old size), held for b
    f.setVideoInfo({ width: 320, height: 240, framerate: 30 });
    publishAll(f, "dk", a); // 2 3 (new size)
    answer(f, b); // its pong of the replay arrives
    publishAll(f, "d", a, b); // 4
    const afterHello = logAfter(b, "hello");
    expect(afterHello).toEqual(["3:k", "4:d"]);
  });

  test("a pipeline restart while a joiner has not read its replay: nothing from the old pipeline follows the restart", () => {
    const f = makeFanout();
    f.setState("live");
    publishAll(f, "kd"); // 0 1
    const [s] = join(f); // replay: 0 1
    publishAll(f, "d"); // 2 (old pipeline), held
    f.setState("restarting", "pipeline stalled", 500);
    f.setState("live");
    publishAll(f, "k"); // 3 (new pipeline)
    answer(f, s);
    publishAll(f, "d", s); // 4
    const afterRestart = logAfter(s, "state:restarting");
    expect(afterRestart).toEqual(["state:live", "3:k+disc", "4:d"]);
  });
});

describe("StreamFanout tick", () => {
  test("sends each /ws/ viewer a stats message: lag (as viewerInfos reports it, rounded to 0.1 ms), frames sent, skips", () => {
    const f = makeFanout({ statsIntervalMs: 0, flow: { maxBufferedBytes: 1000 } });
    const [a, va] = join(f); // never answers
    const [b] = join(f); // answers at once
    const [w] = join(f, "webm", "", true); // no stats on /webm/, not even with meta
    f.publish(frame(true)); // 0, with a probe
    advance(0.04);
    publishAll(f, "d", b); // 1, 33.04 ms later
    advance(0.02);
    publishAll(f, "d", b); // 2, 33.02 ms later
    b.bufferedAmount = 2000;
    advance(0.04);
    publishAll(f, "d", b); // 3, 33.04 ms later: b skips it
    b.bufferedAmount = 0;
    f.tick(millis(now));
    const aStats = a.texts().at(-1);
    expect(aStats).toEqual({ type: "stats", lagMs: lagOf(f, va), framesSent: 4, skipped: NO_SKIPS });
    expect(aStats?.lagMs).toBe(99.1);
    expect(b.texts().at(-1)).toEqual({ type: "stats", lagMs: 0, framesSent: 3, skipped: { lagging: 0, "buffer-full": 1 } });
    answer(f, a);
    f.tick(millis(now));
    expect(a.texts().at(-1)).toEqual({ type: "stats", lagMs: 0, framesSent: 4, skipped: NO_SKIPS });
    expect(a.log().filter((l) => l === "stats")).toHaveLength(2);
    expect(w.texts().filter((t) => t.type === "stats")).toEqual([]);
  });

  test("stats go out once per statsIntervalMs", () => {
    const f = makeFanout({ statsIntervalMs: 1000 });
    const [s] = join(f);
    f.tick(millis(now));
    f.tick(millis(now + 999));
    f.tick(millis(now + 1000));
    expect(s.log().filter((l) => l === "stats")).toHaveLength(2);
  });

  test("no stats while paused", () => {
    const f = makeFanout({ statsIntervalMs: 0 });
    const [s, v] = join(f);
    send(f, v, "pause");
    f.tick(millis(now));
    expect(s.log()).toEqual(["hello", "state:starting"]);
    send(f, v, "resume");
    f.tick(millis(now));
    expect(s.log()).toEqual(["hello", "state:starting", "stats"]);
  });

  test("a socket over maxBufferedBytes for longer than slowViewerGraceMs is closed with 4408 and removed; one that drains in time is not", () => {
    const closed: Viewer[] = [];
    const f = makeFanout({ flow: { maxBufferedBytes: 1000 }, slowViewerGraceMs: 5000, onSlowViewerClosed: (v) => closed.push(v) });
    const [stuck, vStuck] = join(f);
    const [drains, vDrains] = join(f, "webm");
    const [fine] = join(f);
    const t0 = now;
    stuck.bufferedAmount = drains.bufferedAmount = 1001;
    f.tick(millis(t0));
    f.tick(millis(t0 + 3000));
    drains.bufferedAmount = 500; // drained: its over-limit time starts again
    f.tick(millis(t0 + 4000));
    drains.bufferedAmount = 1001;
    f.tick(millis(t0 + 4500));
    f.tick(millis(t0 + 4999));
    expect(closed).toEqual([]);
    expect(stuck.closes).toEqual([]);
    f.tick(millis(t0 + 5001));
    expect(stuck.closes).toHaveLength(1);
    expect(stuck.closes[0]?.code).toBe(TOO_SLOW);
    expect(stuck.closes[0]?.reason).toMatch(/too slow/);
    expect(closed).toEqual([vStuck]);
    expect(f.viewerCount()).toBe(2);
    expect(f.viewerList()).not.toContain(vStuck);
    expect(drains.closes).toEqual([]);
    // The closed viewer gets no more stats or frames; the others do.
    const stuckSent = stuck.sent.length;
    now = t0 + 6000;
    f.tick(millis(now));
    publishAll(f, "k");
    expect(stuck.sent).toHaveLength(stuckSent);
    expect(fine.log().at(-1)).toBe("0:k");
    // The one that drained is closed once it has been over the limit for the grace period since.
    f.tick(millis(t0 + 9500));
    expect(drains.closes).toEqual([]);
    f.tick(millis(t0 + 9501));
    expect(drains.closes.map((c) => c.code)).toEqual([TOO_SLOW]);
    expect(closed).toEqual([vStuck, vDrains]);
    expect(fine.closes).toEqual([]);
    expect(f.viewerCount()).toBe(1);
  });

  test("a paused viewer over the limit is closed too (pausing does not exempt it)", () => {
    const f = makeFanout({ flow: { maxBufferedBytes: 1000 }, slowViewerGraceMs: 1000 });
    const [s, v] = join(f);
    send(f, v, "pause");
    s.bufferedAmount = 5000;
    f.tick(millis(now));
    f.tick(millis(now + 1001));
    expect(s.closes.map((c) => c.code)).toEqual([TOO_SLOW]);
    expect(f.viewerCount()).toBe(0);
  });
});

describe("StreamFanout /webm/ viewers", () => {
  test("a /webm/ viewer gets the init segment, then the cached GOP as its first cluster at 0 with a probe behind each frame, then live blocks once it is read", () => {
    const f = makeFanout();
    f.setState("live");
    publishAll(f, "kdkdd"); // the GOP is 2 3 4
    const [s, v] = join(f, "webm");
    expect(s.log({ pings: true })).toEqual(["bin", "bin", "ping", "bin", "ping", "bin", "ping"]); // no text without meta
    publishAll(f, "d"); // 5, held
    expect(s.wires()).toHaveLength(4);
    answer(f, s);
    publishAll(f, "dk", s); // 6; 7 a new cluster
    const parsed = s.webm();
    expectValidLiveWebm(parsed);
    expect(parsed.clusters.map((c) => c.blocks.map((b) => b.time))).toEqual([
      [0, 33, 66, 99, 132],
      [165],
    ]);
    expect(v.skipped).toEqual(NO_SKIPS);
  });

  test("a /webm/ viewer that never answers is skipped after maxLagMs like a /ws/ one; once it answers it resumes at a keyframe, a new cluster one frame after the last block it got", () => {
    const f = makeFanout();
    f.setState("live");
    const [s, v] = join(f, "webm");
    publishAll(f, "k" + "d".repeat(29)); // 0..15 sent, 16..29 skipped
    expect(v.skipped).toEqual({ lagging: 14, "buffer-full": 0 });
    expect(f.skipped("webm")).toEqual({ lagging: 14, "buffer-full": 0 });
    expect(f.skipped("ws")).toEqual(NO_SKIPS);
    expect(s.log({ pings: true }).at(-1)).toBe("ping"); // the trailing probe
    const before = s.sent.length;
    publishAll(f, "k" + "d".repeat(9)); // 30..39: nothing, not even for the keyframe
    expect(s.sent).toHaveLength(before);
    answer(f, s, { at: now + 100 });
    publishAll(f, "dd"); // still in the gap
    publishAll(f, "kdd"); // 42 resumes
    const parsed = s.webm();
    expectValidLiveWebm(parsed);
    expect(parsed.clusters).toHaveLength(2);
    const first = parsed.clusters[0]!;
    expect(first.blocks).toHaveLength(16);
    const lastTime = first.blocks.at(-1)!.time;
    expect(lastTime).toBe(15 * FRAME_MS);
    // No hole: the next cluster starts one frame after the last block, not where the stream is.
    expect(parsed.clusters[1]!.timestamp).toBe(lastTime + WEBM_FRAME_MS);
    expect(parsed.clusters[1]!.blocks.map((b) => b.time)).toEqual([0, 1, 2].map((i) => lastTime + WEBM_FRAME_MS + i * FRAME_MS));
    expect(v.skipped).toEqual({ lagging: 14 + 10 + 2, "buffer-full": 0 });
  });

  test("a /webm/ viewer whose queue is over maxBufferedBytes skips too, mid-cluster, and resumes at a keyframe without a hole in its timeline", () => {
    const f = makeFanout({ flow: { maxBufferedBytes: 1000 } });
    f.setState("live");
    const [s, v] = join(f, "webm");
    publishAll(f, "kddd", s); // 0..3
    s.bufferedAmount = 5000;
    publishAll(f, "ddk", s); // 4 5 6 skipped
    s.bufferedAmount = 0;
    publishAll(f, "dkd", s); // 7 skipped; 8 resumes; 9
    expect(v.skipped).toEqual({ lagging: 0, "buffer-full": 4 });
    expect(f.skipped("webm")).toEqual({ lagging: 0, "buffer-full": 4 });
    const parsed = s.webm();
    expectValidLiveWebm(parsed);
    expect(parsed.clusters.map((c) => c.blocks.map((b) => b.time))).toEqual([
      [0, 33, 66, 99],
      [132, 165],
    ]);
  });

  test("a /webm/ viewer that joined before the first keyframe stays when it declares another level of the same codec, and is closed for another codec", () => {
    const f = makeFanout({ codec: "vp09.00.30.08" });
    const [s] = join(f, "webm", "", true);
    f.setState("live");
    f.publish({ ...frame(true), codec: "vp09.00.20.08" });
    answer(f, s);
    publishAll(f, "d", s);
    expect(s.closes).toEqual([]);
    expect(s.texts().filter((m) => m.type === "hello").map((m) => (m as { codec: string }).codec)).toEqual(["vp09.00.30.08", "vp09.00.20.08"]);
    expect(s.webm().clusters.map((c) => c.blocks.map((b) => b.time))).toEqual([[0, 33]]);
    f.publish({ ...frame(true), codec: "av01.0.04M.08" });
    expect(s.closes.map((c) => c.code)).toEqual([CloseCode.FORMAT_CHANGED]);
  });

  test("a /webm/ viewer's timeline goes on across a pipeline restart (the new PTS start at 0)", () => {
    const f = makeFanout();
    f.setState("live");
    const [s] = join(f, "webm");
    const frameUs = 1e6 / 30;
    for (let i = 0; i < 4; i++) f.publish(frame(i === 0, 100, false, 7_000_000 + i * frameUs));
    answer(f, s);
    f.setState("restarting", "pipeline stalled", 500);
    advance(2000);
    f.setState("live");
    for (let i = 0; i < 3; i++) f.publish(frame(i === 0, 100, false, i * frameUs));
    answer(f, s);
    const parsed = s.webm();
    expectValidLiveWebm(parsed);
    expect(parsed.clusters.map((c) => c.blocks.map((b) => b.time))).toEqual([
      [0, 33, 67, 100],
      [133, 167, 200],
    ]);
  });
});

type Profile = "prompt" | "late" | "silent" | "webm";

/** One viewer of the randomized run, with what the model expects of it. */
interface Tracked {
  readonly name: string;
  readonly socket: FakeSocket;
  readonly viewer: Viewer;
  readonly profile: Profile;
  /** How long its pongs take ("late" and "webm" viewers). */
  readonly delayMs: number;
  /** Index of the next message in socket.sent to check. */
  read: number;
  /** Sequence numbers received, in order. */
  readonly received: number[];
  /** The next frame must be a keyframe: a frame was not sent, or the decoder was reset, or the pipeline changed. */
  mustKey: boolean;
  lastSeq: number | null;
  /** A `skipped` notice came: the next message must be the keyframe that ends the gap. */
  afterNotice: boolean;
  /** /webm/: the JSON of the frame whose bytes come next, and the media time of the last frame. */
  meta: { seq: number; key: boolean; mediaTimeMs: number } | null;
  lastMediaMs: number | null;
  paused: boolean;
  attached: boolean;
  /** The last thing that made a keyframe due, for the failure message. */
  why: string;
}

describe("StreamFanout randomized run", () => {
  test.each([1, 2, 3, 42])("seed %i: after any frame a viewer was not sent, the next frame it receives is a keyframe", (seed) => {
    const rand = mulberry32(seed);
    const chance = (p: number): boolean => rand() < p;
    const MAX_BUFFERED = 5000;
    const slowClosed: Viewer[] = [];
    const f = makeFanout({
      flow: { maxLagMs: 200, maxBufferedBytes: MAX_BUFFERED },
      slowViewerGraceMs: 2000,
      resyncMinIntervalMs: 1000,
      onSlowViewerClosed: (v) => slowClosed.push(v),
    });
    f.setState("live");
    const violations: string[] = [];
    const coverage = { lagging: 0, "buffer-full": 0, replayed: 0, framesReceived: 0, webmFrames: 0, webmGaps: 0, throttledResyncs: 0, closedSlow: 0, restarts: 0, capsChanges: 0 };
    const tracked: Tracked[] = [];
    let joined = 0;

    const join1 = (): void => {
      const profiles: Profile[] = ["prompt", "late", "silent", "webm"];
      const profile = profiles[Math.floor(rand() * profiles.length)] ?? "prompt";
      const [socket, viewer] = join(f, profile === "webm" ? "webm" : "ws", "", true);
      const delayMs = profile === "prompt" ? 0 : Math.floor(rand() * 600);
      // A new viewer starts from nothing: its first frame must be a keyframe.
      tracked.push({
        name: `viewer ${++joined} (${profile}, ${delayMs} ms)`,
        socket,
        viewer,
        profile,
        delayMs,
        read: 0,
        received: [],
        mustKey: true,
        lastSeq: null,
        afterNotice: false,
        meta: null,
        lastMediaMs: null,
        paused: false,
        attached: true,
        why: "join",
      });
    };

    /** Checks a frame the viewer received. */
    const got = (t: Tracked, seq: number, key: boolean, what: string): void => {
      if (t.paused) violations.push(`${what} while paused`);
      if (t.mustKey && !key) violations.push(`${what}: a delta when a keyframe was due (${t.why})`);
      if (!t.mustKey && !key && (t.lastSeq === null || seq !== nextSeq(t.lastSeq))) violations.push(`${what}: a delta whose reference it did not get`);
      t.mustKey = false;
      t.lastSeq = seq;
      t.received.push(seq);
    };

    /** Checks the messages a viewer got since the last check. */
    const check = (t: Tracked, step: number): void => {
      for (; t.read < t.socket.sent.length; t.read++) {
        const m = t.socket.sent[t.read]!;
        if (m.kind === "ping") continue;
        if (t.profile === "webm") {
          // Meta viewers: hello and state, then each frame's JSON right before its bytes.
          if (m.kind === "text") {
            const j = JSON.parse(m.text) as { type: string; seq?: number; key?: boolean; mediaTimeMs?: number };
            if (j.type === "frame") {
              if (t.meta !== null) violations.push(`${t.name} step ${step}: two frame notes in a row`);
              t.meta = { seq: j.seq!, key: j.key!, mediaTimeMs: j.mediaTimeMs! };
            } else if (j.type === "skipped" || j.type === "stats") {
              violations.push(`${t.name} step ${step}: ${j.type} on /webm/`);
            }
            continue;
          }
          const note = t.meta;
          if (note === null) continue; // the init segment
          t.meta = null;
          const what = `${t.name} step ${step}: got ${note.seq}${note.key ? "k" : "d"} after ${t.lastSeq}`;
          const gap = t.lastSeq !== null && note.seq !== nextSeq(t.lastSeq);
          if (t.lastMediaMs !== null) {
            if (note.mediaTimeMs <= t.lastMediaMs) violations.push(`${what}: media time ${note.mediaTimeMs} after ${t.lastMediaMs}`);
            if (gap && note.mediaTimeMs !== t.lastMediaMs + WEBM_FRAME_MS) violations.push(`${what}: a hole in the timeline (${t.lastMediaMs} → ${note.mediaTimeMs})`);
          } else if (note.mediaTimeMs !== 0) {
            violations.push(`${what}: the timeline starts at ${note.mediaTimeMs}`);
          }
          if (gap) coverage.webmGaps++;
          t.lastMediaMs = note.mediaTimeMs;
          coverage.webmFrames++;
          got(t, note.seq, note.key, what);
          continue;
        }
        if (m.kind === "text") {
          const j = JSON.parse(m.text) as { type: string; reason?: string; frames?: number };
          if (j.type === "skipped") {
            if (t.afterNotice) violations.push(`${t.name} step ${step}: two skipped notices in a row`);
            if (j.reason !== "lagging" && j.reason !== "buffer-full") violations.push(`${t.name}: bad reason ${j.reason}`);
            else coverage[j.reason]++;
            if (!(typeof j.frames === "number" && j.frames >= 1)) violations.push(`${t.name} step ${step}: skipped notice with frames ${j.frames}`);
            t.afterNotice = true;
          } else if (j.type === "stats" && t.paused) {
            violations.push(`${t.name} step ${step}: stats while paused`);
          }
          continue;
        }
        const d = decodeBinaryMessage(m.wire.payload());
        if (d.kind !== "video") {
          violations.push(`${t.name}: not a video frame`);
          continue;
        }
        const { seq, flags } = d.header;
        const key = (flags & KEY) !== 0;
        const what = `${t.name} step ${step}: got ${label(seq, flags)} after ${t.lastSeq}`;
        if (t.afterNotice && (!key || (flags & DISCONTINUITY) === 0)) violations.push(`${what}: a skipped notice must be followed by a keyframe flagged discontinuity`);
        if (flags & REPLAY) coverage.replayed++;
        coverage.framesReceived++;
        t.afterNotice = false;
        got(t, seq, key, what);
      }
    };

    const live = (): Tracked[] => tracked.filter((t) => t.attached);

    for (let i = 0; i < 4; i++) join1();
    let restarting = false;
    for (let step = 0; step < 4000; step++) {
      // The pipeline.
      if (restarting) {
        advance(300);
        f.setState("live");
        restarting = false;
      }
      // A frame a viewer is not sent shows as a break in the sequence numbers it receives (frames
      // held back after a replay may come later, in order), so each delta must follow its reference.
      f.publish(frame(step === 0 || chance(1 / 25), 100 + Math.floor(rand() * 400)));
      for (const t of live()) check(t, step);
      if (rand() < 0.3) advance(Math.floor(rand() * 20)); // jitter

      // The viewers.
      for (const t of live()) {
        const s = t.socket;
        // Queues that fill now and then: for a short while, but for long on "silent" viewers.
        if (s.bufferedAmount > 0 ? chance(t.profile === "silent" ? 0.01 : 0.15) : chance(0.02)) {
          s.bufferedAmount = s.bufferedAmount > 0 ? 0 : Math.floor(rand() * 3 * MAX_BUFFERED);
        }
        // Pongs: at once, or once they are `delayMs` old; never from "silent" viewers.
        if (t.profile === "prompt" && chance(0.9)) answer(f, s);
        if ((t.profile === "late" || t.profile === "webm") && chance(0.5)) answerOlderThan(f, s, t.delayMs);
        check(t, step); // what the pongs released
        if (t.profile === "webm") continue;

        const newest = t.received.at(-1);
        if (newest !== undefined && !t.paused && chance(0.3)) {
          try {
            const back = Math.floor(rand() * 12);
            ack(f, t.viewer, t.received[Math.max(0, t.received.length - 1 - back)]!);
          } catch (err) {
            violations.push(`${t.name} step ${step}: ack of a received frame threw ${String(err)}`);
          }
        }
        if (!t.paused && chance(0.004)) {
          send(f, t.viewer, "pause");
          t.paused = true;
        } else if (t.paused && chance(0.05)) {
          const sentBefore = s.sent.length;
          t.paused = false;
          t.mustKey = true; // the player resets its decoder when it comes back
          t.why = `resume at step ${step}`;
          send(f, t.viewer, "resume");
          if (s.sent.length === sentBefore) coverage.throttledResyncs++;
        } else if (chance(0.004)) {
          const sentBefore = s.sent.length;
          t.paused = false;
          t.mustKey = true; // a resync is asked for after a decoder reset
          t.why = `resync at step ${step}`;
          send(f, t.viewer, "resync");
          if (s.sent.length === sentBefore) coverage.throttledResyncs++;
        }
        check(t, step);
      }

      // The stream and the server around it.
      if (!restarting && chance(0.003)) {
        for (const t of live()) check(t, step);
        f.setState("restarting", "pipeline stalled", 300);
        for (const t of live()) Object.assign(t, { mustKey: true, why: `pipeline restart at step ${step}` });
        restarting = true;
        coverage.restarts++;
      }
      if (chance(0.002)) {
        for (const t of live()) check(t, step);
        const small = f.videoInfo.width === 640;
        f.setVideoInfo(small ? { width: 320, height: 240, framerate: 30 } : VIDEO);
        for (const t of live()) {
          Object.assign(t, { mustKey: true, why: `caps change at step ${step}` });
          if (t.profile === "webm") {
            // A new picture size needs a new init segment: /webm/ viewers are closed to reconnect.
            if (t.socket.closes[0]?.code !== FORMAT_CHANGED) violations.push(`${t.name}: not closed with 4409 on a caps change`);
            t.attached = false;
          }
        }
        coverage.capsChanges++;
      }
      if (step % 8 === 0) {
        f.tick(millis(now));
        for (const t of live()) {
          check(t, step);
          if (t.socket.closes.length > 0) {
            if (!slowClosed.includes(t.viewer)) violations.push(`${t.name}: closed but onSlowViewerClosed was not called`);
            if (t.socket.closes[0]?.code !== TOO_SLOW) violations.push(`${t.name}: closed with ${t.socket.closes[0]?.code}`);
            t.attached = false;
            coverage.closedSlow++;
          }
        }
      }
      if (live().length < 8 && chance(0.01)) join1();
      if (live().length > 2 && chance(0.002)) {
        const t = live()[Math.floor(rand() * live().length)]!;
        f.removeViewer(t.viewer);
        t.attached = false;
      }
    }
    for (const t of live()) check(t, 4000);

    expect(violations.slice(0, 20)).toEqual([]);
    expect(f.viewerCount()).toBe(live().length);
    // Every skip is counted once, for the viewer and in its mode's totals.
    for (const mode of ["ws", "webm"] as const) {
      const sum = { lagging: 0, "buffer-full": 0 };
      for (const t of tracked.filter((x) => x.viewer.mode === mode)) {
        sum.lagging += t.viewer.skipped.lagging;
        sum["buffer-full"] += t.viewer.skipped["buffer-full"];
      }
      expect(f.skipped(mode), mode).toEqual(sum);
    }
    // The run went through what it is meant to test.
    expect(coverage.framesReceived).toBeGreaterThan(3000);
    expect(coverage.webmFrames).toBeGreaterThan(200);
    expect(coverage.closedSlow).toBeGreaterThan(0);
    expect(coverage.webmGaps).toBeGreaterThan(0);
    expect(coverage.lagging).toBeGreaterThan(0);
    expect(coverage["buffer-full"]).toBeGreaterThan(0);
    expect(coverage.replayed).toBeGreaterThan(0);
    expect(coverage.restarts).toBeGreaterThan(0);
  });
});

function message(key: boolean, seq: number, size = 10): FrameMessage {
  const header: VideoFrameHeader = { flags: key ? KEY : 0, seq, pts: micros(seq * 33_333), serverTime: millis(seq) };
  return FrameMessage.encode(header, new Uint8Array(size));
}

describe("GopCache", () => {
  test("a keyframe starts a new GOP; deltas follow it in order", () => {
    const gop = new GopCache();
    gop.push(message(true, 0));
    gop.push(message(false, 1));
    gop.push(message(true, 2));
    gop.push(message(false, 3));
    gop.push(message(false, 4));
    expect(gop.snapshot().map((m) => m.seq)).toEqual([2, 3, 4]);
    expect(gop.length).toBe(3);
    expect(gop.byteLength).toBe(3 * (24 + 10));
  });

  test("deltas before any keyframe are ignored", () => {
    const gop = new GopCache();
    gop.push(message(false, 0));
    gop.push(message(false, 1));
    expect(gop.snapshot()).toEqual([]);
    expect(gop.byteLength).toBe(0);
    gop.push(message(true, 2));
    expect(gop.snapshot().map((m) => m.seq)).toEqual([2]);
  });

  test("snapshot is a copy", () => {
    const gop = new GopCache();
    gop.push(message(true, 0));
    const snap = gop.snapshot();
    gop.push(message(false, 1));
    expect(snap).toHaveLength(1);
  });

  test("too many frames: the whole GOP is dropped and counted, deltas ignored until the next keyframe", () => {
    const gop = new GopCache({ maxFrames: 3, maxBytes: 1_000_000 });
    gop.push(message(true, 0));
    gop.push(message(false, 1));
    gop.push(message(false, 2));
    expect(gop.length).toBe(3);
    gop.push(message(false, 3));
    expect(gop.length).toBe(0);
    expect(gop.byteLength).toBe(0);
    expect(gop.overflows).toBe(1);
    gop.push(message(false, 4));
    expect(gop.length).toBe(0);
    expect(gop.overflows).toBe(1);
    gop.push(message(true, 5));
    expect(gop.snapshot().map((m) => m.seq)).toEqual([5]);
  });

  test("a keyframe alone above the byte limit is not cached", () => {
    const gop = new GopCache({ maxFrames: 100, maxBytes: 33 });
    gop.push(message(true, 0)); // 34 bytes
    expect(gop.length).toBe(0);
    expect(gop.overflows).toBe(1);
  });

  test("too many bytes: the whole GOP is dropped and counted", () => {
    const gop = new GopCache({ maxFrames: 100, maxBytes: 3 * 34 });
    gop.push(message(true, 0)); // 34 bytes each
    gop.push(message(false, 1));
    gop.push(message(false, 2));
    expect(gop.byteLength).toBe(102);
    gop.push(message(false, 3));
    expect(gop.length).toBe(0);
    expect(gop.overflows).toBe(1);
  });
});

describe("FrameMessage", () => {
  test("encodes once; withFlags makes one variant per flag set and leaves the live bytes alone", () => {
    const m = message(true, 7, 16);
    const live = m.wire.payload();
    const replay = m.withFlags(REPLAY);
    expect(m.withFlags(REPLAY)).toBe(replay);
    expect(replay).not.toBe(m.wire);
    expect(replay.payload()[1]).toBe(KEY | REPLAY);
    expect(m.wire.payload()).toEqual(live);
    expect(live[1]).toBe(KEY);
    const both = m.withFlags(REPLAY | DISCONTINUITY);
    expect(both).not.toBe(replay);
    expect(both.payload()[1]).toBe(KEY | REPLAY | DISCONTINUITY);
    expect(replay.payload()[1]).toBe(KEY | REPLAY);
    // Everything but the flags byte is the same…
    const b = both.payload();
    expect([...b.subarray(0, 1), ...b.subarray(2)]).toEqual([...live.subarray(0, 1), ...live.subarray(2)]);
    // …and the VP8 bytes are the very buffer every variant shares, not a copy.
    expect(m.wire.parts[1]).toBe(m.data);
    expect(replay.parts[1]).toBe(m.data);
    expect(both.parts[1]).toBe(m.data);
  });

  test("flags already set (or none) give the live message itself", () => {
    const m = message(true, 1);
    expect(m.withFlags(0)).toBe(m.wire);
    expect(m.withFlags(KEY)).toBe(m.wire);
    expect(m.key).toBe(true);
    expect(message(false, 2).key).toBe(false);
    expect(m.seq).toBe(1);
    expect(m.byteLength).toBe(24 + 10);
  });
});

describe("RateMeter", () => {
  test("frames per second and kbit/s over the window; old samples fall out", () => {
    const meter = new RateMeter(2000);
    for (let t = 0; t < 2000; t += 100) meter.add(millis(t), 1000); // 20 samples at 0..1900
    // 20 frames / 2 s; 20 000 bytes × 8 / 1000 / 2 s.
    expect(meter.rates(millis(1900))).toEqual({ fps: 10, kbps: 80 });
    // At 2050 the sample at 0 is out of the window: 19 left.
    expect(meter.rates(millis(2050))).toEqual({ fps: 9.5, kbps: 76 });
    expect(meter.rates(millis(10_000))).toEqual({ fps: 0, kbps: 0 });
  });
});

describe("StreamFanout /mp4/ viewers (H.264)", () => {
  const SPS = [0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80];
  const PPS = [0x68, 0xce, 0x3c, 0x80];
  const startCode = [0, 0, 0, 1];
  /** An Annex B access unit: SPS, PPS and an IDR slice for a keyframe, a non-IDR slice otherwise. */
  function h264Frame(key: boolean): EncodedFrame {
    advance(FRAME_MS);
    const slice = key ? [0x65, 0x88, 0x84, 0x21] : [0x41, 0x9a, 0x02, now & 0xff];
    const data = new Uint8Array(key ? [...startCode, ...SPS, ...startCode, ...PPS, ...startCode, ...slice] : [...startCode, ...slice]);
    return { pts: micros(now * 1000), key, discont: false, data, receivedAt: millis(now), ...(key ? { codec: "avc1.42C01E" } : {}) };
  }
  const publishH264 = (f: StreamFanout, pattern: string, ...prompt: FakeSocket[]): void => {
    for (const c of pattern) {
      f.publish(h264Frame(c === "k"));
      for (const s of prompt) answer(f, s);
    }
  };
  const mp4Of = (s: FakeSocket): ParsedMp4 => readMp4(Buffer.concat(s.wires().map((w) => w.payload())));

  test("a viewer joining mid-GOP gets ftyp+moov (avcC from the in-band SPS/PPS), then one fragment per frame from 0, the sample length-prefixed", () => {
    const f = makeFanout({ codec: "avc1.42C01E" });
    f.setState("live");
    publishH264(f, "kdd");
    const [s] = join(f, "mp4");
    publishH264(f, "ddkd", s);
    const parsed = mp4Of(s);
    expect(parsed.order).toEqual(["ftyp", "moov", ...Array<string[]>(7).fill(["moof", "mdat"]).flat()]);
    expect(parsed).toMatchObject({ timescale: 1000, width: 640, height: 480 });
    expect([...parsed.avcC!]).toEqual([1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, SPS.length, ...SPS, 1, 0, PPS.length, ...PPS]);
    expect(parsed.fragments.map((g) => g.time)).toEqual([0, 33, 66, 99, 132, 165, 198]);
    expect(parsed.fragments.map((g) => g.sync)).toEqual([true, false, false, false, false, true, false]);
    expect(parsed.fragments.every((g) => g.duration === 33)).toBe(true);
    expect([...parsed.fragments[1]!.sample]).toEqual([0, 0, 0, 4, 0x41, 0x9a, 0x02, parsed.fragments[1]!.sample[7]!]);
    expect([...parsed.fragments[0]!.sample.subarray(0, 4 + SPS.length)]).toEqual([0, 0, 0, SPS.length, ...SPS]);
  });

  test("viewers that joined in one GOP share each fragment; a viewer of a later GOP has its own moof but the same sample bytes", () => {
    const f = makeFanout({ codec: "avc1.42C01E" });
    f.setState("live");
    publishH264(f, "kd");
    const [a] = join(f, "mp4");
    const [b] = join(f, "mp4");
    publishH264(f, "kd", a, b);
    const [c] = join(f, "mp4");
    publishH264(f, "dd", a, b, c);
    const [wa, wb, wc] = [a, b, c].map((s) => s.wires());
    expect(wa!.length).toBe(wb!.length);
    wa!.forEach((w, i) => expect(w).toBe(wb![i])); // the very same messages
    // c's first fragment is the keyframe a and b got third (its GOP replayed), on c's timeline (from 0).
    expect(mp4Of(c).fragments.map((g) => g.time)).toEqual([0, 33, 66, 99]);
    expect(mp4Of(a).fragments.map((g) => g.time)).toEqual([0, 33, 66, 99, 132, 165]);
    const lastA = wa!.at(-1)!;
    const lastC = wc!.at(-1)!;
    expect(lastC).not.toBe(lastA);
    expect(lastC.parts[1]).toBe(lastA.parts[1]); // the sample: one buffer for every viewer
  });

  test("after a pipeline restart the timeline goes on one frame after the last fragment", () => {
    const f = makeFanout({ codec: "avc1.42C01E" });
    f.setState("live");
    const [s] = join(f, "mp4");
    publishH264(f, "kdd", s);
    f.setState("restarting", "pipeline stalled", 500);
    advance(2000);
    f.setState("live");
    publishH264(f, "kd", s);
    expect(mp4Of(s).fragments.map((g) => g.time)).toEqual([0, 33, 66, 99, 132]);
  });

  test("each MSE path refuses the other container's codec with 4415, naming the right path", () => {
    const h264 = makeFanout({ codec: "avc1.42C01E" });
    const [onWebm] = join(h264, "webm");
    expect(onWebm.closes).toEqual([{ code: 4415, reason: expect.stringContaining("/mp4/cam0") as string }]);
    const vp9 = makeFanout({ codec: "vp09.00.30.08" });
    const [onMp4] = join(vp9, "mp4");
    expect(onMp4.closes).toEqual([{ code: 4415, reason: expect.stringContaining("/webm/cam0") as string }]);
    expect(h264.viewerCount()).toBe(0);
    expect(vp9.viewerCount()).toBe(0);
    expect(join(vp9, "webm")[0].closes).toEqual([]);
  });
});

describe("StreamFanout fed by an origin (relay, prime)", () => {
  /** A frame as an origin numbered it. */
  const numbered = (seq: number, key: boolean, extraFlags = 0): { header: VideoFrameHeader; data: Uint8Array } => {
    advance(FRAME_MS);
    return { header: { flags: (key ? KEY : 0) | extraFlags, seq, pts: micros(seq * 33_333), serverTime: millis(now - 5) }, data: new Uint8Array(50).fill(key ? 0x10 : 0x11) };
  };

  test("keeps the origin's sequence numbers and server time", () => {
    const f = makeFanout();
    const [s] = join(f);
    f.setState("live");
    const first = numbered(4711, true);
    f.relay(first);
    f.relay(numbered(4712, false));
    expect(s.log()).toEqual(["hello", "state:starting", "state:live", "4711:k", "4712:d"]);
    const d = decodeBinaryMessage(s.wires()[0]!.payload());
    expect(d.kind === "video" && d.header.serverTime).toBe(first.header.serverTime);
  });

  test("a gap in the origin's numbers makes every viewer skip to the next keyframe, flagged discontinuity", () => {
    const f = makeFanout();
    const [s] = join(f);
    f.setState("live");
    for (const [seq, key] of [[0, true], [1, false], [3, false], [4, false], [5, true], [6, false]] as const) f.relay(numbered(seq, key));
    expect(s.log().slice(3)).toEqual(["0:k", "1:d", "5:k+disc", "6:d"]);
    // The cache starts again at the keyframe after the gap: a joiner is not sent a delta whose reference was lost.
    const [late] = join(f);
    expect(late.log().slice(2)).toEqual(["5:k+replay+disc", "6:d+replay"]);
  });

  test("a frame not after the last (a duplicate, an old one) is dropped", () => {
    const f = makeFanout();
    const [s] = join(f);
    f.setState("live");
    expect(f.relay(numbered(10, true))).not.toBeNull();
    expect(f.relay(numbered(10, true))).toBeNull();
    expect(f.relay(numbered(9, false))).toBeNull();
    f.relay(numbered(11, false));
    expect(s.log().slice(3)).toEqual(["10:k", "11:d"]);
  });

  test("prime: the origin's GOP is cached and replayed to viewers that were sent nothing yet; live frames follow", () => {
    const f = makeFanout();
    const [s] = join(f);
    f.setState("live");
    f.prime([numbered(20, true), numbered(21, false), numbered(22, false)]);
    f.relay(numbered(22, false)); // already in the GOP: dropped
    answer(f, s); // the replay is read: live frames are no longer held
    f.relay(numbered(23, false));
    expect(s.log().slice(3)).toEqual(["20:k+replay", "21:d+replay", "22:d+replay", "23:d"]);
    expect(f.gopFrames).toBe(4);
  });

  test("tells its viewer count as it changes", () => {
    const counts: number[] = [];
    const f = makeFanout({ onViewerCount: (n) => counts.push(n) });
    const [, a] = join(f);
    const [, b] = join(f);
    f.removeViewer(a);
    f.removeViewer(a);
    f.removeViewer(b);
    expect(counts).toEqual([1, 2, 1, 0]);
  });

  test("each tap sees every frame numbered, and each change of state and format, until it is removed", () => {
    const f = makeFanout();
    const seen: string[] = [];
    const other: string[] = [];
    const untap = f.addTap({
      format: (hello) => seen.push(`hello:${hello.width}`),
      state: (m) => seen.push(`state:${m.state}`),
      frame: (m) => seen.push(`${m.seq}:${m.key ? "k" : "d"}`),
    });
    f.addTap({ format: () => other.push("hello"), state: () => other.push("state"), frame: (m) => other.push(`${m.seq}`) });
    f.setState("live");
    f.publish(frame(false)); // no keyframe yet: offered to no one, not tapped
    f.publish(frame(true));
    f.publish(frame(false));
    f.setVideoInfo({ width: 320, height: 240, framerate: 30 });
    untap();
    untap();
    f.publish(frame(true));
    expect(seen).toEqual(["state:live", "1:k", "2:d", "hello:320"]);
    expect(other).toEqual(["state", "1", "2", "hello", "3"]);
  });
});
