// The package as its users get it. `npm pack` runs on a copy of this checkout's sources without
// dist/, so `prepack` builds everything the tarball ships (and nothing stale from an old build can
// slip in). The tarball is installed into a scratch Vite app (test/helpers/scratch-vite-app.ts;
// its dependencies come from npm's cache where `npm ci` left them), which is typechecked with the
// repo's tsc against the package's .d.ts and built with the repo's vite. Then the built app plays in
// headless Chromium from a real server started with the package's own `canvascast` bin: play() into
// the app's canvas (in the player's worker) and a <canvas-cast> that only a side-effect import defines.

import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import type { Page } from "puppeteer";
import sirv from "sirv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser, type TestBrowser } from "../helpers/browser.js";
import { writeScratchViteApp } from "../helpers/scratch-vite-app.js";
import { startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";
import { until } from "../helpers/until.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");
const VITE = join(ROOT, "node_modules", "vite", "bin", "vite.js");
/** Not copied: dist must be built by prepack; the rest is large and no input of the build (node_modules is linked instead). */
const NOT_COPIED = new Set(["node_modules", "dist", ".git", "test/artifacts", "bench/results", ".scratch"]);
const STREAM = "cam0";

interface PackResult {
  readonly filename: string;
  readonly size: number;
  readonly unpackedSize: number;
  readonly files: readonly { readonly path: string; readonly size: number }[];
}

const running = new Set<ChildProcess>();

/** Kills `child`'s whole process group (npm pack runs tsc and vite under it). */
function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, "SIGKILL");
  } catch {
    // already gone
  }
}

/** Runs a command in its own process group; resolves with its stdout, rejects with all its output. */
function run(command: string, args: readonly string[], cwd: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    running.add(child);
    let stdout = "";
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (t: string) => {
      stdout += t;
      output += t;
    });
    child.stderr.setEncoding("utf8").on("data", (t: string) => (output += t));
    const timer = setTimeout(() => killGroup(child), timeoutMs);
    child.once("error", reject);
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      if (code === 0) resolve(stdout);
      else reject(new Error(`${command} ${args.join(" ")} (in ${cwd}) failed: ${signal ?? code}\n${output}`));
    });
  });
}

/** Waits until `probe`, run in the page, returns a positive frame count; the page's errors are in the failure. */
async function framesPainted(page: Page, probe: () => number, what: string): Promise<number> {
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(String(err)));
  page.on("console", (msg) => {
    if (msg.type() === "error" || msg.type() === "warn") errors.push(msg.text());
  });
  try {
    return await until(what, 20_000, async () => {
      const n = await page.evaluate(probe);
      return n > 0 ? n : undefined;
    });
  } catch (err) {
    throw new Error(`${(err as Error).message}; page said: ${errors.join(" | ") || "nothing"}`);
  }
}

