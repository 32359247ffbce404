import * as tf from "@tensorflow/tfjs";
import { deepStrictEqual, ok, throws } from "node:assert/strict";
import { assertClose } from "../_util.ts";
import { mambaVisionMixer } from "../../lib/layers/mamba_vision_mixer.ts";
import { LocalExtractor } from "../../lib/layers/local_extractor.ts";
import { InterWindowAttention } from "../../lib/layers/inter_window_attention.ts";
import { LgfiStage } from "../../lib/layers/lgfi_stage.ts";
import { Downsample, FlowStem } from "../../lib/layers/stem.ts";
import { DualGranularityHead } from "../../lib/layers/dual_granularity_head.ts";
import { BatchNorm } from "../../lib/layers/batch_norm.ts";
import { scanPermutation } from "../../lib/ops/scan_orders.ts";

const r = (shape: number[], seed = 1) => tf.randomNormal(shape, 0, 1, "float32", seed);

Deno.test("multi-scan mixer: every scope/sharing/merge variant keeps the shape and differs from raster", async () => {
  await tf.setBackend("cpu");
  const x = r([3, 16, 8]);
  const raster = mambaVisionMixer({ dModel: 8, dState: 4, dConv: 3, expand: 1, seed: 5 });
  const yr = raster.apply(x) as tf.Tensor;
  for (const shareScanParams of [false, true]) {
    for (const merge of ["mean", "sum", "softmax"] as const) {
      const m = mambaVisionMixer({
        dModel: 8,
        dState: 4,
        dConv: 3,
        expand: 1,
        seed: 5,
        scanOrders: "vmamba4",
        grid: [4, 4],
        merge,
        shareScanParams,
      });
      const y = m.apply(x) as tf.Tensor;
      deepStrictEqual(y.shape, [3, 16, 8]);
      const d = (await tf.max(tf.abs(tf.sub(y, yr))).data())[0];
      ok(d > 1e-4, `vmamba4 ${merge} shared=${shareScanParams} should differ from raster (max diff ${d})`);
      tf.dispose(y);
      m.dispose();
    }
  }
  tf.dispose([x, yr]);
  raster.dispose();
});

Deno.test("multi-scan mixer: a single reversed order equals the raster mixer on reversed tokens", async () => {
  await tf.setBackend("cpu");
  const x = r([2, 12, 8], 3);
  const rev = scanPermutation({ major: "row", h: -1, v: -1 }, 3, 4);
  const xr = tf.gather(x, Array.from(rev), 1);
  const a = mambaVisionMixer({
    dModel: 8,
    dState: 4,
    dConv: 3,
    expand: 1,
    seed: 9,
    scanOrders: ["row--"],
    grid: [3, 4],
  });
  const b = mambaVisionMixer({ dModel: 8, dState: 4, dConv: 3, expand: 1, seed: 9 });
  // same seed, same weight names -> same weights; mixer(π x) = π(mixer_π(x)) except the z-branch conv,
  // which stays in raster order: compare with a 1-tap conv so that the z branch is order-independent.
  const ya = a.apply(x) as tf.Tensor;
  const yb = b.apply(xr) as tf.Tensor;
  deepStrictEqual(ya.shape, yb.shape);
  // the x branch sees the same sequence: check the scan outputs directly
  const ta = a.forwardTrace(x);
  const tb = b.forwardTrace(xr);
  assertClose(await ta.groups[0].y.data(), await tb.groups[0].y.data(), {
    atol: 1e-5,
    rtol: 1e-4,
    what: "scan output",
  });
  tf.dispose([x, xr, ya, yb, ta as never, tb as never]);
  a.dispose();
  b.dispose();
});

