/**
 * Command line for training and LOSO evaluation (`deno task train ...`, `deno task merge ...`).
 *
 * ```
 * deno task train --dataset synthetic --protocol synthetic-5class --config merba-tiny --out out/loso        # recipe: 60 epochs, batch 32, lr 1e-2
 * deno task train --dataset synthetic --config merba-tiny --shard 2/4 --out out/loso    # one shard
 * deno task train ... --folds 3,7,12           # fold indices (0-based, sorted subjects) or subject keys
 * deno task merge out/shard1 out/shard2 --out out/merged                                           # pool shards
 * ```
 *
 * Exit codes: 0 ok, 2 bad arguments, 3 training diverged (NaN/Inf; the message names the fold and epoch),
 * 4 `merge` pooled an incomplete run (without `--partial`), 1 anything else.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type BackendName, initBackend } from "../backend.ts";
import { DatasetError, type FlowDataset } from "../data/types.ts";
import { loadSyntheticDefault } from "../data/synthetic.ts";
import { loadFlowDataset } from "../data/cache.ts";
import type { MerbaOverrides } from "../models/config.ts";
import { collectVersions, epochsForStepBudget, runLoso } from "./loso.ts";
import { merbaFactory } from "./merba_factory.ts";
import { defaultAugment } from "./augment.ts";
import { saveMerba } from "../models/io.ts";
import type { MerbaModel } from "../models/merba.ts";
import { ProgressBar } from "../progress.ts";
import { mergeRuns, RunDirError, summaryMarkdown } from "./results.ts";
import { WebGPUValidationError } from "../ops/webgpu_errors.ts";
import { TrainingDivergedError } from "./trainer.ts";
import { losoSplits, selectFolds } from "../data/loso.ts";

/** Bad command-line arguments (exit code 2). */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Usage text. */
export const USAGE = `Usage:
  deno task train --dataset <synthetic|path.mflow> --out <dir> [options]
  deno task merge <dir>... --out <dir> [--partial]

train options:
  --dataset NAME|PATH     "synthetic" (embedded) or a FlowDataset file (.mflow) from preprocessDataset
  --protocol NAME         synthetic: synthetic-5class (default) | synthetic-3class; files: must match the file
  --config NAME           model variant (default merba-tiny)
  --set KEY=JSON          config override, repeatable: --set scanSet='"raster"' --set coarseHead=false
  --epochs N              fixed epoch count (default 60, the small sets' recipe; 30 for the MEGC2019
                          composite's 442 samples: README, Known limits)
  --steps N               a budget of N optimizer steps per fold instead: epochs = round(N / batches per
                          epoch at the mean training-set size), fixed before any fold runs (360 = 60 epochs on
                          the synthetic set, 26 on a MEGC2019-sized composite — too few there, see
                          BENCHMARKS.md); excludes --epochs
  --batch-size N          (default 32)      --lr X (default 1e-2)     --weight-decay X (default 0.05)
  --warmup-epochs X       (default 1)       --grad-clip X (default 5; 0 = off)
  --class-balanced        weight the loss by n/(K n_c) (K = classes present in the fold's training set)
  --label-smoothing E     smooth both cross-entropy targets: (1-E) onehot + E/K (default 0)
  --ema D                 evaluate and keep an exponential moving average of the weights, decay D in (0, 1)
                          (e.g. 0.998; default off)
  --no-augment            no augmentation        --translate N   random shift up to N px (default 2; 0 = off)
  --eval fixed|innerVal   epoch choice: fixed (default) or inner validation on training subjects
  --inner-val-subjects K  training subjects held out for innerVal (default 2)
  --optimistic            also report best-epoch-on-test-subject (labelled optimistic; leaks)
  --tta none|hflip        test-time augmentation: average the logits of each test sample and its mirror
                          (default none)
  --seed N                base seed (default 0)
  --folds LIST            comma list of fold indices (0-based, subjects sorted) or subject keys
  --shard I/N             run shard I of N (1-based; round-robin over folds; a shard with no folds, when N
                          exceeds the folds, exits 0 doing nothing)
  --out DIR               run directory (run.json, folds/, results.json, summary.md); resumes if present
  --restart               re-run folds already in --out
  --save-weights          keep each fold's final weights (folds/fold-NNN-weights/, read with loadMerba)
  --backend NAME          cpu | webgpu | wasm | auto (default: MERBA_BACKEND or auto = webgpu on a
                          hardware GPU, else cpu; a software WebGPU adapter is skipped)
  --quiet                 no progress bar
  --jobs N|auto           run N shards as parallel processes (one core each) into DIR/shard-i, then merge;
                          their fold lines come through prefixed [shard i/N], under one bar over all folds;
                          auto = one per CPU core; never more than the folds selected

merge options:
  --out DIR               where run.json, results.json and summary.md of the pooled run go (required)
  --partial               accept an incomplete merge (exit 0); without it a missing fold exits 4
`;

