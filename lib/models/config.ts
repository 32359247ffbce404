/**
 * MERba configuration: one typed object with defaults, named variants, validation (timm-style registry).
 *
 * Every number the paper leaves open is a field here (merba-model.md §5). `createMerba(name, overrides)`
 * merges defaults ← variant ← overrides into a fresh object and validates it once.
 *
 * @module
 */
import type { ScanSetSpec } from "../ops/scan_orders.ts";
import { resolveScanSet } from "../ops/scan_orders.ts";
import type { InterWindowMode } from "../layers/inter_window_attention.ts";
import type { ScanMerge } from "../layers/mamba_vision_mixer.ts";
import { checkHierarchy, type LabelHierarchy } from "../layers/dual_granularity_head.ts";
import type { LinearInit } from "../layers/init.ts";

/** One LGFI stage. */
export interface StageConfig {
  /** Channels. */
  dim: number;
  /** Local extractor blocks. */
  depth: number;
  /** Window side. */
  windowSize: number;
  /** Heads of the inter-window attention. */
  heads: number;
  /** Overrides the model's `interWindow` for this stage. */
  interWindow?: InterWindowMode;
  /** Overrides the model's `scanSet` for this stage (MERba's per-stage asymmetry). */
  scanSet?: ScanSetSpec;
}

/** Mixer hyperparameters shared by all blocks (MambaVision Block: d_state 8, d_conv 3, expand 1). */
export interface MixerConfig {
  dState: number;
  dConv: number;
  expand: number;
  dtBias: "mambavision" | "mamba";
  dtInit: "inverse-softplus" | "zero";
  /** dt rank; `"auto"` = ⌈C/16⌉ (Mamba). Absent = auto. */
  dtRank?: number | "auto";
  /** Range and floor of the initial dt (Mamba: 1e-3, 1e-1, 1e-4). Absent = those. */
  dtMin?: number;
  dtMax?: number;
  dtFloor?: number;
}

/** Fields a config may have, per level: anything else is a typo or a field of another level. */
const CONFIG_FIELDS = {
  top: [
    "name",
    "inputSize",
    "inChannels",
    "stem",
    "stages",
    "scanSet",
    "scanScope",
    "merge",
    "shareScanParams",
    "mixer",
    "linearInit",
    "mlpRatio",
    "dropPath",
    "attnMlpRatio",
    "interWindow",
    "classes",
    "coarseHead",
    "headCoupling",
    "coarseLossWeight",
    "inference",
    "seed",
  ],
  mixer: ["dState", "dConv", "expand", "dtBias", "dtInit", "dtRank", "dtMin", "dtMax", "dtFloor"],
  stem: ["channels", "strides"],
  stage: ["dim", "depth", "windowSize", "heads", "interWindow", "scanSet"],
} as const;

function checkFields(where: string, obj: unknown, allowed: readonly string[]): void {
  if (!obj || typeof obj !== "object" || Array.isArray(obj)) {
    throw new RangeError(`config${where ? "." + where : ""} must be an object, got ${JSON.stringify(obj)}`);
  }
  for (const k of Object.keys(obj)) {
    if (allowed.includes(k)) continue;
    const near = allowed.find((a) => a.toLowerCase() === k.toLowerCase());
    const dotted = k.includes(".")
      ? `; nested fields are set as objects, e.g. ${k.split(".")[0]}={"${
        k.split(".").slice(1).join(".")
      }": ...}`
      : "";
    throw new RangeError(
      `config${where ? "." + where : ""}: unknown field "${k}"${
        near ? ` (did you mean "${near}"?)` : ""
      }${dotted}` +
        ` (fields: ${allowed.join(", ")})`,
    );
  }
}

