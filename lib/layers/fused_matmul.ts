/**
 * Register-blocked float32 matrix products for the cpu backend's fused linear layer (`fused.ts`).
 *
 * `y = x·W + b` with `x [n, K]` row-major and `W [K, o]` is computed as dot products over the contiguous
 * `K` axis of `x` and of `Wᵀ [o, K]` (a copy of the small weight matrix, `K·o` floats): each inner
 * iteration loads 4 rows of `x` and 2 rows of `Wᵀ` and does 8 multiply-adds into 8 register accumulators,
 * and every output element is stored once. The previous loop (`y[r, :] += x[r, k]·W[k, :]`) loaded and
 * stored 4 output elements per 4 multiply-adds. Accumulation is in float64 (JS numbers), rounded to
 * float32 once per output, so results differ from tfjs's `MatMul` kernel only by float32 rounding
 * (|Δ| ≤ γ_K·Σ_k|x_k·w_k|, γ_K = K·2⁻²⁴/(1 − K·2⁻²⁴); tests/layers/fused_matmul_test.ts).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/**
 * `c = a·btᵀ (+ bias)`: `a [m, K]`, `bt [nc, K]` (both row-major, K contiguous), `bias [nc]` → `c [m, nc]`.
 *
 * @example
 * ```ts
 * import { gemmNT } from "./fused_matmul.ts";
 * const c = gemmNT(new Float32Array([1, 2, 3, 4]), new Float32Array([1, 1]), 2, 1, 2); // [[1,2],[3,4]]·[1,1]ᵀ
 * if (c[0] !== 3 || c[1] !== 7) throw new Error();
 * ```
 */
export function gemmNT(
  a: Float32Array,
  bt: Float32Array,
  m: number,
  nc: number,
  K: number,
  bias?: Float32Array,
): Float32Array {
  const c = new Float32Array(m * nc);
  let r = 0;
  for (; r + 4 <= m; r += 4) {
    const a0 = r * K, a1 = a0 + K, a2 = a1 + K, a3 = a2 + K;
    const c0 = r * nc, c1 = c0 + nc, c2 = c1 + nc, c3 = c2 + nc;
    let j = 0;
    for (; j + 2 <= nc; j += 2) {
      const b0 = j * K, b1 = b0 + K;
      let s00 = 0, s01 = 0, s10 = 0, s11 = 0, s20 = 0, s21 = 0, s30 = 0, s31 = 0;
      for (let k = 0; k < K; k++) {
        const w0 = bt[b0 + k], w1 = bt[b1 + k];
        const x0 = a[a0 + k], x1 = a[a1 + k], x2 = a[a2 + k], x3 = a[a3 + k];
        s00 += x0 * w0;
        s01 += x0 * w1;
        s10 += x1 * w0;
        s11 += x1 * w1;
        s20 += x2 * w0;
        s21 += x2 * w1;
        s30 += x3 * w0;
        s31 += x3 * w1;
      }
      if (bias) {
        const v0 = bias[j], v1 = bias[j + 1];
        s00 += v0;
        s10 += v0;
        s20 += v0;
        s30 += v0;
        s01 += v1;
        s11 += v1;
        s21 += v1;
        s31 += v1;
      }
      c[c0 + j] = s00;
      c[c0 + j + 1] = s01;
      c[c1 + j] = s10;
      c[c1 + j + 1] = s11;
      c[c2 + j] = s20;
      c[c2 + j + 1] = s21;
      c[c3 + j] = s30;
      c[c3 + j + 1] = s31;
    }
    for (; j < nc; j++) {
      const b0 = j * K;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let k = 0; k < K; k++) {
        const w0 = bt[b0 + k];
        s0 += a[a0 + k] * w0;
        s1 += a[a1 + k] * w0;
        s2 += a[a2 + k] * w0;
        s3 += a[a3 + k] * w0;
      }
      const v = bias ? bias[j] : 0;
      c[c0 + j] = s0 + v;
      c[c1 + j] = s1 + v;
      c[c2 + j] = s2 + v;
      c[c3 + j] = s3 + v;
    }
  }
  for (; r < m; r++) {
    const a0 = r * K, c0 = r * nc;
    for (let j = 0; j < nc; j++) {
      const b0 = j * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += a[a0 + k] * bt[b0 + k];
      c[c0 + j] = s + (bias ? bias[j] : 0);
    }
  }
  return c;
}

