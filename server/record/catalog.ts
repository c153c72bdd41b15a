// The segments recorded of one stream, in its directory: each media file has a JSON sidecar of the
// same name (written when the segment opens, replaced when it is finished) that says when it was
// recorded (wall clock), where it starts on the stream's time, and how it ended. The catalog is
// the in-memory list of them; at start-up it is read back from the sidecars, and a segment whose
// sidecar still says "open" (the server was killed while writing it) is recovered: its frames up
// to the last complete cluster or fragment are rewritten into a finished file with its index.

import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { RecordedSegment, RecordedRange } from "../../shared/api.js";
import type { Logger } from "../log.js";
import { SegmentFile, type SegmentContainer, type SegmentFormat } from "./segment-file.js";
import { SegmentReader } from "./segment-reader.js";
import { codecOfString } from "../../shared/codec.js";

/** How a segment's file stands. */
export type SegmentStatus =
  /** Being written by this process. */
  | "open"
  /** Finished: duration and index written. */
  | "finished"
  /** Cut short (a write error, a crash); readable up to its last complete cluster or fragment. */
  | "partial";

export interface SegmentEntry {
  /** Its name: the wall-clock time it starts, e.g. 20261202T103205.123Z. */
  readonly id: string;
  readonly container: SegmentContainer;
  readonly format: SegmentFormat;
  /** Wall clock (ms since 1970) of its first frame. */
  readonly start: number;
  /** Wall clock just after its last frame (its first frame's time while nothing more is written). */
  end: number;
  /** The stream time (µs) of its first frame; segments that follow on without a gap continue it. */
  readonly streamStartUs: number;
  frames: number;
  bytes: number;
  status: SegmentStatus;
}

/** Two segments closer than this are one recorded range (a segment boundary is not a gap). */
export const RANGE_JOIN_MS = 250;

const SIDECAR = ".json";
const ID_PATTERN = /^\d{8}T\d{6}\.\d{3}Z(-\d+)?$/;

export const segmentIdOf = (wallMs: number): string => new Date(wallMs).toISOString().replace(/[-:]/g, "");

export const fileOf = (entry: Pick<SegmentEntry, "id" | "container">): string => `${entry.id}.${entry.container}`;

export class SegmentCatalog {
  private readonly entries: SegmentEntry[] = [];

  private constructor(
    readonly dir: string,
    private readonly log: Logger,
  ) {}

  /** Reads `dir` (made when missing), recovering segments a killed server left open. */
  static async load(dir: string, log: Logger): Promise<SegmentCatalog> {
    const catalog = new SegmentCatalog(dir, log);
    await mkdir(dir, { recursive: true });
    for (const name of (await readdir(dir)).sort()) {
      if (!name.endsWith(SIDECAR) || !ID_PATTERN.test(name.slice(0, -SIDECAR.length))) continue;
      const entry = await catalog.readSidecar(name);
      if (entry === null) continue;
      if (entry.status === "open") {
        const recovered = await catalog.recover(entry);
        if (recovered !== null) catalog.entries.push(recovered);
      } else catalog.entries.push(entry);
    }
    catalog.entries.sort((a, b) => a.start - b.start);
    return catalog;
  }

  /** Every segment, oldest first. */
  list(): readonly SegmentEntry[] {
    return this.entries;
  }

  get totalBytes(): number {
    return this.entries.reduce((sum, e) => sum + e.bytes, 0);
  }

  /** The end of the newest segment: a new one never starts before it (the recorded timeline only goes forward). */
  get lastEnd(): number | null {
    return this.entries.length === 0 ? null : this.entries[this.entries.length - 1]!.end;
  }

  pathOf(entry: Pick<SegmentEntry, "id" | "container">): string {
    return join(this.dir, fileOf(entry));
  }

  /** A new, unique id for a segment starting at `wallMs`. */
  newId(wallMs: number): string {
    const base = segmentIdOf(wallMs);
    let id = base;
    for (let n = 1; this.entries.some((e) => e.id === id); n++) id = `${base}-${n}`;
    return id;
  }

  /** Adds a segment that is being opened and writes its sidecar (rejects with the file system's error). */
  async add(entry: SegmentEntry): Promise<void> {
    this.entries.push(entry);
    await this.writeSidecar(entry);
  }

  /** Writes the sidecar again (after the segment was finished or cut short). */
  async save(entry: SegmentEntry): Promise<void> {
    await this.writeSidecar(entry);
  }

  /** Deletes a segment's file and sidecar. */
  async remove(entry: SegmentEntry): Promise<void> {
    const i = this.entries.indexOf(entry);
    if (i >= 0) this.entries.splice(i, 1);
    await rm(this.pathOf(entry), { force: true });
    await rm(join(this.dir, entry.id + SIDECAR), { force: true });
  }

