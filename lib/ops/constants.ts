/**
 * Constants that stay on the device, and reductions whose gradient needs no host-made tensor.
 *
 * Why: on webgpu every tensor made from JavaScript values is written to a staging buffer and copied to the
 * GPU the first time a kernel reads it. tfjs makes such tensors inside ordinary ops — `tf.mul(x, 0.9)` turns
 * `0.9` into a fresh scalar, and the gradients of `tf.sum` / `tf.mean` multiply `dy` by a fresh
 * `tf.ones(x.shape)` (200–400 KB a step for merba-tiny's token means at batch 32) — so a training step
 * uploaded ≈ 25 tensors. On an NVIDIA H100 (Vulkan through Deno's WebGPU) mapping those staging buffers took
 * ≈ a fifth of a step's host time (BENCHMARKS.md, ninth session). {@link cachedScalar} keeps one device copy
 * per backend and value; {@link sumAxis} / {@link meanAxis} broadcast `dy` instead of multiplying by ones
 * (on cpu/wasm they are plain `tf.sum` / `tf.mean`, bit for bit).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** Entries per backend; past this, constants are made fresh (tidied by the caller) rather than cached. */
const CACHE_LIMIT = 1024;
const caches = new WeakMap<tf.KernelBackend, Map<string, tf.Tensor>>();

function cached<T extends tf.Tensor>(key: string, make: () => T): T {
  const backend = tf.backend();
  let cache = caches.get(backend);
  if (!cache) caches.set(backend, cache = new Map());
  const hit = cache.get(key);
  if (hit && !hit.isDisposed) return hit as T;
  if (!hit && cache.size >= CACHE_LIMIT) return make();
  const t = tf.keep(make());
  cache.set(key, t);
  return t;
}

/** A number's cache key; keeps −0 apart from 0 (they differ as factors). */
const numKey = (v: number) => (Object.is(v, -0) ? "-0" : String(v));

/**
 * A scalar constant on the active backend, made once per backend and value (no upload per use on webgpu).
 * The tensor belongs to the cache: use it as an operand, do not dispose it (a disposed entry is remade).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { cachedScalar } from "./constants.ts";
 * await tf.setBackend("cpu");
 * const y = tf.mul(tf.tensor1d([1, 2]), cachedScalar(0.5)); // [0.5, 1]
 * ```
 */
export function cachedScalar(value: number, dtype: "float32" | "int32" = "float32"): tf.Scalar {
  return cached(`s:${dtype}:${numKey(value)}`, () => tf.scalar(value, dtype));
}

/** A 1-D constant on the active backend (e.g. a label map), made once per backend and content. */
export function cachedTensor1d(
  values: ArrayLike<number>,
  dtype: "float32" | "int32" = "float32",
): tf.Tensor1D {
  return cached(
    `v:${dtype}:${Array.from(values, numKey).join(",")}`,
    () => tf.tensor1d(values as number[], dtype),
  );
}

/** True on tfjs's `cpu` and `wasm` backends (host-memory tensors, where merba runs its JavaScript/SIMD kernels). */
export function jsBackend(): boolean {
  const b = tf.getBackend();
  return b === "cpu" || b === "wasm";
}

function reduce(x: tf.Tensor, axis: number | null, mean: boolean): tf.Tensor {
  const axes = axis === null ? x.shape.map((_, i) => i) : [axis < 0 ? axis + x.rank : axis];
  if (axes.some((a) => a < 0 || a >= x.rank)) {
    throw new RangeError(`${mean ? "meanAxis" : "sumAxis"}: axis ${axis} outside a rank-${x.rank} tensor`);
  }
  const plain = () => (mean ? tf.mean(x, axis ?? undefined) : tf.sum(x, axis ?? undefined));
  if (jsBackend() || x.dtype !== "float32") return plain();
  const count = axes.reduce((n, a) => n * x.shape[a], 1);
  const keep = x.shape.map((s, i) => (axes.includes(i) ? 1 : s));
  const f = tf.customGrad(
    ((xx: tf.Tensor) => ({
      value: mean ? tf.mean(xx, axis ?? undefined) : tf.sum(xx, axis ?? undefined),
      // tfjs: dy·ones(x.shape) (÷ count for the mean); the broadcast gives the same values, with no upload
      gradFunc: (dy: tf.Tensor) => {
        const g = tf.broadcastTo(tf.reshape(dy, keep), xx.shape);
        return mean ? tf.div(g, cachedScalar(count)) : g;
      },
    })) as unknown as Parameters<typeof tf.customGrad>[0],
  );
  return f(x);
}

/**
 * `tf.sum(x, axis)` (one axis, or every axis for `null`), whose gradient on webgpu broadcasts `dy` instead of
 * multiplying it by an uploaded ones tensor. Same values as `tf.sum` on every backend; on cpu/wasm it is
 * `tf.sum`.
 *
 * @throws {RangeError} when `axis` is outside `x`'s rank.
 */
export function sumAxis(x: tf.Tensor, axis: number | null): tf.Tensor {
  return reduce(x, axis, false);
}

/** `tf.mean(x, axis)` with the upload-free gradient of {@link sumAxis}. */
export function meanAxis(x: tf.Tensor, axis: number | null): tf.Tensor {
  return reduce(x, axis, true);
}
