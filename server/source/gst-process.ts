// One gst-launch-1.0 child process: spawns it, parses each of its outputs (GDP on stdout, and on
// fd 3… for a pipeline with more than one encoding) into encoded frames of the stream's codec, logs its stderr, and stops it
// (SIGINT for a clean EOS, SIGKILL after a grace period).

import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import type { Readable } from "node:stream";
import { Emitter } from "../../shared/emitter.js";
import { wallClockMs, type Millis } from "../../shared/units.js";
import { errorFields, type Logger } from "../log.js";
import type { VideoCaps } from "./caps.js";
import type { CodecModule } from "../codecs/codec-module.js";
import { FrameAssembler, type EncodedFrame, type FrameWarningCode } from "./frames.js";
import { GdpError, GdpParser, type GdpPacket } from "./gdp.js";
import { redactCredentials } from "./rtsp.js";

export const GST_LAUNCH = "gst-launch-1.0";

export interface GstExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The pipeline's own error text (stderr lines) or our reason for ending it; null on a clean end. */
  readonly error: string | null;
  /**
   * The last warning an element posted, e.g. rtspsrc's "Could not read from resource." when a camera
   * closes the connection: gst-launch -q prints no warnings, and such a pipeline ends cleanly (EOS).
   */
  readonly warning: string | null;
}

/** A GDP stream the pipeline writes: its name (the encoding) and file descriptor (1, or 3 and up). */
export interface GstOutputSpec {
  readonly name: string;
  readonly fd: number;
  /** What it carries; the process's `codec` when not given. */
  readonly codec?: CodecModule;
}

export interface GstProcessEvents {
  caps: { readonly output: string; readonly caps: VideoCaps };
  frame: { readonly output: string; readonly frame: EncodedFrame };
  warning: { readonly output: string; readonly code: FrameWarningCode; readonly message: string };
  exit: GstExit;
}

export interface GstProcessOptions {
  readonly log: Logger;
  /** The GDP streams to read; each gets its own parser. */
  readonly outputs: readonly GstOutputSpec[];
  /** What every output carries; VP8 when not given. */
  readonly codec?: CodecModule;
  /** Grace period between SIGINT and SIGKILL on close(). */
  readonly stopGraceMs?: number;
  readonly program?: string;
}

/** Processes still running, so a dying server can kill them synchronously on exit. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of live) child.kill("SIGKILL");
  });
}

const STDERR_TAIL_LINES = 20;

/**
 * GStreamer's log of the messages elements post (category GST_ERROR_SYSTEM at INFO), on stderr:
 * the only place warnings show under -q. Added to the operator's own GST_DEBUG, if any.
 */
function gstEnv(): NodeJS.ProcessEnv {
  const own = process.env.GST_DEBUG;
  return { ...process.env, GST_DEBUG: own ? `${own},GST_ERROR_SYSTEM:4` : "GST_ERROR_SYSTEM:4", GST_DEBUG_NO_COLOR: "1" };
}

/** A GST_ERROR_SYSTEM log line: which element posted what. */
const POSTED_MESSAGE = /GST_ERROR_SYSTEM .*:<([^>]*)> (?:posting message|posted (\w+) message): (.*)$/;

export class GstProcess {
  /** A listener that throws is logged (with its stack), and the other listeners still run. */
  readonly events = new Emitter<GstProcessEvents>((err, event) =>
    this.log.error("pipeline event listener threw", { event, pipelinePid: this.child.pid, ...errorFields(err) }),
  );
  private readonly child: ChildProcess;
  private readonly log: Logger;
  private readonly stopGraceMs: number;
  private readonly stderrTail: string[] = [];
  private stderrPartial = "";
  private lastWarning: string | null = null;
  /** Set when we end the process ourselves because its output was unusable. */
  private fatal: string | null = null;
  private closing: Promise<GstExit> | null = null;
  private exited: GstExit | null = null;
  private readonly exitPromise: Promise<GstExit>;

