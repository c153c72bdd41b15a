// Scrub-back over /ws/, with a client written from docs/protocol.md alone (a `ws` socket, the
// frame header read by hand: u8 kind, u8 flags — bit 0 keyframe, 1 replay, 2 discontinuity,
// 3 recorded —, u16 header length, u32 sequence, f64 PTS µs, f64 server time ms): `seek` plays
// the recording from the keyframe at or before the time asked, at real time; `live` comes back.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { RecordingsResponse } from "../../shared/api.js";
import { decodedPictureCountOf } from "../helpers/codec-decode.js";
import { startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";
import { connect, recorded } from "../helpers/seek-client.js";
import { until } from "../helpers/until.js";

describe("seek and live over /ws/", () => {
  let server: ServerProcess;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "cc-seek-"));
    const config = join(dir, "cams.json");
    writeFileSync(
      config,
      JSON.stringify({
        streams: [
          { name: "cam0", source: "test" },
          { name: "plain", source: "test:ball", record: false },
        ],
        record: { dir: join(dir, "rec"), segmentSeconds: 4 },
      }),
    );
    server = await startServerProcess(["--config", config, "--size", "320x240", "--keyframe-interval", "1"]);
    await until("12 s recorded", 40_000, async () => {
      const r = (await (await fetch(`${server.url}api/streams/cam0/recordings`)).json()) as RecordingsResponse;
      const first = r.segments[0];
      return first !== undefined && Date.now() - Date.parse(first.start) > 12_000 ? true : undefined;
    });
  }, 60_000);
  afterAll(async () => {
    await stopAllServers();
    rmSync(dir, { recursive: true, force: true });
  });

  it("plays from the keyframe at or before the time asked, flagged recorded, at real time; live returns at once with the GOP", async () => {
    const c = await connect(server.wsBase + "ws/cam0");
    try {
      await c.wait(() => c.frames().length >= 10, 15_000, "live frames");
      const target = Date.now() - 8000;
      const mark = c.events.length;
      c.send({ type: "seek", at: target });
      await c.wait(() => recorded(c, mark).length >= 45, 15_000, "1.5 s of recorded frames");
      const after = c.events.slice(mark);
      // hello (the recording's format), then playback, then the frames.
      const firstText = after.findIndex((e) => "text" in e && e.text.type === "hello");
      const playbackAt = after.findIndex((e) => "text" in e && e.text.type === "playback");
      expect(firstText).toBeGreaterThanOrEqual(0);
      expect(playbackAt).toBeGreaterThan(firstText);
      const playback = (after[playbackAt] as { text: Record<string, unknown> }).text;
      expect(playback.mode).toBe("recorded");
      const at = playback.at as number;
      // The keyframe at or before: within one keyframe interval (1 s) before the time asked.
      expect(at).toBeLessThanOrEqual(target + 1);
      expect(at).toBeGreaterThan(target - 1100);
      const firstRecordedIndex = after.findIndex((e) => "frame" in e && e.frame.recorded);
      expect(firstRecordedIndex).toBeGreaterThan(playbackAt);
      // Live frames may still be on their way before it; none after.
      const sinceFirst = c.frames(mark + firstRecordedIndex);
      expect(sinceFirst.every((f) => f.recorded)).toBe(true);
      const rec = sinceFirst;
      expect(rec[0]!.key && rec[0]!.discontinuity).toBe(true);
      expect(Math.abs(rec[0]!.serverTime - at)).toBeLessThan(2);
      for (let i = 1; i < rec.length; i++) {
        expect(rec[i]!.serverTime).toBeGreaterThan(rec[i - 1]!.serverTime);
        expect(rec[i]!.pts).toBeGreaterThan(rec[i - 1]!.pts);
        expect(rec[i]!.seq).toBe(rec[i - 1]!.seq + 1);
      }
      // Played at real time, not poured out: 8 s are there to send, about as much as has passed has come.
      const arrivedSpan = rec.at(-1)!.arrived - rec[0]!.arrived;
      const recordedSpan = rec.at(-1)!.serverTime - rec[0]!.serverTime;
      expect(recordedSpan).toBeLessThan(arrivedSpan + 1500);
      // Every recorded frame decodes (libvpx), from the keyframe on.
      expect(await decodedPictureCountOf("vp8", rec.map((f) => f.data), 320, 240)).toBe(rec.length);
      // Acks of recorded frames are acks of frames sent: the connection stays.
      c.send({ type: "ack", seq: rec.at(-1)!.seq });

      const liveMark = c.events.length;
      c.send({ type: "live" });
      await c.wait(() => c.frames(liveMark).filter((f) => !f.recorded).length >= 10, 15_000, "live frames again");
      const back = c.events.slice(liveMark);
      const texts = back.flatMap((e) => ("text" in e ? [e.text.type] : []));
      expect(texts.slice(0, 3)).toEqual(["playback", "hello", "state"]);
      expect((back.find((e) => "text" in e && e.text.type === "playback") as { text: Record<string, unknown> }).text.mode).toBe("live");
      const firstLiveIndex = back.findIndex((e) => "frame" in e && !e.frame.recorded);
      const live = c.frames(liveMark + firstLiveIndex);
      expect(live.every((f) => !f.recorded)).toBe(true);
      // At once: the cached GOP replayed (replay + discontinuity, a keyframe first), then live.
      expect(live[0]!.key && live[0]!.replay && live[0]!.discontinuity).toBe(true);
      expect(Date.now() - live.at(-1)!.serverTime).toBeLessThan(5000);
      expect(c.ws.readyState).toBe(WebSocket.OPEN);
    } finally {
      c.ws.close();
    }
  }, 60_000);

  it("a seek before the oldest recording starts at it; past the newest, the run hands over to live", async () => {
    const r = (await (await fetch(`${server.url}api/streams/cam0/recordings`)).json()) as RecordingsResponse;
    const c = await connect(server.wsBase + "ws/cam0");
    try {
      c.send({ type: "seek", at: 0 });
      await c.wait(() => c.texts().some((t) => t.type === "playback"), 15_000, "playback");
      expect(c.texts().find((t) => t.type === "playback")).toMatchObject({ mode: "recorded", at: Math.round(Date.parse(r.segments[0]!.start)) });
      const mark = c.events.length;
      // Close to now: the run has caught up with the recording at once, and live takes over by itself.
      c.send({ type: "seek", at: Date.now() - 1000 });
      await c.wait(
        () => c.events.slice(mark).some((e) => "text" in e && e.text.type === "playback" && e.text.mode === "live"),
        20_000,
        "back to live by itself",
      );
      await c.wait(() => c.frames(mark).filter((f) => !f.recorded).length >= 5, 15_000, "live frames");
      expect(c.ws.readyState).toBe(WebSocket.OPEN);
    } finally {
      c.ws.close();
    }
  }, 60_000);

  it("a seek on a stream not recorded says so and stays live; a malformed seek closes with 4400", async () => {
    const c = await connect(server.wsBase + "ws/plain");
    try {
      await c.wait(() => c.frames().length >= 5, 15_000, "live frames");
      c.send({ type: "seek", at: Date.now() - 5000 });
      await c.wait(() => c.texts().some((t) => t.type === "playback"), 10_000, "the answer");
      expect(c.texts().find((t) => t.type === "playback")).toMatchObject({ mode: "live", error: "CC_ERR_NOT_RECORDED" });
      const n = c.frames().length;
      await c.wait(() => c.frames().length >= n + 10, 10_000, "live frames on");
      expect(c.frames().every((f) => !f.recorded)).toBe(true);
      c.send({ type: "seek", at: "yesterday" });
      expect(await c.closed).toBe(4400);
    } finally {
      c.ws.close();
    }
  }, 60_000);
});
