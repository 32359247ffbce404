/**
 * Inter-window attention: MERba's global step between windows (merba-model.md §5.3).
 *
 * `windowToken` (default), windows `X: [b·nW, l, c]` on a `rows × cols` window grid:
 *
 *   t_w = mean_l X[w] + P_row[r(w)] + P_col[c(w)]          one token per window + 2-D position embedding
 *   a = t + MHSA(LN(t));  a ← a + MLP(LN(a))                 pre-norm transformer block over nW tokens
 *   X[w] ← X[w] + a_w·W_ret + b_ret                          W_ret, b_ret zero-initialised: identity at start
 *
 * `full`: a pre-norm transformer block over every token of the stage (`x ← x + MHSA(LN(x))`,
 * `x ← x + MLP(LN(x))`); used automatically by `windowToken` when the stage has a single window.
 * `none`: identity (ablation). Attention maps: `[b, heads, nW, nW]` (windowToken) or `[b, heads, N, N]`
 * over the stage's tokens (full; window-major token order).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type LayerVariable, MerbaLayer, type MerbaLayerArgs, oneTensor } from "./base.ts";
import { checkLinearInit, type LinearInit, linearInitSpec } from "./init.ts";
import { gelu, layerNorm, linear } from "./functional.ts";
import { attentionProbs, fusedAddTokens, fusedAttention, fusedMeanTokens } from "./fused.ts";
import { applyIndexMap, cachedIndexMap } from "../ops/windows.ts";

/** `[b, n, 3·heads·hd]` → `[3, b, heads, n, hd]`. */
function headsMap(b: number, n: number, heads: number, hd: number) {
  const c = heads * hd;
  return cachedIndexMap(`qkv-heads:${b}x${n}x${heads}x${hd}`, [b, n, 3 * c], [3, b, heads, n, hd], (idx) => {
    let i = 0;
    for (let p = 0; p < 3; p++) {
      for (let s = 0; s < b; s++) {
        for (let h = 0; h < heads; h++) {
          for (let t = 0; t < n; t++) {
            const base = (s * n + t) * 3 * c + p * c + h * hd;
            for (let j = 0; j < hd; j++) idx[i++] = base + j;
          }
        }
      }
    }
  });
}

/** `[b, heads, n, hd]` → `[b, n, heads·hd]`. */
function mergeHeadsMap(b: number, n: number, heads: number, hd: number) {
  return cachedIndexMap(
    `merge-heads:${b}x${n}x${heads}x${hd}`,
    [b, heads, n, hd],
    [b, n, heads * hd],
    (idx) => {
      let i = 0;
      for (let s = 0; s < b; s++) {
        for (let t = 0; t < n; t++) {
          for (let h = 0; h < heads; h++) {
            const base = ((s * heads + h) * n + t) * hd;
            for (let j = 0; j < hd; j++) idx[i++] = base + j;
          }
        }
      }
    },
  );
}

/** Inter-window attention variant. */
export type InterWindowMode = "windowToken" | "full" | "none";

/** Arguments of {@link InterWindowAttention}. */
export interface InterWindowAttentionArgs extends MerbaLayerArgs {
  dim: number;
  heads: number;
  /** Window grid of the stage. */
  rows: number;
  cols: number;
  /** Tokens per window (`ws²`). */
  windowTokens: number;
  /** @default "windowToken" */
  mode?: InterWindowMode;
  /** MLP ratio of the attention block (0 = no MLP). @default 2 */
  mlpRatio?: number;
  /** Init of the linear kernels (see `LinearInit`). @default "truncNormal" (timm / MambaVision) */
  linearInit?: LinearInit;
}

/** Output of {@link InterWindowAttention.forward}. */
export interface InterWindowOutput {
  /** `[b·nW, l, c]` */
  windows: tf.Tensor;
  /** Per-head attention `[b, heads, q, k]`, or null for `none` (or when maps were not requested). */
  attention: tf.Tensor4D | null;
}