Deno.test("layer shapes: local extractor (both scopes), attention modes, stage with padding, stem, downsample, head", async () => {
  await tf.setBackend("cpu");
  for (const scanScope of ["ssm", "mixer"] as const) {
    for (const shareScanParams of [false, true]) {
      const blk = new LocalExtractor({
        dim: 8,
        windowSize: 3,
        scanScope,
        shareScanParams,
        merge: "softmax",
        seed: 2,
      });
      blk.ensureBuilt([null, 9, 8]);
      const y = blk.apply(r([5, 9, 8])) as tf.Tensor;
      deepStrictEqual(y.shape, [5, 9, 8]);
      ok(blk.paramCount() > 0);
      tf.dispose(y);
      blk.dispose();
    }
  }
  for (const mode of ["windowToken", "full", "none"] as const) {
    const att = new InterWindowAttention({ dim: 8, heads: 2, rows: 2, cols: 3, windowTokens: 4, mode });
    att.ensureBuilt([null, 4, 8]);
    const out = att.forward(r([12, 4, 8]));
    deepStrictEqual(out.windows.shape, [12, 4, 8]);
    if (mode === "none") deepStrictEqual(out.attention, null);
    else deepStrictEqual(out.attention!.shape, mode === "full" ? [2, 2, 24, 24] : [2, 2, 6, 6]);
    if (mode !== "none") {
      const rows = await tf.sum(out.attention!, -1).data();
      assertClose(rows, new Float32Array(rows.length).fill(1), { atol: 1e-5, rtol: 0, what: "softmax rows" });
    }
    tf.dispose([out.windows, out.attention!].filter(Boolean));
    att.dispose();
  }
  // single window: windowToken falls back to full
  const one = new InterWindowAttention({ dim: 8, heads: 2, rows: 1, cols: 1, windowTokens: 9 });
  deepStrictEqual(one.effectiveMode, "full");
  // windowToken starts as the identity (zero-initialised return projection)
  const id = new InterWindowAttention({ dim: 8, heads: 2, rows: 2, cols: 2, windowTokens: 4 });
  id.ensureBuilt([null, 4, 8]);
  const xw = r([8, 4, 8], 4);
  assertClose(await (id.apply(xw) as tf.Tensor).data(), await xw.data(), {
    atol: 0,
    rtol: 0,
    what: "identity at init",
  });
  // odd map 9x10 with ws 4: 3x3 windows, padding; then downsample to 5x5
  const st = new LgfiStage({
    height: 9,
    width: 10,
    dim: 8,
    depth: 2,
    windowSize: 4,
    heads: 2,
    downsampleTo: 12,
  });
  st.ensureBuilt([null, 9, 10, 8]);
  const so = st.forward(r([2, 9, 10, 8]), { blockInputs: true });
  deepStrictEqual(so.out.shape, [2, 5, 5, 12]);
  deepStrictEqual(so.attention!.shape, [2, 2, 9, 9]);
  deepStrictEqual(so.blockInputs!.map((t) => t.shape), [[18, 16, 8], [18, 16, 8]]);
  const stem = new FlowStem({ channels: [4, 6], strides: [2, 2] });
  deepStrictEqual((stem.apply(r([2, 15, 15, 3])) as tf.Tensor).shape, [2, 4, 4, 6]);
  const ds = new Downsample({ inChannels: 6, outChannels: 10 });
  deepStrictEqual((ds.apply(r([2, 7, 7, 6])) as tf.Tensor).shape, [2, 4, 4, 10]);
  throws(() => new LocalExtractor({ dim: 8, windowSize: 3, scanScope: "all" as never }), RangeError);
  throws(() => new InterWindowAttention({ dim: 8, heads: 3, rows: 1, cols: 1, windowTokens: 4 }), RangeError);
});

