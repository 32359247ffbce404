/**
 * LOSO run storage: the run specification (`run.json`), one record per finished fold (`folds/fold-NNN.json`),
 * pooled results (`results.json`) and a markdown summary (`summary.md`). Shards of one run write disjoint fold
 * files under the same specification, and {@link mergeRuns} pools them.
 *
 * Pooling rule (datasets-and-evaluation.md §8): the test predictions of all folds are concatenated and the
 * metrics computed once on the pool, over the full fine label list; per-dataset rows restrict the same pool to
 * each source dataset (full label list; the union-labels variant is stored as `perGroupUnion`).
 *
 * @module
 */
import { join } from "node:path";
import { writeTextAtomic } from "./checkpoint.ts";
import { computeMetrics, type Metrics, metricsTable } from "./metrics.ts";

/** How the number of epochs (or the model) was chosen. */
export interface EvaluationSpec {
  /** `fixed`: a fixed epoch count chosen before any test subject is seen. `innerVal`: the best epoch on an inner
   * validation split of the training subjects, then a refit on all training subjects for that many epochs. */
  mode: "fixed" | "innerVal";
  /** Number of training subjects held out for the inner validation (innerVal only). */
  innerValSubjects?: number;
  /** Also report the optimistic best-epoch-on-test-subject number (labelled as such). */
  optimistic: boolean;
  /** Test-time augmentation of the test predictions (`hflip`: logits of each sample and its mirror averaged).
   * Absent = none (so run keys of earlier runs are unchanged). */
  tta?: "hflip";
}

/** Everything that defines a run; shards of one run share it exactly (`key`). */
export interface RunSpec {
  /** Format version. */
  format: 1;
  /** Dataset identity and the fold order. */
  dataset: {
    name: string;
    protocol: string;
    n: number;
    height: number;
    width: number;
    fine: string[];
    coarse: string[];
    /** Fold k tests subject `subjects[k]` (sorted unique subject keys). */
    subjects: string[];
    /**
     * Hash of the dataset's contents (inputs, fine and coarse labels, ids, subjects, source datasets): a
     * relabelled or re-preprocessed file is another run even under the same name.
     */
    contentHash: string;
    /** How the inputs were made (`FlowDataset.preprocessing`: flow method, crop, label counts), when known;
     * recorded, not part of the key. */
    preprocessing?: Record<string, unknown>;
  };
  /** Model name (registry) and the resolved configuration. */
  model: { name: string | null; config: Record<string, unknown> };
  /** Resolved training hyper-parameters. */
  train: Record<string, unknown>;
  /** Evaluation protocol. */
  evaluation: EvaluationSpec;
  /** Base seed (fold seeds derive from it and the subject key). */
  seed: number;
  /** Whether fold weights are saved (not part of the key). */
  saveWeights: boolean;
  /** Hash of everything above except saveWeights. */
  key: string;
}

/** One finished fold. */
export interface FoldRecord {
  /** Key of the run that wrote it (`RunSpec.key`; absent in records written before this field existed). */
  key?: string;
  /** Code version that trained it ({@link Versions.commit}; absent in older records). */
  commit?: string;
  /** Fold index into `RunSpec.dataset.subjects`. */
  fold: number;
  /** Test subject key. */
  subject: string;
  /** Seed of this fold's model and training. */
  seed: number;
  /** Training samples. */
  trainCount: number;
  /** Test sample indices into the dataset. */
  indices: number[];
  /** Test sample ids. */
  ids: string[];
  /** Source dataset per test sample. */
  datasets: string[];
  /** True fine labels. */
  yTrue: number[];
  /** Predicted fine labels (final model: honest). */
  yPred: number[];
  /** True coarse labels. */
  yTrueCoarse: number[];
  /** Predicted coarse labels, or null without a coarse head. */
  yPredCoarse: number[] | null;
  /** Epochs trained for the test predictions. */
  epochsTrained: number;
  /** Per-epoch training curve (loss, accuracy, lr, seconds). */
  history: {
    epoch: number;
    loss: number;
    trainAccuracy: number;
    lr: number;
    seconds: number;
    samplesPerSec: number;
  }[];
  /** Inner validation (innerVal mode). */
  innerVal?: { valSubjects: string[]; valUf1: number[]; bestEpoch: number };
  /** Optimistic variant: the epoch with the best test accuracy and its predictions (only when asked). */
  optimistic?: { epoch: number; yPred: number[]; testAccuracy: number[] };
  /** Wall seconds of the fold (training + evaluation). */
  seconds: number;
  /** tfjs backend used. */
  backend: string;
  /** cpu/wasm kernels behind the fused layers, e.g. `scan simd, matmul xnnpack` (absent on webgpu and in
   * records written before this field existed). */
  cpuKernels?: string;
  /** ISO time the fold finished. */
  finishedAt: string;
}