describe("the npm package in a Vite app", () => {
  let temp = "";
  let app = "";
  let pack: PackResult;
  let browser: TestBrowser | undefined;
  let server: ServerProcess | undefined;
  let appServer: Server | undefined;
  let appOrigin = "";

  beforeAll(async () => {
    temp = mkdtempSync(join(tmpdir(), "canvascast-npm-"));
    const sources = join(temp, "sources");
    cpSync(ROOT, sources, { recursive: true, filter: (path) => !NOT_COPIED.has(relative(ROOT, path)) });
    symlinkSync(join(ROOT, "node_modules"), join(sources, "node_modules"));
    const launching = launchBrowser();
    const packed = JSON.parse(await run("npm", ["pack", "--json", "--pack-destination", temp], sources, 90_000)) as PackResult[];
    pack = packed[0]!;

    app = join(temp, "app");
    mkdirSync(app);
    writeScratchViteApp(app);
    await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts", "--no-package-lock", join(temp, pack.filename)], app, 60_000);
    browser = await launching;
  }, 150_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (appServer === undefined ? resolve() : appServer.close(() => resolve())));
    await stopAllServers();
    for (const child of running) killGroup(child);
    if (temp !== "") rmSync(temp, { recursive: true, force: true });
  });

  it("ships the player module and its types, the server and its bin, and no sources or tests", () => {
    const paths = pack.files.map((f) => f.path);
    for (const path of ["package.json", "README.md", "dist/web/canvascast.js", "dist/web/canvascast.d.ts", "dist/web/index.html", "dist/server/main.js", "scripts/canvascast.mjs"]) {
      expect(paths, path).toContain(path);
    }
    expect(paths.filter((p) => /\.(ts|tsx)$/.test(p) && !p.endsWith(".d.ts"))).toEqual([]);
    expect(paths.filter((p) => /^(test|bench|docs|server|shared|web)\//.test(p))).toEqual([]);
    expect(paths.filter((p) => /^dist\/(server|shared)\/.*\.map$/.test(p))).toEqual([]);

    const installed = JSON.parse(readFileSync(join(app, "node_modules", "canvascast", "package.json"), "utf8")) as {
      private?: boolean;
      exports: Record<string, { types: string; default: string }>;
    };
    expect(installed.private).toBeUndefined();
    const root = installed.exports["."]!;
    expect(existsSync(join(app, "node_modules", "canvascast", root.types))).toBe(true);
    expect(existsSync(join(app, "node_modules", "canvascast", root.default))).toBe(true);
    expect(existsSync(join(app, "node_modules", ".bin", "canvascast"))).toBe(true);
  });

  it("typechecks against the package's types (tsc, strict, the .d.ts included)", async () => {
    await run(process.execPath, [TSC, "-p", app], app, 60_000);
  });

  it("builds with vite, bundling the player and none of the server's dependencies", async () => {
    await run(process.execPath, [VITE, "build", "--logLevel", "warn"], app, 60_000);
    const assets = join(app, "dist", "assets");
    const scripts = readdirSync(assets).filter((f) => f.endsWith(".js"));
    const bundled = scripts.reduce((sum, f) => sum + statSync(join(assets, f)).size, 0);
    const player = statSync(join(app, "node_modules", "canvascast", "dist", "web", "canvascast.js")).size;
    // The app adds a few kB of its own; any server dependency (ws, pino, zod…) would add far more.
    expect(bundled).toBeLessThan(player + 16_384);
    expect(bundled).toBeGreaterThan(player / 2);
    expect(existsSync(join(app, "dist", "element.html"))).toBe(true);
  });

  it("plays with play() from the bundle, in the player's worker, from the package's own server", async () => {
    server = await startServerProcess(
      ["--source", "test", "--size", "320x240", "--fps", "30", "--keyframe-interval", "1"],
      20_000,
      join(app, "node_modules", ".bin", "canvascast"),
    );
    const serveApp = sirv(join(app, "dist"));
    appServer = createServer((req, res) => serveApp(req, res, () => void res.writeHead(404).end()));
    await new Promise<void>((resolve) => appServer!.listen(0, "127.0.0.1", resolve));
    appOrigin = `http://127.0.0.1:${(appServer.address() as AddressInfo).port}`;

    const page = await browser!.newPage();
    const ws = new URL(`/ws/${STREAM}`, server.wsBase).href;
    await page.goto(`${appOrigin}/index.html?ws=${encodeURIComponent(ws)}`);
    type Scratch = { player: { thread: string }; framesPainted(): number; elementIsTheClass: boolean };
    await framesPainted(page, () => (window as unknown as { scratch: Scratch }).scratch.framesPainted(), "play() to paint a frame");
    const seen = await page.evaluate(() => {
      const { player, elementIsTheClass } = (window as unknown as { scratch: Scratch }).scratch;
      return { thread: player.thread, elementIsTheClass };
    });
    expect(seen).toEqual({ thread: "worker", elementIsTheClass: true });
    await page.close();
  });

  it("plays a <canvas-cast> that only a side-effect import of the package defines", async () => {
    expect(server, "the previous test starts the server").toBeDefined();
    const page = await browser!.newPage();
    const ws = new URL(`/ws/${STREAM}`, server!.wsBase).href;
    await page.goto(`${appOrigin}/element.html?ws=${encodeURIComponent(ws)}`);
    await framesPainted(
      page,
      () => (document.querySelector("canvas-cast") as unknown as { player?: { stats(): { framesPainted: number } } }).player?.stats().framesPainted ?? 0,
      "<canvas-cast> to paint a frame",
    );
    await page.close();
  });
});
