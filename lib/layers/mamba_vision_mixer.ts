/**
 * MambaVision mixer (Hatamizadeh & Kautz, MambaVision, CVPR 2025; NVlabs/MambaVision
 * `mambavision/models/mamba_vision.py`, class `MambaVisionMixer`), with MERba's multi-scan extension.
 *
 * Glossary: `b` batch (windows), `l` tokens, `C` model channels (`dModel`), `h = expand·C/2` channels per
 * branch, `n` state size (`dState`), `R = ⌈C/16⌉` dt rank, `k` scan orders.
 *
 * Forward (merba-model.md §3), `X: [b, l, C]` channels-last:
 *
 *   [x̂; ẑ] = X·W_in                                  in_proj, no bias; x̂, ẑ: [b, l, h]
 *   x = silu(DWConv_x(x̂)),  z = silu(DWConv_z(ẑ))     depthwise, kernel dConv, non-causal 'same', no bias
 *   [δ; B; C] = x·W_x                                  x_proj, no bias; widths R, n, n
 *   Δ_in = δ·W_dt + b_dt                               dt_proj WITH bias (dtBias "mambavision")
 *   y = selectiveScan(x, Δ_in, A = −exp(A_log), B, C, D, deltaBias = b_dt, softplus)
 *   Y = [y; z]·W_out                                   concatenation, no gate; out_proj, no bias
 *
 * Note: MambaVision adds `b_dt` twice (Δ = softplus(δ·W_dt + 2·b_dt)); `dtBias: "mamba"` drops the first one
 * (reference Mamba). Note: MambaVision's full model re-initialises every Linear with trunc-normal(0.02),
 * dt_proj included; `dtInit: "zero"` reproduces that, `"inverse-softplus"` (default) keeps Mamba's dt init.
 *
 * Multi-scan (MERba, `scanScope "ssm"`): for each scan order `π_k` the x branch (conv, x_proj, dt_proj, scan)
 * runs on `x̂[π_k]`, its output returns to raster order through `π_k⁻¹`, and the orders are merged (mean,
 * sum, or softmax-weighted) before the concatenation with `z`, which runs once in raster order.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { cachedScalar } from "../ops/constants.ts";
import { selectiveScan } from "../ops/selective_scan.ts";
import { applyIndexMap, applyIndexMaps, applyIndexMapSum, cachedIndexMap } from "../ops/windows.ts";
import {
  invertPermutation,
  isIdentity,
  resolveScanSet,
  type ScanOrder,
  scanOrderLabel,
  scanPermutation,
  type ScanSetSpec,
} from "../ops/scan_orders.ts";
import { type LayerVariable, MerbaLayer, type MerbaLayerArgs, oneTensor } from "./base.ts";
import { depthwiseConv1d, linear, silu } from "./functional.ts";
import { checkLinearInit, type InitSpec, type LinearInit, linearInitSpec } from "./init.ts";

/** How the scan orders' outputs are merged back into one raster-order tensor. */
export type ScanMerge = "mean" | "sum" | "softmax";

/** Arguments of {@link MambaVisionMixer}. Defaults are the MambaVision class defaults. */
export interface MambaVisionMixerArgs extends MerbaLayerArgs {
  /** Model channels `C` (input and output width). */
  dModel: number;
  /** State size `n`. @default 16 (MambaVision blocks use 8) */
  dState?: number;
  /** Depthwise conv kernel. @default 4 (MambaVision blocks use 3) */
  dConv?: number;
  /** `d_inner = expand·C`, split into two branches of `d_inner/2`. @default 2 (MambaVision blocks use 1) */
  expand?: number;
  /** dt rank; `"auto"` = ⌈C/16⌉. @default "auto" */
  dtRank?: number | "auto";
  /** `"mambavision"`: dt_proj bias in dt_proj and again as the scan's deltaBias; `"mamba"`: once. @default "mambavision" */
  dtBias?: "mambavision" | "mamba";
  /** dt_proj init: Mamba's inverse-softplus bias and U(±R^−½) weight, or MambaVision's model-level zero bias. @default "inverse-softplus" */
  dtInit?: "inverse-softplus" | "zero";
  /** Range and floor of the initial dt. @default [1e-3, 1e-1], 1e-4 */
  dtMin?: number;
  dtMax?: number;
  dtFloor?: number;
  /** Linear/conv weight init (see `LinearInit`): PyTorch defaults (standalone mixer), trunc-normal(0.02) (MambaVision model) or LeCun normal (merba models). @default "torch" */
  linearInit?: LinearInit;
  /** Scan orders (scanScope "ssm"). @default "raster" */
  scanOrders?: ScanSetSpec;
  /** Token grid `[rows, cols]` of the sequence; required for orders other than raster. */
  grid?: [number, number];
  /** Merge of the orders. @default "mean" */
  merge?: ScanMerge;
  /** One conv/x_proj/dt_proj/A_log/D for all orders (true) or one set per order. @default false */
  shareScanParams?: boolean;
}

