// The bench's charts, small hand-written SVG from the results: (1) the pipe → presented
// distribution of every player side by side, (2) fan-out delivery p99 against viewers. `npm run
// bench` writes them next to latest.json; `npx tsx bench/charts.ts [results.json]` remakes them
// from a results file (default bench/results/latest.json) without running anything.

import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Histogram, Summary } from "./stats.js";

/** The parts of latest.json the charts read (older files lack the histograms). */
interface ChartedResults {
  readonly date?: string;
  readonly latency?: { readonly runs: number; readonly paths: Record<string, { what: string; presented: Summary; presentedHistogram?: Histogram }> };
  readonly fanout?: readonly FanoutStep[];
  readonly fanoutAgainstBaseline?: { readonly baseline: string; readonly rounds: readonly (FanoutStep & { build: string; round: number })[] };
}

interface FanoutStep {
  readonly viewers: number;
  readonly healthy: { readonly delayP50Ms: number | null; readonly delayP99Ms: number | null };
  readonly breaks?: readonly string[];
}

/** Steps of the log axis the distributions' shapes are drawn in. */
const VIOLIN_BINS = 60;
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif"';
const COLOURS = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2"];
/** Fan-out breaks above one frame interval at 30 fps (bench/fanout.ts). */
const FANOUT_BREAK_MS = 33;

const esc = (text: string): string => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const num = (x: number): string => (Math.round(x * 10) / 10).toString();

function el(name: string, attrs: Record<string, string | number | undefined>, body?: string): string {
  const a = Object.entries(attrs)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${typeof v === "number" ? num(v) : esc(v!)}"`)
    .join("");
  return body === undefined ? `<${name}${a}/>` : `<${name}${a}>${body}</${name}>`;
}

const text = (x: number, y: number, s: string, attrs: Record<string, string | number | undefined> = {}): string =>
  el("text", { x, y, "font-size": 12, fill: "#111", ...attrs }, esc(s));