  constructor(args: readonly string[], options: GstProcessOptions) {
    installExitHook();
    this.log = options.log;
    this.stopGraceMs = options.stopGraceMs ?? 2000;
    this.child = spawn(options.program ?? GST_LAUNCH, args, { stdio: stdioFor(options.outputs), env: gstEnv() });
    live.add(this.child);
    this.log.debug("gst started", { pipelinePid: this.child.pid, args: redactCredentials(args.join(" ")) });

    this.exitPromise = new Promise<GstExit>((resolve) => {
      // 'close' fires after every output and stderr have ended, so every frame has been delivered.
      this.child.once("close", (code, signal) => {
        live.delete(this.child);
        this.flushStderr();
        const stderrError = this.stderrTail.filter((l) => /ERROR|WARNING: erroneous/.test(l)).join("\n");
        const error =
          this.fatal ??
          (code === 0 ? null : stderrError || this.stderrTail.slice(-3).join("\n") || `gst-launch-1.0 exited (${signal ?? code})`);
        this.exited = { code, signal, error, warning: this.lastWarning };
        resolve(this.exited);
        this.events.emit("exit", this.exited);
      });
    });
    this.child.once("error", (err) => {
      // Spawn failure (e.g. gst-launch-1.0 not installed): 'close' still follows.
      this.fatal = `cannot run ${options.program ?? GST_LAUNCH}: ${err.message}`;
    });
    for (const output of options.outputs) {
      const reader = new OutputReader(output.name, output.codec ?? options.codec);
      (this.child.stdio[output.fd] as Readable).on("data", (chunk: Buffer) => this.onOutput(reader, chunk));
    }
    this.child.stderr!.setEncoding("utf8");
    this.child.stderr!.on("data", (text: string) => this.onStderr(text));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Resolves when the process has exited, however it ended. */
  get exit(): Promise<GstExit> {
    return this.exitPromise;
  }

  get running(): boolean {
    return this.exited === null;
  }

  /** Kills the process at once (SIGKILL): for a pipeline that no longer responds. */
  kill(): void {
    if (this.exited === null) this.child.kill("SIGKILL");
  }

  /** Stops the pipeline: SIGINT (EOS, clean exit), then SIGKILL after the grace period. Safe to call twice. */
  close(): Promise<GstExit> {
    if (this.closing) return this.closing;
    if (this.exited) return (this.closing = Promise.resolve(this.exited));
    this.child.kill("SIGINT");
    const timer = setTimeout(() => {
      this.log.warn("gst did not stop on SIGINT; killing it", { pipelinePid: this.child.pid });
      this.child.kill("SIGKILL");
    }, this.stopGraceMs);
    timer.unref();
    this.closing = this.exitPromise.finally(() => clearTimeout(timer));
    return this.closing;
  }

  private onOutput(reader: OutputReader, chunk: Buffer): void {
    if (this.fatal) return;
    const receivedAt = wallClockMs();
    let packets: readonly GdpPacket[];
    try {
      packets = reader.parser.push(chunk);
    } catch (err) {
      // A corrupt stream cannot be resynchronised: deliver what came before, then end this
      // process (every encoding of it: they restart together); its owner decides what next.
      if (err instanceof GdpError) this.deliver(reader, err.completed, receivedAt);
      this.fatal = `${reader.name} output: ${err instanceof GdpError ? `${err.code}: ${err.message}` : String(err)}`;
      this.log.error("unreadable pipeline output; stopping the pipeline", { error: this.fatal, encoding: reader.name });
      this.child.kill("SIGKILL");
      return;
    }
    this.deliver(reader, packets, receivedAt);
  }

  private deliver(reader: OutputReader, packets: readonly GdpPacket[], receivedAt: Millis): void {
    const output = reader.name;
    for (const packet of packets) {
      for (const event of reader.assembler.accept(packet, receivedAt)) {
        switch (event.type) {
          case "caps":
            this.events.emit("caps", { output, caps: event.caps });
            break;
          case "frame":
            this.events.emit("frame", { output, frame: event.frame });
            break;
          case "warning":
            this.log.warn(event.message, { code: event.code, encoding: output });
            this.events.emit("warning", { output, code: event.code, message: event.message });
            break;
        }
      }
    }
  }

  private onStderr(text: string): void {
    const lines = (this.stderrPartial + text).split("\n");
    this.stderrPartial = lines.pop() ?? "";
    for (const line of lines) this.keepStderrLine(line);
  }

  private flushStderr(): void {
    if (this.stderrPartial) this.keepStderrLine(this.stderrPartial);
    this.stderrPartial = "";
  }

  private keepStderrLine(line: string): void {
    const trimmed = redactCredentials(line.trimEnd());
    if (!trimmed) return;
    const posted = POSTED_MESSAGE.exec(trimmed);
    if (posted !== null) {
      // Errors gst-launch prints itself (ERROR: from element …); warnings it does not, under -q.
      if (posted[2] === "warning") {
        this.lastWarning = `WARNING: from element ${posted[1]}: ${posted[3]}`;
        this.log.warn(`gst: ${this.lastWarning}`, { pipelinePid: this.child.pid });
      }
      return;
    }
    this.log.warn(`gst: ${trimmed}`, { pipelinePid: this.child.pid });
    this.stderrTail.push(trimmed);
    if (this.stderrTail.length > STDERR_TAIL_LINES) this.stderrTail.shift();
  }
}

/** One output's parser state: GDP packets, then frames. */
class OutputReader {
  readonly parser = new GdpParser();
  readonly assembler: FrameAssembler;
  constructor(
    readonly name: string,
    codec: CodecModule | undefined,
  ) {
    this.assembler = new FrameAssembler(codec);
  }
}

/** stdin ignored, stderr a pipe (gst's messages), a pipe on each output's fd, the fds between ignored. */
export function stdioFor(outputs: readonly GstOutputSpec[]): StdioOptions {
  const fds = new Set(outputs.map((o) => o.fd));
  if (fds.size !== outputs.length || [...fds].some((fd) => fd !== 1 && fd < 3)) {
    throw new RangeError(`pipeline outputs need distinct fds, 1 or from 3: ${outputs.map((o) => `${o.name}=${o.fd}`).join(", ")}`);
  }
  const stdio: ("ignore" | "pipe")[] = ["ignore", "ignore", "pipe"];
  for (const fd of fds) {
    while (stdio.length <= fd) stdio.push("ignore");
    stdio[fd] = "pipe";
  }
  return stdio;
}
