// Scrub-back through an edge: the origin records, the edge lists its recording and plays it to a
// /ws/ viewer written from docs/protocol.md alone, as the origin would (the origin's Playback, relayed
// over a real nats-server). The origin stopped mid-run sends the edge's viewer back to live, which
// says what became of the stream.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as connectNats } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { RecordingsResponse, StreamsResponse } from "../../shared/api.js";
import { decodedPictureCountOf } from "../helpers/codec-decode.js";
import { startNatsCluster, stopAllNatsClusters, type NatsCluster } from "../helpers/nats-cluster.js";
import { connect, recorded } from "../helpers/seek-client.js";
import { startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";
import { until } from "../helpers/until.js";

const SIZE = ["--size", "160x120", "--fps", "15", "--bitrate", "200", "--keyframe-interval", "1", "--tile", "off"];

describe("scrub-back through an edge", () => {
  let nats: NatsCluster;
  let dir: string;
  let origin: ServerProcess;
  let edge: ServerProcess;
  beforeAll(async () => {
    nats = await startNatsCluster(1);
    dir = mkdtempSync(join(tmpdir(), "cc-edge-seek-"));
    // Noise at 4 Mbit/s: a 3 s segment is larger than one piece the origin sends (512 KiB).
    origin = await startServerProcess(["--stream", "cam=test:snow", ...SIZE, "--bitrate", "4000", "--record", dir, "--record-segment", "3", "--nats", nats.urls]);
    edge = await startServerProcess(["--edge", "--nats", nats.urls]);
    await until("8 s recorded", 30_000, async () => {
      const r = (await (await fetch(`${origin.url}api/streams/cam/recordings`)).json()) as RecordingsResponse;
      const first = r.segments[0];
      return first !== undefined && Date.now() - Date.parse(first.start) > 8000 ? true : undefined;
    });
  }, 60_000);
  afterAll(async () => {
    await stopAllServers();
    await stopAllNatsClusters();
    rmSync(dir, { recursive: true, force: true });
  });

  it("lists the origin's recording, and plays it from the keyframe at or before the time asked; live comes back with the GOP", async () => {
    // /api/streams says it is recorded, as the origin does.
    const listed = await until("the recording's state at the edge", 10_000, async () => {
      const body = (await (await fetch(`${edge.url}api/streams`)).json()) as StreamsResponse;
      return body.streams.find((s) => s.name === "cam")?.recording;
    });
    expect(listed.state).toBe("recording");
    // The list is the origin's (its segments, by id and start).
    const atEdge = (await (await fetch(`${edge.url}api/streams/cam/recordings`)).json()) as RecordingsResponse;
    const atOrigin = (await (await fetch(`${origin.url}api/streams/cam/recordings`)).json()) as RecordingsResponse;
    expect(atEdge.stream).toBe("cam");
    expect(atEdge.ranges[0]!.start).toBe(atOrigin.ranges[0]!.start);
    const finished = (r: RecordingsResponse): string[] => r.segments.filter((s) => s.status === "finished").map((s) => s.id);
    expect(finished(atEdge).slice(0, 2)).toEqual(finished(atOrigin).slice(0, 2));
    // A stream nobody announced is unknown.
    const unknown = await fetch(`${edge.url}api/streams/nope/recordings`);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: string }).error).toBe("CC_ERR_UNKNOWN_STREAM");
    // A segment file through the edge is the origin's, byte for byte; Range and HEAD as there.
    const segment = atEdge.segments.find((x) => x.status === "finished")!;
    const path = segment.url.replace(/^\//, "");
    const whole = new Uint8Array(await (await fetch(`${origin.url}${path}`)).arrayBuffer());
    expect(whole.byteLength).toBeGreaterThan(512 * 1024);
    const viaEdge = await fetch(`${edge.url}${path}`);
    expect(viaEdge.status).toBe(200);
    expect(viaEdge.headers.get("content-type")).toBe("video/webm");
    expect(Buffer.from(await viaEdge.arrayBuffer()).equals(Buffer.from(whole))).toBe(true);
    const part = await fetch(`${edge.url}${path}`, { headers: { range: "bytes=100-999" } });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe(`bytes 100-999/${whole.byteLength}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(Buffer.from(whole.subarray(100, 1000)))).toBe(true);
    const tail = await fetch(`${edge.url}${path}`, { headers: { range: `bytes=${whole.byteLength}-` } });
    expect(tail.status).toBe(416);
    const head = await fetch(`${edge.url}${path}`, { method: "HEAD" });
    expect(head.headers.get("content-length")).toBe(String(whole.byteLength));
    const missing = await fetch(`${edge.url}recordings/cam/19700101T000000.000Z.webm`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: string }).error).toBe("CC_ERR_NO_SEGMENT");

    const c = await connect(`${edge.wsBase}ws/cam`);
    try {
      await c.wait(() => c.frames().length >= 5, 15_000, "live frames at the edge");
      const target = Date.now() - 5000;
      const mark = c.events.length;
      c.send({ type: "seek", at: target });
      await c.wait(() => recorded(c, mark).length >= 20, 15_000, "recorded frames through the edge");
      const after = c.events.slice(mark);
      const helloAt = after.findIndex((e) => "text" in e && e.text.type === "hello");
      const playbackAt = after.findIndex((e) => "text" in e && e.text.type === "playback");
      expect(helloAt).toBeGreaterThanOrEqual(0);
      expect(playbackAt).toBeGreaterThan(helloAt);
      const playback = (after[playbackAt] as { text: Record<string, unknown> }).text;
      expect(playback.mode).toBe("recorded");
      expect(playback.at as number).toBeLessThanOrEqual(target + 1);
      expect(playback.at as number).toBeGreaterThan(target - 1100);
      const first = after.findIndex((e) => "frame" in e && e.frame.recorded);
      const rec = c.frames(mark + first);
      expect(rec.every((f) => f.recorded)).toBe(true);
      expect(rec[0]!.key && rec[0]!.discontinuity).toBe(true);
      for (let i = 1; i < rec.length; i++) {
        expect(rec[i]!.seq).toBe(rec[i - 1]!.seq + 1);
        expect(rec[i]!.serverTime).toBeGreaterThan(rec[i - 1]!.serverTime);
      }
      // Paced at real time at the origin, not poured out.
      expect(rec.at(-1)!.serverTime - rec[0]!.serverTime).toBeLessThan(rec.at(-1)!.arrived - rec[0]!.arrived + 1500);
      expect(await decodedPictureCountOf("vp8", rec.map((f) => f.data), 160, 120)).toBe(rec.length);
      c.send({ type: "ack", seq: rec.at(-1)!.seq });

      const liveMark = c.events.length;
      c.send({ type: "live" });
      await c.wait(() => c.frames(liveMark).filter((f) => !f.recorded).length >= 5, 15_000, "live frames again");
      const back = c.events.slice(liveMark);
      expect(back.flatMap((e) => ("text" in e ? [e.text.type] : [])).slice(0, 3)).toEqual(["playback", "hello", "state"]);
      const firstLive = back.findIndex((e) => "frame" in e && !e.frame.recorded);
      const live = c.frames(liveMark + firstLive);
      expect(live.every((f) => !f.recorded)).toBe(true);
      expect(live[0]!.key && live[0]!.replay).toBe(true);
      expect(c.ws.readyState).toBe(WebSocket.OPEN);

    } finally {
      c.ws.close();
    }
  }, 60_000);

  it("recorded frames lost between origin and edge make the viewer skip to the next keyframe", async () => {
    // A relay written from the spec, with a NATS client of its own: it announces stream "lossy" as origin "lossy",
    // and answers its playback requests by asking the real origin to play "cam", passing on what comes back but a
    // few recorded deltas. The edge sends its status and stop to the real origin's control subject, as told.
    const streams = (await (await fetch(`${edge.url}api/streams`)).json()) as StreamsResponse;
    const cam = streams.streams.find((s) => s.name === "cam")!;
    const nc = await connectNats({ servers: nats.urls.split(",") });
    let dropped = 0;
    nc.subscribe("canvascast.playback.lossy", {
      callback: (_err, request) => {
        const asked = JSON.parse(new TextDecoder().decode(request.data)) as { at: number; firstSeq: number };
        const inbox = `_INBOX.lossy.${Math.random().toString(36).slice(2)}`;
        nc.subscribe(inbox, {
          callback: (_e, msg) => {
            const data = msg.data;
            // kind 1 (a frame), flags bit 0 keyframe, u32 sequence number at 4.
            if (data[0] === 1 && (data[1]! & 1) === 0 && new DataView(data.buffer, data.byteOffset).getUint32(4, true) % 10 === 4) {
              dropped++;
              return;
            }
            nc.publish(request.reply!, data);
          },
        });
        nc.publish("canvascast.playback.cam", JSON.stringify({ origin: cam.origin, at: asked.at, firstSeq: asked.firstSeq }), { reply: inbox });
      },
    });
    // Garbage on the origin's request subjects is ignored; a file outside its catalog is refused.
    for (const subject of ["canvascast.playback.cam", "canvascast.recordings.cam", "canvascast.segment.cam"]) {
      nc.publish(subject, "not json", { reply: "_INBOX.garbage" });
      nc.publish(subject, JSON.stringify({ origin: cam.origin, at: "yesterday", firstSeq: -1, file: 7 }), { reply: "_INBOX.garbage" });
    }
    const outside = await nc.request("canvascast.segment.cam", JSON.stringify({ origin: cam.origin, file: "../../../../etc/passwd", offset: 0, length: 100 }), { timeout: 3000 });
    const headLength = new DataView(outside.data.buffer, outside.data.byteOffset).getUint32(0, true);
    const head = JSON.parse(new TextDecoder().decode(outside.data.subarray(4, 4 + headLength))) as { type: string; error: string };
    expect(head).toMatchObject({ type: "refused", error: "CC_ERR_NO_SEGMENT" });
    expect(outside.data.byteLength).toBe(4 + headLength);
    const announce = (): void => {
      const encodings = [{ name: "full", width: 160, height: 120, framerate: 15, targetKbps: 200, codec: "vp8", fps: 15, kbps: 200 }];
      const recording = { state: "recording", segments: 1, bytes: 1, framesDropped: 0, segmentSeconds: 3, retain: { hours: 24, maxBytes: null } };
      const lossy = [{ name: "lossy", source: "a lossy relay", keyframeIntervalS: 1, restarts: 0, state: "live", encodings, recording }];
      nc.publish("canvascast.announce", JSON.stringify({ type: "announce", origin: "lossy", intervalMs: 1000, streams: lossy }));
    };
    announce();
    const timer = setInterval(announce, 500);
    try {
      await until("the lossy stream at the edge", 10_000, async () => ((await (await fetch(`${edge.url}api/streams`)).json()) as StreamsResponse).streams.find((s) => s.name === "lossy"));
      const c = await connect(`${edge.wsBase}ws/lossy`);
      try {
        c.send({ type: "seek", at: Date.now() - 6000 });
        await c.wait(() => recorded(c, 0).length >= 30, 15_000, "recorded frames through the lossy relay");
        const rec = recorded(c, 0);
        expect(dropped).toBeGreaterThan(0);
        expect(rec[0]!.key).toBe(true);
        // Every gap ends at a keyframe flagged discontinuity; libvpx decodes every frame sent.
        let gaps = 0;
        for (let i = 1; i < rec.length; i++) {
          if (rec[i]!.seq === rec[i - 1]!.seq + 1) continue;
          gaps++;
          expect(rec[i]!.key && rec[i]!.discontinuity, `frame ${rec[i]!.seq} after ${rec[i - 1]!.seq}`).toBe(true);
        }
        expect(gaps).toBeGreaterThan(0);
        expect(await decodedPictureCountOf("vp8", rec.map((f) => f.data), 160, 120)).toBe(rec.length);
      } finally {
        c.ws.close();
      }
    } finally {
      clearInterval(timer);
      await nc.close();
    }
  }, 60_000);

  it("a viewer playing the recording when the origin stops goes back to live, and is told the origin is gone", async () => {
    const c = await connect(`${edge.wsBase}ws/cam`);
    try {
      await c.wait(() => c.frames().length >= 5, 15_000, "live frames at the edge");
      const mark = c.events.length;
      c.send({ type: "seek", at: Date.now() - 6000 });
      await c.wait(() => recorded(c, mark).length >= 10, 15_000, "recorded frames");
      const stopMark = c.events.length;
      await origin.stop("SIGTERM");
      await c.wait(
        () => c.events.slice(stopMark).some((e) => "text" in e && e.text.type === "playback" && e.text.mode === "live"),
        15_000,
        "back to live",
      );
      await c.wait(() => c.events.slice(stopMark).some((e) => "text" in e && e.text.type === "state" && e.text.state !== "live"), 15_000, "the stream's state");
      expect(c.ws.readyState).toBe(WebSocket.OPEN);
    } finally {
      c.ws.close();
    }
  }, 60_000);
});

describe("the NATS users and permissions of docs/deployment.md", () => {
  // The auth.conf of the guide, as it is written there, with plain passwords for its hashes.
  const guide = readFileSync(new URL("../../docs/deployment.md", import.meta.url), "utf8");
  const authConf = /# \/etc\/nats\/auth\.conf\n([\s\S]*?)```/.exec(guide)![1]!;
  let nats: NatsCluster;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "cc-edge-perms-"));
    nats = await startNatsCluster(1, { extraConfig: authConf.replace('password: "$2a$11$…", permissions: $ORIGIN', 'password: "origin-pass", permissions: $ORIGIN').replace('password: "$2a$11$…", permissions: $EDGE', 'password: "edge-pass", permissions: $EDGE') });
  }, 30_000);
  afterAll(async () => {
    await stopAllServers();
    await stopAllNatsClusters();
    rmSync(dir, { recursive: true, force: true });
  });

  it("let an edge serve an origin's stream and its recording: live frames, the list, a seek and a segment file", async () => {
    expect(authConf).toContain("permissions: $EDGE");
    for (const [user, pass] of [["origin", "origin-pass"], ["edge", "edge-pass"]] as const) writeFileSync(join(dir, user), `${pass}\n`, { mode: 0o600 });
    const origin = await startServerProcess(["--stream", "cam=test:ball", ...SIZE, "--record", join(dir, "rec"), "--record-segment", "2", "--nats", nats.urls, "--nats-user", "origin", "--nats-password-file", join(dir, "origin")]);
    const edge = await startServerProcess(["--edge", "--nats", nats.urls, "--nats-user", "edge", "--nats-password-file", join(dir, "edge")]);
    // 10 s recorded, so that a run from the start plays for a while before it is near live.
    const listed = await until("10 s recorded, listed at the edge", 30_000, async () => {
      const res = await fetch(`${edge.url}api/streams/cam/recordings`);
      if (!res.ok) return undefined;
      const r = (await res.json()) as RecordingsResponse;
      const first = r.segments[0];
      return first?.status === "finished" && Date.now() - Date.parse(first.start) > 10_000 ? r : undefined;
    });
    const file = await fetch(`${edge.url}${listed.segments[0]!.url.replace(/^\//, "")}`);
    expect(file.status).toBe(200);
    expect((await file.arrayBuffer()).byteLength).toBe(listed.segments[0]!.bytes);
    const c = await connect(`${edge.wsBase}ws/cam`);
    try {
      await c.wait(() => c.frames().length >= 5, 15_000, "live frames through the guide's permissions");
      const mark = c.events.length;
      c.send({ type: "seek", at: Date.parse(listed.segments[0]!.start) });
      await c.wait(() => recorded(c, mark).length >= 10, 15_000, "recorded frames through the guide's permissions");
      // The edge's status reports reach the origin's control subject: the run still goes on 4 s later (the origin
      // stops a run whose edge it has not heard from for 3 s).
      await new Promise((resolve) => setTimeout(resolve, 4000));
      const before = recorded(c, mark).length;
      await c.wait(() => recorded(c, mark).length > before + 5, 5000, "the run going on");
      expect(origin.output()).not.toMatch(/Permissions Violation/i);
      expect(edge.output()).not.toMatch(/Permissions Violation/i);
    } finally {
      c.ws.close();
    }
  }, 60_000);
});
