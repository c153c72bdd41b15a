// Runs test/helpers/spec_client.py (a viewer written from docs/protocol.md alone, in Python) and
// reads back what it received. The protocol's constants are written out again here, from the spec:
// the frame header is u8 kind (1 = video), u8 flags (bit0 key, bit1 replay, bit2 discontinuity),
// u16 header length, u32 sequence, f64 PTS µs, f64 server time ms; little-endian.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("./spec_client.py", import.meta.url));
/** Debian's Python, which has the standard library this needs; another python3 may be first on the PATH. */
const PYTHON = "/usr/bin/python3";

export interface SpecClientOptions {
  readonly port: number;
  readonly path: string;
  /** Bytes per second it reads from its socket. */
  readonly bytesPerSecond: number;
  /** SO_RCVBUF in bytes; 0 or absent: the kernel's default (autotuned). */
  readonly receiveBuffer?: number;
  /** Ack the newest frame this often while frames arrive; absent: never ack. */
  readonly ackEveryMs?: number;
  readonly durationS: number;
  readonly stall?: { readonly atS: number; readonly forS: number };
}

export interface SpecFrame {
  /** When the client had read the whole message, ms since the epoch. */
  readonly at: number;
  readonly payload: Uint8Array;
}

export interface SpecVideoFrame {
  readonly at: number;
  readonly key: boolean;
  readonly replay: boolean;
  readonly discontinuity: boolean;
  readonly seq: number;
  readonly pts: number;
  readonly serverTime: number;
  readonly data: Uint8Array;
}

export interface SpecRun {
  readonly openedAt: number | null;
  readonly endedAt: number;
  readonly texts: { readonly at: number; readonly msg: Record<string, unknown> }[];
  readonly binaries: SpecFrame[];
  readonly close: { readonly code: number | null; readonly reason: string } | null;
  /** The binaries as frame-protocol video frames (for /ws/). */
  videoFrames(): SpecVideoFrame[];
}

const running = new Set<ChildProcess>();

/** Kills every client still running (for afterAll). */
export function killSpecClients(): void {
  for (const child of running) child.kill("SIGKILL");
  running.clear();
}

export function runSpecClient(options: SpecClientOptions): Promise<SpecRun> {
  const dir = mkdtempSync(join(tmpdir(), "canvascast-spec-"));
  const dataFile = join(dir, "binaries");
  const args = [
    SCRIPT,
    "--port", String(options.port),
    "--path", options.path,
    "--rate", String(options.bytesPerSecond),
    "--rcvbuf", String(options.receiveBuffer ?? 0),
    "--ack-ms", String(options.ackEveryMs ?? 0),
    "--duration", String(options.durationS),
    "--data", dataFile,
    ...(options.stall ? ["--stall-at", String(options.stall.atS), "--stall-for", String(options.stall.forS)] : []),
  ];
  const child = spawn(PYTHON, args, { stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (t: string) => (out += t));
  child.stderr.setEncoding("utf8").on("data", (t: string) => (err += t));
  return new Promise<SpecRun>((resolve, reject) => {
    child.once("error", reject);
    // "close", not "exit": the last lines of its stdout may still be in the pipe when it exits.
    child.once("close", (code) => {
      running.delete(child);
      try {
        if (code !== 0) throw new Error(`spec client exited with ${code}: ${err.slice(-2000)}`);
        resolve(parseRun(out, readFileSync(dataFile)));
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

function parseRun(stdout: string, data: Buffer): SpecRun {
  const texts: SpecRun["texts"][number][] = [];
  const binAt: number[] = [];
  let openedAt: number | null = null;
  let endedAt = 0;
  let close: SpecRun["close"] = null;
  for (const line of stdout.split("\n")) {
    if (line.trim() === "") continue;
    const ev = JSON.parse(line) as { ev: string; at: number; msg?: Record<string, unknown>; code?: number | null; reason?: string };
    if (ev.ev === "open") openedAt = ev.at;
    else if (ev.ev === "text") texts.push({ at: ev.at, msg: ev.msg! });
    else if (ev.ev === "bin") binAt.push(ev.at);
    else if (ev.ev === "close") close = { code: ev.code ?? null, reason: ev.reason ?? "" };
    else if (ev.ev === "end") endedAt = ev.at;
  }
  const binaries: SpecFrame[] = [];
  let offset = 0;
  while (offset + 4 <= data.byteLength) {
    const n = data.readUInt32LE(offset);
    const payload = new Uint8Array(data.buffer, data.byteOffset + offset + 4, n);
    binaries.push({ at: binAt[binaries.length]!, payload });
    offset += 4 + n;
  }
  if (binaries.length !== binAt.length) throw new Error(`spec client: ${binAt.length} binary events but ${binaries.length} payloads`);
  return {
    openedAt,
    endedAt,
    texts,
    binaries,
    close,
    videoFrames: () =>
      binaries.flatMap(({ at, payload }) => {
        const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
        if (payload.byteLength < 4 || v.getUint8(0) !== 1) return [];
        const flags = v.getUint8(1);
        const headerLength = v.getUint16(2, true);
        return [
          {
            at,
            key: (flags & 1) !== 0,
            replay: (flags & 2) !== 0,
            discontinuity: (flags & 4) !== 0,
            seq: v.getUint32(4, true),
            pts: v.getFloat64(8, true),
            serverTime: v.getFloat64(16, true),
            data: payload.subarray(headerLength),
          },
        ];
      }),
  };
}
