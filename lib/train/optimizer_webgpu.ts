/**
 * WebGPU kernels for the optimizer step: the AdamW update in one dispatch per group of up to six variables
 * (both moments of every member over the group's packed `[m | v]` state) plus one per variable (its
 * parameter), and the sum of squares of many gradients (for the global norm) in one dispatch per group of
 * gradients.
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
import { cachedScalar } from "../ops/constants.ts";

const WORKGROUP = 64;
/** Largest variable one update covers: its packed moments (2n) within 65535 workgroups of {@link WORKGROUP}. */
const MAX_ELEMENTS = Math.floor((65535 * WORKGROUP) / 2);
/** Most gradients one sum-of-squares shader reads (also bounded by the device's storage-buffer limit). */
const MAX_SUM_INPUTS = 16;
const SUM_WORKGROUP = 256;

/** Most variables whose moments one dispatch updates (their gradients and the group state are its inputs). */
export const ADAMW_GROUP_MAX = 6;

/**
 * Both moments of a group of up to {@link ADAMW_GROUP_MAX} variables in one dispatch, over the group's packed
 * state: member `j` (size `n_j`) owns `[m_j | v_j]` at float offset `o_j` (`o_0` = 0, consecutive). Invocation
 * `o_j + e` writes `m' = m·β1 + g·(1 − β1)`, invocation `o_j + n_j + e` writes `v' = v·β2 + (g·g)·(1 − β2)`,
 * `g = G_j[e]` (optionally scaled); a member without a gradient this step (bit `j` of `has` clear) keeps its
 * moments.
 */
