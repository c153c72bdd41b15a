// The dashboard as a grid of cameras: a tile scrolled out of view is paused on the server (its
// viewer is reported paused by /api/streams, and nothing is sent to it) and is live again at once
// when it is scrolled back, from the replayed GOP.

import type { Page } from "puppeteer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StreamsResponse } from "../../shared/api.js";
import { launchBrowser, type TestBrowser } from "../helpers/browser.js";
import { startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";
import { sleep, until } from "../helpers/until.js";

const STREAMS = ["a", "b", "c"] as const;
const SERVER_ARGS = ["--stream", "a=test:ball", "--stream", "b=test:smpte", "--stream", "c=test:pinwheel", "--size", "320x240", "--fps", "30"];

/** Per stream: whether its one viewer is paused, as the server says (undefined: no viewer). */
async function pausedOnServer(server: ServerProcess): Promise<Record<string, boolean | undefined>> {
  const body = (await (await fetch(new URL("/api/streams", server.url))).json()) as StreamsResponse;
  return Object.fromEntries(body.streams.map((s) => [s.name, s.clients.length === 1 ? s.clients[0]!.paused : undefined]));
}

/** Per stream: the tile's state and frames painted, and whether its picture is in the viewport. */
async function tiles(page: Page): Promise<Record<string, { state: string; painted: number; inView: boolean }>> {
  return page.evaluate(() => {
    const out: Record<string, { state: string; painted: number; inView: boolean }> = {};
    for (const el of document.querySelectorAll<HTMLElement>(".tile")) {
      const screen = el.querySelector(".screen")!.getBoundingClientRect();
      out[el.dataset.stream!] = {
        state: el.dataset.state ?? "",
        painted: Number(el.dataset.framesPainted),
        inView: screen.bottom > 0 && screen.top < innerHeight,
      };
    }
    return out;
  });
}

describe("the dashboard's grid", () => {
  let server: ServerProcess;
  let browser: TestBrowser;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    [server, browser] = await Promise.all([startServerProcess(SERVER_ARGS), launchBrowser()]);
    page = await browser.newPage();
    page.on("pageerror", (err) => pageErrors.push(String(err)));
    // One column, one tile's picture in view at a time.
    await page.setViewport({ width: 400, height: 300 });
  });
  afterAll(async () => {
    await browser?.close();
    await stopAllServers();
  });

  it("pauses a tile scrolled out of view on the server, and plays it live again when scrolled back", async () => {
    await page.goto(server.url, { waitUntil: "load" });
    await until("tile a live, b and c paused out of view, on the page and on the server", 20_000, async () => {
      const t = await tiles(page);
      const s = await pausedOnServer(server);
      return t.a?.state === "live" && t.a.painted > 5 && t.c?.state === "paused" && s.a === false && s.c === true ? true : undefined;
    });
    expect((await tiles(page)).c?.inView).toBe(false);

    // Scrolled to the last tile: it plays, the first one is paused.
    await page.$eval('.tile[data-stream="c"] .screen', (el) => el.scrollIntoView({ block: "center" }));
    const afterScroll = await until("c live and a paused, on the page and on the server", 10_000, async () => {
      const t = await tiles(page);
      const s = await pausedOnServer(server);
      return t.c?.state === "live" && t.a?.state === "paused" && s.c === false && s.a === true ? t : undefined;
    });
    expect(afterScroll.a?.inView).toBe(false);
    // Paused means the server sends nothing: a's received count stands still.
    // Paused means the server sends nothing: a's received count stands still (after what was in flight
    // when the server read the pause has arrived).
    const received = async (): Promise<number> => Number(await page.$eval('.tile[data-stream="a"]', (el) => (el as HTMLElement).dataset.framesReceived));
    await sleep(300);
    const before = await received();
    await sleep(1000);
    expect(await received()).toBe(before);

    // Back: a plays live again from the replayed GOP, with new pictures.
    const paintedBefore = (await tiles(page)).a!.painted;
    await page.$eval('.tile[data-stream="a"] .screen', (el) => el.scrollIntoView({ block: "center" }));
    await until("a live again with new pictures, and unpaused on the server", 10_000, async () => {
      const t = await tiles(page);
      const s = await pausedOnServer(server);
      return t.a?.state === "live" && t.a.painted > paintedBefore && s.a === false ? true : undefined;
    });
    expect(Object.keys(afterScroll).sort()).toEqual([...STREAMS]);
    expect(pageErrors).toEqual([]);
  });
});
