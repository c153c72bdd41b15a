// Fan-out logic of StreamHub with in-memory sockets, plus GopCache, FrameMessage and RateMeter.
// (The real-socket tests are in test/integration.)
//
// Time is explicit: `performance.now()` (which the hub's wall clock reads) is mocked to a fake
// clock `now`, frames are stamped with it, and `tick(now)` is called by hand. Hubs are built with
// a huge stats interval and closed after each test.

import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import type { EncodedFrame } from "../../server/source/frames.js";
import { FrameMessage } from "../../server/stream/frame-message.js";
import { GopCache } from "../../server/stream/gop-cache.js";
import type { WireMessage } from "../../server/stream/wire-message.js";
import { StreamHub, type HubOptions, type Viewer, type VideoInfo, type ViewerSocket } from "../../server/stream/hub.js";
import { RateMeter } from "../../server/stream/rate-meter.js";
import {
  decodeBinaryMessage,
  nextSeq,
  ProtocolError,
  type VideoFrameHeader,
} from "../../shared/protocol.js";
import { micros, millis } from "../../shared/units.js";
import { expectErrorCode } from "../helpers/errors.js";
import { mulberry32 } from "../helpers/random.js";

// Frame protocol v1 flags, close codes and ws readyState values, written out again.
const KEY = 0x01;
const REPLAY = 0x02;
const DISCONTINUITY = 0x04;
const TOO_SLOW = 4408;
const OPEN = 1;
const CLOSED = 3;
const FRAME_MS = 33;
const HOUR_MS = 3_600_000;
const NO_SKIPS = { lagging: 0, "buffer-full": 0 };

class FakeSocket implements ViewerSocket {
  readyState = OPEN;
  bufferedAmount = 0;
  /** Text messages and binary messages (the very WireMessage objects the hub handed over). */
  readonly sent: (WireMessage | string)[] = [];
  readonly closes: { code: number | undefined; reason: string | undefined }[] = [];

  send(text: string): void {
    this.sent.push(text);
  }

  sendWire(message: WireMessage): void {
    this.sent.push(message);
  }

  close(code?: number, reason?: string): void {
    this.closes.push({ code, reason });
    this.readyState = CLOSED;
  }

  /** JSON text messages, parsed. */
  texts(): Record<string, unknown>[] {
    return this.sent.flatMap((m) => (typeof m === "string" ? [JSON.parse(m) as Record<string, unknown>] : []));
  }

  /** Binary messages as [seq, flags]. */
  frames(): [number, number][] {
    return this.sent.flatMap((m) => {
      if (typeof m === "string") return [];
      const d = decodeBinaryMessage(m.payload());
      if (d.kind !== "video") throw new Error("not a video frame");
      return [[d.header.seq, d.header.flags] as [number, number]];
    });
  }

  /** Everything sent, in order, as short labels: "hello", "state:live", "skipped", "3:k", "4:d+replay"… */
  log(): string[] {
    return this.sent.map((m) => {
      if (typeof m === "string") {
        const j = JSON.parse(m) as { type: string; state?: string };
        return j.type === "state" ? `state:${j.state}` : j.type;
      }
      const d = decodeBinaryMessage(m.payload());
      if (d.kind !== "video") return "?";
      return label(d.header.seq, d.header.flags);
    });
  }

  clear(): void {
    this.sent.length = 0;
  }
}

function label(seq: number, flags: number): string {
  return `${seq}:${flags & KEY ? "k" : "d"}${flags & REPLAY ? "+replay" : ""}${flags & DISCONTINUITY ? "+disc" : ""}`;
}

/** The fake wall clock, ms since the epoch. */
let now = 0;
const advance = (ms: number): void => {
  now += ms;
};

beforeEach(() => {
  now = Math.round(Date.now());
  vi.spyOn(performance, "now").mockImplementation(() => now - performance.timeOrigin);
});

const hubs: StreamHub[] = [];
afterEach(() => {
  for (const hub of hubs.splice(0)) hub.close();
  vi.restoreAllMocks();
});

const VIDEO: VideoInfo = { width: 640, height: 480, framerate: 30 };

function makeHub(options: HubOptions = {}): StreamHub {
  const hub = new StreamHub("cam0", VIDEO, { statsIntervalMs: HOUR_MS, ...options });
  hubs.push(hub);
  return hub;
}

/** The next frame from the pipeline: the clock moves one frame interval and stamps it. */
function frame(key: boolean, size = 100, discont = false): EncodedFrame {
  advance(FRAME_MS);
  const data = new Uint8Array(size).fill(key ? 0x10 : 0x11);
  data[0] = key ? 0x10 : 0x11; // VP8 frame tag bit 0
  return { pts: micros(now * 1000), key, discont, data, receivedAt: millis(now) };
}

/** Publishes frames; "k" a keyframe, "d" a delta. Returns their sequence numbers. */
function publishAll(hub: StreamHub, pattern: string): number[] {
  return [...pattern].map((c) => hub.publish(frame(c === "k")).seq);
}

const ack = (hub: StreamHub, viewer: Viewer, seq: number): void => hub.onClientMessage(viewer, { type: "ack", seq });
const send = (hub: StreamHub, viewer: Viewer, type: "pause" | "resume" | "resync"): void =>
  hub.onClientMessage(viewer, { type });
/** The viewer's lag as the hub reports it (viewerInfos). */
const lagOf = (hub: StreamHub, viewer: Viewer): number | null | undefined =>
  hub.viewerInfos().find((i) => i.id === viewer.id)?.lagMs;
/** Sequence number of the newest frame the socket received. */
const newestSeq = (s: FakeSocket): number => {
  const seq = s.frames().at(-1)?.[0];
  if (seq === undefined) throw new Error("no frame received");
  return seq;
};

