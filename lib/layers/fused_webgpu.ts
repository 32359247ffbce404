/**
 * WGSL kernels for two of the fused layers on the tfjs `webgpu` backend: LayerNorm (forward 1 dispatch,
 * backward 4) and GELU (1 + 1). Built from tfjs ops they take ≈ 10 + 20 and ≈ 8 + 15 dispatches per call, and a
 * webgpu training step is bound by the host-side cost of each dispatch (≈ 0.3 ms on an H200; BENCHMARKS.md,
 * "Training and LOSO → Sixth session"), not by arithmetic.
 *
 * Maths as in `fused.ts` (the cpu kernels):
 *
 * - LayerNorm over the last axis (`c` channels, `n` rows), biased variance, two passes in float32 per row:
 *   `μ = Σx/c`, `σ² = Σ(x − μ)²/c`, `r = 1/√(σ² + ε)`, `x̂ = (x − μ)·r`, `y = x̂·γ + β`. Backward:
 *   `dx = r·(dy·γ − mean(dy·γ) − x̂·mean(dy·γ·x̂))`, `dγ = Σ_rows dy·x̂`, `dβ = Σ_rows dy`. The backward first
 *   recomputes `(μ, r)` per row (one dispatch), then `dx` (one invocation per row) and `dγ`, `dβ` (one
 *   invocation per channel, looping over the rows).
 * - GELU, tanh approximation `½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`, with `1 + tanh u` and `1 − tanh² u`
 *   written through `e = e^{−2|u|}` (`2e/(1 + e)` for u < 0, `2/(1 + e)` otherwise; `4e/(1 + e)²`): finite for
 *   any input and without the cancellation of `1 − t²` where `t` rounds to ±1 (the cpu kernels and tfjs's ops
 *   lose the tails there; the difference is below 3e-6 absolute, tested).
 *
 * `setWebGPULayerImpl("ops")` switches back to the tfjs-op forms (for comparisons and tests).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";

const WORKGROUP = 64;
const MAX_WORKGROUPS = 65535;

/** `"wgsl"`: the kernels of this module on webgpu (default); `"ops"`: tfjs ops. */
export type WebGPULayerImpl = "wgsl" | "ops";

let impl: WebGPULayerImpl = "wgsl";

/** Chooses how LayerNorm and GELU run on webgpu; returns the previous choice. */
export function setWebGPULayerImpl(choice: WebGPULayerImpl): WebGPULayerImpl {
  if (choice !== "wgsl" && choice !== "ops") {
    throw new RangeError(`setWebGPULayerImpl: expected "wgsl" or "ops", got ${JSON.stringify(choice)}`);
  }
  const prev = impl;
  impl = choice;
  return prev;
}

/** True when the WGSL layer kernels run for `invocations` parallel work items on the active backend. */
export function webgpuLayersFor(invocations: number): boolean {
  return impl === "wgsl" && tf.getBackend() === "webgpu" && invocations > 0 &&
    Math.ceil(invocations / WORKGROUP) <= MAX_WORKGROUPS;
}

abstract class FlatProgram implements WebGPUProgram {
  abstract variableNames: string[];
  abstract shaderKey: string;
  abstract uniforms: string;
  outputShape: number[];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  constructor(outputShape: number[], invocations: number) {
    this.outputShape = outputShape;
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    this.dispatch = [Math.ceil(invocations / WORKGROUP), 1, 1];
  }
  abstract getUserCode(): string;
}

/** WGSL: `(μ, 1/√(σ² + ε))` of the row of `X` starting at `o` (two passes, biased variance). */
const ROW_STATS = `
  fn rowStats(o : i32) -> vec2<f32> {
    var m = 0.0;
    for (var j = 0; j < uniforms.c; j++) { m = m + X[o + j]; }
    m = m / f32(uniforms.c);
    var v = 0.0;
    for (var j = 0; j < uniforms.c; j++) { let d = X[o + j] - m; v = v + d * d; }
    return vec2<f32>(m, 1.0 / sqrt(v / f32(uniforms.c) + uniforms.eps));
  }`;

