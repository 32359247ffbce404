/**
 * Dual-granularity classification head (MERba's DGCM; the design is the project's, merba-model.md §5.4).
 *
 *   f = GAP(BN(X))                                  X: [b, h, w, c] → f: [b, c]
 *   z_c = f·W_c + b_c                               coarse logits [b, K_c]
 *   independent: z_f = f·W_f + b_f
 *   conditioned: z_f = [f; softmax(z_c)]·W_f + b_f  fine logits [b, K_f] see the coarse decision
 *   loss = CE(z_f, y_f) + λ·CE(z_c, g(y_f)),        g = fineToCoarse
 *
 * Inference: `argmax z_f`, or `masked`: argmax of z_f over the fine classes whose coarse class is
 * `argmax z_c`. With `coarse: false` the head is a single fine classifier.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type LayerVariable, MerbaLayer, type MerbaLayerArgs, oneTensor } from "./base.ts";
import { checkLinearInit, type LinearInit, linearInitSpec } from "./init.ts";
import { BatchNorm } from "./batch_norm.ts";
import { fusedMeanTokens } from "./fused.ts";
import { cachedScalar, cachedTensor1d, meanAxis, sumAxis } from "../ops/constants.ts";

/** Label hierarchy (same shape as `ClassHierarchy` in lib/data/types.ts). */
export interface LabelHierarchy {
  fine: string[];
  coarse: string[];
  /** `fineToCoarse[i]` = coarse index of fine class `i`. */
  fineToCoarse: number[];
}

/** Arguments of {@link DualGranularityHead}. */
export interface DualGranularityHeadArgs extends MerbaLayerArgs {
  dim: number;
  classes: LabelHierarchy;
  /** Coarse head on. @default true */
  coarse?: boolean;
  /** @default "conditioned" */
  coupling?: "independent" | "conditioned";
  /** λ. @default 1 */
  coarseLossWeight?: number;
  /** @default "argmax" */
  inference?: "argmax" | "masked";
  /** Init of the linear kernels (see `LinearInit`). @default "truncNormal" (timm / MambaVision) */
  linearInit?: LinearInit;
}

/** Head output: fine logits, and coarse logits when the coarse head is on. */
export interface HeadOutput {
  fine: tf.Tensor2D;
  coarse: tf.Tensor2D | null;
}

/**
 * Validates a label hierarchy.
 *
 * @throws {RangeError} naming the offending field.
 */
export function checkHierarchy(c: LabelHierarchy): void {
  if (!c || !Array.isArray(c.fine) || c.fine.length < 2) {
    throw new RangeError("classes.fine must list at least 2 class names");
  }
  if (!Array.isArray(c.coarse) || c.coarse.length < 1) {
    throw new RangeError("classes.coarse must be a non-empty list");
  }
  if (!Array.isArray(c.fineToCoarse) || c.fineToCoarse.length !== c.fine.length) {
    throw new RangeError(
      `classes.fineToCoarse must have one entry per fine class (${c.fine.length}), got ${c.fineToCoarse?.length}`,
    );
  }
  c.fineToCoarse.forEach((g, i) => {
    if (!Number.isInteger(g) || g < 0 || g >= c.coarse.length) {
      throw new RangeError(
        `classes.fineToCoarse[${i}] = ${g} is not an index into coarse (0..${c.coarse.length - 1})`,
      );
    }
  });
}

/**
 * BN → GAP → coarse and fine linear heads.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { DualGranularityHead } from "./dual_granularity_head.ts";
 * await tf.setBackend("cpu");
 * const classes = { fine: ["disgust", "happiness", "surprise"], coarse: ["negative", "positive", "surprise"], fineToCoarse: [0, 1, 2] };
 * const head = new DualGranularityHead({ dim: 8, classes });
 * head.ensureBuilt([null, 7, 7, 8]);
 * const out = head.forward(tf.randomNormal([2, 7, 7, 8]));
 * const loss = head.loss(out, tf.tensor1d([0, 2], "int32"));
 * if (out.fine.shape.join() !== "2,3" || loss.rank !== 0) throw new Error();
 * ```
 */