describe("StreamHub", () => {
  test("answers a clock message with the client's time echoed and its own", () => {
    const hub = makeHub();
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    // The server's wall clock is performance.timeOrigin + performance.now(), which may drift from Date.now().
    const wall = (): number => performance.timeOrigin + performance.now();
    const before = wall();
    hub.onClientMessage(v, { type: "clock", t: 42.5 });
    const after = wall();
    const reply = s.texts().at(-1);
    expect(reply).toMatchObject({ type: "clock", t: 42.5 });
    expect(reply?.serverTime as number).toBeGreaterThanOrEqual(before);
    expect(reply?.serverTime as number).toBeLessThanOrEqual(after);
  });

  test("a viewer's first messages are hello, then state", () => {
    const hub = makeHub();
    const s = new FakeSocket();
    hub.addViewer(s);
    const [hello, state] = s.texts();
    expect(s.sent).toHaveLength(2);
    expect(hello).toMatchObject({ type: "hello", protocol: 1, stream: "cam0", codec: "vp8", width: 640, height: 480, framerate: 30 });
    expect(typeof hello?.serverTime).toBe("number");
    expect(Math.abs((hello?.serverTime as number) - Date.now())).toBeLessThan(5_000);
    expect(state).toEqual({ type: "state", state: "starting" });
    expect(hub.viewerCount).toBe(1);
  });

  test("sequence numbers start at 0 and go up by one", () => {
    const hub = makeHub();
    expect(publishAll(hub, "kdd")).toEqual([0, 1, 2]);
  });

  test("a viewer joining mid-GOP gets the cached GOP flagged replay, keyframe first, then live frames", () => {
    const hub = makeHub();
    hub.setState("live");
    publishAll(hub, "kdkdd"); // the GOP restarts at 2
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    ack(hub, v, 4); // a client acks what it decoded
    publishAll(hub, "dk");
    expect(s.log()).toEqual(["hello", "state:live", "2:k+replay", "3:d+replay", "4:d+replay", "5:d", "6:k"]);
  });

  test("replay bytes are the frame's bytes with only the flags byte changed", () => {
    const hub = makeHub();
    const live = hub.publish(frame(true, 50));
    const s = new FakeSocket();
    hub.addViewer(s);
    const replay = (s.sent[2] as WireMessage).payload();
    const liveBytes = live.wire.payload();
    expect(s.sent[2]).not.toBe(live.wire);
    expect(replay[1]).toBe(KEY | REPLAY);
    expect(liveBytes[1]).toBe(KEY);
    expect(replay.subarray(2)).toEqual(liveBytes.subarray(2));
  });

  test("a viewer joining before any keyframe gets no delta until a keyframe; those deltas are not skips", () => {
    const hub = makeHub();
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    publishAll(hub, "ddkd"); // 0 and 1 have no reference for this viewer
    expect(s.log()).toEqual(["hello", "state:starting", "2:k", "3:d"]);
    expect(v.skipped).toEqual(NO_SKIPS);
    expect(hub.skippedCounts).toEqual(NO_SKIPS);
    expect(v.framesSent).toBe(2);
  });

  test("every viewer is sent the same message instance for a live frame", () => {
    const hub = makeHub();
    const sockets = [new FakeSocket(), new FakeSocket(), new FakeSocket()];
    for (const s of sockets) hub.addViewer(s);
    const key = hub.publish(frame(true));
    const delta = hub.publish(frame(false));
    for (const s of sockets) {
      expect(s.sent[2]).toBe(key.wire);
      expect(s.sent[3]).toBe(delta.wire);
    }
  });

  test("a backed-up viewer skips to a keyframe: skipped notice, then the keyframe flagged discontinuity; every frame of the gap counts as buffer-full", () => {
    const hub = makeHub({ maxBufferedBytes: 1000 });
    const slow = new FakeSocket();
    const fast = new FakeSocket();
    const v = hub.addViewer(slow);
    const f = hub.addViewer(fast);
    publishAll(hub, "kd"); // 0 1
    slow.bufferedAmount = 1000; // at the limit: still sent
    publishAll(hub, "d"); // 2
    slow.bufferedAmount = 1001; // over it
    publishAll(hub, "dd"); // 3 starts the gap, 4 is in it
    slow.bufferedAmount = 0; // drained
    publishAll(hub, "d"); // 5: still in the gap, a delta cannot end it
    publishAll(hub, "kdk"); // 6 ends the gap; 7; 8: the discontinuity flag is not repeated
    expect(slow.log().slice(2)).toEqual(["0:k", "1:d", "2:d", "skipped", "6:k+disc", "7:d", "8:k"]);
    expect(slow.texts().find((t) => t.type === "skipped")).toEqual({ type: "skipped", reason: "buffer-full", frames: 3, lagMs: 0 });
    expect(v.skipped).toEqual({ lagging: 0, "buffer-full": 3 });
    expect(hub.skippedCounts).toEqual({ lagging: 0, "buffer-full": 3 });
    expect(v.framesSent).toBe(6);
    // The other viewer is unaffected and shares the live bytes.
    expect(fast.frames().map(([seq, flags]) => [seq, flags & DISCONTINUITY])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8].map((n) => [n, 0]));
    expect(f.skipped).toEqual(NO_SKIPS);
  });

  test("a viewer still backed up when the keyframe comes (above half the limit) waits for the next one", () => {
    const hub = makeHub({ maxBufferedBytes: 10 });
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    publishAll(hub, "k"); // 0
    s.bufferedAmount = 11;
    publishAll(hub, "dk"); // 1 starts the gap; 2 is a keyframe, but the queue is over the limit
    s.bufferedAmount = 6; // under the limit, but above half of it: not drained enough to resume
    publishAll(hub, "dk"); // 3, 4
    s.bufferedAmount = 5;
    publishAll(hub, "dk"); // 5; 6 resumes
    expect(s.log().slice(2)).toEqual(["0:k", "skipped", "6:k+disc"]);
    expect(s.texts().at(-1)).toEqual({ type: "skipped", reason: "buffer-full", frames: 5, lagMs: 0 });
    expect(v.skipped).toEqual({ lagging: 0, "buffer-full": 5 });
  });

  test("the discontinuity variant is made once and shared by every viewer that needs it", () => {
    const hub = makeHub({ maxBufferedBytes: 10 });
    const a = new FakeSocket();
    const b = new FakeSocket();
    hub.addViewer(a);
    hub.addViewer(b);
    hub.publish(frame(true));
    a.bufferedAmount = b.bufferedAmount = 100;
    hub.publish(frame(false));
    a.bufferedAmount = b.bufferedAmount = 0;
    const key = hub.publish(frame(true));
    const aLast = a.sent.at(-1);
    expect(aLast).toBe(b.sent.at(-1));
    expect(aLast).not.toBe(key.wire);
    expect((aLast as WireMessage).payload()[1]).toBe(KEY | DISCONTINUITY);
  });

  test("a frame that carries GStreamer's discont goes out flagged discontinuity to everyone", () => {
    const hub = makeHub();
    const s = new FakeSocket();
    hub.addViewer(s);
    hub.publish(frame(true, 100, true));
    expect(s.log().slice(2)).toEqual(["0:k+disc"]);
  });

  test("a caps change sends a new hello, and the next frame each viewer gets is a keyframe", () => {
    const hub = makeHub();
    const a = new FakeSocket();
    const b = new FakeSocket();
    hub.addViewer(a);
    publishAll(hub, "k"); // 0
    const vb = hub.addViewer(b); // b gets 0 as replay
    ack(hub, vb, 0);
    publishAll(hub, "d"); // 1
    expect(b.log().at(-1)).toBe("1:d");
    a.clear();
    b.clear();
    hub.setVideoInfo({ width: 320, height: 240, framerate: 30 });
    publishAll(hub, "dk"); // 2: a delta from the new pipeline — nobody may get it; 3
    for (const s of [a, b]) {
      expect(s.log()).toEqual(["hello", "3:k"]);
      expect(s.texts()[0]).toMatchObject({ type: "hello", width: 320, height: 240, framerate: 30 });
    }
    expect(hub.videoInfo).toEqual({ width: 320, height: 240, framerate: 30 });
  });

  test("a caps change empties the GOP cache: a viewer joining right after gets no old-size frames", () => {
    const hub = makeHub();
    publishAll(hub, "kd");
    expect(hub.gopFrames).toBe(2);
    hub.setVideoInfo({ width: 640, height: 360, framerate: 30 });
    expect(hub.gopFrames).toBe(0);
    const s = new FakeSocket();
    hub.addViewer(s);
    expect(s.log()).toEqual(["hello", "state:starting"]);
    expect(s.texts()[0]).toMatchObject({ width: 640, height: 360 });
  });

  test("the same caps again change nothing", () => {
    const hub = makeHub();
    const s = new FakeSocket();
    hub.addViewer(s);
    publishAll(hub, "k");
    hub.setVideoInfo({ ...VIDEO });
    publishAll(hub, "d");
    expect(s.log()).toEqual(["hello", "state:starting", "0:k", "1:d"]);
    expect(hub.gopFrames).toBe(2);
  });

  test("setState broadcasts to every viewer, once per change", () => {
    const hub = makeHub();
    const a = new FakeSocket();
    const b = new FakeSocket();
    hub.addViewer(a);
    hub.addViewer(b);
    hub.setState("live");
    hub.setState("live");
    hub.setState("offline", "pipeline exited (1)");
    hub.setState("offline", "pipeline exited (1)");
    for (const s of [a, b]) {
      expect(s.texts().slice(2)).toEqual([
        { type: "state", state: "live" },
        { type: "state", state: "offline", reason: "pipeline exited (1)" },
      ]);
    }
    expect(hub.state).toBe("offline");
    expect(hub.stateReason).toBe("pipeline exited (1)");
    // A viewer joining now is told the current state.
    const c = new FakeSocket();
    hub.addViewer(c);
    expect(c.texts()[1]).toEqual({ type: "state", state: "offline", reason: "pipeline exited (1)" });
  });

  test("restarting carries the reason and retryInMs (rounded); a new retry time is a change", () => {
    const hub = makeHub();
    const s = new FakeSocket();
    hub.addViewer(s);
    hub.setState("restarting", "pipeline exited (1)", 1999.6);
    hub.setState("restarting", "pipeline exited (1)", 1999.6);
    hub.setState("restarting", "pipeline exited (1)", 4000);
    expect(s.texts().slice(2)).toEqual([
      { type: "state", state: "restarting", reason: "pipeline exited (1)", retryInMs: 2000 },
      { type: "state", state: "restarting", reason: "pipeline exited (1)", retryInMs: 4000 },
    ]);
    expect(hub.state).toBe("restarting");
    const late = new FakeSocket();
    hub.addViewer(late);
    expect(late.texts()[1]).toEqual({ type: "state", state: "restarting", reason: "pipeline exited (1)", retryInMs: 4000 });
  });

  test("leaving live empties the GOP and makes viewers wait for a keyframe", () => {
    const hub = makeHub();
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    hub.setState("live");
    publishAll(hub, "k"); // 0
    hub.setState("starting"); // pipeline restarting
    expect(hub.gopFrames).toBe(0);
    hub.setState("live");
    publishAll(hub, "dk"); // 1: no reference, not sent, not a skip; 2
    expect(s.log()).toEqual(["hello", "state:starting", "state:live", "0:k", "state:starting", "state:live", "2:k"]);
    expect(v.skipped).toEqual(NO_SKIPS);
  });

  test("leaving live: the next frame published carries discontinuity, once; a joiner gets no replay from the old pipeline", () => {
    const hub = makeHub();
    const s = new FakeSocket();
    hub.addViewer(s);
    hub.setState("live");
    publishAll(hub, "kdd"); // 0 1 2
    hub.setState("restarting", "pipeline stalled", 500);
    expect(hub.gopFrames).toBe(0);
    const joiner = new FakeSocket();
    hub.addViewer(joiner);
    expect(joiner.log()).toEqual(["hello", "state:restarting"]);
    hub.setState("live");
    const first = hub.publish(frame(true)); // 3: the new pipeline's first frame
    const second = hub.publish(frame(false)); // 4
    expect(first.wire.payload()[1]).toBe(KEY | DISCONTINUITY);
    expect(second.wire.payload()[1]).toBe(0);
    expect(s.log().slice(-3)).toEqual(["state:live", "3:k+disc", "4:d"]);
    expect(joiner.log().slice(-3)).toEqual(["state:live", "3:k+disc", "4:d"]);
  });

  test("leaving live when the new pipeline starts with deltas: the flag goes on the first frame published, and viewers start at the keyframe", () => {
    const hub = makeHub();
    const s = new FakeSocket();
    hub.addViewer(s);
    hub.setState("live");
    publishAll(hub, "kd"); // 0 1
    hub.setState("offline", "gst died");
    hub.setState("live");
    const delta = hub.publish(frame(false)); // 2
    expect(delta.wire.payload()[1]).toBe(DISCONTINUITY);
    publishAll(hub, "dkd"); // 3 4 5
    expect(s.log().slice(-3)).toEqual(["state:live", "4:k", "5:d"]);
  });

  test("sockets that are not open are sent nothing", () => {
    const hub = makeHub();
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    s.readyState = CLOSED;
    hub.publish(frame(true));
    hub.setState("live");
    hub.tick(millis(now));
    expect(s.sent).toHaveLength(2);
    expect(v.skipped).toEqual(NO_SKIPS);
  });

  test("removeViewer stops delivery", () => {
    const hub = makeHub();
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    hub.removeViewer(v);
    hub.publish(frame(true));
    hub.tick(millis(now));
    expect(s.sent).toHaveLength(2);
    expect(hub.viewerCount).toBe(0);
  });

  test("close() closes every socket with 1001, is safe twice, and refuses later viewers", () => {
    const hub = makeHub();
    const a = new FakeSocket();
    const b = new FakeSocket();
    hub.addViewer(a);
    hub.addViewer(b);
    hub.publish(frame(true));
    hub.close();
    hub.close();
    for (const s of [a, b]) {
      expect(s.closes).toHaveLength(1);
      expect(s.closes[0]?.code).toBe(1001);
    }
    expect(hub.viewerCount).toBe(0);
    expect(hub.gopFrames).toBe(0);
    const late = new FakeSocket();
    hub.addViewer(late);
    expect(late.closes.map((c) => c.code)).toEqual([1001]);
    expect(late.sent).toEqual([]);
    expect(hub.viewerCount).toBe(0);
  });

  test("counts frames and bytes in, and rates over the last two seconds", () => {
    const hub = makeHub();
    const start = millis(1_000_000);
    for (let i = 0; i < 30; i++) {
      hub.publish({ pts: micros(i * 33_333), key: i === 0, discont: false, data: new Uint8Array(500), receivedAt: millis(start + i * 33) });
    }
    expect(hub.framesIn).toBe(30);
    expect(hub.bytesIn).toBe(15_000);
    expect(hub.rates(millis(start + 1000))).toEqual({ fps: 15, kbps: 60 });
  });

  test("viewerInfos() describes each viewer", () => {
    const hub = makeHub();
    const a = new FakeSocket();
    const b = new FakeSocket();
    const joinedAt = now;
    const va = hub.addViewer(a, "10.0.0.7");
    advance(5);
    hub.addViewer(b);
    publishAll(hub, "kd"); // 124 bytes each
    ack(hub, va, 1);
    a.bufferedAmount = 777;
    send(hub, va, "pause");
    const infos = hub.viewerInfos();
    expect(infos).toHaveLength(2);
    expect(infos).toMatchObject([
      {
        id: 1,
        mode: "ws",
        remote: "10.0.0.7",
        connectedAt: joinedAt,
        lagMs: 0,
        acks: true,
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
        lagMs: null,
        acks: false,
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

describe("StreamHub acks and lag", () => {
  test("lag runs from the oldest frame sent and not acked to the newest sent; 0 when all is acked; null before any ack", () => {
    const hub = makeHub({ maxLagMs: 10_000 });
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    expect(lagOf(hub, v)).toBeNull();
    const times: number[] = [];
    for (const key of [true, false, false]) times.push(hub.publish(frame(key)).header.serverTime); // 0 1 2
    advance(7);
    times.push(hub.publish(frame(false)).header.serverTime); // 3, 40 ms after 2
    expect(lagOf(hub, v)).toBeNull();
    expect(hub.viewerInfos()[0]?.acks).toBe(false);
    ack(hub, v, 0);
    expect(lagOf(hub, v)).toBe(times[3]! - times[1]!); // 73: frames 1–3 are outstanding
    ack(hub, v, 2);
    expect(lagOf(hub, v)).toBe(0); // only frame 3 is outstanding: it spans no time
    ack(hub, v, 3);
    expect(lagOf(hub, v)).toBe(0);
    times.push(hub.publish(frame(false)).header.serverTime); // 4
    times.push(hub.publish(frame(false)).header.serverTime); // 5
    expect(lagOf(hub, v)).toBe(times[5]! - times[4]!);
    expect(hub.viewerInfos()[0]).toMatchObject({ lagMs: FRAME_MS, acks: true });
  });

  test("an older ack than the previous changes nothing", () => {
    const hub = makeHub({ maxLagMs: 10_000 });
    const v = hub.addViewer(new FakeSocket());
    publishAll(hub, "kdddd"); // 0..4
    ack(hub, v, 2);
    const before = hub.viewerInfos();
    ack(hub, v, 1);
    ack(hub, v, 0);
    ack(hub, v, 2); // the same again
    expect(hub.viewerInfos()).toEqual(before);
    // Still in force: the next newer ack moves the lag.
    ack(hub, v, 4);
    expect(lagOf(hub, v)).toBe(0);
  });

  test("onViewerLag is called with the viewer's lag at each ack (the metrics' lag histogram), not for an older ack", () => {
    const lags: number[] = [];
    const hub = makeHub({ maxLagMs: 10_000, onViewerLag: (lag) => lags.push(lag) });
    const v = hub.addViewer(new FakeSocket());
    const times = [..."kddd"].map((c) => hub.publish(frame(c === "k")).header.serverTime); // 0..3
    ack(hub, v, 0);
    ack(hub, v, 3);
    ack(hub, v, 1); // older: ignored
    expect(lags).toEqual([times[3]! - times[1]!, 0]);
  });

  test("an ack for a frame never sent is a CC_ERR_BAD_MESSAGE ProtocolError", () => {
    const hub = makeHub({ maxBufferedBytes: 1000 });
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    // Nothing sent yet.
    expectErrorCode(() => ack(hub, v, 0), ProtocolError, "CC_ERR_BAD_MESSAGE");
    publishAll(hub, "kd"); // 0 1 sent
    // Ahead of what was sent.
    expectErrorCode(() => ack(hub, v, 2), ProtocolError, "CC_ERR_BAD_MESSAGE");
    expectErrorCode(() => ack(hub, v, 1000), ProtocolError, "CC_ERR_BAD_MESSAGE");
    // Published but skipped for this viewer.
    s.bufferedAmount = 2000;
    publishAll(hub, "dd"); // 2 3 not sent
    expectErrorCode(() => ack(hub, v, 3), ProtocolError, "CC_ERR_BAD_MESSAGE");
    // None of that counted as an ack.
    expect(hub.viewerInfos()[0]?.acks).toBe(false);
    ack(hub, v, 1);
    expect(hub.viewerInfos()[0]?.acks).toBe(true);
  });

  test("a viewer lagging past maxLagMs skips deltas, and keyframes until it has acked all it was sent; it resumes with a skipped notice then the keyframe flagged discontinuity", () => {
    const hub = makeHub({ maxLagMs: 100 });
    const slow = new FakeSocket();
    const other = new FakeSocket(); // never acks: never lagging
    const v = hub.addViewer(slow);
    const o = hub.addViewer(other);
    publishAll(hub, "kd"); // 0 1
    ack(hub, v, 0);
    advance(1000); // the pipeline stalls for a second, then goes on
    publishAll(hub, "d"); // 2: sent (the lag was small)
    expect(lagOf(hub, v)).toBeGreaterThan(1000);
    publishAll(hub, "dd"); // 3 starts a 'lagging' gap, 4
    publishAll(hub, "k"); // 5: a keyframe, but 1 and 2 are not acked
    ack(hub, v, 1);
    publishAll(hub, "k"); // 6: 2 is still not acked
    ack(hub, v, 2); // now it has acked everything it was sent
    publishAll(hub, "d"); // 7: a delta cannot end the gap
    expect(slow.log().slice(2)).toEqual(["0:k", "1:d", "2:d"]);
    expect(v.skipped).toEqual({ lagging: 5, "buffer-full": 0 });
    publishAll(hub, "k"); // 8 ends it
    expect(slow.log().slice(2)).toEqual(["0:k", "1:d", "2:d", "skipped", "8:k+disc"]);
    const notice = slow.texts().at(-1);
    expect(notice).toMatchObject({ type: "skipped", reason: "lagging", frames: 5 });
    expect(Object.keys(notice ?? {}).sort()).toEqual(["frames", "lagMs", "reason", "type"]);
    expect(notice?.lagMs).toBeGreaterThan(1000);
    expect(notice?.lagMs).toBeLessThan(1100);
    expect(v.skipped).toEqual({ lagging: 5, "buffer-full": 0 });
    expect(hub.skippedCounts).toEqual({ lagging: 5, "buffer-full": 0 });
    expect(hub.viewerInfos()[0]?.skipped).toEqual({ lagging: 5, "buffer-full": 0 });
    // The other viewer got everything, unflagged.
    expect(other.log().slice(2)).toEqual(["0:k", "1:d", "2:d", "3:d", "4:d", "5:k", "6:k", "7:d", "8:k"]);
    expect(o.skipped).toEqual(NO_SKIPS);
  });

  test("after a lagging gap ends, the viewer is not lagging: the frames after the keyframe are sent", () => {
    const hub = makeHub({ maxLagMs: 100 });
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    publishAll(hub, "kd"); // 0 1
    ack(hub, v, 1);
    publishAll(hub, "dddddddddd"); // 2..11 unacked: a gap starts after a few
    expect(v.skipped.lagging).toBeGreaterThan(0);
    ack(hub, v, newestSeq(s)); // it catches up
    publishAll(hub, "k"); // 12 ends the gap
    expect(s.log().slice(-2)).toEqual(["skipped", "12:k+disc"]);
    // It has been sent one frame since it acked everything: it is one frame behind at most.
    expect(lagOf(hub, v)).toBeLessThanOrEqual(FRAME_MS);
    const skipped = v.skipped.lagging;
    publishAll(hub, "dd"); // 13 14, before its ack of 12 arrives
    expect(s.log().slice(-2)).toEqual(["13:d", "14:d"]);
    expect(v.skipped.lagging).toBe(skipped);
  });

  test("after a pipeline restart, a viewer that had acked everything is not lagging by the length of the outage", () => {
    const hub = makeHub({ maxLagMs: 500 });
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    hub.setState("live");
    publishAll(hub, "kdd"); // 0 1 2
    ack(hub, v, 2);
    hub.setState("restarting", "pipeline exited (1)", 2000);
    advance(3000);
    hub.setState("live");
    publishAll(hub, "kdd"); // 3 4 5 from the new pipeline, before its ack of 3
    expect(s.log().slice(-3)).toEqual(["3:k+disc", "4:d", "5:d"]);
    expect(v.skipped).toEqual(NO_SKIPS);
  });

  test("skip counts add up across viewers and gaps in hub.skippedCounts", () => {
    const hub = makeHub({ maxLagMs: 100, maxBufferedBytes: 1000 });
    const a = new FakeSocket();
    const b = new FakeSocket();
    const va = hub.addViewer(a);
    const vb = hub.addViewer(b);
    publishAll(hub, "kd"); // 0 1
    ack(hub, va, 0);
    b.bufferedAmount = 5000;
    advance(1000);
    publishAll(hub, "dddd"); // a: 2 sent, 3 4 5 lagging; b: 2..5 buffer-full
    expect(va.skipped).toEqual({ lagging: 3, "buffer-full": 0 });
    expect(vb.skipped).toEqual({ lagging: 0, "buffer-full": 4 });
    expect(hub.skippedCounts).toEqual({ lagging: 3, "buffer-full": 4 });
    // A removed viewer's skips stay in the totals.
    hub.removeViewer(vb);
    expect(hub.skippedCounts).toEqual({ lagging: 3, "buffer-full": 4 });
    // The totals are a copy.
    (hub.skippedCounts as { lagging: number }).lagging = 100;
    expect(hub.skippedCounts.lagging).toBe(3);
  });

  test("a viewer both lagging and backed up counts its gap as lagging, and all of it", () => {
    const hub = makeHub({ maxLagMs: 100, maxBufferedBytes: 1000 });
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    publishAll(hub, "kd");
    ack(hub, v, 0);
    advance(1000);
    publishAll(hub, "d"); // 2 sent
    s.bufferedAmount = 5000;
    publishAll(hub, "ddk"); // 3 4 5: lagging (5 too: not acked, and the queue is full)
    ack(hub, v, 2);
    publishAll(hub, "k"); // 6: caught up, but the queue is still full
    expect(v.skipped).toEqual({ lagging: 4, "buffer-full": 0 });
    s.bufferedAmount = 0;
    publishAll(hub, "k"); // 7
    expect(s.texts().at(-1)).toMatchObject({ type: "skipped", reason: "lagging", frames: 4 });
    expect(s.log().at(-1)).toBe("7:k+disc");
  });

  test("a joiner acking a replayed frame has lag ≈ 0, not the age of the GOP, and keeps getting live frames", () => {
    const hub = makeHub({ maxLagMs: 500 });
    hub.setState("live");
    publishAll(hub, "k" + "d".repeat(29)); // 0..29: a one-second GOP
    advance(10);
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    expect(s.frames()).toHaveLength(30);
    ack(hub, v, 0); // the replayed keyframe, ~1 s old
    expect(lagOf(hub, v)).toBe(0);
    ack(hub, v, 15);
    expect(lagOf(hub, v)).toBe(0);
    ack(hub, v, 29); // the end of the replay
    expect(lagOf(hub, v)).toBe(0);
    publishAll(hub, "ddd"); // 30 31 32
    expect(s.log().slice(-3)).toEqual(["30:d", "31:d", "32:d"]);
    expect(lagOf(hub, v)).toBeLessThan(200);
    expect(v.skipped).toEqual(NO_SKIPS);
    // A live frame acked afterwards is timed by its own server time.
    ack(hub, v, 32);
    expect(lagOf(hub, v)).toBe(0);
  });
});

describe("StreamHub pause, resume, resync", () => {
  test("pause: no frames and no stats until resume; frames missed while paused are not skips", () => {
    const hub = makeHub();
    hub.setState("live");
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    publishAll(hub, "kd"); // 0 1
    send(hub, v, "pause");
    expect(v.paused).toBe(true);
    s.clear();
    publishAll(hub, "ddkdd"); // 2..6
    hub.tick(millis(now));
    expect(s.sent).toEqual([]);
    expect(v.skipped).toEqual(NO_SKIPS);
    // A second pause changes nothing; resume replays the cached GOP (4 5 6), then live.
    send(hub, v, "pause");
    advance(2000);
    send(hub, v, "resume");
    expect(v.paused).toBe(false);
    ack(hub, v, 6);
    publishAll(hub, "d"); // 7
    expect(s.log()).toEqual(["4:k+replay+disc", "5:d+replay+disc", "6:d+replay+disc", "7:d"]);
    hub.tick(millis(now));
    expect(s.texts().at(-1)).toMatchObject({ type: "stats", framesSent: 6 });
  });

  test("resume when not paused does nothing", () => {
    const hub = makeHub();
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    publishAll(hub, "kd");
    s.clear();
    send(hub, v, "resume");
    publishAll(hub, "d");
    expect(s.log()).toEqual(["2:d"]);
  });

  test("resume with nothing cached waits for the next keyframe", () => {
    const hub = makeHub();
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    send(hub, v, "pause");
    publishAll(hub, "dd"); // no keyframe yet: nothing cached
    send(hub, v, "resume");
    publishAll(hub, "dkd");
    expect(s.log().slice(2)).toEqual(["3:k", "4:d"]);
  });

  test("resync replays the cached GOP flagged replay and discontinuity, then live frames", () => {
    const hub = makeHub();
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    publishAll(hub, "kdkd"); // 0..3; the GOP is 2 3
    s.clear();
    send(hub, v, "resync");
    ack(hub, v, 3);
    publishAll(hub, "dd");
    expect(s.log()).toEqual(["2:k+replay+disc", "3:d+replay+disc", "4:d", "5:d"]);
  });

  test("resync while paused unpauses and replays", () => {
    const hub = makeHub();
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    publishAll(hub, "k");
    send(hub, v, "pause");
    publishAll(hub, "d");
    s.clear();
    send(hub, v, "resync");
    expect(v.paused).toBe(false);
    ack(hub, v, 1);
    publishAll(hub, "d");
    expect(s.log()).toEqual(["0:k+replay+disc", "1:d+replay+disc", "2:d"]);
  });

  test("a second resync within resyncMinIntervalMs does not replay: the viewer waits for the next keyframe", () => {
    const hub = makeHub({ resyncMinIntervalMs: 1000 });
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    publishAll(hub, "kd"); // 0 1
    send(hub, v, "resync"); // replays 0 1
    ack(hub, v, 1);
    advance(500);
    s.clear();
    send(hub, v, "resync"); // too soon
    expect(s.sent).toEqual([]);
    publishAll(hub, "dd"); // 2 3: its decoder was reset, so no deltas
    expect(s.sent).toEqual([]);
    expect(v.skipped).toEqual(NO_SKIPS); // a decoder reset is not a skip
    publishAll(hub, "kd"); // 4 5
    expect(s.frames().map(([seq, flags]) => [seq, flags & (KEY | REPLAY)])).toEqual([
      [4, KEY],
      [5, 0],
    ]);
    // Once the interval has passed, a resync replays again (the throttled one did not restart the interval).
    advance(1000);
    s.clear();
    send(hub, v, "resync");
    expect(s.log()).toEqual(["4:k+replay+disc", "5:d+replay+disc"]);
  });

  test("resync ends a gap without a skipped notice: the replay starts at a keyframe", () => {
    const hub = makeHub({ maxBufferedBytes: 1000 });
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    publishAll(hub, "k");
    s.bufferedAmount = 5000;
    publishAll(hub, "dd");
    s.bufferedAmount = 0;
    s.clear();
    send(hub, v, "resync");
    ack(hub, v, 2);
    publishAll(hub, "dk");
    expect(s.log()).toEqual(["0:k+replay+disc", "1:d+replay+disc", "2:d+replay+disc", "3:d", "4:k"]);
    expect(v.skipped).toEqual({ lagging: 0, "buffer-full": 2 });
  });
});

describe("StreamHub tick", () => {
  test("sends each viewer a stats message: lag (as viewerInfos reports it, rounded to 0.1 ms; null before an ack), frames sent, skips", () => {
    const hub = makeHub({ maxBufferedBytes: 1000 });
    const a = new FakeSocket();
    const b = new FakeSocket();
    const va = hub.addViewer(a);
    hub.addViewer(b);
    hub.publish(frame(true)); // 0
    advance(0.04);
    hub.publish(frame(false)); // 1, 33.04 ms later
    advance(0.02);
    hub.publish(frame(false)); // 2, 33.02 ms later
    ack(hub, va, 0);
    b.bufferedAmount = 2000;
    advance(0.04);
    publishAll(hub, "d"); // 3, 33.04 ms later: b skips it
    b.bufferedAmount = 0;
    hub.tick(millis(now));
    const aStats = a.texts().at(-1);
    expect(aStats).toEqual({ type: "stats", lagMs: lagOf(hub, va), framesSent: 4, skipped: NO_SKIPS });
    const lag = aStats?.lagMs as number;
    expect(lag).toBeGreaterThan(0);
    expect(Math.round(lag * 10)).toBe(lag * 10);
    expect(Number.isInteger(lag)).toBe(false); // 99.1 (or 66.1 counting from the oldest unacked)
    expect(b.texts().at(-1)).toEqual({ type: "stats", lagMs: null, framesSent: 3, skipped: { lagging: 0, "buffer-full": 1 } });
    ack(hub, va, 3);
    hub.tick(millis(now));
    expect(a.texts().at(-1)).toEqual({ type: "stats", lagMs: 0, framesSent: 4, skipped: NO_SKIPS });
    expect(a.log().filter((l) => l === "stats")).toHaveLength(2);
  });

  test("no stats while paused", () => {
    const hub = makeHub();
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    send(hub, v, "pause");
    hub.tick(millis(now));
    expect(s.log()).toEqual(["hello", "state:starting"]);
    send(hub, v, "resume");
    hub.tick(millis(now));
    expect(s.log()).toEqual(["hello", "state:starting", "stats"]);
  });

  test("a socket over maxBufferedBytes for longer than slowViewerGraceMs is closed with 4408 and removed; one that drains in time is not", () => {
    const closed: Viewer[] = [];
    const hub = makeHub({ maxBufferedBytes: 1000, slowViewerGraceMs: 5000, onSlowViewerClosed: (v) => closed.push(v) });
    const stuck = new FakeSocket();
    const drains = new FakeSocket();
    const fine = new FakeSocket();
    const vStuck = hub.addViewer(stuck);
    const vDrains = hub.addViewer(drains);
    hub.addViewer(fine);
    const t0 = now;
    stuck.bufferedAmount = drains.bufferedAmount = 1001;
    hub.tick(millis(t0));
    hub.tick(millis(t0 + 3000));
    drains.bufferedAmount = 500; // drained: its over-limit time starts again
    hub.tick(millis(t0 + 4000));
    drains.bufferedAmount = 1001;
    hub.tick(millis(t0 + 4500));
    hub.tick(millis(t0 + 4999));
    expect(closed).toEqual([]);
    expect(stuck.closes).toEqual([]);
    hub.tick(millis(t0 + 5001));
    expect(stuck.closes).toHaveLength(1);
    expect(stuck.closes[0]?.code).toBe(TOO_SLOW);
    expect(stuck.closes[0]?.reason).toMatch(/too slow/);
    expect(closed).toEqual([vStuck]);
    expect(hub.viewerCount).toBe(2);
    expect(hub.viewerList()).not.toContain(vStuck);
    expect(drains.closes).toEqual([]);
    // The closed viewer gets no more stats or frames; the others do.
    const stuckSent = stuck.sent.length;
    hub.tick(millis(t0 + 6000));
    publishAll(hub, "k");
    expect(stuck.sent).toHaveLength(stuckSent);
    expect(fine.log().at(-1)).toBe("0:k");
    // The one that drained is closed once it has been over the limit for the grace period since.
    hub.tick(millis(t0 + 9500));
    expect(drains.closes).toEqual([]);
    hub.tick(millis(t0 + 9501));
    expect(drains.closes.map((c) => c.code)).toEqual([TOO_SLOW]);
    expect(closed).toEqual([vStuck, vDrains]);
    expect(fine.closes).toEqual([]);
    expect(hub.viewerCount).toBe(1);
  });

  test("a paused viewer over the limit is closed too (pausing does not exempt it)", () => {
    const hub = makeHub({ maxBufferedBytes: 1000, slowViewerGraceMs: 1000 });
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    send(hub, v, "pause");
    s.bufferedAmount = 5000;
    hub.tick(millis(now));
    hub.tick(millis(now + 1001));
    expect(s.closes.map((c) => c.code)).toEqual([TOO_SLOW]);
    expect(hub.viewerCount).toBe(0);
  });
});

describe("StreamHub after a replay", () => {
  test("a joiner that never acks still gets the live frames, in order, after its replay", () => {
    const hub = makeHub({ maxLagMs: 500 });
    publishAll(hub, "kdd"); // 0 1 2
    const s = new FakeSocket();
    hub.addViewer(s);
    publishAll(hub, "d".repeat(30)); // 3..32, one second
    const seqs = s.frames().map(([seq]) => seq);
    expect(seqs.length).toBeGreaterThan(3 + 10);
    expect(seqs).toEqual(seqs.map((_, i) => i)); // 0, 1, 2, … with nothing missing
  });

  test("a pause, then a resume long after: once the replay is acked, live frames flow (the pause is not lag)", () => {
    const hub = makeHub({ maxLagMs: 500 });
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    publishAll(hub, "kddddd"); // 0..5
    ack(hub, v, 5);
    send(hub, v, "pause");
    publishAll(hub, "d".repeat(24) + "k" + "d".repeat(35)); // 6..65 over two seconds; the GOP is 30..65
    s.clear();
    send(hub, v, "resume");
    expect(s.frames()[0]).toEqual([30, KEY | REPLAY | DISCONTINUITY]);
    ack(hub, v, 65);
    publishAll(hub, "dd"); // 66 67
    expect(s.log().slice(-2)).toEqual(["66:d", "67:d"]);
    expect(v.skipped).toEqual(NO_SKIPS);
    expect(lagOf(hub, v)).toBeLessThanOrEqual(FRAME_MS);
  });

  test("a caps change while a joiner has not acked its replay: nothing from the old pipeline follows the new hello", () => {
    const hub = makeHub({ maxLagMs: 500 });
    const a = new FakeSocket();
    hub.addViewer(a);
    publishAll(hub, "k"); // 0
    const b = new FakeSocket();
    const vb = hub.addViewer(b); // replay: 0
    publishAll(hub, "d"); // 1 (old size)
    hub.setVideoInfo({ width: 320, height: 240, framerate: 30 });
    publishAll(hub, "dk"); // 2 3 (new size)
    ack(hub, vb, 0); // its ack of the replay arrives
    publishAll(hub, "d"); // 4
    const afterHello = b.log().slice(b.log().lastIndexOf("hello") + 1);
    expect(afterHello[0]).toBe("3:k");
    expect(afterHello.filter((l) => Number.parseInt(l, 10) < 3)).toEqual([]);
  });

  test("a pipeline restart while a joiner has not acked its replay: nothing from the old pipeline follows the restart", () => {
    const hub = makeHub({ maxLagMs: 500 });
    hub.setState("live");
    publishAll(hub, "kd"); // 0 1
    const s = new FakeSocket();
    const v = hub.addViewer(s); // replay: 0 1
    publishAll(hub, "d"); // 2 (old pipeline)
    hub.setState("restarting", "pipeline stalled", 500);
    hub.setState("live");
    publishAll(hub, "k"); // 3 (new pipeline)
    ack(hub, v, 1);
    publishAll(hub, "d"); // 4
    const afterRestart = s.log().slice(s.log().indexOf("state:restarting") + 1);
    expect(afterRestart.slice(0, 2)).toEqual(["state:live", "3:k+disc"]);
    expect(afterRestart.filter((l) => Number.parseInt(l, 10) < 3)).toEqual([]);
  });
});


type Profile = "fast" | "slow" | "silent";

/** One viewer of the randomized run, with what the model expects of it. */
interface Tracked {
  readonly name: string;
  readonly socket: FakeSocket;
  readonly viewer: Viewer;
  readonly profile: Profile;
  /** Index of the next message in socket.sent to check. */
  read: number;
  /** Sequence numbers received, in order. */
  readonly received: number[];
  /** The next frame must be a keyframe: a frame was not sent, or the decoder was reset, or the pipeline changed. */
  mustKey: boolean;
  lastSeq: number | null;
  /** A `skipped` notice came: the next message must be the keyframe that ends the gap. */
  afterNotice: boolean;
  paused: boolean;
  attached: boolean;
  /** The last thing that made a keyframe due, for the failure message. */
  why: string;
}

describe("StreamHub randomized run", () => {
  test.each([1, 2, 3, 42])("seed %i: after any frame a viewer was not sent, the next frame it receives is a keyframe", (seed) => {
    const rand = mulberry32(seed);
    const chance = (p: number): boolean => rand() < p;
    const MAX_BUFFERED = 5000;
    const slowClosed: Viewer[] = [];
    const hub = makeHub({
      maxLagMs: 200,
      maxBufferedBytes: MAX_BUFFERED,
      slowViewerGraceMs: 2000,
      resyncMinIntervalMs: 1000,
      onSlowViewerClosed: (v) => slowClosed.push(v),
    });
    hub.setState("live");
    const violations: string[] = [];
    const coverage = { lagging: 0, "buffer-full": 0, replayed: 0, framesReceived: 0, throttledResyncs: 0, closedSlow: 0, restarts: 0, capsChanges: 0 };
    const tracked: Tracked[] = [];
    let joined = 0;

    const join = (): void => {
      const profiles: Profile[] = ["fast", "slow", "silent"];
      const profile = profiles[Math.floor(rand() * profiles.length)] ?? "fast";
      const socket = new FakeSocket();
      const viewer = hub.addViewer(socket);
      // A new viewer starts from nothing: its first frame must be a keyframe.
      tracked.push({ name: `viewer ${++joined} (${profile})`, socket, viewer, profile, read: 0, received: [], mustKey: true, lastSeq: null, afterNotice: false, paused: false, attached: true, why: "join" });
    };

    /** Checks the messages a viewer got since the last check. */
    const check = (t: Tracked, step: number): void => {
      for (; t.read < t.socket.sent.length; t.read++) {
        const m = t.socket.sent[t.read]!;
        if (typeof m === "string") {
          const j = JSON.parse(m) as { type: string; reason?: string; frames?: number };
          if (j.type === "skipped") {
            if (t.afterNotice) violations.push(`${t.name} step ${step}: two skipped notices in a row`);
            if (j.reason !== "lagging" && j.reason !== "buffer-full") violations.push(`${t.name}: bad reason ${j.reason}`);
            else coverage[j.reason]++;
            if (!(typeof j.frames === "number" && j.frames >= 1)) violations.push(`${t.name}: skipped notice with frames ${j.frames}`);
            t.afterNotice = true;
          } else if (j.type === "stats" && t.paused) {
            violations.push(`${t.name} step ${step}: stats while paused`);
          }
          continue;
        }
        const d = decodeBinaryMessage(m.payload());
        if (d.kind !== "video") {
          violations.push(`${t.name}: not a video frame`);
          continue;
        }
        const { seq, flags } = d.header;
        const key = (flags & KEY) !== 0;
        const what = `${t.name} step ${step}: got ${label(seq, flags)} after ${t.lastSeq}`;
        if (t.paused) violations.push(`${what} while paused`);
        if (t.afterNotice && (!key || (flags & DISCONTINUITY) === 0)) violations.push(`${what}: a skipped notice must be followed by a keyframe flagged discontinuity`);
        if (t.mustKey && !key) violations.push(`${what}: a delta when a keyframe was due (${t.why})`);
        if (!t.mustKey && !key && (t.lastSeq === null || seq !== nextSeq(t.lastSeq))) violations.push(`${what}: a delta whose reference it did not get`);
        if (flags & REPLAY) coverage.replayed++;
        coverage.framesReceived++;
        t.afterNotice = false;
        t.mustKey = false;
        t.lastSeq = seq;
        t.received.push(seq);
      }
    };

    const live = (): Tracked[] => tracked.filter((t) => t.attached);

    for (let i = 0; i < 3; i++) join();
    let restarting = false;
    for (let step = 0; step < 4000; step++) {
      // The pipeline.
      if (restarting) {
        advance(300);
        hub.setState("live");
        restarting = false;
      }
      // A frame a viewer is not sent shows as a break in the sequence numbers it receives (frames
      // held back after a replay may come later, in order), so each delta must follow its reference.
      hub.publish(frame(step === 0 || chance(1 / 25), 100 + Math.floor(rand() * 400)));
      for (const t of live()) check(t, step);
      if (rand() < 0.3) advance(Math.floor(rand() * 20)); // jitter

      // The viewers.
      for (const t of live()) {
        const s = t.socket;
        if (t.profile === "silent" ? chance(0.02) : chance(0.01)) {
          s.bufferedAmount = chance(0.5) ? 0 : Math.floor(rand() * 3 * MAX_BUFFERED);
        }
        const newest = t.received.at(-1);
        if (newest !== undefined && !t.paused) {
          try {
            if (t.profile === "fast" && chance(0.9)) ack(hub, t.viewer, newest);
            if (t.profile === "slow" && chance(0.3)) {
              const back = Math.floor(rand() * 12);
              ack(hub, t.viewer, t.received[Math.max(0, t.received.length - 1 - back)]!);
            }
          } catch (err) {
            violations.push(`${t.name} step ${step}: ack of a received frame threw ${String(err)}`);
          }
        }
        check(t, step); // what the ack released

        if (!t.paused && chance(0.004)) {
          send(hub, t.viewer, "pause");
          t.paused = true;
        } else if (t.paused && chance(0.05)) {
          const sentBefore = s.sent.length;
          t.paused = false;
          t.mustKey = true; // the player resets its decoder when it comes back
          t.why = `resume at step ${step}`;
          send(hub, t.viewer, "resume");
          if (s.sent.length === sentBefore) coverage.throttledResyncs++;
        } else if (chance(0.004)) {
          const sentBefore = s.sent.length;
          t.paused = false;
          t.mustKey = true; // a resync is asked for after a decoder reset
          t.why = `resync at step ${step}`;
          send(hub, t.viewer, "resync");
          if (s.sent.length === sentBefore) coverage.throttledResyncs++;
        }
        check(t, step);
      }

      // The stream and the server around it.
      if (!restarting && chance(0.003)) {
        for (const t of live()) check(t, step);
        hub.setState("restarting", "pipeline stalled", 300);
        for (const t of live()) Object.assign(t, { mustKey: true, why: `pipeline restart at step ${step}` });
        restarting = true;
        coverage.restarts++;
      }
      if (chance(0.002)) {
        for (const t of live()) check(t, step);
        const small = hub.videoInfo.width === 640;
        hub.setVideoInfo(small ? { width: 320, height: 240, framerate: 30 } : VIDEO);
        for (const t of live()) Object.assign(t, { mustKey: true, why: `caps change at step ${step}` });
        coverage.capsChanges++;
      }
      if (step % 30 === 0) {
        hub.tick(millis(now));
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
      if (live().length < 8 && chance(0.01)) join();
      if (live().length > 2 && chance(0.002)) {
        const t = live()[Math.floor(rand() * live().length)]!;
        hub.removeViewer(t.viewer);
        t.attached = false;
      }
    }
    for (const t of live()) check(t, 4000);

    expect(violations.slice(0, 20)).toEqual([]);
    expect(hub.viewerCount).toBe(live().length);
    // Every skip is counted once, for the viewer and in the totals.
    const sum = { lagging: 0, "buffer-full": 0 };
    for (const t of tracked) {
      sum.lagging += t.viewer.skipped.lagging;
      sum["buffer-full"] += t.viewer.skipped["buffer-full"];
    }
    expect(hub.skippedCounts).toEqual(sum);
    // The run went through what it is meant to test.
    expect(coverage.framesReceived).toBeGreaterThan(5000);
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
