/**
 * Fused layer ops with hand-written typed-array kernels on tfjs's `cpu` backend (tf-ops fallback elsewhere).
 *
 * Why: tfjs-backend-cpu evaluates every broadcasting binary op (bias add, LayerNorm scale, softmax's
 * subtraction), every transpose and several backprop kernels (`Conv2DBackpropFilter`,
 * `DepthwiseConv2dNativeBackpropFilter`) with a per-element index vector (`indexToLoc`/`TensorBuffer.get`),
 * 10–100× slower than a plain loop. merba-tiny trains on the cpu backend, so its hot ops are fused here:
 * one kernel forward, one backward, each a `tf.customGrad`. On `cpu` (and `wasm`) the kernels are the
 * WebAssembly SIMD ones of `layer_simd.ts` where they apply (`setCpuLayerImpl`; channel counts that are
 * multiples of 4 where they vectorise over channels), else the JavaScript loops below. On webgpu the linear
 * layers, LayerNorm, BatchNorm (batch statistics), GELU, SiLU, attention, the depthwise token convolution
 * and the 3×3 convolution run as WGSL kernels (`fused_webgpu.ts`, `setWebGPULayerImpl`) and the others as tf
 * ops. All paths agree to float32 rounding (tests/layers/fused_test.ts, tests/layers/fused_webgpu_test.ts).
 *
 * Shapes are channels-last; `N` = rows (tokens·batch), `C` = channels.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  batchMatMulWasm,
  linearGradWasm,
  matmulRowsJs,
  matmulRowsWasm,
  wasmMatmulEnabled,
} from "./fused_matmul.ts";
import { cachedScalar, jsBackend, meanAxis } from "../ops/constants.ts";
import {
  attentionBackwardSimd,
  attentionForwardSimd,
  conv3x3BackwardSimd,
  conv3x3ForwardSimd,
  dwConv1dBackwardSimd,
  dwConv1dForwardSimd,
  geluBackwardSimd,
  geluForwardSimd,
  layerNormBackwardSimd,
  layerNormForwardSimd,
  layerSimdFor,
  layerSimdOn,
  linearBackwardSimd,
  linearForwardSimd,
  siluBackwardSimd,
  siluForwardSimd,
} from "./layer_simd.ts";
import {
  attentionWebGPU,
  type BatchNormMoving,
  batchNormTrainMovingWebGPU,
  type BatchNormTrainResult,
  batchNormTrainWebGPU,
  conv3x3WebGPU,
  depthwiseConv1dWebGPU,
  geluWebGPU,
  layerNormWebGPU,
  linearWebGPU,
  siluWebGPU,
  webgpuAttentionFor,
  webgpuLayersFor,
  webgpuLinearFor,
} from "./fused_webgpu.ts";

type GradFn = Parameters<typeof tf.customGrad>[0];

/**
 * True when the fused JS kernels run: tfjs `cpu`, and `wasm` (whose kernel set lacks several backprops,
 * e.g. `Conv2DBackpropFilter`; tensors are copied out of and into the wasm heap around each kernel).
 */
export function jsKernels(): boolean {
  return jsBackend();
}

const vals = (t: tf.Tensor) => t.dataSync() as Float32Array;
const make = (data: Float32Array, shape: number[]) => tf.tensor(data, shape, "float32");

// ---------- linear ----------

function matmulJs(x: Float32Array, w: Float32Array, n: number, i: number, o: number, bias?: Float32Array) {
  // XNNPACK when enableWasmMatmul() is on, else K-contiguous dot products, 4 rows × 2 columns per register
  // block (fused_matmul.ts).
  return matmulRowsWasm(x, w, n, i, o, bias) ?? matmulRowsJs(x, w, n, i, o, bias);
}

function linearGradJs(x: Float32Array, w: Float32Array, dy: Float32Array, n: number, i: number, o: number) {
  const viaWasm = linearGradWasm(x, w, dy, n, i, o);
  if (viaWasm) return viaWasm;
  const dx = new Float32Array(n * i);
  const dw = new Float32Array(i * o);
  const db = new Float32Array(o);
  let r = 0;
  for (; r + 4 <= n; r += 4) {
    const y0 = r * o, y1 = y0 + o, y2 = y1 + o, y3 = y2 + o;
    const x0 = r * i, x1 = x0 + i, x2 = x1 + i, x3 = x2 + i;
    for (let c = 0; c < o; c++) db[c] += dy[y0 + c] + dy[y1 + c] + dy[y2 + c] + dy[y3 + c];
    for (let k = 0; k < i; k++) {
      const wo = k * o;
      const a0 = x[x0 + k], a1 = x[x1 + k], a2 = x[x2 + k], a3 = x[x3 + k];
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let c = 0; c < o; c++) {
        const wv = w[wo + c];
        const g0 = dy[y0 + c], g1 = dy[y1 + c], g2 = dy[y2 + c], g3 = dy[y3 + c];
        s0 += g0 * wv;
        s1 += g1 * wv;
        s2 += g2 * wv;
        s3 += g3 * wv;
        dw[wo + c] += a0 * g0 + a1 * g1 + a2 * g2 + a3 * g3;
      }
      dx[x0 + k] = s0;
      dx[x1 + k] = s1;
      dx[x2 + k] = s2;
      dx[x3 + k] = s3;
    }
  }
  for (; r < n; r++) {
    const yo = r * o;
    const xo = r * i;
    for (let c = 0; c < o; c++) db[c] += dy[yo + c];
    for (let k = 0; k < i; k++) {
      const wo = k * o;
      const xv = x[xo + k];
      let s = 0;
      for (let c = 0; c < o; c++) {
        const g = dy[yo + c];
        s += g * w[wo + c];
        dw[wo + c] += xv * g;
      }
      dx[xo + k] = s;
    }
  }
  return { dx, dw, db };
}

