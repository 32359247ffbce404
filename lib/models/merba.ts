/**
 * The MERba model: flow stem → LGFI stages (local extractors in windows, inter-window attention,
 * downsampling) → dual-granularity head. Built from a {@link MerbaConfig}; see `config.ts` for the variants.
 *
 * Shapes for merba-tiny (batch b): `[b, 28, 28, 3]` → stem `[b, 14, 14, 16]` → stage 1 (2×2 windows of 7×7)
 * → `[b, 7, 7, 32]` → stage 2 (one 7×7 window, full attention) → head: fine `[b, 5]`, coarse `[b, 4]`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { scanHiddenAttention } from "../ops/hidden_attention.ts";
import { permuteTokens, scanOrderLabel, unpermutePairs } from "../ops/scan_orders.ts";
import { windowOrderOfRaster } from "../ops/windows.ts";
import { DualGranularityHead, type HeadOutput } from "../layers/dual_granularity_head.ts";
import { LgfiStage } from "../layers/lgfi_stage.ts";
import { FlowStem } from "../layers/stem.ts";
import { hashSeed, type MerbaLayer, type NamedWeight } from "../layers/base.ts";
import { type MerbaConfig, type MerbaOverrides, resolveMerbaConfig, validateMerbaConfig } from "./config.ts";

/** Inter-window attention maps of one stage. */
export interface StageAttention {
  stage: number;
  /** `[b, heads, nW, nW]` (windowToken) or `[b, heads, N, N]` over the stage's tokens (full; raster order over
   * the padded map, whatever order the attention ran in). */
  heads: tf.Tensor4D;
  /** Window grid `[rows, cols]` (windowToken) or the token grid `[rows·ws, cols·ws]` (full). */
  windowGrid: [number, number];
  mode: "windowToken" | "full";
  /**
   * Where each unit (window, or token in `full` mode) lies in the image: its row and column edges as fractions
   * of the stage map's height and width (`rows + 1` and `cols + 1` values from 0 to 1). Windows are equal
   * except where the map is not a multiple of the window size: the last window then holds padding and covers
   * less of the image (padding tokens get zero width).
   */
  cellEdges: { y: number[]; x: number[] };
}

/** Edges of `n` units of `unit` map pixels over a `size`-pixel side, as fractions (clipped at 1). */
function unitEdges(n: number, unit: number, size: number): number[] {
  return Array.from({ length: n + 1 }, (_, i) => Math.min(1, (i * unit) / size));
}

/** Scan hidden-attention maps of one block (merba-model.md §6). */
export interface BlockScanAttention {
  stage: number;
  block: number;
  /** Window side; maps are over the `ws²` tokens of each window in raster order. */
  windowSize: number;
  /** Scan orders (labels) of the block, in `perOrder`'s order. */
  orders: string[];
  /** `[b·nW, ws², ws²]`: `α[t, s]` averaged over channels, and over orders with the block's merge weights
   * (uniform for `mean`/`sum`, the learned softmax for `softmax`), raster coordinates. */
  maps: tf.Tensor3D;
  /** `[k, b·nW, ws², ws²]`: per order, channel-averaged, raster coordinates. */
  perOrder: tf.Tensor4D;
}

/** Result of {@link MerbaModel.explain}; the caller disposes the tensors (`tf.dispose(result)`). */
export interface ExplainResult {
  fine: tf.Tensor2D;
  coarse: tf.Tensor2D | null;
  attention: StageAttention[];
  scan: BlockScanAttention[];
}

/** Which blocks {@link MerbaModel.explain} traces: `"all"`, `"none"`, `"last"` (last block of every stage) or a list. */
export type ScanBlockSelection = "all" | "none" | "last" | { stage: number; block: number }[];

/**
 * A MERba network. Create with {@link createMerba}.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { createMerba } from "./merba.ts";
 * await tf.setBackend("cpu");
 * const model = createMerba("merba-test", { seed: 1 });
 * const out = model.apply(tf.zeros([2, 16, 16, 3]), { training: false });
 * if (out.fine.shape.join() !== "2,5") throw new Error();
 * model.dispose();
 * ```
 */
