/**
 * The leave-one-subject-out runner: one fold per subject (dataset-prefixed keys, `lib/data/loso.ts`), each
 * fold a fresh model trained on the other subjects, the test predictions pooled over folds and scored once
 * (UF1, UAR, accuracy, confusion; overall and per source dataset).
 *
 * Honest protocol (datasets-and-evaluation.md §8): the default trains every fold for a fixed number of epochs
 * chosen in advance. `evaluation.mode = "innerVal"` instead picks the epoch count per fold on an inner
 * validation split of the *training* subjects, then refits on all training subjects. `optimistic: true` also
 * records the best-epoch-on-test-subject predictions (HTNet's selection rule) as a separately labelled,
 * optimistic number; it never replaces the honest one.
 *
 * Storage and resumption: with `outDir`, every finished fold is written to `folds/fold-NNN.json` (predictions,
 * curve, timing; optional weights), so an interrupted run started again with the same options skips finished
 * folds and loses nothing; shards (`shard: "i/n"`) of one run write disjoint folds under the same `run.json`,
 * and `mergeRuns` pools them.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { basename, dirname, join } from "node:path";
import type { ClassHierarchy, FlowDataset } from "../data/types.ts";
import { losoSplits, selectFolds } from "../data/loso.ts";
import { deriveSeed, mulberry32, shuffleInPlace } from "./random.ts";
import {
  ensureRunSpec,
  type EvaluationSpec,
  type FoldRecord,
  type LosoResults,
  poolFolds,
  readAllFolds,
  readFold,
  type RunSpec,
  specKey,
  type Versions,
  writeFold,
  writeResults,
} from "./results.ts";
import {
  defaultTrainOptions,
  type EpochLog,
  type EvalSet,
  predictIndices,
  type PredictOptions,
  type StepLog,
  type TrainableModel,
  TrainingDivergedError,
  trainModel,
  type TrainOptions,
} from "./trainer.ts";
import { resolveAugment } from "./augment.ts";
import { cpuKernelsInUse, describeCpuKernels } from "../backend.ts";
import denoJson from "../../deno.json" with { type: "json" };

/** A model the LOSO runner can create per fold, train, and optionally save. */
export interface LosoModel extends TrainableModel {
  /** Frees the model's variables. */
  dispose(): void;
}

/** Creates a fresh model for a fold. */
export interface ModelFactory {
  /** Registry name (for results), or null for a custom configuration. */
  name: string | null;
  /** The resolved configuration (for results and the run key), given the dataset's classes and input size. */
  config(classes: ClassHierarchy, inputSize: [number, number]): Record<string, unknown>;
  /** A new model with seeded initial weights. */
  create(classes: ClassHierarchy, inputSize: [number, number], seed: number): LosoModel | Promise<LosoModel>;
  /** Saves fold weights (used when `saveWeights` is on). */
  save?(model: LosoModel, dir: string): Promise<void>;
}

/** Options of {@link runLoso}. */
export interface LosoOptions {
  /** How to build each fold's model. */
  model: ModelFactory;
  /** Training hyper-parameters; `epochs` is required unless `stepBudget` is given (then it may be left out, or
   * must equal the epoch count the budget resolves to). */
  train: Omit<TrainOptions, "epochs"> & { epochs?: number };
  /**
   * A budget of optimizer steps per fold instead of an epoch count: the run trains every fold for
   * {@link epochsForStepBudget}'s epoch count, fixed from the dataset's size before any fold runs (so every
   * fold and every shard uses the same count). Recorded as `train.stepBudget` in the run specification.
   */
  stepBudget?: number;
  /** Base seed; each fold uses deriveSeed(seed, subject), independent of sharding. @default 0 */
  seed?: number;
  /** Evaluation protocol. @default {mode: "fixed", optimistic: false} */
  evaluation?: EvaluationOptions;
  /** Run only these folds (subject keys or 0-based fold indices). */
  folds?: (string | number)[];
  /** Run only shard "i/n" (1-based) of the (selected) folds. */
  shard?: string;
  /** Run directory for run.json, fold records, results (enables resume). */
  outDir?: string;
  /** Save each fold's final weights under `folds/fold-NNN-weights/` (needs `model.save`). @default false */
  saveWeights?: boolean;
  /** Re-run folds whose records exist instead of reusing them. @default false */
  restart?: boolean;
}

