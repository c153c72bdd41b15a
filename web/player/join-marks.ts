// Join stages as performance marks, for the benchmark (which sets `globalThis.canvascastMarkPaints`):
// `cc-join <stage>` the first time each stage is reached in this page or worker. No-op otherwise.

export type JoinStage = "first-frame" | "gop-decoded" | "first-paint";

const marked = new Set<JoinStage>();

export function markJoin(stage: JoinStage): void {
  if ((globalThis as { canvascastMarkPaints?: unknown }).canvascastMarkPaints !== true || marked.has(stage)) return;
  marked.add(stage);
  performance.mark(`cc-join ${stage}`);
}