/**
 * Lightweight multi-head self-attention between windows.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { InterWindowAttention } from "./inter_window_attention.ts";
 * await tf.setBackend("cpu");
 * const att = new InterWindowAttention({ dim: 16, heads: 2, rows: 2, cols: 2, windowTokens: 49 });
 * att.ensureBuilt([8, 49, 16]);
 * const { windows, attention } = att.forward(tf.randomNormal([8, 49, 16]));
 * if (windows.shape.join() !== "8,49,16" || attention!.shape.join() !== "2,2,4,4") throw new Error();
 * ```
 */
export class InterWindowAttention extends MerbaLayer {
  static className = "MerbaInterWindowAttention";
  readonly dim: number;
  readonly heads: number;
  readonly rows: number;
  readonly cols: number;
  readonly windowTokens: number;
  /** Requested mode. */
  readonly mode: InterWindowMode;
  /** Mode in effect (`windowToken` becomes `full` on a single window). */
  readonly effectiveMode: InterWindowMode;
  readonly mlpRatio: number;
  readonly linearInit: LinearInit;
  private w: Record<string, LayerVariable> = {};

  constructor(args: InterWindowAttentionArgs) {
    super(args);
    const { dim, heads, rows, cols, windowTokens, mode = "windowToken", mlpRatio = 2 } = args;
    if (!["windowToken", "full", "none"].includes(mode)) {
      throw new RangeError(
        `interWindowAttention: mode must be windowToken, full or none, got ${String(mode)}`,
      );
    }
    if (!Number.isInteger(heads) || heads < 1 || dim % heads !== 0) {
      throw new RangeError(
        `interWindowAttention: heads (${heads}) must be a positive divisor of dim (${dim})`,
      );
    }
    this.dim = dim;
    this.heads = heads;
    this.rows = rows;
    this.cols = cols;
    this.windowTokens = windowTokens;
    this.mode = mode;
    this.effectiveMode = mode === "windowToken" && rows * cols === 1 ? "full" : mode;
    this.mlpRatio = mlpRatio;
    this.linearInit = args.linearInit ?? "truncNormal";
    checkLinearInit(this.linearInit, "interWindowAttention");
  }