/** Library and machine versions stored with results. */
export interface Versions {
  /** merba package version (deno.json). */
  merba: string;
  /** Git commit of the merba code (`+dirty` with uncommitted changes; `unknown` outside a checkout). */
  commit?: string;
  /** Deno, V8, TypeScript. */
  deno: string;
  v8: string;
  typescript: string;
  /** @tensorflow/tfjs version. */
  tfjs: string;
  /** Active backend. */
  backend: string;
  /** cpu/wasm kernels behind the fused layers, e.g. `scan simd, matmul xnnpack` (absent on webgpu). */
  cpuKernels?: string;
  /** OS / arch. */
  platform: string;
}

/** The pooled results of a (possibly partial) run. */
export interface LosoResults {
  /** One-paragraph protocol statement to quote next to every number. */
  protocol: string;
  /** The run specification. */
  spec: RunSpec;
  /** Versions at the time the results were computed. */
  versions: Versions;
  /** Folds pooled (indices), and the total. */
  foldsDone: number[];
  foldsTotal: number;
  /** True when every fold of the run is pooled. */
  complete: boolean;
  /** Pooled fine-level metrics; perGroup = per source dataset. */
  metrics: Metrics;
  /** Pooled coarse-level metrics (when the model has a coarse head). */
  coarseMetrics: Metrics | null;
  /** Optimistic (best epoch on the test subject) pooled metrics, only when asked; NOT an honest estimate. */
  optimisticMetrics: Metrics | null;
  /** Sum over folds of the fold wall time, and the mean per fold. */
  timing: { foldSecondsTotal: number; foldSecondsMean: number; backends: string[] };
  /** Code versions that trained the pooled folds (more than one: the run was resumed after a code change). */
  foldCommits: string[];
}

/**
 * Stable short hash of a JSON-serialisable value (FNV-1a 64 over the canonical JSON, sorted keys), as hex.
 *
 * @param value any JSON value.
 */
export function stableHash(value: unknown): string {
  const canon = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canon)
      : v && typeof v === "object"
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon((v as Record<string, unknown>)[k])]))
      : v;
  const text = JSON.stringify(canon(value));
  let h = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(text)) {
    h ^= BigInt(byte);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, "0");
}

/**
 * Computes `key` for a spec: a hash of everything that changes results (not the key itself, not
 * `saveWeights`, so shards may differ in whether they keep weights, and not the preprocessing description,
 * whose warnings name local paths: the dataset's contents hash stands for what it produced).
 */
export function specKey(spec: Omit<RunSpec, "key">): string {
  const { key: _drop, saveWeights: _w, ...rest } = spec as RunSpec;
  const { preprocessing: _p, ...dataset } = rest.dataset;
  return stableHash({ ...rest, dataset });
}

/**
 * A run directory that cannot be used as asked: a missing or unreadable `run.json` / fold record, a
 * directory holding a different run, or shards that disagree. The message names the path and what to do.
 */
export class RunDirError extends Error {
  override name = "RunDirError";
}

/** Path of fold k's record inside a run directory. */
export function foldPath(dir: string, fold: number): string {
  return join(dir, "folds", `fold-${String(fold).padStart(3, "0")}.json`);
}