/** Progress callbacks of {@link runLoso}. */
export interface LosoCallbacks {
  /** Before a fold starts training. */
  onFoldStart?: (
    info: { fold: number; subject: string; position: number; count: number; resumed: boolean },
  ) => void | Promise<void>;
  /** After each fold (also for resumed folds, with `resumed: true`). */
  onFoldEnd?: (
    info: { record: FoldRecord; position: number; count: number; resumed: boolean },
  ) => void | Promise<void>;
  /** Every optimizer step of every fold. */
  onStep?: (log: StepLog & { fold: number }) => void | Promise<void>;
  /** Every epoch of every fold. */
  onEpoch?: (log: EpochLog & { fold: number }) => void | Promise<void>;
}

function cpuKernelsField(): { cpuKernels?: string } {
  const k = cpuKernelsInUse();
  return k ? { cpuKernels: describeCpuKernels(k) } : {};
}

let commitCache: string | undefined;

/**
 * The git commit of merba's code (`<sha>+dirty` with uncommitted changes to tracked files), or `unknown` when
 * the code is not in a git checkout or git cannot be run (no `--allow-run`). Read once per process.
 */
export function codeCommit(): string {
  if (commitCache !== undefined) return commitCache;
  commitCache = "unknown";
  try {
    const dir = new URL("../..", import.meta.url);
    if (dir.protocol !== "file:") return commitCache;
    // never prompt for a permission the caller did not grant (an interactive terminal would block on it)
    if (Deno.permissions.querySync({ name: "run", command: "git" }).state !== "granted") return commitCache;
    const git = (...args: string[]) =>
      new Deno.Command("git", { args: ["-C", dir.pathname, ...args], stdout: "piped", stderr: "null" })
        .outputSync();
    const head = git("rev-parse", "HEAD");
    if (!head.success) return commitCache;
    const sha = new TextDecoder().decode(head.stdout).trim();
    const st = git("status", "--porcelain", "--untracked-files=no");
    const dirty = st.success && new TextDecoder().decode(st.stdout).trim() !== "";
    commitCache = sha + (dirty ? "+dirty" : "");
  } catch {
    // no git, or no permission to run it
  }
  return commitCache;
}

/**
 * Hash of a dataset's contents: the inputs' bits, fine and coarse labels, ids, subjects and source datasets
 * (two 32-bit multiplicative hashes, hex). A relabelled or re-preprocessed file gets another hash, and so
 * another run key, even under the same name.
 */
export function datasetContentHash(ds: FlowDataset): string {
  let h1 = 0x811c9dc5 | 0;
  let h2 = 0x9747b28c | 0;
  const mix = (w: number) => {
    h1 = Math.imul(h1 ^ w, 0x01000193);
    h2 = Math.imul(h2 ^ w, 0x5bd1e995);
    h2 ^= h2 >>> 13;
  };
  const xw = new Uint32Array(ds.x.buffer, ds.x.byteOffset, ds.x.length);
  for (let i = 0; i < xw.length; i++) mix(xw[i]);
  mix(ds.x.length);
  for (const a of [ds.fine, ds.coarse]) {
    for (let i = 0; i < a.length; i++) mix(a[i]);
    mix(-1);
  }
  for (const list of [ds.ids, ds.subjects, ds.datasets]) {
    for (const str of list) {
      for (let i = 0; i < str.length; i++) mix(str.charCodeAt(i));
      mix(-2);
    }
    mix(-3);
  }
  return (h1 >>> 0).toString(16).padStart(8, "0") + (h2 >>> 0).toString(16).padStart(8, "0");
}