/** The full model configuration. */
export interface MerbaConfig {
  /** Variant name (informational). */
  name: string;
  /** Input `[height, width]`; channels-last input `[b, h, w, inChannels]`. */
  inputSize: [number, number];
  /** Input channels (u, v, strain). */
  inChannels: number;
  /** Stem convs (Conv3×3 → BN → ReLU each). */
  stem: { channels: number[]; strides: number[] };
  /** LGFI stages; a Conv3×3 s2 downsample to the next stage's `dim` sits between consecutive stages. */
  stages: StageConfig[];
  /** Scan orders of every block (unless a stage overrides). */
  scanSet: ScanSetSpec;
  /** `ssm`: conv + scan per order; `mixer`: the whole mixer per order. */
  scanScope: "ssm" | "mixer";
  /** Merge of the orders. */
  merge: ScanMerge;
  /**
   * One set of scan parameters (conv, x_proj, dt_proj, A_log, D) for all orders (default): the orders see the
   * same window and differ only in traversal, so multi-scanning adds no parameters and runs as one batched
   * scan; `false` gives each order its own set (VMamba style).
   */
  shareScanParams: boolean;
  mixer: MixerConfig;
  /**
   * Init of every linear kernel (mixer projections and depthwise convs, MLPs, attention, head): `"lecun"`
   * (σ = 1/√fan_in, default), `"truncNormal"` (σ = 0.02, MambaVision/timm) or `"torch"` (U(±1/√fan_in)).
   * MambaVision's σ = 0.02 is sized for hundreds of channels; at merba-tiny's 16–32 it leaves the residual
   * branches and the scan nearly silent and training needs 2–4× the steps (BENCHMARKS.md, "Training and LOSO").
   */
  linearInit: LinearInit;
  /** Local extractor MLP ratio. */
  mlpRatio: number;
  /**
   * Stochastic depth (training only): the drop rate of the last local block's residual branches; the rates rise
   * linearly over all local blocks from 0 at the first, as in MambaVision (timm's `drop_path_rate`), so a model
   * with a single local block in total never drops. In [0, 1). 0 = off.
   */
  dropPath: number;
  /** Inter-window attention MLP ratio (0 = attention only). */
  attnMlpRatio: number;
  /** Inter-window attention variant (windowToken falls back to full on a single window). */
  interWindow: InterWindowMode;
  /** Label hierarchy; decides the head sizes. */
  classes: LabelHierarchy;
  /** Dual-granularity (coarse + fine) head on. */
  coarseHead: boolean;
  headCoupling: "independent" | "conditioned";
  /** λ of `CE_fine + λ·CE_coarse`. */
  coarseLossWeight: number;
  /** Fine-level inference rule. */
  inference: "argmax" | "masked";
  /** Seed of every initial weight. */
  seed: number;
}

/** Partial config accepted by {@link createMerba} (nested objects merge field by field). */
export type MerbaOverrides = Partial<Omit<MerbaConfig, "mixer" | "stem">> & {
  mixer?: Partial<MixerConfig>;
  stem?: Partial<MerbaConfig["stem"]>;
};

/** CASME II 5-class labels grouped by valence (merba-model.md §5.4), the default hierarchy. */
export const CASME2_HIERARCHY: LabelHierarchy = Object.freeze({
  fine: ["disgust", "repression", "happiness", "surprise", "others"],
  coarse: ["negative", "positive", "surprise", "others"],
  fineToCoarse: [0, 0, 1, 2, 3],
}) as LabelHierarchy;

/**
 * Defaults of every field; equal to `merba-tiny` (28×28 flow, the STSTNet/HTNet input).
 *
 * merba-tiny: stem Conv3×3 s2 (3 → 16) → 14×14; stage 1: 14×14, ws 7 (2×2 windows), 1 block, dim 16, 2 heads,
 * windowToken attention → Conv s2 → 7×7×32; stage 2: 7×7, ws 7 (1 window), 1 block, dim 32, 4 heads, full
 * attention. Mixer d_state 8, d_conv 3, expand 1; bilateral3 scans with shared scan parameters, mean merge;
 * MLP ratio 2.
 */
export const defaultMerbaConfig: Readonly<MerbaConfig> = Object.freeze({
  name: "merba-tiny",
  inputSize: [28, 28],
  inChannels: 3,
  stem: { channels: [16], strides: [2] },
  stages: [
    { dim: 16, depth: 1, windowSize: 7, heads: 2 },
    { dim: 32, depth: 1, windowSize: 7, heads: 4 },
  ],
  scanSet: "bilateral3",
  scanScope: "ssm",
  merge: "mean",
  shareScanParams: true,
  mixer: { dState: 8, dConv: 3, expand: 1, dtBias: "mambavision", dtInit: "inverse-softplus" },
  linearInit: "lecun",
  mlpRatio: 2,
  dropPath: 0,
  attnMlpRatio: 2,
  interWindow: "windowToken",
  classes: CASME2_HIERARCHY,
  coarseHead: true,
  headCoupling: "conditioned",
  coarseLossWeight: 1,
  inference: "argmax",
  seed: 0,
}) as MerbaConfig;

const VARIANTS: Record<string, { description: string; config: MerbaOverrides }> = {
  "merba-tiny": {
    description: "28x28 flow; stem to 14x14x16; stages 14x14 (4 windows) and 7x7 (1 window); CPU-trainable",
    config: {},
  },
  "merba-small-112": {
    description:
      "112x112 flow; MambaVision stem to 28x28x64; stages 28/14/7 with 16/4/1 windows (64/128/256 ch)",
    config: {
      name: "merba-small-112",
      inputSize: [112, 112],
      stem: { channels: [32, 64], strides: [2, 2] },
      stages: [
        { dim: 64, depth: 2, windowSize: 7, heads: 2 },
        { dim: 128, depth: 2, windowSize: 7, heads: 4 },
        { dim: 256, depth: 2, windowSize: 7, heads: 8 },
      ],
      mlpRatio: 4,
      attnMlpRatio: 4,
    },
  },
  "merba-test": {
    description: "16x16 input, 8 channels: for tests only",
    config: {
      name: "merba-test",
      inputSize: [16, 16],
      stem: { channels: [8], strides: [2] },
      stages: [
        { dim: 8, depth: 1, windowSize: 4, heads: 2 },
        { dim: 16, depth: 1, windowSize: 4, heads: 2 },
      ],
      mixer: { dState: 4 },
    },
  },
};