function emaDecay(v: string): number {
  const d = Number(v);
  if (!(d > 0 && d < 1)) throw new UsageError(`--ema ${v}: expected a decay in (0, 1), e.g. 0.998`);
  return d;
}

function num(
  name: string,
  v: string | undefined,
  def: number,
  { int = false, min = -Infinity } = {},
): number {
  if (v === undefined) return def;
  const x = Number(v);
  if (!Number.isFinite(x) || (int && !Number.isInteger(x)) || x < min) {
    throw new UsageError(`--${name} ${v}: expected ${int ? "an integer" : "a number"} >= ${min}`);
  }
  return x;
}

function labelSmoothing(v: string | undefined): number {
  if (v === undefined) return 0;
  const e = Number(v);
  if (!(e >= 0 && e < 1)) {
    throw new UsageError(`--label-smoothing ${v}: expected a value in [0, 1), e.g. 0.1`);
  }
  return e;
}

/** Parses `--set key=json` pairs into config overrides. */
export function parseOverrides(sets: string[]): MerbaOverrides {
  const out: Record<string, unknown> = {};
  for (const s of sets) {
    const eq = s.indexOf("=");
    if (eq < 1) throw new UsageError(`--set ${s}: expected KEY=JSON, e.g. --set coarseHead=false`);
    const key = s.slice(0, eq);
    const raw = s.slice(eq + 1);
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw; // a bare word is a string: --set scanSet=raster
    }
    out[key] = value;
  }
  return out as MerbaOverrides;
}

/** Loads the dataset named on the command line. */
export async function loadDatasetArg(dataset: string, protocol?: string): Promise<FlowDataset> {
  if (dataset === "synthetic") {
    const p = protocol ?? "synthetic-5class";
    if (p !== "synthetic-5class" && p !== "synthetic-3class") {
      throw new UsageError(
        `--protocol ${p}: the synthetic dataset has synthetic-5class and synthetic-3class`,
      );
    }
    return await loadSyntheticDefault({ protocol: p });
  }
  const ds = await loadFlowDataset(dataset);
  if (protocol && ds.protocol !== protocol) {
    throw new UsageError(`--protocol ${protocol}: ${dataset} was preprocessed for protocol "${ds.protocol}"`);
  }
  return ds;
}

