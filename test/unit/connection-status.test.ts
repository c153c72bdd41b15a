// ConnectionStatus (web/player/connection-status.ts): the socket's and the server's half of a
// player's state, and the reconnect schedule. Fake timers (performance.now() included) and a fixed
// Math.random make every delay exact: with random 0.5 a delay is ¾ of its nominal value.

import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { ConnectionStatus } from "../../web/player/connection-status.js";
import { PlayerStats } from "../../web/player/stats.js";

const BACKOFF = { baseMs: 100, maxMs: 1000 };
/** backoffDelay with Math.random() = 0.5. */
const delayFor = (nominal: number): number => Math.round(nominal * 0.75);

let stats: PlayerStats;
let status: ConnectionStatus;

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
  vi.spyOn(Math, "random").mockReturnValue(0.5);
  stats = new PlayerStats();
  status = new ConnectionStatus(BACKOFF, stats);
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** A socket opened and then closed with `code` and `reason`. */
function openThenClose(code: number, reason = ""): void {
  status.connecting();
  status.opened();
  status.socketClosed();
  status.closedWith(code, reason);
}

describe("ConnectionStatus", () => {
  test("connecting → open (waiting) → the server's states → live", () => {
    expect(status.state(false, "waiting for hello")).toEqual({ state: "connecting", reason: "opening connection", retryAt: undefined });
    status.connecting();
    status.opened();
    expect(status.socketOpen).toBe(true);
    // Open, nothing said yet: what the player waits for.
    expect(status.state(false, "waiting for hello")).toEqual({ state: "connecting", reason: "waiting for hello", retryAt: undefined });

    const now = performance.now();
    status.serverSaid({ type: "state", state: "starting", retryInMs: 4000 });
    expect(status.state(false, "w")).toEqual({ state: "starting", reason: "pipeline starting", retryAt: now + 4000 });
    status.serverSaid({ type: "state", state: "live" });
    expect(status.state(false, "waiting for a keyframe")).toEqual({ state: "connecting", reason: "waiting for a keyframe", retryAt: undefined });
    expect(status.state(true, "w")).toEqual({ state: "live", reason: undefined, retryAt: undefined });
    status.serverSaid({ type: "state", state: "restarting", reason: "pipeline exited", retryInMs: 500 });
    // A server state wins over `live`: a picture from before the restart is not live.
    expect(status.state(true, "w")).toEqual({ state: "restarting", reason: "pipeline exited", retryAt: now + 500 });
    status.serverSaid({ type: "state", state: "offline", reason: "no camera" });
    expect(status.state(true, "w")).toEqual({ state: "offline", reason: "no camera", retryAt: undefined });
    expect(status.serverState).toBe("offline");
  });

  test("a closed socket: reconnecting with the close reason and retryAt, then connecting again", () => {
    openThenClose(1006);
    expect(status.lastClose).toBe("connection closed: connection lost (1006)");
    expect(status.state(true, "w")).toEqual({ state: "connecting", reason: "opening connection", retryAt: undefined });

    const connect = vi.fn(() => status.connecting());
    const now = performance.now();
    status.scheduleReconnect(connect, { closeCode: 1006 });
    expect(status.reconnectPending).toBe(true);
    expect(status.state(false, "w")).toEqual({
      state: "reconnecting",
      reason: "connection closed: connection lost (1006)",
      retryAt: now + delayFor(100),
    });
    vi.advanceTimersByTime(delayFor(100) - 1);
    expect(connect).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(connect).toHaveBeenCalledTimes(1);
    expect(status.reconnectPending).toBe(false);
    // What the server said on the last socket no longer holds.
    expect(status.serverState).toBeUndefined();
    expect(status.state(false, "w")).toEqual({ state: "connecting", reason: "opening connection", retryAt: undefined });
    status.opened();
    expect(stats.snapshot().reconnects).toBe(1);
  });

  test("the close reason the server gave is shown, else the code's meaning", () => {
    expect(status.closedWith(1001, "")).toBe("connection closed: server going away (1001)");
    expect(status.closedWith(4408, "")).toBe("connection closed: too slow (4408)");
    expect(status.closedWith(4409, "stream format changed")).toBe("connection closed: stream format changed");
    expect(status.closedWith(4999, "")).toBe("connection closed: code 4999");
  });

  test("the backoff doubles per failure up to the ceiling, and succeeded() starts it afresh", () => {
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      const before = performance.now();
      status.scheduleReconnect(() => status.connecting(), { closeCode: 1006 });
      const retryAt = status.state(false, "w").retryAt ?? NaN;
      delays.push(retryAt - before);
      vi.runOnlyPendingTimers();
    }
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000].map(delayFor));
    expect(status.failedAttempts).toBe(6);

    status.succeeded();
    expect(status.failedAttempts).toBe(0);
    const before = performance.now();
    status.scheduleReconnect(() => status.connecting(), { closeCode: 1006 });
    expect((status.state(false, "w").retryAt ?? NaN) - before).toBe(delayFor(100));
  });

  test("after 4404 (no such stream), 4400 or 1003 it retries at the slowest rate at once", () => {
    for (const code of [4404, 4400, 1003]) {
      const s = new ConnectionStatus(BACKOFF, stats);
      const before = performance.now();
      s.scheduleReconnect(() => undefined, { closeCode: code });
      expect((s.state(false, "w").retryAt ?? NaN) - before).toBe(delayFor(1000));
      s.cancelReconnect();
    }
    // Other codes start at the base delay.
    const before = performance.now();
    status.scheduleReconnect(() => undefined, { closeCode: 1001 });
    expect((status.state(false, "w").retryAt ?? NaN) - before).toBe(delayFor(100));
  });

  test("an explicit delay overrides the backoff (a format change reconnects at once)", () => {
    const connect = vi.fn();
    status.scheduleReconnect(connect, { delayMs: 0 });
    vi.advanceTimersByTime(0);
    expect(connect).toHaveBeenCalledTimes(1);
    // It still counts as a failure: a second one in a row backs off.
    expect(status.failedAttempts).toBe(1);
  });

  test("cancelReconnect: the pending reconnect never runs; scheduling again replaces it", () => {
    const first = vi.fn();
    const second = vi.fn();
    status.scheduleReconnect(first);
    status.scheduleReconnect(second);
    vi.advanceTimersByTime(10_000);
    expect(first).not.toHaveBeenCalled();
    expect(second).toHaveBeenCalledTimes(1);

    const third = vi.fn();
    status.scheduleReconnect(third);
    status.cancelReconnect();
    status.cancelReconnect(); // twice is harmless
    expect(status.reconnectPending).toBe(false);
    vi.advanceTimersByTime(10_000);
    expect(third).not.toHaveBeenCalled();
    expect(status.state(false, "w").state).toBe("connecting");
  });

  test("stopped: offline with the reason while no socket is open, until the next connecting()", () => {
    openThenClose(1000, "bye");
    status.stopped(status.lastClose ?? "");
    expect(status.state(false, "w")).toEqual({ state: "offline", reason: "connection closed: bye", retryAt: undefined });
    status.connecting();
    expect(status.state(false, "w").state).toBe("connecting");
  });

  test("opened() counts connections in the stats: every one after the first is a reconnect", () => {
    status.connecting();
    status.opened();
    expect(stats.snapshot().reconnects).toBe(0);
    status.socketClosed();
    expect(status.socketOpen).toBe(false);
    status.connecting();
    status.opened();
    status.connecting();
    status.opened();
    expect(stats.snapshot().reconnects).toBe(2);
  });
});
