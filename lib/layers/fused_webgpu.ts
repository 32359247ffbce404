/**
 * WGSL kernels for the fused layers on the tfjs `webgpu` backend: LayerNorm (forward 1 dispatch, backward 4),
 * GELU and SiLU (1 + 1 each), the linear layers (1 + 3, or 1 + 2 without a bias) and scaled dot-product
 * attention (1 + 4). Built from tfjs ops, LayerNorm, GELU, SiLU and attention take ≈ 10 + 20, ≈ 8 + 15, 2 + 6
 * and ≈ 4 + 9 dispatches per call, and a webgpu training step on a real GPU is bound by the host-side cost of
 * each dispatch (≈ 0.3 ms on an H200; BENCHMARKS.md, "Training and LOSO → Sixth session"), not by arithmetic.
 * The linear layers take as many dispatches as tfjs's matrix products, but tfjs picks tiled products made for
 * large matrices (most of a step's GPU time on llvmpipe went to them and to attention's `n × n` products at
 * merba-tiny's widths of 1–96) and, for the weight gradient (a sum over every row of the batch), small-output
 * products that loop over the rows in few invocations; here each output element has one invocation (`y`,
 * `dx`) or one 64-lane workgroup summing rows in parallel (`dW`, `db`; BENCHMARKS.md, "Seventh session").
 *
 * Maths as in `fused.ts` (the cpu kernels):
 *
 * - LayerNorm over the last axis (`c` channels, `n` rows), biased variance, two passes in float32 per row:
 *   `μ = Σx/c`, `σ² = Σ(x − μ)²/c`, `r = 1/√(σ² + ε)`, `x̂ = (x − μ)·r`, `y = x̂·γ + β`. Backward:
 *   `dx = r·(dy·γ − mean(dy·γ) − x̂·mean(dy·γ·x̂))`, `dγ = Σ_rows dy·x̂`, `dβ = Σ_rows dy`. The backward first
 *   recomputes `(μ, r)` per row (one dispatch), then `dx` (one invocation per row) and `dγ`, `dβ` (one
 *   workgroup per channel summing the rows in parallel).
 * - GELU, tanh approximation `½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`, with `1 + tanh u` and `1 − tanh² u`
 *   written through `e = e^{−2|u|}` (`2e/(1 + e)` for u < 0, `2/(1 + e)` otherwise; `4e/(1 + e)²`): finite for
 *   any input and without the cancellation of `1 − t²` where `t` rounds to ±1 (the cpu kernels and tfjs's ops
 *   lose the tails there; the difference is below 3e-6 absolute, tested).
 * - SiLU `x·σ(x)`, `dx = dy·σ·(1 + x·(1 − σ))`.
 * - Linear `y = x·W + b`: `dx = dy·Wᵀ`, `dW = xᵀ·dy`, `db = Σ_rows dy`.
 * - Attention `O = softmax(scale·Q·Kᵀ)·V` per slice: `dV = Pᵀ·dO`, `dP = dO·Vᵀ`, `δ_i = Σ_j P_ij·dP_ij`,
 *   `dS = P ⊙ (dP − δ)`, `dQ = scale·dS·K`, `dK = scale·dSᵀ·Q`.
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

/** Chooses how LayerNorm, GELU, SiLU, the linear layers and attention run on webgpu; returns the previous choice. */
export function setWebGPULayerImpl(choice: WebGPULayerImpl): WebGPULayerImpl {
  if (choice !== "wgsl" && choice !== "ops") {
    throw new RangeError(`setWebGPULayerImpl: expected "wgsl" or "ops", got ${JSON.stringify(choice)}`);
  }
  const prev = impl;
  impl = choice;
  return prev;
}

/**
 * True when the WGSL layer kernels run on the active backend for a layer whose largest elementwise dispatch has
 * `invocations` work items and whose row sums (one workgroup per output) have at most `rowSumOutputs` outputs:
 * webgpu, the kernels on, and every dispatch within the workgroup-count limit.
 */
