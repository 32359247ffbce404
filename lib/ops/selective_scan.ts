/**
 * The selective scan op: argument checks, dispatch to the registered backend kernels, and the gradient.
 *
 * Kernels: `selective_scan_cpu.ts` (typed-array loops; `selective_scan_wasm.ts` runs the same loops for the
 * `wasm` backend) and `selective_scan_webgpu.ts` (WGSL), all registered
 * under {@link SELECTIVE_SCAN_KERNEL} (forward) and {@link SELECTIVE_SCAN_GRAD_KERNEL} (backward, a reverse
 * scan). The tfjs-ops oracle is `selective_scan_ref.ts`. Dimension letters as in `selective_scan_ref.ts`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { SelectiveScanOptions, SelectiveScanResult } from "./selective_scan_ref.ts";
import "./selective_scan_cpu.ts";
import "./selective_scan_webgpu.ts";
import "./selective_scan_wasm.ts";

export type { SelectiveScanOptions, SelectiveScanResult } from "./selective_scan_ref.ts";

/** tfjs kernel name of the forward scan. Inputs u, delta, A, B, C, D, z, deltaBias; outputs out (+ lastState). */
export const SELECTIVE_SCAN_KERNEL = "MerbaSelectiveScan";
/** tfjs kernel name of the backward scan. Inputs as the forward plus dOut, dLast; outputs the 8 gradients. */
export const SELECTIVE_SCAN_GRAD_KERNEL = "MerbaSelectiveScanGrad";

/** Backends with a registered selective-scan kernel. */
export const SELECTIVE_SCAN_BACKENDS: readonly string[] = ["cpu", "webgpu", "wasm"];

/** Attributes passed to both kernels (absent optional inputs are passed as empty `[0]` tensors). */
export interface SelectiveScanAttrs {
  hasD: boolean;
  hasZ: boolean;
  hasDeltaBias: boolean;
  deltaSoftplus: boolean;
  returnLastState: boolean;
  /** WebGPU only: 0 = automatic choice, 1 = force the sequential kernel, 2 = force the chunked scan. */
  path: number;
}

/** Input names in kernel order. */
export const SELECTIVE_SCAN_INPUTS = ["u", "delta", "A", "B", "C", "D", "z", "deltaBias"] as const;

/** Extra options of {@link selectiveScan} beyond mamba's. */
export interface SelectiveScanKernelOptions extends SelectiveScanOptions {
  /**
   * WebGPU only: `"auto"` picks the chunked associative scan when `l` is long relative to `b·d·n`
   * (see `chunkedScanIsBetter` in `selective_scan_webgpu.ts`); `"sequential"` / `"chunked"` force a path.
   * @default "auto"
   */
  webgpuPath?: "auto" | "sequential" | "chunked";
}

function shapeText(s: readonly number[]): string {
  return `[${s.join(", ")}]`;
}

function checkTensor(
  name: string,
  t: unknown,
  expected: readonly number[],
  letters: string,
): asserts t is tf.Tensor {
  if (!(t instanceof tf.Tensor)) {
    throw new TypeError(
      `selectiveScan: argument '${name}' must be a tf.Tensor of shape ${letters} = ${
        shapeText(expected)
      }, got ${t === null ? "null" : typeof t}`,
    );
  }
  if (t.dtype !== "float32") {
    throw new TypeError(
      `selectiveScan: argument '${name}' must have dtype float32 (shape ${letters} = ${
        shapeText(expected)
      }), got dtype ${t.dtype}`,
    );
  }
  if (t.rank !== expected.length || (t.shape as number[]).some((s: number, i: number) => s !== expected[i])) {
    throw new TypeError(
      `selectiveScan: argument '${name}' must have shape ${letters} = ${shapeText(expected)}, got ${
        shapeText(t.shape)
      }`,
    );
  }
}