/** Intermediates of one forward pass (tests and hidden-attention maps). Layouts as named. */
export interface MixerTrace {
  /** `[b, l, 2h]` in_proj output. */
  xz: tf.Tensor;
  /** `[b, l, h]` z branch after conv + SiLU (raster order). */
  zConv: tf.Tensor;
  /** One entry per parameter group (one group when params are shared; else one per order). */
  groups: {
    orders: ScanOrder[];
    /** Scan inputs in the scan's layout, orders stacked on the batch axis: `[kg·b, h, l]`, `[kg·b, n, l]`. */
    u: tf.Tensor3D;
    /** dt_proj output, the scan's `delta` argument (bias included when dtBias is "mambavision"). */
    delta: tf.Tensor3D;
    B: tf.Tensor3D;
    C: tf.Tensor3D;
    A: tf.Tensor2D;
    D: tf.Tensor1D;
    deltaBias: tf.Tensor1D;
    /** Scan output `[kg·b, h, l]` (scan order). */
    y: tf.Tensor3D;
  }[];
  /** `[b, l, h]` merged scan output in raster order. */
  yMerged: tf.Tensor;
  /** `[b, l, C]` layer output. */
  out: tf.Tensor;
}

interface ScanGroup {
  orders: ScanOrder[];
  convX: LayerVariable;
  xProj: LayerVariable;
  dtProjW: LayerVariable;
  dtProjB: LayerVariable;
  aLog: LayerVariable;
  d: LayerVariable;
}

/**
 * Merges same-shape tensors (one per scan order): mean, sum, or softmax(logits)-weighted sum.
 *
 * @param logits `[k]` merge logits for `"softmax"`, else null.
 */
export function mergeOrders(ys: tf.Tensor[], merge: ScanMerge, logits: tf.Tensor | null): tf.Tensor {
  const k = ys.length;
  if (k === 1) return ys[0];
  if (merge === "softmax" && logits) {
    const w = tf.unstack(tf.softmax(logits)); // k scalars
    return tf.addN(ys.map((y, i) => tf.mul(y, w[i])));
  }
  const s = tf.addN(ys);
  return merge === "sum" ? s : tf.mul(s, cachedScalar(1 / k));
}

// ---- index maps (built once per shape; see ops/windows.ts) ----

/** `[b·l, W]` → `[k·b, l, h]`: channels `[off, off+h)` of each token, tokens in scan order `π_k`. */
function scanInMap(
  b: number,
  l: number,
  width: number,
  off: number,
  h: number,
  perms: Int32Array[],
  tag: string,
) {
  return cachedIndexMap(`mixer-in:${tag}:${b}x${l}x${width}:${off}+${h}`, [b * l, width], [
    perms.length * b,
    l,
    h,
  ], (idx) => {
    let i = 0;
    for (const p of perms) {
      for (let bi = 0; bi < b; bi++) {
        for (let t = 0; t < l; t++) {
          const base = (bi * l + p[t]) * width + off;
          for (let c = 0; c < h; c++) idx[i++] = base + c;
        }
      }
    }
  });
}

/** `[N, W]` → `[N, ch]`: columns `[off, off+ch)`. */
function columnsMap(n: number, width: number, off: number, ch: number) {
  return cachedIndexMap(`mixer-cols:${n}x${width}:${off}+${ch}`, [n, width], [n, ch], (idx) => {
    let i = 0;
    for (let r = 0; r < n; r++) for (let c = 0; c < ch; c++) idx[i++] = r * width + off + c;
  });
}

