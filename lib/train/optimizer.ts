/**
 * AdamW (Adam with decoupled weight decay, Loshchilov & Hutter, "Decoupled Weight Decay Regularization",
 * ICLR 2019) with two parameter groups: weights that decay and weights that do not (A_log, D, norms, biases,
 * as returned by `MerbaModel.weightGroups()`), plus optional global-norm gradient clipping.
 *
 * tfjs 4.22 ships Adam but no AdamW (`tfjs-core/dist/optimizers/` has adam, adamax, adagrad, adadelta,
 * momentum, rmsprop and sgd only), and its Adam folds no decay into the update. This class follows the
 * PyTorch `torch.optim.AdamW` update order, per step t (1-based), with learning rate η_t and decay λ:
 *
 *     θ ← θ·(1 − η_t·λ)                       (decoupled decay; λ = 0 for the noDecay group)
 *     m ← β1·m + (1 − β1)·g
 *     v ← β2·v + (1 − β2)·g²
 *     θ ← θ − η_t · (m / (1 − β1^t)) / (sqrt(v / (1 − β2^t)) + ε)
 *
 * The learning rate is a plain number that the schedule sets before each step (`optimizer.learningRate`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  adamwGroupLayout,
  adamwGroups,
  adamwGroupStepWebGPU,
  adamwWebGPUApplies,
  sumOfSquaresWebGPU,
} from "./optimizer_webgpu.ts";

/** Hyper-parameters of {@link AdamW}. */
export interface AdamWOptions {
  /** Initial learning rate η (the schedule overwrites `learningRate` per step). @default 1e-3 */
  learningRate?: number;
  /** First-moment decay β1. @default 0.9 */
  beta1?: number;
  /** Second-moment decay β2. @default 0.999 */
  beta2?: number;
  /** ε added to sqrt(v̂). @default 1e-8 */
  epsilon?: number;
  /** Decoupled weight decay λ for the `decay` group. @default 0.05 */
  weightDecay?: number;
  /**
   * On the cpu backend, update each variable in one host loop instead of ≈ 12 tfjs ops (same float32 results,
   * bit for bit); on webgpu, in WGSL: one dispatch per group of up to six variables for the moments (packed `[m | v]`
   * state) and one per variable for the parameter (equal to float32 rounding).
   * Other backends always use the ops. @default true
   */
  fused?: boolean;
}

/** Two parameter groups: `decay` gets weight decay, `noDecay` (A_log, D, norms, biases) does not. */
export interface WeightGroups {
  /** Variables updated with decay λ. */
  decay: tf.Variable[];
  /** Variables updated without decay. */
  noDecay: tf.Variable[];
}

/** Serialisable optimizer state (moments in variable order, for checkpoints). */
export interface AdamWState {
  /** Steps taken so far (t of the last update). */
  step: number;
  /** First moments, one per variable in `decay` then `noDecay` order. */
  m: Float32Array[];
  /** Second moments, same order. */
  v: Float32Array[];
}

/**
 * AdamW over fixed parameter groups.
 *
 * Use {@link AdamW.step} with gradients from `tf.variableGrads` (keyed by variable name), or
 * {@link AdamW.applyGradients} (the `tf.Optimizer` interface). Variables missing from the gradient map are
 * left unchanged (and their moments not advanced), as in tfjs's own optimizers.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { AdamW } from "./optimizer.ts";
 * await tf.setBackend("cpu");
 * const w = tf.variable(tf.tensor1d([1, -2]));
 * const b = tf.variable(tf.tensor1d([0.5]));
 * const opt = new AdamW({ decay: [w], noDecay: [b] }, { learningRate: 0.1, weightDecay: 0.1 });
 * const { grads, value } = tf.variableGrads(() => tf.add(tf.sum(tf.square(w)), tf.sum(b)), [w, b]);
 * opt.applyGradients(grads);
 * tf.dispose([value, ...Object.values(grads)]);
 * // first step: θ(1 − ηλ) − η·sign(g)
 * const got = await w.data();
 * if (Math.abs(got[0] - (1 * 0.99 - 0.1)) > 1e-6) throw new Error(String(got[0]));
 * opt.dispose();
 * ```
 */
