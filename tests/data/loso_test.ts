import assert from "node:assert/strict";
import { losoSplits, parseShard, selectFolds } from "../../lib/data/loso.ts";

Deno.test("losoSplits: one fold per subject, natural order, disjoint and covering", () => {
  const subjects = [
    "casme2/sub10",
    "casme2/sub2",
    "samm/006",
    "casme2/sub2",
    "smic/s1",
    "casme2/sub10",
    "samm/006",
  ];
  const folds = losoSplits(subjects);
  assert.deepEqual(folds.map((f) => f.subject), ["casme2/sub2", "casme2/sub10", "samm/006", "smic/s1"]);
  assert.deepEqual(folds.map((f) => f.index), [0, 1, 2, 3]);
  assert.deepEqual(folds[1].test, [0, 5]);
  assert.deepEqual(folds[1].train, [1, 2, 3, 4, 6]);
  const allTest = folds.flatMap((f) => f.test).sort((a, b) => a - b);
  assert.deepEqual(allTest, [0, 1, 2, 3, 4, 5, 6]);
  for (const f of folds) {
    assert.equal(f.train.length + f.test.length, subjects.length);
    assert.ok(f.test.every((i) => subjects[i] === f.subject));
    assert.ok(f.train.every((i) => subjects[i] !== f.subject));
  }
  assert.throws(() => losoSplits(["a", "a"]), /at least 2 distinct subjects, got 1/);
  assert.throws(() => losoSplits(["a", ""]), /subject 1 is empty/);
});

Deno.test("selectFolds: names, indices and shards; shards partition the folds", () => {
  const folds = losoSplits(Array.from({ length: 7 }, (_, i) => `d/s${i + 1}`));
  const union = [1, 2, 3].flatMap((i) => selectFolds(folds, { shard: `${i}/3` }).map((f) => f.index));
  assert.deepEqual(union.sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6]);
  assert.deepEqual(selectFolds(folds, { shard: "1/3" }).map((f) => f.subject), ["d/s1", "d/s4", "d/s7"]);
  assert.deepEqual(selectFolds(folds, { folds: ["d/s3", 6, 0] }).map((f) => f.index), [0, 2, 6]);
  // Shards apply after the fold filter.
  assert.deepEqual(selectFolds(folds, { folds: [0, 1, 2, 3], shard: "2/2" }).map((f) => f.index), [1, 3]);
  assert.deepEqual(selectFolds(folds).length, 7);
  for (const s of ["0/3", "4/3", "1/0", "a/b", "1-3"]) {
    assert.throws(() => selectFolds(folds, { shard: s }), RangeError);
  }
  assert.throws(() => selectFolds(folds, { folds: ["d/s9"] }), /no fold for subject "d\/s9"/);
  assert.throws(() => selectFolds(folds, { folds: [7] }), /no fold with index 7/);
});

Deno.test("parseShard", () => {
  assert.deepEqual(parseShard(" 2 / 5 "), { index: 2, count: 5 });
  assert.throws(() => parseShard("6/5", "myFn"), /myFn: shard must be "i\/n" with 1 <= i <= n, got "6\/5"/);
});
