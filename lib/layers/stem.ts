/**
 * Convolutional stem for the 3-channel flow input (u, v, optical strain) and the stride-2 downsampling
 * between stages (MambaVision `PatchEmbed` and `Downsample`, merba-model.md §4).
 *
 * Stem: a stack of `Conv3×3 (stride s_i, padding 1, no bias) → BatchNorm → ReLU`; MambaVision uses two
 * stride-2 convs (÷4), merba-tiny one (28 → 14). Downsample: one `Conv3×3 stride 2, padding 1, no bias`,
 * no norm. Padding is explicit (1 on every side, PyTorch's), not tfjs's asymmetric `'same'` for stride 2.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type LayerVariable, MerbaLayer, type MerbaLayerArgs, oneTensor } from "./base.ts";
import { BatchNorm } from "./batch_norm.ts";
import { fusedConv3x3, fusedRelu } from "./fused.ts";

const conv3x3 = fusedConv3x3;

function kaiming(fanIn: number) {
  // PyTorch Conv2d default: kaiming_uniform(a=√5) = U(±1/√fan_in)
  return { kind: "uniform", limit: 1 / Math.sqrt(fanIn) } as const;
}

/** Arguments of {@link FlowStem}. */
export interface FlowStemArgs extends MerbaLayerArgs {
  /** Input channels. @default 3 */
  inChannels?: number;
  /** Output channels of each conv. */
  channels: number[];
  /** Stride of each conv (same length as `channels`). */
  strides: number[];
  /** BatchNorm ε. @default 1e-4 (MambaVision) */
  bnEpsilon?: number;
}

/**
 * The stem: `[b, h, w, 3]` → `[b, h/Πs, w/Πs, channels.at(-1)]`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { FlowStem } from "./stem.ts";
 * await tf.setBackend("cpu");
 * const stem = new FlowStem({ channels: [16], strides: [2] });
 * const y = stem.apply(tf.zeros([2, 28, 28, 3])) as tf.Tensor;
 * if (y.shape.join() !== "2,14,14,16") throw new Error();
 * ```
 */
export class FlowStem extends MerbaLayer {
  static className = "MerbaFlowStem";
  readonly inChannels: number;
  readonly channels: number[];
  readonly strides: number[];
  readonly bnEpsilon: number;
  private kernels: LayerVariable[] = [];
  private readonly norms: BatchNorm[];

  constructor(args: FlowStemArgs) {
    super(args);
    this.inChannels = args.inChannels ?? 3;
    this.channels = [...args.channels];
    this.strides = [...args.strides];
    this.bnEpsilon = args.bnEpsilon ?? 1e-4;
    if (this.channels.length === 0 || this.channels.length !== this.strides.length) {
      throw new RangeError(
        `flowStem: channels (${this.channels.length}) and strides (${this.strides.length}) must be non-empty and equal in length`,
      );
    }
    this.norms = this.channels.map((_, i) =>
      this.track(`bn${i}`, new BatchNorm({ epsilon: this.bnEpsilon, seed: this.seed + i }))
    );
  }

  override build(): void {
    let cin = this.inChannels;
    this.kernels = this.channels.map((c, i) => {
      const k = this.param(`conv${i}.kernel`, [3, 3, cin, c], kaiming(9 * cin));
      this.norms[i].ensureBuilt([null, null, null, c]);
      cin = c;
      return k;
    });
  }

  /** Output spatial size for an input size. */
  outputSize(h: number, w: number): [number, number] {
    for (const s of this.strides) {
      h = Math.floor((h + 2 - 3) / s) + 1;
      w = Math.floor((w + 2 - 3) / s) + 1;
    }
    return [h, w];
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    const s = inputShape as number[];
    const [h, w] = this.outputSize(s[1], s[2]);
    return [s[0], h, w, this.channels[this.channels.length - 1]];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean } = {}): tf.Tensor {
    const x0 = oneTensor(inputs);
    if (x0.rank !== 4 || x0.shape[3] !== this.inChannels) {
      throw new TypeError(`flowStem: input must be [b, h, w, ${this.inChannels}], got [${x0.shape}]`);
    }
    return tf.tidy(() => {
      let x: tf.Tensor = x0;
      this.kernels.forEach((k, i) => {
        x = fusedRelu(this.norms[i].call(conv3x3(x, k.read(), this.strides[i]), kwargs));
      });
      return x;
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      inChannels: this.inChannels,
      channels: this.channels,
      strides: this.strides,
      bnEpsilon: this.bnEpsilon,
      seed: this.seed,
    };
  }
}
tf.serialization.registerClass(FlowStem);

/** Arguments of {@link Downsample}. */
export interface DownsampleArgs extends MerbaLayerArgs {
  inChannels: number;
  outChannels: number;
}

/** `Conv3×3, stride 2, padding 1, no bias`: `[b, h, w, c_in]` → `[b, ⌈h/2⌉, ⌈w/2⌉, c_out]`. */
export class Downsample extends MerbaLayer {
  static className = "MerbaDownsample";
  readonly inChannels: number;
  readonly outChannels: number;
  private kernel!: LayerVariable;

  constructor(args: DownsampleArgs) {
    super(args);
    this.inChannels = args.inChannels;
    this.outChannels = args.outChannels;
  }

  override build(): void {
    this.kernel = this.param(
      "conv.kernel",
      [3, 3, this.inChannels, this.outChannels],
      kaiming(9 * this.inChannels),
    );
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    const s = inputShape as number[];
    return [s[0], Math.floor((s[1] - 1) / 2) + 1, Math.floor((s[2] - 1) / 2) + 1, this.outChannels];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => conv3x3(oneTensor(inputs), this.kernel.read(), 2));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      inChannels: this.inChannels,
      outChannels: this.outChannels,
      seed: this.seed,
    };
  }
}
tf.serialization.registerClass(Downsample);