/**
 * `y = x·W (+ b)`: `x [..., I]`, `W [I, O]`, `b [O]` → `[..., O]`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { fusedLinear } from "./fused.ts";
 * await tf.setBackend("cpu");
 * const y = fusedLinear(tf.ones([2, 3]), tf.ones([3, 4]), tf.zeros([4]));
 * if (y.dataSync()[0] !== 3) throw new Error();
 * ```
 */
export function fusedLinear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  const [i, o] = w.shape as [number, number];
  const lead = x.shape.slice(0, -1);
  if (x.shape[x.rank - 1] !== i) {
    throw new TypeError(`linear: x [..., ${x.shape.at(-1)}] does not fit W [${w.shape}]`);
  }
  if (!jsKernels()) {
    if (webgpuLinearFor(x.size / i, i, o)) return linearWebGPU(x, w, b);
    // the bias add inside the product: one dispatch fewer per call on webgpu, same float32 operations
    const x2 = x.reshape([-1, i]) as tf.Tensor2D;
    const y = b ? tf.fused.matMul({ a: x2, b: w as tf.Tensor2D, bias: b }) : tf.matMul(x2, w as tf.Tensor2D);
    return y.reshape([...lead, o]);
  }
  const n = x.size / i;
  if (layerSimdOn()) {
    const f = tf.customGrad(
      // (tf.customGrad passes a `save` function after the inputs: the bias is taken from the closure's `b`)
      ((xx: tf.Tensor, ww: tf.Tensor, bb: unknown) => {
        const xv = vals(xx);
        const wv = vals(ww);
        const value = make(linearForwardSimd(xv, wv, b ? vals(bb as tf.Tensor) : null, n, i, o), [
          ...lead,
          o,
        ]);
        const gradFunc = (dy: tf.Tensor) => {
          const g = linearBackwardSimd(xv, wv, vals(dy), n, i, o, b !== undefined);
          const grads = [make(g.dx, xx.shape), make(g.dw, [i, o])];
          return g.db ? [...grads, make(g.db, [o])] : grads;
        };
        return { value, gradFunc };
      }) as unknown as GradFn,
    );
    return b ? f(x, w, b) : f(x, w);
  }
  if (b) {
    const f = tf.customGrad(
      ((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => {
        const xv = vals(xx);
        const wv = vals(ww);
        const value = make(matmulJs(xv, wv, n, i, o, vals(bb)), [...lead, o]);
        const gradFunc = (dy: tf.Tensor) => {
          const g = linearGradJs(xv, wv, vals(dy), n, i, o);
          return [make(g.dx, xx.shape), make(g.dw, [i, o]), make(g.db, [o])];
        };
        return { value, gradFunc };
      }) as unknown as GradFn,
    );
    return f(x, w, b);
  }
  const f = tf.customGrad(
    ((xx: tf.Tensor, ww: tf.Tensor) => {
      const xv = vals(xx);
      const wv = vals(ww);
      const value = make(matmulJs(xv, wv, n, i, o), [...lead, o]);
      const gradFunc = (dy: tf.Tensor) => {
        const g = linearGradJs(xv, wv, vals(dy), n, i, o);
        return [make(g.dx, xx.shape), make(g.dw, [i, o])];
      };
      return { value, gradFunc };
    }) as unknown as GradFn,
  );
  return f(x, w);
}

// ---------- LayerNorm ----------

