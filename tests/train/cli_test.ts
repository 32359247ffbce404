import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { main, parseOverrides } from "../../lib/train/cli.ts";
import { saveFlowDataset } from "../../lib/data/cache.ts";
import { loadMerba } from "../../lib/models/io.ts";
import { runLoso } from "../../lib/train/loso.ts";
import { linearFactory, toyDataset } from "./_fixtures.ts";

await tf.setBackend("cpu");

/** Captures console.log / console.error while `f` runs. */
async function capture(f: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  const [log, error] = [console.log, console.error];
  let out = "", err = "";
  console.log = (...a: unknown[]) => void (out += a.join(" ") + "\n");
  console.error = (...a: unknown[]) => void (err += a.join(" ") + "\n");
  try {
    return { code: await f(), out, err };
  } finally {
    [console.log, console.error] = [log, error];
  }
}

Deno.test("parseOverrides: JSON values, bare words as strings, bad pairs rejected", () => {
  assert.deepEqual(parseOverrides(["coarseHead=false", "scanSet=raster", "stages=[1,2]", 'x="a=b"']), {
    coarseHead: false,
    scanSet: "raster",
    stages: [1, 2],
    x: "a=b",
  });
  assert.throws(() => parseOverrides(["=1"]), /KEY=JSON/);
});

Deno.test("cli: usage errors exit 2 with a message naming the argument", async () => {
  let r = await capture(() => main(["train", "--out", "x"]));
  assert.equal(r.code, 2);
  assert.match(r.err, /--dataset is required/);
  r = await capture(() => main(["train", "--dataset", "synthetic", "--out", "x", "--eval", "best"]));
  assert.equal(r.code, 2);
  assert.match(r.err, /--eval best/);
  r = await capture(() => main(["train", "--dataset", "synthetic", "--out", "x", "--tta", "rot90"]));
  assert.equal(r.code, 2);
  assert.match(r.err, /--tta rot90: expected none or hflip/);
  r = await capture(() => main(["train", "--dataset", "synthetic", "--out", "x", "--ema", "1.5", "--quiet"]));
  assert.equal(r.code, 2);
  assert.match(r.err, /--ema 1.5: expected a decay in \(0, 1\)/);
  r = await capture(() =>
    main(["train", "--dataset", "synthetic", "--out", "x", "--label-smoothing", "1", "--quiet"])
  );
  assert.equal(r.code, 2);
  assert.match(r.err, /--label-smoothing 1: expected a value in \[0, 1\)/);
  r = await capture(() =>
    main(["train", "--dataset", "synthetic", "--out", "x", "--steps", "360", "--epochs", "60", "--quiet"])
  );
  assert.equal(r.code, 2);
  assert.match(r.err, /--steps and --epochs exclude each other/);
  // also before --jobs starts any process
  r = await capture(() =>
    main(["train", "--dataset", "synthetic", "--out", "x", "--steps", "9", "--epochs", "3", "--jobs", "2"])
  );
  assert.equal(r.code, 2);
  assert.match(r.err, /--steps and --epochs exclude each other/);
  r = await capture(() => main(["train", "--dataset", "synthetic", "--out", "x", "--steps", "0", "--quiet"]));
  assert.equal(r.code, 2);
  assert.match(r.err, /--steps 0: expected an integer >= 1/);
  r = await capture(() => main(["train", "--bogus"]));
  assert.equal(r.code, 2);
  r = await capture(() => main(["frobnicate"]));
  assert.equal(r.code, 2);
  assert.match(r.err, /unknown command "frobnicate"/);
  r = await capture(() => main(["merge"]));
  assert.equal(r.code, 2);
  // merge never defaults to a shard's own directory
  r = await capture(() => main(["merge", "a", "b"]));
  assert.equal(r.code, 2);
  assert.match(r.err, /merge: give --out <dir>/);
  for (const cmd of ["train", "merge"]) {
    r = await capture(() => main([cmd, "--help"]));
    assert.equal(r.code, 0, cmd);
    assert.match(r.out, /^Usage:\n {2}deno task train/, cmd);
  }
});

