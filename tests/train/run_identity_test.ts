// Run identity: fold records are bound to their run (key, fold, subject), the key covers the dataset's
// contents, unreadable records are named, and a --jobs layout is found again when resuming.
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import {
  buildRunSpec,
  codeCommit,
  collectVersions,
  datasetContentHash,
  runLoso,
} from "../../lib/train/loso.ts";
import {
  foldPath,
  mergeRuns,
  poolFolds,
  readAllFolds,
  readFold,
  RunDirError,
} from "../../lib/train/results.ts";
import { loadLatestCheckpoint } from "../../lib/train/checkpoint.ts";
import { linearFactory, toyDataset } from "./_fixtures.ts";

await tf.setBackend("cpu");

const ds = toyDataset();
const train = { epochs: 2, batchSize: 8, lr: 0.05 };
const opts = { model: linearFactory, train, seed: 3 };

async function tmp(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "merba-ident-" });
}

Deno.test("fold records carry the run key and commit; a record of another run is refused, not reused", async () => {
  const dir = await tmp();
  try {
    await runLoso(ds, { ...opts, outDir: dir, folds: [0, 1] });
    const rec = (await readFold(dir, 0))!;
    const spec = buildRunSpec(ds, opts);
    assert.equal(rec.key, spec.key);
    assert.equal(rec.commit, codeCommit());
    // the user deletes run.json (as if following the "different run" message) and changes the lr
    await Deno.remove(join(dir, "run.json"));
    await assert.rejects(
      () => runLoso(ds, { ...opts, train: { ...train, lr: 0.01 }, outDir: dir, folds: [0, 1] }),
      (e: unknown) =>
        e instanceof RunDirError && e.message.includes(foldPath(dir, 0)) &&
        /written by another run \(key [0-9a-f]{16}, this run [0-9a-f]{16}\)/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the run key covers the dataset's contents: relabelled or changed inputs are another run", () => {
  const base = buildRunSpec(ds, opts);
  const relabelled = { ...ds, fine: Int32Array.from(ds.fine, (f) => (f + 1) % 3) };
  const halved = { ...ds, x: ds.x.map((v) => v / 2) };
  const renamed = { ...ds, ids: ds.ids.map((id, i) => (i === 0 ? `${id}x` : id)) };
  const keys = [base, ...[relabelled, halved, renamed].map((d) => buildRunSpec(d, opts))].map((s) => s.key);
  assert.equal(new Set(keys).size, 4);
  assert.equal(datasetContentHash(ds), datasetContentHash({ ...ds, x: ds.x.slice() }));
  assert.match(base.dataset.contentHash, /^[0-9a-f]{16}$/);
  // the preprocessing description is recorded but not hashed (its warnings name local paths)
  const described = buildRunSpec({ ...ds, preprocessing: { method: "tvl1", warnings: ["/a/b"] } }, opts);
  assert.equal(described.key, base.key);
  assert.deepEqual(described.dataset.preprocessing, { method: "tvl1", warnings: ["/a/b"] });
  // train.seed is not used by LOSO (fold seeds derive from `seed`): refused, and not in the spec
  assert.equal("seed" in base.train, false);
  assert.throws(() => buildRunSpec(ds, { ...opts, train: { ...train, seed: 4 } }), /train\.seed is not used/);
});

Deno.test("unreadable, misplaced or duplicated fold records are named, never pooled", async () => {
  const dir = await tmp();
  try {
    await runLoso(ds, { ...opts, outDir: dir, folds: [0, 1, 2] });
    const spec = buildRunSpec(ds, opts);
    const p1 = foldPath(dir, 1);
    const text = await Deno.readTextFile(p1);
    await Deno.writeTextFile(p1, text.slice(0, text.length >> 1));
    await assert.rejects(
      () => runLoso(ds, { ...opts, outDir: dir, folds: [0, 1, 2] }),
      (e: unknown) => e instanceof RunDirError && e.message.startsWith(`${p1}: unreadable fold record`),
    );
    // fold 0's record copied over fold 1's: it tests another subject
    await Deno.copyFile(foldPath(dir, 0), p1);
    await assert.rejects(() => readAllFolds(dir, spec), /holds fold 0, not fold 1/);
    const r0 = (await readFold(dir, 0))!;
    await Deno.writeTextFile(p1, JSON.stringify({ ...r0, fold: 1 }));
    await assert.rejects(() => readFold(dir, 1, spec), /tests subject dsA\/s0, but fold 1 of this run tests/);
    await Deno.writeTextFile(p1, JSON.stringify({ ...r0, fold: 1, yPred: r0.yPred.slice(1) }));
    await assert.rejects(() => readFold(dir, 1), /field "yPred" has 5 entries, yTrue has 6/);
    // pooling the same fold twice is refused; completeness counts distinct folds
    assert.throws(() => poolFolds(spec, [r0, r0], collectVersions()), /fold 0 \(dsA\/s0\) is given twice/);
    // an unreadable run.json is named
    await Deno.writeTextFile(join(dir, "run.json"), "{");
    await assert.rejects(
      () => runLoso(ds, { ...opts, outDir: dir, folds: [0] }),
      (e: unknown) =>
        e instanceof RunDirError && e.message.startsWith(`${join(dir, "run.json")}: unreadable`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("merging into another run's directory is refused; folds already in --out are pooled", async () => {
  const a = await tmp();
  const b = await tmp();
  const out = await tmp();
  try {
    await runLoso(ds, { ...opts, outDir: a, shard: "1/2" });
    await runLoso(ds, { ...opts, outDir: b, shard: "2/2" });
    await runLoso(ds, { ...opts, train: { ...train, epochs: 3 }, outDir: out, folds: [0] });
    await assert.rejects(() => mergeRuns([a, b], collectVersions(), out), /belongs to a different run/);
    await Deno.remove(out, { recursive: true });
    // --out holding folds of the same run (an earlier single-process attempt): pooled with the shards
    await runLoso(ds, { ...opts, outDir: out, folds: [0] });
    await Deno.remove(foldPath(a, 0));
    const merged = await mergeRuns([a, b], collectVersions(), out);
    assert.ok(merged.complete);
    assert.ok(merged.versions.backend);
  } finally {
    for (const d of [a, b, out]) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
});

Deno.test("resuming a --jobs directory (with or without --jobs, any process count) reuses the shards' folds", async () => {
  const out = await tmp();
  try {
    // what `--jobs 2` leaves: <out>/shard-1, <out>/shard-2, merged into <out>
    const shards = [join(out, "shard-1"), join(out, "shard-2")];
    await runLoso(ds, { ...opts, outDir: shards[0], shard: "1/2" });
    await runLoso(ds, { ...opts, outDir: shards[1], shard: "2/2" });
    const merged = await mergeRuns(shards, collectVersions(), out);
    // single process in <out>: every fold is found in the shards, nothing retrained, results stay whole
    const resumed: boolean[] = [];
    const r = await runLoso(ds, { ...opts, outDir: out }, { onFoldEnd: (i) => void resumed.push(i.resumed) });
    assert.deepEqual(resumed, [true, true, true, true, true, true]);
    assert.deepEqual(r.metrics, merged.metrics);
    // a one-fold selection does not shrink the directory's results.json
    await runLoso(ds, { ...opts, outDir: out, folds: [0] });
    const written = JSON.parse(await Deno.readTextFile(join(out, "results.json")));
    assert.deepEqual(written.foldsDone, [0, 1, 2, 3, 4, 5]);
    // another process count (--jobs 3): shard-3 finds its folds among the siblings
    const flags: boolean[] = [];
    await runLoso(ds, { ...opts, outDir: join(out, "shard-3"), shard: "3/3" }, {
      onFoldEnd: (i) => void flags.push(i.resumed),
    });
    assert.deepEqual(flags, [true, true]);
    assert.equal((await readAllFolds(join(out, "shard-3"))).length, 2);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("with test-time flips, the optimistic curve predicts as the honest predictions do", async () => {
  const dir = await tmp();
  try {
    // one epoch: the optimistic pick is that epoch's model, which is also the honest (final) model
    const ev = { optimistic: true, tta: "hflip" as const };
    const one = { ...opts, train: { ...train, epochs: 1 }, evaluation: ev, outDir: dir };
    const r = await runLoso(ds, one);
    let checked = 0;
    for (const rec of await readAllFolds(dir)) {
      assert.deepEqual(rec.optimistic!.yPred, rec.yPred, `fold ${rec.fold}`);
      checked += rec.yPred.length;
    }
    assert.equal(checked, ds.n);
    assert.ok(r.optimisticMetrics);
    assert.deepEqual(r.optimisticMetrics!.confusion, r.metrics.confusion);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadLatestCheckpoint names a corrupt pointer file", async () => {
  const dir = await tmp();
  try {
    await Deno.writeTextFile(join(dir, "latest.json"), '{"path":');
    await assert.rejects(
      () => loadLatestCheckpoint(dir, () => Promise.resolve(null)),
      (e: unknown) =>
        e instanceof Error && e.message.includes(join(dir, "latest.json")) &&
        /not valid JSON/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