export class MerbaModel {
  /** The resolved configuration (a private copy). */
  readonly config: MerbaConfig;
  readonly stem: FlowStem;
  readonly stages: LgfiStage[];
  readonly head: DualGranularityHead;
  /** Map size entering each stage. */
  readonly stageSizes: [number, number][];
  /** Stochastic-depth rate of every local block, per stage (`config.dropPath`; all 0 when off). */
  readonly dropRates: number[][];
  private dropCalls = 0;

  constructor(config: MerbaConfig) {
    validateMerbaConfig(config);
    this.config = structuredClone(config);
    const c = this.config;
    const seed = (path: string) => hashSeed(c.seed, path);
    this.stem = new FlowStem({
      inChannels: c.inChannels,
      channels: c.stem.channels,
      strides: c.stem.strides,
      seed: seed("stem"),
      name: "stem",
    });
    let [h, w] = this.stem.outputSize(c.inputSize[0], c.inputSize[1]);
    if (c.stem.channels[c.stem.channels.length - 1] !== c.stages[0].dim) {
      throw new RangeError(
        `config.stem.channels ends with ${c.stem.channels.at(-1)} but stages[0].dim is ${c.stages[0].dim}`,
      );
    }
    this.stageSizes = [];
    this.stages = c.stages.map((s, i) => {
      this.stageSizes.push([h, w]);
      if (s.windowSize > Math.max(h, w)) {
        throw new RangeError(
          `config.stages[${i}].windowSize (${s.windowSize}) is larger than the stage's ${h}x${w} feature map: ` +
            `its one window would be mostly padding (use at most ${Math.max(h, w)})`,
        );
      }
      const next = c.stages[i + 1];
      const st = new LgfiStage({
        height: h,
        width: w,
        dim: s.dim,
        depth: s.depth,
        windowSize: s.windowSize,
        heads: s.heads,
        interWindow: s.interWindow ?? c.interWindow,
        scanSet: s.scanSet ?? c.scanSet,
        scanScope: c.scanScope,
        merge: c.merge,
        shareScanParams: c.shareScanParams,
        mlpRatio: c.mlpRatio,
        attnMlpRatio: c.attnMlpRatio,
        mixer: c.mixer,
        linearInit: c.linearInit,
        downsampleTo: next ? next.dim : null,
        seed: seed(`stages.${i}`),
        name: `stages.${i}`,
      });
      if (next) [h, w] = [Math.floor((h - 1) / 2) + 1, Math.floor((w - 1) / 2) + 1];
      return st;
    });
    // timm's rule: linspace(0, dropPath, total local blocks), handed out in order
    const total = c.stages.reduce((n, s) => n + s.depth, 0);
    let j = 0;
    this.dropRates = c.stages.map((s) =>
      Array.from({ length: s.depth }, () => total > 1 ? (c.dropPath * j++) / (total - 1) : 0)
    );
    const last = c.stages[c.stages.length - 1];
    this.head = new DualGranularityHead({
      dim: last.dim,
      classes: c.classes,
      coarse: c.coarseHead,
      coupling: c.headCoupling,
      coarseLossWeight: c.coarseLossWeight,
      inference: c.inference,
      linearInit: c.linearInit,
      seed: seed("head"),
      name: "head",
    });
    // Build every layer now (shapes are known from the config): weights exist before the first call.
    this.stem.ensureBuilt([null, c.inputSize[0], c.inputSize[1], c.inChannels]);
    for (const s of this.stages) s.ensureBuilt([null, s.args.height, s.args.width, s.args.dim]);
    this.head.ensureBuilt([null, h, w, last.dim]);
  }

  private get layers(): [string, MerbaLayer][] {
    return [["stem", this.stem], ...this.stages.map((s, i) => [`stages.${i}`, s] as [string, MerbaLayer]), [
      "head",
      this.head,
    ]];
  }

  private checkInput(x: tf.Tensor): void {
    const [h, w] = this.config.inputSize;
    if (x.rank !== 4 || x.shape[1] !== h || x.shape[2] !== w || x.shape[3] !== this.config.inChannels) {
      throw new TypeError(
        `${this.config.name}: input must be [batch, ${h}, ${w}, ${this.config.inChannels}] (channels-last flow), ` +
          `got [${x.shape}]`,
      );
    }
    if (x.dtype !== "float32") {
      throw new TypeError(`${this.config.name}: input must be float32, got ${x.dtype}`);
    }
  }