  /** The recorded time: segments that follow on within RANGE_JOIN_MS merged; a gap is where nothing was recorded. */
  ranges(): RecordedRange[] {
    const ranges: { start: number; end: number }[] = [];
    for (const e of this.entries) {
      const last = ranges[ranges.length - 1];
      if (last !== undefined && e.start - last.end <= RANGE_JOIN_MS) last.end = Math.max(last.end, e.end);
      else ranges.push({ start: e.start, end: e.end });
    }
    return ranges.map((r) => ({ start: new Date(r.start).toISOString(), end: new Date(r.end).toISOString() }));
  }

  private async writeSidecar(entry: SegmentEntry): Promise<void> {
    const path = join(this.dir, entry.id + SIDECAR);
    const body: Sidecar = {
      id: entry.id,
      container: entry.container,
      format: entry.format,
      start: entry.start,
      end: entry.end,
      streamStartUs: entry.streamStartUs,
      frames: entry.frames,
      bytes: entry.bytes,
      status: entry.status,
    };
    // Written aside and renamed: a crash leaves the old sidecar or the new one, never half of one.
    await writeFile(path + ".tmp", JSON.stringify(body) + "\n");
    await rename(path + ".tmp", path);
  }

  private async readSidecar(name: string): Promise<SegmentEntry | null> {
    try {
      const body = JSON.parse(await readFile(join(this.dir, name), "utf8")) as Sidecar;
      if (
        typeof body.id !== "string" || !ID_PATTERN.test(body.id) || (body.container !== "webm" && body.container !== "mp4") ||
        typeof body.start !== "number" || typeof body.end !== "number" || typeof body.streamStartUs !== "number" ||
        codecOfString(body.format?.codec ?? "") === null || !["open", "finished", "partial"].includes(body.status)
      ) {
        throw new Error("not a segment sidecar");
      }
      return { ...body, format: { ...body.format, codecName: codecOfString(body.format.codec)! } };
    } catch (err) {
      this.log.warn("recording: an unreadable segment sidecar is ignored", { code: "CC_WARN_RECORDING_SIDECAR", file: name, error: (err as Error).message });
      return null;
    }
  }

  /**
   * A segment the server was killed while writing: its frames up to the last complete cluster or
   * fragment are rewritten into a finished file (with duration and index). Null when none can be read.
   */
  private async recover(entry: SegmentEntry): Promise<SegmentEntry | null> {
    const path = this.pathOf(entry);
    const aside = path + ".recovering";
    let reader: SegmentReader | null = null;
    let out: SegmentFile | null = null;
    try {
      reader = await SegmentReader.open(path);
      out = await SegmentFile.create(aside, entry.format);
      let last = -1;
      let duration = 0;
      for await (const frame of reader.frames(0)) {
        if (frame.timeUs <= last) continue;
        await out.add(frame.data, frame.key, frame.timeUs, frame.durationUs);
        last = frame.timeUs;
        duration = frame.durationUs;
      }
      reader.close();
      reader = null;
      if (out.frames === 0) throw new Error("no complete frame in it");
      await out.finish();
      await rename(aside, path);
      const recovered: SegmentEntry = { ...entry, frames: out.frames, bytes: out.bytes, end: entry.start + Math.round((last + duration) / 1000), status: "partial" };
      await this.writeSidecar(recovered);
      this.log.info("recording: recovered a segment left open by a stopped server", { segment: entry.id, frames: recovered.frames });
      return recovered;
    } catch (err) {
      reader?.close();
      await out?.abandon();
      await rm(aside, { force: true });
      this.log.warn("recording: a segment left open could not be read; deleted", { code: "CC_WARN_RECORDING_UNREADABLE", segment: entry.id, error: (err as Error).message });
      await rm(path, { force: true });
      await rm(join(this.dir, entry.id + SIDECAR), { force: true });
      return null;
    }
  }

  /** The segment as the API lists it. */
  static describe(entry: SegmentEntry, stream: string): RecordedSegment {
    return {
      id: entry.id,
      url: `/recordings/${encodeURIComponent(stream)}/${fileOf(entry)}`,
      start: new Date(entry.start).toISOString(),
      end: new Date(entry.end).toISOString(),
      durationMs: entry.end - entry.start,
      frames: entry.frames,
      bytes: entry.bytes,
      codec: entry.format.codec,
      mimeType: entry.container === "webm" ? "video/webm" : "video/mp4",
      status: entry.status,
    };
  }
}

type Sidecar = Omit<SegmentEntry, "format"> & { format: Omit<SegmentFormat, "codecName"> & { codecName?: string } };

