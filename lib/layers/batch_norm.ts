/**
 * Batch normalisation over the last (channel) axis, with moving statistics (MambaVision uses BatchNorm in
 * the stem and before the head).
 *
 * Training: `y = (x − μ_B)/√(σ²_B + ε)·γ + β` with batch statistics, and the moving statistics updated as
 * `m ← momentum·m + (1 − momentum)·μ_B` (the unbiased batch variance for the moving variance, as PyTorch).
 * Inference: the moving statistics.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type LayerVariable, MerbaLayer, type MerbaLayerArgs, oneTensor } from "./base.ts";
import { fusedBatchNorm, fusedBatchNormTrain } from "./fused.ts";

/** Arguments of {@link BatchNorm}. */
export interface BatchNormArgs extends MerbaLayerArgs {
  /** ε. @default 1e-5 (MambaVision's stem uses 1e-4) */
  epsilon?: number;
  /** Moving-average momentum (tfjs convention: weight of the old value). @default 0.9 */
  momentum?: number;
}

/**
 * Batch normalisation over the channel (last) axis of `[..., c]`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { BatchNorm } from "./batch_norm.ts";
 * await tf.setBackend("cpu");
 * const bn = new BatchNorm({});
 * const y = bn.apply(tf.randomNormal([4, 3, 3, 8]), { training: true }) as tf.Tensor;
 * if (y.shape.join() !== "4,3,3,8") throw new Error();
 * ```
 */
export class BatchNorm extends MerbaLayer {
  static className = "MerbaBatchNorm";
  readonly epsilon: number;
  readonly momentum: number;
  private gamma!: LayerVariable;
  private beta!: LayerVariable;
  private movingMean!: LayerVariable;
  private movingVar!: LayerVariable;

  constructor(args: BatchNormArgs = {}) {
    super(args);
    this.epsilon = args.epsilon ?? 1e-5;
    this.momentum = args.momentum ?? 0.9;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = inputShape as (number | null)[];
    const c = shape[shape.length - 1] as number;
    this.gamma = this.param("gamma", [c], { kind: "ones" }, { decay: false });
    this.beta = this.param("beta", [c], { kind: "zeros" }, { decay: false });
    this.movingMean = this.param("moving_mean", [c], { kind: "zeros" }, { trainable: false, decay: false });
    this.movingVar = this.param("moving_var", [c], { kind: "ones" }, { trainable: false, decay: false });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean } = {}): tf.Tensor {
    const x = oneTensor(inputs);
    if (!kwargs.training) {
      return fusedBatchNorm(x, this.gamma.read(), this.beta.read(), this.epsilon, {
        training: false,
        mean: this.movingMean.read(),
        variance: this.movingVar.read(),
      }).y;
    }
    // batch statistics, and the moving statistics' update (the loss does not depend on them: no gradient)
    const { y, movingMean, movingVar } = fusedBatchNormTrain(
      x,
      this.gamma.read(),
      this.beta.read(),
      this.epsilon,
      {
        mean: this.movingMean.read(),
        variance: this.movingVar.read(),
        momentum: this.momentum,
      },
    );
    this.movingMean.write(movingMean);
    this.movingVar.write(movingVar);
    tf.dispose([movingMean, movingVar]);
    return y;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), epsilon: this.epsilon, momentum: this.momentum, seed: this.seed };
  }
}
tf.serialization.registerClass(BatchNorm);
