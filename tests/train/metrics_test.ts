import assert from "node:assert/strict";
import { computeMetrics, metricsTable } from "../../lib/train/metrics.ts";
import type { BasicMetrics } from "../../lib/train/metrics.ts";
import { assertClose } from "../_util.ts";

interface GoldenBasic {
  n: number;
  uf1: number;
  uar: number;
  accuracy: number;
  confusion_matrix: number[][];
  per_class: { labels: number[]; f1: number[]; recall: number[]; precision: number[]; support: number[] };
}
interface GoldenCase {
  case: string;
  labels: number[];
  y_true: number[];
  y_pred: number[];
  group: string[] | null;
  expected: GoldenBasic;
  per_group: Record<string, GoldenBasic> | null;
  per_group_union_labels: Record<string, { labels_used: number[]; uf1: number; uar: number }> | null;
}

const CASES = [
  "tiny_hand",
  "composite_3class",
  "group_missing_class",
  "casme2_5class",
  "single_class_pred",
  "label_never_seen",
];
// Tolerance from each file's provenance.tolerance: floats atol 1e-12 (summation order only), integers exact.
const TOL = { atol: 1e-12, rtol: 0 };

function check(actual: BasicMetrics, expected: GoldenBasic, what: string) {
  assert.equal(actual.n, expected.n, `${what}: n`);
  assert.deepEqual(actual.confusion, expected.confusion_matrix, `${what}: confusion`);
  assert.deepEqual(actual.perClass.labels, expected.per_class.labels, `${what}: labels`);
  assert.deepEqual(actual.perClass.support, expected.per_class.support, `${what}: support`);
  assertClose([actual.uf1, actual.uar, actual.accuracy], [expected.uf1, expected.uar, expected.accuracy], {
    ...TOL,
    what: `${what}: uf1/uar/accuracy`,
  });
  assertClose(actual.perClass.f1, expected.per_class.f1, { ...TOL, what: `${what}: f1` });
  assertClose(actual.perClass.recall, expected.per_class.recall, { ...TOL, what: `${what}: recall` });
  assertClose(actual.perClass.precision, expected.per_class.precision, {
    ...TOL,
    what: `${what}: precision`,
  });
}

for (const name of CASES) {
  Deno.test(`computeMetrics matches scikit-learn golden case ${name}`, async () => {
    const g: GoldenCase = JSON.parse(
      await Deno.readTextFile(new URL(`../fixtures/metrics/${name}.json`, import.meta.url)),
    );
    const m = computeMetrics(Int32Array.from(g.y_true), g.y_pred, { labels: g.labels, groups: g.group });
    check(m, g.expected, name);
    if (g.per_group) {
      assert.deepEqual(Object.keys(m.perGroup).sort(), Object.keys(g.per_group).sort());
      for (const [k, v] of Object.entries(g.per_group)) check(m.perGroup[k], v, `${name}/${k}`);
      for (const [k, v] of Object.entries(g.per_group_union_labels!)) {
        assert.deepEqual(m.perGroupUnion[k].labelsUsed, v.labels_used, `${name}/${k}: labels_used`);
        assertClose([m.perGroupUnion[k].uf1, m.perGroupUnion[k].uar], [v.uf1, v.uar], {
          ...TOL,
          what: `${name}/${k} union`,
        });
      }
    } else {
      assert.deepEqual(m.perGroup, {});
    }
  });
}

Deno.test("computeMetrics: hand-checked values and table", () => {
  // truth 0,0,1,1 ; pred 0,1,1,1 -> F1_0 = 2/3, F1_1 = 4/5; recall 1/2, 1.
  const m = computeMetrics([0, 0, 1, 1], [0, 1, 1, 1], { labels: [0, 1], groups: ["a", "a", "b", "b"] });
  assertClose([m.uf1, m.uar, m.accuracy], [(2 / 3 + 0.8) / 2, 0.75, 0.75], { atol: 1e-15, rtol: 0 });
  // group "b" only has class 1: full-label UF1 averages in class 0 as 0; union labels do not.
  assert.equal(m.perGroup.b.uf1, 0.5);
  assert.deepEqual(m.perGroupUnion.b, { labelsUsed: [1], uf1: 1, uar: 1 });
  const t = metricsTable(m);
  assert.match(t, /\| all \| 4 \| 0\.7333 \| 0\.7500 \| 0\.7500 \|/);
  assert.match(t, /\| b \| 2 \| 0\.5000 \|/);
});

Deno.test("computeMetrics: bad input names the argument", () => {
  assert.throws(() => computeMetrics([0, 1], [0], { labels: [0, 1] }), TypeError);
  assert.throws(() => computeMetrics([0, 1], [0, 1], { labels: [0, 1], groups: ["a"] }), /groups has 1/);
  assert.throws(() => computeMetrics([], [], { labels: [0] }), RangeError);
  assert.throws(() => computeMetrics([0, 3], [0, 1], { labels: [0, 1] }), /yTrue\[1\] = 3 is not in labels/);
  assert.throws(() => computeMetrics([0], [0], { labels: [0, 0] }), /duplicates/);
});
