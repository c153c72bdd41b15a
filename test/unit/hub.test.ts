// Fan-out logic of StreamHub with in-memory sockets, plus GopCache, FrameMessage and RateMeter.
// (The real-socket tests are in test/integration.)

import { describe, expect, test } from "vitest";
import type { EncodedFrame } from "../../server/source/frames.js";
import { FrameMessage } from "../../server/stream/frame-message.js";
import { GopCache } from "../../server/stream/gop-cache.js";
import { StreamHub, type ViewerSocket } from "../../server/stream/hub.js";
import { RateMeter } from "../../server/stream/rate-meter.js";
import { decodeBinaryMessage, type VideoFrameHeader } from "../../shared/protocol.js";
import { micros, millis } from "../../shared/units.js";

// Frame protocol v1 flags and ws readyState values, written out again.
const KEY = 0x01;
const REPLAY = 0x02;
const DISCONTINUITY = 0x04;
const OPEN = 1;
const CLOSED = 3;

class FakeSocket implements ViewerSocket {
  readyState = OPEN;
  bufferedAmount = 0;
  readonly sent: (Uint8Array | string)[] = [];
  readonly closes: { code: number | undefined; reason: string | undefined }[] = [];

  send(data: Uint8Array | string): void {
    this.sent.push(data);
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
      const d = decodeBinaryMessage(m);
      if (d.kind !== "video") throw new Error("not a video frame");
      return [[d.header.seq, d.header.flags] as [number, number]];
    });
  }

  /** Everything sent, in order, as short labels: "hello", "state:live", "3:k", "4:d+replay"… */
  log(): string[] {
    return this.sent.map((m) => {
      if (typeof m === "string") {
        const j = JSON.parse(m) as { type: string; state?: string };
        return j.type === "state" ? `state:${j.state}` : j.type;
      }
      const d = decodeBinaryMessage(m);
      if (d.kind !== "video") return "?";
      const f = d.header.flags;
      return `${d.header.seq}:${f & KEY ? "k" : "d"}${f & REPLAY ? "+replay" : ""}${f & DISCONTINUITY ? "+disc" : ""}`;
    });
  }

  clear(): void {
    this.sent.length = 0;
  }
}

let clock = 1_700_000_000_000;
function frame(key: boolean, size = 100, discont = false): EncodedFrame {
  clock += 33;
  const data = new Uint8Array(size).fill(key ? 0x10 : 0x11);
  data[0] = key ? 0x10 : 0x11; // VP8 frame tag bit 0
  return { pts: micros(clock * 1000), key, discont, data, receivedAt: millis(clock) };
}

const VIDEO = { width: 640, height: 480, framerate: 30 };

