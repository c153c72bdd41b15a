// Records the states a dashboard tile shows, in order and without repeats, and sets a marker that
// survives only if the page is not reloaded.

import type { Page } from "puppeteer";

interface TileStateHooks {
  __ccStates?: string[];
  __ccMarker?: string;
}

/** Starts recording the `data-state` of the tile at `selector` (a MutationObserver in the page). */
export async function recordTileStates(page: Page, selector: string): Promise<void> {
  await page.evaluate((sel) => {
    const el = document.querySelector<HTMLElement>(sel)!;
    const hooks = window as unknown as TileStateHooks;
    const states = (hooks.__ccStates = [el.dataset.state ?? ""]);
    new MutationObserver(() => {
      const state = el.dataset.state ?? "";
      if (states[states.length - 1] !== state) states.push(state);
    }).observe(el, { attributes: true, attributeFilter: ["data-state"] });
    hooks.__ccMarker = "not reloaded";
  }, selector);
}