/** Validates every argument and returns the sizes; throws a TypeError naming the offending argument. */
export function checkSelectiveScanArgs(
  u: unknown,
  delta: unknown,
  A: unknown,
  B: unknown,
  C: unknown,
  options: SelectiveScanOptions = {},
): { b: number; d: number; l: number; n: number } {
  if (!(u instanceof tf.Tensor) || u.rank !== 3) {
    throw new TypeError(
      `selectiveScan: argument 'u' must be a float32 tf.Tensor of rank 3, shape [b, d, l], got ${
        u instanceof tf.Tensor ? shapeText(u.shape) : u === null ? "null" : typeof u
      }`,
    );
  }
  const [b, d, l] = u.shape;
  checkTensor("u", u, [b, d, l], "[b, d, l]");
  if (!(A instanceof tf.Tensor) || A.rank !== 2) {
    throw new TypeError(
      `selectiveScan: argument 'A' must be a float32 tf.Tensor of rank 2, shape [d, n] = [${d}, n], got ${
        A instanceof tf.Tensor ? shapeText(A.shape) : A === null ? "null" : typeof A
      }`,
    );
  }
  const n = A.shape[1];
  if (l < 1 || d < 1 || b < 1 || n < 1) {
    throw new TypeError(
      `selectiveScan: sizes must be positive, got u ${shapeText(u.shape)} and A ${shapeText(A.shape)}`,
    );
  }
  checkTensor("delta", delta, [b, d, l], "[b, d, l]");
  checkTensor("A", A, [d, n], "[d, n]");
  checkTensor("B", B, [b, n, l], "[b, n, l]");
  checkTensor("C", C, [b, n, l], "[b, n, l]");
  if (options.D != null) checkTensor("D", options.D, [d], "[d]");
  if (options.z != null) checkTensor("z", options.z, [b, d, l], "[b, d, l]");
  if (options.deltaBias != null) checkTensor("deltaBias", options.deltaBias, [d], "[d]");
  return { b, d, l, n };
}

/**
 * Selective scan (Mamba's S6 recurrence) as a tfjs op with hand-written forward and backward kernels for the
 * `cpu`, `webgpu` and `wasm` backends; differentiable with respect to every tensor argument (`tf.grad`,
 * optimizers).
 *
 * For each batch `b`, channel `d`, state `n` and step `t = 1..l` (mamba `selective_scan_ref` semantics,
 * state-spaces/mamba `mamba_ssm/ops/selective_scan_interface.py`):
 *
 *   Δ[t]    = softplus(delta[t] + deltaBias)     (softplus only with `deltaSoftplus`; x > 20 -> x)
 *   h[t]    = exp(Δ[t]·A[n]) · h[t−1] + Δ[t]·B[n,t]·u[t],   h[0] = 0
 *   y[t]    = Σ_n C[n,t] · h[t,n]
 *   out[t]  = (y[t] + D·u[t]) · silu(z[t])       (D and z optional)
 *
 * Layout is PyTorch's: u, delta, z `[b, d, l]`; A `[d, n]`; B, C `[b, n, l]`; D, deltaBias `[d]`.
 * WebGPU runs a fixed number of dispatches per call for the whole batch (forward: the sequential
 * per-channel scan in one dispatch, or the chunked associative scan for long sequences in two; backward: the
 * reverse scan in one or two, plus small reductions), never one per time step. The caller's tensors are
 * not disposed.
 *
 * @returns `out [b, d, l]`, or `{ out, lastState [b, d, n] }` when `returnLastState` is set.
 * @throws {TypeError} when an argument has the wrong rank, shape or dtype (the message names it and the
 *   expected shape).
 * @throws {Error} on a backend without a kernel (supported: cpu, webgpu, wasm).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { selectiveScan } from "./selective_scan.ts";
 * await tf.setBackend("cpu");
 * const [b, d, l, n] = [2, 4, 49, 8];
 * const u = tf.randomNormal([b, d, l]) as tf.Tensor3D;
 * const delta = tf.randomNormal([b, d, l]) as tf.Tensor3D;
 * const A = tf.neg(tf.exp(tf.randomNormal([d, n]))) as tf.Tensor2D; // A < 0: decaying state
 * const B = tf.randomNormal([b, n, l]) as tf.Tensor3D;
 * const C = tf.randomNormal([b, n, l]) as tf.Tensor3D;
 * const { out, lastState } = selectiveScan(u, delta, A, B, C, {
 *   D: tf.ones([d]), deltaSoftplus: true, returnLastState: true,
 * });
 * console.assert(out.shape.join() === "2,4,49" && lastState.shape.join() === "2,4,8");
 * // gradients flow through the kernel
 * const dA = tf.grad((a: tf.Tensor) => selectiveScan(u, delta, a as tf.Tensor2D, B, C).sum())(A);
 * console.assert(dA.shape.join() === "4,8");
 * ```
 */