  /**
   * Forward pass: `x [b, h, w, 3]` → `{ fine [b, K_fine], coarse [b, K_coarse] | null }`. `training` selects
   * batch statistics in BatchNorm (and updates the moving ones). Does not dispose `x`.
   *
   * @throws {TypeError} on a wrong input shape or dtype.
   */
  apply(x: tf.Tensor, opts: { training?: boolean; seed?: number } = {}): HeadOutput {
    this.checkInput(x);
    const kw = { training: Boolean(opts.training) };
    const dropSeed = kw.training && this.config.dropPath > 0
      ? (opts.seed ?? hashSeed(this.config.seed, `dropPath.${this.dropCalls++}`))
      : null;
    const [fine, coarse] = tf.tidy(() => {
      let h = this.stem.call(x, kw);
      this.stages.forEach((s, i) => {
        h = s.call(
          h,
          dropSeed === null ? {} : { drop: { rates: this.dropRates[i], seed: dropSeed + 1000 * i } },
        );
      });
      const out = this.head.forward(h, kw);
      return out.coarse ? [out.fine, out.coarse] : [out.fine];
    }) as tf.Tensor2D[];
    return { fine, coarse: coarse ?? null };
  }

  /** Inference: fine logits `[b, K_fine]`, or `{ coarse, fine }` when the coarse head is on. */
  predict(x: tf.Tensor): tf.Tensor2D | { coarse: tf.Tensor2D; fine: tf.Tensor2D } {
    const out = this.apply(x, { training: false });
    return out.coarse ? { coarse: out.coarse, fine: out.fine } : out.fine;
  }

  /** `CE_fine + λ·CE_coarse` (coarse targets from `config.classes.fineToCoarse`). See {@link DualGranularityHead.loss}. */
  loss(
    out: HeadOutput,
    yFine: tf.Tensor1D,
    opts?: { classWeights?: number[]; labelSmoothing?: number },
  ): tf.Scalar {
    return this.head.loss(out, yFine, opts);
  }

  /** Predicted indices `[b]` int32 at `level`, with the configured inference rule. */
  predictLevel(out: HeadOutput, level: "fine" | "coarse"): tf.Tensor1D {
    return this.head.predictLevel(out, level);
  }

  /**
   * Logits plus what the notebooks plot: the inter-window attention maps of every stage and the scan
   * hidden-attention maps of the chosen blocks (`α` of merba-model.md §6, channel-averaged, mapped back to
   * raster order per scan order, then averaged over orders; the `D` skip is not included). Inference mode.
   *
   * @param opts.scanBlocks which blocks to trace. @default "last"
   */
  explain(x: tf.Tensor, opts: { scanBlocks?: ScanBlockSelection } = {}): ExplainResult {
    this.checkInput(x);
    const sel = opts.scanBlocks ?? "last";
    if (!Array.isArray(sel) && !["all", "last", "none"].includes(sel as string)) {
      throw new RangeError(
        `explain: scanBlocks must be "all", "last", "none" or a list of {stage, block}, got ${
          JSON.stringify(sel)
        }`,
      );
    }
    const wanted = (si: number, bi: number, depth: number) =>
      sel === "all" || (sel === "last" && bi === depth - 1) ||
      (Array.isArray(sel) && sel.some((s) => s.stage === si && s.block === bi));
    if (Array.isArray(sel)) {
      for (const s of sel) {
        if (!this.stages[s.stage] || s.block < 0 || s.block >= this.stages[s.stage].blocks.length) {
          throw new RangeError(`explain: no block ${s.block} in stage ${s.stage}`);
        }
      }
    }
    const attention: StageAttention[] = [];
    const scan: BlockScanAttention[] = [];
    const logits = tf.tidy(() => {
      let h = this.stem.call(x, { training: false });
      this.stages.forEach((st, si) => {
        const r = st.forward(h, { blockInputs: true });
        if (r.attention) {
          const full = st.attention.effectiveMode === "full";
          const ws = st.args.windowSize;
          let heads = r.attention;
          if (full && st.rows * st.cols > 1) {
            // full attention over several windows runs over window-ordered tokens: report raster order
            const idx = tf.tensor1d(windowOrderOfRaster(st.rows, st.cols, ws), "int32");
            heads = tf.gather(tf.gather(heads, idx, 2), idx, 3) as tf.Tensor4D;
          }
          const unit = full ? 1 : ws;
          const [nr, nc] = full ? [st.rows * ws, st.cols * ws] : [st.rows, st.cols];
          attention.push({
            stage: si,
            heads: tf.keep(heads),
            windowGrid: [nr, nc],
            mode: full ? "full" : "windowToken",
            cellEdges: { y: unitEdges(nr, unit, st.args.height), x: unitEdges(nc, unit, st.args.width) },
          });
        }
        st.blocks.forEach((blk, bi) => {
          if (!wanted(si, bi, st.blocks.length)) return;
          const maps = this.blockScanMaps(blk, r.blockInputs![bi]);
          scan.push({
            stage: si,
            block: bi,
            windowSize: st.args.windowSize,
            orders: maps.orders,
            maps: tf.keep(maps.mean),
            perOrder: tf.keep(maps.perOrder),
          });
        });
        h = r.out;
      });
      const out = this.head.forward(h, { training: false });
      return out.coarse ? [out.fine, out.coarse] : [out.fine];
    }) as tf.Tensor2D[];
    return { fine: logits[0], coarse: logits[1] ?? null, attention, scan };
  }

