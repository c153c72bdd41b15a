// A latency sparkline in a tiny SVG (not a canvas: a tile's only <canvas> is its picture): the last
// minute of p50 (a line) and p95 (a band from p50 up to p95), one point per half second at most.
// Gaps (no figure: not live) break the line. The scale's top is a round number of ms, shown next to
// it, chosen from the typical values rather than the largest (see scaleFor); what goes above it is
// clipped and marked. Redrawing sets three path strings: cheap at 2/s per tile.

export interface SparklineOptions {
  /** Time shown, ms. Default 60 000. */
  readonly windowMs?: number;
  /** Points closer together than this are dropped, ms. Default 500 (the dashboard draws ≤ 2/s). */
  readonly minIntervalMs?: number;
  /** Where the scale's top is written (e.g. "20 ms"). */
  readonly maxLabel?: HTMLElement;
}

interface Point {
  readonly at: number;
  readonly p50: number | null;
  readonly p95: number | null;
}

/** The drawing's own units: 60 s across, 0…top from bottom to top (stretched to the element's box). */
const VIEW_WIDTH = 600;
const VIEW_HEIGHT = 100;
const SVG_NS = "http://www.w3.org/2000/svg";

/** The smallest of 1, 1.5, 2, 3, 5, 7.5 × 10^n that is ≥ v (at least 5). */
export function niceCeil(v: number): number {
  if (!(v > 5)) return 5;
  const pow = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 3, 5, 7.5, 10]) if (m * pow >= v) return m * pow;
  return 10 * pow;
}

/**
 * The value the scale must reach: all of p50, and p95 up to its median with room above. One spike
 * (a join, a stall) would otherwise flatten the rest of the minute against the floor; it is clipped.
 */
export function scaleFor(points: readonly { readonly p50: number | null; readonly p95: number | null }[]): number {
  let maxP50 = 0;
  const p95s: number[] = [];
  for (const p of points) {
    if (p.p50 !== null) maxP50 = Math.max(maxP50, p.p50);
    if (p.p95 !== null) p95s.push(p.p95);
  }
  p95s.sort((a, b) => a - b);
  const medianP95 = p95s[Math.floor(p95s.length / 2)] ?? 0;
  return Math.max(maxP50, medianP95) * 1.25;
}

export class Sparkline {
  readonly #windowMs: number;
  readonly #minIntervalMs: number;
  readonly #maxLabel: HTMLElement | undefined;
  readonly #band: SVGPathElement;
  readonly #line: SVGPathElement;
  readonly #clipped: SVGPathElement;
  #points: Point[] = [];
  #top = 0;

  /** Draws into `svg` (its contents are replaced): a mid-scale rule, the p50…p95 band, the p50 line. */
  constructor(svg: SVGSVGElement, options: SparklineOptions = {}) {
    this.#windowMs = options.windowMs ?? 60_000;
    this.#minIntervalMs = options.minIntervalMs ?? 500;
    this.#maxLabel = options.maxLabel;
    svg.setAttribute("viewBox", `0 0 ${VIEW_WIDTH} ${VIEW_HEIGHT}`);
    svg.setAttribute("preserveAspectRatio", "none");
    const path = (cls: string): SVGPathElement => {
      const el = document.createElementNS(SVG_NS, "path");
      el.setAttribute("class", cls);
      el.setAttribute("vector-effect", "non-scaling-stroke");
      return el;
    };
    const rule = path("spark-rule");
    rule.setAttribute("d", `M0 ${VIEW_HEIGHT / 2}H${VIEW_WIDTH}`);
    this.#band = path("spark-band");
    this.#line = path("spark-line");
    this.#clipped = path("spark-clipped");
    svg.replaceChildren(rule, this.#band, this.#line, this.#clipped);
  }

  /** Adds a point (null: no figure now) and redraws, unless the last point is too recent. */
  push(now: number, p50: number | null, p95: number | null): void {
    const last = this.#points.at(-1);
    if (last !== undefined && now - last.at < this.#minIntervalMs) return;
    this.#points.push({ at: now, p50, p95 });
    const cutoff = now - this.#windowMs - this.#minIntervalMs;
    let drop = 0;
    while (drop < this.#points.length && (this.#points[drop]?.at ?? Infinity) < cutoff) drop++;
    if (drop > 0) this.#points.splice(0, drop);
    this.#draw(now);
  }

  #draw(now: number): void {
    const top = niceCeil(scaleFor(this.#points));
    if (top !== this.#top) {
      this.#top = top;
      if (this.#maxLabel !== undefined) this.#maxLabel.textContent = `${top} ms`;
    }
    const x = (at: number): string => (VIEW_WIDTH - ((now - at) / this.#windowMs) * VIEW_WIDTH).toFixed(1);
    // Clamped both ways: a figure can read a little below 0 while the first clock samples settle.
    const y = (ms: number): string => (VIEW_HEIGHT - (Math.min(Math.max(ms, 0), top) / top) * VIEW_HEIGHT).toFixed(1);
    let band = "";
    let line = "";
    for (const run of this.#runs()) {
      const first = run[0];
      if (first === undefined) continue;
      line += `M${x(first.at)} ${y(first.p50 ?? 0)}`;
      for (const p of run.slice(1)) line += `L${x(p.at)} ${y(p.p50 ?? 0)}`;
      if (run.length === 1) line += "h2"; // a lone point still shows
      if (run.length < 2) continue;
      band += `M${x(first.at)} ${y(first.p95 ?? first.p50 ?? 0)}`;
      for (const p of run.slice(1)) band += `L${x(p.at)} ${y(p.p95 ?? p.p50 ?? 0)}`;
      for (let i = run.length - 1; i >= 0; i--) {
        const p = run[i];
        if (p !== undefined) band += `L${x(p.at)} ${y(p.p50 ?? 0)}`;
      }
      band += "Z";
    }
    // Points above the scale touch the ceiling; a tick there says they were cut.
    let clipped = "";
    for (const p of this.#points) if ((p.p95 ?? p.p50 ?? 0) > top) clipped += `M${x(p.at)} 0v8`;
    this.#band.setAttribute("d", band);
    this.#line.setAttribute("d", line);
    this.#clipped.setAttribute("d", clipped);
  }

  /** Consecutive points that have a p50. */
  *#runs(): Generator<Point[]> {
    let run: Point[] = [];
    for (const p of this.#points) {
      if (p.p50 === null) {
        if (run.length > 0) yield run;
        run = [];
      } else {
        run.push(p);
      }
    }
    if (run.length > 0) yield run;
  }
}
