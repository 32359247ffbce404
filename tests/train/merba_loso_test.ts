/**
 * MERba through the trainer and the LOSO runner on the embedded synthetic dataset (3 subjects, a reduced
 * merba-tiny, 2 epochs): flat memory over epochs, coarse-level metrics, and 3 merged shards equal one run.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { loadSyntheticDefault, SYNTHETIC_DIR } from "../../lib/data/synthetic.ts";
import { collectVersions, runLoso } from "../../lib/train/loso.ts";
import { merbaFactory } from "../../lib/train/merba_factory.ts";
import { mergeRuns, readAllFolds } from "../../lib/train/results.ts";
import { trainModel } from "../../lib/train/trainer.ts";
import { subsetDataset } from "./_fixtures.ts";

await tf.setBackend("cpu");

// The embedded dataset ships with the repository (data/synthetic); without it these tests cannot run.
const shipped = await Deno.stat(SYNTHETIC_DIR).then(() => true, () => false);
if (!shipped) console.warn(`MERba LOSO tests skipped: ${SYNTHETIC_DIR} is missing`);
const full = shipped ? await loadSyntheticDefault({ protocol: "synthetic-5class" }) : null;
const keep = full ? [...new Set(full.subjects)].sort().slice(0, 3) : [];
// at most 10 samples per subject keeps this test to seconds on a 2-core machine
const idx: number[] = [];
for (const s of keep) {
  idx.push(
    ...full!.subjects.map((x, i) => [x, i] as const).filter(([x]) => x === s).slice(0, 10).map(([, i]) => i),
  );
}
const ds = full ? subsetDataset(full, idx, "synthetic-3subjects") : null!;
// merba-tiny's structure (stem s2, 14x14 stage with 2x2 windows of 7, 7x7 stage) at reduced width
const factory = merbaFactory("merba-tiny", {
  stem: { channels: [8] },
  stages: [{ dim: 8, depth: 1, windowSize: 7, heads: 2 }, { dim: 16, depth: 1, windowSize: 7, heads: 2 }],
  mixer: { dState: 4 },
});
const train = { epochs: 2, batchSize: 10, lr: 2e-3 };

Deno.test(
  { name: "MERba training keeps tf.memory().numTensors flat over epochs", ignore: !shipped },
  async () => {
    const model = await factory.create(ds.classes, [ds.height, ds.width], 1);
    const counts: number[] = [];
    const res = await trainModel(
      model,
      ds,
      Array.from({ length: ds.n }, (_, i) => i),
      { ...train, epochs: 3 },
      {
        onEpoch: () => void counts.push(tf.memory().numTensors),
      },
    );
    assert.ok(counts.every((c) => c === counts[0]), `numTensors per epoch: ${counts.join(", ")}`);
    assert.ok(res.history.every((h) => Number.isFinite(h.loss) && h.loss > 0));
    model.dispose();
  },
);

Deno.test(
  { name: "MERba LOSO: coarse metrics, and 3 merged shards equal one run", ignore: !shipped },
  async () => {
    const one = await Deno.makeTempDir({ prefix: "merba-merba-loso-" });
    const single = await runLoso(ds, { model: factory, train, seed: 5, outDir: one });
    assert.ok(single.complete);
    assert.equal(single.metrics.n, ds.n);
    assert.ok(single.coarseMetrics, "merba-tiny has the coarse head on");
    assert.equal(single.coarseMetrics!.confusion.length, ds.classes.coarse.length);
    const dirs: string[] = [];
    for (let i = 1; i <= 3; i++) {
      const d = await Deno.makeTempDir({ prefix: `merba-merba-shard${i}-` });
      await runLoso(ds, { model: factory, train, seed: 5, outDir: d, shard: `${i}/3` });
      dirs.push(d);
    }
    const merged = await mergeRuns(dirs, collectVersions());
    assert.ok(merged.complete);
    assert.deepEqual(merged.metrics, single.metrics);
    assert.deepEqual(merged.coarseMetrics, single.coarseMetrics);
    const a = await readAllFolds(one);
    const b = (await Promise.all(dirs.map((d) => readAllFolds(d)))).flat().sort((x, y) => x.fold - y.fold);
    assert.deepEqual(b.map((r) => r.yPred), a.map((r) => r.yPred));
    assert.deepEqual(b.map((r) => r.history.map((h) => h.loss)), a.map((r) => r.history.map((h) => h.loss)));
    for (const d of [one, ...dirs]) await Deno.remove(d, { recursive: true });
  },
);