/** Library and machine versions for results files. */
export function collectVersions(): Versions {
  return {
    merba: (denoJson as { version?: string }).version ?? "unknown",
    commit: codeCommit(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    tfjs: (tf.version as Record<string, string>)["tfjs-core"] ??
      (tf.version as Record<string, string>).tfjs ?? "unknown",
    backend: tf.getBackend(),
    ...cpuKernelsField(),
    platform: `${Deno.build.os} ${Deno.build.arch}`,
  };
}

/** Evaluation options of a LOSO run (resolved into {@link EvaluationSpec}; `tta` also accepts `"none"`). */
export type EvaluationOptions = Partial<Omit<EvaluationSpec, "tta">> & { tta?: "none" | "hflip" };

/** Resolved evaluation spec with defaults. */
export function resolveEvaluation(e: EvaluationOptions = {}): EvaluationSpec {
  const mode = e.mode ?? "fixed";
  if (mode !== "fixed" && mode !== "innerVal") {
    throw new RangeError(`evaluation.mode = "${mode}", expected "fixed" or "innerVal"`);
  }
  const out: EvaluationSpec = { mode, optimistic: e.optimistic ?? false };
  const tta = e.tta ?? "none";
  if (tta !== "none" && tta !== "hflip") {
    throw new RangeError(`evaluation.tta = ${JSON.stringify(tta)}, expected "none" or "hflip"`);
  }
  if (tta === "hflip") out.tta = "hflip";
  if (mode === "innerVal") {
    const k = e.innerValSubjects ?? 2;
    if (!(Number.isInteger(k) && k >= 1)) {
      throw new RangeError(`evaluation.innerValSubjects = ${k}, expected an integer >= 1`);
    }
    out.innerValSubjects = k;
  }
  return out;
}

/**
 * Builds the run specification (the identity of a run; shards and resumed runs must match it).
 *
 * @param ds the dataset.
 * @param opts LOSO options.
 */
export function buildRunSpec(ds: FlowDataset, opts: LosoOptions): RunSpec {
  let epochs = opts.train.epochs;
  let budget: { stepBudget: number } | Record<string, never> = {};
  if (opts.stepBudget !== undefined) {
    const batchSize = opts.train.batchSize ?? defaultTrainOptions().batchSize;
    const b = epochsForStepBudget(ds.subjects, opts.stepBudget, { batchSize, dropLast: opts.train.dropLast });
    if (epochs !== undefined && epochs !== b.epochs) {
      throw new RangeError(
        `train.epochs = ${epochs} disagrees with stepBudget = ${opts.stepBudget}, which gives ${b.epochs} epochs ` +
          `here (${b.stepsPerEpoch} steps per epoch): give one of them`,
      );
    }
    epochs = b.epochs;
    budget = { stepBudget: opts.stepBudget };
  }
  if (epochs === undefined) throw new RangeError("runLoso: give train.epochs or stepBudget");
  if (opts.train.seed !== undefined) {
    throw new RangeError(
      "runLoso: train.seed is not used (each fold's seed derives from the run's `seed` and its test subject); " +
        "set `seed` instead",
    );
  }
  // the fold seed replaces train.seed: keep it out of the spec (and the key)
  const { seed: _unused, ...train } = { ...defaultTrainOptions(), ...opts.train, epochs, ...budget };
  const folds = losoSplits(ds.subjects);
  const spec: Omit<RunSpec, "key"> = {
    format: 1,
    dataset: {
      name: ds.name,
      protocol: ds.protocol,
      n: ds.n,
      height: ds.height,
      width: ds.width,
      fine: [...ds.classes.fine],
      coarse: [...ds.classes.coarse],
      subjects: folds.map((f) => f.subject),
      contentHash: datasetContentHash(ds),
      ...(ds.preprocessing ? { preprocessing: ds.preprocessing } : {}),
    },
    model: { name: opts.model.name, config: opts.model.config(ds.classes, [ds.height, ds.width]) },
    train: train as unknown as Record<string, unknown>,
    evaluation: resolveEvaluation(opts.evaluation),
    seed: opts.seed ?? 0,
    saveWeights: opts.saveWeights ?? false,
  };
  return { ...spec, key: specKey(spec) };
}

/** An epoch count derived from a budget of optimizer steps per LOSO fold (see {@link epochsForStepBudget}). */
export interface StepBudgetEpochs {
  /** Epochs: `max(1, round(steps / stepsPerEpoch))`. */
  epochs: number;
  /** Steps per epoch at the mean training-set size (`ceil`, or `floor` with `dropLast`, of mean / batch). */
  stepsPerEpoch: number;
  /** Mean training-set size over all LOSO folds: `n − n / subjects`. */
  meanTrain: number;
}

/**
 * The epoch count that trains each LOSO fold for about `steps` optimizer steps. It depends only on the dataset's
 * size, its number of subjects and the batch size — never on a test subject — so it is fixed before any fold
 * runs, and the same for every fold and shard. For example the shipped recipe's 360 steps are 60 epochs on
 * the 188-sample synthetic set (174.6 training samples per fold, 6 batches of 32) and 26 epochs on a
 * MEGC2019-sized composite (435.5 training samples, 14 batches). The same number of steps does not mean the
 * same training: on a MEGC2019-shaped synthetic stand-in, 26 epochs left merba-tiny under-trained, 0.021 UF1
 * below 60 epochs on average over three seeds (BENCHMARKS.md, tenth session), so the default recipe stays a
 * fixed epoch count.
 *
 * @param subjects the dataset's per-sample subject keys (`ds.subjects`).
 * @param steps optimizer steps per fold (an integer >= 1).
 * @param opts batch size (default 32) and whether the last incomplete batch is dropped.
 * @throws {RangeError} for a bad budget or batch size, or fewer than two subjects.
 */
export function epochsForStepBudget(
  subjects: readonly string[],
  steps: number,
  { batchSize = 32, dropLast = false }: { batchSize?: number; dropLast?: boolean } = {},
): StepBudgetEpochs {
  if (!(Number.isInteger(steps) && steps >= 1)) {
    throw new RangeError(`stepBudget = ${steps}, expected an integer >= 1`);
  }
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) {
    throw new RangeError(`batchSize = ${batchSize}, expected an integer >= 1`);
  }
  const k = new Set(subjects).size;
  if (k < 2) throw new RangeError(`stepBudget: LOSO needs at least 2 subjects, the dataset has ${k}`);
  const meanTrain = subjects.length - subjects.length / k;
  const stepsPerEpoch = Math.max(
    1,
    dropLast ? Math.floor(meanTrain / batchSize) : Math.ceil(meanTrain / batchSize),
  );
  return { epochs: Math.max(1, Math.round(steps / stepsPerEpoch)), stepsPerEpoch, meanTrain };
}

