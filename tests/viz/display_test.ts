import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { JUPYTER_DISPLAY, tensorBundle, tensorStats, viewSample, viewTensor } from "../../lib/viz/display.ts";
import { PLOTLY_MIME } from "../../lib/viz/plotly.ts";

await tf.setBackend("cpu");

Deno.test("tensorStats ignores non-finite values and counts them", () => {
  const s = tensorStats([1, 3, NaN, Infinity]);
  assert.deepEqual(s, { min: 1, max: 3, mean: 2, std: 1, nonFinite: 2 });
});

Deno.test("viewTensor: the kernel's display symbol gives text + heat map for a 2-D map", async () => {
  assert.equal(JUPYTER_DISPLAY, Symbol.for("Jupyter.display"));
  const t = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
  const b = await viewTensor(t, "m")[JUPYTER_DISPLAY]();
  assert.equal(b["text/plain"], "m: float32 [2, 3] min 1 max 6 mean 3.5 std 1.708\n[[1, 2, 3],\n [4, 5, 6]]");
  const fig = b[PLOTLY_MIME] as { data: { z: number[][] }[] };
  assert.deepEqual(fig.data[0].z, [[1, 2, 3], [4, 5, 6]]);
  assert.equal(t.isDisposed, false, "the caller's tensor is not disposed");
  t.dispose();
});

Deno.test("tensorBundle: images [1,h,w,3] get one heat map per channel, vectors text only with '…'", async () => {
  const img = tf.ones([1, 4, 5, 3]);
  const b = await tensorBundle(img);
  assert.equal((b[PLOTLY_MIME] as { data: unknown[] }).data.length, 3);
  const v = tf.range(0, 10);
  const bv = await tensorBundle(v, "v");
  assert.deepEqual(Object.keys(bv), ["text/plain"]);
  assert.match(bv["text/plain"] as string, /\[0, 1, 2, 3, 4, 5, …\]$/);
  tf.dispose([img, v]);
});

Deno.test("viewSample renders the dataset sample figure", async () => {
  const ds = {
    name: "t",
    protocol: "p",
    n: 1,
    height: 2,
    width: 2,
    x: new Float32Array(12).map((_, i) => i / 12),
    fine: new Int32Array([0]),
    coarse: new Int32Array([0]),
    classes: { fine: ["a"], coarse: ["a"], fineToCoarse: [0] },
    subjects: ["s"],
    datasets: ["d"],
    ids: ["id0"],
  };
  const b = await viewSample(ds, 0)[JUPYTER_DISPLAY]();
  assert.match(b["text/plain"] as string, /"id0 · s · a": 4 traces/);
});

Deno.test("viewSampleRef reads the frames and draws frames, flow and strain", async () => {
  const { viewSampleRef } = await import("../../lib/viz/display.ts");
  const { writePng } = await import("../../lib/data/image_io.ts");
  const dir = await Deno.makeTempDir();
  try {
    // a bright square moving 1 px to the right
    const frame = (dx: number) => {
      const data = new Uint8Array(32 * 32).fill(40);
      for (let y = 12; y < 20; y++) for (let x = 12 + dx; x < 20 + dx; x++) data[y * 32 + x] = 220;
      return { width: 32, height: 32, data };
    };
    await writePng(`${dir}/a.png`, frame(0));
    await writePng(`${dir}/b.png`, frame(1));
    const ref = {
      dataset: "t",
      subject: "t/s1",
      id: "s1/clip",
      emotion: "surprise",
      onsetFrame: 1,
      apexFrame: 2,
      onsetPath: `${dir}/a.png`,
      apexPath: `${dir}/b.png`,
      source: { file: "labels.csv", row: 2 },
      notes: [],
    };
    const b = await viewSampleRef(ref)[JUPYTER_DISPLAY]();
    const fig = b[PLOTLY_MIME] as { data: { type: string }[] };
    assert.deepEqual(fig.data.map((t) => t.type), ["image", "image", "image", "scatter", "image", "heatmap"]);
    assert.match(b["text/plain"] as string, /s1\/clip \(t\/s1, surprise; frames 1 → 2\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
