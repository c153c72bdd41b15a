// Access in headless Chromium, every host name mapped to 127.0.0.1 (traffic stays on loopback):
// - a page on a foreign origin cannot open the stream (its sockets are refused during the
//   handshake), while the same page on an allowed origin plays it;
// - the dashboard opened as /?token= passes the token on its API requests and stream sockets;
//   without it, it says a token is needed;
// - with --tls-self-signed the dashboard plays through WebCodecs over https/wss from cam.test (a
//   secure context), while over plain http on cam.test there is no VideoDecoder and it plays
//   through MSE; listening beyond loopback with no token shows the warning banner.

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Page } from "puppeteer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StreamsResponse } from "../../shared/api.js";
import { launchBrowser, type TestBrowser } from "../helpers/browser.js";
import { startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";
import { until } from "../helpers/until.js";

const ARTIFACTS = fileURLToPath(new URL("../artifacts/", import.meta.url));
const TOKEN = "e2e-token-7c1a9e3b5d0f2468ace1";
const HOST = "cam.test";
const SMALL = ["--source", "test", "--size", "320x240", "--fps", "30", "--keyframe-interval", "1"];

/**
 * A page that loads /canvascast.js from the server, plays cam0 in <canvas-cast> (mode auto: MSE on
 * these insecure origins) and opens one plain WebSocket, recording whether it ever opened.
 */
function embeddingPage(server: string): string {
  const ws = `${server.replace(/^http/, "ws")}/ws/cam0?token=${TOKEN}`;
  return `<!doctype html>
<meta charset="utf-8">
<title>embeds canvascast</title>
<canvas-cast id="element" src="${ws}" style="width:320px;height:240px"></canvas-cast>
<script type="module">
  import "${server}/canvascast.js";
  window.raw = { opened: false, closed: null };
  const socket = new WebSocket("${ws}");
  socket.onopen = () => (window.raw.opened = true);
  socket.onclose = (e) => (window.raw.closed = e.code);
</script>`;
}

interface PageView {
  readonly raw: { opened: boolean; closed: number | null };
  readonly state: string | undefined;
  readonly mode: string | undefined;
  readonly framesPainted: number;
}

function viewOf(page: Page): Promise<PageView> {
  return page.evaluate(() => {
    const w = window as unknown as { raw?: PageView["raw"] };
    const el = document.getElementById("element") as unknown as {
      player?: { state: string; mode: string; stats(): { framesPainted: number } };
    } | null;
    return { raw: w.raw ?? { opened: false, closed: null }, state: el?.player?.state, mode: el?.player?.mode, framesPainted: el?.player?.stats().framesPainted ?? 0 };
  });
}

async function tile(page: Page): Promise<Record<string, string>> {
  return page.$eval('.tile[data-stream="cam0"]', (el) => ({ ...(el as HTMLElement).dataset }) as Record<string, string>);
}

async function viewers(server: ServerProcess, token?: string): Promise<number> {
  const response = await fetch(`${server.url}api/streams`, { headers: token === undefined ? {} : { Authorization: `Bearer ${token}` } });
  return ((await response.json()) as StreamsResponse).streams[0]!.viewers;
}

describe("who may watch, in a browser", () => {
  let guarded: ServerProcess; // http, a token, one more allowed origin
  let tlsServer: ServerProcess; // https, self-signed, all interfaces, no token
  let pageServer: Server | undefined;
  let pagePort = 0;
  let browser: TestBrowser | undefined;
  const tlsDir = mkdtempSync(join(tmpdir(), "canvascast-e2e-tls-"));

  beforeAll(async () => {
    const httpServer = createServer((req, res) => {
      if (req.url === "/") res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(embeddingPage(guarded.url.replace(/\/$/, "")));
      else res.writeHead(req.url === "/favicon.ico" ? 204 : 404).end();
    });
    pageServer = httpServer;
    await new Promise<void>((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
    pagePort = (httpServer.address() as AddressInfo).port;
    [guarded, tlsServer] = await Promise.all([
      startServerProcess([...SMALL, "--token", TOKEN, "--allow-origin", `http://allowed.test:${pagePort}`]),
      startServerProcess([...SMALL, "--host", "0.0.0.0", "--tls-self-signed", "--tls-dir", tlsDir]),
    ]);
    browser = await launchBrowser([
      `--host-resolver-rules=MAP ${HOST} 127.0.0.1, MAP foreign.test 127.0.0.1, MAP allowed.test 127.0.0.1`,
      "--ignore-certificate-errors",
    ]);
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (pageServer === undefined ? resolve() : pageServer.close(() => resolve())));
    await stopAllServers();
    rmSync(tlsDir, { recursive: true, force: true });
  });

  it("a page on a foreign origin cannot open the stream, even with the token; the same page on an allowed origin plays it", async () => {
    const foreign = await browser!.newPage();
    await foreign.goto(`http://foreign.test:${pagePort}/`, { waitUntil: "load" });
    const allowed = await browser!.newPage();
    await allowed.goto(`http://allowed.test:${pagePort}/`, { waitUntil: "load" });

    const playing = await until("the allowed page playing", 20_000, async () => {
      const v = await viewOf(allowed);
      return v.state === "live" && v.framesPainted > 5 && v.raw.opened ? v : undefined;
    });
    expect(playing.mode).toBe("mse"); // not a secure context
    const refused = await until("the foreign page's plain socket refused", 10_000, async () => {
      const v = await viewOf(foreign);
      return v.raw.closed !== null ? v : undefined;
    });
    expect(refused.raw).toEqual({ opened: false, closed: 1006 });
    // Its player keeps trying and never gets a picture: the server refused every handshake.
    expect(refused.state).not.toBe("live");
    expect(refused.framesPainted).toBe(0);
    const refusals = guarded.output().split("\n").filter((line) => line.includes("request refused"));
    expect(refusals.some((line) => line.includes("CC_ERR_FORBIDDEN_ORIGIN") && line.includes(`"origin":"http://foreign.test:${pagePort}"`))).toBe(true);
    // Only the allowed page's two sockets reached the stream.
    expect(await viewers(guarded, TOKEN)).toBe(2);
    await Promise.all([foreign.close(), allowed.close()]);
  });

  it("the dashboard opened as /?token= plays (MSE over plain http on cam.test, no VideoDecoder); without the token it says one is needed", async () => {
    const origin = `http://${HOST}:${new URL(guarded.url).port}`;
    const page = await browser!.newPage();
    await page.goto(`${origin}/?token=${TOKEN}`, { waitUntil: "load" });
    expect(await page.evaluate(() => [window.isSecureContext, typeof VideoDecoder])).toEqual([false, "undefined"]);
    await page.waitForSelector('.tile[data-stream="cam0"][data-state="live"]', { timeout: 20_000 });
    await page.waitForFunction(() => Number(document.querySelector<HTMLElement>(".tile")?.dataset.framesPainted) > 5, { timeout: 10_000 });
    expect((await tile(page)).mode).toBe("mse");
    expect(await page.$eval("#server-warning", (el) => (el as HTMLElement).hidden)).toBe(true);
    await page.close();

    const without = await browser!.newPage();
    await without.goto(`${origin}/`, { waitUntil: "load" });
    await without.waitForSelector("#notice:not([hidden])", { timeout: 10_000 });
    expect(await without.$$(".tile")).toHaveLength(0);
    await without.close();
  });

  it("with --tls-self-signed the dashboard plays through WebCodecs over https/wss on cam.test, with the warning banner", async () => {
    const url = `https://${HOST}:${new URL(tlsServer.url).port}/`;
    const page = await browser!.newPage();
    await page.goto(url, { waitUntil: "load" });
    expect(await page.evaluate(() => [window.isSecureContext, typeof VideoDecoder])).toEqual([true, "function"]);
    await page.waitForSelector('.tile[data-stream="cam0"][data-state="live"]', { timeout: 20_000 });
    await page.waitForFunction(() => Number(document.querySelector<HTMLElement>(".tile")?.dataset.framesPainted) > 5, { timeout: 10_000 });
    expect((await tile(page)).mode).toBe("webcodecs");
    const banner = await page.$eval("#server-warning", (el) => ({ hidden: (el as HTMLElement).hidden, code: (el as HTMLElement).dataset.code }));
    expect(banner).toEqual({ hidden: false, code: "CC_WARN_OPEN_TO_NETWORK" });
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}dashboard-open-to-network.png` });
    await page.close();
  });
});
