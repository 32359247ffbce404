/**
 * Hidden attention of a selective scan (Ali, Zimerman, Wolf, "The Hidden Attention of Mamba Models",
 * arXiv 2403.01590): the scan is a causal, data-dependent linear attention, per channel `d`
 *
 *   y[t] = Σ_{s ≤ t} α[t, s] · u[s]
 *   α[t, s] = Σ_n C[n, t] · exp(A[n] · (S[t] − S[s])) · Δ[s] · B[n, s],   S[t] = Σ_{k ≤ t} Δ[k]
 *
 * (merba-model.md §6). The prefix-sum difference `S[t] − S[s] ≥ 0` is used directly (so `exp ≤ 1` for
 * A < 0); it is never split into `exp(A·S[t])·exp(−A·S[s])`, which overflows. Cost `O(b·d·l²·n)`: meant for
 * window-sized sequences (`l = ws² ≤ 196`), for plots. Dimension letters as in `selective_scan_ref.ts`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { checkSelectiveScanArgs } from "./selective_scan.ts";

/** Options of {@link scanHiddenAttention}. */
export interface HiddenAttentionOptions {
  /** Skip weight `[d]`: added on the diagonal, `α[t, t] += D` (then `y` includes `D·u`). */
  D?: tf.Tensor1D;
  /** Added to `delta` before the softplus, `[d]`. */
  deltaBias?: tf.Tensor1D;
  /** Apply softplus to `delta + deltaBias`. @default false */
  deltaSoftplus?: boolean;
}

/**
 * The hidden-attention matrices `α [b, d, l, l]` of a selective scan (`α[.., t, s]`: weight of input step
 * `s` in output step `t`; zero for `s > t`). `α` does not depend on `u`; pass `u` (or null) only to have
 * its shape checked. The gate `z` is not part of `α`.
 *
 * @param u scan input `[b, d, l]`, or null/undefined
 * @param delta `[b, d, l]`; A `[d, n]`; B, C `[b, n, l]` (same layouts as `selectiveScan`)
 * @returns `α [b, d, l, l]` (a new tensor; the caller disposes it)
 * @throws {TypeError} on a wrong rank, shape or dtype (names the argument).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { scanHiddenAttention } from "./hidden_attention.ts";
 * await tf.setBackend("cpu");
 * // A = 0, B = C = Δ = 1: every earlier step has weight 1 (a cumulative sum)
 * const alpha = scanHiddenAttention(null, tf.ones([1, 1, 3]), tf.zeros([1, 1]), tf.ones([1, 1, 3]), tf.ones([1, 1, 3]));
 * console.assert(alpha.dataSync().join() === "1,0,0,1,1,0,1,1,1");
 * ```
 */
export function scanHiddenAttention(
  u: tf.Tensor3D | null | undefined,
  delta: tf.Tensor3D,
  A: tf.Tensor2D,
  B: tf.Tensor3D,
  C: tf.Tensor3D,
  options: HiddenAttentionOptions = {},
): tf.Tensor4D {
  const { D, deltaBias } = options;
  checkSelectiveScanArgs(u ?? delta, delta, A, B, C, { D, deltaBias });
  // data are host-side on cpu and wasm: loops; on webgpu tfjs ops keep the work on the device
  if (["cpu", "wasm"].includes(tf.getBackend())) return hiddenAttentionLoops(delta, A, B, C, options);
  return hiddenAttentionOps(delta, A, B, C, options);
}

/**
 * {@link scanHiddenAttention} from tfjs ops (any backend; used on webgpu). Arguments are not
 * validated here.
 */