/** Per-row statistics `(μ, r)` → `[n, 2]`. */
class LayerNormStatsProgram extends FlatProgram {
  variableNames = ["X"];
  shaderKey = "merba_ln_stats";
  uniforms = "n : i32, c : i32, eps : f32,";
  getUserCode(): string {
    return `
${ROW_STATS}
  fn main(index : i32) {
    if (index >= uniforms.n) { return; }
    let st = rowStats(index * uniforms.c);
    result[2 * index] = st.x;
    result[2 * index + 1] = st.y;
  }`;
  }
}

/** `y = x̂·γ + β`, one invocation per row (statistics computed in place). */
class LayerNormForwardProgram extends FlatProgram {
  variableNames = ["X", "Gamma", "Beta"];
  shaderKey = "merba_ln_forward";
  uniforms = "n : i32, c : i32, eps : f32,";
  getUserCode(): string {
    return `
${ROW_STATS}
  fn main(index : i32) {
    if (index >= uniforms.n) { return; }
    let o = index * uniforms.c;
    let st = rowStats(o);
    for (var j = 0; j < uniforms.c; j++) {
      result[o + j] = (X[o + j] - st.x) * st.y * Gamma[j] + Beta[j];
    }
  }`;
  }
}

/** `dx` for one row per invocation, from the statistics. */
class LayerNormDxProgram extends FlatProgram {
  variableNames = ["X", "Dy", "Gamma", "S"];
  shaderKey = "merba_ln_dx";
  uniforms = "n : i32, c : i32,";
  getUserCode(): string {
    return `
  fn main(index : i32) {
    if (index >= uniforms.n) { return; }
    let o = index * uniforms.c;
    let m = S[2 * index];
    let r = S[2 * index + 1];
    var s1 = 0.0;
    var s2 = 0.0;
    for (var j = 0; j < uniforms.c; j++) {
      let dh = Dy[o + j] * Gamma[j];
      s1 = s1 + dh;
      s2 = s2 + dh * ((X[o + j] - m) * r);
    }
    s1 = s1 / f32(uniforms.c);
    s2 = s2 / f32(uniforms.c);
    for (var j = 0; j < uniforms.c; j++) {
      let xh = (X[o + j] - m) * r;
      result[o + j] = r * (Dy[o + j] * Gamma[j] - s1 - xh * s2);
    }
  }`;
  }
}

/** `dγ` (`beta` = 0) or `dβ` (`beta` = 1) for one channel per invocation, summed over the rows. */
class LayerNormParamGradProgram extends FlatProgram {
  // every declared input must be read by the shader: WebGPU's automatic layout drops unused bindings, and a
  // bind group with more entries than the layout invalidates the whole submitted command buffer
  variableNames: string[];
  shaderKey: string;
  uniforms = "n : i32, c : i32,";
  constructor(c: number, private readonly beta: boolean) {
    super([c], c);
    this.variableNames = beta ? ["Dy"] : ["X", "Dy", "S"];
    this.shaderKey = `merba_ln_d${beta ? "beta" : "gamma"}`;
  }
  getUserCode(): string {
    const term = this.beta ? "Dy[k]" : "Dy[k] * ((X[k] - S[2 * i]) * S[2 * i + 1])";
    return `
  fn main(index : i32) {
    if (index >= uniforms.c) { return; }
    var acc = 0.0;
    for (var i = 0; i < uniforms.n; i++) {
      let k = i * uniforms.c + index;
      acc = acc + ${term};
    }
    result[index] = acc;
  }`;
  }
}

// 1 + tanh(u) and 1 − tanh²(u) from e = exp(−2|u|) without cancellation: for u < 0, 1 + tanh u = 2e/(1 + e);
// for u ≥ 0, 2/(1 + e); and 1 − tanh² u = 4e/(1 + e)² (for tails where tanh rounds to ±1 in float32)
const TANH = `
  fn merbaOnePlusTanh(u : f32) -> f32 {
    let e = exp(-2.0 * abs(u));
    let d = 1.0 / (1.0 + e);
    return select(2.0 * d, 2.0 * e * d, u < 0.0);
  }
  fn merbaOneMinusTanhSq(u : f32) -> f32 {
    let e = exp(-2.0 * abs(u));
    let d = 1.0 / (1.0 + e);
    return 4.0 * e * d * d;
  }`;

