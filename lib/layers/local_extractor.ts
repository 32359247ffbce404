/**
 * MERba local extractor: a pre-norm residual block applied to every window's tokens (MambaVision `Block`
 * with the mixer, merba-model.md §4, plus MERba's multi-scan):
 *
 *   x ← x + MultiScanMixer(LN(x))
 *   x ← x + MLP(LN(x)),   MLP = fc → GELU → fc (ratio `mlpRatio`)
 *
 * `scanScope "ssm"`: one {@link MambaVisionMixer} runs its conv + scan per scan order (the z branch once).
 * `scanScope "mixer"`: the whole mixer runs per order on the reordered tokens (one shared mixer, or one per
 * order), the outputs return to raster order and are merged (mean / sum / softmax weights).
 *
 * Input and output: windows `[b·nW, ws², c]`, tokens in raster order.
 *
 * Stochastic depth (training only, `call(x, { drop: { rate, seed } })`): each residual branch is zeroed for a
 * random fraction `rate` of the windows and scaled by 1/(1 − rate) for the rest (Huang et al. 2016). As in
 * MambaVision, whose blocks also run on window batches, the draw is per window, not per image.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import {
  permuteTokens,
  resolveScanSet,
  type ScanOrder,
  scanOrderLabel,
  type ScanSetSpec,
  unpermuteTokens,
} from "../ops/scan_orders.ts";
import { type LayerVariable, MerbaLayer, type MerbaLayerArgs, oneTensor } from "./base.ts";
import { checkLinearInit, type LinearInit, linearInitSpec } from "./init.ts";
import { gelu, layerNorm, linear } from "./functional.ts";
import { fusedScaleRows } from "./fused.ts";
import {
  MambaVisionMixer,
  type MambaVisionMixerArgs,
  mergeOrders,
  type ScanMerge,
} from "./mamba_vision_mixer.ts";

/**
 * Stochastic depth on a residual branch `t [n, …]`: each of the n entries is kept with probability 1 − rate
 * (and scaled by 1/(1 − rate)) or zeroed; the mask is drawn from `seed` (tf.randomUniform), so a seed gives
 * the same mask on every backend.
 */
export function dropPath(t: tf.Tensor, rate: number, seed: number): tf.Tensor {
  return tf.tidy(() => {
    const keep = 1 - rate;
    const mask = tf.floor(tf.add(tf.randomUniform([t.shape[0]], 0, 1, "float32", seed), keep));
    return fusedScaleRows(t, tf.div(mask, keep));
  });
}

/** Mixer options a block passes through (dModel and the scan settings come from the block). */
export type MixerOptions = Omit<
  MambaVisionMixerArgs,
  "dModel" | "scanOrders" | "grid" | "merge" | "shareScanParams" | "seed" | "name"
>;

/** Arguments of {@link LocalExtractor}. */
export interface LocalExtractorArgs extends MerbaLayerArgs {
  /** Channels `c`. */
  dim: number;
  /** Window side (tokens are a `windowSize × windowSize` raster). */
  windowSize: number;
  /** Scan orders. @default "bilateral3" */
  scanSet?: ScanSetSpec;
  /** What runs per scan order. @default "ssm" */
  scanScope?: "ssm" | "mixer";
  /** Merge of the orders. @default "mean" */
  merge?: ScanMerge;
  /** One parameter set for all orders. @default false */
  shareScanParams?: boolean;
  /** MLP hidden ratio. @default 2 */
  mlpRatio?: number;
  /** Init of the linear kernels (see `LinearInit`). @default "truncNormal" (timm / MambaVision); also the mixer's unless `mixer.linearInit` is set */
  linearInit?: LinearInit;
  /** Mixer options. @default { dState: 8, dConv: 3, expand: 1, linearInit: "truncNormal" } (MambaVision Block) */
  mixer?: MixerOptions;
}

/**
 * One local extractor block on windows `[b·nW, ws², c]`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { LocalExtractor } from "./local_extractor.ts";
 * await tf.setBackend("cpu");
 * const block = new LocalExtractor({ dim: 16, windowSize: 7, seed: 3 });
 * const y = block.apply(tf.randomNormal([4, 49, 16])) as tf.Tensor;
 * if (y.shape.join() !== "4,49,16") throw new Error();
 * ```
 */
