import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { createMerba } from "../../lib/models/merba.ts";
import {
  type ScanAttention,
  scanAttentionFigure,
  scanAttentionFromExplain,
  type WindowAttention,
  windowAttentionFigure,
  windowAttentionFromExplain,
  windowAttentionMatrixFigure,
} from "../../lib/viz/attention.ts";
import { labelWindows, REGION_NAMES } from "../../lib/data/regions.ts";

await tf.setBackend("cpu");

// 2x2 windows, two heads; head 0: every window attends to window 3, head 1: uniform
const att: WindowAttention = {
  stage: 0,
  mode: "windowToken",
  windowGrid: [2, 2],
  heads: [
    new Float32Array([0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]),
    new Float32Array(16).fill(0.25),
  ],
};

Deno.test("windowAttentionFigure: received attention per head + mean, over the background", () => {
  const bg = { width: 8, height: 8, data: new Uint8Array(64).fill(128) };
  const labels = ["left brow", "right brow", "left mouth", "right mouth"];
  const fig = windowAttentionFigure(att, { background: bg, regionLabels: labels });
  const heats = fig.data.filter((t) => t.type === "heatmap");
  assert.equal(heats.length, 3);
  assert.deepEqual(heats[0].z, [[0, 0], [0, 1]]);
  assert.deepEqual(heats[1].z, [[0.25, 0.25], [0.25, 0.25]]);
  assert.deepEqual(heats[2].z, [[0.125, 0.125], [0.125, 0.625]]);
  // windows of 4x4 px: cell edges at pixel boundaries -0.5, 3.5, 7.5 (centres 1.5 and 5.5)
  assert.deepEqual([heats[0].x, heats[0].y], [[-0.5, 3.5, 7.5], [-0.5, 3.5, 7.5]]);
  const text = fig.data.find((t) => t.mode === "text")!;
  assert.deepEqual(text.text, labels);
  assert.equal(fig.data.filter((t) => t.type === "image").length, 3);
});

Deno.test("windowAttentionFigure: the query row, outlined; errors name the problem", () => {
  const fig = windowAttentionFigure(att, { query: [1, 0] });
  assert.deepEqual(fig.data.filter((t) => t.type === "heatmap")[0].z, [[0, 0], [0, 1]]);
  assert.equal(fig.data.filter((t) => t.name === "query").length, 3);
  assert.throws(() => windowAttentionFigure(att, { query: 4 }), { name: "RangeError", message: /2x2 grid/ });
  assert.throws(() => windowAttentionFigure(att, { regionLabels: ["a"] }), {
    name: "TypeError",
    message: /expected 4/,
  });
  assert.throws(
    () => windowAttentionFigure({ ...att, heads: [new Float32Array(3)] }),
    { name: "TypeError", message: /head 0 has 3 values, expected 4x4/ },
  );
  const m = windowAttentionMatrixFigure(att, { head: 0 });
  assert.deepEqual((m.data[0].z as number[][])[2], [0, 0, 0, 1]);
});

Deno.test("scanAttentionFigure: α reordered into each direction's scan order is lower-triangular", () => {
  const ws = 2;
  // raster-coordinate α of a causal col+- scan on 2x2: order π = [2, 0, 3, 1]; α_scan[t][s] = 1 for s <= t
  const perm = [2, 0, 3, 1];
  const alpha = new Float32Array(16);
  for (let t = 0; t < 4; t++) for (let s = 0; s <= t; s++) alpha[perm[t] * 4 + perm[s]] = 1;
  const sa: ScanAttention = {
    stage: 0,
    block: 0,
    windowSize: ws,
    orders: ["col+-"],
    perOrder: [alpha],
    mean: alpha,
  };
  const fig = scanAttentionFigure(sa, { query: [0, 0] });
  const heats = fig.data.filter((t) => t.type === "heatmap");
  assert.deepEqual(heats[0].z, [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]);
  // query (0,0) is step 1 of col+-: it sees (1,0) and itself
  assert.deepEqual(heats[2].z, [[1, 0], [1, 0]]);
  assert.match(JSON.stringify(fig.layout!.title), /step 1/);
});