Deno.test("dual-granularity head: loss = CE_fine + λ·CE_coarse, masked inference, class weights", async () => {
  await tf.setBackend("cpu");
  const classes = { fine: ["a", "b", "c", "d"], coarse: ["x", "y"], fineToCoarse: [0, 0, 1, 1] };
  const head = new DualGranularityHead({ dim: 4, classes, coarseLossWeight: 0.5, inference: "masked" });
  head.ensureBuilt([null, 2, 2, 4]);
  const out = { fine: tf.tensor2d([[2, 0, 3, 0], [0, 1, 0, 0]]), coarse: tf.tensor2d([[5, 0], [0, 1]]) };
  const y = tf.tensor1d([1, 3], "int32");
  const ce = (logits: number[], k: number) =>
    Math.log(logits.reduce((s, v) => s + Math.exp(v), 0)) - logits[k];
  const expected = (ce([2, 0, 3, 0], 1) + ce([0, 1, 0, 0], 3)) / 2 +
    0.5 * (ce([5, 0], 0) + ce([0, 1], 1)) / 2;
  assertClose(await head.loss(out, y).data(), [expected], { atol: 1e-5, rtol: 1e-5, what: "loss" });
  // masked: sample 0 predicted coarse x -> argmax over {a, b} = a (0), although c (2) has the larger logit
  deepStrictEqual(Array.from(await head.predictLevel(out, "fine").data()), [0, 2]); // sample 1: coarse y -> {c, d}, tie -> c
  deepStrictEqual(Array.from(await head.predictLevel(out, "coarse").data()), [0, 1]);
  const w = [1, 3, 1, 1];
  const wExpected = (1 * ce([2, 0, 3, 0], 1) * 3 + ce([0, 1, 0, 0], 3) * 1) / 4 +
    0.5 * (ce([5, 0], 0) * 3 + ce([0, 1], 1) * 1) / 4;
  assertClose(await head.loss(out, y, { classWeights: w }).data(), [wExpected], {
    atol: 1e-5,
    rtol: 1e-5,
    what: "weighted",
  });
  throws(() => head.loss(out, y, { classWeights: [1] }), RangeError);
  // label smoothing ε: target (1 − ε)·onehot + ε/K per level, i.e. CE_ε = (1 − ε)·CE + ε·mean_k(−log p_k)
  const eps = 0.2;
  const ceS = (logits: number[], k: number) => {
    const lse = Math.log(logits.reduce((s, v) => s + Math.exp(v), 0));
    return (1 - eps) * (lse - logits[k]) + eps * logits.reduce((s, v) => s + (lse - v), 0) / logits.length;
  };
  const sExpected = (ceS([2, 0, 3, 0], 1) + ceS([0, 1, 0, 0], 3)) / 2 +
    0.5 * (ceS([5, 0], 0) + ceS([0, 1], 1)) / 2;
  assertClose(await head.loss(out, y, { labelSmoothing: eps }).data(), [sExpected], {
    atol: 1e-5,
    rtol: 1e-5,
    what: "smoothed",
  });
  // ε = 0 is the plain loss, bit for bit
  deepStrictEqual(
    Array.from(await head.loss(out, y, { labelSmoothing: 0 }).data()),
    Array.from(await head.loss(out, y).data()),
  );
  throws(() => head.loss(out, y, { labelSmoothing: 1 }), /labelSmoothing = 1, expected a value in \[0, 1\)/);
  throws(() => head.loss(out, y, { labelSmoothing: -0.1 }), RangeError);
  throws(
    () => new DualGranularityHead({ dim: 4, classes: { ...classes, fineToCoarse: [0, 0, 2, 1] } }),
    RangeError,
  );
  const f = head.forward(r([3, 2, 2, 4]));
  deepStrictEqual([f.fine.shape, f.coarse!.shape], [[3, 4], [3, 2]]);
});

Deno.test("BatchNorm: training uses batch statistics and moves the running ones; inference uses them", async () => {
  await tf.setBackend("cpu");
  const bn = new BatchNorm({ momentum: 0.5 });
  const x = tf.add(tf.mul(r([64, 3], 7), 2), 3);
  const y = bn.apply(x, { training: true }) as tf.Tensor;
  const { mean, variance } = tf.moments(y, 0);
  assertClose(await mean.data(), [0, 0, 0], { atol: 1e-5, rtol: 0, what: "normalised mean" });
  assertClose(await variance.data(), [1, 1, 1], { atol: 1e-3, rtol: 0, what: "normalised variance" });
  const mm = bn.namedWeights().find((w) => w.name === "moving_mean")!.variable.read();
  const xm = await tf.mean(x, 0).data();
  assertClose(await mm.data(), Array.from(xm, (v) => 0.5 * v), {
    atol: 1e-5,
    rtol: 1e-5,
    what: "moving mean",
  });
});

Deno.test("layers release every intermediate tensor (forward and gradient)", async () => {
  await tf.setBackend("cpu");
  const st = new LgfiStage({
    height: 8,
    width: 8,
    dim: 8,
    depth: 1,
    windowSize: 4,
    heads: 2,
    downsampleTo: 8,
    scanSet: "vmamba4",
    shareScanParams: true,
  });
  st.ensureBuilt([null, 8, 8, 8]);
  const x = r([2, 8, 8, 8]);
  const run = () => {
    const { value, grads } = tf.variableGrads(
      () => tf.sum(st.apply(x) as tf.Tensor) as tf.Scalar,
      st.trainableWeights.map((w) => w.read() as tf.Variable),
    );
    tf.dispose([value, ...Object.values(grads)]);
  };
  run();
  const before = tf.memory().numTensors;
  run();
  tf.tidy(() => st.forward(x, { blockInputs: true }).out).dispose();
  deepStrictEqual(tf.memory().numTensors, before);
});
