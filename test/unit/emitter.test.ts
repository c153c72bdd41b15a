import { describe, expect, test } from "vitest";
import { Emitter } from "../../shared/emitter.js";

interface Events {
  tick: number;
  name: string;
  [key: string]: unknown;
}

describe("Emitter", () => {
  test("every listener gets the payload, in the order added", () => {
    const e = new Emitter<Events>(() => undefined);
    const got: string[] = [];
    e.on("tick", (n) => got.push(`a${n}`));
    e.on("tick", (n) => got.push(`b${n}`));
    e.on("name", (s) => got.push(`name:${s}`));
    e.emit("tick", 1);
    e.emit("name", "x");
    expect(got).toEqual(["a1", "b1", "name:x"]);
  });

  test("a throwing listener does not stop the others, and its error reaches onListenerError", () => {
    const errors: unknown[] = [];
    const e = new Emitter<Events>((err) => errors.push(err));
    const got: number[] = [];
    const boom = new Error("boom");
    e.on("tick", (n) => got.push(n));
    e.on("tick", () => {
      throw boom;
    });
    e.on("tick", (n) => got.push(n * 10));
    e.emit("tick", 2);
    e.emit("tick", 3);
    expect(got).toEqual([2, 20, 3, 30]);
    expect(errors).toEqual([boom, boom]);
  });

  test("onListenerError is told which event's listener threw", () => {
    const seen: [unknown, keyof Events][] = [];
    const e = new Emitter<Events>((err, event) => seen.push([err, event]));
    e.on("name", () => {
      throw new TypeError("bad name");
    });
    e.emit("name", "x");
    expect(seen).toHaveLength(1);
    expect(seen[0]![1]).toBe("name");
    expect(seen[0]![0]).toBeInstanceOf(TypeError);
  });

  test("the function returned by on() removes that listener only", () => {
    const e = new Emitter<Events>(() => undefined);
    const got: string[] = [];
    const offA = e.on("tick", (n) => got.push(`a${n}`));
    e.on("tick", (n) => got.push(`b${n}`));
    e.emit("tick", 1);
    offA();
    offA(); // twice is harmless
    e.emit("tick", 2);
    expect(got).toEqual(["a1", "b1", "b2"]);
  });

  test("a listener removed during emit is still called for that emit; one added is not", () => {
    const e = new Emitter<Events>(() => undefined);
    const got: string[] = [];
    let offB: () => void = () => undefined;
    e.on("tick", () => {
      got.push("a");
      offB();
      e.on("tick", () => got.push("late"));
    });
    offB = e.on("tick", () => got.push("b"));
    e.emit("tick", 0);
    expect(got).toEqual(["a", "b"]);
  });

  test("off() and removeAllListeners()", () => {
    const e = new Emitter<Events>(() => undefined);
    const got: number[] = [];
    const listener = (n: number): void => {
      got.push(n);
    };
    e.on("tick", listener);
    e.off("tick", listener);
    e.emit("tick", 1);
    e.on("tick", listener);
    e.removeAllListeners();
    e.emit("tick", 2);
    e.emit("name", "nobody listens");
    expect(got).toEqual([]);
  });
});
