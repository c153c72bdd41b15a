import { expect } from "vitest";

/** Runs fn and returns what it threw; fails when it does not throw. */
export function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error("expected a throw");
}

/** Asserts fn throws an instance of `type` with the stable `code`, and returns it. */
export function expectErrorCode<E extends Error & { readonly code: string }>(
  fn: () => unknown,
  type: abstract new (...args: never[]) => E,
  code: string,
): E {
  const err = catchError(fn);
  expect(err).toBeInstanceOf(type);
  expect((err as E).code).toBe(code);
  return err as E;
}