/**
 * Reads and parses a JSON file of a run directory: null when it does not exist; a {@link RunDirError} naming
 * the file when it cannot be read or parsed (`what` names the file's role, `remedy` says what to do).
 */
async function readRunFile<T>(path: string, what: string, remedy: string): Promise<T | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new RunDirError(`${path}: cannot read (${(e as Error).message})`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new RunDirError(`${path}: unreadable ${what} (${(e as Error).message}); ${remedy}`);
  }
}

async function readJson<T>(path: string): Promise<T> {
  const v = await readRunFile<T>(path, "file", "delete it or use another directory");
  if (v === null) {
    throw new RunDirError(
      `${path}: not found (is this a merba run directory, made by \`deno task train --out\`?)`,
    );
  }
  return v;
}

/**
 * Writes `run.json` into `dir`, or checks that the one already there has the same key (resuming, or another
 * shard of the same run).
 *
 * @throws {RunDirError} when `dir` holds a different run, or its `run.json` is unreadable (names the path and
 * what to do).
 */
export async function ensureRunSpec(dir: string, spec: RunSpec): Promise<void> {
  await Deno.mkdir(join(dir, "folds"), { recursive: true });
  const p = join(dir, "run.json");
  const old = await readRunFile<RunSpec>(
    p,
    "run specification",
    "use another --out directory, or delete this one to start over",
  );
  if (old === null) {
    await writeTextAtomic(p, JSON.stringify(spec, null, 1));
    return;
  }
  if (old?.key !== spec.key) {
    throw new RunDirError(
      `${p} belongs to a different run (key ${old?.key}, this run ${spec.key}): the dataset (its contents ` +
        `included), model, training options, evaluation or seed differ. Use another --out directory, or delete ` +
        `the whole directory (its fold records belong to that run) to start over.`,
    );
  }
}

/** Saves one fold record atomically. */
export async function writeFold(dir: string, rec: FoldRecord): Promise<void> {
  await writeTextAtomic(foldPath(dir, rec.fold), JSON.stringify(rec));
}

/**
 * Checks a fold record read from `path` against the fold index it was read for and, when given, the run: its
 * key, test subject, labels and array lengths.
 * @throws {RunDirError} naming the file and what is wrong.
 */
export function checkFoldRecord(rec: FoldRecord, path: string, fold: number, spec?: RunSpec): void {
  const bad = (what: string) =>
    new RunDirError(`${path}: ${what}; delete it to run that fold again (or use --restart)`);
  if (!rec || typeof rec !== "object") throw bad("not a fold record");
  if (rec.fold !== fold) throw bad(`holds fold ${rec.fold}, not fold ${fold}`);
  const arrays = ["indices", "ids", "datasets", "yTrue", "yPred", "yTrueCoarse"] as const;
  for (const k of arrays) if (!Array.isArray(rec[k])) throw bad(`field "${k}" is missing`);
  const n = rec.yTrue.length;
  for (const k of arrays) {
    if (rec[k].length !== n) throw bad(`field "${k}" has ${rec[k].length} entries, yTrue has ${n}`);
  }
  if (rec.yPredCoarse != null && rec.yPredCoarse.length !== n) {
    throw bad(`field "yPredCoarse" has ${rec.yPredCoarse.length} entries, yTrue has ${n}`);
  }
  if (!spec) return;
  if (rec.key !== undefined && rec.key !== spec.key) {
    throw new RunDirError(
      `${path}: written by another run (key ${rec.key}, this run ${spec.key}); its predictions do not belong ` +
        "to this run. Use another --out directory, or delete the record to run that fold again.",
    );
  }
  if (rec.subject !== spec.dataset.subjects[fold]) {
    throw bad(
      `tests subject ${rec.subject}, but fold ${fold} of this run tests ${spec.dataset.subjects[fold]}`,
    );
  }
  if (rec.key === undefined && spec.evaluation.mode === "fixed" && rec.epochsTrained !== spec.train.epochs) {
    throw bad(`was trained for ${rec.epochsTrained} epochs, this run trains ${spec.train.epochs}`);
  }
  const k = spec.dataset.fine.length;
  for (const k2 of ["yTrue", "yPred"] as const) {
    if (rec[k2].some((v) => !(Number.isInteger(v) && v >= 0 && v < k))) {
      throw bad(`field "${k2}" holds a label outside 0..${k - 1}`);
    }
  }
}