export class AdamW extends tf.Optimizer {
  /** Registered class name. */
  static get className(): string {
    return "MerbaAdamW";
  }
  /** Current learning rate η (set by the schedule before each step). */
  learningRate: number;
  /** β1. */
  readonly beta1: number;
  /** β2. */
  readonly beta2: number;
  /** ε. */
  readonly epsilon: number;
  /** Weight decay λ for the decay group. */
  readonly weightDecay: number;
  /** Variables in state order: decay group first, then noDecay. */
  readonly variables: tf.Variable[];
  /** Host-loop update on cpu, grouped WGSL update on webgpu (see {@link AdamWOptions.fused}). */
  readonly fused: boolean;
  private readonly decays: Set<string>;
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];
  /**
   * The fused webgpu update's state: per group of variables (`adamwGroups`), their moments packed as
   * `[m_0 | v_0 | m_1 | v_1 | …]` at `offsets`. While set it is the live state and `m`/`v` are stale (see
   * {@link AdamW.unpack}).
   */
  private packed: { members: number[]; offsets: number[]; state: tf.Variable }[] | null = null;
  private t = 0;

  /**
   * @param groups the parameter groups (see `MerbaModel.weightGroups()`); a variable may not be in both.
   * @param options hyper-parameters (defaults in {@link AdamWOptions}).
   * @throws {RangeError} on a non-finite or negative hyper-parameter, β outside [0, 1), or a variable in both
   *   groups.
   */
  constructor(groups: WeightGroups, options: AdamWOptions = {}) {
    super();
    const { learningRate = 1e-3, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8, weightDecay = 0.05 } = options;
    this.fused = options.fused ?? true;
    for (const [k, val] of Object.entries({ learningRate, epsilon, weightDecay })) {
      if (!(Number.isFinite(val) && val >= 0)) {
        throw new RangeError(`AdamW: ${k} = ${val}, expected a finite value >= 0`);
      }
    }
    for (const [k, val] of Object.entries({ beta1, beta2 })) {
      if (!(val >= 0 && val < 1)) throw new RangeError(`AdamW: ${k} = ${val}, expected a value in [0, 1)`);
    }
    this.learningRate = learningRate;
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.epsilon = epsilon;
    this.weightDecay = weightDecay;
    this.decays = new Set(groups.decay.map((v) => v.name));
    for (const v of groups.noDecay) {
      if (this.decays.has(v.name)) {
        throw new RangeError(`AdamW: variable "${v.name}" is in both the decay and the noDecay group`);
      }
    }
    this.variables = [...groups.decay, ...groups.noDecay];
    this.m = this.variables.map((v) => tf.tidy(() => tf.zerosLike(v).variable(false)));
    this.v = this.variables.map((v) => tf.tidy(() => tf.zerosLike(v).variable(false)));
  }

  /** Number of updates applied so far. */
  get stepCount(): number {
    return this.t;
  }

  /**
   * Applies one AdamW update.
   *
   * @param grads gradient per variable name (as from `tf.variableGrads`), or a NamedTensor list. Not disposed.
   */
  override applyGradients(
    grads: tf.NamedTensorMap | { name: string; tensor: tf.Tensor }[],
    opts: { gradScale?: number } = {},
  ): void {
    const map: tf.NamedTensorMap = Array.isArray(grads)
      ? Object.fromEntries(grads.map((g) => [g.name, g.tensor]))
      : grads;
    const scale = opts.gradScale ?? 1;
    if (!(Number.isFinite(scale) && scale >= 0)) {
      throw new RangeError(`AdamW: gradScale = ${scale}, expected a finite value >= 0`);
    }
    this.t++;
    const t = this.t;
    const lr = this.learningRate;
    // Bias corrections computed in float64 on the host: 1 − β^t.
    const bc1 = 1 - Math.pow(this.beta1, t);
    const bc2 = 1 - Math.pow(this.beta2, t);
    if (this.fused && this.variables.every((v) => adamwWebGPUApplies(v.size))) {
      this.applyWebGPU(map, scale, lr, bc1, bc2);
      this.incrementIterations();
      return;
    }
    this.unpack();
    if (this.fused && tf.getBackend() === "cpu") {
      this.applyCpu(map, scale, lr, bc1, bc2);
      this.incrementIterations();
      return;
    }
    tf.tidy(() => {
      this.variables.forEach((theta, i) => {
        const g0 = map[theta.name];
        if (g0 == null) return;
        const g = scale === 1 ? g0 : tf.mul(g0, scale);
        const decay = this.decays.has(theta.name) ? this.weightDecay : 0;
        // θ ← θ·(1 − ηλ)
        const decayed = decay > 0 ? tf.mul(theta, 1 - lr * decay) : theta;
        // m ← β1·m + (1 − β1)·g ;  v ← β2·v + (1 − β2)·g²
        const m = tf.add(tf.mul(this.m[i], this.beta1), tf.mul(g, 1 - this.beta1));
        const v = tf.add(tf.mul(this.v[i], this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        this.m[i].assign(m);
        this.v[i].assign(v);
        // θ ← θ − η·(m/bc1) / (sqrt(v/bc2) + ε)
        const denom = tf.add(tf.sqrt(tf.div(v, bc2)), this.epsilon);
        const update = tf.div(tf.mul(m, lr / bc1), denom);
        theta.assign(tf.sub(decayed, update));
      });
    });
    this.incrementIterations();
  }

  /**
   * The same update as the op path, as one loop per variable over the cpu backend's arrays (the op path
   * dispatches ≈ 12 kernels per variable, ≈ 900 per merba-tiny step, whose bookkeeping costs more than the
   * arithmetic). Every intermediate is rounded to float32 in the op path's order, so both paths give the
   * same bits (checked in `tests/train/optimizer_test.ts`).
   */
  private applyCpu(map: tf.NamedTensorMap, scale: number, lr: number, bc1: number, bc2: number): void {
    const be = tf.backend() as unknown as { readSync(id: unknown): Float32Array };
    const f = Math.fround;
    const b1 = f(this.beta1), b2 = f(this.beta2), c1 = f(1 - this.beta1), c2 = f(1 - this.beta2);
    const eps = f(this.epsilon), lrc = f(lr / bc1), bc2f = f(bc2), sc = f(scale);
    this.variables.forEach((theta, i) => {
      const g = gradientOf(map, theta);
      if (g == null) return;
      const decay = this.decays.has(theta.name) ? this.weightDecay : 0;
      const keep = f(1 - lr * decay);
      const gv = be.readSync(g.dataId);
      const mv = be.readSync(this.m[i].dataId);
      const vv = be.readSync(this.v[i].dataId);
      const pv = be.readSync(theta.dataId);
      const n = pv.length;
      const m2 = new Float32Array(n), v2 = new Float32Array(n), p2 = new Float32Array(n);
      for (let k = 0; k < n; k++) {
        const gk = sc === 1 ? gv[k] : f(gv[k] * sc);
        const m = f(f(mv[k] * b1) + f(gk * c1));
        const v = f(f(vv[k] * b2) + f(f(gk * gk) * c2));
        m2[k] = m;
        v2[k] = v;
        const denom = f(f(Math.sqrt(f(v / bc2f))) + eps);
        const p = decay > 0 ? f(pv[k] * keep) : pv[k];
        p2[k] = f(p - f(f(m * lrc) / denom));
      }
      const shape = theta.shape;
      for (const [target, values] of [[this.m[i], m2], [this.v[i], v2], [theta, p2]] as const) {
        const next = tf.tensor(values, shape, "float32");
        target.assign(next);
        next.dispose();
      }
    });
  }

  /**
   * The same update on webgpu in one dispatch per group of up to six variables (their moments) plus one per
   * variable (its parameter) — `optimizer_webgpu.ts` — instead of ≈ 14 per variable plus scalar uploads;
   * float32 in the op path's order (equal to it up to float32 rounding, tested). The moments live packed per
   * group while this path runs.
   */
  private applyWebGPU(map: tf.NamedTensorMap, scale: number, lr: number, bc1: number, bc2: number): void {
    if (!this.packed) {
      this.packed = adamwGroups(this.variables.map((v) => v.size)).map((members) => ({
        members,
        offsets: adamwGroupLayout(members.map((i) => this.variables[i].size)).offsets,
        state: tf.tidy(() =>
          tf.concat(members.flatMap((i) => [tf.reshape(this.m[i], [-1]), tf.reshape(this.v[i], [-1])]))
            .variable(false)
        ),
      }));
    }
    const scalars = {
      scale,
      beta1: this.beta1,
      beta2: this.beta2,
      oneMinusBeta1: 1 - this.beta1,
      oneMinusBeta2: 1 - this.beta2,
      lrOverBc1: lr / bc1,
      bc2,
      epsilon: this.epsilon,
      keep: 1 - lr * this.weightDecay,
    };
    for (const { members, state } of this.packed) {
      const thetas = members.map((i) => this.variables[i]);
      const grads = thetas.map((theta) => gradientOf(map, theta) ?? null);
      if (grads.every((g) => g === null)) continue;
      const next = adamwGroupStepWebGPU(
        thetas,
        grads,
        thetas.map((theta) => this.weightDecay > 0 && this.decays.has(theta.name)),
        state,
        scalars,
      );
      state.assign(next.state);
      next.thetas.forEach((p, j) => {
        if (p) thetas[j].assign(p);
      });
      tf.dispose([next.state, ...next.thetas.filter((p) => p !== null)]);
    }
  }

  /** Moves a packed webgpu state back into `m` and `v` (before another path runs or the state is replaced). */
  private unpack(): void {
    const packed = this.packed;
    if (!packed) return;
    this.packed = null;
    for (const { members, offsets, state } of packed) {
      members.forEach((i, j) => {
        const theta = this.variables[i];
        const n = theta.size;
        tf.tidy(() => {
          this.m[i].assign(tf.reshape(tf.slice(state, [offsets[j]], [n]), theta.shape));
          this.v[i].assign(tf.reshape(tf.slice(state, [offsets[j] + n], [n]), theta.shape));
        });
      });
    }
    tf.dispose(packed.map((g) => g.state));
  }

  /**
   * Alias of {@link AdamW.applyGradients} that reads better in a training loop.
   *
   * @param grads gradient per variable name. Not disposed.
   */
  step(grads: tf.NamedTensorMap, opts: { gradScale?: number } = {}): void {
    this.applyGradients(grads, opts);
  }

  /** Reads the optimizer state (step and moments) to host memory, for a checkpoint. */
  async getState(): Promise<AdamWState> {
    if (this.packed) {
      const groups = this.packed;
      const data = await Promise.all(groups.map((g) => g.state.data() as Promise<Float32Array>));
      const m: Float32Array[] = [];
      const v: Float32Array[] = [];
      groups.forEach(({ members, offsets }, gi) => {
        members.forEach((i, j) => {
          const n = this.variables[i].size;
          m[i] = data[gi].slice(offsets[j], offsets[j] + n);
          v[i] = data[gi].slice(offsets[j] + n, offsets[j] + 2 * n);
        });
      });
      return { step: this.t, m, v };
    }
    const m = await Promise.all(this.m.map((x) => x.data() as Promise<Float32Array>));
    const v = await Promise.all(this.v.map((x) => x.data() as Promise<Float32Array>));
    return { step: this.t, m, v };
  }

  /**
   * Restores a state saved by {@link AdamW.getState} (same groups, same order).
   *
   * @throws {TypeError} when the number of moments or a moment's size does not match.
   */
  setState(state: AdamWState): void {
    const n = this.variables.length;
    if (state.m.length !== n || state.v.length !== n) {
      throw new TypeError(
        `AdamW.setState: state has ${state.m.length}/${state.v.length} moments, expected ${n}`,
      );
    }
    this.variables.forEach((theta, i) => {
      for (const [name, arr] of [["m", state.m[i]], ["v", state.v[i]]] as const) {
        if (arr.length !== theta.size) {
          throw new TypeError(
            `AdamW.setState: ${name}[${i}] (${theta.name}) has ${arr.length} values, expected ${theta.size}`,
          );
        }
      }
    });
    if (this.packed) {
      tf.dispose(this.packed.map((g) => g.state));
      this.packed = null;
    }
    this.variables.forEach((theta, i) => {
      for (const [arr, target] of [[state.m[i], this.m[i]], [state.v[i], this.v[i]]] as const) {
        tf.tidy(() => target.assign(tf.tensor(arr, theta.shape, "float32")));
      }
    });
    this.t = state.step;
    this.iterations_ = state.step;
  }

  /** Disposes the moment variables (not the model's variables). */
  override dispose(): void {
    tf.dispose([...this.m, ...this.v, ...(this.packed ?? []).map((g) => g.state)]);
    this.packed = null;
  }

  /** Hyper-parameters, for logs and results files. */
  override getConfig(): tf.serialization.ConfigDict {
    return {
      learningRate: this.learningRate,
      beta1: this.beta1,
      beta2: this.beta2,
      epsilon: this.epsilon,
      weightDecay: this.weightDecay,
    };
  }
}

/**
 * The gradient of `theta` in `map` for the fused paths (null when absent), checked to be float32 like `theta`
 * and of its size.
 */
function gradientOf(map: tf.NamedTensorMap, theta: tf.Variable): tf.Tensor | null {
  const g = map[theta.name];
  if (g == null) return null;
  if (g.dtype !== "float32" || theta.dtype !== "float32") {
    throw new TypeError(
      `AdamW: ${theta.name} and its gradient must be float32 (got ${theta.dtype}, ${g.dtype})`,
    );
  }
  if (g.size !== theta.size) {
    throw new TypeError(`AdamW: gradient of ${theta.name} has ${g.size} values, expected ${theta.size}`);
  }
  return g;
}

/**
 * Global L2 norm of a set of gradients, sqrt(Σ_i ||g_i||²), as a scalar tensor (caller disposes).
 *
 * @param grads gradients keyed by variable name; not disposed.
 */
export function globalNorm(grads: tf.NamedTensorMap): tf.Scalar {
  if (tf.getBackend() === "cpu") {
    // one host loop (float64 sum) instead of 2 kernels per gradient
    const be = tf.backend() as unknown as { readSync(id: unknown): Float32Array };
    let sum = 0;
    for (const g of Object.values(grads)) {
      const a = be.readSync(g.dataId);
      for (let k = 0; k < a.length; k++) sum += a[k] * a[k];
    }
    return tf.scalar(Math.sqrt(sum));
  }
  if (tf.getBackend() === "webgpu") {
    // one dispatch per group of up to 16 gradients instead of 2 per gradient
    return tf.tidy(() => tf.sqrt(sumOfSquaresWebGPU(Object.values(grads))) as tf.Scalar);
  }
  return tf.tidy(() => {
    const parts = Object.values(grads).map((g) => tf.sum(tf.square(g)));
    return (parts.length === 0 ? tf.scalar(0) : tf.sqrt(tf.addN(parts))) as tf.Scalar;
  });
}

/**
 * Scales gradients so their global norm is at most `maxNorm`: g ← g · min(1, maxNorm / (norm + 1e-6))
 * (PyTorch `clip_grad_norm_`). Returns new tensors; the inputs are not disposed.
 *
 * @param grads gradients keyed by variable name.
 * @param norm their global norm (host number, from {@link globalNorm}).
 * @param maxNorm the bound; `Infinity` returns clones.
 */
export function clipByGlobalNorm(grads: tf.NamedTensorMap, norm: number, maxNorm: number): tf.NamedTensorMap {
  const scale = Math.min(1, maxNorm / (norm + 1e-6));
  const out: tf.NamedTensorMap = {};
  for (const [k, g] of Object.entries(grads)) {
    out[k] = scale === 1 ? tf.clone(g) : tf.tidy(() => tf.mul(g, scale));
  }
  return out;
}
