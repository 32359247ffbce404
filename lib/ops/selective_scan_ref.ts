/**
 * Selective scan written with plain tfjs ops: the readable oracle for the kernels (tests and benchmarks only).
 *
 * Dimension letters (used by every file in `lib/ops`): `b` batch (MERba: images·windows·scan orders),
 * `d` channels (the mixer's inner width), `l` sequence length (tokens of a window, `ws²`), `n` state size
 * (Mamba's `d_state`, the paper's `N`). Layout is PyTorch's `(b, d, l)` throughout, as in mamba.
 *
 * It follows `selective_scan_ref` of state-spaces/mamba (`mamba_ssm/ops/selective_scan_interface.py`, commit
 * e9594ce1), see `/work/shared/reference/merba-model.md` §2:
 *
 *   Δ[t]      = softplus(delta[t] + deltaBias)            (softplus only when deltaSoftplus)
 *   ā[t, n]   = exp(Δ[t] · A[n])                           zero-order hold for A
 *   b̄[t, n]   = Δ[t] · B[n, t] · u[t]                      Euler step for B
 *   h[t]      = ā[t] ⊙ h[t−1] + b̄[t],  h[0] = 0
 *   y[t]      = Σ_n C[n, t] · h[t, n]
 *   out[t]    = (y[t] + D · u[t]) · silu(z[t])             (D and z optional)
 *
 * The loop over `t` is unrolled into `l` small tfjs ops, so it is slow (seconds at MERba sizes) but every
 * step is an ordinary differentiable op: `tf.grad` through it is the autodiff oracle for the kernels'
 * hand-written backward pass.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** Optional arguments shared by {@link selectiveScanRef} and `selectiveScan`. */
export interface SelectiveScanOptions {
  /** Skip connection weight, `[d]`: `out += D · u`. */
  D?: tf.Tensor1D;
  /** Gate, `[b, d, l]`: `out *= silu(z)`. */
  z?: tf.Tensor3D;
  /** Added to `delta` before the softplus, `[d]`. */
  deltaBias?: tf.Tensor1D;
  /** Apply `softplus` to `delta + deltaBias` (Mamba's `delta_softplus`). @default false */
  deltaSoftplus?: boolean;
  /** Also return the state after the last step, `[b, d, n]`. @default false */
  returnLastState?: boolean;
}

/** Output of a selective scan called with `returnLastState: true`. */
export interface SelectiveScanResult {
  /** `[b, d, l]` */
  out: tf.Tensor3D;
  /** `h[l]`, `[b, d, n]` */
  lastState: tf.Tensor3D;
}

/**
 * Selective scan from tfjs ops (the oracle). Same arguments, shapes and result as `selectiveScan`, without
 * argument validation; works on every backend and is differentiable by tfjs autodiff.
 *
 * @param u input `[b, d, l]`
 * @param delta step size before bias/softplus `[b, d, l]`
 * @param A state matrix (diagonal, per channel) `[d, n]`, usually negative
 * @param B input projection `[b, n, l]`
 * @param C output projection `[b, n, l]`
 * @returns `out [b, d, l]`, or `{ out, lastState [b, d, n] }` with `returnLastState`
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { selectiveScanRef } from "./selective_scan_ref.ts";
 * await tf.setBackend("cpu");
 * // one channel, one state, A = 0 (no decay), B = C = 1, Δ = 1: the scan is a cumulative sum of u
 * const out = selectiveScanRef(
 *   tf.tensor3d([[[1, 2, 3]]]), tf.ones([1, 1, 3]), tf.zeros([1, 1]), tf.ones([1, 1, 3]), tf.ones([1, 1, 3]),
 * ) as tf.Tensor3D;
 * console.assert(out.dataSync().join() === "1,3,6");
 * ```
 */
export function selectiveScanRef(
  u: tf.Tensor3D,
  delta: tf.Tensor3D,
  A: tf.Tensor2D,
  B: tf.Tensor3D,
  C: tf.Tensor3D,
  options: SelectiveScanOptions = {},
): tf.Tensor3D | SelectiveScanResult {
  const { D, z, deltaBias, deltaSoftplus = false, returnLastState = false } = options;
  const [b, d, l] = u.shape;
  const n = A.shape[1];
  const result = tf.tidy(() => {
    // Δ = softplus(delta + deltaBias): [b, d, l]
    let dt: tf.Tensor3D = deltaBias ? tf.add(delta, deltaBias.reshape([1, d, 1])) : delta;
    if (deltaSoftplus) dt = tf.softplus(dt);
    // ā = exp(Δ ⊗ A): [b, d, l, 1] · [1, d, 1, n] -> [b, d, l, n]
    const deltaA = tf.exp(tf.mul(dt.reshape([b, d, l, 1]), A.reshape([1, d, 1, n])));
    // b̄ = Δ · u · B: [b, d, l, 1] · [b, 1, l, n] -> [b, d, l, n]   (B: [b, n, l] -> [b, l, n])
    const Bt = tf.transpose(B, [0, 2, 1]).reshape([b, 1, l, n]);
    const deltaBu = tf.mul(tf.mul(dt, u).reshape([b, d, l, 1]), Bt);
    const Ct = tf.transpose(C, [0, 2, 1]).reshape([b, 1, l, n]); // [b, 1, l, n]
    // tfjs's unstack gradient fails for a single slice, hence the l = 1 case
    const steps = (x: tf.Tensor) => (l === 1 ? [tf.squeeze(x, [2])] : tf.unstack(x, 2)) as tf.Tensor3D[];
    const aSteps = steps(deltaA); // l × [b, d, n]
    const bSteps = steps(deltaBu);
    const cSteps = steps(Ct); // l × [b, 1, n]
    let h: tf.Tensor3D = tf.zeros([b, d, n]);
    const ys: tf.Tensor2D[] = [];
    for (let t = 0; t < l; t++) {
      // h[t] = ā[t] ⊙ h[t−1] + b̄[t]
      h = tf.add(tf.mul(aSteps[t], h), bSteps[t]);
      // y[t] = Σ_n C[n, t] h[t, n]: [b, d]
      ys.push(tf.sum(tf.mul(h, cSteps[t]), 2));
    }
    // [b, d, l] (tf.stack rejects a single tensor, hence the l = 1 case)
    let out: tf.Tensor3D = (l === 1 ? tf.expandDims(ys[0], 2) : tf.stack(ys, 2)) as tf.Tensor3D;
    // out = y + D·u
    if (D) out = tf.add(out, tf.mul(u, D.reshape([1, d, 1])));
    // out = out · silu(z),  silu(z) = z·σ(z)
    if (z) out = tf.mul(out, tf.mul(z, tf.sigmoid(z)));
    return { out, lastState: h };
  });
  if (returnLastState) return result;
  result.lastState.dispose();
  return result.out;
}
