/**
 * WebGPU kernels for the optimizer step: the AdamW update in two dispatches per variable (both moments over a
 * packed `[m | v]` state, then the parameter) and the sum of squares of many gradients (for the global norm) in
 * one dispatch per group of gradients.
 *
 * Why: on webgpu the op-by-op AdamW update costs ≈ 14 dispatches per variable (scalar multiplies, adds,
 * square, sqrt, divide) plus a host-to-GPU upload for most scalar operands, and `tf.sum(tf.square(g))` two
 * more per gradient: for merba-tiny's 72 weights ≈ 1,150 of the ≈ 2,050 dispatches of a training step. A
 * training step on webgpu is bound by the host-side cost of each dispatch, not by arithmetic (on an H200,
 * ≈ 0.25–0.3 ms of host time per dispatch; BENCHMARKS.md, "Training and LOSO → Sixth session"), so fewer
 * dispatches is what makes it faster.
 *
 * The update is the op path's (`AdamW.applyGradients`), per element, in float32 and in the same order:
 *
 *     g  = g0·s                                  (s: clipping scale; skipped when s = 1)
 *     m' = m·β1 + g·(1 − β1)
 *     v' = v·β2 + (g·g)·(1 − β2)
 *     θ' = θ·(1 − ηλ) − (m'·(η/bc1)) / (sqrt(v'/bc2) + ε)      (the decay factor only for the decay group)
 *
 * The GPU may contract a multiply and an add into one fused multiply-add and WGSL allows a few ulp of error
 * in division and sqrt, so results agree with the op path to float32 rounding, not bit for bit (tested).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";

const WORKGROUP = 64;
/** Largest variable one update covers: its packed moments (2n) within 65535 workgroups of {@link WORKGROUP}. */
const MAX_ELEMENTS = Math.floor((65535 * WORKGROUP) / 2);
/** Most gradients one sum-of-squares shader reads (also bounded by the device's storage-buffer limit). */
const MAX_SUM_INPUTS = 16;
const SUM_WORKGROUP = 256;

/**
 * Both moments in one dispatch over the packed state `[m | v]` (2n floats): invocation `i < n` writes
 * `m' = m·β1 + g·(1 − β1)`, invocation `n + i` writes `v' = v·β2 + (g·g)·(1 − β2)`; `g` optionally scaled.
 */
class MomentsProgram implements WebGPUProgram {
  variableNames = ["MV", "G"];
  outputShape: number[];
  shaderKey = "merba_adamw_moments";
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  uniforms = "n : i32, scaled : i32, b1 : f32, c1 : f32, b2 : f32, c2 : f32, s : f32,";
  constructor(n: number) {
    this.outputShape = [2 * n];
    this.dispatch = [Math.ceil((2 * n) / WORKGROUP), 1, 1];
  }
  getUserCode(): string {
    return `
  fn main(index : i32) {
    if (index >= 2 * uniforms.n) { return; }
    let second = index >= uniforms.n;
    var g = G[select(index, index - uniforms.n, second)];
    if (uniforms.scaled == 1) { g = g * uniforms.s; }
    if (second) {
      let a = MV[index] * uniforms.b2;
      let b = (g * g) * uniforms.c2;
      result[index] = a + b;
    } else {
      let a = MV[index] * uniforms.b1;
      let b = g * uniforms.c1;
      result[index] = a + b;
    }
  }`;
  }
}

/** `θ' = θ·keep − (m'·lrc) / (sqrt(v'/bc2) + ε)` from the packed new moments, `keep` only where `decay` = 1. */
class ParamProgram implements WebGPUProgram {
  variableNames = ["P", "MV"];
  outputShape: number[];
  shaderKey = "merba_adamw_param";
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  uniforms = "n : i32, decay : i32, keep : f32, lrc : f32, bc2 : f32, eps : f32,";
  constructor(shape: number[], n: number) {
    this.outputShape = shape;
    this.dispatchLayout = { x: shape.map((_, i) => i) };
    this.dispatch = [Math.ceil(n / WORKGROUP), 1, 1];
  }
  getUserCode(): string {
    return `
  fn main(index : i32) {
    if (index >= uniforms.n) { return; }
    var p = P[index];
    if (uniforms.decay == 1) { p = p * uniforms.keep; }
    let denom = sqrt(MV[uniforms.n + index] / uniforms.bc2) + uniforms.eps;
    let step = (MV[index] * uniforms.lrc) / denom;
    result[index] = p - step;
  }`;
  }
}

/** Σ over `k` inputs of Σ x², one workgroup: each invocation strides over every input, then a tree sum. */
class SumSquaresProgram implements WebGPUProgram {
  variableNames: string[];
  outputShape = [1];
  shaderKey: string;
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number] = [1, 1, 1];
  workgroupSize: [number, number, number] = [SUM_WORKGROUP, 1, 1];
  uniforms: string;
  constructor(private readonly k: number) {
    this.variableNames = Array.from({ length: k }, (_, i) => `X${i}`);
    this.uniforms = Array.from({ length: k }, (_, i) => `n${i} : i32,`).join(" ");
    this.shaderKey = `merba_sum_squares_${k}`;
  }
  getUserCode(): string {
    const loops = Array.from({ length: this.k }, (_, i) => `
    for (var j = t; j < uniforms.n${i}; j = j + ${SUM_WORKGROUP}) {
      let x = X${i}[j];
      acc = acc + x * x;
    }`).join("");
    return `
  var<workgroup> partial : array<f32, ${SUM_WORKGROUP}>;
  fn main(index : i32) {
    let t = i32(localId.x);
    var acc = 0.0;${loops}
    partial[t] = acc;
    workgroupBarrier();
    for (var w = ${SUM_WORKGROUP / 2}; w > 0; w = w / 2) {
      if (t < w) { partial[t] = partial[t] + partial[t + w]; }
      workgroupBarrier();
    }
    if (t == 0) { result[0] = partial[0]; }
  }`;
  }
}