/** Runs `train` with parsed arguments; returns the exit code. */
export async function trainCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      dataset: { type: "string" },
      protocol: { type: "string" },
      config: { type: "string", default: "merba-tiny" },
      set: { type: "string", multiple: true, default: [] },
      epochs: { type: "string" },
      steps: { type: "string" },
      "batch-size": { type: "string" },
      lr: { type: "string" },
      "weight-decay": { type: "string" },
      "warmup-epochs": { type: "string" },
      "grad-clip": { type: "string" },
      "class-balanced": { type: "boolean", default: false },
      "label-smoothing": { type: "string" },
      ema: { type: "string" },
      "no-augment": { type: "boolean", default: false },
      translate: { type: "string" },
      eval: { type: "string", default: "fixed" },
      "inner-val-subjects": { type: "string" },
      optimistic: { type: "boolean", default: false },
      tta: { type: "string", default: "none" },
      seed: { type: "string" },
      folds: { type: "string" },
      shard: { type: "string" },
      out: { type: "string" },
      restart: { type: "boolean", default: false },
      "save-weights": { type: "boolean", default: false },
      backend: { type: "string" },
      quiet: { type: "boolean", default: false },
      jobs: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!values.dataset) throw new UsageError("--dataset is required");
  if (!values.out) throw new UsageError("--out is required (the run directory)");
  if (values.eval !== "fixed" && values.eval !== "innerVal") {
    throw new UsageError(`--eval ${values.eval}: expected fixed or innerVal`);
  }
  if (values.tta !== "none" && values.tta !== "hflip") {
    throw new UsageError(`--tta ${values.tta}: expected none or hflip`);
  }
  if (values.steps !== undefined && values.epochs !== undefined) {
    throw new UsageError("--steps and --epochs exclude each other (--steps sets the epoch count)");
  }
  let jobs = values.jobs === "auto"
    ? navigator.hardwareConcurrency
    : num("jobs", values.jobs, 1, { int: true, min: 1 });
  if (jobs > 1) {
    if (values.shard) {
      throw new UsageError("--jobs and --shard exclude each other (--jobs makes the shards itself)");
    }
    const ds = await loadDatasetArg(values.dataset, values.protocol);
    const count = selectFolds(losoSplits(ds.subjects), { folds: parseFolds(values.folds) }).length;
    // a shard without folds would fail, and with it the merge: never more processes than folds
    if (jobs > count) {
      console.error(`merba train: --jobs ${values.jobs}: ${count} fold(s) selected, so ${count} process(es)`);
      jobs = count;
    }
    if (jobs > 1) {
      return await parallelJobs(args, jobs, values.out, { folds: count, quiet: values.quiet });
    }
  }
  const info = await initBackend({ backend: values.backend as BackendName | undefined, quiet: values.quiet });
  const ds = await loadDatasetArg(values.dataset, values.protocol);
  const gradClip = num("grad-clip", values["grad-clip"], 5, { min: 0 });
  const batchSize = num("batch-size", values["batch-size"], 32, { int: true, min: 1 });
  const stepBudget = values.steps === undefined
    ? undefined
    : num("steps", values.steps, 0, { int: true, min: 1 });
  const budget = stepBudget === undefined
    ? null
    : epochsForStepBudget(ds.subjects, stepBudget, { batchSize });
  const train = {
    epochs: budget ? budget.epochs : num("epochs", values.epochs, 60, { int: true, min: 1 }),
    batchSize,
    lr: num("lr", values.lr, 1e-2, { min: 0 }),
    weightDecay: num("weight-decay", values["weight-decay"], 0.05, { min: 0 }),
    warmupEpochs: num("warmup-epochs", values["warmup-epochs"], 1, { min: 0 }),
    gradClip: gradClip === 0 ? null : gradClip,
    classBalanced: values["class-balanced"],
    labelSmoothing: labelSmoothing(values["label-smoothing"]),
    ...(values.ema !== undefined ? { ema: emaDecay(values.ema) } : {}),
    augment: values["no-augment"] ? false as const : {
      hflip: defaultAugment().hflip,
      translate: num("translate", values.translate, defaultAugment().translate, { int: true, min: 0 }),
    },
  };
  const folds = parseFolds(values.folds);
  const model = merbaFactory(
    values.config,
    parseOverrides(values.set),
    (m, dir) => saveMerba(m as MerbaModel, dir),
  );
  const opts = {
    model,
    train,
    seed: num("seed", values.seed, 0, { int: true, min: 0 }),
    evaluation: {
      mode: values.eval as "fixed" | "innerVal",
      innerValSubjects: num("inner-val-subjects", values["inner-val-subjects"], 2, { int: true, min: 1 }),
      optimistic: values.optimistic,
      tta: values.tta as "none" | "hflip",
    },
    ...(stepBudget !== undefined ? { stepBudget } : {}),
    folds,
    shard: values.shard,
    outDir: values.out,
    restart: values.restart,
    saveWeights: values["save-weights"],
  };
  const chosen = selectFolds(losoSplits(ds.subjects), { folds, shard: values.shard });
  if (chosen.length === 0 && values.shard) {
    // more shards than folds (a job array larger than the subject count): nothing to do, and not an error, so a
    // scheduler's "every task succeeded" still holds; no directory is made, so merge's shard-* skips it
    console.error(
      `merba train: shard ${values.shard} has no folds (${
        losoSplits(ds.subjects).length
      } folds): nothing to do`,
    );
    return 0;
  }
  const stepsPerFold = (f: { train: number[] }) => Math.ceil(f.train.length / train.batchSize) * train.epochs;
  const total = chosen.reduce((s, f) => s + stepsPerFold(f), 0) * (values.eval === "innerVal" ? 2 : 1);
  console.error(
    `merba train: ${ds.name} (${ds.protocol}, n=${ds.n}, ${ds.height}x${ds.width}) | ${values.config} | ` +
      `${chosen.length} fold(s) of ${
        losoSplits(ds.subjects).length
      } | backend ${info.name} | out ${values.out}`,
  );
  if (budget) {
    const epochs = budget.epochs === 1 ? "1 epoch" : `${budget.epochs} epochs`;
    console.error(
      `merba train: --steps ${stepBudget}: ${epochs} (${budget.stepsPerEpoch} batches ` +
        `of ${batchSize} per epoch at the mean training-set size ${budget.meanTrain.toFixed(1)})`,
    );
  }
  const bar = values.quiet ? null : new ProgressBar(Math.max(1, total), { label: "LOSO" });
  let done = 0;
  let current = "";
  const res = await runLoso(ds, opts, {
    onFoldStart: (f) => void (current = `fold ${f.fold} ${f.subject}`),
    onStep: (s) => {
      done++;
      bar?.update(Math.min(done, total), `${current} ep ${s.epoch} loss ${s.loss.toFixed(3)}`);
    },
    onFoldEnd: ({ record: r, resumed, position, count }) => {
      if (resumed) {
        const n = stepsPerFold(chosen[position]) * (values.eval === "innerVal" ? 2 : 1);
        done += n;
        bar?.skip(n);
      }
      const acc = r.yTrue.filter((y, i) => y === r.yPred[i]).length / r.yTrue.length;
      const msg = `fold ${r.fold} (${r.subject}) ${position + 1}/${count}${resumed ? " [resumed]" : ""}: ` +
        `${r.yTrue.length} test samples, accuracy ${acc.toFixed(3)}, ${r.seconds.toFixed(1)} s`;
      if (bar?.terminal) bar.log(msg);
      else console.error(msg);
    },
  });
  bar?.finish();
  console.log(summaryMarkdown(res));
  return 0;
}