/**
 * Reads fold k's record, or null when that fold has not finished; checked with {@link checkFoldRecord}.
 * @throws {RunDirError} for an unreadable or inconsistent record (names the file).
 */
export async function readFold(dir: string, fold: number, spec?: RunSpec): Promise<FoldRecord | null> {
  const p = foldPath(dir, fold);
  const rec = await readRunFile<FoldRecord>(
    p,
    "fold record",
    "delete it to run that fold again (or use --restart)",
  );
  if (rec === null) return null;
  checkFoldRecord(rec, p, fold, spec);
  return rec;
}

/** All fold records present in a run directory, by fold index (each checked as by {@link readFold}). */
export async function readAllFolds(dir: string, spec?: RunSpec): Promise<FoldRecord[]> {
  const out: FoldRecord[] = [];
  try {
    for await (const e of Deno.readDir(join(dir, "folds"))) {
      const m = /^fold-(\d+)\.json$/.exec(e.name);
      if (e.isFile && m) out.push((await readFold(dir, Number(m[1]), spec))!);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort((a, b) => a.fold - b.fold);
}

/** The protocol statement for a run (quoted in results.json, summary.md and reports). */
export function protocolStatement(spec: RunSpec, foldsDone: number, epochsNote = ""): string {
  const ev = spec.evaluation;
  const budget = spec.train.stepBudget === undefined
    ? ""
    : `, from a budget of ${spec.train.stepBudget} optimizer steps per fold at the mean training-set size`;
  const sel = ev.mode === "fixed"
    ? `a fixed number of epochs (${spec.train.epochs}${budget}) chosen before any test subject was seen; no model or epoch selection on the test subject`
    : `the epoch count chosen per fold on an inner validation split of ${ev.innerValSubjects} training subject(s) ` +
      `(at most ${spec.train.epochs} epochs${budget}), then a refit on all training subjects for that many epochs; the test subject is never used for selection`;
  return `Leave-one-subject-out over ${spec.dataset.subjects.length} subjects of "${spec.dataset.name}" ` +
    `(protocol ${spec.dataset.protocol}, ${spec.dataset.n} samples, ${spec.dataset.fine.length} classes: ` +
    `${spec.dataset.fine.join(", ")}); ${foldsDone} of ${spec.dataset.subjects.length} folds pooled. ` +
    `UF1/UAR/accuracy computed once on the test predictions pooled over folds, macro over the full label list ` +
    `(per-dataset rows: the same pool restricted to each dataset, full label list). Model selection: ${sel}.` +
    (ev.optimistic
      ? " The 'optimistic' row picks, per fold, the epoch with the best TEST accuracy; it leaks the test subject and is not an estimate of generalisation."
      : "") +
    (ev.tta === "hflip"
      ? " Test predictions average the logits of each test sample and its horizontal mirror (test-time augmentation, fixed in advance)."
      : "") +
    (epochsNote ? ` ${epochsNote}` : "");
}

/**
 * Pools fold records into results.
 *
 * @param spec the run specification.
 * @param folds fold records (any subset; sorted by fold).
 * @param versions versions to store.
 * @throws {RangeError} when there are no folds.
 */
export function poolFolds(spec: RunSpec, folds: FoldRecord[], versions: Versions): LosoResults {
  if (folds.length === 0) throw new RangeError("poolFolds: no finished folds to pool");
  const sorted = [...folds].sort((a, b) => a.fold - b.fold);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].fold === sorted[i - 1].fold) {
      throw new RangeError(`poolFolds: fold ${sorted[i].fold} (${sorted[i].subject}) is given twice`);
    }
  }
  const cat = <T>(f: (r: FoldRecord) => T[]) => sorted.flatMap(f);
  const labels = spec.dataset.fine.map((_, i) => i);
  const groups = cat((r) => r.datasets);
  const metrics = computeMetrics(cat((r) => r.yTrue), cat((r) => r.yPred), { labels, groups });
  const hasCoarse = sorted.every((r) => r.yPredCoarse != null);
  const coarseMetrics = hasCoarse
    ? computeMetrics(cat((r) => r.yTrueCoarse), cat((r) => r.yPredCoarse!), {
      labels: spec.dataset.coarse.map((_, i) => i),
      groups,
    })
    : null;
  const hasOpt = spec.evaluation.optimistic && sorted.every((r) => r.optimistic != null);
  const optimisticMetrics = hasOpt
    ? computeMetrics(cat((r) => r.yTrue), cat((r) => r.optimistic!.yPred), { labels, groups })
    : null;
  const total = sorted.reduce((s, r) => s + r.seconds, 0);
  return {
    protocol: protocolStatement(spec, sorted.length),
    spec,
    versions,
    foldsDone: sorted.map((r) => r.fold),
    foldsTotal: spec.dataset.subjects.length,
    complete: sorted.length === spec.dataset.subjects.length &&
      sorted.every((r, i) => r.fold === i && r.subject === spec.dataset.subjects[i]),
    metrics,
    coarseMetrics,
    optimisticMetrics,
    timing: {
      foldSecondsTotal: total,
      foldSecondsMean: total / sorted.length,
      backends: [...new Set(sorted.map((r) => r.cpuKernels ? `${r.backend} (${r.cpuKernels})` : r.backend))],
    },
    foldCommits: [...new Set(sorted.map((r) => r.commit ?? "unknown"))],
  };
}

