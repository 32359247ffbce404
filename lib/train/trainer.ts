/**
 * The training loop: seeded batching and shuffling, flow-valid augmentation, AdamW with decay / no-decay
 * groups, warmup + cosine learning rate, optional class-balanced and dual-granularity loss (through
 * `model.loss`), gradient clipping, per-epoch evaluation sets, checkpoints, and a hard stop on a non-finite
 * loss or gradient.
 *
 * Tensor lifetimes: each step runs inside `tf.variableGrads` + `tf.tidy`; the only tensors that outlive a step
 * are the model's and the optimizer's variables, so `tf.memory().numTensors` is the same after every epoch
 * (tested). The loss and gradient norm are read back once per step (one sync per step, never per token).
 *
 * A step whose loss or gradient norm is NaN/Inf is NOT applied: the run stops with a
 * {@link TrainingDivergedError} naming the epoch, step, learning rate and the last good checkpoint, and the
 * model keeps the weights of the last good step.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { FlowDataset } from "../data/types.ts";
import { hashSeed } from "../layers/base.ts";
import {
  watchActiveWebGPUDevice,
  webgpuErrorCount,
  webgpuErrorsSince,
  WebGPUValidationError,
} from "../ops/webgpu_errors.ts";
import { WeightEma } from "./ema.ts";
import { augmentBatch, type AugmentOptions, defaultAugment, hflipFlow, resolveAugment } from "./augment.ts";
import { computeMetrics, type Metrics } from "./metrics.ts";
import { AdamW, globalNorm, type WeightGroups } from "./optimizer.ts";
import { mulberry32, shuffleInPlace } from "./random.ts";
import { warmupCosine } from "./schedule.ts";

/** What the trainer needs from a model (a subset of `MerbaModel`). */
export interface TrainableModel {
  /** Forward pass: x `[b, h, w, 3]` -> fine logits `[b, K_fine]` and coarse logits `[b, K_coarse]` or null. */
  apply(
    x: tf.Tensor4D,
    opts: { training: boolean; seed?: number },
  ): { fine: tf.Tensor2D; coarse: tf.Tensor2D | null };
  /** Scalar training loss (CE_fine + λ·CE_coarse), yFine `[b]` int32. */
  loss(
    out: { fine: tf.Tensor2D; coarse: tf.Tensor2D | null },
    yFine: tf.Tensor1D,
    opts?: { classWeights?: number[]; labelSmoothing?: number },
  ): tf.Scalar;
  /** Predicted class per sample `[b]` int32 at the given level (the model's inference rule). */
  predictLevel(out: { fine: tf.Tensor2D; coarse: tf.Tensor2D | null }, level: "fine" | "coarse"): tf.Tensor1D;
  /** Parameter groups for weight decay. */
  weightGroups(): WeightGroups;
  /**
   * Non-trainable variables a training-mode forward pass updates (BatchNorm moving statistics). The trainer
   * restores them when a step diverges, so a stopped run leaves the model as it was after the last good step.
   */
  stateVariables?(): tf.Variable[];
}

/** Training hyper-parameters. Defaults live in {@link DEFAULT_TRAIN}. */
export interface TrainOptions {
  /** Number of epochs (fixed in advance: the honest protocol). */
  epochs: number;
  /** Mini-batch size. @default 32 */
  batchSize?: number;
  /** Peak learning rate. @default 2e-3 */
  lr?: number;
  /** Final learning rate of the cosine. @default 1e-5 */
  minLr?: number;
  /** Warmup length in epochs (may be fractional; rounded to steps). @default 1 */
  warmupEpochs?: number;
  /** Decoupled weight decay of the decay group. @default 0.05 */
  weightDecay?: number;
  /** Max global gradient norm; null = no clipping. @default 5 */
  gradClip?: number | null;
  /** Seed of shuffling and augmentation. @default 0 */
  seed?: number;
  /** Weight classes by n / (K·n_c) over the training samples, K = classes present there (scikit-learn's
   * "balanced"). @default false */
  classBalanced?: boolean;
  /**
   * Label smoothing ε of both cross-entropy terms (target `(1 − ε)·onehot + ε/K`), in [0, 1). @default 0
   */
  labelSmoothing?: number;
  /** Augmentations (see `augment.ts`), or false for none. @default {hflip: 0.5, translate: 2} */
  augment?: AugmentOptions | false;
  /** Drop the last incomplete batch of each epoch. @default false */
  dropLast?: boolean;
  /**
   * Decay of an exponential moving average of the weights (`ema.ts`), e.g. 0.998; per-epoch evaluations and the
   * trained model use the average. Absent or null: off (the default; results files name it only when on).
   */
  ema?: number | null;
}