export function webgpuLayersFor(invocations: number, rowSumOutputs = 0): boolean {
  return impl === "wgsl" && tf.getBackend() === "webgpu" && invocations > 0 &&
    Math.ceil(invocations / WORKGROUP) <= MAX_WORKGROUPS && rowSumOutputs <= MAX_WORKGROUPS;
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

/**
 * WGSL: the sum of every lane's `v` in a workgroup of `WORKGROUP` (64) lanes, returned to every lane —
 * pairwise in workgroup memory, in a fixed order (deterministic). Call from uniform control flow (barriers).
 */
const WORKGROUP_SUM = `
  var<workgroup> merbaPartial : array<f32, ${WORKGROUP}>;
  fn merbaWorkgroupSum(lane : i32, v : f32) -> f32 {
    merbaPartial[lane] = v;
    workgroupBarrier();
    for (var s = ${WORKGROUP / 2}; s > 0; s = s / 2) {
      if (lane < s) {
        merbaPartial[lane] = merbaPartial[lane] + merbaPartial[lane + s];
      }
      workgroupBarrier();
    }
    let total = merbaPartial[0];
    workgroupBarrier();
    return total;
  }`;

/**
 * Sums over the `n` rows of a per-row term, one workgroup per output element: lane `l` adds rows `l, l + 64, …`,
 * then the 64 partial sums are added pairwise in workgroup memory (a fixed order: the result is deterministic).
 * A GPU runs the rows in parallel; one invocation per output looping over every row (what the first LayerNorm
 * kernel did, and what tfjs's small-output matrix products do for a linear layer's weight gradient) leaves all
 * but a few dozen of its cores idle, and its time grows with the batch.
 *
 * `setup` declares, from the output index `j`, what `term` (a WGSL expression in the row `r`) needs. Uniforms
 * start with `n` (rows) and `m` (outputs).
 */
abstract class RowSumProgram implements WebGPUProgram {
  abstract variableNames: string[];
  abstract shaderKey: string;
  abstract uniforms: string;
  outputShape: number[];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  constructor(outputShape: number[], outputs: number) {
    this.outputShape = outputShape;
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    this.dispatch = [outputs, 1, 1];
  }
  protected abstract setup(): string;
  protected abstract term(): string;
  /** WGSL functions the term calls. */
  protected helpers(): string {
    return "";
  }
  getUserCode(): string {
    // no early return: every lane must reach the barriers (WGSL's uniformity rule)
    return `${WORKGROUP_SUM}${this.helpers()}
  fn main(index : i32) {
    let j = i32(workgroupId.x);
    let lane = i32(localId.x);
    var acc = 0.0;
    if (j < uniforms.m) {
      ${this.setup()}
      for (var r = lane; r < uniforms.n; r = r + ${WORKGROUP}) {
        acc = acc + ${this.term()};
      }
    }
    let total = merbaWorkgroupSum(lane, acc);
    if (lane == 0 && j < uniforms.m) {
      result[j] = total;
    }
  }`;
  }
}

/** `dγ` (`beta` = false) or `dβ` (`beta` = true) of LayerNorm: one output per channel, summed over the rows. */
class LayerNormParamGradProgram extends RowSumProgram {
  // every declared input must be read by the shader: WebGPU's automatic layout drops unused bindings, and a
  // bind group with more entries than the layout invalidates the whole submitted command buffer
  variableNames: string[];
  shaderKey: string;
  uniforms = "n : i32, m : i32,";
  constructor(c: number, private readonly beta: boolean) {
    super([c], c);
    this.variableNames = beta ? ["Dy"] : ["X", "Dy", "S"];
    this.shaderKey = `merba_ln_d${beta ? "beta" : "gamma"}`;
  }
  protected setup(): string {
    return "";
  }
  protected term(): string {
    const k = "r * uniforms.m + j";
    return this.beta ? `Dy[${k}]` : `Dy[${k}] * ((X[${k}] - S[2 * r]) * S[2 * r + 1])`;
  }
}

/** BatchNorm's `dγ = Σ_rows dy·x̂` per channel, `x̂` from the batch statistics `S = [μ; σ²]` (`[2, c]`). */
class BatchNormGammaGradProgram extends RowSumProgram {
  variableNames = ["X", "Dy", "S"];
  shaderKey = "merba_bn_dgamma";
  uniforms = "n : i32, m : i32, eps : f32,";
  protected setup(): string {
    return "let mu = S[j];\n      let rs = inverseSqrt(S[uniforms.m + j] + uniforms.eps);";
  }
  protected term(): string {
    return "Dy[r * uniforms.m + j] * ((X[r * uniforms.m + j] - mu) * rs)";
  }
}

/**
 * BatchNorm's batch statistics `[μ; σ²]` (`[2, c]`, biased variance, two passes) of `x [n, c]`, one 64-lane
 * workgroup per channel summing the rows in parallel (the mean is shared through workgroup memory).
 */
class BatchNormStatsProgram implements WebGPUProgram {
  variableNames = ["X"];
  shaderKey = "merba_bn_stats";
  uniforms = "n : i32, m : i32,";
  outputShape: number[];
  dispatchLayout = { x: [0, 1] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  constructor(c: number) {
    this.outputShape = [2, c];
    this.dispatch = [c, 1, 1];
  }
  getUserCode(): string {
    return `
${WORKGROUP_SUM}
  fn main(index : i32) {
    let j = i32(workgroupId.x);
    let lane = i32(localId.x);
    let ok = j < uniforms.m;
    var acc = 0.0;
    if (ok) {
      for (var r = lane; r < uniforms.n; r = r + ${WORKGROUP}) { acc = acc + X[r * uniforms.m + j]; }
    }
    let mu = merbaWorkgroupSum(lane, acc) / f32(uniforms.n);
    acc = 0.0;
    if (ok) {
      for (var r = lane; r < uniforms.n; r = r + ${WORKGROUP}) {
        let d = X[r * uniforms.m + j] - mu;
        acc = acc + d * d;
      }
    }
    let v = merbaWorkgroupSum(lane, acc) / f32(uniforms.n);
    if (lane == 0 && ok) {
      result[j] = mu;
      result[uniforms.m + j] = v;
    }
  }`;
  }
}

/** BatchNorm forward `y = (x − μ)·r·γ + β` (`r = 1/√(σ² + ε)`) from `S = [μ; σ²]`, elementwise. */
class BatchNormForwardProgram extends FlatProgram {
  variableNames = ["X", "S", "Gamma", "Beta"];
  shaderKey = "merba_bn_forward";
  uniforms = "count : i32, c : i32, eps : f32,";
  getUserCode(): string {
    return `
  fn main(index : i32) {
    if (index >= uniforms.count) { return; }
    let j = index % uniforms.c;
    let rs = inverseSqrt(S[uniforms.c + j] + uniforms.eps);
    result[index] = (X[index] - S[j]) * rs * Gamma[j] + Beta[j];
  }`;
  }
}

/**
 * One moving statistic of BatchNorm from the batch statistics `S = [μ; σ²]`: `old·m + (S[row]·f)·(1 − m)` per
 * channel, in the op form's order (`f` = n/(n − 1) turns the biased variance into the unbiased one; 1 for μ).
 */
class MovingStatProgram extends FlatProgram {
  variableNames = ["Old", "S"];
  shaderKey = "merba_bn_moving";
  uniforms = "c : i32, row : i32, m : f32, f : f32, c1m : f32,";
  getUserCode(): string {
    return `
  fn main(index : i32) {
    if (index >= uniforms.c) { return; }
    let a = Old[index] * uniforms.m;
    let b = (S[uniforms.row * uniforms.c + index] * uniforms.f) * uniforms.c1m;
    result[index] = a + b;
  }`;
  }
}

/** BatchNorm (batch statistics) `dx = γ·r·(dy − dβ/n − x̂·dγ/n)`, elementwise. */
class BatchNormDxProgram extends FlatProgram {
  variableNames = ["X", "Dy", "S", "Gamma", "Dg", "Db"];
  shaderKey = "merba_bn_dx";
  uniforms = "count : i32, c : i32, eps : f32, n : f32,";
  getUserCode(): string {
    return `
  fn main(index : i32) {
    if (index >= uniforms.count) { return; }
    let j = index % uniforms.c;
    let rs = inverseSqrt(S[uniforms.c + j] + uniforms.eps);
    let xh = (X[index] - S[j]) * rs;
    result[index] = Gamma[j] * rs * (Dy[index] - Db[j] / uniforms.n - xh * Dg[j] / uniforms.n);
  }`;
  }
}

/**
 * The depthwise token convolution's `dW[j, ch] = Σ_rows x[t + j − left, ch]·dy[t, ch]` (`[k, c]`, output
 * `jj = j·c + ch`), rows `r = sequence·l + t`, terms outside the sequence skipped.
 */
class DepthwiseConv1dFilterGradProgram extends RowSumProgram {
  variableNames = ["X", "Dy"];
  shaderKey = "merba_dwconv_dw";
  uniforms = "n : i32, m : i32, l : i32, c : i32, left : i32,";
  protected setup(): string {
    return "let ch = j % uniforms.c;\n      let off = j / uniforms.c - uniforms.left;";
  }
  protected term(): string {
    // the clamp keeps the (unused) read of a skipped term inside the buffer
    return "select(0.0, X[clamp(r + off, 0, uniforms.n - 1) * uniforms.c + ch] * Dy[r * uniforms.c + ch], " +
      "r % uniforms.l + off >= 0 && r % uniforms.l + off < uniforms.l)";
  }
}

/**
 * Depthwise token convolution, forward (`grad` = false: `y[t] = Σ_j x[t + j − left]·w[j]`) or `dx`
 * (`grad` = true: `dx[s] = Σ_j dy[s − j + left]·w[j]`), one invocation per element, per channel.
 */
class DepthwiseConv1dProgram extends FlatProgram {
  variableNames: string[];
  shaderKey: string;
  uniforms = "count : i32, l : i32, c : i32, k : i32, left : i32,";
  constructor(shape: number[], count: number, private readonly grad: boolean) {
    super(shape, count);
    this.variableNames = grad ? ["Dy", "W"] : ["X", "W"];
    this.shaderKey = grad ? "merba_dwconv_dx" : "merba_dwconv";
  }
  getUserCode(): string {
    const input = this.grad ? "Dy" : "X";
    // forward: source t + j − left; dx: source s − j + left
    const src = this.grad ? "t - j + uniforms.left" : "t + j - uniforms.left";
    return `
  fn main(index : i32) {
    if (index >= uniforms.count) { return; }
    let ch = index % uniforms.c;
    let t = (index / uniforms.c) % uniforms.l;
    let base = index - t * uniforms.c - ch;
    var acc = 0.0;
    for (var j = 0; j < uniforms.k; j++) {
      let s = ${src};
      if (s >= 0 && s < uniforms.l) {
        acc = acc + ${input}[base + s * uniforms.c + ch] * W[j * uniforms.c + ch];
      }
    }
    result[index] = acc;
  }`;
  }
}

const CONV_UNIFORMS = "h : i32, w : i32, ci : i32, co : i32, ho : i32, wo : i32, s : i32,";

/**
 * The 3×3 convolution's (padding 1, stride `s`) kernel gradient `dK[ky, kx, c, o] = Σ_rows x[oy·s + ky − 1,
 * ox·s + kx − 1, c]·dy[oy, ox, o]` over the rows `r = (b, oy, ox)`, padding terms skipped.
 */
class Conv3x3FilterGradProgram extends RowSumProgram {
  variableNames = ["X", "Dy"];
  shaderKey = "merba_conv3_dk";
  uniforms = `n : i32, m : i32, ${CONV_UNIFORMS}`;
  protected override helpers(): string {
    return `
  fn merbaConvTerm(r : i32, ky : i32, kx : i32, c : i32, o : i32) -> f32 {
    let hw = uniforms.ho * uniforms.wo;
    let bb = r / hw;
    let oy = (r - bb * hw) / uniforms.wo;
    let ox = r - bb * hw - oy * uniforms.wo;
    let y = oy * uniforms.s + ky - 1;
    let x = ox * uniforms.s + kx - 1;
    if (y < 0 || y >= uniforms.h || x < 0 || x >= uniforms.w) { return 0.0; }
    return X[((bb * uniforms.h + y) * uniforms.w + x) * uniforms.ci + c] * Dy[r * uniforms.co + o];
  }`;
  }
  protected setup(): string {
    return `let o = j % uniforms.co;
      let t = j / uniforms.co;
      let c = t % uniforms.ci;
      let ky = t / uniforms.ci / 3;
      let kx = t / uniforms.ci - ky * 3;`;
  }
  protected term(): string {
    return "merbaConvTerm(r, ky, kx, c, o)";
  }
}

/**
 * The 3×3 convolution (padding 1, stride `s`), forward (`grad` = false, one invocation per output element) or
 * `dx` (`grad` = true, one per input element: the outputs whose window covers it).
 */
class Conv3x3Program extends FlatProgram {
  variableNames: string[];
  shaderKey: string;
  uniforms = `count : i32, ${CONV_UNIFORMS}`;
  constructor(shape: number[], count: number, private readonly grad: boolean) {
    super(shape, count);
    this.variableNames = grad ? ["Dy", "K"] : ["X", "K"];
    this.shaderKey = grad ? "merba_conv3_dx" : "merba_conv3";
  }
  getUserCode(): string {
    if (!this.grad) {
      return `
  fn main(index : i32) {
    if (index >= uniforms.count) { return; }
    let o = index % uniforms.co;
    let p = index / uniforms.co;
    let ox = p % uniforms.wo;
    let oy = (p / uniforms.wo) % uniforms.ho;
    let bb = p / (uniforms.wo * uniforms.ho);
    var acc = 0.0;
    for (var ky = 0; ky < 3; ky++) {
      let y = oy * uniforms.s + ky - 1;
      if (y < 0 || y >= uniforms.h) { continue; }
      for (var kx = 0; kx < 3; kx++) {
        let x = ox * uniforms.s + kx - 1;
        if (x < 0 || x >= uniforms.w) { continue; }
        let xo = ((bb * uniforms.h + y) * uniforms.w + x) * uniforms.ci;
        let ko = (ky * 3 + kx) * uniforms.ci;
        for (var c = 0; c < uniforms.ci; c++) {
          acc = acc + X[xo + c] * K[(ko + c) * uniforms.co + o];
        }
      }
    }
    result[index] = acc;
  }`;
    }
    return `
  fn main(index : i32) {
    if (index >= uniforms.count) { return; }
    let c = index % uniforms.ci;
    let p = index / uniforms.ci;
    let x = p % uniforms.w;
    let y = (p / uniforms.w) % uniforms.h;
    let bb = p / (uniforms.w * uniforms.h);
    var acc = 0.0;
    for (var ky = 0; ky < 3; ky++) {
      let ty = y + 1 - ky;
      if (ty < 0 || ty % uniforms.s != 0 || ty / uniforms.s >= uniforms.ho) { continue; }
      for (var kx = 0; kx < 3; kx++) {
        let tx = x + 1 - kx;
        if (tx < 0 || tx % uniforms.s != 0 || tx / uniforms.s >= uniforms.wo) { continue; }
        let go = ((bb * uniforms.ho + ty / uniforms.s) * uniforms.wo + tx / uniforms.s) * uniforms.co;
        let ko = ((ky * 3 + kx) * uniforms.ci + c) * uniforms.co;
        for (var o = 0; o < uniforms.co; o++) {
          acc = acc + Dy[go + o] * K[ko + o];
        }
      }
    }
    result[index] = acc;
  }`;
  }
}

/** A linear layer's `dW = xᵀ·dy` (`[i, o]`, output `j = k·o + c`) or `db = Σ_rows dy` (`[o]`). */
class LinearParamGradProgram extends RowSumProgram {
  variableNames: string[];
  shaderKey: string;
  uniforms = "n : i32, m : i32, i : i32, o : i32,";
  constructor(i: number, o: number, private readonly bias: boolean) {
    super(bias ? [o] : [i, o], bias ? o : i * o);
    this.variableNames = bias ? ["Dy"] : ["X", "Dy"];
    this.shaderKey = `merba_linear_d${bias ? "b" : "w"}`;
  }
  protected setup(): string {
    return this.bias ? "" : "let k = j / uniforms.o;\n      let c = j - k * uniforms.o;";
  }
  protected term(): string {
    return this.bias ? "Dy[r * uniforms.o + j]" : "X[r * uniforms.i + k] * Dy[r * uniforms.o + c]";
  }
}

/** `y = x·W (+ b)`, one invocation per output element (`[n, o]`). */
class LinearForwardProgram extends FlatProgram {
  variableNames: string[];
  shaderKey: string;
  uniforms = "count : i32, i : i32, o : i32,";
  constructor(shape: number[], count: number, private readonly bias: boolean) {
    super(shape, count);
    this.variableNames = bias ? ["X", "W", "B"] : ["X", "W"];
    this.shaderKey = `merba_linear${bias ? "_bias" : ""}`;
  }
  getUserCode(): string {
    return `
  fn main(index : i32) {
    if (index >= uniforms.count) { return; }
    let r = index / uniforms.o;
    let c = index - r * uniforms.o;
    let xo = r * uniforms.i;
    var acc = 0.0;
    for (var k = 0; k < uniforms.i; k++) {
      acc = acc + X[xo + k] * W[k * uniforms.o + c];
    }
    result[index] = acc${this.bias ? " + B[c]" : ""};
  }`;
  }
}

/** A linear layer's `dx = dy·Wᵀ`, one invocation per element of `dx` (`[n, i]`). */
class LinearDxProgram extends FlatProgram {
  variableNames = ["Dy", "W"];
  shaderKey = "merba_linear_dx";
  uniforms = "count : i32, i : i32, o : i32,";
  getUserCode(): string {
    return `
  fn main(index : i32) {
    if (index >= uniforms.count) { return; }
    let r = index / uniforms.i;
    let k = index - r * uniforms.i;
    let yo = r * uniforms.o;
    let wo = k * uniforms.o;
    var acc = 0.0;
    for (var c = 0; c < uniforms.o; c++) {
      acc = acc + Dy[yo + c] * W[wo + c];
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

/**
 * An elementwise activation forward (`grad` = false) or `dy·f'(x)` (`grad` = true): GELU (tanh approximation)
 * or SiLU `x·σ(x)` (`f' = σ·(1 + x·(1 − σ))`; σ = 1/(1 + e^{−x}) is 0 or 1 in float32 at the far tails, where
 * both results are exact).
 */
class ActivationProgram extends FlatProgram {
  variableNames: string[];
  shaderKey: string;
  uniforms = "count : i32,";
  constructor(
    shape: number[],
    size: number,
    private readonly kind: "gelu" | "silu",
    private readonly grad: boolean,
  ) {
    super(shape, size);
    this.variableNames = grad ? ["X", "Dy"] : ["X"];
    this.shaderKey = `merba_${kind}${grad ? "_grad" : ""}`;
  }
  getUserCode(): string {
    if (this.kind === "silu") {
      const out = this.grad ? "Dy[index] * s * (1.0 + v * (1.0 - s))" : "v * s";
      return `
  fn main(index : i32) {
    if (index >= uniforms.count) { return; }
    let v = X[index];
    let s = 1.0 / (1.0 + exp(-v));
    result[index] = ${out};
  }`;
    }
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

function activationWebGPU(x: tf.Tensor, kind: "gelu" | "silu"): tf.Tensor {
  if (tf.getBackend() !== "webgpu") {
    throw new Error(`${kind}WebGPU: the active backend is ${tf.getBackend()}`);
  }
  const f = tf.customGrad(
    ((xx: tf.Tensor, save: (t: tf.Tensor[]) => void) => {
      save([xx]);
      const value = run(new ActivationProgram(xx.shape, xx.size, kind, false), [xx], [i32(xx.size)]);
      const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) =>
        run(new ActivationProgram(saved[0].shape, saved[0].size, kind, true), [saved[0], dy], [
          i32(saved[0].size),
        ]);
      return { value, gradFunc };
    }) as unknown as GradFn,
  );
  return f(x);
}

/**
 * GELU (tanh approximation) on webgpu, forward and backward one dispatch each.
 *
 * @throws {Error} when the active backend is not webgpu.
 */
export function geluWebGPU(x: tf.Tensor): tf.Tensor {
  return activationWebGPU(x, "gelu");
}

/**
 * SiLU `x·σ(x)` on webgpu, forward and backward one dispatch each (the tfjs-op form takes 2 + 6).
 *
 * @throws {Error} when the active backend is not webgpu.
 */
export function siluWebGPU(x: tf.Tensor): tf.Tensor {
  return activationWebGPU(x, "silu");
}

// ---------- scaled dot-product attention ----------

/**
 * Shared WGSL of the attention programs, specialised on the sequence length `n` and head width `d` (so the
 * per-row accumulators live in registers). Row `r = s·n + i` of slice `s`; `score(qo, ko)` = `scale·q·k`.
 */
function attentionPrelude(n: number, d: number): string {
  return `
  const N = ${n};
  const D = ${d};
  fn score(qo : i32, ko : i32) -> f32 {
    var a = 0.0;
    for (var c = 0; c < D; c++) { a = a + Q[qo + c] * K[ko + c]; }
    return a * uniforms.scale;
  }`;
}

abstract class AttentionProgram extends FlatProgram {
  abstract override variableNames: string[];
  shaderKey: string;
  uniforms = "rows : i32, scale : f32,";
  constructor(
    outputShape: number[],
    rows: number,
    protected readonly n: number,
    protected readonly d: number,
    kind: string,
  ) {
    super(outputShape, rows);
    // a plain field: tfjs extends shaderKey with the input shapes when it compiles
    this.shaderKey = `merba_attn_${kind}_${n}_${d}`;
  }
  protected prelude(): string {
    return attentionPrelude(this.n, this.d);
  }
}

/** `O = softmax(scale·Q·Kᵀ)·V`, one invocation per query row (scores recomputed once for the sum). */
class AttentionForwardProgram extends AttentionProgram {
  variableNames = ["Q", "K", "V"];
  getUserCode(): string {
    return `${this.prelude()}
  fn main(index : i32) {
    if (index >= uniforms.rows) { return; }
    let base = (index / N) * N * D;
    let qo = index * D;
    var m = -3.402823e38;
    for (var j = 0; j < N; j++) { m = max(m, score(qo, base + j * D)); }
    var acc : array<f32, D>;
    var sum = 0.0;
    for (var j = 0; j < N; j++) {
      let e = exp(score(qo, base + j * D) - m);
      sum = sum + e;
      for (var c = 0; c < D; c++) { acc[c] = acc[c] + e * V[base + j * D + c]; }
    }
    let inv = 1.0 / sum;
    for (var c = 0; c < D; c++) { result[qo + c] = acc[c] * inv; }
  }`;
  }
}

/**
 * Per query row `(m, 1/Σ, δ)`: the softmax's max and normaliser and `δ = Σ_j P_ij·dP_ij` (`dP = dO·Vᵀ`),
 * what the gradient programs need to rebuild `P` and `dS = P ⊙ (dP − δ)`.
 */
class AttentionStatsProgram extends AttentionProgram {
  variableNames = ["Q", "K", "V", "Dy"];
  getUserCode(): string {
    return `${this.prelude()}
  fn main(index : i32) {
    if (index >= uniforms.rows) { return; }
    let base = (index / N) * N * D;
    let qo = index * D;
    var m = -3.402823e38;
    for (var j = 0; j < N; j++) { m = max(m, score(qo, base + j * D)); }
    var sum = 0.0;
    var delta = 0.0;
    for (var j = 0; j < N; j++) {
      let e = exp(score(qo, base + j * D) - m);
      var dp = 0.0;
      for (var c = 0; c < D; c++) { dp = dp + Dy[qo + c] * V[base + j * D + c]; }
      sum = sum + e;
      delta = delta + e * dp;
    }
    let inv = 1.0 / sum;
    result[3 * index] = m;
    result[3 * index + 1] = inv;
    result[3 * index + 2] = delta * inv;
  }`;
  }
}

/** `dQ_i = scale·Σ_j dS_ij·K_j`, one invocation per query row. */
class AttentionDqProgram extends AttentionProgram {
  variableNames = ["Q", "K", "V", "Dy", "S"];
  getUserCode(): string {
    return `${this.prelude()}
  fn main(index : i32) {
    if (index >= uniforms.rows) { return; }
    let base = (index / N) * N * D;
    let qo = index * D;
    let m = S[3 * index];
    let inv = S[3 * index + 1];
    let delta = S[3 * index + 2];
    var acc : array<f32, D>;
    for (var j = 0; j < N; j++) {
      let ko = base + j * D;
      let p = exp(score(qo, ko) - m) * inv;
      var dp = 0.0;
      for (var c = 0; c < D; c++) { dp = dp + Dy[qo + c] * V[ko + c]; }
      let ds = p * (dp - delta);
      for (var c = 0; c < D; c++) { acc[c] = acc[c] + ds * K[ko + c]; }
    }
    for (var c = 0; c < D; c++) { result[qo + c] = acc[c] * uniforms.scale; }
  }`;
  }
}

/**
 * `dK_j = scale·Σ_i dS_ij·Q_i` (`value` = false) or `dV_j = Σ_i P_ij·dO_i` (`value` = true), one invocation
 * per key row.
 */
class AttentionDkvProgram extends AttentionProgram {
  variableNames: string[];
  constructor(outputShape: number[], rows: number, n: number, d: number, private readonly value: boolean) {
    super(outputShape, rows, n, d, value ? "dv" : "dk");
    this.variableNames = value ? ["Q", "K", "Dy", "S"] : ["Q", "K", "V", "Dy", "S"];
  }
  getUserCode(): string {
    const term = this.value
      ? "for (var c = 0; c < D; c++) { acc[c] = acc[c] + p * Dy[qo + c]; }"
      : `var dp = 0.0;
      for (var c = 0; c < D; c++) { dp = dp + Dy[qo + c] * V[ko + c]; }
      let ds = p * (dp - S[3 * i + 2]);
      for (var c = 0; c < D; c++) { acc[c] = acc[c] + ds * Q[qo + c]; }`;
    return `${this.prelude()}
  fn main(index : i32) {
    if (index >= uniforms.rows) { return; }
    let s0 = (index / N) * N;
    let ko = index * D;
    var acc : array<f32, D>;
    for (var ii = 0; ii < N; ii++) {
      let i = s0 + ii;
      let qo = i * D;
      let p = exp(score(qo, ko) - S[3 * i]) * S[3 * i + 1];
      ${term}
    }
    for (var c = 0; c < D; c++) { result[ko + c] = acc[c]${this.value ? "" : " * uniforms.scale"}; }
  }`;
  }
}

/**
 * Scaled dot-product attention `softmax(scale·q·kᵀ)·v` on webgpu: `q, k, v` float32 `[b, h, n, d]` →
 * `[b, h, n, d]`. Forward one dispatch (the probabilities are not stored), backward four: per-row softmax
 * statistics and `δ`, then `dQ` per query row and `dK`, `dV` per key row, each recomputing the probabilities
 * it needs (`n·d` work per row). The tfjs-op form takes ≈ 4 + 9 dispatches, two of them batched products of
 * `n × n` tiles.
 *
 * @throws {Error} when the active backend is not webgpu.
 */
export function attentionWebGPU(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, scale: number): tf.Tensor4D {
  if (tf.getBackend() !== "webgpu") {
    throw new Error(`attentionWebGPU: the active backend is ${tf.getBackend()}`);
  }
  if (q.rank !== 4 || !q.shape.every((x, i) => x === k.shape[i] && x === v.shape[i])) {
    throw new TypeError(
      `attentionWebGPU: q [${q.shape}], k [${k.shape}], v [${v.shape}] must be equal [b, h, n, d]`,
    );
  }
  const [b, h, n, d] = q.shape;
  const rows = b * h * n;
  const u = [i32(rows), f32(scale)];
  const f = tf.customGrad(
    ((qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor, save: (t: tf.Tensor[]) => void) => {
      save([qq, kk, vv]);
      const value = run(new AttentionForwardProgram(qq.shape, rows, n, d, "fwd"), [qq, kk, vv], u);
      const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [qs, ks, vs] = saved;
        const st = run(new AttentionStatsProgram([rows, 3], rows, n, d, "stats"), [qs, ks, vs, dy], u);
        const dq = run(new AttentionDqProgram(qs.shape, rows, n, d, "dq"), [qs, ks, vs, dy, st], u);
        const dk = run(new AttentionDkvProgram(qs.shape, rows, n, d, false), [qs, ks, vs, dy, st], u);
        const dv = run(new AttentionDkvProgram(qs.shape, rows, n, d, true), [qs, ks, dy, st], u);
        st.dispose();
        return [dq, dk, dv];
      };
      return { value, gradFunc };
    }) as unknown as GradFn,
  );
  return f(q, k, v) as tf.Tensor4D;
}

/** True when {@link attentionWebGPU} runs for `rows` query rows of width `d` on the active backend. */
export function webgpuAttentionFor(rows: number, n: number, d: number): boolean {
  // n and d are compiled into the shaders; the per-row arrays of d floats stay small
  return webgpuLayersFor(rows) && n <= 1024 && d <= 128;
}

/**
 * True when {@link linearWebGPU} runs for `x [n, i]·W [i, o]` on the active backend (webgpu, the WGSL kernels
 * on, and every dispatch within the workgroup-count limit).
 */
export function webgpuLinearFor(n: number, i: number, o: number): boolean {
  return webgpuLayersFor(n * Math.max(i, o), i * o);
}

/**
 * A linear layer `y = x·W (+ b)` on webgpu: `x` float32 `[..., i]`, `W` `[i, o]`, `b` `[o]` → `[..., o]`.
 * Forward one dispatch (the bias inside), backward one for `dx` and one each for `dW` and `db`, the two
 * row-sums run in parallel over the rows (see {@link RowSumProgram}). Float32 throughout; the sums' order
 * differs from tfjs's matrix products, so results agree with them to rounding (tests/layers/fused_webgpu_test.ts).
 *
 * @throws {Error} when the active backend is not webgpu.
 */
export function linearWebGPU(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  if (tf.getBackend() !== "webgpu") throw new Error(`linearWebGPU: the active backend is ${tf.getBackend()}`);
  const [i, o] = w.shape as [number, number];
  if (w.rank !== 2 || x.shape[x.rank - 1] !== i || (b && (b.rank !== 1 || b.shape[0] !== o))) {
    throw new TypeError(
      `linearWebGPU: x [${x.shape}], W [${w.shape}]${b ? `, b [${b.shape}]` : ""} do not fit`,
    );
  }
  const n = x.size / i;
  const outShape = [...x.shape.slice(0, -1), o];
  const bias = b !== undefined;
  const f = tf.customGrad(
    ((...args: unknown[]) => {
      const save = args[args.length - 1] as (t: tf.Tensor[]) => void;
      const [xx, ww] = args as [tf.Tensor, tf.Tensor];
      save([xx, ww]);
      const ins = bias ? [xx, ww, args[2] as tf.Tensor] : [xx, ww];
      const value = run(new LinearForwardProgram(outShape, n * o, bias), ins, [i32(n * o), i32(i), i32(o)]);
      const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws] = saved;
        const dx = run(new LinearDxProgram(xs.shape, n * i), [dy, ws], [i32(n * i), i32(i), i32(o)]);
        const dw = run(new LinearParamGradProgram(i, o, false), [xs, dy], [
          i32(n),
          i32(i * o),
          i32(i),
          i32(o),
        ]);
        if (!bias) return [dx, dw];
        const db = run(new LinearParamGradProgram(i, o, true), [dy], [i32(n), i32(o), i32(i), i32(o)]);
        return [dx, dw, db];
      };
      return { value, gradFunc };
    }) as unknown as GradFn,
  );
  return bias ? f(x, w, b!) : f(x, w);
}

/**
 * BatchNorm over every axis but the last with the batch's statistics (training), on webgpu: `x` float32
 * `[..., c]`, `gamma`/`beta` `[c]`. Returns `y` and the biased batch mean and variance `[c]` (for the moving
 * averages; no gradient flows through them). Statistics 1 dispatch (two passes per channel, rows summed in
 * parallel), `y` 1 and two slices for `μ`, `σ²`; backward 3 (`dγ`, `dβ`, then `dx` with the full batch-norm
 * gradient through the statistics). The tfjs-op form (`tf.moments`, `tf.batchNorm` and their gradients) takes
 * ≈ 6 + 20.
 *
 * @throws {Error} when the active backend is not webgpu.
 */
export function batchNormTrainWebGPU(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  eps: number,
): { y: tf.Tensor; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  const c = x.shape[x.rank - 1];
  const { y, stats } = batchNormStatsAndY(x, gamma, beta, eps);
  const [mean, variance] = tf.tidy(() => [
    tf.slice(stats, [0, 0], [1, c]).reshape([c]) as tf.Tensor1D,
    tf.slice(stats, [1, 0], [1, c]).reshape([c]) as tf.Tensor1D,
  ]);
  stats.dispose();
  return { y, mean, variance };
}

/** BatchNorm's moving statistics before a training step, and their momentum. */
export interface BatchNormMoving {
  mean: tf.Tensor;
  variance: tf.Tensor;
  momentum: number;
}

/** A BatchNorm training step's output and the new moving statistics (the caller owns all three). */
export interface BatchNormTrainResult {
  y: tf.Tensor;
  movingMean: tf.Tensor;
  movingVar: tf.Tensor;
}

/**
 * {@link batchNormTrainWebGPU} and the moving statistics' update in one go: returns `y` and the new moving
 * mean and variance (`old·m + μ·(1 − m)`, `old·m + σ²·n/(n − 1)·(1 − m)`; the caller writes them into its
 * variables and disposes them), read from the batch statistics where the kernel left them: 2 dispatches for
 * the update instead of 2 slices and 7 elementwise ops.
 *
 * @throws {Error} when the active backend is not webgpu.
 */
export function batchNormTrainMovingWebGPU(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  eps: number,
  moving: BatchNormMoving,
): BatchNormTrainResult {
  const c = x.shape[x.rank - 1];
  const n = x.size / c;
  const { y, stats } = batchNormStatsAndY(x, gamma, beta, eps);
  const m = moving.momentum;
  const update = (old: tf.Tensor, row: number, f: number) =>
    run(new MovingStatProgram([c], c), [old, stats], [i32(c), i32(row), f32(m), f32(f), f32(1 - m)]);
  const movingMean = update(moving.mean, 0, 1);
  const movingVar = update(moving.variance, 1, n > 1 ? n / (n - 1) : 1);
  stats.dispose();
  return { y, movingMean, movingVar };
}

/** The batch statistics `[μ; σ²]` (`[2, c]`) and the differentiable `y` of BatchNorm in training. */
function batchNormStatsAndY(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  eps: number,
): { y: tf.Tensor; stats: tf.Tensor } {
  if (tf.getBackend() !== "webgpu") {
    throw new Error(`batchNormTrainWebGPU: the active backend is ${tf.getBackend()}`);
  }
  const c = x.shape[x.rank - 1];
  const n = x.size / c;
  const stats = run(new BatchNormStatsProgram(c), [x], [i32(n), i32(c)]);
  const f = tf.customGrad(
    ((xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor, save: (t: tf.Tensor[]) => void) => {
      save([xx, gg, stats]);
      const value = run(new BatchNormForwardProgram(xx.shape, xx.size), [xx, stats, gg, bb], [
        i32(xx.size),
        i32(c),
        f32(eps),
      ]);
      const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, gs, st] = saved;
        const dg = run(new BatchNormGammaGradProgram([c], c), [xs, dy, st], [i32(n), i32(c), f32(eps)]);
        const db = run(new LayerNormParamGradProgram(c, true), [dy], [i32(n), i32(c)]);
        const dx = run(new BatchNormDxProgram(xs.shape, xs.size), [xs, dy, st, gs, dg, db], [
          i32(xs.size),
          i32(c),
          f32(eps),
          f32(n),
        ]);
        return [dx, dg, db];
      };
      return { value, gradFunc };
    }) as unknown as GradFn,
  );
  return { y: f(x, gamma, beta), stats };
}