/** The preprocessing description in one line (its warnings counted, not listed). */
function preprocessingLine(p: Record<string, unknown>): string {
  const { warnings, ...rest } = p;
  const w = Array.isArray(warnings) ? `; ${warnings.length} preprocessing warning(s) (see run.json)` : "";
  return JSON.stringify(rest) + w;
}

/** Markdown summary of pooled results. */
export function summaryMarkdown(r: LosoResults): string {
  const f = (x: number) => x.toFixed(4);
  const lines = [
    `# LOSO results: ${r.spec.dataset.name} / ${r.spec.model.name ?? "custom model"}`,
    "",
    `**Protocol.** ${r.protocol}`,
    "",
    `Folds: ${r.foldsDone.length}/${r.foldsTotal}${
      r.complete
        ? " (complete)"
        : " (PARTIAL: the metrics pool these folds only; a --folds selection, or merge the other shards)"
    }. ` +
    `Seed ${r.spec.seed}. Run key \`${r.spec.key}\`.`,
    "",
    "## Fine level (honest)",
    "",
    metricsTable(r.metrics, "set"),
  ];
  lines.push(
    "Confusion (rows = true, columns = predicted; " + r.spec.dataset.fine.join(", ") + "):",
    "",
    "```",
    ...r.metrics.confusion.map((row) => row.map((v) => String(v).padStart(5)).join("")),
    "```",
    "",
  );
  const unions = Object.entries(r.metrics.perGroupUnion);
  if (unions.length > 0) {
    lines.push(
      "Per dataset with only the labels present in that dataset (union-labels convention, for comparison):",
      "",
      "| dataset | labels used | UF1 | UAR |",
      "| --- | --- | ---: | ---: |",
      ...unions.map(([g, u]) => `| ${g} | ${u.labelsUsed.join(",")} | ${f(u.uf1)} | ${f(u.uar)} |`),
      "",
    );
  }
  if (r.coarseMetrics) lines.push("## Coarse level (valence head)", "", metricsTable(r.coarseMetrics, "set"));
  if (r.optimisticMetrics) {
    lines.push(
      "## OPTIMISTIC: best epoch on the test subject (leaks the test subject; not an estimate)",
      "",
      metricsTable(r.optimisticMetrics, "set"),
    );
  }
  lines.push(
    "## Run",
    "",
    `- model: ${r.spec.model.name ?? "custom"}; training: ${JSON.stringify(r.spec.train)}`,
    `- fold wall time: total ${r.timing.foldSecondsTotal.toFixed(1)} s, mean ${
      r.timing.foldSecondsMean.toFixed(1)
    } s; backend(s) ${r.timing.backends.join(", ")}`,
    `- versions: merba ${r.versions.merba} (commit ${
      r.versions.commit ?? "unknown"
    }), deno ${r.versions.deno}, ` +
      `tfjs ${r.versions.tfjs}, ${r.versions.platform}`,
    (r.foldCommits ?? []).length > 1
      ? `- **the folds were trained by different code versions** (the run was resumed after a code change): ${
        r.foldCommits.join(", ")
      }`
      : `- folds trained by commit ${(r.foldCommits ?? ["unknown"])[0]}`,
    `- dataset: contents hash \`${r.spec.dataset.contentHash ?? "not recorded"}\`` +
      (r.spec.dataset.preprocessing
        ? `; preprocessing ${preprocessingLine(r.spec.dataset.preprocessing)}`
        : ""),
    "",
  );
  return lines.join("\n");
}

