import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { buildRunSpec, epochsForStepBudget, runLoso } from "../../lib/train/loso.ts";
import { mergeRuns, readAllFolds } from "../../lib/train/results.ts";
import { collectVersions } from "../../lib/train/loso.ts";
import { linearFactory, toyDataset } from "./_fixtures.ts";

await tf.setBackend("cpu");

const ds = toyDataset();
const train = { epochs: 3, batchSize: 8, lr: 0.05 };

Deno.test("runLoso: one fold per subject, pooled metrics, per-dataset rows, files written", async () => {
  const dir = await Deno.makeTempDir({ prefix: "merba-loso-" });
  const res = await runLoso(ds, { model: linearFactory, train, seed: 1, outDir: dir });
  assert.equal(res.foldsTotal, 6);
  assert.deepEqual(res.foldsDone, [0, 1, 2, 3, 4, 5]);
  assert.ok(res.complete);
  assert.equal(res.metrics.n, ds.n);
  assert.deepEqual(Object.keys(res.metrics.perGroup), ["dsA", "dsB"]);
  assert.ok(res.metrics.uf1 > 0.8, `toy UF1 ${res.metrics.uf1}`);
  assert.equal(res.coarseMetrics, null);
  assert.equal(res.optimisticMetrics, null);
  assert.match(res.protocol, /fixed number of epochs \(3\)/);
  // each subject's samples are tested exactly once, by the fold that holds that subject out
  const folds = await readAllFolds(dir);
  assert.equal(folds.length, 6);
  const seen = folds.flatMap((f) => f.indices).sort((a, b) => a - b);
  assert.deepEqual(seen, Array.from({ length: ds.n }, (_, i) => i));
  for (const f of folds) assert.ok(f.indices.every((i) => ds.subjects[i] === f.subject));
  // each fold names the cpu kernels it ran with, and the summary's backend list carries them
  for (const f of folds) {
    assert.match(f.cpuKernels ?? "", /^scan (simd|js), layers (simd|js), matmul (xnnpack|js)$/);
  }
  assert.match(res.timing.backends[0], /^cpu \(scan (simd|js), layers (simd|js), matmul (xnnpack|js)\)$/);
  const summary = await Deno.readTextFile(join(dir, "summary.md"));
  assert.match(summary, /\| all \| 36 \|/);
  assert.match(summary, /Folds: 6\/6 \(complete\)/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("runLoso resumes finished folds; 3 shards merged equal one run", async () => {
  const one = await Deno.makeTempDir({ prefix: "merba-loso-" });
  const full = await runLoso(ds, { model: linearFactory, train, seed: 2, outDir: one });
  // interrupted run: two folds done, then the full run picks them up
  const resumed = await Deno.makeTempDir({ prefix: "merba-loso-" });
  await runLoso(ds, { model: linearFactory, train, seed: 2, outDir: resumed, folds: [1, "dsA/s4"] });
  const flags: boolean[] = [];
  const again = await runLoso(ds, { model: linearFactory, train, seed: 2, outDir: resumed }, {
    onFoldEnd: (i) => void flags.push(i.resumed),
  });
  // fold order: dsA/s0, dsA/s2, dsA/s4, dsB/s1, dsB/s3, dsB/s5
  assert.deepEqual(flags, [false, true, true, false, false, false]);
  assert.deepEqual(again.metrics, full.metrics);
  // shards into separate directories, then merge
  const shardDirs: string[] = [];
  for (let i = 1; i <= 3; i++) {
    const d = await Deno.makeTempDir({ prefix: `merba-shard${i}-` });
    const r = await runLoso(ds, { model: linearFactory, train, seed: 2, outDir: d, shard: `${i}/3` });
    assert.equal(r.complete, false);
    shardDirs.push(d);
  }
  const out = await Deno.makeTempDir({ prefix: "merba-merged-" });
  const merged = await mergeRuns(shardDirs, collectVersions(), out);
  assert.ok(merged.complete);
  assert.deepEqual(merged.metrics, full.metrics);
  assert.deepEqual(merged.foldsDone, full.foldsDone);
  const written = JSON.parse(await Deno.readTextFile(join(out, "results.json")));
  assert.deepEqual(written.metrics.confusion, full.metrics.confusion);
  // a directory of a different run is refused, for merging and for resuming
  const other = await Deno.makeTempDir({ prefix: "merba-loso-" });
  await runLoso(ds, {
    model: linearFactory,
    train: { ...train, epochs: 2 },
    seed: 2,
    outDir: other,
    folds: [0],
  });
  await assert.rejects(() => mergeRuns([one, other], collectVersions()), /different run/);
  await assert.rejects(
    () => runLoso(ds, { model: linearFactory, train, seed: 2, outDir: other, folds: [0] }),
    /belongs to a different run/,
  );
  for (const d of [one, resumed, ...shardDirs, out, other]) await Deno.remove(d, { recursive: true });
});

Deno.test("runLoso innerVal picks the epoch on training subjects; optimistic is labelled and separate", async () => {
  const res = await runLoso(ds, {
    model: linearFactory,
    train: { ...train, epochs: 4 },
    seed: 3,
    evaluation: { mode: "innerVal", innerValSubjects: 2, optimistic: true },
    folds: [0, 1],
  });
  assert.match(res.protocol, /inner validation split of 2 training subject/);
  assert.match(res.protocol, /leaks the test subject/);
  assert.ok(res.optimisticMetrics);
  assert.equal(res.complete, false);
  await assert.rejects(
    () => runLoso(ds, { model: linearFactory, train, evaluation: { mode: "bogus" as "fixed" } }),
    /evaluation.mode = "bogus"/,
  );
  await assert.rejects(() => runLoso(ds, { model: linearFactory, train, shard: "4/3" }), /shard must be/);
});

Deno.test("runLoso fold records carry the inner-validation curve and the test subject never selects", async () => {
  const dir = await Deno.makeTempDir({ prefix: "merba-loso-" });
  await runLoso(ds, {
    model: linearFactory,
    train: { ...train, epochs: 3 },
    seed: 4,
    evaluation: { mode: "innerVal", innerValSubjects: 1 },
    folds: [2],
    outDir: dir,
  });
  const [rec] = await readAllFolds(dir);
  assert.ok(rec.innerVal);
  assert.equal(rec.innerVal.valSubjects.length, 1);
  assert.ok(!rec.innerVal.valSubjects.includes(rec.subject), "validation subject is a training subject");
  assert.equal(rec.innerVal.valUf1.length, 3);
  assert.equal(rec.epochsTrained, rec.innerVal.bestEpoch);
  assert.equal(rec.history.length, rec.innerVal.bestEpoch);
  assert.equal(rec.optimistic, undefined);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("runLoso tta hflip: part of the run key and the protocol text; tta none keeps the earlier key", async () => {
  const base = { model: linearFactory, train, seed: 1, folds: [0, 1] };
  const a = await Deno.makeTempDir({ prefix: "merba-loso-" });
  const b = await Deno.makeTempDir({ prefix: "merba-loso-" });
  const plain = await runLoso(ds, { ...base, outDir: a, evaluation: { tta: "none" } });
  const tta = await runLoso(ds, { ...base, outDir: b, evaluation: { tta: "hflip" } });
  assert.notEqual(plain.spec.key, tta.spec.key);
  assert.equal(plain.spec.evaluation.tta, undefined, "no tta field without TTA (earlier run keys unchanged)");
  assert.equal(tta.spec.evaluation.tta, "hflip");
  assert.match(tta.protocol, /average the logits of each test sample and its horizontal mirror/);
  assert.doesNotMatch(plain.protocol, /mirror/);
  await assert.rejects(
    () => runLoso(ds, { ...base, outDir: a, evaluation: { tta: "flip" as never } }),
    /evaluation.tta = "flip", expected "none" or "hflip"/,
  );
  await Deno.remove(a, { recursive: true });
  await Deno.remove(b, { recursive: true });
});

Deno.test("epochsForStepBudget: the shipped recipe's 360 steps are 60 epochs at 188 samples, 26 at MEGC2019's size", () => {
  // 14 subjects, 188 samples (the embedded synthetic set's shape): 174.57 training samples, 6 batches of 32
  const synth = Array.from({ length: 188 }, (_, i) => `s${i % 14}`);
  assert.deepEqual(epochsForStepBudget(synth, 360), {
    epochs: 60,
    stepsPerEpoch: 6,
    meanTrain: 188 - 188 / 14,
  });
  // 68 subjects, 442 samples (MEGC2019's composite): 435.5 training samples, 14 batches; 360 / 14 = 25.7
  const megc = Array.from({ length: 442 }, (_, i) => `s${i % 68}`);
  const m = epochsForStepBudget(megc, 360);
  assert.equal(m.stepsPerEpoch, 14);
  assert.equal(m.epochs, 26);
  assert.equal(m.meanTrain, 442 - 442 / 68);
  // dropLast floors the batches; the count never falls below one epoch
  assert.equal(epochsForStepBudget(megc, 360, { batchSize: 32, dropLast: true }).stepsPerEpoch, 13);
  assert.equal(epochsForStepBudget(megc, 1).epochs, 1);
  assert.throws(() => epochsForStepBudget(megc, 0), /stepBudget = 0, expected an integer >= 1/);
  assert.throws(() => epochsForStepBudget(megc, 10, { batchSize: 0 }), /batchSize = 0/);
  assert.throws(() => epochsForStepBudget(["a", "a"], 10), /at least 2 subjects, the dataset has 1/);
});

Deno.test("runLoso stepBudget: epochs fixed from the dataset's size, recorded in the spec and the protocol", async () => {
  // toy set: 6 subjects x 6 samples, 30 training samples per fold, batch 8 -> 4 steps per epoch; 12 steps = 3 epochs
  const a = await runLoso(ds, {
    model: linearFactory,
    train: { ...train, epochs: undefined },
    stepBudget: 12,
  });
  const b = await runLoso(ds, { model: linearFactory, train });
  assert.equal(a.spec.train.epochs, 3);
  assert.equal(a.spec.train.stepBudget, 12);
  assert.equal(b.spec.train.stepBudget, undefined);
  assert.notEqual(a.spec.key, b.spec.key);
  // the same training as 3 epochs given directly
  assert.deepEqual(a.metrics, b.metrics);
  assert.match(a.protocol, /fixed number of epochs \(3, from a budget of 12 optimizer steps per fold/);
  // an epoch count that agrees is accepted; one that disagrees, or neither, is an error
  assert.equal(buildRunSpec(ds, { model: linearFactory, train, stepBudget: 12 }).train.epochs, 3);
  assert.throws(
    () => buildRunSpec(ds, { model: linearFactory, train, stepBudget: 20 }),
    /train.epochs = 3 disagrees with stepBudget = 20, which gives 5 epochs here \(4 steps per epoch\)/,
  );
  assert.throws(
    () => buildRunSpec(ds, { model: linearFactory, train: { batchSize: 8 } }),
    /give train.epochs or stepBudget/,
  );
});