  private blockScanMaps(
    blk: LgfiStage["blocks"][number],
    windows: tf.Tensor,
  ): { mean: tf.Tensor3D; perOrder: tf.Tensor4D; orders: string[] } {
    const ws = blk.windowSize;
    const l = ws * ws;
    const bw = windows.shape[0];
    const per: tf.Tensor4D[] = [];
    const labels: string[] = [];
    if (blk.scanScope === "ssm") {
      const tr = blk.mixers[0].forwardTrace(blk.mixerInput(windows));
      for (const g of tr.groups) {
        const alpha = scanHiddenAttention(g.u, g.delta, g.A, g.B, g.C, {
          deltaBias: g.deltaBias,
          deltaSoftplus: true,
        });
        per.push(unpermutePairs(tf.mean(alpha, 1), g.orders, ws, ws)); // [kg, b·nW, l, l]
        labels.push(...g.orders.map(scanOrderLabel));
      }
    } else {
      // whole mixer per order: each mixer is raster-only on its order's token sequence
      const xin = blk.mixerInput(windows);
      blk.orders.forEach((o, k) => {
        const m = blk.mixers[blk.shareScanParams ? 0 : k];
        const tr = m.forwardTrace(permuteTokens(xin, [o], ws, ws));
        const g = tr.groups[0];
        const alpha = scanHiddenAttention(g.u, g.delta, g.A, g.B, g.C, {
          deltaBias: g.deltaBias,
          deltaSoftplus: true,
        });
        per.push(unpermutePairs(tf.mean(alpha, 1), [o], ws, ws));
        labels.push(scanOrderLabel(o));
      });
    }
    const perOrder = (per.length === 1 ? per[0] : tf.concat(per, 0)) as tf.Tensor4D; // [k, b·nW, l, l]
    // weighted as the block merges the orders (a learned softmax merge is not a plain mean)
    const byLabel = blk.orders.map(scanOrderLabel);
    const idx = labels.map((lab) => byLabel.indexOf(lab));
    const w = tf.gather(blk.orderWeights(), tf.tensor1d(idx, "int32")).reshape([idx.length, 1, 1, 1]);
    return {
      mean: tf.sum(tf.mul(perOrder, w), 0).reshape([bw, l, l]) as tf.Tensor3D,
      perOrder,
      orders: labels,
    };
  }

  /** Every weight with its stable name (`stages.0.blocks.0.mixer.in_proj.kernel`). */
  namedWeights(): NamedWeight[] {
    return this.layers.flatMap(([name, layer]) => layer.namedWeights(name));
  }

  /** Trainable variables (for `tf.variableGrads` / optimizers). */
  trainableWeights(): tf.Variable[] {
    return this.namedWeights().filter((w) => w.variable.trainable).map((w) =>
      w.variable.read() as tf.Variable
    );
  }

  /** Non-trainable variables updated by training-mode forward passes (BatchNorm moving statistics). */
  stateVariables(): tf.Variable[] {
    return this.namedWeights().filter((w) => !w.variable.trainable).map((w) =>
      w.variable.read() as tf.Variable
    );
  }

  /** AdamW groups: `noDecay` = A_log, D, norms, biases, position embeddings, merge logits; `decay` = the rest. */
  weightGroups(): { decay: tf.Variable[]; noDecay: tf.Variable[] } {
    const tw = this.namedWeights().filter((w) => w.variable.trainable);
    return {
      decay: tw.filter((w) => w.decay).map((w) => w.variable.read() as tf.Variable),
      noDecay: tw.filter((w) => !w.decay).map((w) => w.variable.read() as tf.Variable),
    };
  }