/** GELU forward (`grad` = false) or `dy·GELU'(x)` (`grad` = true), elementwise. */
class GeluProgram extends FlatProgram {
  variableNames: string[];
  shaderKey: string;
  uniforms = "count : i32,";
  constructor(shape: number[], size: number, private readonly grad: boolean) {
    super(shape, size);
    this.variableNames = grad ? ["X", "Dy"] : ["X"];
    this.shaderKey = grad ? "merba_gelu_grad" : "merba_gelu";
  }
  getUserCode(): string {
    const k = Math.sqrt(2 / Math.PI).toFixed(9);
    const out = this.grad
      ? `Dy[index] * (0.5 * merbaOnePlusTanh(u) + 0.5 * v * merbaOneMinusTanhSq(u) * ${k} * ` +
        "(1.0 + 3.0 * 0.044715 * v * v))"
      : "0.5 * v * merbaOnePlusTanh(u)";
    return `${TANH}
  fn main(index : i32) {
    if (index >= uniforms.count) { return; }
    let v = X[index];
    let u = ${k} * (v + 0.044715 * v * v * v);
    result[index] = ${out};
  }`;
  }
}

type GradFn = Parameters<typeof tf.customGrad>[0];

function run(program: WebGPUProgram, inputs: tf.Tensor[], uniforms: Array<{ type: string; data: number[] }>) {
  const be = tf.backend() as unknown as WebGPUBackend;
  return tf.engine().makeTensorFromTensorInfo(be.runWebGPUProgram(program, inputs, "float32", uniforms));
}

const i32 = (v: number) => ({ type: "int32", data: [v] });
const f32 = (v: number) => ({ type: "float32", data: [v] });

/**
 * LayerNorm over the last axis on webgpu (see the module note). `x` float32 `[..., c]`, `gamma`/`beta` `[c]`.
 *
 * @throws {Error} when the active backend is not webgpu.
 */
export function layerNormWebGPU(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps = 1e-5): tf.Tensor {
  if (tf.getBackend() !== "webgpu") {
    throw new Error(`layerNormWebGPU: the active backend is ${tf.getBackend()}`);
  }
  const c = x.shape[x.rank - 1];
  const n = x.size / c;
  const f = tf.customGrad(
    ((xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor, save: (t: tf.Tensor[]) => void) => {
      save([xx, gg]);
      const value = run(new LayerNormForwardProgram(xx.shape, n), [xx, gg, bb], [i32(n), i32(c), f32(eps)]);
      const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, gs] = saved;
        const stats = run(new LayerNormStatsProgram([n, 2], n), [xs], [i32(n), i32(c), f32(eps)]);
        const dx = run(new LayerNormDxProgram(xs.shape, n), [xs, dy, gs, stats], [i32(n), i32(c)]);
        const dg = run(new LayerNormParamGradProgram(c, false), [xs, dy, stats], [i32(n), i32(c)]);
        const db = run(new LayerNormParamGradProgram(c, true), [dy], [i32(n), i32(c)]);
        stats.dispose();
        return [dx, dg, db];
      };
      return { value, gradFunc };
    }) as unknown as GradFn,
  );
  return f(x, gamma, beta);
}

/**
 * GELU (tanh approximation) on webgpu, forward and backward one dispatch each.
 *
 * @throws {Error} when the active backend is not webgpu.
 */
export function geluWebGPU(x: tf.Tensor): tf.Tensor {
  if (tf.getBackend() !== "webgpu") throw new Error(`geluWebGPU: the active backend is ${tf.getBackend()}`);
  const f = tf.customGrad(
    ((xx: tf.Tensor, save: (t: tf.Tensor[]) => void) => {
      save([xx]);
      const value = run(new GeluProgram(xx.shape, xx.size, false), [xx], [i32(xx.size)]);
      const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) =>
        run(new GeluProgram(saved[0].shape, saved[0].size, true), [saved[0], dy], [i32(saved[0].size)]);
      return { value, gradFunc };
    }) as unknown as GradFn,
  );
  return f(x);
}