/** Row-major transpose: `x [rows, cols]` → `[cols, rows]`. */
export function transposeJs(x: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < cols; c++) t[c * rows + r] = x[o + c];
  }
  return t;
}

/**
 * `y = x·W (+ b)`: `x [n, i]`, `W [i, o]`, `b [o]` → `y [n, o]` (row-major Float32Arrays).
 *
 * @example
 * ```ts
 * import { matmulRowsJs } from "./fused_matmul.ts";
 * const y = matmulRowsJs(new Float32Array([1, 2]), new Float32Array([3, 4]), 1, 2, 1); // [1,2]·[3,4]ᵀ
 * if (y[0] !== 11) throw new Error();
 * ```
 */
export function matmulRowsJs(
  x: Float32Array,
  w: Float32Array,
  n: number,
  i: number,
  o: number,
  bias?: Float32Array,
): Float32Array {
  return gemmNT(x, transposeJs(w, i, o), n, o, i, bias);
}

// ---------- optional: XNNPACK matmul of tfjs's wasm backend, called from cpu-backend kernels ----------

interface WasmMM {
  backend: tf.KernelBackend;
  kernel: tf.KernelFunc;
}
let wasmMM: WasmMM | null = null;

/**
 * Opt-in: lets the cpu backend's fused linear layers (`fusedLinear`, `fusedConv3x3` in `fused.ts`) run their
 * larger matrix products (forward `K ≥ 4`; backward `K·o ≥ 512`), and `fusedAttention` its five batched
 * products (`Q·Kᵀ`, `P·V`, `Pᵀ·dO`, `dO·Vᵀ`, `dS·K`, `dSᵀ·Q`), through the `BatchMatMul` kernel of tfjs's
 * wasm backend (XNNPACK, SIMD): operands are copied into the wasm heap and the product copied back, all
 * inside one cpu-side kernel, so tensors stay on the active backend. About 2.6× on the forward and 1.5× on
 * the backward of merba-tiny's linear shapes (BENCHMARKS.md `## Model`). Float32 products in another
 * summation order: same tolerance as the JS kernels (tests/layers/fused_matmul_test.ts).
 *
 * Side effect: imports and initialises `@tensorflow/tfjs-backend-wasm` (registered with a higher priority
 * than cpu, so call `tf.setBackend` explicitly), briefly switching to it and back to the active backend.
 * Returns false (and changes nothing) when the wasm backend cannot be initialised.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { enableWasmMatmul } from "./fused_matmul.ts";
 * await tf.setBackend("cpu");
 * await enableWasmMatmul(); // the linear layers' products now run in XNNPACK
 * ```
 */
export async function enableWasmMatmul(): Promise<boolean> {
  if (wasmMM) return true;
  await import("@tensorflow/tfjs-backend-wasm");
  const prev = tf.getBackend();
  let ok = false;
  try {
    ok = await tf.setBackend("wasm");
  } finally {
    await tf.setBackend(prev);
  }
  const backend = ok ? tf.findBackend("wasm") : null;
  const kernel = tf.getKernel("BatchMatMul", "wasm");
  if (!backend || !kernel) return false;
  wasmMM = { backend, kernel: kernel.kernelFunc };
  return true;
}

/** Turns the wasm matmul path of {@link enableWasmMatmul} off again (the JS kernels run). */
export function disableWasmMatmul(): void {
  wasmMM = null;
}

