// The dashboard under its Content-Security-Policy in headless Chromium: it plays in both modes
// (WebCodecs over /ws/, MSE over /webm/) with no CSP violation, while the policy does block what it
// should (an inline script, a fetch to another origin), so the violation listener is known to work.

import type { Page } from "puppeteer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser, type TestBrowser } from "../helpers/browser.js";
import { startServerProcess, stopAllServers, type ServerProcess } from "../helpers/server-process.js";

interface Violation {
  readonly directive: string;
  readonly blocked: string;
}

interface CspHooks {
  __ccViolations?: Violation[];
}

/** Runs in the page before its own scripts: records every CSP violation it reports. */
function recordViolations(): void {
  const hooks = window as unknown as CspHooks;
  hooks.__ccViolations = [];
  document.addEventListener("securitypolicyviolation", (e) => {
    hooks.__ccViolations!.push({ directive: e.effectiveDirective, blocked: e.blockedURI });
  });
}

const violations = (page: Page): Promise<Violation[]> => page.evaluate(() => (window as unknown as CspHooks).__ccViolations ?? []);

describe("the dashboard under its Content-Security-Policy", () => {
  let server: ServerProcess;
  let browser: TestBrowser;

  beforeAll(async () => {
    [server, browser] = await Promise.all([
      startServerProcess(["--source", "test", "--size", "320x240", "--fps", "30", "--keyframe-interval", "1"]),
      launchBrowser(),
    ]);
  });
  afterAll(async () => {
    await browser?.close();
    await stopAllServers();
  });

  for (const [query, mode] of [["", "webcodecs"], ["?mode=mse", "mse"]] as const) {
    it(`plays (${mode}) with no CSP violation`, async () => {
      const page = await browser.newPage();
      const consoleErrors: string[] = [];
      page.on("console", (msg) => {
        if (msg.type() === "error") consoleErrors.push(msg.text());
      });
      page.on("pageerror", (err) => consoleErrors.push(String(err)));
      await page.evaluateOnNewDocument(recordViolations);
      const response = await page.goto(server.url + query, { waitUntil: "load" });
      expect(response?.headers()["content-security-policy"]).toMatch(/default-src 'none'/);
      await page.waitForFunction(
        () => {
          const d = document.querySelector<HTMLElement>('.tile[data-stream="cam0"]')?.dataset;
          return d?.state === "live" && Number(d.framesPainted ?? 0) > 10;
        },
        { timeout: 20_000 },
      );
      expect(await page.$eval('.tile[data-stream="cam0"]', (el) => (el as HTMLElement).dataset.mode)).toBe(mode);
      // The figures come from /api/streams and the socket: connect-src 'self' allowed both.
      await page.waitForFunction(() => document.querySelector('.tile[data-stream="cam0"] .fig-viewers')?.textContent !== "–", {
        timeout: 10_000,
      });
      expect(await violations(page)).toEqual([]);
      expect(consoleErrors).toEqual([]);
      await page.close();
    });
  }

  it("blocks an inline script and a fetch to another origin (the policy is enforced and the listener sees it)", async () => {
    const page = await browser.newPage();
    await page.evaluateOnNewDocument(recordViolations);
    await page.goto(server.url, { waitUntil: "load" });
    const other = server.url.replace("127.0.0.1", "localhost"); // the same server, another origin
    const outcome = await page.evaluate(async (otherUrl) => {
      const script = document.createElement("script");
      script.textContent = "window.__ccInline = true";
      document.head.append(script);
      const fetched = await fetch(new URL("/api/streams", otherUrl)).then(
        () => "fetched",
        () => "refused",
      );
      return { inlineRan: (window as { __ccInline?: boolean }).__ccInline === true, fetched };
    }, other);
    expect(outcome).toEqual({ inlineRan: false, fetched: "refused" });
    // Violation events are dispatched asynchronously.
    await page.waitForFunction(() => ((window as unknown as CspHooks).__ccViolations ?? []).length >= 2, { timeout: 5000 });
    const seen = (await violations(page)).map((v) => v.directive).sort();
    expect(seen).toEqual(["connect-src", "script-src-elem"]);
    await page.close();
  });
});
