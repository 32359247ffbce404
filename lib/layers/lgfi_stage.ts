/**
 * Local-Global Feature Integration (LGFI) stage: the local step (local extractors inside non-overlapping
 * windows) followed by the global step (inter-window attention), then optional downsampling.
 *
 *   W = windowPartition(X, ws)               [b, h, w, c] → [b·nW, ws², c] (zero padding bottom/right)
 *   W ← LocalExtractor_i(W), i = 1..depth
 *   W ← InterWindowAttention(W)
 *   X = windowReverse(W)                     crop the padding
 *   X ← Downsample(X)                        Conv3×3 s2 to the next stage's width (all stages but the last)
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ScanSetSpec } from "../ops/scan_orders.ts";
import { windowGrid, windowPartition, windowReverse } from "../ops/windows.ts";
import { MerbaLayer, type MerbaLayerArgs, oneTensor } from "./base.ts";
import type { LinearInit } from "./init.ts";
import { InterWindowAttention, type InterWindowMode } from "./inter_window_attention.ts";
import { LocalExtractor, type MixerOptions } from "./local_extractor.ts";
import type { ScanMerge } from "./mamba_vision_mixer.ts";
import { Downsample } from "./stem.ts";

/** Arguments of {@link LgfiStage}. */
export interface LgfiStageArgs extends MerbaLayerArgs {
  /** Input map size. */
  height: number;
  width: number;
  dim: number;
  depth: number;
  windowSize: number;
  heads: number;
  /** @default "windowToken" */
  interWindow?: InterWindowMode;
  /** @default "bilateral3" */
  scanSet?: ScanSetSpec;
  scanScope?: "ssm" | "mixer";
  merge?: ScanMerge;
  shareScanParams?: boolean;
  mlpRatio?: number;
  attnMlpRatio?: number;
  mixer?: MixerOptions;
  /** Init of the blocks' and the attention's linear kernels. @default "truncNormal" */
  linearInit?: LinearInit;
  /** Output channels of the downsampling conv; null = no downsampling (last stage). */
  downsampleTo?: number | null;
}

/** Stochastic depth of one stage's call: a drop rate per local block, and a seed (block i uses seed + 2i, +2i+1). */
export interface StageDropPath {
  rates: number[];
  seed: number;
}

/** Output of {@link LgfiStage.forward}. */
export interface LgfiStageOutput {
  /** `[b, h', w', c']` (after downsampling when configured). */
  out: tf.Tensor4D;
  /** Inter-window attention maps `[b, heads, q, k]`, or null for `none`. */
  attention: tf.Tensor4D | null;
  /** Windows entering each block (`[b·nW, ws², c]`), only when requested. */
  blockInputs?: tf.Tensor[];
}

/**
 * One LGFI stage on `[b, h, w, c]`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { LgfiStage } from "./lgfi_stage.ts";
 * await tf.setBackend("cpu");
 * const st = new LgfiStage({ height: 9, width: 9, dim: 8, depth: 1, windowSize: 4, heads: 2, downsampleTo: 16 });
 * st.ensureBuilt([1, 9, 9, 8]);
 * const y = st.apply(tf.randomNormal([1, 9, 9, 8])) as tf.Tensor; // 3x3 windows with padding
 * if (y.shape.join() !== "1,5,5,16") throw new Error();
 * ```
 */
export class LgfiStage extends MerbaLayer {
  static className = "MerbaLgfiStage";
  readonly args: LgfiStageArgs;
  readonly blocks: LocalExtractor[];
  readonly attention: InterWindowAttention;
  readonly downsample: Downsample | null;
  readonly rows: number;
  readonly cols: number;

  constructor(args: LgfiStageArgs) {
    super(args);
    this.args = { ...args };
    const g = windowGrid(args.height, args.width, args.windowSize);
    this.rows = g.rows;
    this.cols = g.cols;
    if (!Number.isInteger(args.depth) || args.depth < 0) {
      throw new RangeError(`lgfiStage: depth must be a non-negative integer, got ${args.depth}`);
    }
    this.blocks = Array.from({ length: args.depth }, (_, i) =>
      this.track(
        `blocks.${i}`,
        new LocalExtractor({
          dim: args.dim,
          windowSize: args.windowSize,
          scanSet: args.scanSet,
          scanScope: args.scanScope,
          merge: args.merge,
          shareScanParams: args.shareScanParams,
          mlpRatio: args.mlpRatio,
          mixer: args.mixer,
          linearInit: args.linearInit,
          seed: this.seed + 100 * (i + 1),
        }),
      ));
    this.attention = this.track(
      "attn",
      new InterWindowAttention({
        dim: args.dim,
        heads: args.heads,
        rows: g.rows,
        cols: g.cols,
        windowTokens: args.windowSize ** 2,
        mode: args.interWindow ?? "windowToken",
        mlpRatio: args.attnMlpRatio,
        linearInit: args.linearInit,
        seed: this.seed + 7,
      }),
    );
    this.downsample = args.downsampleTo == null ? null : this.track(
      "downsample",
      new Downsample({ inChannels: args.dim, outChannels: args.downsampleTo, seed: this.seed + 9 }),
    );
  }

  override build(): void {
    const l = this.args.windowSize ** 2;
    for (const b of this.blocks) b.ensureBuilt([null, l, this.args.dim]);
    this.attention.ensureBuilt([null, l, this.args.dim]);
    this.downsample?.ensureBuilt([null, this.args.height, this.args.width, this.args.dim]);
  }

  /** Output shape for an input `[b, h, w, c]`. */
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    const s = inputShape as number[];
    return this.downsample ? this.downsample.computeOutputShape(s) : s;
  }

  /**
   * Forward with attention maps (`maps`, default true) and optionally the windows entering each block.
   * Wrap in `tf.tidy`.
   */
  forward(
    x: tf.Tensor,
    opts: { blockInputs?: boolean; maps?: boolean; drop?: StageDropPath } = {},
  ): LgfiStageOutput {
    const { height, width, dim, windowSize } = this.args;
    if (x.rank !== 4 || x.shape[1] !== height || x.shape[2] !== width || x.shape[3] !== dim) {
      throw new TypeError(`lgfiStage: input must be [b, ${height}, ${width}, ${dim}], got [${x.shape}]`);
    }
    const { windows, grid } = windowPartition(x, windowSize);
    let w: tf.Tensor = windows;
    const inputs: tf.Tensor[] = [];
    const drop = opts.drop;
    if (drop && drop.rates.length !== this.blocks.length) {
      throw new RangeError(
        `lgfiStage: drop.rates has ${drop.rates.length} entries, expected one per block (${this.blocks.length})`,
      );
    }
    this.blocks.forEach((blk, i) => {
      if (opts.blockInputs) inputs.push(w);
      w = blk.call(w, drop ? { drop: { rate: drop.rates[i], seed: drop.seed + 2 * i } } : {});
    });
    const att = this.attention.forward(w, { maps: opts.maps ?? true });
    let out = windowReverse(att.windows, grid);
    if (this.downsample) out = this.downsample.call(out) as tf.Tensor4D;
    return { out, attention: att.attention, ...(opts.blockInputs ? { blockInputs: inputs } : {}) };
  }

  /** `kwargs.drop`: stochastic depth for this call (training), see {@link StageDropPath}. */
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { drop?: StageDropPath } = {}): tf.Tensor {
    return tf.tidy(() => this.forward(oneTensor(inputs), { maps: false, drop: kwargs.drop }).out);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      ...(this.args as unknown as tf.serialization.ConfigDict),
      seed: this.seed,
    };
  }
}
tf.serialization.registerClass(LgfiStage);
