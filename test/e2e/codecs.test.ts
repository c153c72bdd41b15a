// Every codec plays in Chromium through /ws/ (WebCodecs) and through MSE (WebM on /webm/, MP4 on
// /mp4/): one page (canvascast.js embedded), one stream per codec (a config file gives each its
// codec), each player configured from its hello's codec string, live, painting pictures that
// change. And the `auto` player in a browser whose VideoDecoder lacks H.264 (emulated) says
// CC_ERR_CODEC_UNSUPPORTED and plays it through MSE; where MSE lacks it too, it stays unsupported.
// Real server and encoders, real Chromium.

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

/**
 * A page that plays each stream into a canvas of its own (`play`, keyed by the stream's name) and
 * each through MSE (`<canvas-cast mode="mse">`, keyed `<name>/mse`), and records each player's
 * hello codec and error codes. `mode: "auto"`: only the `<canvas-cast mode="auto">` elements.
 */
function playerPage(names: readonly string[], server: ServerProcess, mode: "both" | "auto" = "both"): string {
  const wsBase = server.wsBase;
  // Every player in view (out of view it pauses): a grid of 160×120 pictures.
  return `<!doctype html><meta charset="utf-8"><title>codecs</title>
  <style>body{margin:0;display:grid;grid-template-columns:repeat(4,160px)} canvas,canvas-cast{width:160px;height:120px}</style>
  <script type="module">
    import { play } from "${new URL("/canvascast.js", server.url).href}";
    const hellos = {}, errors = {}, messages = [], players = {};
    const watch = (key, player) => {
      player.on("hello", (hello) => (hellos[key] = hello.codec));
      player.on("error", (err) => { (errors[key] ??= []).push(err.code); messages.push(err.code + " " + err.message + (err.fatal ? " (fatal)" : "")); });
      players[key] = player;
    };
    for (const name of ${JSON.stringify(names)}) {
      if (${JSON.stringify(mode)} === "both") {
        const canvas = document.createElement("canvas");
        document.body.append(canvas);
        watch(name, play(canvas, ${JSON.stringify(wsBase)} + "ws/" + name));
      }
      const element = document.createElement("canvas-cast");
      element.addEventListener("cc-player", (event) => watch(${JSON.stringify(mode)} === "both" ? name + "/mse" : name, event.detail));
      element.setAttribute("quality", "full"); // these streams have no tile encoding
      element.setAttribute("mode", ${JSON.stringify(mode === "both" ? "mse" : "auto")});
      element.setAttribute("src", ${JSON.stringify(wsBase)} + "ws/" + name);
      document.body.append(element);
    }
    Object.assign(window, { hellos, errors, messages, players });
  </script>`;
}

/**
 * Runs before the page's scripts: a browser whose VideoDecoder cannot decode H.264 (and, with
 * `noMse`, whose MSE cannot play it either). The player runs on the main thread (no
 * OffscreenCanvas transfer), where the override applies.
 */