/** The augmentation defaults, from `augment.ts` (one place; the run key hashes the resulting object). */
const AUGMENT_DEFAULTS = defaultAugment();

/** Default hyper-parameters (a fresh object each call). */
export function defaultTrainOptions(): Required<Omit<TrainOptions, "epochs" | "ema">> {
  return {
    batchSize: 32,
    lr: 2e-3,
    minLr: 1e-5,
    warmupEpochs: 1,
    weightDecay: 0.05,
    gradClip: 5,
    seed: 0,
    classBalanced: false,
    labelSmoothing: 0,
    augment: { hflip: AUGMENT_DEFAULTS.hflip, translate: AUGMENT_DEFAULTS.translate },
    dropLast: false,
  };
}

/** Defaults, for documentation and results files. */
export const DEFAULT_TRAIN: Readonly<Required<Omit<TrainOptions, "epochs" | "ema">>> = Object.freeze(
  defaultTrainOptions(),
);

/** A set evaluated after every epoch (inner validation, or the test subject for the optimistic number). */
export interface EvalSet {
  /** Name in logs (`val`, `test`). */
  name: string;
  /** Sample indices into the dataset. */
  indices: number[];
  /** How to predict them (test-time augmentation): the same rule as the predictions they stand for. */
  predict?: PredictOptions;
}

/** Per-step log, passed to `onStep`. */
export interface StepLog {
  /** 1-based epoch. */
  epoch: number;
  /** 0-based step within the epoch. */
  step: number;
  /** Steps per epoch. */
  stepsPerEpoch: number;
  /** Global 0-based step. */
  globalStep: number;
  /** Mini-batch loss. */
  loss: number;
  /** Learning rate used for this step. */
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Samples in this batch. */
  batchSize: number;
}

/** Evaluation of one set after an epoch. */
export interface EvalLog {
  /** UF1 on the set (fine level, labels = all fine classes). */
  uf1: number;
  /** UAR on the set. */
  uar: number;
  /** Accuracy on the set. */
  accuracy: number;
  /** Fine predictions, in the set's index order. */
  yPred: number[];
}

/** Per-epoch log, passed to `onEpoch` and kept in the history (plot-ready). */
export interface EpochLog {
  /** 1-based epoch. */
  epoch: number;
  /** Total epochs of the run. */
  epochs: number;
  /** Mean training loss over the epoch's batches. */
  loss: number;
  /** Training accuracy of the (augmented, training-mode) batches. */
  trainAccuracy: number;
  /** Learning rate of the last step. */
  lr: number;
  /** Wall seconds of the epoch (training steps only). */
  seconds: number;
  /** Training samples per second in this epoch (forward + backward + update). */
  samplesPerSec: number;
  /** Results on each evaluation set. */
  eval: Record<string, EvalLog>;
}

/** Callbacks for notebooks (live plots) and the CLI (progress bar). Returned promises are awaited. */
export interface TrainCallbacks {
  /** After every optimizer step. */
  onStep?: (log: StepLog) => void | Promise<void>;
  /** After every epoch (after evaluation and checkpoint). */
  onEpoch?: (log: EpochLog) => void | Promise<void>;
}

/** Extra knobs of {@link trainModel} beyond the hyper-parameters. */
export interface TrainRunOptions extends TrainOptions {
  /** Sets evaluated after every epoch. */
  evalSets?: EvalSet[];
  /**
   * Saves a checkpoint after each good epoch (called with the epoch and the history); the trainer never calls
   * it after a diverged step. See `checkpoint.ts`.
   */
  checkpoint?: (epoch: number, history: EpochLog[]) => Promise<string>;
}

