// Every codec plays in Chromium through /ws/ (WebCodecs): one page (canvascast.js embedded), one
// stream per codec (a config file gives each its codec), each player configured from its hello's codec string, live, painting
// pictures that change. Real server and encoders, real Chromium.

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CODEC_NAMES, codecOfString } from "../../shared/codec.js";
import { launchBrowser, type TestBrowser } from "../helpers/browser.js";
import { startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";
import { sleep, until } from "../helpers/until.js";

interface View {
  readonly codec: string;
  readonly state: string;
  readonly framesPainted: number;
  readonly errors: readonly string[];
  /** A checksum of the snapshot's pixels; null while there is none. */
  readonly checksum: number | null;
}

/** Runs in the page: each player's hello codec, state, painted frames, errors and a snapshot checksum. */
async function views(): Promise<Record<string, View>> {
  type P = { state: string; stats(): { framesPainted: number }; snapshot(): Promise<Blob> };
  const w = window as unknown as { players: Record<string, P>; hellos: Record<string, string>; errors: Record<string, string[]> };
  const out: Record<string, View> = {};
  for (const [name, player] of Object.entries(w.players)) {
    let checksum: number | null = null;
    try {
      const bitmap = await createImageBitmap(await player.snapshot());
      const scratch = new OffscreenCanvas(bitmap.width, bitmap.height);
      const ctx = scratch.getContext("2d")!;
      ctx.drawImage(bitmap, 0, 0);
      const { data } = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
      checksum = 0;
      for (let i = 0; i < data.length; i += 4) checksum = (checksum * 31 + data[i]! * 3 + data[i + 1]! * 5 + data[i + 2]! * 7) >>> 0;
    } catch {
      // no picture yet
    }
    out[name] = { codec: w.hellos[name] ?? "", state: player.state, framesPainted: player.stats().framesPainted, errors: w.errors[name] ?? [], checksum };
  }
  return out;
}

/** A page that plays each stream into a canvas of its own and records each player's hello codec and error codes. */
function playerPage(names: readonly string[], server: ServerProcess): string {
  const wsBase = server.wsBase;
  return `<!doctype html><meta charset="utf-8"><title>codecs</title><script type="module">
    import { play } from "${new URL("/canvascast.js", server.url).href}";
    const hellos = {}, errors = {}, players = {};
    for (const name of ${JSON.stringify(names)}) {
      const canvas = document.createElement("canvas");
      document.body.append(canvas);
      const player = play(canvas, ${JSON.stringify(wsBase)} + "ws/" + name);
      player.on("hello", (hello) => (hellos[name] = hello.codec));
      player.on("error", (err) => (errors[name] ??= []).push(err.code));
      players[name] = player;
    }
    Object.assign(window, { hellos, errors, players });
  </script>`;
}

describe("every codec in Chromium through /ws/", () => {
  let server: ServerProcess;
  let browser: TestBrowser | undefined;
  /** Another loopback origin (a secure context the server lets open stream sockets) serves the page. */
  let pageServer: Server | undefined;
  let pageOrigin = "";
  const dir = mkdtempSync(join(tmpdir(), "canvascast-codecs-"));

  beforeAll(async () => {
    const config = join(dir, "codecs.json");
    const streams = CODEC_NAMES.map((codec) => ({ name: codec, source: "test:ball", codec }));
    writeFileSync(config, JSON.stringify({ defaults: { size: "320x240", fps: 30, bitrate: 400, keyframeInterval: 1 }, streams }));
    server = await startServerProcess(["--config", config]);
    const httpServer = createServer((req, res) => {
      if (req.url === "/") res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(playerPage(CODEC_NAMES, server));
      else res.writeHead(req.url === "/favicon.ico" ? 204 : 404).end();
    });
    pageServer = httpServer;
    await new Promise<void>((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
    pageOrigin = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}/`;
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (pageServer === undefined ? resolve() : pageServer.close(() => resolve())));
    await stopAllServers();
    rmSync(dir, { recursive: true, force: true });
  });

  it("each stream plays: hello names its codec, the player is live, the picture changes", async () => {
    const page = await browser!.newPage();
    const problems: string[] = [];
    page.on("pageerror", (err) => problems.push(String(err)));
    await page.goto(pageOrigin, { waitUntil: "load" });
    await page.waitForFunction(() => (window as unknown as { players?: object }).players !== undefined, { timeout: 10_000 });
    const first = await until("every player live and painting", 30_000, async () => {
      const v = await page.evaluate(views);
      return CODEC_NAMES.every((c) => v[c]?.state === "live" && v[c].framesPainted > 10 && v[c].checksum !== null) ? v : undefined;
    });
    await sleep(500);
    const later = await page.evaluate(views);
    for (const codec of CODEC_NAMES) {
      expect(codecOfString(later[codec]!.codec), `${codec}: hello's codec ${later[codec]!.codec}`).toBe(codec);
      expect(later[codec]!.errors, `${codec}: player errors`).toEqual([]);
      expect(later[codec]!.framesPainted).toBeGreaterThan(first[codec]!.framesPainted);
      expect(later[codec]!.checksum, `${codec}: the picture changed`).not.toBe(first[codec]!.checksum);
    }
    expect(problems).toEqual([]);
    await page.close();
  });
});