/** `[N·l, W]` → `[N, ch, l]`: channels `[off, off+ch)`, transposed to the scan's channels-first layout. */
function channelsFirstMap(nb: number, l: number, width: number, off: number, ch: number) {
  return cachedIndexMap(`mixer-cf:${nb}x${l}x${width}:${off}+${ch}`, [nb * l, width], [nb, ch, l], (idx) => {
    let i = 0;
    for (let s = 0; s < nb; s++) {
      for (let c = 0; c < ch; c++) {
        for (let t = 0; t < l; t++) idx[i++] = (s * l + t) * width + off + c;
      }
    }
  });
}

/** `[k·b, h, l]` (scan order) → `[k, b·l, h]` (raster order) through `π_k⁻¹`. */
function scanOutMap(b: number, h: number, l: number, invs: Int32Array[], tag: string) {
  const k = invs.length;
  return cachedIndexMap(`mixer-out:${tag}:${b}x${h}x${l}`, [k * b, h, l], [k, b * l, h], (idx) => {
    let i = 0;
    for (let ki = 0; ki < k; ki++) {
      const inv = invs[ki];
      for (let bi = 0; bi < b; bi++) {
        for (let t = 0; t < l; t++) {
          const base = (ki * b + bi) * h * l + inv[t];
          for (let c = 0; c < h; c++) idx[i++] = base + c * l;
        }
      }
    }
  });
}

/**
 * MambaVision mixer as a registered tfjs layer on `[batch, length, channels]`, with optional multi-scan
 * (several orders of the window's tokens through the scan branch, merged back to raster order).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { mambaVisionMixer } from "./mamba_vision_mixer.ts";
 * await tf.setBackend("cpu");
 * const mixer = mambaVisionMixer({ dModel: 16, dState: 8, dConv: 3, expand: 1, seed: 1 });
 * const y = mixer.apply(tf.randomNormal([2, 49, 16])) as tf.Tensor;
 * if (y.shape.join() !== "2,49,16") throw new Error("shape");
 * ```
 */
export class MambaVisionMixer extends MerbaLayer {
  static className = "MambaVisionMixer";
  readonly dModel: number;
  readonly dState: number;
  readonly dConv: number;
  readonly expand: number;
  readonly dInner: number;
  readonly branch: number;
  readonly dtRank: number;
  readonly dtBias: "mambavision" | "mamba";
  readonly dtInit: "inverse-softplus" | "zero";
  readonly linearInit: LinearInit;
  readonly orders: ScanOrder[];
  readonly grid: [number, number] | null;
  readonly merge: ScanMerge;
  readonly shareScanParams: boolean;
  private readonly dtRange: [number, number, number];
  private readonly scanSpec: ScanSetSpec;
  private inProj!: LayerVariable;
  private convZ!: LayerVariable;
  private outProj!: LayerVariable;
  private mergeLogits: LayerVariable | null = null;
  private groups: ScanGroup[] = [];