/** True while {@link enableWasmMatmul}'s path is on. */
export function wasmMatmulEnabled(): boolean {
  return wasmMM !== null;
}

/**
 * Batched `op(a)·op(b)` through the wasm backend's BatchMatMul: `a [batch, m, K]` (`[batch, K, m]` when
 * `ta`), `b [batch, K, nc]` (`[batch, nc, K]` when `tb`) → `[batch, m, nc]`.
 */
function wasmGemm(
  mm: WasmMM,
  a: Float32Array,
  b: Float32Array,
  m: number,
  K: number,
  nc: number,
  batch = 1,
  ta = false,
  tb = false,
): Float32Array {
  const be = mm.backend;
  const sa = ta ? [batch, K, m] : [batch, m, K];
  const sb = tb ? [batch, nc, K] : [batch, K, nc];
  const A = { dataId: be.write(a, sa, "float32"), shape: sa, dtype: "float32" as const };
  const B = { dataId: be.write(b, sb, "float32"), shape: sb, dtype: "float32" as const };
  let out: tf.TensorInfo | null = null;
  try {
    out = mm.kernel({
      inputs: { a: A, b: B },
      attrs: { transposeA: ta, transposeB: tb },
      backend: be,
    }) as tf.TensorInfo;
    return Float32Array.from(be.readSync(out.dataId) as Float32Array);
  } finally {
    be.disposeData(A.dataId);
    be.disposeData(B.dataId);
    if (out) be.disposeData(out.dataId);
  }
}

/**
 * Batched matrix product through the wasm path when it is on, else `null`: `a [batch, m, K]` (stored
 * `[batch, K, m]` when `transposeA`), `b [batch, K, nc]` (stored `[batch, nc, K]` when `transposeB`) →
 * `[batch, m, nc]` (used by `fusedAttention`).
 */
export function batchMatMulWasm(
  a: Float32Array,
  b: Float32Array,
  batch: number,
  m: number,
  K: number,
  nc: number,
  transposeA = false,
  transposeB = false,
): Float32Array | null {
  if (!wasmMM) return null;
  return wasmGemm(wasmMM, a, b, m, K, nc, batch, transposeA, transposeB);
}

/**
 * Forward product through the wasm path when it is on and worthwhile (`i ≥ 4`), else `null`.
 * `x [n, i] · W [i, o] (+ b)` → `[n, o]`.
 */
export function matmulRowsWasm(
  x: Float32Array,
  w: Float32Array,
  n: number,
  i: number,
  o: number,
  bias?: Float32Array,
): Float32Array | null {
  if (!wasmMM || i < 4) return null;
  const y = wasmGemm(wasmMM, x, w, n, i, o);
  if (bias) {
    for (let r = 0; r < n; r++) {
      const yo = r * o;
      for (let c = 0; c < o; c++) y[yo + c] += bias[c];
    }
  }
  return y;
}

/**
 * Linear-layer gradients through the wasm path when it is on and worthwhile (`i·o ≥ 512`), else `null`:
 * `dx = dy·Wᵀ [n, i]`, `dW = xᵀ·dy [i, o]`, `db = Σ_rows dy [o]`.
 */
export function linearGradWasm(
  x: Float32Array,
  w: Float32Array,
  dy: Float32Array,
  n: number,
  i: number,
  o: number,
): { dx: Float32Array; dw: Float32Array; db: Float32Array } | null {
  if (!wasmMM || i * o < 512) return null;
  const dx = wasmGemm(wasmMM, dy, transposeJs(w, i, o), n, o, i);
  const dw = wasmGemm(wasmMM, transposeJs(x, n, i), dy, i, n, o);
  const db = new Float32Array(o);
  for (let r = 0; r < n; r++) {
    const g = r * o;
    for (let c = 0; c < o; c++) db[c] += dy[g + c];
  }
  return { dx, dw, db };
}