/** Names and one-line descriptions of the registered variants (for notebooks). */
export function listModels(): { name: string; description: string }[] {
  return Object.entries(VARIANTS).map(([name, v]) => ({ name, description: v.description }));
}

/**
 * Registers a variant (overrides of the defaults) under `name`.
 *
 * @throws {RangeError} when the name exists.
 */
export function registerMerbaVariant(name: string, description: string, config: MerbaOverrides): void {
  if (VARIANTS[name]) throw new RangeError(`registerMerbaVariant: "${name}" is already registered`);
  // validate now (on the defaults' classes), not at the first createMerba
  try {
    resolveMerbaConfig({ ...structuredClone(config) as MerbaOverrides });
  } catch (e) {
    throw new RangeError(`registerMerbaVariant("${name}"): ${(e as Error).message}`);
  }
  VARIANTS[name] = { description, config: structuredClone(config) };
}

function merge(base: MerbaConfig, o: MerbaOverrides): MerbaConfig {
  const out = structuredClone(base) as MerbaConfig;
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined) continue;
    if ((k === "mixer" || k === "stem") && (typeof v !== "object" || v === null || Array.isArray(v))) {
      throw new RangeError(`config.${k} must be an object of ${k} fields, got ${JSON.stringify(v)}`);
    }
    if (k === "mixer") out.mixer = { ...out.mixer, ...(v as Partial<MixerConfig>) };
    else if (k === "stem") out.stem = { ...out.stem, ...(v as Partial<MerbaConfig["stem"]>) };
    else (out as unknown as Record<string, unknown>)[k] = structuredClone(v);
  }
  return out;
}

/**
 * Resolves a name or a (partial) config to a full, validated config: defaults ← variant ← overrides.
 *
 * @throws {RangeError} on an unknown name (listing the registered ones) or an invalid field.
 */
export function resolveMerbaConfig(
  nameOrConfig: string | MerbaOverrides,
  overrides: MerbaOverrides = {},
): MerbaConfig {
  let cfg: MerbaConfig;
  if (typeof nameOrConfig === "string") {
    const v = VARIANTS[nameOrConfig];
    if (!v) {
      throw new RangeError(
        `createMerba: unknown model "${nameOrConfig}"; registered: ${Object.keys(VARIANTS).join(", ")}`,
      );
    }
    cfg = merge(merge(defaultMerbaConfig as MerbaConfig, { name: nameOrConfig, ...v.config }), overrides);
  } else {
    cfg = merge(merge(defaultMerbaConfig as MerbaConfig, { name: "custom", ...nameOrConfig }), overrides);
  }
  validateMerbaConfig(cfg);
  return cfg;
}

/**
 * Checks every field; the message names the field and what was expected.
 *
 * @throws {RangeError}
 */