/**
 * Depthwise 1-D cross-correlation along the token axis with non-causal 'same' padding (⌊(k−1)/2⌋ left), no bias,
 * on webgpu: `x` float32 `[b, l, c]`, kernel `[1, k, c, 1]` → `[b, l, c]`. Forward one dispatch, backward two
 * (`dx` elementwise; `dW` a row sum over the batch's `b·l` rows in parallel — tfjs's depthwise filter gradient
 * gives each of the `k·c` outputs one invocation looping over every row).
 *
 * @throws {Error} when the active backend is not webgpu.
 */
export function depthwiseConv1dWebGPU(x: tf.Tensor, kernel: tf.Tensor): tf.Tensor3D {
  if (tf.getBackend() !== "webgpu") {
    throw new Error(`depthwiseConv1dWebGPU: the active backend is ${tf.getBackend()}`);
  }
  const [b, l, c] = x.shape;
  const k = kernel.shape[1] as number;
  if (
    x.rank !== 3 || kernel.rank !== 4 || kernel.shape[0] !== 1 || kernel.shape[2] !== c ||
    kernel.shape[3] !== 1
  ) {
    throw new TypeError(
      `depthwiseConv1dWebGPU: x [${x.shape}] and kernel [${kernel.shape}] do not fit [b, l, c], [1, k, c, 1]`,
    );
  }
  const left = Math.floor((k - 1) / 2);
  const count = b * l * c;
  const u = [i32(count), i32(l), i32(c), i32(k), i32(left)];
  const f = tf.customGrad(
    ((xx: tf.Tensor, kk: tf.Tensor, save: (t: tf.Tensor[]) => void) => {
      save([xx, kk]);
      const value = run(new DepthwiseConv1dProgram(xx.shape, count, false), [xx, kk], u);
      const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ks] = saved;
        const dx = run(new DepthwiseConv1dProgram(xs.shape, count, true), [dy, ks], u);
        const dw = run(new DepthwiseConv1dFilterGradProgram(ks.shape, k * c), [xs, dy], [
          i32(b * l),
          i32(k * c),
          i32(l),
          i32(c),
          i32(left),
        ]);
        return [dx, dw];
      };
      return { value, gradFunc };
    }) as unknown as GradFn,
  );
  return f(x, kernel) as tf.Tensor3D;
}