/** Trains a fresh model on `trainIdx` and returns it with its history. */
async function fitOnce(
  ds: FlowDataset,
  opts: LosoOptions,
  trainIdx: number[],
  epochs: number,
  seed: number,
  evalSets: EvalSet[],
  fold: number,
  cb: LosoCallbacks,
) {
  const model = await opts.model.create(ds.classes, [ds.height, ds.width], seed);
  try {
    const res = await trainModel(model, ds, trainIdx, { ...opts.train, epochs, seed, evalSets }, {
      onStep: cb.onStep ? (l) => cb.onStep!({ ...l, fold }) : undefined,
      onEpoch: cb.onEpoch ? (l) => cb.onEpoch!({ ...l, fold }) : undefined,
    });
    return { model, history: res.history };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/**
 * Runs one LOSO fold and returns its record (does not write it).
 *
 * @param ds the dataset.
 * @param spec the run specification.
 * @param opts LOSO options.
 * @param fold fold index into `spec.dataset.subjects`.
 * @param cb callbacks.
 */
export async function runFold(
  ds: FlowDataset,
  spec: RunSpec,
  opts: LosoOptions,
  fold: number,
  cb: LosoCallbacks = {},
): Promise<FoldRecord> {
  const t0 = performance.now();
  const subject = spec.dataset.subjects[fold];
  const testIdx: number[] = [];
  const trainIdx: number[] = [];
  ds.subjects.forEach((s, i) => (s === subject ? testIdx : trainIdx).push(i));
  const seed = deriveSeed(spec.seed, subject);
  const epochs = spec.train.epochs as number;
  const ev = spec.evaluation;
  // per-epoch evaluations (inner validation, optimistic) predict as the final test predictions do
  const predict: PredictOptions = {
    tta: ev.tta ?? "none",
    uEncoding: resolveAugment(opts.train?.augment || {}).uEncoding,
  };
  let innerVal: FoldRecord["innerVal"];
  let finalEpochs = epochs;
  if (ev.mode === "innerVal") {
    // Inner validation: hold out k training subjects (seeded), pick the epoch with the best validation UF1
    // (earliest on ties), then refit on all training subjects for that many epochs.
    const others = [...new Set(trainIdx.map((i) => ds.subjects[i]))].sort();
    const k = Math.min(ev.innerValSubjects!, others.length - 1);
    if (k < 1) {
      throw new RangeError(
        `fold ${fold} (${subject}): too few training subjects for an inner validation split`,
      );
    }
    const valSubjects = shuffleInPlace([...others], mulberry32(deriveSeed(seed, "inner-val"))).slice(0, k)
      .sort();
    const inVal = new Set(valSubjects);
    const fitIdx = trainIdx.filter((i) => !inVal.has(ds.subjects[i]));
    const valIdx = trainIdx.filter((i) => inVal.has(ds.subjects[i]));
    const r = await fitOnce(
      ds,
      opts,
      fitIdx,
      epochs,
      seed,
      [{ name: "val", indices: valIdx, predict }],
      fold,
      cb,
    );
    r.model.dispose();
    const valUf1 = r.history.map((h) => h.eval.val.uf1);
    const best = valUf1.indexOf(Math.max(...valUf1)) + 1;
    innerVal = { valSubjects, valUf1, bestEpoch: best };
    finalEpochs = best;
  }
  const evalSets = ev.optimistic ? [{ name: "test", indices: testIdx, predict }] : [];
  const { model, history } = await fitOnce(ds, opts, trainIdx, finalEpochs, seed, evalSets, fold, cb);
  try {
    const pred = await predictIndices(model, ds, testIdx, 64, predict);
    let optimistic: FoldRecord["optimistic"];
    if (ev.optimistic) {
      const acc = history.map((h) => h.eval.test.accuracy);
      const bestEpoch = acc.indexOf(Math.max(...acc)) + 1;
      optimistic = { epoch: bestEpoch, yPred: history[bestEpoch - 1].eval.test.yPred, testAccuracy: acc };
    }
    if (spec.saveWeights && opts.outDir) {
      if (!opts.model.save) throw new Error("saveWeights is on but the model factory has no save()");
      await opts.model.save(
        model,
        join(opts.outDir, "folds", `fold-${String(fold).padStart(3, "0")}-weights`),
      );
    }
    return {
      key: spec.key,
      commit: codeCommit(),
      fold,
      subject,
      seed,
      trainCount: trainIdx.length,
      indices: testIdx,
      ids: testIdx.map((i) => ds.ids[i]),
      datasets: testIdx.map((i) => ds.datasets[i]),
      yTrue: testIdx.map((i) => ds.fine[i]),
      yPred: Array.from(pred.fine),
      yTrueCoarse: testIdx.map((i) => ds.coarse[i]),
      yPredCoarse: pred.coarse ? Array.from(pred.coarse) : null,
      epochsTrained: finalEpochs,
      history: history.map(({ epoch, loss, trainAccuracy, lr, seconds, samplesPerSec }) => ({
        epoch,
        loss,
        trainAccuracy,
        lr,
        seconds,
        samplesPerSec,
      })),
      ...(innerVal ? { innerVal } : {}),
      ...(optimistic ? { optimistic } : {}),
      seconds: (performance.now() - t0) / 1000,
      backend: tf.getBackend(),
      ...cpuKernelsField(),
      finishedAt: new Date().toISOString(),
    };
  } finally {
    model.dispose();
  }
}

/**
 * Runs LOSO (all folds, a selection, or one shard), saving and resuming per fold when `outDir` is set, and
 * returns the pooled results of the folds it covered.
 *
 * @param ds the dataset (`FlowDataset`).
 * @param opts model factory, training options, seed, evaluation protocol, fold selection, output.
 * @param cb progress callbacks.
 * @returns pooled results over the selected folds (`complete` tells whether that is every fold).
 * @throws {RangeError} on bad options or fold selections; {@link TrainingDivergedError} from a fold.
 *
 * @example
 * ```ts ignore
 * const res = await runLoso(await loadSyntheticDefault(), {
 *   model: merbaFactory("merba-tiny"), train: { epochs: 30 }, outDir: "out/loso-synth",
 * });
 * console.log(res.protocol, res.metrics.uf1);
 * ```
 */
export async function runLoso(
  ds: FlowDataset,
  opts: LosoOptions,
  cb: LosoCallbacks = {},
): Promise<LosoResults> {
  const spec = buildRunSpec(ds, opts);
  const all = losoSplits(ds.subjects);
  const chosen = selectFolds(all, { folds: opts.folds, shard: opts.shard });
  if (chosen.length === 0) {
    throw new RangeError(`runLoso: the selection (shard ${opts.shard}) contains no folds`);
  }
  if (opts.outDir) await ensureRunSpec(opts.outDir, spec);
  const resumeDirs = opts.outDir && !opts.restart ? await siblingRunDirs(opts.outDir, spec) : [];
  const records: FoldRecord[] = [];
  for (const [position, f] of chosen.entries()) {
    let existing: FoldRecord | null = null;
    for (const dir of resumeDirs) {
      existing = await readFold(dir, f.index, spec);
      if (existing) {
        // a fold finished by another shard layout of this run: keep a copy here, so this directory is whole
        if (dir !== opts.outDir) await writeFold(opts.outDir!, existing);
        break;
      }
    }
    if (existing) {
      records.push(existing);
      await cb.onFoldEnd?.({ record: existing, position, count: chosen.length, resumed: true });
      continue;
    }
    await cb.onFoldStart?.({
      fold: f.index,
      subject: f.subject,
      position,
      count: chosen.length,
      resumed: false,
    });
    let rec: FoldRecord;
    try {
      rec = await runFold(ds, spec, opts, f.index, cb);
    } catch (e) {
      if (e instanceof TrainingDivergedError) e.message = `fold ${f.index} (${f.subject}): ${e.message}`;
      throw e;
    }
    if (opts.outDir) await writeFold(opts.outDir, rec);
    records.push(rec);
    await cb.onFoldEnd?.({ record: rec, position, count: chosen.length, resumed: false });
  }
  const results = poolFolds(spec, records, collectVersions());
  if (opts.outDir) {
    // results.json describes the directory: every fold of this run in it, not only this call's selection
    const present = await readAllFolds(opts.outDir, spec);
    await writeResults(
      opts.outDir,
      present.length > records.length ? poolFolds(spec, present, results.versions) : results,
    );
  }
  return results;
}

/**
 * Directories where finished folds of the run in `outDir` may already be: `outDir` itself, its `shard-i`
 * subdirectories (a `--jobs` run resumed without `--jobs`), and — when `outDir` is such a shard — its parent
 * and the parent's other shards (a `--jobs` run resumed with another process count). Only directories whose
 * `run.json` has this run's key count.
 */
async function siblingRunDirs(outDir: string, spec: RunSpec): Promise<string[]> {
  const out = [outDir];
  const shardsOf = async (dir: string) => {
    const found: string[] = [];
    try {
      for await (const e of Deno.readDir(dir)) {
        if (e.isDirectory && /^shard-\d+$/.test(e.name)) found.push(join(dir, e.name));
      }
    } catch {
      // not listable: nothing to add
    }
    return found.sort();
  };
  const candidates = [...await shardsOf(outDir)];
  if (/^shard-\d+$/.test(basename(outDir))) {
    const parent = dirname(outDir);
    candidates.push(parent, ...await shardsOf(parent));
  }
  for (const dir of candidates) {
    if (dir === outDir || out.includes(dir)) continue;
    try {
      const other = JSON.parse(await Deno.readTextFile(join(dir, "run.json"))) as RunSpec;
      if (other?.key === spec.key) out.push(dir);
    } catch {
      // no run.json, or unreadable: not a directory of this run
    }
  }
  return out;
}