export class DualGranularityHead extends MerbaLayer {
  static className = "MerbaDualGranularityHead";
  readonly dim: number;
  readonly classes: LabelHierarchy;
  readonly coarse: boolean;
  readonly coupling: "independent" | "conditioned";
  readonly coarseLossWeight: number;
  readonly inference: "argmax" | "masked";
  readonly linearInit: LinearInit;
  private readonly norm: BatchNorm;
  private w: Record<string, LayerVariable> = {};

  constructor(args: DualGranularityHeadArgs) {
    super(args);
    checkHierarchy(args.classes);
    this.dim = args.dim;
    this.classes = structuredClone(args.classes);
    this.coarse = args.coarse ?? true;
    this.coupling = args.coupling ?? "conditioned";
    this.coarseLossWeight = args.coarseLossWeight ?? 1;
    this.inference = args.inference ?? "argmax";
    this.linearInit = args.linearInit ?? "truncNormal";
    checkLinearInit(this.linearInit, "dualGranularityHead");
    if (!["independent", "conditioned"].includes(this.coupling)) {
      throw new RangeError(
        `dualGranularityHead: coupling must be independent or conditioned, got ${this.coupling}`,
      );
    }
    if (!["argmax", "masked"].includes(this.inference)) {
      throw new RangeError(`dualGranularityHead: inference must be argmax or masked, got ${this.inference}`);
    }
    this.norm = this.track("norm", new BatchNorm({ seed: this.seed + 1 }));
  }

  override build(): void {
    const c = this.dim;
    const kf = this.classes.fine.length;
    const kc = this.classes.coarse.length;
    this.norm.ensureBuilt([null, null, null, c]);
    const fineIn = this.coarse && this.coupling === "conditioned" ? c + kc : c;
    if (this.coarse) {
      this.w.cW = this.param("coarse.kernel", [c, kc], linearInitSpec(this.linearInit, c));
      this.w.cB = this.param("coarse.bias", [kc], { kind: "zeros" }, { decay: false });
    }
    this.w.fW = this.param("fine.kernel", [fineIn, kf], linearInitSpec(this.linearInit, fineIn));
    this.w.fB = this.param("fine.bias", [kf], { kind: "zeros" }, { decay: false });
  }

  /** Logits from a feature map `[b, h, w, c]`. */
  forward(x: tf.Tensor, kwargs: { training?: boolean } = {}): HeadOutput {
    if (x.rank !== 4 || x.shape[3] !== this.dim) {
      throw new TypeError(`dualGranularityHead: input must be [b, h, w, ${this.dim}], got [${x.shape}]`);
    }
    const [fine, coarse] = tf.tidy(() => {
      const [b, h, w, c] = x.shape;
      const f = fusedMeanTokens(this.norm.call(x, kwargs).reshape([b, h * w, c])); // GAP: [b, c]
      if (!this.coarse) return [tf.add(tf.matMul(f, this.w.fW.read() as tf.Tensor2D), this.w.fB.read())];
      const zc = tf.add(tf.matMul(f, this.w.cW.read() as tf.Tensor2D), this.w.cB.read());
      const fin = this.coupling === "conditioned" ? tf.concat([f, tf.softmax(zc)], 1) : f;
      return [tf.add(tf.matMul(fin as tf.Tensor2D, this.w.fW.read() as tf.Tensor2D), this.w.fB.read()), zc];
    }) as tf.Tensor2D[];
    return { fine, coarse: coarse ?? null };
  }

  override call(
    inputs: tf.Tensor | tf.Tensor[],
    kwargs: { training?: boolean } = {},
  ): tf.Tensor | tf.Tensor[] {
    const out = this.forward(oneTensor(inputs), kwargs);
    return out.coarse ? [out.coarse, out.fine] : out.fine;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    const b = (inputShape as number[])[0];
    const f = [b, this.classes.fine.length];
    return this.coarse ? [[b, this.classes.coarse.length], f] : f;
  }