Deno.test("…FromExplain read a real model's explain() output", async () => {
  const model = createMerba("merba-test", { seed: 3 });
  const x = tf.randomUniform([2, 16, 16, 3], 0, 1, "float32", 7);
  const res = model.explain(x);
  try {
    const w = await windowAttentionFromExplain(res, 1);
    assert.equal(w.length, res.attention.length);
    const [rows, cols] = w[0].windowGrid;
    const n = rows * cols;
    assert.equal(w[0].heads.length, res.attention[0].heads.shape[1]);
    // softmax rows sum to 1
    for (let q = 0; q < n; q++) {
      const s = w[0].heads[0].subarray(q * n, (q + 1) * n).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(s - 1) < 1e-5, `row ${q} sums to ${s}`);
    }
    const mean = await windowAttentionFromExplain(res, "mean");
    const all = await res.attention[0].heads.data();
    assert.ok(Math.abs(mean[0].heads[0][0] - (all[0] + all[all.length / 2]) / 2) < 1e-6);
    const s = await scanAttentionFromExplain(res, { sample: 1, window: 0 });
    assert.ok(s.length >= 1);
    assert.equal(s[0].perOrder.length, s[0].orders.length);
    assert.equal(s[0].mean.length, s[0].windowSize ** 4);
    assert.ok(windowAttentionFigure(w[0]).data.length > 0);
    assert.ok(scanAttentionFigure(s[0]).data.length > 0);
    await assert.rejects(() => scanAttentionFromExplain(res, { window: 99 }), RangeError);
  } finally {
    tf.dispose([x, res.fine, res.coarse ?? [], ...res.attention.map((a) => a.heads)]);
    tf.dispose(res.scan.flatMap((s) => [s.maps, s.perOrder]));
    model.dispose();
  }
});

Deno.test("regionMapFigure: discrete region colours, no-region pixels blank, window labels", async () => {
  const { regionMapFigure } = await import("../../lib/viz/attention.ts");
  const fig = regionMapFigure(
    { width: 2, height: 2, names: ["eyes", "mouth"], labels: [0, -1, 1, 1] },
    { windowGrid: [1, 2], windowLabels: ["eyes", "mouth"] },
  );
  const heat = fig.data.find((t) => t.type === "heatmap")!;
  assert.deepEqual(heat.z, [[0.5, null], [1.5, 1.5]]);
  assert.deepEqual((heat.colorbar as { ticktext: string[] }).ticktext, ["eyes", "mouth"]);
  assert.deepEqual(fig.data.find((t) => t.mode === "text")!.x, [0, 1]);
  assert.throws(
    () => regionMapFigure({ width: 2, height: 2, names: ["a"], labels: [0] }),
    { name: "TypeError", message: /expected 2x2/ },
  );
});

Deno.test("padded windows: explain's cell edges place the short last window where the model has it", async () => {
  await tf.setBackend("cpu");
  // merba-test at 20×20: stage 0 maps 10×10 with 4-px windows → 3×3 windows, the last ones 2 px (+2 padding)
  const m = createMerba("merba-test", { inputSize: [20, 20], seed: 1 });
  const x = tf.randomNormal([1, 20, 20, 3], 0, 1, "float32", 3) as tf.Tensor4D;
  const e = m.explain(x, { scanBlocks: "none" });
  assert.deepEqual(e.attention[0].windowGrid, [3, 3]);
  assert.deepEqual(e.attention[0].cellEdges, { y: [0, 0.4, 0.8, 1], x: [0, 0.4, 0.8, 1] });
  const [a0] = await windowAttentionFromExplain(e, 0);
  // the figure over a 20-px image: window column 2 spans input pixels 16..19 (edges 15.5 and 19.5), not 13.3..20
  const fig = windowAttentionFigure(a0, { background: { width: 20, height: 20, data: new Uint8Array(400) } });
  const hm = fig.data.find((t) => t.type === "heatmap") as { x: number[]; y: number[] };
  assert.deepEqual(hm.x, [-0.5, 7.5, 15.5, 19.5]);
  assert.deepEqual(hm.y, [-0.5, 7.5, 15.5, 19.5]);
  // window labels count pixels by the same edges: a region mask on pixel columns 16..19 is window column 2
  const labels = new Int8Array(400).fill(-1);
  for (let y = 0; y < 20; y++) for (let xx = 16; xx < 20; xx++) labels[y * 20 + xx] = 0;
  const regions = { width: 20, height: 20, names: REGION_NAMES, masks: {} as never, labels };
  const even = labelWindows(regions, [3, 3]).cover.map((c) => c[REGION_NAMES[0]] ?? 0);
  const real = labelWindows(regions, [3, 3], 0.15, a0.cellEdges).cover.map((c) => c[REGION_NAMES[0]] ?? 0);
  assert.deepEqual(real, [0, 0, 1, 0, 0, 1, 0, 0, 1]);
  assert.notDeepEqual(even, real);
  tf.dispose([x, e.fine, e.coarse ?? [], ...e.attention.map((a) => a.heads)]);
  m.dispose();
});
