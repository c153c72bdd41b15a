// Join marks, for the benchmark's join stages (docs/benchmarks.md): `markJoin(stage, player)` puts a
// performance mark `canvascast-join <stage>` on the page the first time each player reaches that
// stage of its join (page load → first picture). A no-op unless the page set
// `globalThis.canvascastMarkPaints = true`, the bench's flag (the worker gets it with each player).
//
// A player in a worker marks on the page too: the bench reads the page's timeline, and a worker's
// performance.now() counts from its own origin. The worker sends the stage over a BroadcastChannel
// (the worker is of the page's origin) with its time as timeOrigin + now, a time both clocks share
// (worker.ts shifts times the same way); the page marks it at that time on its own clock.

/** Where a join is: the page's module runs (no player), the player got hello, its first video frame, decoded the frame it paints first, painted it. */
export type JoinStage = "module" | "hello" | "frame" | "decoded" | "paint";

export const JOIN_MARK_PREFIX = "canvascast-join ";

/** What a join mark's `detail` holds: which player (0: the page's own stages), on which thread. */
export interface JoinMarkDetail {
  readonly player: number;
  readonly thread: "main" | "worker";
}

interface WorkerMark {
  readonly stage: JoinStage;
  /** timeOrigin + performance.now() in the worker, ms. */
  readonly at: number;
  readonly detail: JoinMarkDetail;
}

const CHANNEL = "canvascast-join-marks";
const onPage = typeof document !== "undefined";
const enabled = (): boolean => (globalThis as { canvascastMarkPaints?: unknown }).canvascastMarkPaints === true;

/** The key of the page's own stages. */
const PAGE: object = {};
const reached = new WeakMap<object, Set<JoinStage>>();
const ids = new WeakMap<object, number>();
let nextId = 1;
let channel: BroadcastChannel | undefined;

/** Marks `stage` for `player` (or for the page) unless it was marked before. */
export function markJoin(stage: JoinStage, player: object = PAGE, at: number = performance.now()): void {
  if (!enabled()) return;
  let stages = reached.get(player);
  if (stages === undefined) reached.set(player, (stages = new Set()));
  if (stages.has(stage)) return;
  stages.add(stage);
  const detail: JoinMarkDetail = { player: idOf(player), thread: onPage ? "main" : "worker" };
  if (onPage) {
    listenToWorkers();
    performance.mark(JOIN_MARK_PREFIX + stage, { detail, startTime: at });
    return;
  }
  const mark: WorkerMark = { stage, at: performance.timeOrigin + at, detail };
  try {
    (channel ??= new BroadcastChannel(CHANNEL)).postMessage(mark);
  } catch {
    // No BroadcastChannel here: the stage goes unmarked; the bench reports it missing.
  }
}

function idOf(player: object): number {
  if (player === PAGE) return 0;
  let id = ids.get(player);
  if (id === undefined) ids.set(player, (id = nextId++));
  return id;
}

function listenToWorkers(): void {
  if (channel !== undefined || typeof BroadcastChannel !== "function") return;
  channel = new BroadcastChannel(CHANNEL);
  channel.onmessage = ({ data }: MessageEvent<WorkerMark>) => {
    performance.mark(JOIN_MARK_PREFIX + data.stage, { startTime: data.at - performance.timeOrigin, detail: data.detail });
  };
}

// The page listens from the start: a worker player may reach its first stage before the page marks one.
if (onPage && enabled()) listenToWorkers();