/**
 * 3×3 convolution with one pixel of zero padding on every side, stride `stride`, no bias, on webgpu: `x` float32
 * `[b, h, w, ci]`, kernel `[3, 3, ci, co]` → `[b, ⌊(h−1)/s⌋+1, ⌊(w−1)/s⌋+1, co]`. Forward one dispatch
 * (padding inside), backward two: `dx` per input element and the kernel gradient as a row sum over the batch's
 * output positions in parallel — the tfjs form (`pad`, `conv2d` and their gradients) takes 2 + 3, and its
 * filter gradient gives each of the `9·ci·co` outputs one invocation looping over every position.
 *
 * @throws {Error} when the active backend is not webgpu.
 */
export function conv3x3WebGPU(x: tf.Tensor, kernel: tf.Tensor, stride: number): tf.Tensor4D {
  if (tf.getBackend() !== "webgpu") {
    throw new Error(`conv3x3WebGPU: the active backend is ${tf.getBackend()}`);
  }
  const [b, h, w, ci] = x.shape;
  const co = kernel.shape[3] as number;
  if (
    x.rank !== 4 || kernel.rank !== 4 || kernel.shape[0] !== 3 || kernel.shape[1] !== 3 ||
    kernel.shape[2] !== ci ||
    !(Number.isInteger(stride) && stride >= 1)
  ) {
    throw new TypeError(
      `conv3x3WebGPU: x [${x.shape}], kernel [${kernel.shape}], stride ${stride} do not fit`,
    );
  }
  const ho = Math.floor((h - 1) / stride) + 1;
  const wo = Math.floor((w - 1) / stride) + 1;
  const dims = [h, w, ci, co, ho, wo, stride].map(i32);
  const f = tf.customGrad(
    ((xx: tf.Tensor, kk: tf.Tensor, save: (t: tf.Tensor[]) => void) => {
      save([xx, kk]);
      const n = b * ho * wo * co;
      const value = run(new Conv3x3Program([b, ho, wo, co], n, false), [xx, kk], [i32(n), ...dims]);
      const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ks] = saved;
        const dx = run(new Conv3x3Program(xs.shape, xs.size, true), [dy, ks], [i32(xs.size), ...dims]);
        const dk = run(new Conv3x3FilterGradProgram(ks.shape, ks.size), [xs, dy], [
          i32(b * ho * wo),
          i32(ks.size),
          ...dims,
        ]);
        return [dx, dk];
      };
      return { value, gradFunc };
    }) as unknown as GradFn,
  );
  return f(x, kernel) as tf.Tensor4D;
}