/** Result of {@link trainModel}. */
export interface TrainResult {
  /** One entry per finished epoch. */
  history: EpochLog[];
  /** Optimizer steps taken. */
  steps: number;
  /** Wall seconds of the whole call. */
  seconds: number;
  /** Path of the last checkpoint written, if any. */
  lastCheckpoint: string | null;
}

/** The loss or the gradient became NaN/Inf; the offending step was not applied. */
export class TrainingDivergedError extends Error {
  override name = "TrainingDivergedError";
  /** 1-based epoch of the bad step. */
  epoch: number;
  /** 0-based step within the epoch. */
  step: number;
  /** Last good checkpoint, or null when none was written. */
  lastCheckpoint: string | null;
  /** Epochs completed before the failure. */
  history: EpochLog[];
  constructor(
    message: string,
    info: { epoch: number; step: number; lastCheckpoint: string | null; history: EpochLog[] },
  ) {
    super(message);
    this.epoch = info.epoch;
    this.step = info.step;
    this.lastCheckpoint = info.lastCheckpoint;
    this.history = info.history;
  }
}

/**
 * Copies the samples `idx` of a dataset into one `[idx.length, h, w, 3]` array.
 *
 * @param ds the dataset.
 * @param idx sample indices.
 */
export function gatherX(ds: FlowDataset, idx: readonly number[]): Float32Array {
  const per = ds.height * ds.width * 3;
  const out = new Float32Array(idx.length * per);
  idx.forEach((k, i) => out.set(ds.x.subarray(k * per, (k + 1) * per), i * per));
  return out;
}

/**
 * Class weights n / (K · n_c) over the given samples, K = the number of classes present among them (classes
 * without samples get weight 1; they never contribute to the loss).
 *
 * @param labels class index per sample.
 * @param k number of classes.
 */
export function balancedClassWeights(labels: ArrayLike<number>, k: number): number[] {
  const counts = new Array<number>(k).fill(0);
  for (let i = 0; i < labels.length; i++) counts[labels[i]]++;
  const present = counts.filter((c) => c > 0).length;
  return counts.map((c) => (c === 0 ? 1 : labels.length / (present * c)));
}

/** Test-time augmentation of {@link predictIndices}. */
export interface PredictOptions {
  /**
   * `"hflip"`: average the logits of each sample and its horizontal mirror (u flipped as in training, see
   * `augment.ts`) before the decision — the flip is a symmetry of the labels, so this averages two views of
   * the same face. @default "none"
   */
  tta?: "none" | "hflip";
  /** How u is encoded, for the mirror (`minmax01`: u → 1 − u; `signed`: u → −u). @default "minmax01" */
  uEncoding?: "minmax01" | "signed";
}

/**
 * Predicts the fine (and, when the model has a coarse head, coarse) class of samples, in batches, in
 * inference mode.
 *
 * @param model the model.
 * @param ds the dataset.
 * @param indices samples to predict.
 * @param batchSize batch size. @default 64
 * @param options test-time augmentation ({@link PredictOptions}).
 * @returns `fine` and `coarse` (null without a coarse head) predicted class per requested sample.
 */
