// The dashboard in headless Chromium keeps its picture live through what a deployment throws at it:
// a corrupt frame (decoder error → resync), a hidden tab (pause → resume), a pipeline killed with
// SIGKILL (restarting → live), a server restart (reconnect) and a full stream (refused with 503 until
// a viewer leaves). Real server, real gst, real Chromium.
//
// Hidden page: a real tab switch. Opening a second page and `bringToFront()` on it makes the first
// page's `document.visibilityState` "hidden" (with a `visibilitychange` event) in headless Chromium;
// `bringToFront()` on the first page makes it visible again. Nothing in the page is overridden.

import type { Page } from "puppeteer";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { StreamInfo, StreamsResponse, ViewerInfo } from "../../shared/api.js";
import { launchBrowser, type TestBrowser } from "../helpers/browser.js";
import { childPids, isAlive, startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";
import { recordTileStates } from "../helpers/tile-states.js";
import { sleep, until } from "../helpers/until.js";
import { connectViewer } from "../helpers/ws-viewer.js";

const STREAM = "cam0";
const SERVER_ARGS = ["--source", "test", "--size", "320x240", "--fps", "30", "--keyframe-interval", "1"] as const;
const TILE = `.tile[data-stream="${STREAM}"]`;

/** What the tests read and set in the page, beyond the dashboard's own `window.canvascast`. */
interface PageHooks {
  /** States the tile has shown, in order, without repeats (recorded by a MutationObserver). */
  __ccStates?: string[];
  /** Set by a test; still there afterwards only if the page was not reloaded. */
  __ccMarker?: string;
  /** Delta chunks still to garble before they reach the real VideoDecoder.decode. */
  __ccCorrupt?: number;
  __ccCorrupted?: number;
  /** Calls of VideoDecoder.prototype.close. */
  __ccDecoderCloses?: number;
}

interface PlayerFigures {
  readonly state: string;
  readonly framesReceived: number;
  readonly framesPainted: number;
  readonly decoderErrors: number;
  readonly resyncs: number;
  readonly reconnects: number;
}

async function streamInfo(server: ServerProcess): Promise<StreamInfo> {
  const response = await fetch(new URL("/api/streams", server.url));
  expect(response.ok).toBe(true);
  const body = (await response.json()) as StreamsResponse;
  const info = body.streams.find((s) => s.name === STREAM);
  if (info === undefined) throw new Error(`no stream ${STREAM} in /api/streams`);
  return info;
}

/** The one viewer connected, once there is exactly one. */
async function onlyViewer(server: ServerProcess): Promise<ViewerInfo> {
  return until("exactly one viewer in /api/streams", 10_000, async () => {
    const { clients } = await streamInfo(server);
    return clients.length === 1 ? clients[0] : undefined;
  });
}

/** The player's own figures, read from the page (works while hidden, when the tile's attributes refresh slowly). */
async function figures(page: Page): Promise<PlayerFigures> {
  return page.evaluate((stream) => {
    const w = window as unknown as {
      canvascast: { players: Map<string, { state: string; stats(): Omit<PlayerFigures, "state"> }> };
    };
    const player = w.canvascast.players.get(stream);
    if (player === undefined) throw new Error("no player");
    const s = player.stats();
    return {
      state: player.state,
      framesReceived: s.framesReceived,
      framesPainted: s.framesPainted,
      decoderErrors: s.decoderErrors,
      resyncs: s.resyncs,
      reconnects: s.reconnects,
    };
  }, STREAM);
}

/** How many polls in a row (100 ms apart) must see nothing move before a pause counts as established. */
const STILL_POLLS = 5;

/**
 * Waits until the server reports the viewer paused and nothing moves any more: the server's framesSent
 * and the player's framesReceived and framesPainted the same over STILL_POLLS polls in a row (at 30 fps
 * a playing viewer would gain a dozen frames meanwhile). Frames in flight when the pause was read have
 * arrived by then. Returns the figures at that point.
 */
async function pausedAndStill(server: ServerProcess, page: Page): Promise<{ player: PlayerFigures; viewer: ViewerInfo }> {
  let last = "";
  let still = 0;
  return until(`the viewer paused in /api/streams, its figures unchanged over ${STILL_POLLS} polls`, 15_000, async () => {
    const viewer = await onlyViewer(server);
    const player = await figures(page);
    const now = JSON.stringify([viewer.framesSent, player.framesReceived, player.framesPainted]);
    still = viewer.paused && now === last ? still + 1 : 0;
    last = now;
    return still >= STILL_POLLS ? { player, viewer } : undefined;
  });
}

/**
 * Waits until the tile's data attributes, as `d`, satisfy the expression `cond`. Polls on a timer:
 * rAF polling stops in hidden pages.
 */
async function waitForTile(page: Page, cond: string, timeout = 20_000): Promise<void> {
  const expression = `(() => { const d = document.querySelector(${JSON.stringify(TILE)})?.dataset; return d !== undefined && (${cond}); })()`;
  await page.waitForFunction(expression, { polling: 100, timeout });
}

/** A fingerprint of the picture on the tile's canvas. Runs in the page. */
function canvasChecksum(selector: string): number {
  const canvas = document.querySelector<HTMLCanvasElement>(`${selector} canvas`);
  if (canvas === null) throw new Error("no canvas");
  const copy = document.createElement("canvas");
  copy.width = canvas.width;
  copy.height = canvas.height;
  const ctx = copy.getContext("2d");
  if (ctx === null) throw new Error("no 2d context");
  ctx.drawImage(canvas, 0, 0);
  const { data } = ctx.getImageData(0, 0, copy.width, copy.height);
  let sum = 0;
  for (let i = 0; i < data.length; i += 4) sum = (sum * 31 + data[i]! * 3 + data[i + 1]! * 5 + data[i + 2]! * 7) >>> 0;
  return sum;
}

/** Two samples a moment apart differ, and frames painted grew meanwhile: the picture is live. */
async function expectLivePicture(page: Page): Promise<void> {
  const painted = (await figures(page)).framesPainted;
  const first = await page.evaluate(canvasChecksum, TILE);
  await waitForTile(page, `Number(d.framesPainted) > ${painted + 10} && d.state === "live"`);
  const second = await page.evaluate(canvasChecksum, TILE);
  expect(second).not.toBe(first);
}

describe("the player stays live", () => {
  let server: ServerProcess;
  let browser: TestBrowser;
  const pages: Page[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    server = await startServerProcess([...SERVER_ARGS]);
    browser = await launchBrowser();
  });
  afterEach(async () => {
    await Promise.all(pages.splice(0).map((p) => p.close().catch(() => undefined)));
  });
  afterAll(async () => {
    await browser?.close();
    await stopAllServers();
  });

  async function newPage(): Promise<Page> {
    const page = await browser.newPage();
    pages.push(page);
    // Uncaught exceptions only: failed sockets and fetches while a server is down are logged as console errors.
    page.on("pageerror", (err) => pageErrors.push(String(err)));
    return page;
  }

  /** Opens the dashboard, waits for a live picture, and starts recording the tile's states. */
  async function openDashboard(setup?: (page: Page) => Promise<void>): Promise<Page> {
    const page = await newPage();
    await setup?.(page);
    await page.goto(server.url, { waitUntil: "load" });
    await waitForTile(page, `d.state === "live" && Number(d.framesPainted) > 10`);
    await recordTileStates(page, TILE);
    return page;
  }

  const statesSeen = (page: Page): Promise<string[]> =>
    page.evaluate(() => (window as unknown as PageHooks).__ccStates ?? []);
  const marker = (page: Page): Promise<string | undefined> =>
    page.evaluate(() => (window as unknown as PageHooks).__ccMarker);

  it("recovers from a decoder error by resyncing from the server's cached GOP", async () => {
    const page = await openDashboard((p) =>
      // Wrap the real decode: a test flag garbles the next delta chunk so the VideoDecoder errors.
      p.evaluateOnNewDocument(() => {
        const hooks = window as unknown as PageHooks;
        hooks.__ccCorrupt = 0;
        hooks.__ccCorrupted = 0;
        // eslint-disable-next-line @typescript-eslint/unbound-method -- always called with .call(this)
        const decode = VideoDecoder.prototype.decode;
        VideoDecoder.prototype.decode = function (this: VideoDecoder, chunk: EncodedVideoChunk): void {
          if ((hooks.__ccCorrupt ?? 0) > 0 && chunk.type === "delta") {
            hooks.__ccCorrupt = (hooks.__ccCorrupt ?? 1) - 1;
            hooks.__ccCorrupted = (hooks.__ccCorrupted ?? 0) + 1;
            const garbage = new Uint8Array(Math.max(chunk.byteLength, 16)).fill(0xff);
            decode.call(this, new EncodedVideoChunk({ type: "delta", timestamp: chunk.timestamp, data: garbage }));
            return;
          }
          decode.call(this, chunk);
        };
      }).then(() => undefined),
    );
    const before = await figures(page);
    expect(before.decoderErrors).toBe(0);
    expect(before.resyncs).toBe(0);

    await page.evaluate(() => {
      (window as unknown as PageHooks).__ccCorrupt = 1;
    });
    await waitForTile(page, `Number(d.decoderErrors) >= 1 && Number(d.resyncs) >= 1`);
    expect(await page.evaluate(() => (window as unknown as PageHooks).__ccCorrupted)).toBe(1);
    const afterError = await figures(page);
    await waitForTile(page, `d.state === "live" && Number(d.framesPainted) > ${afterError.framesPainted + 30}`);
    await expectLivePicture(page);
    expect(await marker(page)).toBe("not reloaded");
    // One corrupt chunk, one error: the resync's replay decoded cleanly.
    expect((await figures(page)).decoderErrors).toBe(1);
    expect(pageErrors).toEqual([]);
  });

  it("pauses a hidden page (the server sends nothing) and is live again at once when visible", async () => {
    const page = await openDashboard((p) =>
      p
        .evaluateOnNewDocument(() => {
          const hooks = window as unknown as PageHooks;
          hooks.__ccDecoderCloses = 0;
          // eslint-disable-next-line @typescript-eslint/unbound-method -- always called with .call(this)
          const close = VideoDecoder.prototype.close;
          VideoDecoder.prototype.close = function (this: VideoDecoder): void {
            hooks.__ccDecoderCloses = (hooks.__ccDecoderCloses ?? 0) + 1;
            close.call(this);
          };
        })
        .then(() => undefined),
    );
    const decoderCloses = (): Promise<number> => page.evaluate(() => (window as unknown as PageHooks).__ccDecoderCloses ?? 0);
    expect(await decoderCloses()).toBe(0);
    const viewerBefore = await onlyViewer(server);
    expect(viewerBefore.paused).toBe(false);
    // The server's view of this viewer reaches the tile.
    await waitForTile(page, `d.lagMs !== ""`);

    // Hide the dashboard by switching to another tab.
    const other = await newPage();
    await other.bringToFront();
    await page.waitForFunction(
      (stream) =>
        document.visibilityState === "hidden" &&
        (window as unknown as { canvascast: { players: Map<string, { state: string }> } }).canvascast.players.get(stream)
          ?.state === "paused",
      { polling: 100, timeout: 10_000 },
      STREAM,
    );
    await waitForTile(page, `d.state === "paused"`);
    // The server has read the pause, and the frames in flight when it did have arrived.
    const hiddenStart = await pausedAndStill(server, page);
    // That nothing is sent, received or painted while hidden has no event to wait for: watch an
    // interval instead, begun only now that the pause is established (2 s: 60 frames at 30 fps).
    await sleep(2000);
    const hiddenEnd = { player: await figures(page), viewer: await onlyViewer(server) };
    expect(hiddenEnd.viewer.paused).toBe(true);
    expect(hiddenEnd.viewer.framesSent).toBe(hiddenStart.viewer.framesSent);
    expect(hiddenEnd.player.framesReceived).toBe(hiddenStart.player.framesReceived);
    expect(hiddenEnd.player.framesPainted).toBe(hiddenStart.player.framesPainted);
    expect(hiddenEnd.player.state).toBe("paused");
    // The codec was released while hidden.
    expect(await decoderCloses()).toBe(1);

    // Back to the dashboard's tab.
    await page.bringToFront();
    await other.close();
    await waitForTile(page, `d.state === "live" && Number(d.framesPainted) > ${hiddenEnd.player.framesPainted}`);
    expect((await onlyViewer(server)).paused).toBe(false);
    await expectLivePicture(page);
    const after = await figures(page);
    expect(after.framesReceived).toBeGreaterThan(hiddenEnd.player.framesReceived);
    expect(after.decoderErrors).toBe(0);
    expect(await statesSeen(page)).toContain("paused");
    expect(await marker(page)).toBe("not reloaded");
    expect(pageErrors).toEqual([]);
  });

  it("pauses at once a page that is hidden when its socket opens", async () => {
    const page = await newPage();
    const front = await newPage();
    await front.bringToFront();
    await page.goto(server.url, { waitUntil: "load" });
    expect(await page.evaluate(() => document.visibilityState)).toBe("hidden");
    await waitForTile(page, `d.state === "paused"`);
    // The server has read the pause, and the join burst (hello, state, replayed GOP), which may have
    // left before the pause arrived, is over.
    const before = await pausedAndStill(server, page);
    const sentBefore = before.viewer.framesSent;
    const received = before.player.framesReceived;
    // Nothing more may come while hidden: no event marks that, so watch an interval, begun only now
    // that the pause is established (1 s: 30 frames at 30 fps).
    await sleep(1000);
    expect((await onlyViewer(server)).framesSent).toBe(sentBefore);
    expect((await figures(page)).framesReceived).toBe(received);
    expect((await figures(page)).framesPainted).toBe(0);

    await page.bringToFront();
    await waitForTile(page, `d.state === "live" && Number(d.framesPainted) > 10`);
    await expectLivePicture(page);
    expect(pageErrors).toEqual([]);
  });

  it("shows the pipeline restarting after its gst process is killed, then is live again without a reload", async () => {
    const page = await openDashboard();
    const info = await streamInfo(server);
    const pid = info.pipelinePid ?? childPids(server.pid, "gst-launch-1.0")[0];
    if (pid === undefined) throw new Error("no gst-launch-1.0 process found");
    const restartsBefore = info.restarts;
    const paintedBefore = (await figures(page)).framesPainted;

    process.kill(pid, "SIGKILL");
    await page.waitForFunction(() => ((window as unknown as PageHooks).__ccStates ?? []).includes("restarting"), {
      polling: 100,
      timeout: 20_000,
    });
    await waitForTile(page, `d.state === "live"`, 30_000);
    const liveAgain = await figures(page);
    expect(liveAgain.framesPainted).toBeGreaterThan(paintedBefore);
    await expectLivePicture(page);

    const states = await statesSeen(page);
    const restarting = states.indexOf("restarting");
    expect(states.slice(restarting)).toContain("live");
    expect(isAlive(pid)).toBe(false);
    const infoAfter = await streamInfo(server);
    expect(infoAfter.restarts).toBeGreaterThan(restartsBefore);
    expect(infoAfter.pipelinePid).not.toBe(pid);
    // Same connection, same page: no reconnect and no reload was needed.
    expect((await figures(page)).reconnects).toBe(0);
    expect(await marker(page)).toBe("not reloaded");
    expect(pageErrors).toEqual([]);
  });

  it("shows a viewer that falls behind its lag and the frames the server skipped, then catches up", async () => {
    const page = await openDashboard();
    // A page too busy to keep up: its main thread blocked for 2 s, so it reads and acks nothing and
    // the server, seeing its lag grow, skips it to a keyframe once it has caught up.
    const toastShown = (): Promise<boolean> =>
      page.$eval(`${TILE} .toast`, (el) => !(el as HTMLElement).hidden);
    await until("the skipped-frames notice", 30_000, async () => {
      await page.evaluate(() => {
        const end = performance.now() + 2000;
        while (performance.now() < end) {
          // busy: no message events, no acks
        }
      });
      try {
        await page.waitForFunction(
          (selector) => document.querySelector<HTMLElement>(`${selector} .toast`)?.hidden === false,
          { polling: 100, timeout: 3000 },
          TILE,
        );
      } catch {
        return undefined;
      }
      return (await toastShown()) ? true : undefined;
    });
    const toast = await page.$eval(`${TILE} .toast`, (el) => el.textContent ?? "");
    expect(toast).toMatch(/^skipped \d+ frames? \(/);
    await waitForTile(page, `Number(d.framesSkipped) > 0 && d.lagMs !== ""`);
    const viewer = await onlyViewer(server);
    expect(viewer.skipped.lagging + viewer.skipped["buffer-full"]).toBeGreaterThan(0);
    // The notice is short-lived, and the picture is live again.
    await until("the notice to go", 20_000, async () => ((await toastShown()) ? undefined : true));
    await expectLivePicture(page);
    expect(pageErrors).toEqual([]);
  });

  it("reconnects by itself when the server goes away and comes back on the same port", async () => {
    const page = await openDashboard();
    const port = new URL(server.url).port;
    const paintedBefore = (await figures(page)).framesPainted;

    await server.stop("SIGTERM");
    await waitForTile(page, `d.state === "reconnecting"`);
    server = await startServerProcess([...SERVER_ARGS, "--port", port]);
    expect(new URL(server.url).port).toBe(port);

    await waitForTile(page, `Number(d.reconnects) >= 1 && d.state === "live" && Number(d.framesPainted) > ${paintedBefore}`, 30_000);
    await expectLivePicture(page);
    expect(await statesSeen(page)).toContain("reconnecting");
    expect(await marker(page)).toBe("not reloaded");
    expect(pageErrors).toEqual([]);
  });

  it("shows reconnecting while its stream is full (HTTP 503) and plays once a viewer leaves, without a reload", async () => {
    const full = await startServerProcess([...SERVER_ARGS, "--max-viewers-per-stream", "1"]);
    const occupant = await connectViewer(full.wsBase + `ws/${STREAM}`);
    try {
      await occupant.waitForFrames(1);
      const page = await newPage();
      await page.goto(full.url, { waitUntil: "load" });
      await waitForTile(page, `d.state === "reconnecting"`);
      await recordTileStates(page, TILE);
      // Refused again on its retries: nothing played while the stream was full.
      await sleep(2000);
      expect(await figures(page)).toMatchObject({ state: "reconnecting", framesReceived: 0 });
      occupant.close();
      await occupant.closed;
      await waitForTile(page, `d.state === "live" && Number(d.framesPainted) > 10`, 30_000);
      await expectLivePicture(page);
      expect(await marker(page)).toBe("not reloaded");
      expect(pageErrors).toEqual([]);
    } finally {
      occupant.close();
      await full.stop();
    }
  });
});