class GroupMomentsProgram implements WebGPUProgram {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  uniforms: string;
  constructor(private readonly k: number, total: number) {
    this.variableNames = ["MV", ...Array.from({ length: k }, (_, j) => `G${j}`)];
    this.outputShape = [total];
    this.dispatch = [Math.ceil(total / WORKGROUP), 1, 1];
    this.shaderKey = `merba_adamw_moments_${k}`;
    const ns = Array.from({ length: k }, (_, j) => `n${j} : i32,`).join(" ");
    const os = Array.from({ length: k }, (_, j) => `o${j} : i32,`).join(" ");
    this.uniforms =
      `total : i32, has : i32, ${ns} ${os} scaled : i32, b1 : f32, c1 : f32, b2 : f32, c2 : f32, s : f32,`;
  }
  getUserCode(): string {
    // the member owning `index`: the last one whose offset is <= index
    const find = Array.from(
      { length: this.k },
      (_, j) =>
        j === 0
          ? `var slot = 0;\n    var base = uniforms.o0;\n    var n = uniforms.n0;`
          : `if (index >= uniforms.o${j}) { slot = ${j}; base = uniforms.o${j}; n = uniforms.n${j}; }`,
    ).join("\n    ");
    const read = Array.from({ length: this.k }, (_, j) => `if (slot == ${j}) { g = G${j}[e]; }`).join(
      " else ",
    );
    return `
  fn main(index : i32) {
    if (index >= uniforms.total) { return; }
    ${find}
    if (((uniforms.has >> u32(slot)) & 1) == 0) {
      result[index] = MV[index];
      return;
    }
    let local = index - base;
    let second = local >= n;
    let e = select(local, local - n, second);
    var g = 0.0;
    ${read}
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

/**
 * `θ' = θ·keep − (m'·lrc) / (sqrt(v'/bc2) + ε)` from the new moments `[m' | v']` at float offset `off` of a
 * group state, `keep` only where `decay` = 1.
 */
class ParamProgram implements WebGPUProgram {
  variableNames = ["P", "MV"];
  outputShape: number[];
  shaderKey = "merba_adamw_param";
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  uniforms = "n : i32, off : i32, decay : i32, keep : f32, lrc : f32, bc2 : f32, eps : f32,";
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
    let denom = sqrt(MV[uniforms.off + uniforms.n + index] / uniforms.bc2) + uniforms.eps;
    let step = (MV[uniforms.off + index] * uniforms.lrc) / denom;
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
  /** 1 − ηλ, applied to the members whose `decay` flag is set. */
  keep: number;
}

function webgpuBackend(): WebGPUBackend | null {
  return tf.getBackend() === "webgpu" ? tf.backend() as unknown as WebGPUBackend : null;
}

/** True when {@link adamwGroupStepWebGPU} can update a variable of `size` floats on the active backend. */
export function adamwWebGPUApplies(size: number): boolean {
  return webgpuBackend() !== null && size > 0 && size <= MAX_ELEMENTS;
}

/** Storage buffers one shader may bind on the active webgpu device (8, WebGPU's default, when unknown). */
function storageLimit(): number {
  const be = webgpuBackend() as unknown as { device?: GPUDevice } | null;
  return be?.device?.limits?.maxStorageBuffersPerShaderStage ?? 8;
}

/**
 * Splits variables (their sizes, in state order) into consecutive groups whose moments one dispatch updates:
 * at most {@link ADAMW_GROUP_MAX} members (and the device's storage-buffer limit minus the state and the
 * output), their packed state `2·Σn` within one dispatch. Returns the members' indices per group.
 */
export function adamwGroups(sizes: readonly number[], limit = storageLimit()): number[][] {
  const most = Math.max(1, Math.min(ADAMW_GROUP_MAX, limit - 2));
  const groups: number[][] = [];
  let cur: number[] = [];
  let floats = 0;
  sizes.forEach((n, i) => {
    if (cur.length === most || (cur.length > 0 && floats + 2 * n > 2 * MAX_ELEMENTS)) {
      groups.push(cur);
      cur = [];
      floats = 0;
    }
    cur.push(i);
    floats += 2 * n;
  });
  if (cur.length > 0) groups.push(cur);
  return groups;
}

/** Float offsets of each member's `[m | v]` in a group state, and the state's length (2·Σn). */
export function adamwGroupLayout(sizes: readonly number[]): { offsets: number[]; total: number } {
  const offsets: number[] = [];
  let total = 0;
  for (const n of sizes) {
    offsets.push(total);
    total += 2 * n;
  }
  return { offsets, total };
}

/**
 * One AdamW update of a group of variables on webgpu: one dispatch for every member's moments over the group
 * state (packed `[m_0 | v_0 | m_1 | v_1 | …]`, {@link adamwGroupLayout}), then one per member with a gradient
 * for its parameter. Returns the new state and, per member, the new parameter (null where `grads[j]` is null:
 * that member's moments and parameter stay as they were). The caller assigns and disposes them. All inputs
 * float32.
 *
 * @throws {Error} when the active backend is not webgpu, a size does not fit one dispatch, or the shapes
 *   disagree.
 */
export function adamwGroupStepWebGPU(
  thetas: readonly tf.Tensor[],
  grads: readonly (tf.Tensor | null)[],
  decays: readonly boolean[],
  state: tf.Tensor,
  s: AdamWStepScalars,
): { state: tf.Tensor; thetas: (tf.Tensor | null)[] } {
  const be = webgpuBackend();
  if (!be) throw new Error(`adamwGroupStepWebGPU: the active backend is ${tf.getBackend()}, not webgpu`);
  const k = thetas.length;
  const sizes = thetas.map((t) => t.size);
  const { offsets, total } = adamwGroupLayout(sizes);
  if (k === 0 || k > ADAMW_GROUP_MAX || k > storageLimit() - 2 || !sizes.every(adamwWebGPUApplies)) {
    throw new Error(
      `adamwGroupStepWebGPU: ${k} variables of sizes ${sizes.join(", ")}; expected 1..${
        Math.min(ADAMW_GROUP_MAX, storageLimit() - 2)
      } of 1..${MAX_ELEMENTS} values`,
    );
  }
  if (grads.length !== k || decays.length !== k || state.size !== total || total > 2 * MAX_ELEMENTS) {
    throw new TypeError(
      `adamwGroupStepWebGPU: ${k} variables, ${grads.length} gradients, ${decays.length} decay flags, state ` +
        `${state.size} (expected ${total})`,
    );
  }
  grads.forEach((g, j) => {
    if (g && g.size !== sizes[j]) {
      throw new TypeError(
        `adamwGroupStepWebGPU: gradient ${j} has ${g.size} values, its variable ${sizes[j]}`,
      );
    }
  });
  const f = (x: number) => ({ type: "float32", data: [x] });
  const i = (x: number) => ({ type: "int32", data: [x] });
  const eng = tf.engine();
  // a member without a gradient binds a placeholder that the shader never reads for it
  const inputs = [state, ...grads.map((g) => g ?? cachedScalar(0))];
  const has = grads.reduce((bits, g, j) => (g ? bits | (1 << j) : bits), 0);
  const next = eng.makeTensorFromTensorInfo(
    be.runWebGPUProgram(new GroupMomentsProgram(k, total), inputs, "float32", [
      i(total),
      i(has),
      ...sizes.map(i),
      ...offsets.map(i),
      i(s.scale !== 1 ? 1 : 0),
      f(s.beta1),
      f(s.oneMinusBeta1),
      f(s.beta2),
      f(s.oneMinusBeta2),
      f(s.scale),
    ]),
  );
  const newThetas = thetas.map((theta, j) =>
    grads[j] == null ? null : eng.makeTensorFromTensorInfo(
      be.runWebGPUProgram(new ParamProgram(theta.shape, sizes[j]), [theta, next], "float32", [
        i(sizes[j]),
        i(offsets[j]),
        i(decays[j] ? 1 : 0),
        f(s.keep),
        f(s.lrOverBc1),
        f(s.bc2),
        f(s.epsilon),
      ]),
    )
  );
  return { state: next, thetas: newThetas };
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
  const k = Math.max(1, Math.min(MAX_SUM_INPUTS, storageLimit() - 1));
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
