// Headless Debian Chromium through puppeteer, with a fresh profile that is removed on close.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export interface TestBrowser {
  readonly browser: Browser;
  newPage(): Promise<Page>;
  /** Closes the browser (killing it if it hangs) and removes its profile. Safe to call twice. */
  close(): Promise<void>;
}

export async function launchBrowser(extraArgs: readonly string[] = []): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), "canvascast-chromium-"));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    args: [
      "--no-sandbox", // root in CI containers
      "--disable-gpu",
      "--no-first-run",
      // The machine has no network beyond loopback: stop Chromium's own background traffic.
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
      ...extraArgs,
    ],
  });
  let closing: Promise<void> | null = null;
  return {
    browser,
    newPage: () => browser.newPage(),
    close() {
      closing ??= (async () => {
        const proc = browser.process();
        const timer = setTimeout(() => proc?.kill("SIGKILL"), 5000);
        try {
          await browser.close();
        } catch {
          proc?.kill("SIGKILL");
        } finally {
          clearTimeout(timer);
          rmSync(profile, { recursive: true, force: true });
        }
      })();
      return closing;
    },
  };
}
