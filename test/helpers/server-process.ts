// Runs the real server CLI (the build `npm run serve` runs) as a child process on a free port.

import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../../dist/server/main.js", import.meta.url));

export interface ServerProcess {
  readonly url: string;
  readonly wsBase: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Everything the server wrote to stdout and stderr so far. */
  output(): string;
  /** What the server wrote to stderr so far: its log, JSON lines (stderr is a pipe here, not a terminal). */
  stderr(): string;
  /** Resolves when the process exits, however it ends. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends a signal and waits for the exit; SIGKILL after `graceMs`. Safe to call twice. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ServerProcess>();
let exitHook = false;

/** Kills every server started by this test file (for afterAll/afterEach). */
export async function stopAllServers(): Promise<void> {
  await Promise.all([...running].map((s) => s.stop("SIGKILL")));
}

/** `main`: another build's server entry (the bench compares builds); this checkout's by default. `env`: the server's environment. */
export async function startServerProcess(
  args: readonly string[] = [],
  timeoutMs = 20_000,
  main = MAIN,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ServerProcess> {
  if (!exitHook) {
    // A test file or bench that dies half-way leaves no server behind (their gst children end with them).
    exitHook = true;
    process.on("exit", () => {
      for (const s of running) s.child.kill("SIGKILL");
    });
  }
  const child = spawn(process.execPath, [main, "--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"], env });
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (t: string) => (out += t));
  child.stderr.setEncoding("utf8").on("data", (t: string) => {
    out += t;
    err += t;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  let stopping: ReturnType<ServerProcess["stop"]> | null = null;
  const handle: ServerProcess = {
    url: "",
    wsBase: "",
    pid: child.pid!,
    child,
    output: () => out,
    stderr: () => err,
    exited,
    stop(signal = "SIGTERM", graceMs = 5000) {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
        const result = await exited;
        clearTimeout(timer);
        running.delete(handle);
        return result;
      })();
      return stopping;
    },
  };
  running.add(handle);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const onData = (): void => {
      const m = /canvascast: serving on (https?:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout.on("data", onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${signal ?? code}) before serving:\n${out}`));
    });
  }).catch(async (err: unknown) => {
    await handle.stop("SIGKILL");
    throw err;
  });
  const wsBase = url.replace(/^http/, "ws");
  return Object.assign(handle, { url, wsBase });
}

/** Pids of the direct children of `pid` whose command name is `comm`. */
export function childPids(pid: number, comm: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // pid (comm) state ppid …; comm may contain spaces, so split after the last ')'.
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid && name === comm.slice(0, 15)) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

/** True while a process exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

