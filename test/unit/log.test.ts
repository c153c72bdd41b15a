// The logger (server/log.ts): JSON lines with level names, level filtering, child fields, redaction,
// and readable lines for a terminal. Written to an in-memory destination instead of stderr.

import { describe, expect, test } from "vitest";
import { createLogger, errorFields, isLogLevel, type LoggerOptions } from "../../server/log.js";

function collect(options: Omit<LoggerOptions, "destination"> = {}): { lines: string[]; options: LoggerOptions } {
  const lines: string[] = [];
  return { lines, options: { pretty: false, ...options, destination: { write: (line: string) => void lines.push(line) } } };
}

const parse = (lines: readonly string[]): Record<string, unknown>[] =>
  lines.map((line) => {
    expect(line.endsWith("\n")).toBe(true);
    expect(line.slice(0, -1)).not.toContain("\n"); // one event, one line
    return JSON.parse(line) as Record<string, unknown>;
  });

describe("createLogger", () => {
  test("writes one JSON object per line with the level name, an ISO time, the message and the fields", () => {
    const { lines, options } = collect();
    const log = createLogger("info", options);
    log.info("viewer connected", { viewer: 3, viewers: 1 });
    const [line] = parse(lines);
    expect(line).toMatchObject({ level: "info", msg: "viewer connected", viewer: 3, viewers: 1, pid: process.pid });
    expect(new Date(line!.time as string).toISOString()).toBe(line!.time);
  });

  test("drops lines below its level and keeps the others", () => {
    const { lines, options } = collect();
    const log = createLogger("warn", options);
    log.debug("d");
    log.info("i");
    log.warn("w");
    log.error("e", { error: "boom" });
    expect(parse(lines).map((l) => [l.level, l.msg])).toEqual([
      ["warn", "w"],
      ["error", "e"],
    ]);
  });

  test("a child adds its fields to every line, and a child of a child adds more", () => {
    const { lines, options } = collect();
    const stream = createLogger("debug", options).child({ stream: "cam0" });
    stream.child({ mode: "ws", remote: "127.0.0.1" }).info("viewer disconnected", { code: 1000, reason: "" });
    stream.debug("pipeline started");
    expect(parse(lines)).toMatchObject([
      { level: "info", msg: "viewer disconnected", stream: "cam0", mode: "ws", remote: "127.0.0.1", code: 1000, reason: "" },
      { level: "debug", msg: "pipeline started", stream: "cam0" },
    ]);
  });

  test("never writes tokens, authorization headers or token query parameters", () => {
    const { lines, options } = collect();
    const log = createLogger("info", options);
    log.info("a", { token: "s3cret-1", headers: { authorization: "Bearer s3cret-2", cookie: "t=s3cret-3", host: "cam.test" } });
    log.child({ url: "/ws/cam0?meta=1&token=s3cret-4" }).info("b", { url: "/api/streams?access_token=s3cret-5#x" });
    log.child({ token: "s3cret-6" }).warn("c", { request: { authorization: "s3cret-7" } });
    const text = lines.join("");
    expect(text).not.toMatch(/s3cret/);
    const [a, b, c] = parse(lines);
    expect(a).toMatchObject({ token: "[redacted]", headers: { authorization: "[redacted]", cookie: "[redacted]", host: "cam.test" } });
    expect(b!.url).toBe("/api/streams?access_token=[redacted]#x");
    expect(c).toMatchObject({ token: "[redacted]", request: { authorization: "[redacted]" } });
  });

  test("readable lines for a terminal: one line per event with the level, message and fields", () => {
    const { lines, options } = collect({ pretty: true, colorize: false });
    const log = createLogger("info", options).child({ stream: "cam0" });
    log.warn("viewer closed: too slow", { viewer: 2, token: "s3cret" });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN \(\d+\): viewer closed: too slow \{.*"stream":"cam0".*"viewer":2.*\}\n$/);
    expect(lines[0]).not.toContain("s3cret");
  });

  test("errorFields: an Error's message and stack, anything else as text, and never throws", () => {
    const err = new RangeError("out of range");
    expect(errorFields(err)).toEqual({ error: "out of range", stack: err.stack });
    expect(errorFields(err).stack).toMatch(/^RangeError: out of range\n\s+at /);
    expect(errorFields("plain string")).toEqual({ error: "plain string" });
    expect(errorFields(42)).toEqual({ error: "42" });
    expect(errorFields(undefined)).toEqual({ error: "undefined" });
    // String() throws on these: still a field.
    expect(typeof errorFields(Object.create(null)).error).toBe("string");
    expect(typeof errorFields(Symbol("s")).error).toBe("string");
    // The stack survives the logger as one JSON line.
    const { lines, options } = collect();
    createLogger("info", options).error("boom", { viewer: 1, ...errorFields(err) });
    expect(parse(lines)[0]).toMatchObject({ level: "error", viewer: 1, error: "out of range", stack: err.stack });
  });

  test("isLogLevel accepts the four levels only", () => {
    expect(["debug", "info", "warn", "error"].every(isLogLevel)).toBe(true);
    expect(isLogLevel("trace")).toBe(false);
    expect(isLogLevel("INFO")).toBe(false);
  });
});