/** LayerNorm over the last axis: `(x − μ)/√(σ² + ε)·γ + β` (biased variance, PyTorch). */
export function fusedLayerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps = 1e-5): tf.Tensor {
  const c = x.shape[x.rank - 1];
  if (!jsKernels()) {
    if (webgpuLayersFor(x.size / c)) return layerNormWebGPU(x, gamma, beta, eps);
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gamma), beta);
  }
  const n = x.size / c;
  if (layerSimdFor(c)) {
    const f = tf.customGrad(
      ((xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => {
        const xv = vals(xx);
        const gv = vals(gg);
        const [mean, rstd, y] = layerNormForwardSimd(xv, gv, vals(bb), c, eps);
        const gradFunc = (dy: tf.Tensor) => {
          const [dx, dg, db] = layerNormBackwardSimd(xv, vals(dy), gv, mean, rstd, c);
          return [make(dx, xx.shape), make(dg, [c]), make(db, [c])];
        };
        return { value: make(y, xx.shape), gradFunc };
      }) as unknown as GradFn,
    );
    return f(x, gamma, beta);
  }
  const f = tf.customGrad(
    ((xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => {
      const xv = vals(xx);
      const gv = vals(gg);
      const bv = vals(bb);
      const xhat = new Float32Array(xv.length);
      const rstd = new Float32Array(n);
      const y = new Float32Array(xv.length);
      for (let r = 0; r < n; r++) {
        const o = r * c;
        let m = 0;
        for (let j = 0; j < c; j++) m += xv[o + j];
        m /= c;
        let v = 0;
        for (let j = 0; j < c; j++) {
          const d = xv[o + j] - m;
          v += d * d;
        }
        const rs = 1 / Math.sqrt(v / c + eps);
        rstd[r] = rs;
        for (let j = 0; j < c; j++) {
          const h = (xv[o + j] - m) * rs;
          xhat[o + j] = h;
          y[o + j] = h * gv[j] + bv[j];
        }
      }
      const gradFunc = (dy: tf.Tensor) => {
        const g = vals(dy);
        const dx = new Float32Array(xv.length);
        const dg = new Float32Array(c);
        const db = new Float32Array(c);
        for (let r = 0; r < n; r++) {
          const o = r * c;
          let s1 = 0;
          let s2 = 0;
          for (let j = 0; j < c; j++) {
            const gy = g[o + j];
            const dh = gy * gv[j];
            s1 += dh;
            s2 += dh * xhat[o + j];
            dg[j] += gy * xhat[o + j];
            db[j] += gy;
          }
          s1 /= c;
          s2 /= c;
          const rs = rstd[r];
          for (let j = 0; j < c; j++) dx[o + j] = rs * (g[o + j] * gv[j] - s1 - xhat[o + j] * s2);
        }
        return [make(dx, xx.shape), make(dg, [c]), make(db, [c])];
      };
      return { value: make(y, xx.shape), gradFunc };
    }) as unknown as GradFn,
  );
  return f(x, gamma, beta);
}

// ---------- BatchNorm over the last axis ----------

/**
 * BatchNorm in training with the update of its moving statistics: `y` as {@link fusedBatchNorm} with batch
 * statistics, and the new moving mean and variance `old·m + μ·(1 − m)`, `old·m + σ²·n/(n − 1)·(1 − m)` (the
 * unbiased variance; the caller writes them into its variables and disposes them). No gradient reaches the
 * moving statistics. On webgpu the update reads the batch statistics where the WGSL kernel left them (2
 * dispatches instead of 9); elsewhere it is the same elementwise ops as before, bit for bit.
 */
export function fusedBatchNormTrain(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  eps: number,
  moving: BatchNormMoving,
): BatchNormTrainResult {
  const c = x.shape[x.rank - 1];
  const n = x.size / c;
  if (!jsKernels() && webgpuLayersFor(x.size, c)) {
    return batchNormTrainMovingWebGPU(x, gamma, beta, eps, moving);
  }
  const { y, mean, variance } = fusedBatchNorm(x, gamma, beta, eps, { training: true });
  const [movingMean, movingVar] = tf.tidy(() => {
    const m = moving.momentum;
    // cached constants: no scalar uploads per step on webgpu (same values as plain numbers)
    const [cm, c1m] = [cachedScalar(m), cachedScalar(1 - m)];
    const unbiased = tf.mul(variance!, cachedScalar(n > 1 ? n / (n - 1) : 1));
    return [
      tf.add(tf.mul(moving.mean, cm), tf.mul(mean!, c1m)),
      tf.add(tf.mul(moving.variance, cm), tf.mul(unbiased, c1m)),
    ];
  });
  tf.dispose([mean!, variance!]);
  return { y, movingMean, movingVar };
}

/**
 * BatchNorm over the channel (last) axis. `training`: batch statistics (biased variance in the
 * normalisation); returns them for the moving averages. Inference: the given moving statistics.
 */
export function fusedBatchNorm(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  eps: number,
  stats: { training: true } | { training: false; mean: tf.Tensor; variance: tf.Tensor },
): { y: tf.Tensor; mean: tf.Tensor1D | null; variance: tf.Tensor1D | null } {
  const c = x.shape[x.rank - 1];
  const n = x.size / c;
  if (!jsKernels()) {
    if (stats.training) {
      if (webgpuLayersFor(x.size, c)) return batchNormTrainWebGPU(x, gamma, beta, eps);
      const axes = x.shape.map((_, i) => i).slice(0, -1);
      const { mean, variance } = tf.moments(x, axes);
      const y = tf.batchNorm(x, mean, variance, beta, gamma, eps);
      return { y, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
    }
    return { y: tf.batchNorm(x, stats.mean, stats.variance, beta, gamma, eps), mean: null, variance: null };
  }
  let meanOut: Float32Array | undefined;
  let varOut: Float32Array | undefined;
  const f = tf.customGrad(
    ((xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => {
      const xv = vals(xx);
      const gv = vals(gg);
      const bv = vals(bb);
      let mean: Float32Array;
      let variance: Float32Array;
      if (stats.training) {
        const m64 = new Float64Array(c);
        const v64 = new Float64Array(c);
        for (let r = 0; r < n; r++) for (let j = 0; j < c; j++) m64[j] += xv[r * c + j];
        for (let j = 0; j < c; j++) m64[j] /= n;
        for (let r = 0; r < n; r++) {
          for (let j = 0; j < c; j++) {
            const d = xv[r * c + j] - m64[j];
            v64[j] += d * d;
          }
        }
        for (let j = 0; j < c; j++) v64[j] /= n;
        mean = Float32Array.from(m64);
        variance = Float32Array.from(v64);
        meanOut = mean;
        varOut = variance;
      } else {
        mean = vals(stats.mean);
        variance = vals(stats.variance);
      }
      const rstd = variance.map((v) => 1 / Math.sqrt(v + eps));
      const xhat = new Float32Array(xv.length);
      const y = new Float32Array(xv.length);
      for (let r = 0; r < n; r++) {
        for (let j = 0; j < c; j++) {
          const i = r * c + j;
          const h = (xv[i] - mean[j]) * rstd[j];
          xhat[i] = h;
          y[i] = h * gv[j] + bv[j];
        }
      }
      const gradFunc = (dy: tf.Tensor) => {
        const g = vals(dy);
        const dg = new Float32Array(c);
        const db = new Float32Array(c);
        for (let r = 0; r < n; r++) {
          for (let j = 0; j < c; j++) {
            const i = r * c + j;
            dg[j] += g[i] * xhat[i];
            db[j] += g[i];
          }
        }
        const dx = new Float32Array(xv.length);
        for (let r = 0; r < n; r++) {
          for (let j = 0; j < c; j++) {
            const i = r * c + j;
            dx[i] = stats.training
              ? (gv[j] * rstd[j]) * (g[i] - db[j] / n - xhat[i] * dg[j] / n)
              : g[i] * gv[j] * rstd[j];
          }
        }
        return [make(dx, xx.shape), make(dg, [c]), make(db, [c])];
      };
      return { value: make(y, xx.shape), gradFunc };
    }) as unknown as GradFn,
  );
  const y = f(x, gamma, beta);
  return {
    y,
    mean: meanOut ? tf.tensor1d(meanOut) : null,
    variance: varOut ? tf.tensor1d(varOut) : null,
  };
}

// ---------- activations ----------

/** SiLU `x·σ(x)`. */
export function fusedSilu(x: tf.Tensor): tf.Tensor {
  if (!jsKernels()) return webgpuLayersFor(x.size) ? siluWebGPU(x) : tf.mul(x, tf.sigmoid(x));
  if (layerSimdOn()) {
    const f = tf.customGrad(
      ((xx: tf.Tensor) => {
        const xv = vals(xx);
        const gradFunc = (dy: tf.Tensor) => make(siluBackwardSimd(xv, vals(dy)), xx.shape);
        return { value: make(siluForwardSimd(xv), xx.shape), gradFunc };
      }) as unknown as GradFn,
    );
    return f(x);
  }
  const f = tf.customGrad(
    ((xx: tf.Tensor) => {
      const xv = vals(xx);
      const s = new Float32Array(xv.length);
      const y = new Float32Array(xv.length);
      for (let i = 0; i < xv.length; i++) {
        const si = 1 / (1 + Math.exp(-xv[i]));
        s[i] = si;
        y[i] = xv[i] * si;
      }
      const gradFunc = (dy: tf.Tensor) => {
        const g = vals(dy);
        const dx = new Float32Array(xv.length);
        // d/dx x·σ(x) = σ(x)·(1 + x·(1 − σ(x)))
        for (let i = 0; i < xv.length; i++) dx[i] = g[i] * s[i] * (1 + xv[i] * (1 - s[i]));
        return make(dx, xx.shape);
      };
      return { value: make(y, xx.shape), gradFunc };
    }) as unknown as GradFn,
  );
  return f(x);
}

/**
 * ReLU `max(0, x)`, gradient 0 at 0 like tfjs's. (tfjs-backend-cpu's Relu took 2–3 ms per call at the stem's
 * `[32, 14, 14, 16]` in a profiled training step, and its gradient is two more kernels.)
 */
export function fusedRelu(x: tf.Tensor): tf.Tensor {
  if (!jsKernels()) return tf.relu(x);
  const f = tf.customGrad(
    ((xx: tf.Tensor) => {
      const xv = vals(xx);
      const y = new Float32Array(xv.length);
      // NaN passes through, as tfjs-backend-cpu's relu does (a diverged input must stay visible downstream;
      // tfjs-backend-webgpu's relu maps NaN to 0, so there a NaN input is caught by the gradient norm instead)
      for (let i = 0; i < xv.length; i++) y[i] = xv[i] > 0 || xv[i] !== xv[i] ? xv[i] : 0;
      const gradFunc = (dy: tf.Tensor) => {
        const g = vals(dy);
        const dx = new Float32Array(xv.length);
        for (let i = 0; i < xv.length; i++) dx[i] = xv[i] > 0 ? g[i] : 0;
        return make(dx, xx.shape);
      };
      return { value: make(y, xx.shape), gradFunc };
    }) as unknown as GradFn,
  );
  return f(x);
}

const GELU_K = Math.sqrt(2 / Math.PI);

/** GELU, tanh approximation: `½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`. */
export function fusedGelu(x: tf.Tensor): tf.Tensor {
  if (!jsKernels()) {
    if (webgpuLayersFor(x.size)) return geluWebGPU(x);
    const inner = tf.mul(GELU_K, tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
    return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
  }
  if (layerSimdOn()) {
    const f = tf.customGrad(
      ((xx: tf.Tensor) => {
        const xv = vals(xx);
        const gradFunc = (dy: tf.Tensor) => make(geluBackwardSimd(xv, vals(dy)), xx.shape);
        return { value: make(geluForwardSimd(xv), xx.shape), gradFunc };
      }) as unknown as GradFn,
    );
    return f(x);
  }
  const f = tf.customGrad(
    ((xx: tf.Tensor) => {
      const xv = vals(xx);
      const t = new Float32Array(xv.length);
      const y = new Float32Array(xv.length);
      for (let i = 0; i < xv.length; i++) {
        const v = xv[i];
        // tanh(u) = 1 − 2/(e^{2u} + 1): ~1.5× faster than Math.tanh in V8; identical after float32 rounding
        // up to an absolute error ~1e-16 (only t enters y = ½·v·(1 + t) and 1 − t²)
        const ti = 1 - 2 / (Math.exp(2 * GELU_K * (v + 0.044715 * v * v * v)) + 1);
        t[i] = ti;
        y[i] = 0.5 * v * (1 + ti);
      }
      const gradFunc = (dy: tf.Tensor) => {
        const g = vals(dy);
        const dx = new Float32Array(xv.length);
        for (let i = 0; i < xv.length; i++) {
          const v = xv[i];
          const ti = t[i];
          dx[i] = g[i] * (0.5 * (1 + ti) + 0.5 * v * (1 - ti * ti) * GELU_K * (1 + 3 * 0.044715 * v * v));
        }
        return make(dx, xx.shape);
      };
      return { value: make(y, xx.shape), gradFunc };
    }) as unknown as GradFn,
  );
  return f(x);
}

// ---------- depthwise conv along tokens ----------

/**
 * Depthwise 1-D cross-correlation along the token axis with non-causal 'same' padding (⌊(k−1)/2⌋ left),
 * no bias: `x [b, l, c]`, kernel `[1, k, c, 1]` (tfjs depthwise layout) → `[b, l, c]`.
 */
export function fusedDepthwiseConv1d(x: tf.Tensor, kernel: tf.Tensor): tf.Tensor3D {
  const [b, l, c] = x.shape;
  const k = kernel.shape[1] as number;
  if (!jsKernels()) {
    if (webgpuLayersFor(x.size, k * c)) return depthwiseConv1dWebGPU(x, kernel);
    return tf.depthwiseConv2d(x.reshape([b, 1, l, c]) as tf.Tensor4D, kernel as tf.Tensor4D, 1, "same")
      .reshape([b, l, c]);
  }
  const left = Math.floor((k - 1) / 2);
  if (layerSimdFor(c)) {
    const f = tf.customGrad(
      ((xx: tf.Tensor, kk: tf.Tensor) => {
        const xv = vals(xx);
        const w = vals(kk);
        const gradFunc = (dy: tf.Tensor) => {
          const [dx, dw] = dwConv1dBackwardSimd(xv, w, vals(dy), b, l, c, k, left);
          return [make(dx, xx.shape), make(dw, kk.shape)];
        };
        return { value: make(dwConv1dForwardSimd(xv, w, b, l, c, k, left), xx.shape), gradFunc };
      }) as unknown as GradFn,
    );
    return f(x, kernel) as tf.Tensor3D;
  }
  const f = tf.customGrad(
    ((xx: tf.Tensor, kk: tf.Tensor) => {
      const xv = vals(xx);
      const w = vals(kk); // (j, c)
      const y = new Float32Array(xv.length);
      for (let s = 0; s < b; s++) {
        const base = s * l * c;
        for (let t = 0; t < l; t++) {
          const yo = base + t * c;
          for (let j = 0; j < k; j++) {
            const src = t + j - left;
            if (src < 0 || src >= l) continue;
            const xo = base + src * c;
            const wo = j * c;
            for (let ch = 0; ch < c; ch++) y[yo + ch] += w[wo + ch] * xv[xo + ch];
          }
        }
      }
      const gradFunc = (dy: tf.Tensor) => {
        const g = vals(dy);
        const dx = new Float32Array(xv.length);
        const dw = new Float32Array(k * c);
        for (let s = 0; s < b; s++) {
          const base = s * l * c;
          for (let t = 0; t < l; t++) {
            const yo = base + t * c;
            for (let j = 0; j < k; j++) {
              const src = t + j - left;
              if (src < 0 || src >= l) continue;
              const xo = base + src * c;
              const wo = j * c;
              for (let ch = 0; ch < c; ch++) {
                const gy = g[yo + ch];
                dx[xo + ch] += w[wo + ch] * gy;
                dw[wo + ch] += xv[xo + ch] * gy;
              }
            }
          }
        }
        return [make(dx, xx.shape), make(dw, kk.shape)];
      };
      return { value: make(y, xx.shape), gradFunc };
    }) as unknown as GradFn,
  );
  return f(x, kernel) as tf.Tensor3D;
}

// ---------- conv 3x3, padding 1 ----------

/**
 * `Conv3×3` with one pixel of zero padding on every side (PyTorch `padding=1`), stride `s`, no bias:
 * `x [b, h, w, ci]`, kernel `[3, 3, ci, co]` → `[b, ⌊(h−1)/s⌋+1, ⌊(w−1)/s⌋+1, co]`. CPU: im2col + matmul.
 */
export function fusedConv3x3(x: tf.Tensor, kernel: tf.Tensor, stride: number): tf.Tensor4D {
  const [b, h, w, ci] = x.shape;
  const co = kernel.shape[3] as number;
  const ho = Math.floor((h - 1) / stride) + 1;
  const wo = Math.floor((w - 1) / stride) + 1;
  if (!jsKernels()) {
    // dispatches: the output (forward), the input (dx), the kernel's elements (row sums)
    if (webgpuLayersFor(Math.max(b * ho * wo * co, x.size), kernel.size)) {
      return conv3x3WebGPU(x, kernel, stride);
    }
    const padded = tf.pad(x as tf.Tensor4D, [[0, 0], [1, 1], [1, 1], [0, 0]]);
    return tf.conv2d(padded, kernel as tf.Tensor4D, stride, "valid");
  }
  if (layerSimdFor(co)) {
    const shape = { b, h, w, ci, co, stride, ho, wo };
    const f = tf.customGrad(
      ((xx: tf.Tensor, kt: tf.Tensor) => {
        const xv = vals(xx);
        const wv = vals(kt);
        const gradFunc = (dy: tf.Tensor) => {
          const [dx, dk] = conv3x3BackwardSimd(xv, wv, vals(dy), shape);
          return [make(dx, xx.shape), make(dk, kt.shape)];
        };
        return { value: make(conv3x3ForwardSimd(xv, wv, shape), [b, ho, wo, co]), gradFunc };
      }) as unknown as GradFn,
    );
    return f(x, kernel) as tf.Tensor4D;
  }
  const kk = 9 * ci;
  const rows = b * ho * wo;
  // src[r·kk + (ky·3 + kx)·ci + c] = flat index into x, or −1 (padding)
  const src = new Int32Array(rows * kk);
  let p = 0;
  for (let s = 0; s < b; s++) {
    for (let oy = 0; oy < ho; oy++) {
      for (let ox = 0; ox < wo; ox++) {
        for (let ky = 0; ky < 3; ky++) {
          const iy = oy * stride + ky - 1;
          for (let kx = 0; kx < 3; kx++) {
            const ix = ox * stride + kx - 1;
            const ok = iy >= 0 && iy < h && ix >= 0 && ix < w;
            const base = ((s * h + iy) * w + ix) * ci;
            for (let c = 0; c < ci; c++) src[p++] = ok ? base + c : -1;
          }
        }
      }
    }
  }
  const f = tf.customGrad(
    ((xx: tf.Tensor, kt: tf.Tensor) => {
      const xv = vals(xx);
      const wv = vals(kt); // [(ky, kx, c), co]
      const cols = new Float32Array(rows * kk);
      for (let i = 0; i < cols.length; i++) cols[i] = src[i] < 0 ? 0 : xv[src[i]];
      const y = matmulJs(cols, wv, rows, kk, co);
      const gradFunc = (dy: tf.Tensor) => {
        const g = linearGradJs(cols, wv, vals(dy), rows, kk, co);
        const dx = new Float32Array(xv.length);
        for (let i = 0; i < src.length; i++) if (src[i] >= 0) dx[src[i]] += g.dx[i];
        return [make(dx, xx.shape), make(g.dw, kt.shape)];
      };
      return { value: make(y, [b, ho, wo, co]), gradFunc };
    }) as unknown as GradFn,
  );
  return f(x, kernel) as tf.Tensor4D;
}

// ---------- softmax over the last axis ----------

/** Softmax over the last axis. */
export function fusedSoftmax(x: tf.Tensor): tf.Tensor {
  if (!jsKernels()) return tf.softmax(x);
  const c = x.shape[x.rank - 1];
  const n = x.size / c;
  const f = tf.customGrad(
    ((xx: tf.Tensor) => {
      const xv = vals(xx);
      const y = new Float32Array(xv.length);
      for (let r = 0; r < n; r++) {
        const o = r * c;
        let m = -Infinity;
        for (let j = 0; j < c; j++) m = Math.max(m, xv[o + j]);
        let s = 0;
        for (let j = 0; j < c; j++) {
          const e = Math.exp(xv[o + j] - m);
          y[o + j] = e;
          s += e;
        }
        for (let j = 0; j < c; j++) y[o + j] /= s;
      }
      const gradFunc = (dy: tf.Tensor) => {
        const g = vals(dy);
        const dx = new Float32Array(xv.length);
        for (let r = 0; r < n; r++) {
          const o = r * c;
          let s = 0;
          for (let j = 0; j < c; j++) s += g[o + j] * y[o + j];
          for (let j = 0; j < c; j++) dx[o + j] = y[o + j] * (g[o + j] - s);
        }
        return make(dx, xx.shape);
      };
      return { value: make(y, xx.shape), gradFunc };
    }) as unknown as GradFn,
  );
  return f(x);
}

// ---------- token pooling and broadcast-add ----------

/** Mean over the middle axis: `x [b, l, c]` → `[b, c]`. */
export function fusedMeanTokens(x: tf.Tensor): tf.Tensor2D {
  const [b, l, c] = x.shape;
  if (!jsKernels()) return meanAxis(x, 1) as tf.Tensor2D;
  const f = tf.customGrad(
    ((xx: tf.Tensor) => {
      const xv = vals(xx);
      const y = new Float32Array(b * c);
      for (let s = 0; s < b; s++) {
        for (let t = 0; t < l; t++) {
          const o = (s * l + t) * c;
          for (let j = 0; j < c; j++) y[s * c + j] += xv[o + j];
        }
      }
      for (let i = 0; i < y.length; i++) y[i] /= l;
      const gradFunc = (dy: tf.Tensor) => {
        const g = vals(dy);
        const dx = new Float32Array(xv.length);
        for (let s = 0; s < b; s++) {
          for (let t = 0; t < l; t++) {
            const o = (s * l + t) * c;
            for (let j = 0; j < c; j++) dx[o + j] = g[s * c + j] / l;
          }
        }
        return make(dx, xx.shape);
      };
      return { value: make(y, [b, c]), gradFunc };
    }) as unknown as GradFn,
  );
  return f(x) as tf.Tensor2D;
}

/** `x [b, l, c] + r [b, c]` broadcast over the tokens. */
export function fusedAddTokens(x: tf.Tensor, r: tf.Tensor): tf.Tensor3D {
  const [b, l, c] = x.shape;
  if (!jsKernels()) return tf.add(x, r.reshape([b, 1, c])) as tf.Tensor3D;
  const f = tf.customGrad(
    ((xx: tf.Tensor, rr: tf.Tensor) => {
      const xv = vals(xx);
      const rv = vals(rr);
      const y = new Float32Array(xv.length);
      for (let s = 0; s < b; s++) {
        for (let t = 0; t < l; t++) {
          const o = (s * l + t) * c;
          for (let j = 0; j < c; j++) y[o + j] = xv[o + j] + rv[s * c + j];
        }
      }
      const gradFunc = (dy: tf.Tensor) => {
        const g = vals(dy);
        const dr = new Float32Array(b * c);
        for (let s = 0; s < b; s++) {
          for (let t = 0; t < l; t++) {
            const o = (s * l + t) * c;
            for (let j = 0; j < c; j++) dr[s * c + j] += g[o + j];
          }
        }
        return [make(Float32Array.from(g), xx.shape), make(dr, rr.shape)];
      };
      return { value: make(y, xx.shape), gradFunc };
    }) as unknown as GradFn,
  );
  return f(x, r) as tf.Tensor3D;
}

/**
 * Row scaling `x [n, …] · s [n]` (each of the n leading entries times its scalar; the stochastic-depth mask).
 * tfjs's broadcasting `Multiply` on the cpu backend walks every element through an index conversion, which made
 * stochastic depth cost ≈ 25 % of a merba-tiny step; here it is one loop per row.
 */
export function fusedScaleRows(x: tf.Tensor, s: tf.Tensor): tf.Tensor {
  const n = x.shape[0];
  if (s.size !== n) throw new RangeError(`fusedScaleRows: s has ${s.size} entries, expected ${n}`);
  if (!jsKernels()) return tf.mul(x, s.reshape([n, ...x.shape.slice(1).map(() => 1)]));
  const m = x.size / n;
  const f = tf.customGrad(
    ((xx: tf.Tensor, ss: tf.Tensor) => {
      const xv = vals(xx);
      const sv = vals(ss);
      const y = new Float32Array(xv.length);
      for (let r = 0; r < n; r++) {
        const k = sv[r];
        for (let j = r * m, e = j + m; j < e; j++) y[j] = xv[j] * k;
      }
      const gradFunc = (dy: tf.Tensor) => {
        const g = vals(dy);
        const dx = new Float32Array(g.length);
        const ds = new Float32Array(n);
        for (let r = 0; r < n; r++) {
          const k = sv[r];
          let acc = 0;
          for (let j = r * m, e = j + m; j < e; j++) {
            dx[j] = g[j] * k;
            acc += g[j] * xv[j];
          }
          ds[r] = acc;
        }
        return [make(dx, xx.shape), make(ds, ss.shape)];
      };
      return { value: make(y, xx.shape), gradFunc };
    }) as unknown as GradFn,
  );
  return f(x, s);
}

// ---------- same-shape binary fast paths on the cpu backend ----------

const FAST_TAG = Symbol.for("merba.fastBinary");

/**
 * Replaces tfjs-backend-cpu's `Add`, `Sub` and `Multiply` kernels by wrappers with a plain loop for two
 * float32 inputs of equal shape or a float32 scalar operand; every other case goes to the original kernel.
 * The arithmetic is the same IEEE operation, so results are bit-identical. (The original evaluates
 * `op(a[i % n], b[i % n])` through a closure per element; gradient accumulation and residual adds make these
 * ops a large share of a training step.) Idempotent; called when this module is imported.
 */
export function installFastBinaryKernels(): void {
  const ops: [string, (a: number, b: number) => number][] = [
    ["Add", (a, b) => a + b],
    ["Sub", (a, b) => a - b],
    ["Multiply", (a, b) => a * b],
  ];
  for (const [name] of ops) {
    const orig = tf.getKernel(name, "cpu") as (tf.KernelConfig & { [FAST_TAG]?: boolean }) | undefined;
    if (!orig || orig[FAST_TAG]) continue;
    const origFunc = orig.kernelFunc;
    const kernelFunc: tf.KernelFunc = (args) => {
      const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
      const be = args.backend as unknown as {
        readSync(id: unknown): Float32Array;
        makeTensorInfo(shape: number[], dtype: string, values: Float32Array): tf.TensorInfo;
      };
      if (a.dtype === "float32" && b.dtype === "float32") {
        const sa = a.shape;
        const sb = b.shape;
        const same = sa.length === sb.length && sa.every((v, i) => v === sb[i]);
        const na = sa.reduce((p, v) => p * v, 1);
        const nb = sb.reduce((p, v) => p * v, 1);
        if (same || (sb.length === 0 && na > 0) || (sa.length === 0 && nb > 0)) {
          const av = be.readSync(a.dataId);
          const bv = be.readSync(b.dataId);
          const n = Math.max(na, nb);
          const out = new Float32Array(n);
          if (same) {
            if (name === "Add") { for (let i = 0; i < n; i++) out[i] = av[i] + bv[i]; }
            else if (name === "Sub") { for (let i = 0; i < n; i++) out[i] = av[i] - bv[i]; }
            else for (let i = 0; i < n; i++) out[i] = av[i] * bv[i];
          } else if (sb.length === 0) {
            const s = bv[0];
            if (name === "Add") { for (let i = 0; i < n; i++) out[i] = av[i] + s; }
            else if (name === "Sub") { for (let i = 0; i < n; i++) out[i] = av[i] - s; }
            else for (let i = 0; i < n; i++) out[i] = av[i] * s;
          } else {
            const s = av[0];
            if (name === "Add") { for (let i = 0; i < n; i++) out[i] = s + bv[i]; }
            else if (name === "Sub") { for (let i = 0; i < n; i++) out[i] = s - bv[i]; }
            else for (let i = 0; i < n; i++) out[i] = s * bv[i];
          }
          return be.makeTensorInfo(same ? [...sa] : sb.length === 0 ? [...sa] : [...sb], "float32", out);
        }
      }
      return origFunc(args);
    };
    tf.unregisterKernel(name, "cpu");
    tf.registerKernel({ ...orig, kernelFunc, [FAST_TAG]: true } as tf.KernelConfig);
  }
}
installFastBinaryKernels();

// ---------- scaled dot-product attention ----------

function attentionProbsJs(q: Float32Array, k: Float32Array, nb: number, n: number, d: number, scale: number) {
  const p = new Float32Array(nb * n * n);
  for (let s = 0; s < nb; s++) {
    const qo = s * n * d;
    const po = s * n * n;
    for (let i = 0; i < n; i++) {
      const qi = qo + i * d;
      const row = po + i * n;
      let m = -Infinity;
      for (let j = 0; j < n; j++) {
        const kj = qo + j * d;
        let dot = 0;
        for (let c = 0; c < d; c++) dot += q[qi + c] * k[kj + c];
        dot *= scale;
        p[row + j] = dot;
        if (dot > m) m = dot;
      }
      let sum = 0;
      for (let j = 0; j < n; j++) {
        const e = Math.exp(p[row + j] - m);
        p[row + j] = e;
        sum += e;
      }
      const inv = 1 / sum;
      for (let j = 0; j < n; j++) p[row + j] *= inv;
    }
  }
  return p;
}

/**
 * Attention probabilities `softmax(q·kᵀ·scale)` over the last axis: `q, k [b, h, n, d]` → `[b, h, n, n]`
 * (no gradient on the cpu path; used for attention maps).
 */
export function attentionProbs(q: tf.Tensor, k: tf.Tensor, scale: number): tf.Tensor4D {
  const [b, h, n, d] = q.shape;
  if (!jsKernels()) return tf.softmax(tf.matMul(tf.mul(q, scale), k, false, true)) as tf.Tensor4D;
  return make(attentionProbsJs(vals(q), vals(k), b * h, n, d, scale), [b, h, n, n]) as tf.Tensor4D;
}

/**
 * Scaled dot-product attention `softmax(q·kᵀ·scale)·v`: `q, k, v [b, h, n, d]` → `[b, h, n, d]`.
 * CPU: one kernel forward (probabilities kept for the backward) and one backward, WebAssembly SIMD when
 * `d % 4 == 0`:
 * `dV = Pᵀ·dO`, `dP = dO·Vᵀ`, `dS = P ⊙ (dP − rowsum(dP ⊙ P))`, `dQ = scale·dS·K`, `dK = scale·dSᵀ·Q`.
 */
export function fusedAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, scale: number): tf.Tensor4D {
  const [b, h, n, d] = q.shape;
  if (!jsKernels()) {
    if (webgpuAttentionFor(b * h * n, n, d)) return attentionWebGPU(q, k, v, scale);
    return tf.matMul(tf.softmax(tf.matMul(tf.mul(q, scale), k, false, true)), v) as tf.Tensor4D;
  }
  const nb = b * h;
  if (layerSimdFor(d)) {
    const f = tf.customGrad(
      ((qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) => {
        const qv = vals(qq);
        const kv = vals(kk);
        const vv_ = vals(vv);
        const [p, o] = attentionForwardSimd(qv, kv, vv_, nb, n, d, scale);
        const gradFunc = (dy: tf.Tensor) => {
          const [dq, dk, dv] = attentionBackwardSimd(qv, kv, vv_, p, vals(dy), nb, n, d, scale);
          return [make(dq, qq.shape), make(dk, kk.shape), make(dv, vv.shape)];
        };
        return { value: make(o, [b, h, n, d]), gradFunc };
      }) as unknown as GradFn,
    );
    return f(q, k, v) as tf.Tensor4D;
  }
  if (wasmMatmulEnabled()) return attentionWasm(q, k, v, scale);
  const f = tf.customGrad(
    ((qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) => {
      const qv = vals(qq);
      const kv = vals(kk);
      const vv_ = vals(vv);
      const p = attentionProbsJs(qv, kv, nb, n, d, scale);
      const o = new Float32Array(nb * n * d);
      for (let s = 0; s < nb; s++) {
        const base = s * n * d;
        for (let i = 0; i < n; i++) {
          const row = (s * n + i) * n;
          const oi = base + i * d;
          for (let j = 0; j < n; j++) {
            const pij = p[row + j];
            const vj = base + j * d;
            for (let c = 0; c < d; c++) o[oi + c] += pij * vv_[vj + c];
          }
        }
      }
      const gradFunc = (dy: tf.Tensor) => {
        const g = vals(dy);
        const dq = new Float32Array(qv.length);
        const dk = new Float32Array(kv.length);
        const dv = new Float32Array(vv_.length);
        const ds = new Float32Array(n);
        for (let s = 0; s < nb; s++) {
          const base = s * n * d;
          for (let i = 0; i < n; i++) {
            const row = (s * n + i) * n;
            const gi = base + i * d;
            // dP[i, j] = dO[i]·V[j]; dV[j] += P[i, j]·dO[i]
            let dot = 0;
            for (let j = 0; j < n; j++) {
              const vj = base + j * d;
              const pij = p[row + j];
              let dp = 0;
              for (let c = 0; c < d; c++) {
                dp += g[gi + c] * vv_[vj + c];
                dv[vj + c] += pij * g[gi + c];
              }
              ds[j] = dp;
              dot += dp * pij;
            }
            // dS = P ⊙ (dP − Σ_j dP·P); dQ[i] = scale·Σ_j dS[j]·K[j]; dK[j] += scale·dS[j]·Q[i]
            const qi = base + i * d;
            for (let j = 0; j < n; j++) {
              const dsj = p[row + j] * (ds[j] - dot) * scale;
              if (dsj === 0) continue;
              const kj = base + j * d;
              for (let c = 0; c < d; c++) {
                dq[qi + c] += dsj * kv[kj + c];
                dk[kj + c] += dsj * qv[qi + c];
              }
            }
          }
        }
        return [make(dq, qq.shape), make(dk, kk.shape), make(dv, vv.shape)];
      };
      return { value: make(o, [b, h, n, d]), gradFunc };
    }) as unknown as GradFn,
  );
  return f(q, k, v) as tf.Tensor4D;
}

/**
 * `fusedAttention` with its five matrix products through the wasm backend's BatchMatMul
 * (`enableWasmMatmul()`); softmax and `dS` stay in JS. Same maths as the JS kernel above.
 */
function attentionWasm(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, scale: number): tf.Tensor4D {
  const [b, h, n, d] = q.shape;
  const nb = b * h;
  const bmm = (
    x: Float32Array,
    y: Float32Array,
    m: number,
    K: number,
    nc: number,
    ta = false,
    tb = false,
  ) => {
    const r = batchMatMulWasm(x, y, nb, m, K, nc, ta, tb);
    if (!r) throw new Error("fusedAttention: the wasm matmul path was turned off during a step");
    return r;
  };
  const f = tf.customGrad(
    ((qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) => {
      const qv = vals(qq);
      const kv = vals(kk);
      const vv_ = vals(vv);
      // P = softmax(scale·Q·Kᵀ) row-wise
      const p = bmm(qv, kv, n, d, n, false, true);
      for (let row = 0; row < nb * n; row++) {
        const o = row * n;
        let m = -Infinity;
        for (let j = 0; j < n; j++) {
          const s = p[o + j] * scale;
          p[o + j] = s;
          if (s > m) m = s;
        }
        let sum = 0;
        for (let j = 0; j < n; j++) {
          const e = Math.exp(p[o + j] - m);
          p[o + j] = e;
          sum += e;
        }
        const inv = 1 / sum;
        for (let j = 0; j < n; j++) p[o + j] *= inv;
      }
      const out = bmm(p, vv_, n, n, d); // O = P·V
      const gradFunc = (dy: tf.Tensor) => {
        const g = vals(dy);
        const dv = bmm(p, g, n, n, d, true); // dV = Pᵀ·dO
        const ds = bmm(g, vv_, n, d, n, false, true); // dP = dO·Vᵀ
        // dS = scale·P ⊙ (dP − rowsum(dP ⊙ P))
        for (let row = 0; row < nb * n; row++) {
          const o = row * n;
          let dot = 0;
          for (let j = 0; j < n; j++) dot += ds[o + j] * p[o + j];
          for (let j = 0; j < n; j++) ds[o + j] = p[o + j] * (ds[o + j] - dot) * scale;
        }
        const dq = bmm(ds, kv, n, n, d); // dQ = dS·K
        const dk = bmm(ds, qv, n, n, d, true); // dK = dSᵀ·Q
        return [make(dq, qq.shape), make(dk, kk.shape), make(dv, vv.shape)];
      };
      return { value: make(out, [b, h, n, d]), gradFunc };
    }) as unknown as GradFn,
  );
  return f(q, k, v) as tf.Tensor4D;
}