/** Scalars of one AdamW step, as the op path rounds them (float32). */
export interface AdamWStepScalars {
  /** Gradient scale (clipping); 1 skips the multiply. */
  scale: number;
  beta1: number;
  beta2: number;
  /** 1 − β1 and 1 − β2, computed in float64 then rounded (as `tf.mul(g, 1 - beta1)` does). */
  oneMinusBeta1: number;
  oneMinusBeta2: number;
  /** η / (1 − β1^t). */
  lrOverBc1: number;
  /** 1 − β2^t. */
  bc2: number;
  epsilon: number;
  /** 1 − ηλ, used when `decay` is true. */
  keep: number;
  decay: boolean;
}

function webgpuBackend(): WebGPUBackend | null {
  return tf.getBackend() === "webgpu" ? tf.backend() as unknown as WebGPUBackend : null;
}

/** True when {@link adamwStepWebGPU} can update a variable of `size` floats on the active backend. */
export function adamwWebGPUApplies(size: number): boolean {
  return webgpuBackend() !== null && size > 0 && size <= MAX_ELEMENTS;
}

/**
 * One AdamW update of one variable on webgpu, in two dispatches: `mv` is the packed state `[m | v]` (2n floats,
 * flat); returns new tensors `[mv', θ']` (the caller assigns and disposes them). All inputs float32.
 *
 * @throws {Error} when the active backend is not webgpu or the size exceeds one dispatch.
 */
export function adamwStepWebGPU(
  theta: tf.Tensor,
  g: tf.Tensor,
  mv: tf.Tensor,
  s: AdamWStepScalars,
): [tf.Tensor, tf.Tensor] {
  const be = webgpuBackend();
  if (!be) throw new Error(`adamwStepWebGPU: the active backend is ${tf.getBackend()}, not webgpu`);
  const n = theta.size;
  if (!adamwWebGPUApplies(n)) {
    throw new Error(`adamwStepWebGPU: the variable has ${n} values, expected 1..${MAX_ELEMENTS}`);
  }
  if (g.size !== n || mv.size !== 2 * n) {
    throw new TypeError(`adamwStepWebGPU: sizes θ ${n}, g ${g.size}, [m | v] ${mv.size} (expected n, n, 2n)`);
  }
  const f = (x: number) => ({ type: "float32", data: [x] });
  const i = (x: number) => ({ type: "int32", data: [x] });
  const eng = tf.engine();
  const mv2 = eng.makeTensorFromTensorInfo(
    be.runWebGPUProgram(new MomentsProgram(n), [mv, g], "float32", [
      i(n),
      i(s.scale !== 1 ? 1 : 0),
      f(s.beta1),
      f(s.oneMinusBeta1),
      f(s.beta2),
      f(s.oneMinusBeta2),
      f(s.scale),
    ]),
  );
  const p2 = eng.makeTensorFromTensorInfo(
    be.runWebGPUProgram(new ParamProgram(theta.shape, n), [theta, mv2], "float32", [
      i(n),
      i(s.decay ? 1 : 0),
      f(s.keep),
      f(s.lrOverBc1),
      f(s.bc2),
      f(s.epsilon),
    ]),
  );
  return [mv2, p2];
}

/**
 * Σ_i Σ x_i² over float32 tensors on webgpu, as a scalar tensor (caller disposes): one dispatch per group of
 * up to 16 tensors (fewer where the device binds fewer storage buffers), then an `addN` of the group sums.
 * Accumulation is float32 (per invocation, then a tree), like `tf.sum`.
 *
 * @throws {Error} when the active backend is not webgpu.
 */
export function sumOfSquaresWebGPU(xs: tf.Tensor[]): tf.Scalar {
  const be = webgpuBackend();
  if (!be) throw new Error(`sumOfSquaresWebGPU: the active backend is ${tf.getBackend()}, not webgpu`);
  if (xs.length === 0) return tf.scalar(0);
  const limit = (be as unknown as { device?: GPUDevice }).device?.limits?.maxStorageBuffersPerShaderStage ??
    8;
  const k = Math.max(1, Math.min(MAX_SUM_INPUTS, limit - 1));
  const eng = tf.engine();
  return tf.tidy(() => {
    const parts: tf.Tensor[] = [];
    for (let at = 0; at < xs.length; at += k) {
      const group = xs.slice(at, at + k);
      for (const x of group) {
        if (x.dtype !== "float32") {
          throw new TypeError(`sumOfSquaresWebGPU: expected float32, got ${x.dtype}`);
        }
      }
      const info = be.runWebGPUProgram(
        new SumSquaresProgram(group.length),
        group,
        "float32",
        group.map((x) => ({ type: "int32", data: [x.size] })),
      );
      parts.push(eng.makeTensorFromTensorInfo(info));
    }
    return tf.reshape(parts.length === 1 ? parts[0] : tf.addN(parts), []) as tf.Scalar;
  });
}
