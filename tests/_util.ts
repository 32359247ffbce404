/** Shared test helpers (float comparison, GPU gating). Tests must not read ../shared. */
import * as tf from "@tensorflow/tfjs";
import { hasWebGPU } from "../lib/backend.ts";

/** True when a WebGPU adapter exists here; GPU tests use `ignore: !gpu` and print why. */
export const gpu: boolean = await hasWebGPU();
if (!gpu) console.warn("WebGPU tests skipped: no WebGPU adapter on this machine");

/**
 * Asserts |actual - expected| <= atol + rtol * |expected| elementwise (numpy.allclose rule), and reports the
 * worst element with its index.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { atol, rtol, what = "value" }: { atol: number; rtol: number; what?: string },
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${what}: length ${actual.length} != expected ${expected.length}`);
  }
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!Number.isFinite(a) || excess > worstExcess) {
      if (!Number.isFinite(a) && Number.isFinite(e)) {
        throw new Error(`${what}: non-finite ${a} at index ${i} (expected ${e})`);
      }
      if (excess > worstExcess) {
        worstExcess = excess;
        worst = i;
      }
    }
  }
  if (worst >= 0) {
    throw new Error(
      `${what}: index ${worst}: got ${actual[worst]}, expected ${expected[worst]} ` +
        `(|diff| ${
          Math.abs(actual[worst] - expected[worst]).toExponential(3)
        } > atol ${atol} + rtol ${rtol}·|e|)`,
    );
  }
}

/**
 * Runs `fn` with the active backend's `runWebGPUProgram` wrapped, and returns `fn`'s result with the
 * `shaderKey` of every WebGPU program it ran, in order (an empty list on backends without WebGPU programs).
 */
export function recordWebGPUPrograms<T>(fn: () => T): { result: T; keys: string[] } {
  const be = tf.backend() as unknown as {
    runWebGPUProgram?: (p: { shaderKey: string }, ...a: unknown[]) => unknown;
  };
  const orig = be.runWebGPUProgram;
  const keys: string[] = [];
  if (!orig) return { result: fn(), keys };
  be.runWebGPUProgram = (p: { shaderKey: string }, ...a: unknown[]) => {
    keys.push(p.shaderKey);
    return orig.call(be, p, ...a);
  };
  try {
    return { result: fn(), keys };
  } finally {
    be.runWebGPUProgram = orig;
  }
}