export function hiddenAttentionOps(
  delta: tf.Tensor3D,
  A: tf.Tensor2D,
  B: tf.Tensor3D,
  C: tf.Tensor3D,
  options: HiddenAttentionOptions = {},
): tf.Tensor4D {
  const { D, deltaBias, deltaSoftplus = false } = options;
  const [b, d, l] = delta.shape;
  const n = A.shape[1];
  return tf.tidy(() => {
    // Δ = softplus(delta + deltaBias): [b, d, l]
    let dt: tf.Tensor3D = deltaBias ? tf.add(delta, deltaBias.reshape([1, d, 1])) : delta;
    if (deltaSoftplus) dt = tf.softplus(dt);
    // S[t] = Σ_{k≤t} Δ[k];  S[t] − S[s] as [b, d, l(t), l(s)], clamped at 0 above the diagonal (masked below)
    const S = tf.cumsum(dt, 2);
    const diff = tf.relu(tf.sub(S.reshape([b, d, l, 1]), S.reshape([b, d, 1, l])));
    // causal mask: s ≤ t
    const mask = tf.linalg.bandPart(tf.ones([l, l]), -1, 0).reshape([1, 1, l, l]);
    const dtRow = dt.reshape([b, d, 1, l]); // Δ[s]
    const As = tf.unstack(A, 1); // n × [d]
    const Bs = tf.unstack(B, 1); // n × [b, l]
    const Cs = tf.unstack(C, 1);
    let alpha: tf.Tensor4D = tf.zeros([b, d, l, l]);
    for (let k = 0; k < n; k++) {
      // C[k, t] · exp(A[k]·(S[t] − S[s])) · Δ[s]·B[k, s]
      const decay = tf.exp(tf.mul(diff, As[k].reshape([1, d, 1, 1])));
      const left = Cs[k].reshape([b, 1, l, 1]);
      const right = tf.mul(dtRow, Bs[k].reshape([b, 1, 1, l]));
      alpha = tf.add(alpha, tf.mul(tf.mul(decay, left), right));
    }
    alpha = tf.mul(alpha, mask);
    // D on the diagonal: y[t] += D·u[t]
    if (D) alpha = tf.add(alpha, tf.mul(tf.eye(l).reshape([1, 1, l, l]), D.reshape([1, d, 1, 1])));
    return alpha;
  });
}

/**
 * {@link scanHiddenAttention} as typed-array loops on the cpu and wasm backends (float64 prefix sums and
 * accumulation; about 20–50× faster than the tfjs-ops form there). Arguments are not validated here.
 */
export function hiddenAttentionLoops(
  delta: tf.Tensor3D,
  A: tf.Tensor2D,
  B: tf.Tensor3D,
  C: tf.Tensor3D,
  options: HiddenAttentionOptions = {},
): tf.Tensor4D {
  const { D, deltaBias, deltaSoftplus = false } = options;
  const [b, d, l] = delta.shape;
  const n = A.shape[1];
  const dl = delta.dataSync();
  const a = A.dataSync();
  const bb = B.dataSync();
  const cc = C.dataSync();
  const dd = D?.dataSync();
  const bias = deltaBias?.dataSync();
  const alpha = new Float32Array(b * d * l * l);
  const dt = new Float64Array(l);
  const S = new Float64Array(l);
  for (let bi = 0; bi < b; bi++) {
    const bBase = bi * n * l;
    for (let di = 0; di < d; di++) {
      const lane = (bi * d + di) * l;
      // Δ[t] and S[t] = Σ_{k≤t} Δ[k]
      let acc = 0;
      for (let t = 0; t < l; t++) {
        let x = dl[lane + t] + (bias ? bias[di] : 0);
        if (deltaSoftplus) x = x > 20 ? x : Math.log1p(Math.exp(x));
        dt[t] = x;
        acc += x;
        S[t] = acc;
      }
      const out = (bi * d + di) * l * l;
      for (let t = 0; t < l; t++) {
        for (let s = 0; s <= t; s++) {
          // α[t, s] = Σ_n C[n, t] · exp(A[n]·(S[t] − S[s])) · Δ[s]·B[n, s]
          const diff = S[t] - S[s];
          let v = 0;
          for (let k = 0; k < n; k++) {
            v += cc[bBase + k * l + t] * Math.exp(a[di * n + k] * diff) * bb[bBase + k * l + s];
          }
          alpha[out + t * l + s] = v * dt[s];
        }
        if (dd) alpha[out + t * l + t] += dd[di];
      }
    }
  }
  return tf.tensor4d(alpha, [b, d, l, l]);
}