export function validateMerbaConfig(c: MerbaConfig): void {
  checkFields("", c, CONFIG_FIELDS.top);
  checkFields("mixer", c.mixer, CONFIG_FIELDS.mixer);
  checkFields("stem", c.stem, CONFIG_FIELDS.stem);
  if (Array.isArray(c.stages)) {
    c.stages.forEach((s, i) => checkFields(`stages[${i}]`, s, CONFIG_FIELDS.stage));
  }
  const finite = (field: string, v: unknown, ok: (x: number) => boolean, what: string) => {
    if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) {
      throw new RangeError(`config.${field} must be ${what}, got ${JSON.stringify(v)}`);
    }
  };
  const posInt = (field: string, v: unknown) => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
      throw new RangeError(`config.${field} must be a positive integer, got ${JSON.stringify(v)}`);
    }
  };
  const oneOf = (field: string, v: unknown, allowed: readonly unknown[]) => {
    if (!allowed.includes(v)) {
      throw new RangeError(`config.${field} must be one of ${allowed.join(", ")}, got ${JSON.stringify(v)}`);
    }
  };
  if (!Array.isArray(c.inputSize) || c.inputSize.length !== 2) {
    throw new RangeError(`config.inputSize must be [height, width], got ${JSON.stringify(c.inputSize)}`);
  }
  posInt("inputSize[0]", c.inputSize[0]);
  posInt("inputSize[1]", c.inputSize[1]);
  posInt("inChannels", c.inChannels);
  if (c.stem.channels.length === 0 || c.stem.channels.length !== c.stem.strides.length) {
    throw new RangeError(
      "config.stem.channels and config.stem.strides must be non-empty lists of equal length",
    );
  }
  c.stem.channels.forEach((v, i) => posInt(`stem.channels[${i}]`, v));
  c.stem.strides.forEach((v, i) => posInt(`stem.strides[${i}]`, v));
  if (!Array.isArray(c.stages) || c.stages.length === 0) {
    throw new RangeError("config.stages must be a non-empty list");
  }
  c.stages.forEach((s, i) => {
    posInt(`stages[${i}].dim`, s.dim);
    if (!Number.isInteger(s.depth) || s.depth < 0) {
      throw new RangeError(`config.stages[${i}].depth must be a non-negative integer, got ${s.depth}`);
    }
    posInt(`stages[${i}].windowSize`, s.windowSize);
    posInt(`stages[${i}].heads`, s.heads);
    if (s.dim % s.heads !== 0) {
      throw new RangeError(`config.stages[${i}].heads (${s.heads}) must divide stages[${i}].dim (${s.dim})`);
    }
    if ((s.dim * c.mixer.expand) % 2 !== 0) {
      throw new RangeError(`config.stages[${i}].dim·mixer.expand must be even (two mixer branches)`);
    }
    if (s.interWindow !== undefined) {
      oneOf(`stages[${i}].interWindow`, s.interWindow, ["windowToken", "full", "none"]);
    }
    if (s.scanSet !== undefined) resolveScanSet(s.scanSet);
  });
  resolveScanSet(c.scanSet);
  oneOf("scanScope", c.scanScope, ["ssm", "mixer"]);
  oneOf("merge", c.merge, ["mean", "sum", "softmax"]);
  oneOf("shareScanParams", c.shareScanParams, [true, false]);
  posInt("mixer.dState", c.mixer.dState);
  posInt("mixer.dConv", c.mixer.dConv);
  posInt("mixer.expand", c.mixer.expand);
  oneOf("mixer.dtBias", c.mixer.dtBias, ["mambavision", "mamba"]);
  oneOf("mixer.dtInit", c.mixer.dtInit, ["inverse-softplus", "zero"]);
  if (c.mixer.dtRank !== undefined && c.mixer.dtRank !== "auto") posInt("mixer.dtRank", c.mixer.dtRank);
  const dtMin = c.mixer.dtMin ?? 1e-3;
  const dtMax = c.mixer.dtMax ?? 1e-1;
  finite("mixer.dtMin", dtMin, (x) => x > 0, "a number > 0");
  finite("mixer.dtMax", dtMax, (x) => x >= dtMin, `a number >= mixer.dtMin (${dtMin})`);
  finite("mixer.dtFloor", c.mixer.dtFloor ?? 1e-4, (x) => x > 0, "a number > 0");
  finite("mlpRatio", c.mlpRatio, (x) => x > 0, "a finite number > 0");
  finite("dropPath", c.dropPath, (x) => x >= 0 && x < 1, "a number in [0, 1)");
  finite("attnMlpRatio", c.attnMlpRatio, (x) => x >= 0, "a finite number >= 0");
  oneOf("interWindow", c.interWindow, ["windowToken", "full", "none"]);
  try {
    checkHierarchy(c.classes);
  } catch (e) {
    throw new RangeError(`config.${(e as Error).message}`);
  }
  oneOf("coarseHead", c.coarseHead, [true, false]);
  oneOf("headCoupling", c.headCoupling, ["independent", "conditioned"]);
  finite("coarseLossWeight", c.coarseLossWeight, (x) => x >= 0, "a finite number >= 0");
  if (c.coarseHead) {
    // a coarse head needs a real choice between coarse classes, and each coarse class needs a fine class
    // (masked inference picks the best fine class inside the predicted coarse class)
    if (c.classes.coarse.length < 2) {
      throw new RangeError(
        `config.classes.coarse has ${c.classes.coarse.length} class: a coarse head needs at least 2 ` +
          "(or set coarseHead: false)",
      );
    }
    c.classes.coarse.forEach((name, g) => {
      if (!c.classes.fineToCoarse.includes(g)) {
        throw new RangeError(`config.classes.coarse[${g}] ("${name}") has no fine class mapped to it`);
      }
    });
  }
  oneOf("inference", c.inference, ["argmax", "masked"]);
  oneOf("linearInit", c.linearInit, ["lecun", "truncNormal", "torch"]);
  if (!Number.isInteger(c.seed) || c.seed < 0 || c.seed >= 2 ** 32) {
    // seeds are hashed as 32-bit words: outside this range two seeds would give the same weights
    throw new RangeError(`config.seed must be an integer in [0, 2^32), got ${c.seed}`);
  }
}
