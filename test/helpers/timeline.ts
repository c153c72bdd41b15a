// The dashboard's recording timeline, in a browser test: a click on a tile's timeline bar, and the
// wait until the tile plays the recording with REC and its time shown.

import type { Page } from "puppeteer";

/** Clicks `stream`'s timeline bar at `fraction` of its width (1: now) and waits for REC hh:mm:ss. */
export async function playFromTimeline(page: Page, stream: string, fraction: number): Promise<void> {
  const bar = await page.$eval(`.tile[data-stream="${stream}"] .timeline-bar`, (el) => {
    const r = el.getBoundingClientRect();
    return { x: r.x, y: r.y, width: r.width, height: r.height };
  });
  await page.mouse.click(bar.x + bar.width * fraction, bar.y + bar.height / 2);
  await page.waitForFunction(
    (name: string) => {
      const d = document.querySelector<HTMLElement>(`.tile[data-stream="${name}"]`)?.dataset;
      const rec = document.querySelector<HTMLElement>(`.tile[data-stream="${name}"] .rec`);
      return d?.playback === "recorded" && Number(d.recordedAt) > 0 && rec !== null && !rec.hidden && /^REC \d\d:\d\d:\d\d$/.test(rec.textContent ?? "");
    },
    { timeout: 15_000 },
    stream,
  );
}