/** `--folds 3,7,sub12`: fold indices as numbers, subject keys as strings; undefined without the option. */
function parseFolds(arg: string | undefined): (number | string)[] | undefined {
  return arg?.split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) =>
    /^\d+$/.test(s) ? Number(s) : s
  );
}

/** Removes `--jobs N` / `--jobs=N` and `--out X` / `--out=X` from an argument list. */
function withoutArgs(args: string[], names: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (names.some((n) => a === `--${n}`)) {
      i++;
      continue;
    }
    if (names.some((n) => a.startsWith(`--${n}=`))) continue;
    out.push(a);
  }
  return out;
}

/** A child's per-fold line (`fold 3 (sub04) 2/7: …`, `… [resumed]: …`), as `trainCommand` prints it. */
const FOLD_LINE = /^fold \d+ \(.*\) \d+\/\d+( \[resumed\])?: /;

/** Calls `onLine` for every line of a byte stream (the last one too if it lacks a newline). */
async function forEachLine(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop()!;
    for (const p of parts) onLine(p);
  }
  if (rest !== "") onLine(rest);
}

/**
 * `--jobs N`: runs shards 1/N .. N/N as N child processes of this CLI at once (tfjs's cpu backend uses one
 * core per process), each into `<out>/shard-i`, then merges them into `<out>`. Fold records are the same as
 * in a single-process run (fold seeds do not depend on the shard), so the merged result is too.
 *
 * Progress: the children's lines come through prefixed `[shard i/N]`; unless `quiet`, one bar over all
 * `folds` shows the folds finished and the ETA (resumed folds fill the bar without counting towards the rate).
 */