  /**
   * `CE(z_f, y_f) + λ·CE(z_c, fineToCoarse[y_f])` (mean over the batch; with `classWeights` a weighted mean,
   * sample weight = `classWeights[y_f]`, for both terms). With `labelSmoothing` ε each term's target is
   * `(1 − ε)·onehot(y) + ε/K` (K = that level's class count; Szegedy et al. 2016, as in `torch.nn.CrossEntropyLoss`'s
   * `label_smoothing`).
   *
   * @throws {RangeError} when `classWeights` has the wrong length or `labelSmoothing` is outside [0, 1).
   */
  loss(
    out: HeadOutput,
    yFine: tf.Tensor1D,
    opts: { classWeights?: number[]; labelSmoothing?: number } = {},
  ): tf.Scalar {
    const kf = this.classes.fine.length;
    if (opts.classWeights && opts.classWeights.length !== kf) {
      throw new RangeError(
        `loss: classWeights must have ${kf} entries (one per fine class), got ${opts.classWeights.length}`,
      );
    }
    const eps = opts.labelSmoothing ?? 0;
    if (!(eps >= 0 && eps < 1)) {
      throw new RangeError(`loss: labelSmoothing = ${eps}, expected a value in [0, 1)`);
    }
    return tf.tidy(() => {
      const y = yFine.toInt();
      // constants and reductions from ops/constants.ts: on webgpu nothing is uploaded per step (same values)
      const w = opts.classWeights ? tf.gather(cachedTensor1d(opts.classWeights), y) : null;
      const ce = (logits: tf.Tensor2D, labels: tf.Tensor1D, k: number) => {
        const hot = tf.oneHot(labels, k);
        const target = eps > 0 ? tf.add(tf.mul(hot, cachedScalar(1 - eps)), cachedScalar(eps / k)) : hot;
        const nll = tf.neg(sumAxis(tf.mul(target, tf.logSoftmax(logits)), 1)); // [b]
        return w ? tf.div(sumAxis(tf.mul(nll, w), null), sumAxis(w, null)) : meanAxis(nll, null);
      };
      let loss = ce(out.fine, y, kf);
      if (out.coarse && this.coarseLossWeight !== 0) {
        const yc = tf.gather(cachedTensor1d(this.classes.fineToCoarse, "int32"), y) as tf.Tensor1D;
        const coarse = ce(out.coarse, yc, this.classes.coarse.length);
        loss = tf.add(loss, tf.mul(cachedScalar(this.coarseLossWeight), coarse));
      }
      return loss as tf.Scalar;
    });
  }

  /** Predicted class indices at `level` (int32 `[b]`), applying the configured inference rule for fine. */
  predictLevel(out: HeadOutput, level: "fine" | "coarse"): tf.Tensor1D {
    return tf.tidy(() => {
      if (level === "coarse") {
        if (out.coarse) return tf.argMax(out.coarse, 1) as tf.Tensor1D;
        // no coarse head: map the fine decision
        return tf.gather(
          tf.tensor1d(this.classes.fineToCoarse, "int32"),
          tf.argMax(out.fine, 1),
        ) as tf.Tensor1D;
      }
      if (this.inference === "masked" && out.coarse) {
        // mask[b, i] = 1 when fine class i belongs to the predicted coarse class of sample b
        const pc = tf.argMax(out.coarse, 1); // [b]
        const g = tf.tensor1d(this.classes.fineToCoarse, "int32");
        const mask = tf.equal(pc.reshape([-1, 1]), g.reshape([1, -1]));
        return tf.argMax(tf.where(mask, out.fine, tf.fill(out.fine.shape, -Infinity)), 1) as tf.Tensor1D;
      }
      return tf.argMax(out.fine, 1) as tf.Tensor1D;
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      dim: this.dim,
      classes: this.classes as unknown as tf.serialization.ConfigDictValue,
      coarse: this.coarse,
      coupling: this.coupling,
      coarseLossWeight: this.coarseLossWeight,
      inference: this.inference,
      seed: this.seed,
    };
  }
}
tf.serialization.registerClass(DualGranularityHead);