export function selectiveScan(
  u: tf.Tensor3D,
  delta: tf.Tensor3D,
  A: tf.Tensor2D,
  B: tf.Tensor3D,
  C: tf.Tensor3D,
  options: SelectiveScanKernelOptions & { returnLastState: true },
): SelectiveScanResult;
export function selectiveScan(
  u: tf.Tensor3D,
  delta: tf.Tensor3D,
  A: tf.Tensor2D,
  B: tf.Tensor3D,
  C: tf.Tensor3D,
  options?: SelectiveScanKernelOptions & { returnLastState?: false },
): tf.Tensor3D;
export function selectiveScan(
  u: tf.Tensor3D,
  delta: tf.Tensor3D,
  A: tf.Tensor2D,
  B: tf.Tensor3D,
  C: tf.Tensor3D,
  options?: SelectiveScanKernelOptions,
): tf.Tensor3D | SelectiveScanResult;
export function selectiveScan(
  u: tf.Tensor3D,
  delta: tf.Tensor3D,
  A: tf.Tensor2D,
  B: tf.Tensor3D,
  C: tf.Tensor3D,
  options: SelectiveScanKernelOptions = {},
): tf.Tensor3D | SelectiveScanResult {
  checkSelectiveScanArgs(u, delta, A, B, C, options);
  const backend = tf.getBackend();
  if (!SELECTIVE_SCAN_BACKENDS.includes(backend)) {
    throw new Error(
      `selectiveScan: no kernel for the tfjs backend "${backend}"; supported backends: ${
        SELECTIVE_SCAN_BACKENDS.join(", ")
      } (call tf.setBackend or initBackend({backend: "cpu"}))`,
    );
  }
  const { D, z, deltaBias, deltaSoftplus = false, returnLastState = false, webgpuPath = "auto" } = options;
  if (!["auto", "sequential", "chunked"].includes(webgpuPath)) {
    throw new RangeError(
      `selectiveScan: option webgpuPath must be "auto", "sequential" or "chunked", got ${String(webgpuPath)}`,
    );
  }
  const attrs: SelectiveScanAttrs = {
    hasD: D != null,
    hasZ: z != null,
    hasDeltaBias: deltaBias != null,
    deltaSoftplus: Boolean(deltaSoftplus),
    returnLastState: Boolean(returnLastState),
    path: webgpuPath === "auto" ? 0 : webgpuPath === "sequential" ? 1 : 2,
  };
  // Absent optional inputs travel as fresh empty tensors so that the kernel signature (and the gradient's
  // saved inputs) is fixed; their "gradient" is an empty tensor too.
  const empty: tf.Tensor[] = [];
  const orEmpty = (t: tf.Tensor | undefined) => {
    if (t != null) return t;
    const e = tf.zeros([0]);
    empty.push(e);
    return e;
  };
  const inputs = { u, delta, A, B, C, D: orEmpty(D), z: orEmpty(z), deltaBias: orEmpty(deltaBias) };
  const outs = tf.engine().runKernel(
    SELECTIVE_SCAN_KERNEL,
    inputs as unknown as tf.NamedTensorMap,
    attrs as unknown as tf.NamedAttrMap,
  ) as tf.Tensor[];
  for (const e of empty) e.dispose();
  if (returnLastState) return { out: outs[0] as tf.Tensor3D, lastState: outs[1] as tf.Tensor3D };
  return outs[0] as tf.Tensor3D;
}

tf.registerGradient({
  kernelName: SELECTIVE_SCAN_KERNEL,
  inputsToSave: [...SELECTIVE_SCAN_INPUTS],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs?: tf.NamedAttrMap) => {
    const dys = Array.isArray(dy) ? dy : [dy];
    const u = saved[0];
    const a = attrs as unknown as SelectiveScanAttrs;
    // dOut is null when only lastState reaches the loss; dLast is empty when the loss ignores lastState.
    const dOut = dys[0] ?? tf.zerosLike(u);
    const dLast = dys.length > 1 && dys[1] != null ? dys[1] : tf.zeros([0]);
    const grads = tf.engine().runKernel(
      SELECTIVE_SCAN_GRAD_KERNEL,
      Object.fromEntries([...SELECTIVE_SCAN_INPUTS.map((k, i) => [k, saved[i]]), ["dOut", dOut], [
        "dLast",
        dLast,
      ]]) as tf.NamedTensorMap,
      a as unknown as tf.NamedAttrMap,
    ) as tf.Tensor[];
    return Object.fromEntries(SELECTIVE_SCAN_INPUTS.map((k, i) => [k, () => grads[i]]));
  },
});
