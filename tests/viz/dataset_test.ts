import assert from "node:assert/strict";
import type { FlowDataset } from "../../lib/data/types.ts";
import { datasetSummaryFigure, mapsFigure, metricsBarFigure } from "../../lib/viz/dataset.ts";

const ds: FlowDataset = {
  name: "toy",
  protocol: "toy-2class",
  n: 5,
  height: 1,
  width: 1,
  x: new Float32Array(15),
  fine: new Int32Array([0, 1, 1, 0, 1]),
  coarse: new Int32Array([0, 0, 0, 0, 0]),
  classes: { fine: ["a", "b"], coarse: ["ab"], fineToCoarse: [0, 0] },
  subjects: ["s2", "s1", "s2", "s2", "s1"],
  datasets: Array(5).fill("toy"),
  ids: ["1", "2", "3", "4", "5"],
};

Deno.test("datasetSummaryFigure: stacked counts per subject and class", () => {
  const fig = datasetSummaryFigure(ds);
  assert.deepEqual(fig.data.map((t) => [t.name, t.x, t.y]), [
    ["a (2)", ["s1", "s2"], [0, 2]],
    ["b (3)", ["s1", "s2"], [2, 1]],
  ]);
  const coarse = datasetSummaryFigure(ds, { level: "coarse" });
  assert.deepEqual(coarse.data[0].y, [2, 3]);
});

Deno.test("metricsBarFigure: one bar group per result; metrics checked to lie in [0, 1]", () => {
  const fig = metricsBarFigure([{ name: "raster", uf1: 0.41, uar: 0.45 }, {
    name: "bilateral3",
    uf1: 0.5,
    uar: 0.52,
  }]);
  assert.deepEqual(fig.data.map((t) => [t.name, t.x, t.y]), [
    ["raster", ["UF1", "UAR"], [0.41, 0.45]],
    ["bilateral3", ["UF1", "UAR"], [0.5, 0.52]],
  ]);
  assert.throws(() => metricsBarFigure([{ name: "x", uf1: 41, uar: 0.4 }]), {
    name: "RangeError",
    message: /x\.uf1/,
  });
});

Deno.test("mapsFigure: shared colour range, one colour bar", () => {
  const fig = mapsFigure([
    { title: "a", values: [0, 1, 2, 3], width: 2, height: 2 },
    { title: "b", values: [4, 5, 6, 7], width: 2, height: 2 },
  ]);
  assert.deepEqual(fig.data.map((t) => [t.z, t.zmin, t.zmax, t.showscale]), [
    [[[0, 1], [2, 3]], 0, 7, false],
    [[[4, 5], [6, 7]], 0, 7, true],
  ]);
  assert.throws(() => mapsFigure([{ title: "c", values: [1], width: 2, height: 2 }]), {
    name: "TypeError",
    message: /panel 0 \("c"\) has 1 values/,
  });
});
