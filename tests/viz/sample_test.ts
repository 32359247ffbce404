import assert from "node:assert/strict";
import type { FlowDataset } from "../../lib/data/types.ts";
import { datasetSampleFigure, flowArrowsTrace, sampleFigure } from "../../lib/viz/sample.ts";

const W = 8;
const H = 6;
// uniform motion of (+2, -1) px: every arrow points right and up
const flow = { width: W, height: H, u: new Float32Array(W * H).fill(2), v: new Float32Array(W * H).fill(-1) };
const gray = { width: W, height: H, data: new Uint8Array(W * H).map((_, i) => i * 5) };

Deno.test("flowArrowsTrace: one shaft + two head strokes per block, longest block 0.9·step long", () => {
  const t = flowArrowsTrace(flow, { step: 2 });
  const xs = t.x as (number | null)[];
  const ys = t.y as (number | null)[];
  assert.equal(xs.length, 4 * 3 * 9); // 4x3 blocks, 3 segments of (start, end, null)
  // first shaft: from the centre of block (0,0) = (0.5, 0.5) along (2, -1) scaled to 1.8 px
  const s = 1.8 / Math.hypot(2, 1);
  assert.deepEqual([xs[0], ys[0]], [0.5, 0.5]);
  assert.ok(
    Math.abs((xs[1] as number) - (0.5 + 2 * s)) < 1e-3 && Math.abs((ys[1] as number) - (0.5 - s)) < 1e-3,
  );
  assert.equal(xs[2], null);
  assert.throws(() => flowArrowsTrace({ ...flow, u: new Float32Array(3) }), TypeError);
});

Deno.test("sampleFigure: onset, apex, flow wheel + arrows, key, strain in one row", () => {
  const fig = sampleFigure({ onset: gray, apex: gray, flow, strain: new Float32Array(W * H), title: "s1" });
  const ann = (fig.layout!.annotations as { text: string }[]).map((a) => a.text);
  assert.deepEqual(ann, ["onset", "apex", "flow (max 2.24 px)", "direction key", "optical strain"]);
  assert.deepEqual(fig.data.map((t) => t.type), ["image", "image", "image", "scatter", "image", "heatmap"]);
  assert.deepEqual(fig.data.map((t) => t.xaxis), ["x", "x2", "x3", "x3", "x4", "x5"]);
  assert.ok(String(fig.data[0].source).startsWith("data:image/png;base64,"));
  assert.equal((fig.data[5].z as number[][]).length, H);
  const arrowsOnly = sampleFigure({ flow }, { flowStyle: "arrows" });
  assert.deepEqual(arrowsOnly.data.map((t) => t.type), ["image", "scatter"]);
  assert.throws(() => sampleFigure({}), { name: "TypeError", message: /at least one/ });
  assert.throws(() => sampleFigure({ flow, strain: new Float32Array(3) }), {
    name: "TypeError",
    message: /8x6 = 48/,
  });
});

Deno.test("datasetSampleFigure: three input channels + median-centred flow, titled with labels", () => {
  const n = 2;
  const x = new Float32Array(n * H * W * 3);
  for (let i = 0; i < x.length; i++) x[i] = (i % 7) / 7;
  const ds: FlowDataset = {
    name: "t",
    protocol: "p",
    n,
    height: H,
    width: W,
    x,
    fine: new Int32Array([0, 1]),
    coarse: new Int32Array([0, 0]),
    classes: { fine: ["disgust", "repression"], coarse: ["negative"], fineToCoarse: [0, 0] },
    subjects: ["syn/s1", "syn/s2"],
    datasets: ["syn", "syn"],
    ids: ["a", "b"],
  };
  const fig = datasetSampleFigure(ds, 1);
  assert.deepEqual(fig.data.map((t) => t.type), ["heatmap", "heatmap", "heatmap", "image"]);
  // channel 0 of sample 1, pixel (0, 0) = x[1 * H*W*3 + 0]
  assert.equal((fig.data[0].z as number[][])[0][0], Number((((H * W * 3) % 7) / 7).toPrecision(3)));
  assert.match(JSON.stringify(fig.layout!.title), /b · syn\/s2 · repression \(negative\)/);
  assert.throws(() => datasetSampleFigure(ds, 2), { name: "RangeError", message: /0\.\.1/ });
});