export async function predictIndices(
  model: TrainableModel,
  ds: FlowDataset,
  indices: readonly number[],
  batchSize = 64,
  options: PredictOptions = {},
): Promise<{ fine: Int32Array; coarse: Int32Array | null }> {
  const tta = options.tta ?? "none";
  if (tta !== "none" && tta !== "hflip") {
    throw new RangeError(`predictIndices: tta = ${JSON.stringify(tta)}, expected "none" or "hflip"`);
  }
  const fine = new Int32Array(indices.length);
  let coarse: Int32Array | null = null;
  const [h, w] = [ds.height, ds.width];
  const per = h * w * 3;
  for (let s = 0; s < indices.length; s += batchSize) {
    const idx = indices.slice(s, s + batchSize);
    const xv = gatherX(ds, idx);
    let xf: Float32Array | null = null;
    if (tta === "hflip") {
      xf = new Float32Array(xv.length);
      for (let i = 0; i < idx.length; i++) {
        hflipFlow(
          xv.subarray(i * per, (i + 1) * per),
          xf.subarray(i * per, (i + 1) * per),
          h,
          w,
          options.uEncoding ?? "minmax01",
        );
      }
    }
    const xb = tf.tensor4d(xv, [idx.length, h, w, 3]);
    const xbf = xf ? tf.tensor4d(xf, [idx.length, h, w, 3]) : null;
    const preds = tf.tidy(() => {
      let out = model.apply(xb, { training: false });
      if (xbf) {
        const o2 = model.apply(xbf, { training: false });
        const avg = (a: tf.Tensor2D, b: tf.Tensor2D) => tf.mul(tf.add(a, b), 0.5) as tf.Tensor2D;
        out = {
          fine: avg(out.fine, o2.fine),
          coarse: out.coarse && o2.coarse ? avg(out.coarse, o2.coarse) : null,
        };
      }
      return out.coarse ? [model.predictLevel(out, "fine"), model.predictLevel(out, "coarse")] : [
        model.predictLevel(out, "fine"),
      ];
    });
    const [pf, pc] = [preds[0], preds[1] as tf.Tensor1D | undefined];
    fine.set(await pf.data() as Int32Array, s);
    if (pc) {
      coarse ??= new Int32Array(indices.length);
      coarse.set(await pc.data() as Int32Array, s);
    }
    tf.dispose([xb, ...(xbf ? [xbf] : []), ...preds]);
  }
  return { fine, coarse };
}

/** Validates the indices and options; throws named errors. */
function validate(ds: FlowDataset, indices: readonly number[], o: TrainOptions & { ema?: number | null }) {
  if (!(Number.isInteger(o.epochs) && o.epochs >= 1)) {
    throw new RangeError(`trainModel: epochs = ${o.epochs}, expected an integer >= 1`);
  }
  if (!(Number.isInteger(o.batchSize) && o.batchSize! >= 1)) {
    throw new RangeError(`trainModel: batchSize = ${o.batchSize}, expected an integer >= 1`);
  }
  if (!(o.labelSmoothing! >= 0 && o.labelSmoothing! < 1)) {
    throw new RangeError(`trainModel: labelSmoothing = ${o.labelSmoothing}, expected a value in [0, 1)`);
  }
  if (
    o.gradClip != null && !(typeof o.gradClip === "number" && Number.isFinite(o.gradClip) && o.gradClip > 0)
  ) {
    throw new RangeError(`trainModel: gradClip = ${o.gradClip}, expected a number > 0 or null (no clipping)`);
  }
  if (o.ema != null && !(typeof o.ema === "number" && o.ema > 0 && o.ema < 1)) {
    throw new RangeError(`trainModel: ema = ${o.ema}, expected a decay in (0, 1) or null (no averaging)`);
  }
  if (indices.length === 0) throw new RangeError("trainModel: no training indices");
  for (const i of indices) {
    if (!(Number.isInteger(i) && i >= 0 && i < ds.n)) {
      throw new RangeError(`trainModel: index ${i} is outside the dataset "${ds.name}" (n = ${ds.n})`);
    }
  }
  if (ds.x.length !== ds.n * ds.height * ds.width * 3) {
    throw new TypeError(
      `trainModel: dataset "${ds.name}" x has ${ds.x.length} values, expected n·h·w·3 = ${
        ds.n * ds.height * ds.width * 3
      }`,
    );
  }
}

/**
 * Trains `model` on the samples `indices` of `ds` for a fixed number of epochs.
 *
 * Shuffling and augmentation draw from one generator seeded with `opts.seed`, so a run is reproducible on a
 * deterministic backend. Labels are the fine classes (`ds.fine`); the coarse target is the model's business
 * (`model.loss` derives it from the class hierarchy).
 *
 * @param model the model to update in place (its variables are trained).
 * @param ds the dataset (`x [n, h, w, 3]`, `fine [n]`).
 * @param indices training sample indices.
 * @param opts hyper-parameters ({@link TrainOptions}), evaluation sets and checkpoint hook.
 * @param callbacks `onStep` / `onEpoch` (awaited).
 * @returns the per-epoch history.
 * @throws {TrainingDivergedError} when a loss or gradient norm is not finite (the step is not applied).
 * @throws {RangeError} on bad options or indices.
 */
