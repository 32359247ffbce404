/** Thin assertion helpers over node:assert/strict (JSR's @std/assert is unreachable here). */
import assert from "node:assert/strict";

export const ok: (v: unknown, msg?: string) => asserts v = assert.ok;
export function assertEquals<T>(a: T, b: T, msg?: string): void {
  assert.deepStrictEqual(a, b, msg);
}
/** Asserts `fn` throws an instance of `cls` whose message includes `includes`. */
export function assertThrows(fn: () => unknown, cls: new (...a: never[]) => Error, includes?: string): Error {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${(e as Error)?.constructor?.name}: ${e}`);
    if (includes) {
      assert.ok(
        (e as Error).message.includes(includes),
        `message "${(e as Error).message}" lacks "${includes}"`,
      );
    }
    return e as Error;
  }
  throw new assert.AssertionError({ message: `expected ${cls.name} to be thrown` });
}
/** Async variant of {@link assertThrows}. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  cls: new (...a: never[]) => Error,
  includes?: string,
): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${(e as Error)?.constructor?.name}: ${e}`);
    if (includes) {
      assert.ok(
        (e as Error).message.includes(includes),
        `message "${(e as Error).message}" lacks "${includes}"`,
      );
    }
    return e as Error;
  }
  throw new assert.AssertionError({ message: `expected ${cls.name} to be rejected` });
}