Deno.test("cli: a missing dataset file or a directory that is not a run exits 1 with the path, no stack", async () => {
  const dir = await Deno.makeTempDir({ prefix: "merba-cli-err-" });
  let r = await capture(() => main(["train", "--dataset", join(dir, "nope.mflow"), "--out", dir, "--quiet"]));
  assert.equal(r.code, 1);
  assert.match(r.err, /^error: .*nope\.mflow: flow dataset file not found\n$/);
  r = await capture(() => main(["merge", join(dir, "nothing"), "--out", join(dir, "m")]));
  assert.equal(r.code, 1);
  assert.match(r.err, /^error: .*nothing\/run\.json: not found \(is this a merba run directory/);
  assert.doesNotMatch(r.err, /\n\s+at /, "no stack trace");
  // --out holding another run: refused, naming both keys
  const ds = toyDataset();
  await runLoso(ds, {
    model: linearFactory,
    train: { epochs: 1, batchSize: 12, lr: 0.05 },
    seed: 1,
    outDir: dir,
    folds: [0],
  });
  const file = join(dir, "toy.mflow");
  await saveFlowDataset(toyDataset({ subjects: 2, perSubject: 2, size: 28 }), file);
  r = await capture(() =>
    main(["train", "--dataset", file, "--config", "merba-test", "--epochs", "1", "--out", dir, "--quiet"])
  );
  assert.equal(r.code, 1);
  assert.match(r.err, /run\.json belongs to a different run \(key .*\): .*Use another --out directory/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cli merge pools shard directories and flags missing folds", async () => {
  const ds = toyDataset();
  const train = { epochs: 2, batchSize: 12, lr: 0.05 };
  const dirs: string[] = [];
  for (const shard of ["1/3", "2/3"]) {
    const d = await Deno.makeTempDir({ prefix: "merba-cli-" });
    await runLoso(ds, { model: linearFactory, train, seed: 9, outDir: d, shard });
    dirs.push(d);
  }
  const out = await Deno.makeTempDir({ prefix: "merba-cli-out-" });
  // an incomplete merge writes the partial results but exits 4, so a pipeline does not take it for the run
  let r = await capture(() => main(["merge", ...dirs, "--out", out]));
  assert.equal(r.code, 4);
  assert.match(r.err, /merged 4\/6 folds from 2 dir/);
  assert.match(r.err, /error: incomplete: folds 2,5 are missing/);
  assert.match(r.out, /PARTIAL/);
  r = await capture(() => main(["merge", ...dirs, "--out", out, "--partial"]));
  assert.equal(r.code, 0);
  assert.match(r.err, /WARNING: incomplete: folds 2,5 are missing \(--partial/);
  const res = JSON.parse(await Deno.readTextFile(join(out, "results.json")));
  assert.deepEqual(res.foldsDone, [0, 1, 3, 4]);
  assert.equal(res.complete, false);
  for (const d of [...dirs, out]) await Deno.remove(d, { recursive: true });
});

Deno.test("cli train on a dataset file: one process and --jobs 2 give the same pooled results", async () => {
  const dir = await Deno.makeTempDir({ prefix: "merba-cli-train-" });
  const file = join(dir, "toy.mflow");
  // 4 subjects x 3 samples of 28x28 (merba-tiny's input size), a reduced-width merba-tiny, 1 epoch
  await saveFlowDataset(toyDataset({ subjects: 4, perSubject: 3, size: 28 }), file);
  const args = [
    "--dataset",
    file,
    "--epochs",
    "1",
    "--batch-size",
    "8",
    "--set",
    'stem={"channels":[4]}',
    "--set",
    'stages=[{"dim":4,"depth":1,"windowSize":7,"heads":1},{"dim":8,"depth":1,"windowSize":7,"heads":1}]',
    "--set",
    'mixer={"dState":2}',
    "--backend",
    "cpu",
    "--quiet",
  ];
  const one = await capture(() => main(["train", ...args, "--save-weights", "--out", join(dir, "one")]));
  assert.equal(one.code, 0, one.err);
  const back = await loadMerba(join(dir, "one", "folds", "fold-003-weights"));
  assert.equal(back.config.inputSize[0], 28);
  back.dispose();
  assert.match(one.out, /Folds: 4\/4 \(complete\)/);
  // --steps: 9 training samples per fold, 2 batches of 8, so 2 steps are the 1 epoch above (same predictions)
  const noEpochs = [...args];
  noEpochs.splice(noEpochs.indexOf("--epochs"), 2);
  const steps = await capture(() =>
    main(["train", ...noEpochs, "--steps", "2", "--folds", "0", "--out", join(dir, "steps")])
  );
  assert.equal(steps.code, 0, steps.err);
  assert.match(
    steps.err,
    /--steps 2: 1 epoch \(2 batches of 8 per epoch at the mean training-set size 9\.0\)/,
  );
  const fold0 = async (run: string) =>
    JSON.parse(await Deno.readTextFile(join(dir, run, "folds", "fold-000.json"))) as { yPred: number[] };
  assert.deepEqual((await fold0("steps")).yPred, (await fold0("one")).yPred);
  assert.match(steps.out, /fixed number of epochs \(1, from a budget of 2 optimizer steps per fold/);
  const par = await capture(() => main(["train", ...args, "--jobs", "2", "--out", join(dir, "par")]));
  assert.equal(par.code, 0, par.err);
  const a = JSON.parse(await Deno.readTextFile(join(dir, "one", "results.json")));
  const b = JSON.parse(await Deno.readTextFile(join(dir, "par", "results.json")));
  assert.deepEqual(b.metrics, a.metrics);
  assert.deepEqual(b.coarseMetrics, a.coarseMetrics);
  assert.equal(b.spec.key, a.spec.key);
  // each shard's fold lines come through the parent, prefixed with the shard
  assert.equal((par.err.match(/^\[shard [12]\/2\] fold \d \(/gm) ?? []).length, 4, par.err);
  // a second call resumes every fold instead of training again, in one process or with --jobs (with its bar)
  const again = await capture(() => main(["train", ...args, "--save-weights", "--out", join(dir, "one")]));
  assert.equal((again.err.match(/\[resumed\]/g) ?? []).length, 4);
  const loud = args.filter((a) => a !== "--quiet");
  const parAgain = await capture(() => main(["train", ...loud, "--jobs", "2", "--out", join(dir, "par")]));
  assert.equal(parAgain.code, 0, parAgain.err);
  assert.equal(
    (parAgain.err.match(/^\[shard [12]\/2\] fold \d .*\[resumed\]/gm) ?? []).length,
    4,
    parAgain.err,
  );
  // more processes than folds: one per fold (an empty shard used to fail the run and its merge)
  const two = ["--folds", "0,2"];
  const capped = await capture(() =>
    main(["train", ...args, ...two, "--jobs", "5", "--out", join(dir, "capped")])
  );
  assert.equal(capped.code, 0, capped.err);
  assert.match(capped.err, /--jobs 5: 2 fold\(s\) selected, so 2 process\(es\)/);
  assert.match(capped.err, /merged 2\/4 folds/);
  assert.equal((capped.err.match(/^\[shard [12]\/2\] fold [02] \(/gm) ?? []).length, 2, capped.err);
  const c = JSON.parse(await Deno.readTextFile(join(dir, "capped", "results.json")));
  assert.deepEqual(c.foldsDone, [0, 2]);
  // a job array larger than the subject count: the empty shard succeeds doing nothing, and makes no directory
  const empty = await capture(() => main(["train", ...args, "--shard", "6/6", "--out", join(dir, "empty")]));
  assert.equal(empty.code, 0, empty.err);
  assert.match(empty.err, /shard 6\/6 has no folds \(4 folds\): nothing to do/);
  assert.equal(await Deno.stat(join(dir, "empty")).then(() => true, () => false), false);
  // --jobs auto: one process per core, capped the same way (one fold selected: no shards at all)
  const auto = await capture(() =>
    main(["train", ...args, "--folds", "1", "--jobs", "auto", "--out", join(dir, "auto")])
  );
  assert.equal(auto.code, 0, auto.err);
  if (navigator.hardwareConcurrency > 1) {
    assert.match(auto.err, /--jobs auto: 1 fold\(s\) selected, so 1 process/);
  }
  assert.deepEqual(JSON.parse(await Deno.readTextFile(join(dir, "auto", "results.json"))).foldsDone, [1]);
  const bad = await capture(() => main(["train", ...args, "--jobs", "many", "--out", join(dir, "bad")]));
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--jobs many: expected an integer >= 1/);
  await Deno.remove(dir, { recursive: true });
});