describe("StreamHub", () => {
  test("a viewer's first messages are hello, then state", () => {
    const hub = new StreamHub("cam0", VIDEO);
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
    const hub = new StreamHub("cam0", VIDEO);
    const seqs = [frame(true), frame(false), frame(false)].map((f) => hub.publish(f).seq);
    expect(seqs).toEqual([0, 1, 2]);
  });

  test("a viewer joining mid-GOP gets the cached GOP flagged replay, keyframe first, then live frames", () => {
    const hub = new StreamHub("cam0", VIDEO);
    hub.setState("live");
    hub.publish(frame(true)); // 0
    hub.publish(frame(false)); // 1
    hub.publish(frame(true)); // 2: the GOP restarts here
    hub.publish(frame(false)); // 3
    hub.publish(frame(false)); // 4
    const s = new FakeSocket();
    hub.addViewer(s);
    hub.publish(frame(false)); // 5
    hub.publish(frame(true)); // 6
    expect(s.log()).toEqual(["hello", "state:live", "2:k+replay", "3:d+replay", "4:d+replay", "5:d", "6:k"]);
  });

  test("replay bytes are the frame's bytes with only the flags byte changed", () => {
    const hub = new StreamHub("cam0", VIDEO);
    const live = hub.publish(frame(true, 50));
    const s = new FakeSocket();
    hub.addViewer(s);
    const replay = s.sent[2] as Uint8Array;
    expect(replay).not.toBe(live.bytes);
    expect(replay[1]).toBe(KEY | REPLAY);
    expect(live.bytes[1]).toBe(KEY);
    expect(replay.subarray(2)).toEqual(live.bytes.subarray(2));
  });

  test("a viewer joining before any keyframe gets no delta until a keyframe", () => {
    const hub = new StreamHub("cam0", VIDEO);
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    hub.publish(frame(false)); // 0, no reference: skipped
    hub.publish(frame(false)); // 1
    hub.publish(frame(true)); // 2
    hub.publish(frame(false)); // 3
    expect(s.log()).toEqual(["hello", "state:starting", "2:k", "3:d"]);
    expect(v.skipped).toEqual({ "buffer-full": 0, "awaiting-keyframe": 2 });
    expect(v.framesSent).toBe(2);
  });

  test("every viewer is sent the same Uint8Array instance for a live frame", () => {
    const hub = new StreamHub("cam0", VIDEO);
    const sockets = [new FakeSocket(), new FakeSocket(), new FakeSocket()];
    for (const s of sockets) hub.addViewer(s);
    const key = hub.publish(frame(true));
    const delta = hub.publish(frame(false));
    for (const s of sockets) {
      expect(s.sent[2]).toBe(key.bytes);
      expect(s.sent[3]).toBe(delta.bytes);
    }
  });

  test("a backed-up viewer skips frames, then resumes at a keyframe flagged discontinuity; skips are counted by reason", () => {
    const hub = new StreamHub("cam0", VIDEO, { maxBufferedBytes: 1000 });
    const slow = new FakeSocket();
    const fast = new FakeSocket();
    const v = hub.addViewer(slow);
    const f = hub.addViewer(fast);
    hub.publish(frame(true)); // 0
    hub.publish(frame(false)); // 1
    slow.bufferedAmount = 1000; // at the limit: still sent
    hub.publish(frame(false)); // 2
    slow.bufferedAmount = 1001; // over it
    hub.publish(frame(false)); // 3: buffer-full
    hub.publish(frame(false)); // 4: awaiting-keyframe (its reference 3 was not sent; checked first)
    slow.bufferedAmount = 0; // drained
    hub.publish(frame(false)); // 5: awaiting-keyframe
    hub.publish(frame(true)); // 6: resumes here
    hub.publish(frame(false)); // 7
    hub.publish(frame(true)); // 8: the discontinuity flag is not repeated
    expect(slow.log().slice(2)).toEqual(["0:k", "1:d", "2:d", "6:k+disc", "7:d", "8:k"]);
    expect(v.skipped).toEqual({ "buffer-full": 1, "awaiting-keyframe": 2 });
    expect(v.framesSent).toBe(6);
    // The other viewer is unaffected and shares the live bytes.
    expect(fast.frames().map(([seq, flags]) => [seq, flags & DISCONTINUITY])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8].map((n) => [n, 0]));
    expect(f.skipped).toEqual({ "buffer-full": 0, "awaiting-keyframe": 0 });
  });

  test("a viewer still backed up when the keyframe comes waits for the next one", () => {
    const hub = new StreamHub("cam0", VIDEO, { maxBufferedBytes: 10 });
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    hub.publish(frame(true)); // 0
    s.bufferedAmount = 11;
    hub.publish(frame(false)); // 1: buffer-full
    hub.publish(frame(true)); // 2: a keyframe, but buffer-full
    hub.publish(frame(false)); // 3: awaiting-keyframe
    s.bufferedAmount = 0;
    hub.publish(frame(false)); // 4: awaiting-keyframe
    hub.publish(frame(true)); // 5
    expect(s.log().slice(2)).toEqual(["0:k", "5:k+disc"]);
    expect(v.skipped).toEqual({ "buffer-full": 2, "awaiting-keyframe": 2 });
  });

  test("the discontinuity variant is made once and shared by every viewer that needs it", () => {
    const hub = new StreamHub("cam0", VIDEO, { maxBufferedBytes: 10 });
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
    expect(aLast).not.toBe(key.bytes);
    expect((aLast as Uint8Array)[1]).toBe(KEY | DISCONTINUITY);
  });

  test("a frame that carries GStreamer's discont goes out flagged discontinuity to everyone", () => {
    const hub = new StreamHub("cam0", VIDEO);
    const s = new FakeSocket();
    hub.addViewer(s);
    hub.publish(frame(true, 100, true));
    expect(s.log().slice(2)).toEqual(["0:k+disc"]);
  });

  test("a caps change sends a new hello, and the next frame each viewer gets is a keyframe", () => {
    const hub = new StreamHub("cam0", VIDEO);
    const a = new FakeSocket();
    const b = new FakeSocket();
    hub.addViewer(a);
    hub.publish(frame(true)); // 0
    hub.addViewer(b); // b gets 0 as replay
    hub.publish(frame(false)); // 1
    a.clear();
    b.clear();
    hub.setVideoInfo({ width: 320, height: 240, framerate: 30 });
    hub.publish(frame(false)); // 2: a delta from the new pipeline — nobody may get it
    hub.publish(frame(true)); // 3
    for (const s of [a, b]) {
      expect(s.log()).toEqual(["hello", "3:k"]);
      expect(s.texts()[0]).toMatchObject({ type: "hello", width: 320, height: 240, framerate: 30 });
    }
    expect(hub.videoInfo).toEqual({ width: 320, height: 240, framerate: 30 });
  });

  test("a caps change empties the GOP cache: a viewer joining right after gets no old-size frames", () => {
    const hub = new StreamHub("cam0", VIDEO);
    hub.publish(frame(true));
    hub.publish(frame(false));
    expect(hub.gopFrames).toBe(2);
    hub.setVideoInfo({ width: 640, height: 360, framerate: 30 });
    expect(hub.gopFrames).toBe(0);
    const s = new FakeSocket();
    hub.addViewer(s);
    expect(s.log()).toEqual(["hello", "state:starting"]);
    expect(s.texts()[0]).toMatchObject({ width: 640, height: 360 });
  });

  test("the same caps again change nothing", () => {
    const hub = new StreamHub("cam0", VIDEO);
    const s = new FakeSocket();
    hub.addViewer(s);
    hub.publish(frame(true));
    hub.setVideoInfo({ ...VIDEO });
    hub.publish(frame(false));
    expect(s.log()).toEqual(["hello", "state:starting", "0:k", "1:d"]);
    expect(hub.gopFrames).toBe(2);
  });

  test("setState broadcasts to every viewer, once per change", () => {
    const hub = new StreamHub("cam0", VIDEO);
    const a = new FakeSocket();
    const b = new FakeSocket();
    hub.addViewer(a);
    hub.addViewer(b);
    hub.setState("live");
    hub.setState("live");
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

  test("leaving live empties the GOP and makes viewers wait for a keyframe", () => {
    const hub = new StreamHub("cam0", VIDEO);
    const s = new FakeSocket();
    hub.addViewer(s);
    hub.setState("live");
    hub.publish(frame(true)); // 0
    hub.setState("starting"); // pipeline restarting
    expect(hub.gopFrames).toBe(0);
    hub.setState("live");
    hub.publish(frame(false)); // 1: skipped
    hub.publish(frame(true)); // 2
    expect(s.log()).toEqual(["hello", "state:starting", "state:live", "0:k", "state:starting", "state:live", "2:k"]);
  });

  test("sockets that are not open are sent nothing", () => {
    const hub = new StreamHub("cam0", VIDEO);
    const s = new FakeSocket();
    hub.addViewer(s);
    s.readyState = CLOSED;
    hub.publish(frame(true));
    hub.setState("live");
    expect(s.sent).toHaveLength(2);
  });

  test("removeViewer stops delivery", () => {
    const hub = new StreamHub("cam0", VIDEO);
    const s = new FakeSocket();
    const v = hub.addViewer(s);
    hub.removeViewer(v);
    hub.publish(frame(true));
    expect(s.sent).toHaveLength(2);
    expect(hub.viewerCount).toBe(0);
  });

  test("close() closes every socket with 1001, is safe twice, and refuses later viewers", () => {
    const hub = new StreamHub("cam0", VIDEO);
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
    const hub = new StreamHub("cam0", VIDEO);
    const start = millis(1_000_000);
    for (let i = 0; i < 30; i++) {
      hub.publish({ pts: micros(i * 33_333), key: i === 0, discont: false, data: new Uint8Array(500), receivedAt: millis(start + i * 33) });
    }
    expect(hub.framesIn).toBe(30);
    expect(hub.bytesIn).toBe(15_000);
    expect(hub.rates(millis(start + 1000))).toEqual({ fps: 15, kbps: 60 });
  });

  test("onClientMessage records the newest ack", () => {
    const hub = new StreamHub("cam0", VIDEO);
    const v = hub.addViewer(new FakeSocket());
    hub.onClientMessage(v, { type: "ack", seq: 41 });
    expect(v.lastAckSeq).toBe(41);
    expect(typeof v.lastAckAt).toBe("number");
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
    const live = m.bytes.slice();
    const replay = m.withFlags(REPLAY);
    expect(m.withFlags(REPLAY)).toBe(replay);
    expect(replay).not.toBe(m.bytes);
    expect(replay[1]).toBe(KEY | REPLAY);
    expect(m.bytes).toEqual(live);
    expect(m.bytes[1]).toBe(KEY);
    const both = m.withFlags(REPLAY | DISCONTINUITY);
    expect(both).not.toBe(replay);
    expect(both[1]).toBe(KEY | REPLAY | DISCONTINUITY);
    expect(replay[1]).toBe(KEY | REPLAY);
    // Everything but the flags byte is the same.
    expect([...both.subarray(0, 1), ...both.subarray(2)]).toEqual([...live.subarray(0, 1), ...live.subarray(2)]);
  });

  test("flags already set (or none) give the live bytes themselves", () => {
    const m = message(true, 1);
    expect(m.withFlags(0)).toBe(m.bytes);
    expect(m.withFlags(KEY)).toBe(m.bytes);
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