async function parallelJobs(
  args: string[],
  jobs: number,
  out: string,
  { folds, quiet }: { folds: number; quiet: boolean },
): Promise<number> {
  const base = withoutArgs(args, ["jobs", "out"]);
  const script = new URL(import.meta.url).pathname;
  const dirs = Array.from({ length: jobs }, (_, i) => `${out}/shard-${i + 1}`);
  console.error(`merba train: ${jobs} parallel shard processes into ${dirs.join(", ")}`);
  const t0 = performance.now();
  const bar = quiet ? null : new ProgressBar(Math.max(1, folds), { label: "LOSO folds" });
  const children = dirs.map((dir, i) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script, "train", ...base, "--shard", `${i + 1}/${jobs}`, "--out", dir, "--quiet"],
      stdout: "null",
      stderr: "piped",
    }).spawn()
  );
  const relayed = children.map((c, i) =>
    forEachLine(c.stderr, (line) => {
      if (line.trim() === "") return;
      const fold = FOLD_LINE.exec(line);
      // count first: the bar that log() draws again below the line then shows the new count
      if (bar && fold) {
        const what = line.slice(0, line.indexOf(":"));
        if (fold[1]) bar.skip(1, what);
        else bar.tick(1, what);
      }
      const text = `[shard ${i + 1}/${jobs}] ${line}`;
      if (bar?.terminal) bar.log(text);
      else console.error(text);
    })
  );
  const codes = (await Promise.all(children.map((c) => c.status))).map((s) => s.code);
  await Promise.all(relayed);
  bar?.finish();
  const bad = codes.findIndex((c) => c !== 0);
  if (bad >= 0) {
    console.error(
      `error: shard ${bad + 1}/${jobs} exited with code ${
        codes[bad]
      }; finished folds are kept, rerun to resume`,
    );
    return codes[bad];
  }
  const res = await mergeRuns(dirs, collectVersions(), out);
  console.error(
    `merged ${res.foldsDone.length}/${res.foldsTotal} folds; wall time ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s`,
  );
  console.log(summaryMarkdown(res));
  return 0;
}

/** Runs `merge` with parsed arguments; returns the exit code. */
export async function mergeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      out: { type: "string" },
      partial: { type: "boolean", default: false },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError("merge: give one or more run directories");
  // never default to a shard's own directory: its results would be replaced by the pooled ones
  if (!values.out) throw new UsageError("merge: give --out <dir> (where the pooled results go)");
  const out = values.out;
  const res = await mergeRuns(positionals, collectVersions(), out);
  console.error(
    `merged ${res.foldsDone.length}/${res.foldsTotal} folds from ${positionals.length} dir(s) into ${out}`,
  );
  if (!res.complete) {
    const missing = res.spec.dataset.subjects.map((_, i) => i).filter((i) => !res.foldsDone.includes(i));
    console.error(
      `${values.partial ? "WARNING" : "error"}: incomplete: folds ${missing.join(",")} are missing` +
        (values.partial
          ? " (--partial: results written for the folds present)"
          : " (results written for the " +
            "folds present; exit 4 so a pipeline does not take them for the full run: --partial accepts them)"),
    );
  }
  console.log(summaryMarkdown(res));
  return res.complete || values.partial ? 0 : 4;
}

/**
 * Entry point: `cli.ts train ...` or `cli.ts merge ...`.
 *
 * @param argv arguments after the script name.
 * @returns the process exit code.
 */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd === "train") return await trainCommand(rest);
    if (cmd === "merge") return await mergeCommand(rest);
    if (cmd === "--help" || cmd === "-h" || cmd === "help") {
      console.log(USAGE);
      return 0;
    }
    throw new UsageError(`unknown command "${cmd ?? ""}": expected train or merge`);
  } catch (e) {
    if (e instanceof TrainingDivergedError) {
      console.error(`\nerror: ${e.message}`);
      return 3;
    }
    // bad input files, unusable run directories, a failed GPU kernel: the message says what and where; no stack
    if (e instanceof DatasetError || e instanceof RunDirError || e instanceof WebGPUValidationError) {
      console.error(`error: ${e.message}`);
      return 1;
    }
    if (
      e instanceof UsageError || (e instanceof TypeError && /parseArgs|option/i.test(e.message)) ||
      e instanceof RangeError
    ) {
      console.error(`error: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