  constructor(args: MambaVisionMixerArgs) {
    super(args);
    const {
      dModel,
      dState = 16,
      dConv = 4,
      expand = 2,
      dtRank = "auto",
      dtBias = "mambavision",
      dtInit = "inverse-softplus",
      dtMin = 1e-3,
      dtMax = 1e-1,
      dtFloor = 1e-4,
      linearInit = "torch",
      scanOrders = "raster",
      grid,
      merge = "mean",
      shareScanParams = false,
    } = args;
    const posInt = (name: string, v: number) => {
      if (!Number.isInteger(v) || v < 1) {
        throw new RangeError(`mambaVisionMixer: ${name} must be a positive integer, got ${v}`);
      }
    };
    posInt("dModel", dModel);
    posInt("dState", dState);
    posInt("dConv", dConv);
    posInt("expand", expand);
    if ((expand * dModel) % 2 !== 0) {
      throw new RangeError(
        `mambaVisionMixer: expand·dModel = ${expand * dModel} must be even (two branches)`,
      );
    }
    if (dtBias !== "mambavision" && dtBias !== "mamba") {
      throw new RangeError(
        `mambaVisionMixer: dtBias must be "mambavision" or "mamba", got ${String(dtBias)}`,
      );
    }
    if (dtInit !== "inverse-softplus" && dtInit !== "zero") {
      throw new RangeError(
        `mambaVisionMixer: dtInit must be "inverse-softplus" or "zero", got ${String(dtInit)}`,
      );
    }
    if (!["mean", "sum", "softmax"].includes(merge)) {
      throw new RangeError(
        `mambaVisionMixer: merge must be "mean", "sum" or "softmax", got ${String(merge)}`,
      );
    }
    this.dModel = dModel;
    this.dState = dState;
    this.dConv = dConv;
    this.expand = expand;
    this.dInner = expand * dModel;
    this.branch = this.dInner / 2;
    this.dtRank = dtRank === "auto" ? Math.ceil(dModel / 16) : dtRank;
    posInt("dtRank", this.dtRank);
    this.dtBias = dtBias;
    this.dtInit = dtInit;
    checkLinearInit(linearInit, "mambaVisionMixer");
    this.linearInit = linearInit;
    this.dtRange = [dtMin, dtMax, dtFloor];
    this.scanSpec = scanOrders;
    this.orders = resolveScanSet(scanOrders);
    this.grid = grid ?? null;
    this.merge = merge;
    this.shareScanParams = shareScanParams;
    const needsGrid = this.orders.some((o) => !(o.major === "row" && o.h === 1 && o.v === 1));
    if (needsGrid && !this.grid) {
      throw new RangeError(
        `mambaVisionMixer: scan orders ${this.orders.map(scanOrderLabel).join(", ")} need the token grid ` +
          "(argument grid: [rows, cols])",
      );
    }
  }