export class LocalExtractor extends MerbaLayer {
  static className = "MerbaLocalExtractor";
  readonly dim: number;
  readonly windowSize: number;
  readonly orders: ScanOrder[];
  readonly scanScope: "ssm" | "mixer";
  readonly merge: ScanMerge;
  readonly shareScanParams: boolean;
  readonly mlpRatio: number;
  readonly linearInit: LinearInit;
  readonly mixers: MambaVisionMixer[];
  private readonly scanSpec: ScanSetSpec;
  private readonly mixerOpts: MixerOptions;
  private norm1g!: LayerVariable;
  private norm1b!: LayerVariable;
  private norm2g!: LayerVariable;
  private norm2b!: LayerVariable;
  private fc1w!: LayerVariable;
  private fc1b!: LayerVariable;
  private fc2w!: LayerVariable;
  private fc2b!: LayerVariable;
  private mergeLogits: LayerVariable | null = null;

  constructor(args: LocalExtractorArgs) {
    super(args);
    const { dim, windowSize, scanSet = "bilateral3", scanScope = "ssm", merge = "mean" } = args;
    if (!Number.isInteger(dim) || dim < 1) {
      throw new RangeError(`localExtractor: dim must be a positive integer, got ${dim}`);
    }
    if (!Number.isInteger(windowSize) || windowSize < 1) {
      throw new RangeError(`localExtractor: windowSize must be a positive integer, got ${windowSize}`);
    }
    if (scanScope !== "ssm" && scanScope !== "mixer") {
      throw new RangeError(`localExtractor: scanScope must be "ssm" or "mixer", got ${String(scanScope)}`);
    }
    this.dim = dim;
    this.windowSize = windowSize;
    this.scanSpec = scanSet;
    this.orders = resolveScanSet(scanSet);
    this.scanScope = scanScope;
    this.merge = merge;
    this.shareScanParams = args.shareScanParams ?? false;
    this.mlpRatio = args.mlpRatio ?? 2;
    this.linearInit = args.linearInit ?? "truncNormal";
    checkLinearInit(this.linearInit, "localExtractor");
    this.mixerOpts = { dState: 8, dConv: 3, expand: 1, linearInit: this.linearInit, ...args.mixer };
    const grid: [number, number] = [windowSize, windowSize];
    const base = { ...this.mixerOpts, dModel: dim, grid };
    if (scanScope === "ssm") {
      this.mixers = [
        this.track(
          "mixer",
          new MambaVisionMixer({
            ...base,
            scanOrders: this.orders,
            merge,
            shareScanParams: this.shareScanParams,
            seed: this.seed + 1,
          }),
        ),
      ];
    } else {
      const n = this.shareScanParams ? 1 : this.orders.length;
      this.mixers = Array.from(
        { length: n },
        (_, k) =>
          this.track(
            n === 1 ? "mixer" : `mixer.${k}`,
            new MambaVisionMixer({ ...base, seed: this.seed + 1 + k }),
          ),
      );
    }
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const c = this.dim;
    const hidden = Math.max(1, Math.round(c * this.mlpRatio));
    this.norm1g = this.param("norm1.gamma", [c], { kind: "ones" }, { decay: false });
    this.norm1b = this.param("norm1.beta", [c], { kind: "zeros" }, { decay: false });
    this.norm2g = this.param("norm2.gamma", [c], { kind: "ones" }, { decay: false });
    this.norm2b = this.param("norm2.beta", [c], { kind: "zeros" }, { decay: false });
    this.fc1w = this.param("mlp.fc1.kernel", [c, hidden], linearInitSpec(this.linearInit, c));
    this.fc1b = this.param("mlp.fc1.bias", [hidden], { kind: "zeros" }, { decay: false });
    this.fc2w = this.param("mlp.fc2.kernel", [hidden, c], linearInitSpec(this.linearInit, hidden));
    this.fc2b = this.param("mlp.fc2.bias", [c], { kind: "zeros" }, { decay: false });
    if (this.scanScope === "mixer" && this.merge === "softmax" && this.orders.length > 1) {
      this.mergeLogits = this.param("merge_logits", [this.orders.length], { kind: "zeros" }, {
        decay: false,
      });
    }
    const shape = inputShape as (number | null)[];
    const l = this.windowSize * this.windowSize;
    const k = this.scanScope === "mixer" && this.shareScanParams ? this.orders.length : 1;
    for (const m of this.mixers) m.ensureBuilt([shape[0] === null ? null : (shape[0] as number) * k, l, c]);
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  /**
   * Weight of each scan order (in `orders` order) in this block's merge, normalised to sum 1: the softmax of the
   * learned merge logits for `merge: "softmax"`, else uniform (`sum` adds the orders with equal weights).
   */
  orderWeights(): tf.Tensor1D {
    return tf.tidy(() => {
      const w = this.scanScope === "ssm"
        ? this.mixers[0].mergeWeights()
        : this.mergeLogits
        ? tf.softmax(this.mergeLogits.read())
        : tf.fill([this.orders.length], 1);
      return tf.div(w, tf.sum(w)) as tf.Tensor1D;
    });
  }

  private mix(x: tf.Tensor): tf.Tensor {
    if (this.scanScope === "ssm") return this.mixers[0].call(x);
    const s = this.windowSize;
    const k = this.orders.length;
    const [b, l, c] = x.shape;
    let outs: tf.Tensor[]; // k × [b, l, c], raster order
    if (this.shareScanParams) {
      const y = unpermuteTokens(this.mixers[0].call(permuteTokens(x, this.orders, s, s)), this.orders, s, s);
      outs = k === 1 ? [y.reshape([b, l, c])] : tf.unstack(y, 0);
    } else {
      outs = this.orders.map((o, i) =>
        unpermuteTokens(this.mixers[i].call(permuteTokens(x, [o], s, s)), [o], s, s).reshape([b, l, c])
      );
    }
    return mergeOrders(outs, this.merge, this.mergeLogits?.read() ?? null);
  }

  /**
   * `x [b·nW, ws², c]` → same shape. `kwargs.drop` turns stochastic depth on for this call (training): rate in
   * [0, 1), and the seed of the two per-window masks (one per residual branch).
   */
  override call(
    inputs: tf.Tensor | tf.Tensor[],
    kwargs: { drop?: { rate: number; seed: number } } = {},
  ): tf.Tensor {
    const x = oneTensor(inputs);
    const drop = kwargs.drop && kwargs.drop.rate > 0 ? kwargs.drop : null;
    if (drop && !(drop.rate < 1)) {
      throw new RangeError(`localExtractor: drop rate must be in [0, 1), got ${drop.rate}`);
    }
    if (x.rank !== 3 || x.shape[1] !== this.windowSize ** 2 || x.shape[2] !== this.dim) {
      throw new TypeError(
        `localExtractor: input must be windows [b·nW, ${
          this.windowSize ** 2
        }, ${this.dim}], got [${x.shape}]`,
      );
    }
    return tf.tidy(() => {
      // x ← x + Mixer(LN(x))
      const branch = (t: tf.Tensor, k: number) => drop ? dropPath(t, drop.rate, drop.seed + k) : t;
      const x1 = tf.add(x, branch(this.mix(layerNorm(x, this.norm1g.read(), this.norm1b.read())), 0));
      // x ← x + fc2(GELU(fc1(LN(x))))
      const hdn = gelu(
        linear(layerNorm(x1, this.norm2g.read(), this.norm2b.read()), this.fc1w.read(), this.fc1b.read()),
      );
      return tf.add(x1, branch(linear(hdn, this.fc2w.read(), this.fc2b.read()), 1));
    });
  }

  /** The mixer's input for this block (`LN₁(x)`), used to trace the scan for hidden-attention maps. */
  mixerInput(x: tf.Tensor): tf.Tensor {
    return layerNorm(x, this.norm1g.read(), this.norm1b.read());
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      dim: this.dim,
      windowSize: this.windowSize,
      scanSet:
        (typeof this.scanSpec === "string"
          ? this.scanSpec
          : this.orders.map(scanOrderLabel)) as tf.serialization.ConfigDictValue,
      scanScope: this.scanScope,
      merge: this.merge,
      shareScanParams: this.shareScanParams,
      mlpRatio: this.mlpRatio,
      mixer: this.mixerOpts as tf.serialization.ConfigDictValue,
      seed: this.seed,
    };
  }
}
tf.serialization.registerClass(LocalExtractor);
