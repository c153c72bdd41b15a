// A stream's recorded time in the full-screen tile: the ranges of a window of the last hours from
// /api/streams/NAME/recordings (polled while shown), gaps where nothing was recorded, a cursor at
// the picture on screen (the live edge, or the recorded time while the recording plays). A click
// plays from the time clicked; LIVE goes back. Test hooks: .timeline[data-ranges] (how many),
// [data-position] (ms of the cursor), .rec (REC HH:MM:SS), button.live[aria-pressed].

import type { RecordingsResponse } from "../../shared/api.js";

export interface TimelineOptions {
  /** `/api/streams/NAME/recordings`. */
  readonly url: string;
  readonly headers: HeadersInit;
  /** Play the recording from `at` (ms since the epoch). */
  readonly seek: (at: number) => void;
  readonly live: () => void;
}

/** Window lengths offered, ms. */
const WINDOWS: readonly (readonly [string, number])[] = [
  ["10 min", 10 * 60_000],
  ["1 h", 3_600_000],
  ["6 h", 6 * 3_600_000],
  ["24 h", 24 * 3_600_000],
];
const POLL_MS = 5000;

export class RecordingTimeline {
  readonly el: HTMLElement;
  readonly #bar: HTMLElement;
  readonly #ranges: HTMLElement;
  readonly #cursor: HTMLElement;
  readonly #label: HTMLElement;
  readonly #liveButton: HTMLButtonElement;
  readonly #options: TimelineOptions;
  #windowMs = 3_600_000;
  #recorded: { start: number; end: number }[] = [];
  /** The recorded time on screen; null while live. */
  #position: number | null = null;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(options: TimelineOptions) {
    this.#options = options;
    this.el = document.createElement("div");
    this.el.className = "timeline";
    this.el.hidden = true;
    this.#liveButton = document.createElement("button");
    this.#liveButton.type = "button";
    this.#liveButton.className = "live";
    this.#liveButton.textContent = "LIVE";
    this.#liveButton.title = "back to live";
    this.#liveButton.addEventListener("click", (e) => {
      e.stopPropagation();
      options.live();
    });
    this.#label = document.createElement("span");
    this.#label.className = "timeline-label";
    const windows = document.createElement("select");
    windows.className = "timeline-window";
    windows.title = "how far back the timeline reaches";
    for (const [label, ms] of WINDOWS) windows.add(new Option(label, String(ms), ms === this.#windowMs, ms === this.#windowMs));
    windows.addEventListener("change", () => {
      this.#windowMs = Number(windows.value);
      this.#draw();
      void this.#fetch();
    });
    this.#bar = document.createElement("div");
    this.#bar.className = "timeline-bar";
    this.#bar.title = "click to play the recording from there";
    this.#ranges = document.createElement("div");
    this.#ranges.className = "timeline-ranges";
    this.#cursor = document.createElement("div");
    this.#cursor.className = "timeline-cursor";
    this.#bar.append(this.#ranges, this.#cursor);
    this.#bar.addEventListener("click", (e) => {
      e.stopPropagation();
      const box = this.#bar.getBoundingClientRect();
      if (box.width <= 0) return;
      const [from, to] = this.#span();
      options.seek(from + ((e.clientX - box.left) / box.width) * (to - from));
    });
    this.el.append(this.#liveButton, this.#bar, this.#label, windows);
    this.#draw();
  }

  /** Shown (full screen): the ranges are fetched now and every few seconds; hidden: not at all. */
  show(shown: boolean): void {
    this.el.hidden = !shown;
    if (shown && this.#timer === undefined) {
      void this.#fetch();
      this.#timer = setInterval(() => void this.#fetch(), POLL_MS);
    } else if (!shown && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  /** The picture on screen: recorded at `at`, or live (null). */
  setPosition(at: number | null): void {
    this.#position = at;
    this.#draw();
  }

  close(): void {
    this.show(false);
    this.el.remove();
  }

  /** The window shown: [now − window, now]. */
  #span(): [number, number] {
    const now = Date.now();
    return [now - this.#windowMs, now];
  }

  async #fetch(): Promise<void> {
    try {
      // Only the window's segments are listed (the ranges always are): a day of 1-minute segments is long.
      const from = new Date(Date.now() - this.#windowMs).toISOString();
      const response = await fetch(`${this.#options.url}?from=${encodeURIComponent(from)}`, { cache: "no-store", headers: this.#options.headers });
      if (!response.ok) return;
      const body = (await response.json()) as RecordingsResponse;
      this.#recorded = body.ranges.map((r) => ({ start: Date.parse(r.start), end: Date.parse(r.end) }));
      this.#draw();
    } catch {
      // The next poll tries again; the live picture does not depend on it.
    }
  }

  #draw(): void {
    const [from, to] = this.#span();
    const width = to - from;
    const pct = (t: number): string => `${(Math.min(Math.max((t - from) / width, 0), 1) * 100).toFixed(3)}%`;
    const visible = this.#recorded.filter((r) => r.end > from);
    this.#ranges.replaceChildren(
      ...visible.map((r) => {
        const span = document.createElement("span");
        span.style.left = pct(r.start);
        span.style.right = `calc(100% - ${pct(r.end)})`;
        span.title = `${new Date(r.start).toLocaleTimeString()} – ${new Date(r.end).toLocaleTimeString()}`;
        return span;
      }),
    );
    this.el.dataset.ranges = String(this.#recorded.length);
    const position = this.#position;
    this.#cursor.style.left = pct(position ?? to);
    this.el.dataset.position = String(Math.round(position ?? to));
    this.#liveButton.setAttribute("aria-pressed", String(position === null));
    this.#label.textContent = position === null ? "live" : new Date(position).toLocaleString();
  }
}