  /** Number of parameters (trainable only by default; BatchNorm moving statistics excluded). */
  countParams(opts: { trainableOnly?: boolean } = {}): number {
    const only = opts.trainableOnly ?? true;
    return this.namedWeights()
      .filter((w) => !only || w.variable.trainable)
      .reduce((s, w) => s + (w.variable.shape as number[]).reduce((a, b) => a * b, 1), 0);
  }

  /** A table of layers with output shapes and parameter counts (batch shown as `b`). */
  summary(): string {
    const c = this.config;
    const rows: [string, string, number][] = [];
    const fmt = (s: (number | null)[]) => `[b, ${s.slice(1).join(", ")}]`;
    let shape: (number | null)[] = [null, c.inputSize[0], c.inputSize[1], c.inChannels];
    rows.push(["input", fmt(shape), 0]);
    shape = this.stem.computeOutputShape(shape as number[]) as number[];
    rows.push([
      `stem (${c.stem.channels.length}x conv3x3 s[${c.stem.strides}] + BN + ReLU)`,
      fmt(shape),
      this.stem.paramCount(true),
    ]);
    this.stages.forEach((st, i) => {
      const a = st.args;
      const win = `${st.rows}x${st.cols} windows of ${a.windowSize}x${a.windowSize}`;
      st.blocks.forEach((b, j) => {
        rows.push([
          `stages.${i}.blocks.${j} local extractor (${b.orders.map(scanOrderLabel).join(" ")}; ${win})`,
          `[b·${st.rows * st.cols}, ${a.windowSize ** 2}, ${a.dim}]`,
          b.paramCount(true),
        ]);
      });
      rows.push([
        `stages.${i}.attn inter-window (${st.attention.effectiveMode}, ${a.heads} heads)`,
        fmt(shape),
        st.attention.paramCount(true),
      ]);
      if (st.downsample) {
        shape = st.downsample.computeOutputShape(shape as number[]) as number[];
        rows.push([`stages.${i}.downsample (conv3x3 s2)`, fmt(shape), st.downsample.paramCount(true)]);
      }
    });
    const heads = c.coarseHead
      ? `coarse [b, ${c.classes.coarse.length}], fine [b, ${c.classes.fine.length}] (${c.headCoupling})`
      : `fine [b, ${c.classes.fine.length}]`;
    rows.push(["head (BN, GAP, dual granularity)", heads, this.head.paramCount(true)]);
    const w0 = Math.max(...rows.map((r) => r[0].length), 5);
    const w1 = Math.max(...rows.map((r) => r[1].length), 12);
    const line = "-".repeat(w0 + w1 + 14);
    const out = [
      `${c.name}: ${this.countParams().toLocaleString("en-US")} trainable parameters`,
      line,
      `${"layer".padEnd(w0)}  ${"output shape".padEnd(w1)}  ${"params".padStart(10)}`,
      line,
      ...rows.map((r) =>
        `${r[0].padEnd(w0)}  ${r[1].padEnd(w1)}  ${r[2].toLocaleString("en-US").padStart(10)}`
      ),
      line,
    ];
    return out.join("\n");
  }

  /** Disposes every weight. */
  dispose(): void {
    for (const [, l] of this.layers) l.disposeWeights();
  }
}

/**
 * Builds a MERba model from a registered name or a (partial) config, plus overrides:
 * defaults ← variant ← overrides. Initial weights depend only on `seed` (bit-identical on every backend).
 *
 * @throws {RangeError} on an unknown name (the message lists the registered ones) or an invalid field.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { createMerba, listModels } from "../../mod.ts";
 * await tf.setBackend("cpu");
 * const names = listModels().map((m) => m.name); // ["merba-tiny", "merba-small-112", "merba-test"]
 * const m = createMerba("merba-tiny", { seed: 7, scanSet: "vmamba4" });
 * console.log(m.summary(), names);
 * m.dispose();
 * ```
 */
export function createMerba(nameOrConfig: string | MerbaOverrides, overrides?: MerbaOverrides): MerbaModel {
  return new MerbaModel(resolveMerbaConfig(nameOrConfig, overrides));
}
