// Recording against the real server: segments written from a real pipeline's frames, decoded
// afterwards with GStreamer; a pipeline killed while recording, the server itself SIGKILLed
// mid-segment, retention by size, a full disk (a real tmpfs), and the HTTP API that lists and
// serves the segments.

import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { RecordingsResponse, StreamsResponse } from "../../shared/api.js";
import { childPids, isAlive, startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";
import { decodeSegment } from "../helpers/segment-decode.js";
import { decodedPictureCountOf } from "../helpers/codec-decode.js";
import { FrameFlag } from "../../shared/protocol.js";
import { NAL_SPS, nalUnitTypes } from "../../shared/h264.js";
import { until } from "../helpers/until.js";
import { connectViewer, startAcking } from "../helpers/ws-viewer.js";

const FRAME_US = 1e6 / 30;
/** A live H.264 camera as a gst: fragment: x264 without B-frames (zerolatency), a keyframe a second. */
const H264_FRAGMENT =
  "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! " +
  "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! video/x-h264,profile=constrained-baseline";

async function recordings(server: ServerProcess, stream = "cam0"): Promise<RecordingsResponse> {
  const res = await fetch(`${server.url}api/streams/${stream}/recordings`);
  expect(res.status).toBe(200);
  return (await res.json()) as RecordingsResponse;
}

/** Seconds of video in the segments listed (their wall-clock spans). */
const recordedSeconds = (r: RecordingsResponse): number => r.segments.reduce((s, seg) => s + seg.durationMs, 0) / 1000;

interface Sidecar {
  id: string;
  streamStartUs: number;
  frames: number;
  status: string;
  start: number;
  end: number;
}

const sidecar = (dir: string, id: string): Sidecar => JSON.parse(readFileSync(join(dir, `${id}.json`), "utf8")) as Sidecar;

describe("recording", () => {
  const dirs: string[] = [];
  const cleanups: (() => void)[] = [];
  const tempDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), "cc-rec-"));
    dirs.push(d);
    return d;
  };
  afterEach(() => cleanups.splice(0).forEach((c) => c()));
  afterAll(async () => {
    await stopAllServers();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("records 30 s across a pipeline SIGKILL: every segment decodes completely, frames and stream time continuous, the restart a gap", async () => {
    const dir = tempDir();
    const server = await startServerProcess(["--source", "test", "--size", "320x240", "--record", dir, "--record-segment", "5"]);
    await until("15 s recorded", 40_000, async () => ((await recordings(server)).segments.length >= 3 ? true : undefined));
    const [gst] = childPids(server.pid, "gst-launch-1.0");
    process.kill(gst!, "SIGKILL");
    await until("30 s recorded, after the restart", 60_000, async () => {
      const r = await recordings(server);
      return recordedSeconds(r) >= 30 && r.ranges.length === 2 ? true : undefined;
    });
    await server.stop("SIGTERM");

    const streamDir = join(dir, "cam0");
    const ids = readdirSync(streamDir).filter((f) => f.endsWith(".webm")).map((f) => f.slice(0, -5)).sort();
    expect(ids.length).toBeGreaterThanOrEqual(7);
    const segments = ids.map((id) => sidecar(streamDir, id));
    // A clean stop finishes the open segment: every one has its index and duration.
    expect(segments.map((s) => s.status)).toEqual(segments.map(() => "finished"));
    let gaps = 0;
    for (const [i, seg] of segments.entries()) {
      const decoded = await decodeSegment(join(streamDir, `${seg.id}.webm`), "vp8");
      expect(decoded.problems, seg.id).toEqual([]);
      expect(decoded.pts.length, `${seg.id}: every frame decodes`).toBe(seg.frames);
      expect(decoded.pts[0]).toBe(0);
      for (let k = 1; k < decoded.pts.length; k++) {
        const step = decoded.pts[k]! - decoded.pts[k - 1]!;
        expect(step, `${seg.id} frame ${k}`).toBeGreaterThan(0);
        expect(step, `${seg.id} frame ${k}`).toBeLessThan(3 * FRAME_US);
      }
      if (i === 0) continue;
      // The stream's time goes on from one segment into the next, the pipeline's restart included: one frame on.
      const prev = segments[i - 1]!;
      const prevLast = (await decodeSegment(join(streamDir, `${prev.id}.webm`), "vp8")).pts.at(-1)!;
      const step = seg.streamStartUs - (prev.streamStartUs + prevLast);
      expect(step, `stream time from ${prev.id} to ${seg.id}`).toBeGreaterThan(0.5 * FRAME_US);
      expect(step, `stream time from ${prev.id} to ${seg.id}`).toBeLessThan(1.6 * FRAME_US);
      // On the wall clock, segments follow on, except where the pipeline was down.
      expect(seg.start).toBeGreaterThanOrEqual(prev.end);
      if (seg.start - prev.end > 250) gaps++;
    }
    expect(gaps, "the restart is the one gap in the recorded time").toBe(1);
  }, 120_000);

  it("a server SIGKILLed mid-segment leaves a segment that decodes up to its last cluster; the next start recovers it and records after it", async () => {
    const dir = tempDir();
    const args = ["--source", "test", "--size", "320x240", "--record", dir, "--record-segment", "60"];
    const first = await startServerProcess(args);
    const open = await until("4 s in the open segment", 30_000, async () => {
      const seg = (await recordings(first)).segments.at(-1);
      return seg !== undefined && seg.frames >= 120 ? seg : undefined;
    });
    const gsts = childPids(first.pid, "gst-launch-1.0");
    await first.stop("SIGKILL");
    for (const pid of gsts) if (isAlive(pid)) process.kill(pid, "SIGKILL");
    const streamDir = join(dir, "cam0");
    const path = join(streamDir, `${open.id}.webm`);
    expect(sidecar(streamDir, open.id).status).toBe("open");
    const partial = await decodeSegment(path, "vp8");
    expect(partial.problems).toEqual([]);
    // Every complete cluster (one per keyframe, a second of frames): at least what the API said minus one.
    expect(partial.pts.length).toBeGreaterThanOrEqual(open.frames - 30);
    for (let k = 1; k < partial.pts.length; k++) expect(partial.pts[k]!).toBeGreaterThan(partial.pts[k - 1]!);

    const second = await startServerProcess(args);
    const r = await until("a new segment after the recovered one", 30_000, async () => {
      const list = await recordings(second);
      return list.segments.length >= 2 && list.segments[1]!.frames > 0 ? list : undefined;
    });
    const recovered = r.segments[0]!;
    expect(recovered.id).toBe(open.id);
    expect(recovered.status).toBe("partial");
    // Its complete clusters (the last, cut mid-way, is left out), now in a finished file.
    expect(recovered.frames).toBeLessThanOrEqual(partial.pts.length);
    expect(recovered.frames).toBeGreaterThanOrEqual(partial.pts.length - 31);
    const after = await decodeSegment(path, "vp8");
    expect(after.problems).toEqual([]);
    expect(after.pts.length).toBe(recovered.frames);
    // The recorded timeline only goes forward across the server's restart, and shows it as a gap.
    expect(Date.parse(r.segments[1]!.start)).toBeGreaterThanOrEqual(Date.parse(recovered.end));
    expect(r.ranges.length).toBe(2);
    await second.stop("SIGTERM");
  }, 90_000);

  it("keeps a stream's segments within --record-max-bytes, deleting the oldest", async () => {
    const dir = tempDir();
    const maxBytes = 1024 * 1024;
    const server = await startServerProcess(["--source", "test", "--size", "320x240", "--record", dir, "--record-segment", "2", "--record-max-bytes", "1M"]);
    const firstId = (await until("a segment", 20_000, async () => (await recordings(server)).segments[0])).id;
    const r = await until("the first segment deleted", 40_000, async () => {
      const list = await recordings(server);
      return list.segments.every((s) => s.id !== firstId) && list.segments.length >= 2 ? list : undefined;
    });
    const finished = r.segments.filter((s) => s.status !== "open");
    expect(finished.reduce((sum, s) => sum + s.bytes, 0)).toBeLessThanOrEqual(maxBytes);
    expect(r.recording.retain.maxBytes).toBe(maxBytes);
    // Deleted from the disk too, sidecars included.
    expect(existsSync(join(dir, "cam0", `${firstId}.webm`))).toBe(false);
    expect(existsSync(join(dir, "cam0", `${firstId}.json`))).toBe(false);
    await server.stop("SIGTERM");
  }, 60_000);

  it("lists segments and serves them with HTTP Range; tokens apply as to the stream", async () => {
    const dir = tempDir();
    const token = "recording-test-token-0123456789";
    const other = "other-stream-token-0123456789";
    const server = await startServerProcess([
      "--stream", "door=test", "--stream", "yard=test:ball", "--size", "160x120", "--record", dir, "--record-segment", "2",
      "--token", token, "--token", `${other}:yard`,
    ]);
    const auth = { Authorization: `Bearer ${token}` };
    const list = await until("a finished segment", 20_000, async () => {
      const res = await fetch(`${server.url}api/streams/door/recordings`, { headers: auth });
      const body = (await res.json()) as RecordingsResponse;
      return body.segments.some((s) => s.status === "finished") ? body : undefined;
    });
    const seg = list.segments.find((s) => s.status === "finished")!;
    expect(seg.url).toBe(`/recordings/door/${seg.id}.webm`);
    expect(seg.mimeType).toBe("video/webm");
    const whole = await fetch(server.url + seg.url.slice(1), { headers: auth });
    expect(whole.status).toBe(200);
    expect(whole.headers.get("content-type")).toBe("video/webm");
    expect(whole.headers.get("accept-ranges")).toBe("bytes");
    const bytes = new Uint8Array(await whole.arrayBuffer());
    expect(bytes.byteLength).toBe(seg.bytes);
    // The EBML magic: a WebM file.
    expect([...bytes.subarray(0, 4)]).toEqual([0x1a, 0x45, 0xdf, 0xa3]);
    const part = await fetch(server.url + seg.url.slice(1), { headers: { ...auth, Range: "bytes=100-199" } });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe(`bytes 100-199/${seg.bytes}`);
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(bytes.subarray(100, 200));
    const beyond = await fetch(server.url + seg.url.slice(1), { headers: { ...auth, Range: `bytes=${seg.bytes + 10}-` } });
    expect(beyond.status).toBe(416);
    // ?token= works too (a <video src> cannot send a header).
    expect((await fetch(`${server.url}${seg.url.slice(1)}?token=${token}`, { method: "HEAD" })).status).toBe(200);

    expect((await fetch(server.url + seg.url.slice(1))).status).toBe(401);
    expect((await fetch(server.url + seg.url.slice(1), { headers: { Authorization: `Bearer ${other}` } })).status).toBe(403);
    expect((await fetch(`${server.url}api/streams/door/recordings`, { headers: { Authorization: `Bearer ${other}` } })).status).toBe(403);
    const missing = await fetch(`${server.url}recordings/door/20200101T000000.000Z.webm`, { headers: auth });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: string }).error).toBe("CC_ERR_NO_SEGMENT");
    // Only listed segments: not the sidecar, not a path out of the directory.
    expect((await fetch(`${server.url}recordings/door/${seg.id}.json`, { headers: auth })).status).toBe(404);
    expect((await fetch(`${server.url}recordings/door/..%2F..%2Fetc%2Fpasswd`, { headers: auth })).status).toBe(404);
    const unknown = await fetch(`${server.url}api/streams/nope/recordings`, { headers: auth });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: string }).error).toBe("CC_ERR_UNKNOWN_STREAM");
    expect((await fetch(`${server.url}recordings/door/${seg.id}.webm`, { method: "POST", headers: auth })).status).toBe(405);
    // A from/to window lists the segments that overlap it.
    const windowed = (await (
      await fetch(`${server.url}api/streams/door/recordings?from=${encodeURIComponent(seg.start)}&to=${encodeURIComponent(seg.end)}`, { headers: auth })
    ).json()) as RecordingsResponse;
    expect(windowed.segments.map((s) => s.id)).toContain(seg.id);
    expect(windowed.segments.length).toBeLessThan(list.segments.length + 2);
    const streams = (await (await fetch(`${server.url}api/streams`, { headers: auth })).json()) as StreamsResponse;
    expect(streams.streams.map((s) => s.recording?.state)).toEqual(["recording", "recording"]);
    await server.stop("SIGTERM");
  }, 60_000);

  it("a full disk stops recording with an error state and a metric; live goes on; recording resumes when space returns", async () => {
    const mount = tempDir();
    // A real file system that fills: a 3 MiB tmpfs, 2 MiB of it taken by a file the test frees later.
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=3m", "tmpfs", mount]);
    cleanups.push(() => execFileSync("umount", ["-l", mount]));
    const filler = join(mount, "filler");
    writeFileSync(filler, Buffer.alloc(2 * 1024 * 1024));
    const server = await startServerProcess(["--source", "test", "--size", "320x240", "--record", join(mount, "rec"), "--record-segment", "60"]);
    const viewer = await connectViewer(server.wsBase + "ws/cam0");
    cleanups.push(startAcking(viewer));
    cleanups.push(() => viewer.close());
    const failed = await until("the recording error", 30_000, async () => {
      const r = await recordings(server);
      return r.recording.state === "error" ? r : undefined;
    });
    expect(failed.recording.reason).toMatch(/ENOSPC/);
    const metrics = await (await fetch(server.url + "metrics")).text();
    expect(metrics).toMatch(/canvascast_recording_state\{stream="cam0",state="error"\} 1/);
    expect(metrics).toMatch(/canvascast_recording_errors_total\{stream="cam0"\} [1-9]/);
    // Live is not held up by the disk.
    const before = viewer.frames().length;
    await viewer.waitForFrames(before + 30, 10_000);
    const info = ((await (await fetch(server.url + "api/streams")).json()) as StreamsResponse).streams[0]!;
    expect(info.state).toBe("live");
    expect(info.recording?.state).toBe("error");
    // What was written before the disk filled is still readable.
    const cut = failed.segments.at(-1)!;
    expect(cut.status).toBe("partial");
    const decoded = await decodeSegment(join(mount, "rec", "cam0", `${cut.id}.webm`), "vp8");
    expect(decoded.problems).toEqual([]);
    expect(decoded.pts.length).toBeGreaterThan(0);

    // A retry while the disk is still full fails too (and is counted): recording must still resume after it.
    await until("a retry failed", 30_000, async () => {
      const m = /canvascast_recording_errors_total\{stream="cam0"\} (\d+)/.exec(await (await fetch(server.url + "metrics")).text());
      return m !== null && Number(m[1]) >= 2 ? true : undefined;
    });
    rmSync(filler);
    const resumed = await until("recording again", 30_000, async () => {
      const r = await recordings(server);
      return r.recording.state === "recording" && r.segments.at(-1)!.id !== cut.id && r.segments.at(-1)!.frames > 30 ? r : undefined;
    });
    expect(resumed.recording.reason).toBeUndefined();
    expect(resumed.recording.framesDropped).toBeGreaterThan(0);
    expect(statSync(join(mount, "rec", "cam0", `${resumed.segments.at(-1)!.id}.webm`)).size).toBeGreaterThan(0);
    await server.stop("SIGTERM");
  }, 90_000);

  it("records H.264 (--codec copy) as fragmented MP4: every segment decodes completely with avdec_h264, pictures = frames listed", async () => {
    const dir = tempDir();
    const server = await startServerProcess(["--stream", `cam=gst:${H264_FRAGMENT}`, "--codec", "copy", "--record", dir, "--record-segment", "2"]);
    const listed = await until("3 finished segments", 40_000, async () => {
      const r = await recordings(server, "cam");
      const finished = r.segments.filter((s) => s.status === "finished");
      return finished.length >= 3 ? finished : undefined;
    });
    // Played back over /ws/, the recording's frames are Annex B as live ones are (SPS and PPS on the
    // keyframe), and avdec_h264 decodes every one.
    const viewer = await connectViewer(server.wsBase + "ws/cam");
    try {
      await viewer.waitForFrames(5);
      const mark = viewer.received.length;
      viewer.ws.send(JSON.stringify({ type: "seek", at: Date.parse(listed[0]!.start) }));
      const recordedFrames = (): Uint8Array[] =>
        viewer.received.slice(mark).flatMap((r) => (r.type === "frame" && (r.header.flags & FrameFlag.RECORDED) !== 0 ? [r.data] : []));
      await until("30 recorded frames", 20_000, () => Promise.resolve(recordedFrames().length >= 30 ? true : undefined));
      const played = recordedFrames().slice(0, 30);
      expect([...played[0]!.subarray(0, 4)]).toEqual([0, 0, 0, 1]);
      expect(nalUnitTypes(played[0]!)).toContain(NAL_SPS);
      expect(await decodedPictureCountOf("h264", played, 320, 240)).toBe(played.length);
    } finally {
      viewer.close();
    }
    await server.stop("SIGTERM");
    for (const seg of listed) {
      expect(seg.url).toBe(`/recordings/cam/${seg.id}.mp4`);
      expect(seg.mimeType).toBe("video/mp4");
      expect(seg.codec).toMatch(/^avc1\./);
    }
    const streamDir = join(dir, "cam");
    const ids = readdirSync(streamDir).filter((f) => f.endsWith(".mp4")).map((f) => f.slice(0, -4)).sort();
    expect(ids.length).toBeGreaterThanOrEqual(listed.length);
    for (const id of ids) {
      const seg = sidecar(streamDir, id);
      // The clean stop finished the open one too.
      expect(seg.status, id).toBe("finished");
      const decoded = await decodeSegment(join(streamDir, `${id}.mp4`), "h264");
      expect(decoded.problems, id).toEqual([]);
      expect(decoded.exitCode, id).toBe(0);
      expect(decoded.pts.length, `${id}: every frame decodes`).toBe(seg.frames);
      const inList = listed.find((s) => s.id === id);
      if (inList !== undefined) expect(decoded.pts.length, id).toBe(inList.frames);
      // A segment is cut at the first keyframe (one a second) after 2 s: two GOPs, give or take the first.
      expect(seg.frames, id).toBeGreaterThan(0);
      for (let k = 1; k < decoded.pts.length; k++) expect(decoded.pts[k]!, `${id} picture ${k}`).toBeGreaterThan(decoded.pts[k - 1]!);
    }
    for (const id of ids.slice(0, -1)) expect(sidecar(streamDir, id).frames, id).toBeGreaterThanOrEqual(60);
  }, 90_000);

  it("an H.264 segment of a server SIGKILLed mid-segment decodes up to its last fragment; the next start recovers it", async () => {
    const dir = tempDir();
    const args = ["--stream", `cam=gst:${H264_FRAGMENT}`, "--codec", "copy", "--record", dir, "--record-segment", "60"];
    const first = await startServerProcess(args);
    const open = await until("3 s in the open segment", 30_000, async () => {
      const seg = (await recordings(first, "cam")).segments.at(-1);
      return seg !== undefined && seg.frames >= 90 ? seg : undefined;
    });
    const gsts = childPids(first.pid, "gst-launch-1.0");
    await first.stop("SIGKILL");
    for (const pid of gsts) if (isAlive(pid)) process.kill(pid, "SIGKILL");
    const streamDir = join(dir, "cam");
    const path = join(streamDir, `${open.id}.mp4`);
    expect(sidecar(streamDir, open.id).status).toBe("open");
    const partial = await decodeSegment(path, "h264");
    expect(partial.problems).toEqual([]);
    // A fragment per keyframe (one a second): at least what the API said minus the fragment being written.
    expect(partial.pts.length).toBeGreaterThan(0);
    expect(partial.pts.length).toBeGreaterThanOrEqual(open.frames - 30);
    for (let k = 1; k < partial.pts.length; k++) expect(partial.pts[k]!).toBeGreaterThan(partial.pts[k - 1]!);

    const second = await startServerProcess(args);
    const r = await until("a new segment after the recovered one", 30_000, async () => {
      const list = await recordings(second, "cam");
      return list.segments.length >= 2 && list.segments[1]!.frames > 0 ? list : undefined;
    });
    await second.stop("SIGTERM");
    const recovered = r.segments[0]!;
    expect(recovered.id).toBe(open.id);
    expect(recovered.status).toBe("partial");
    expect(recovered.frames).toBeLessThanOrEqual(partial.pts.length);
    expect(recovered.frames).toBeGreaterThanOrEqual(partial.pts.length - 31);
    const after = await decodeSegment(path, "h264");
    expect(after.problems).toEqual([]);
    expect(after.pts.length).toBe(recovered.frames);
  }, 90_000);

  it("an unusable recording directory stops the start with a clear error", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "file"), "not a directory");
    await expect(startServerProcess(["--source", "test", "--record", join(dir, "file")], 15_000)).rejects.toThrow(/CC_ERR_RECORDING_DIR/);
  }, 30_000);
});