export async function trainModel(
  model: TrainableModel,
  ds: FlowDataset,
  indices: readonly number[],
  opts: TrainRunOptions,
  callbacks: TrainCallbacks = {},
): Promise<TrainResult> {
  const o = { ...defaultTrainOptions(), ...opts };
  validate(ds, indices, o);
  // a model built for another label hierarchy trains without error but on wrong coarse targets
  const mc = (model as { config?: { classes?: { fine?: string[]; fineToCoarse?: number[] } } }).config
    ?.classes;
  if (
    mc?.fine && (mc.fine.join("\u0000") !== ds.classes.fine.join("\u0000") ||
      (mc.fineToCoarse ?? []).join(",") !== ds.classes.fineToCoarse.join(","))
  ) {
    throw new RangeError(
      `trainModel: the model's classes (${mc.fine.join(", ")}) differ from the dataset's (${
        ds.classes.fine.join(", ")
      }) or map to other coarse classes: create the model with classes: ds.classes`,
    );
  }
  const augment = o.augment === false ? null : resolveAugment(o.augment);
  const t0 = performance.now();
  const k = ds.classes.fine.length;
  const classWeights = o.classBalanced ? balancedClassWeights(indices.map((i) => ds.fine[i]), k) : undefined;
  const lossOpts = {
    ...(classWeights ? { classWeights } : {}),
    ...(o.labelSmoothing > 0 ? { labelSmoothing: o.labelSmoothing } : {}),
  };
  const n = indices.length;
  const stepsPerEpoch = o.dropLast ? Math.max(1, Math.floor(n / o.batchSize)) : Math.ceil(n / o.batchSize);
  const totalSteps = stepsPerEpoch * o.epochs;
  const schedule = warmupCosine({
    baseLr: o.lr,
    minLr: Math.min(o.minLr, o.lr),
    totalSteps,
    warmupSteps: Math.min(totalSteps, Math.round(o.warmupEpochs * stepsPerEpoch)),
  });
  const groups = model.weightGroups();
  const vars = [...groups.decay, ...groups.noDecay];
  const stateVars = model.stateVariables?.() ?? [];
  const optimizer = new AdamW(groups, { learningRate: o.lr, weightDecay: o.weightDecay });
  const ema = o.ema != null ? new WeightEma(vars, o.ema) : null;
  const rng = mulberry32(o.seed);
  const [h, w] = [ds.height, ds.width];
  // WebGPU reports failed kernels as events, not exceptions: watch the device, stop at the first report
  watchActiveWebGPUDevice();
  const gpuMark = webgpuErrorCount();
  const history: EpochLog[] = [];
  let lastCheckpoint: string | null = null;
  let globalStep = 0;
  const order = [...indices];
  try {
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      const te = performance.now();
      shuffleInPlace(order, rng);
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let lr = 0;
      for (let step = 0; step < stepsPerEpoch; step++) {
        const idx = order.slice(step * o.batchSize, (step + 1) * o.batchSize);
        const b = idx.length;
        let xs = gatherX(ds, idx);
        if (augment) xs = augmentBatch(xs, [b, h, w, 3], rng, augment);
        const yArr = Int32Array.from(idx, (i) => ds.fine[i]);
        const xb = tf.tensor4d(xs, [b, h, w, 3]);
        const yb = tf.tensor1d(yArr, "int32");
        lr = schedule(globalStep);
        optimizer.learningRate = lr;
        // the forward pass updates BatchNorm's moving statistics before the step is known to be finite
        const stateBefore = stateVars.map((v) => tf.clone(v));
        const restoreState = () => {
          stateVars.forEach((v, i) => v.assign(stateBefore[i]));
          tf.dispose(stateBefore);
        };
        let pred: tf.Tensor | null = null;
        const { value, grads } = tf.variableGrads(() =>
          tf.tidy(() => {
            // seed of this step's training randomness in the model (stochastic depth): a function of the run
            // seed and the step only, so a rerun fold draws the same masks whatever ran before in the process
            const out = model.apply(xb, { training: true, seed: hashSeed(o.seed, `step.${globalStep}`) });
            pred = tf.keep(tf.argMax(out.fine, 1));
            return model.loss(out, yb, lossOpts);
          }), vars);
        const norm = globalNorm(grads);
        const [lossV, normV, predV] = await Promise.all([value.data(), norm.data(), pred!.data()]);
        const lossNum = lossV[0];
        const normNum = normV[0];
        if (webgpuErrorCount() > gpuMark) {
          const gpuErrors = webgpuErrorsSince(gpuMark);
          restoreState();
          tf.dispose([xb, yb, value, norm, pred!, ...Object.values(grads)]);
          throw new WebGPUValidationError(
            `training stopped at epoch ${epoch}, step ${step + 1}/${stepsPerEpoch}: WebGPU reported ` +
              `${gpuErrors.length} error(s) since training started, so some kernel's results are wrong (the ` +
              `step was not applied; last good checkpoint: ${lastCheckpoint ?? "none written"}). First: ` +
              `${gpuErrors[0].message.split("\n")[0]}. Run on the cpu backend, or report the kernel.`,
            gpuErrors,
          );
        }
        if (!Number.isFinite(lossNum) || !Number.isFinite(normNum)) {
          restoreState();
          tf.dispose([xb, yb, value, norm, pred!, ...Object.values(grads)]);
          const what = !Number.isFinite(lossNum) ? `loss = ${lossNum}` : `gradient norm = ${normNum}`;
          throw new TrainingDivergedError(
            `training diverged at epoch ${epoch}, step ${step + 1}/${stepsPerEpoch} (lr ${
              lr.toExponential(3)
            }): ` +
              `${what}; the step was not applied. Last good checkpoint: ${lastCheckpoint ?? "none written"}` +
              ` (after epoch ${history.length}). Try a lower lr (now ${o.lr}) or gradient clipping (now ${o.gradClip}).`,
            { epoch, step, lastCheckpoint, history },
          );
        }
        // global-norm clipping folded into the update (same result as clipByGlobalNorm, no extra tensors)
        const gradScale = o.gradClip != null ? Math.min(1, o.gradClip / (normNum + 1e-6)) : 1;
        optimizer.step(grads, { gradScale });
        ema?.update();
        tf.dispose([xb, yb, value, norm, pred!, ...stateBefore, ...Object.values(grads)]);
        lossSum += lossNum * b;
        seen += b;
        for (let i = 0; i < b; i++) if (predV[i] === yArr[i]) correct++;
        if (callbacks.onStep) {
          await callbacks.onStep({
            epoch,
            step,
            stepsPerEpoch,
            globalStep,
            loss: lossNum,
            lr,
            gradNorm: normNum,
            batchSize: b,
          });
        }
        globalStep++;
      }
      const seconds = (performance.now() - te) / 1000;
      const evals: Record<string, EvalLog> = {};
      if (ema && opts.evalSets?.length) ema.swapIn();
      for (const set of opts.evalSets ?? []) {
        const { fine } = await predictIndices(model, ds, set.indices, Math.max(o.batchSize, 64), set.predict);
        const yTrue = set.indices.map((i) => ds.fine[i]);
        const m: Metrics = computeMetrics(yTrue, fine, { labels: ds.classes.fine.map((_, i) => i) });
        evals[set.name] = { uf1: m.uf1, uar: m.uar, accuracy: m.accuracy, yPred: Array.from(fine) };
      }
      ema?.restore();
      const log: EpochLog = {
        epoch,
        epochs: o.epochs,
        loss: lossSum / seen,
        trainAccuracy: correct / seen,
        lr,
        seconds,
        samplesPerSec: seen / seconds,
        eval: evals,
      };
      history.push(log);
      if (opts.checkpoint) lastCheckpoint = await opts.checkpoint(epoch, history);
      if (callbacks.onEpoch) await callbacks.onEpoch(log);
    }
    // the trained model is the average (after the last checkpoint, which keeps the raw weights)
    ema?.commit();
  } finally {
    optimizer.dispose();
    ema?.restore();
    ema?.dispose();
  }
  return { history, steps: globalStep, seconds: (performance.now() - t0) / 1000, lastCheckpoint };
}
