// One gst-launch-1.0 child process: spawns it, parses its stdout (GDP) into VP8 frames, logs its
// stderr, and stops it (SIGINT for a clean EOS, SIGKILL after a grace period).

import { spawn, type ChildProcess } from "node:child_process";
import { Emitter } from "../../shared/emitter.js";
import { wallClockMs, type Millis } from "../../shared/units.js";
import { errorFields, type Logger } from "../log.js";
import type { VideoCaps } from "./caps.js";
import { FrameAssembler, type EncodedFrame, type FrameWarningCode } from "./frames.js";
import { GdpError, GdpParser, type GdpPacket } from "./gdp.js";

export const GST_LAUNCH = "gst-launch-1.0";

export interface GstExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The pipeline's own error text (stderr lines) or our reason for ending it; null on a clean end. */
  readonly error: string | null;
}

export interface GstProcessEvents {
  caps: VideoCaps;
  frame: EncodedFrame;
  warning: { readonly code: FrameWarningCode; readonly message: string };
  exit: GstExit;
}

export interface GstProcessOptions {
  readonly log: Logger;
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

export class GstProcess {
  /** A listener that throws is logged (with its stack), and the other listeners still run. */
  readonly events = new Emitter<GstProcessEvents>((err, event) =>
    this.log.error("pipeline event listener threw", { event, pipelinePid: this.child.pid, ...errorFields(err) }),
  );
  private readonly child: ChildProcess;
  private readonly parser = new GdpParser();
  private readonly assembler = new FrameAssembler();
  private readonly log: Logger;
  private readonly stopGraceMs: number;
  private readonly stderrTail: string[] = [];
  private stderrPartial = "";
  /** Set when we end the process ourselves because its output was unusable. */
  private fatal: string | null = null;
  private closing: Promise<GstExit> | null = null;
  private exited: GstExit | null = null;
  private readonly exitPromise: Promise<GstExit>;

  constructor(args: readonly string[], options: GstProcessOptions) {
    installExitHook();
    this.log = options.log;
    this.stopGraceMs = options.stopGraceMs ?? 2000;
    this.child = spawn(options.program ?? GST_LAUNCH, args, { stdio: ["ignore", "pipe", "pipe"] });
    live.add(this.child);
    this.log.debug("gst started", { pipelinePid: this.child.pid, args: args.join(" ") });

    this.exitPromise = new Promise<GstExit>((resolve) => {
      // 'close' fires after stdout and stderr have ended, so every frame has been delivered.
      this.child.once("close", (code, signal) => {
        live.delete(this.child);
        this.flushStderr();
        const stderrError = this.stderrTail.filter((l) => /ERROR|WARNING: erroneous/.test(l)).join("\n");
        const error =
          this.fatal ??
          (code === 0 ? null : stderrError || this.stderrTail.slice(-3).join("\n") || `gst-launch-1.0 exited (${signal ?? code})`);
        this.exited = { code, signal, error };
        resolve(this.exited);
        this.events.emit("exit", this.exited);
      });
    });
    this.child.once("error", (err) => {
      // Spawn failure (e.g. gst-launch-1.0 not installed): 'close' still follows.
      this.fatal = `cannot run ${options.program ?? GST_LAUNCH}: ${err.message}`;
    });
    this.child.stdout!.on("data", (chunk: Buffer) => this.onStdout(chunk));
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

  private onStdout(chunk: Buffer): void {
    if (this.fatal) return;
    const receivedAt = wallClockMs();
    let packets: readonly GdpPacket[];
    try {
      packets = this.parser.push(chunk);
    } catch (err) {
      // A corrupt stream cannot be resynchronised: deliver what came before, then end this
      // process; its owner decides what next.
      if (err instanceof GdpError) this.deliver(err.completed, receivedAt);
      this.fatal = err instanceof GdpError ? `${err.code}: ${err.message}` : `pipeline output: ${String(err)}`;
      this.log.error("unreadable pipeline output; stopping the pipeline", { error: this.fatal });
      this.child.kill("SIGKILL");
      return;
    }
    this.deliver(packets, receivedAt);
  }

  private deliver(packets: readonly GdpPacket[], receivedAt: Millis): void {
    for (const packet of packets) {
      for (const event of this.assembler.accept(packet, receivedAt)) {
        switch (event.type) {
          case "caps":
            this.events.emit("caps", event.caps);
            break;
          case "frame":
            this.events.emit("frame", event.frame);
            break;
          case "warning":
            this.log.warn(event.message, { code: event.code });
            this.events.emit("warning", { code: event.code, message: event.message });
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
    const trimmed = line.trimEnd();
    if (!trimmed) return;
    this.log.warn(`gst: ${trimmed}`, { pipelinePid: this.child.pid });
    this.stderrTail.push(trimmed);
    if (this.stderrTail.length > STDERR_TAIL_LINES) this.stderrTail.shift();
  }
}