function withoutH264(noMse: boolean): void {
  const decoderCheck = VideoDecoder.isConfigSupported.bind(VideoDecoder);
  VideoDecoder.isConfigSupported = (config: VideoDecoderConfig) =>
    config.codec.startsWith("avc1") ? Promise.resolve({ supported: false, config }) : decoderCheck(config);
  Object.defineProperty(HTMLCanvasElement.prototype, "transferControlToOffscreen", { value: undefined });
  if (noMse) {
    const typeCheck = MediaSource.isTypeSupported.bind(MediaSource);
    MediaSource.isTypeSupported = (type: string) => !type.includes("avc1") && typeCheck(type);
  }
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
      else if (req.url === "/auto") res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(playerPage(["h264"], server, "auto"));
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

  it("each stream plays through WebCodecs and through MSE: hello names its codec, the player is live, the picture changes", async () => {
    const page = await browser!.newPage();
    const problems: string[] = [];
    page.on("pageerror", (err) => problems.push(String(err)));
    await page.goto(pageOrigin, { waitUntil: "load" });
    await page.waitForFunction(() => (window as unknown as { players?: object }).players !== undefined, { timeout: 10_000 });
    const keys = CODEC_NAMES.flatMap((c) => [c, `${c}/mse`]);
    let seen: Record<string, View> = {};
    const first = await until("every player live and painting", 30_000, async () => {
      const v = (seen = await page.evaluate(views));
      return keys.every((k) => v[k]?.state === "live" && v[k].framesPainted > 10 && v[k].checksum !== null) ? v : undefined;
    }).catch(async (err: unknown) => {
      const messages = await page.evaluate(() => (window as unknown as { messages: string[] }).messages);
      throw new Error(`${String(err)}: ${JSON.stringify(seen)} ${JSON.stringify(messages)}`);
    });
    await sleep(500);
    const later = await page.evaluate(views);
    for (const key of keys) {
      const codec = key.split("/")[0];
      expect(codecOfString(later[key]!.codec), `${key}: hello's codec ${later[key]!.codec}`).toBe(codec);
      expect(later[key]!.errors, `${key}: player errors`).toEqual([]);
      expect(later[key]!.framesPainted).toBeGreaterThan(first[key]!.framesPainted);
      expect(later[key]!.checksum, `${key}: the picture changed`).not.toBe(first[key]!.checksum);
    }
    // The MSE players are on their codec's path.
    const urls = await page.evaluate(() => Object.fromEntries(Object.entries((window as unknown as { players: Record<string, { url: string }> }).players).map(([k, p]) => [k, p.url])));
    for (const codec of CODEC_NAMES) expect(new URL(urls[`${codec}/mse`]!).pathname).toBe(`/${codec === "h264" ? "mp4" : "webm"}/${codec}`);
    expect(problems).toEqual([]);
    await page.close();
  });

  it("auto where VideoDecoder lacks H.264: CC_ERR_CODEC_UNSUPPORTED naming it, then MSE plays it", async () => {
    const page = await browser!.newPage();
    const problems: string[] = [];
    page.on("pageerror", (err) => problems.push(String(err)));
    await page.evaluateOnNewDocument(withoutH264, false);
    await page.goto(pageOrigin + "auto", { waitUntil: "load" });
    const first = await until("the auto player live through MSE", 30_000, async () => {
      const v = await page.evaluate(views);
      return v.h264?.state === "live" && v.h264.framesPainted > 10 && v.h264.checksum !== null ? v.h264 : undefined;
    });
    await sleep(500);
    const later = (await page.evaluate(views)).h264!;
    expect(later.checksum, "the picture changed").not.toBe(first.checksum);
    expect(later.errors).toEqual(["CC_ERR_CODEC_UNSUPPORTED"]);
    const messages = await page.evaluate(() => (window as unknown as { messages: string[] }).messages);
    expect(messages[0]).toMatch(/avc1\.[0-9A-F]{6}.*through MSE/);
    expect(messages[0]).not.toContain("(fatal)");
    const info = await page.evaluate(() => {
      const player = (window as unknown as { players: Record<string, { mode: string; url: string }> }).players.h264!;
      return { mode: player.mode, path: new URL(player.url).pathname, video: document.querySelector("canvas-cast")!.shadowRoot!.querySelectorAll("video").length };
    });
    expect(info).toEqual({ mode: "mse", path: "/mp4/h264", video: 1 });
    expect(problems).toEqual([]);
    await page.close();
  });

  it("auto where neither VideoDecoder nor MSE plays H.264: unsupported with CC_ERR_CODEC_UNSUPPORTED, no crash", async () => {
    const page = await browser!.newPage();
    const problems: string[] = [];
    page.on("pageerror", (err) => problems.push(String(err)));
    await page.evaluateOnNewDocument(withoutH264, true);
    await page.goto(pageOrigin + "auto", { waitUntil: "load" });
    const view = await until("the auto player unsupported", 20_000, async () => {
      const v = await page.evaluate(views);
      return v.h264?.state === "unsupported" ? v.h264 : undefined;
    });
    expect(view.errors).toEqual(["CC_ERR_CODEC_UNSUPPORTED"]);
    const state = await page.evaluate(() => {
      const player = (window as unknown as { players: Record<string, { reason: string; mode: string }> }).players.h264!;
      return { reason: player.reason, mode: player.mode, overlay: document.querySelector("canvas-cast")!.shadowRoot!.querySelector(".state")!.textContent };
    });
    expect(state.mode).toBe("webcodecs");
    expect(state.reason).toMatch(/CC_ERR_CODEC_UNSUPPORTED.*avc1\./);
    expect(state.overlay).toContain("CC_ERR_CODEC_UNSUPPORTED");
    expect(problems).toEqual([]);
    await page.close();
  });
});