/** Writes results.json and summary.md into `dir`. */
export async function writeResults(dir: string, r: LosoResults): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await writeTextAtomic(join(dir, "results.json"), JSON.stringify(r, null, 1));
  await writeTextAtomic(join(dir, "summary.md"), summaryMarkdown(r));
}

/**
 * Pools the folds of several run directories (shards of one run) into one result.
 *
 * @param dirs run directories (each with run.json and folds/).
 * @param versions versions to store.
 * @param outDir where to write run.json, results.json and summary.md (omit to not write); fold records of the
 *   same run already there are pooled too.
 * @returns the pooled results.
 * @throws {RunDirError} when a directory is not a run, the directories (or `outDir`) hold different runs, a fold
 *   record is unreadable or belongs to another run, or two shards disagree on a fold.
 */
export async function mergeRuns(dirs: string[], versions: Versions, outDir?: string): Promise<LosoResults> {
  if (dirs.length === 0) throw new RangeError("mergeRuns: no directories given");
  let spec: RunSpec | null = null;
  const byFold = new Map<number, { rec: FoldRecord; dir: string }>();
  const add = async (dir: string, s: RunSpec) => {
    for (const rec of await readAllFolds(dir, s)) {
      const prev = byFold.get(rec.fold);
      if (prev && JSON.stringify(prev.rec.yPred) !== JSON.stringify(rec.yPred)) {
        throw new RunDirError(
          `mergeRuns: fold ${rec.fold} (${rec.subject}) differs between ${prev.dir} and ${dir}`,
        );
      }
      if (!prev) byFold.set(rec.fold, { rec, dir });
    }
  };
  for (const dir of dirs) {
    const s = await readJson<RunSpec>(join(dir, "run.json"));
    if (spec && s.key !== spec.key) {
      throw new RunDirError(
        `mergeRuns: ${dir}/run.json is a different run (key ${s.key}) from ${dirs[0]} (key ${spec.key})`,
      );
    }
    spec ??= s;
    await add(dir, s);
  }
  if (outDir && !dirs.includes(outDir)) {
    // refuses a directory of another run; folds already there (same run) are pooled too
    await ensureRunSpec(outDir, spec!);
    await add(outDir, spec!);
  }
  const folds = [...byFold.values()].map((v) => v.rec);
  const r = poolFolds(spec!, folds, versions);
  if (!r.versions.backend) {
    // a merging process never started a backend: say which the folds used
    r.versions = { ...r.versions, backend: [...new Set(folds.map((f) => f.backend))].join(", ") };
  }
  if (outDir) await writeResults(outDir, r);
  return r;
}