  private linInit(fanIn: number): InitSpec {
    return linearInitSpec(this.linearInit, fanIn);
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as (number | null)[];
    if (shape.length !== 3 || shape[2] !== this.dModel) {
      throw new TypeError(`mambaVisionMixer: input must be [batch, length, ${this.dModel}], got [${shape}]`);
    }
    const { dModel: c, dInner, branch: h, dState: n, dtRank: r, dConv: k } = this;
    this.inProj = this.param("in_proj.kernel", [c, dInner], this.linInit(c));
    this.convZ = this.param("conv1d_z.kernel", [1, k, h, 1], this.linInit(k));
    const sets = this.shareScanParams ? [this.orders] : this.orders.map((o) => [o]);
    this.groups = sets.map((orders, g) => {
      const sfx = sets.length === 1 ? "" : `.${g}`;
      const dtWInit: InitSpec = this.dtInit === "inverse-softplus"
        ? { kind: "uniform", limit: 1 / Math.sqrt(r) }
        : { kind: "truncNormal", std: 0.02 };
      const dtBInit: InitSpec = this.dtInit === "inverse-softplus"
        ? { kind: "dtBias", dtMin: this.dtRange[0], dtMax: this.dtRange[1], floor: this.dtRange[2] }
        : { kind: "zeros" };
      return {
        orders,
        convX: this.param(`conv1d_x${sfx}.kernel`, [1, k, h, 1], this.linInit(k)),
        xProj: this.param(`x_proj${sfx}.kernel`, [h, r + 2 * n], this.linInit(h)),
        dtProjW: this.param(`dt_proj${sfx}.kernel`, [r, h], dtWInit),
        dtProjB: this.param(`dt_proj${sfx}.bias`, [h], dtBInit, { decay: false }),
        aLog: this.param(`A_log${sfx}`, [h, n], { kind: "aLog" }, { decay: false }),
        d: this.param(`D${sfx}`, [h], { kind: "ones" }, { decay: false }),
      };
    });
    if (this.merge === "softmax" && this.orders.length > 1) {
      this.mergeLogits = this.param("merge_logits", [this.orders.length], { kind: "zeros" }, {
        decay: false,
      });
    }
    this.outProj = this.param("out_proj.kernel", [dInner, c], this.linInit(dInner));
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => this.forward(oneTensor(inputs)).out);
  }

  /** Forward pass with every intermediate (see {@link MixerTrace}); wrap in `tf.tidy` and keep what you need. */
  forwardTrace(x: tf.Tensor): MixerTrace {
    this.ensureBuilt(x.shape);
    return this.forward(x, true) as MixerTrace;
  }

  /** Per-order merge weights `[k]` (softmax of the logits; uniform for mean; ones for sum). */
  mergeWeights(): tf.Tensor1D {
    const k = this.orders.length;
    if (this.mergeLogits) return tf.softmax(this.mergeLogits.read()) as tf.Tensor1D;
    return tf.fill([k], this.merge === "sum" ? 1 : 1 / k) as tf.Tensor1D;
  }

  private forward(x: tf.Tensor, keepTrace = false): MixerTrace | { out: tf.Tensor } {
    if (x.rank !== 3 || x.shape[2] !== this.dModel) {
      throw new TypeError(
        `mambaVisionMixer: input must be [batch, length, ${this.dModel}], got [${x.shape}]`,
      );
    }
    const [b, l] = x.shape;
    const { branch: h, dState: n, dtRank: r, dInner } = this;
    const [rows, cols] = this.grid ?? [1, l];
    if (rows * cols !== l) {
      throw new TypeError(`mambaVisionMixer: length ${l} does not match the token grid ${rows}x${cols}`);
    }
    // [x̂; ẑ] = X·W_in: [b·l, 2h], tokens row-major
    const xz = linear(x.reshape([b * l, this.dModel]), this.inProj.read());
    const ident = [scanPermutation({ major: "row", h: 1, v: 1 }, rows, cols)];
    // One gather op reads ẑ (raster) and x̂ in every group's scan orders out of xz.
    const groupPerms = this.groups.map((g) => g.orders.map((o) => scanPermutation(o, rows, cols)));
    const tags = this.groups.map((g, i) =>
      groupPerms[i].every(isIdentity) ? "id" : `${g.orders.map(scanOrderLabel).join("|")}@${rows}x${cols}`
    );
    const [zHat, ...xHats] = applyIndexMaps(xz, [
      scanInMap(b, l, dInner, h, h, ident, "id"),
      ...groupPerms.map((perms, i) => scanInMap(b, l, dInner, 0, h, perms, tags[i])),
    ]);
    // z = silu(DWConv_z(ẑ)): [b, l, h], raster order
    const zConv = silu(depthwiseConv1d(zHat, this.convZ.read()));
    const groupTraces: MixerTrace["groups"] = [];
    const ys: tf.Tensor[] = [];
    const mergeInGather = tf.getBackend() === "webgpu" && !keepTrace && this.groups.length === 1 &&
      this.groups[0].orders.length > 1 && (this.merge === "mean" || this.merge === "sum");
    let merged: tf.Tensor | null = null;
    for (const [gi, g] of this.groups.entries()) {
      const perms = groupPerms[gi];
      const kb = g.orders.length * b;
      // x̂ in each scan order, orders stacked on the batch axis: [kg·b, l, h]
      const xHat = xHats[gi];
      const xConv = silu(depthwiseConv1d(xHat, g.convX.read())); // [kg·b, l, h]
      const xFlat = xConv.reshape([kb * l, h]);
      const xDbl = linear(xFlat, g.xProj.read()); // [kg·b·l, R + 2n]
      // δ [kg·b·l, R]; B, C [kg·b, n, l] (scan layout), in one gather op
      const [dtLow, Bm, Cm] = applyIndexMaps(xDbl, [
        columnsMap(kb * l, r + 2 * n, 0, r),
        channelsFirstMap(kb, l, r + 2 * n, r, n),
        channelsFirstMap(kb, l, r + 2 * n, r + n, n),
      ]) as [tf.Tensor, tf.Tensor3D, tf.Tensor3D];
      // Δ_in = δ·W_dt (+ b_dt for MambaVision's double bias): [kg·b·l, h]
      const dtLin = linear(
        dtLow,
        g.dtProjW.read(),
        this.dtBias === "mambavision" ? g.dtProjB.read() : undefined,
      );
      // to the scan's PyTorch layout: u, delta [kg·b, h, l]; B, C [kg·b, n, l]
      const u = applyIndexMap(xFlat, channelsFirstMap(kb, l, h, 0, h)) as tf.Tensor3D;
      const delta = applyIndexMap(dtLin, channelsFirstMap(kb, l, h, 0, h)) as tf.Tensor3D;
      const A = tf.neg(tf.exp(g.aLog.read())) as tf.Tensor2D; // A = −exp(A_log)
      const D = g.d.read() as tf.Tensor1D;
      const deltaBias = g.dtProjB.read() as tf.Tensor1D;
      const y = selectiveScan(u, delta, A, Bm, Cm, { D, deltaBias, deltaSoftplus: true }) as tf.Tensor3D;
      // back to raster order: kg × [b·l, h]
      const invs = perms.map(invertPermutation);
      const outMap = scanOutMap(b, h, l, invs, tags[gi]);
      if (mergeInGather) {
        // webgpu: the way back and the mean/sum of the orders in one gather-sum (1 + 1 dispatches, not ≈ 6 + 3)
        merged = applyIndexMapSum(y, outMap, this.merge === "mean" ? 1 / g.orders.length : 1);
      } else {
        const back = applyIndexMap(y, outMap);
        ys.push(...(g.orders.length === 1 ? [back.reshape([b * l, h])] : tf.unstack(back, 0)));
      }
      if (keepTrace) groupTraces.push({ orders: g.orders, u, delta, B: Bm, C: Cm, A, D, deltaBias, y });
    }
    // merge the orders: Σ_k w_k·y_k (scalar weights keep tfjs on its fast same-shape path)
    const yMerged = merged ?? mergeOrders(ys, this.merge, this.mergeLogits?.read() ?? null); // [b·l, h]
    // Y = [y; z]·W_out (concatenation, no gate) = y·W_out[:h] + z·W_out[h:] (no concat: its tfjs gradient is slow)
    const wOut = this.outProj.read();
    const outY = linear(yMerged, tf.slice(wOut, [0, 0], [h, this.dModel]));
    const outZ = linear(zConv.reshape([b * l, h]), tf.slice(wOut, [h, 0], [h, this.dModel]));
    const out = tf.add(outY, outZ).reshape([b, l, this.dModel]);
    if (!keepTrace) return { out };
    return {
      xz: xz.reshape([b, l, dInner]),
      zConv,
      groups: groupTraces,
      yMerged: yMerged.reshape([b, l, h]),
      out,
    };
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      dModel: this.dModel,
      dState: this.dState,
      dConv: this.dConv,
      expand: this.expand,
      dtRank: this.dtRank,
      dtBias: this.dtBias,
      dtInit: this.dtInit,
      dtMin: this.dtRange[0],
      dtMax: this.dtRange[1],
      dtFloor: this.dtRange[2],
      linearInit: this.linearInit,
      scanOrders:
        (typeof this.scanSpec === "string"
          ? this.scanSpec
          : this.orders.map(scanOrderLabel)) as tf.serialization.ConfigDictValue,
      grid: this.grid as tf.serialization.ConfigDictValue,
      merge: this.merge,
      shareScanParams: this.shareScanParams,
      seed: this.seed,
    };
  }

  /** Parameter groups (for weight import): in_proj, conv_z, out_proj and one scan group per order set. */
  paramRefs(): {
    inProj: LayerVariable;
    convZ: LayerVariable;
    outProj: LayerVariable;
    groups: Omit<ScanGroup, "orders">[];
  } {
    if (!this.built) {
      throw new Error("mambaVisionMixer: the layer is not built yet (call it once or build())");
    }
    return { inProj: this.inProj, convZ: this.convZ, outProj: this.outProj, groups: this.groups };
  }
}
tf.serialization.registerClass(MambaVisionMixer);

/**
 * Creates a {@link MambaVisionMixer} (`[batch, length, dModel]` → same shape).
 *
 * @throws {RangeError} on invalid sizes or option values.
 */
export function mambaVisionMixer(args: MambaVisionMixerArgs): MambaVisionMixer {
  return new MambaVisionMixer(args);
}