function svg(width: number, height: number, title: string, body: string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT}>
<title>${esc(title)}</title>
${el("rect", { width, height, fill: "#fff" })}
${body.join("\n")}
</svg>
`;
}

/** Ticks of a log axis (1, 2, 5 × powers of ten) spanning [lo, hi]. */
function logTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let p = Math.floor(Math.log10(lo)) - 1; p <= Math.ceil(Math.log10(hi)) + 1; p++) for (const m of [1, 2, 5]) ticks.push(m * 10 ** p);
  const below = ticks.filter((t) => t <= lo).at(-1) ?? lo;
  const above = ticks.find((t) => t >= hi) ?? hi;
  return ticks.filter((t) => t >= below && t <= above);
}

/** A "nice" upper end of a linear axis and its step. */
function linearAxis(max: number): { end: number; step: number } {
  const raw = max / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
  return { end: Math.ceil(max / step) * step, step };
}

/**
 * pipe → presented of each latency path, one row each on a shared log axis: min–max line, p50–p95
 * bar, p99 tick, and where the results hold a histogram, the distribution's shape behind them.
 */
export function latencyChart(results: ChartedResults): string | undefined {
  const paths = Object.values(results.latency?.paths ?? {}).filter((p) => Number.isFinite(p.presented.p50));
  if (paths.length === 0) return undefined;
  const width = 860;
  const left = 20;
  const right = 620;
  const rowH = 58;
  const top = 64;
  const ticks = logTicks(Math.min(...paths.map((p) => p.presented.min)), Math.max(...paths.map((p) => p.presented.max)));
  const lo = Math.log10(ticks[0]!);
  const hi = Math.log10(ticks.at(-1)!);
  const x = (ms: number): number => left + ((Math.log10(Math.max(ms, ticks[0]!)) - lo) / (hi - lo)) * (right - left);
  const bottom = top + rowH * paths.length;
  const out: string[] = [
    text(left, 22, "pipe → presented, every player side by side (ms, log scale)", { "font-size": 15, "font-weight": 600 }),
    text(left, 42, `line: min–max · bar: p50–p95 · tick: p99 · dot: p50${paths.some((p) => p.presentedHistogram) ? " · shade: share of frames" : ""} — ${results.latency?.runs ?? "?"} run${results.latency?.runs === 1 ? "" : "s"} pooled${results.date ? `, ${results.date.slice(0, 10)}` : ""}`, { fill: "#555" }),
  ];
  for (const t of ticks) {
    out.push(el("line", { x1: x(t), x2: x(t), y1: top - 6, y2: bottom, stroke: "#e5e7eb" }));
    out.push(text(x(t), bottom + 16, String(t), { "text-anchor": "middle", fill: "#555" }));
  }
  paths.forEach((p, i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    const y = top + rowH * i + 34;
    const s = p.presented;
    out.push(text(left, y - 18, p.what));
    const h = p.presentedHistogram;
    if (h !== undefined && h.bins.length > 0) {
      // Re-binned into equal steps of the log axis, so that the shape reads right on it: each
      // stored bin's frames are spread over the steps it covers, in proportion to the overlap.
      const counts = new Array<number>(VIOLIN_BINS).fill(0);
      const step = (ms: number): number => ((Math.log10(Math.max(ms, ticks[0]!)) - lo) / (hi - lo)) * VIOLIN_BINS;
      for (const [edge, n] of h.bins) {
        const a = step(edge);
        const b = step(edge + h.binMs);
        for (let k = Math.max(0, Math.floor(a)); k < Math.min(VIOLIN_BINS, Math.ceil(b)); k++) {
          counts[k]! += b > a ? (n * (Math.min(b, k + 1) - Math.max(a, k))) / (b - a) : n;
        }
      }
      const first = counts.findIndex((n) => n > 0);
      const last = VIOLIN_BINS - 1 - [...counts].reverse().findIndex((n) => n > 0);
      const peak = Math.max(...counts);
      const at = (k: number): number => left + ((k + 0.5) / VIOLIN_BINS) * (right - left);
      const upper: string[] = [];
      const lower: string[] = [];
      for (let k = first; k <= last; k++) {
        upper.push(`${num(at(k))},${num(y - (counts[k]! / peak) * 13)}`);
        lower.unshift(`${num(at(k))},${num(y + (counts[k]! / peak) * 13)}`);
      }
      out.push(el("polygon", { points: [...upper, ...lower].join(" "), fill: colour, "fill-opacity": 0.18, stroke: "none" }));
    }
    out.push(el("line", { x1: x(s.min), x2: x(s.max), y1: y, y2: y, stroke: colour, "stroke-width": 1.5 }));
    out.push(el("rect", { x: x(s.p50), y: y - 5, width: Math.max(1, x(s.p95) - x(s.p50)), height: 10, fill: colour, "fill-opacity": 0.75 }));
    out.push(el("line", { x1: x(s.p99), x2: x(s.p99), y1: y - 9, y2: y + 9, stroke: colour, "stroke-width": 2 }));
    out.push(el("circle", { cx: x(s.p50), cy: y, r: 4, fill: "#fff", stroke: colour, "stroke-width": 2 }));
    out.push(text(right + 14, y + 4, `p50 ${num(s.p50)} · p95 ${num(s.p95)} · p99 ${num(s.p99)}`, { fill: "#333" }));
  });
  out.push(text(left + (right - left) / 2, bottom + 34, "ms from the frame's last byte off the gst pipe to Display::FrameDisplayed", { "text-anchor": "middle", fill: "#555" }));
  return svg(width, bottom + 48, "pipe → presented latency per player", out);
}

/** Fan-out: healthy viewers' delivery p99 (and p50) at each step of viewers, log y; the baseline comparison's rounds as markers. */
export function fanoutChart(results: ChartedResults): string | undefined {
  const steps = (results.fanout ?? []).filter((s) => s.healthy.delayP99Ms !== null);
  const rounds = (results.fanoutAgainstBaseline?.rounds ?? []).filter((s) => s.healthy.delayP99Ms !== null);
  if (steps.length === 0 && rounds.length === 0) return undefined;
  const width = 760;
  const height = 440;
  const left = 64;
  const right = width - 24;
  const top = 96;
  const bottom = height - 56;
  const all = [...steps, ...rounds];
  const values = all.flatMap((s) => [s.healthy.delayP99Ms!, s.healthy.delayP50Ms ?? s.healthy.delayP99Ms!, FANOUT_BREAK_MS]);
  const ticks = logTicks(Math.max(0.1, Math.min(...values)), Math.max(...values));
  const lo = Math.log10(ticks[0]!);
  const hi = Math.log10(ticks.at(-1)!);
  const axis = linearAxis(Math.max(...all.map((s) => s.viewers)));
  const x = (v: number): number => left + (v / axis.end) * (right - left);
  const y = (ms: number): number => bottom - ((Math.log10(Math.max(ms, ticks[0]!)) - lo) / (hi - lo)) * (bottom - top);
  const out: string[] = [
    text(20, 22, "Fan-out: delivery delay of healthy viewers against viewers (ms, log scale)", { "font-size": 15, "font-weight": 600 }),
    text(20, 42, "one 640×480@30 1.5 Mbit/s stream; arrival − the frame header's server time, all viewers pooled", { fill: "#555" }),
  ];
  for (const t of ticks) {
    out.push(el("line", { x1: left, x2: right, y1: y(t), y2: y(t), stroke: "#e5e7eb" }));
    out.push(text(left - 8, y(t) + 4, String(t), { "text-anchor": "end", fill: "#555" }));
  }
  for (let v = 0; v <= axis.end + 1e-9; v += axis.step) {
    out.push(el("line", { x1: x(v), x2: x(v), y1: bottom, y2: bottom + 5, stroke: "#555" }));
    out.push(text(x(v), bottom + 19, String(v), { "text-anchor": "middle", fill: "#555" }));
  }
  out.push(el("line", { x1: left, x2: right, y1: bottom, y2: bottom, stroke: "#555" }));
  out.push(text(left + (right - left) / 2, bottom + 40, "viewers", { "text-anchor": "middle", fill: "#555" }));
  out.push(el("line", { x1: left, x2: right, y1: y(FANOUT_BREAK_MS), y2: y(FANOUT_BREAK_MS), stroke: "#dc2626", "stroke-dasharray": "6 4" }));
  out.push(text(right - 4, y(FANOUT_BREAK_MS) - 6, `${FANOUT_BREAK_MS} ms, a frame: a step breaks above it`, { "text-anchor": "end", fill: "#dc2626" }));
  const line = (points: FanoutStep[], pick: (s: FanoutStep) => number, attrs: Record<string, string | number>): string =>
    el("polyline", { points: points.map((s) => `${num(x(s.viewers))},${num(y(pick(s)))}`).join(" "), fill: "none", ...attrs });
  if (steps.length > 0) {
    out.push(line(steps, (s) => s.healthy.delayP50Ms ?? NaN, { stroke: COLOURS[0]!, "stroke-opacity": 0.5, "stroke-dasharray": "4 3", "stroke-width": 1.5 }));
    out.push(line(steps, (s) => s.healthy.delayP99Ms!, { stroke: COLOURS[0]!, "stroke-width": 2 }));
    for (const s of steps) {
      const broke = (s.breaks?.length ?? 0) > 0;
      out.push(el("circle", { cx: x(s.viewers), cy: y(s.healthy.delayP99Ms!), r: 4.5, fill: broke ? "#fff" : COLOURS[0], stroke: broke ? "#dc2626" : COLOURS[0], "stroke-width": 2 }));
    }
  }
  const legend: [string, string][] = steps.length > 0 ? [["p99, this build (hollow red: the step broke)", COLOURS[0]!], ["p50", `${COLOURS[0]!}80`]] : [];
  if (rounds.length > 0) {
    const baseline = results.fanoutAgainstBaseline!.baseline;
    for (const r of rounds) {
      const cx = x(r.viewers) + (r.round === 1 ? -5 : 5);
      const cy = y(r.healthy.delayP99Ms!);
      out.push(
        r.build === "baseline"
          ? el("path", { d: `M${num(cx)},${num(cy - 6)} l5,9 h-10 z`, fill: COLOURS[2] })
          : el("rect", { x: cx - 4, y: cy - 4, width: 8, height: 8, fill: COLOURS[1] }),
      );
    }
    legend.push([`p99 against the baseline, ${baseline}: triangles`, COLOURS[2]!], ["p99 against the baseline, this build: squares", COLOURS[1]!]);
  }
  legend.forEach(([label, colour], i) => {
    const lx = left + 8 + (i % 2) * 340;
    const ly = 64 + Math.floor(i / 2) * 16;
    out.push(el("rect", { x: lx, y: ly - 8, width: 14, height: 4, fill: colour }));
    out.push(text(lx + 20, ly - 3, label, { "font-size": 11, fill: "#333" }));
  });
  return svg(width, height, "fan-out delivery p99 against viewers", out);
}

/** Writes the charts the results have data for into `dir`; returns the files written. */
export function writeCharts(results: unknown, dir: string): string[] {
  const written: string[] = [];
  for (const [file, chart] of [
    ["latency.svg", latencyChart(results as ChartedResults)],
    ["fanout.svg", fanoutChart(results as ChartedResults)],
  ] as const) {
    if (chart === undefined) continue;
    const path = join(dir, file);
    writeFileSync(path, chart);
    written.push(path);
  }
  return written;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const file = process.argv[2] ?? fileURLToPath(new URL("./results/latest.json", import.meta.url));
  const written = writeCharts(JSON.parse(readFileSync(file, "utf8")) as unknown, dirname(file));
  console.log(written.length > 0 ? `wrote ${written.join(", ")}` : `${file} has no latency or fan-out results: no chart written`);
}