  override build(): void {
    if (this.effectiveMode === "none") return;
    const c = this.dim;
    const tn = { kind: "truncNormal", std: 0.02 } as const;
    const z = { kind: "zeros" } as const;
    const nd = { decay: false };
    this.w.n1g = this.param("norm1.gamma", [c], { kind: "ones" }, nd);
    this.w.n1b = this.param("norm1.beta", [c], z, nd);
    this.w.qkvW = this.param("qkv.kernel", [c, 3 * c], linearInitSpec(this.linearInit, c));
    this.w.qkvB = this.param("qkv.bias", [3 * c], z, nd);
    this.w.projW = this.param("proj.kernel", [c, c], linearInitSpec(this.linearInit, c));
    this.w.projB = this.param("proj.bias", [c], z, nd);
    if (this.mlpRatio > 0) {
      const hd = Math.max(1, Math.round(c * this.mlpRatio));
      this.w.n2g = this.param("norm2.gamma", [c], { kind: "ones" }, nd);
      this.w.n2b = this.param("norm2.beta", [c], z, nd);
      this.w.fc1W = this.param("mlp.fc1.kernel", [c, hd], linearInitSpec(this.linearInit, c));
      this.w.fc1B = this.param("mlp.fc1.bias", [hd], z, nd);
      this.w.fc2W = this.param("mlp.fc2.kernel", [hd, c], linearInitSpec(this.linearInit, hd));
      this.w.fc2B = this.param("mlp.fc2.bias", [c], z, nd);
    }
    if (this.effectiveMode === "windowToken") {
      this.w.posRow = this.param("pos_embed.row", [this.rows, 1, c], tn, nd);
      this.w.posCol = this.param("pos_embed.col", [1, this.cols, c], tn, nd);
      this.w.retW = this.param("return.kernel", [c, c], z);
      this.w.retB = this.param("return.bias", [c], z, nd);
    }
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  /** Multi-head self-attention on `t: [b, n, c]` → output `[b, n, c]` and (when asked) maps `[b, heads, n, n]`. */
  private mhsa(t: tf.Tensor, maps: boolean): { out: tf.Tensor; attn: tf.Tensor4D | null } {
    const [b, n, c] = t.shape;
    const hd = c / this.heads;
    const qkv = linear(t, this.w.qkvW.read(), this.w.qkvB.read()); // [b, n, 3c]
    // [b, n, (3, heads, hd)] → [3, b, heads, n, hd]
    const split = applyIndexMap(qkv, headsMap(b, n, this.heads, hd));
    const [q, k, v] = tf.unstack(split, 0) as tf.Tensor4D[];
    // softmax(q·kᵀ/√hd)·v: [b, heads, n, hd]
    const scale = 1 / Math.sqrt(hd);
    const attended = fusedAttention(q, k, v, scale);
    const attn = maps ? attentionProbs(q, k, scale) : null;
    // [b, heads, n, hd] → [b, n, heads·hd]
    const o = applyIndexMap(attended, mergeHeadsMap(b, n, this.heads, hd));
    return { out: linear(o, this.w.projW.read(), this.w.projB.read()), attn };
  }

  private block(t: tf.Tensor, maps: boolean): { out: tf.Tensor; attn: tf.Tensor4D | null } {
    const { out, attn } = this.mhsa(layerNorm(t, this.w.n1g.read(), this.w.n1b.read()), maps);
    let a = tf.add(t, out);
    if (this.mlpRatio > 0) {
      const h = gelu(
        linear(layerNorm(a, this.w.n2g.read(), this.w.n2b.read()), this.w.fc1W.read(), this.w.fc1B.read()),
      );
      a = tf.add(a, linear(h, this.w.fc2W.read(), this.w.fc2B.read()));
    }
    return { out: a, attn };
  }

  /**
   * Windows in, windows out, plus the attention maps (`opts.maps`, default true; false skips computing
   * them). Wrap in `tf.tidy`.
   */
  forward(x: tf.Tensor, opts: { maps?: boolean } = {}): InterWindowOutput {
    const maps = opts.maps ?? true;
    const nW = this.rows * this.cols;
    if (
      x.rank !== 3 || x.shape[1] !== this.windowTokens || x.shape[2] !== this.dim || x.shape[0] % nW !== 0
    ) {
      throw new TypeError(
        `interWindowAttention: input must be windows [b·${nW}, ${this.windowTokens}, ${this.dim}], got [${x.shape}]`,
      );
    }
    if (this.effectiveMode === "none") return { windows: x.clone(), attention: null };
    const [bw, l, c] = x.shape;
    const b = bw / nW;
    if (this.effectiveMode === "full") {
      const { out, attn } = this.block(x.reshape([b, nW * l, c]), maps);
      return { windows: out.reshape([bw, l, c]), attention: attn };
    }
    // t_w = mean over the window's tokens + 2-D position embedding: [b, nW, c]
    const pos = tf.add(this.w.posRow.read(), this.w.posCol.read()).reshape([1, nW, c]);
    const t = tf.add(fusedMeanTokens(x).reshape([b, nW, c]), pos);
    const { out, attn } = this.block(t, maps);
    // return path: zero-initialised projection, broadcast to every token of the window
    const r = linear(out, this.w.retW.read(), this.w.retB.read()).reshape([bw, c]);
    return { windows: fusedAddTokens(x, r), attention: attn };
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => this.forward(oneTensor(inputs), { maps: false }).windows);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      dim: this.dim,
      heads: this.heads,
      rows: this.rows,
      cols: this.cols,
      windowTokens: this.windowTokens,
      mode: this.mode,
      mlpRatio: this.mlpRatio,
      seed: this.seed,
    };
  }
}
tf.serialization.registerClass(InterWindowAttention);
