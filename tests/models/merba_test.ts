import * as tf from "@tensorflow/tfjs";
import { deepStrictEqual, ok, throws } from "node:assert/strict";
import { assertClose, gpu } from "../_util.ts";
import { createMerba, type MerbaModel } from "../../lib/models/merba.ts";
import { listModels, registerMerbaVariant, resolveMerbaConfig } from "../../lib/models/config.ts";
import { loadMerba, ModelFileError, saveMerba } from "../../lib/models/io.ts";
import { dropPath, LocalExtractor } from "../../lib/layers/local_extractor.ts";

const rand = (shape: number[], seed: number) => tf.randomUniform(shape, 0, 1, "float32", seed);

/** One Adam step (moves the zero-initialised return projections), then the gradient of every weight. */
async function gradsAfterOneStep(m: MerbaModel, x: tf.Tensor, y: tf.Tensor1D) {
  const vars = m.trainableWeights();
  const opt = tf.train.adam(1e-2);
  const f = () => m.loss(m.apply(x, { training: true }), y);
  const first = tf.variableGrads(f, vars);
  opt.applyGradients(first.grads as never);
  tf.dispose([first.value, ...Object.values(first.grads)]);
  const { value, grads } = tf.variableGrads(f, vars);
  const names = new Map(m.namedWeights().map((w) => [(w.variable.read() as tf.Variable).name, w.name]));
  const zero: string[] = [];
  for (const [k, g] of Object.entries(grads)) {
    const mx = (await tf.max(tf.abs(g)).data())[0];
    if (!(mx > 0) || !Number.isFinite(mx)) zero.push(names.get(k) ?? k);
  }
  tf.dispose([value, ...Object.values(grads)]);
  opt.dispose();
  return { zero, count: Object.keys(grads).length };
}

Deno.test("registry: names, unknown name, overrides, validation", () => {
  deepStrictEqual(listModels().map((m) => m.name), ["merba-tiny", "merba-small-112", "merba-test"]);
  throws(
    () => createMerba("merba-huge"),
    (e: Error) => e instanceof RangeError && /merba-tiny, merba-small-112/.test(e.message),
  );
  const c = resolveMerbaConfig("merba-tiny", { scanSet: "vmamba4", mixer: { dState: 4 } });
  deepStrictEqual([c.scanSet, c.mixer.dState, c.mixer.dConv, c.stages.length], ["vmamba4", 4, 3, 2]);
  throws(
    () => resolveMerbaConfig("merba-tiny", { merge: "max" as never }),
    (e: Error) => /config.merge/.test(e.message),
  );
  throws(
    () => resolveMerbaConfig("merba-tiny", { stages: [{ dim: 10, depth: 1, windowSize: 7, heads: 3 }] }),
    RangeError,
  );
  throws(
    () =>
      resolveMerbaConfig("merba-tiny", {
        classes: { fine: ["a", "b"], coarse: ["x"], fineToCoarse: [0, 1] },
      }),
    (e: Error) => /fineToCoarse\[1\]/.test(e.message),
  );
});

Deno.test("every registered variant: output shapes and finite logits; merba-tiny and merba-test: every weight gets a gradient", async () => {
  await tf.setBackend("cpu");
  for (const { name } of listModels()) {
    const m = createMerba(name, { seed: 1 });
    const [h, w] = m.config.inputSize;
    const b = name === "merba-small-112" ? 1 : 3;
    const x = rand([b, h, w, 3], 2);
    const out = m.apply(x, { training: false });
    deepStrictEqual(out.fine.shape, [b, 5]);
    deepStrictEqual(out.coarse!.shape, [b, 4]);
    ok((await out.fine.data()).every(Number.isFinite), `${name}: finite logits`);
    if (name !== "merba-small-112") {
      // (merba-small-112, 3.3M parameters, is left out of the gradient check to keep the suite fast on a CPU)
      const y = tf.tensor1d([0, 3, 4], "int32");
      const { zero, count } = await gradsAfterOneStep(m, x, y);
      deepStrictEqual(zero, [], `${name}: weights without gradient`);
      deepStrictEqual(count, m.trainableWeights().length);
      y.dispose();
    }
    tf.dispose([x, out.fine, out.coarse!]);
    m.dispose();
  }
});

Deno.test("odd input size that needs window padding at every stage; conditioned/independent, no coarse head", async () => {
  await tf.setBackend("cpu");
  for (
    const over of [{}, { headCoupling: "independent" as const }, {
      coarseHead: false,
      scanScope: "mixer" as const,
    }]
  ) {
    const m = createMerba("merba-test", { inputSize: [18, 22], ...over });
    deepStrictEqual(m.stageSizes, [[9, 11], [5, 6]]);
    const x = rand([2, 18, 22, 3], 3);
    const out = m.apply(x, { training: true });
    deepStrictEqual(out.fine.shape, [2, 5]);
    deepStrictEqual(out.coarse === null, over.coarseHead === false);
    const pred = m.predict(x);
    ok(over.coarseHead === false ? pred instanceof tf.Tensor : !(pred instanceof tf.Tensor));
    const { zero } = await gradsAfterOneStep(m, x, tf.tensor1d([1, 2], "int32"));
    deepStrictEqual(zero, []);
    tf.dispose([x, out.fine, out.coarse ?? [], pred as never]);
    m.dispose();
  }
  const bad = createMerba("merba-test");
  throws(
    () => bad.apply(tf.zeros([1, 16, 16, 2])),
    (e: Error) => e instanceof TypeError && /\[batch, 16, 16, 3\]/.test(e.message),
  );
  bad.dispose();
});

Deno.test("deterministic init from the seed; summary, countParams and weight groups", async () => {
  await tf.setBackend("cpu");
  const a = createMerba("merba-tiny", { seed: 3 });
  const b = createMerba("merba-tiny", { seed: 3 });
  const c = createMerba("merba-tiny", { seed: 4 });
  const wa = a.namedWeights();
  const wb = b.namedWeights();
  const wc = c.namedWeights();
  let differs = 0;
  for (let i = 0; i < wa.length; i++) {
    deepStrictEqual(wa[i].name, wb[i].name);
    deepStrictEqual(await wa[i].variable.read().data(), await wb[i].variable.read().data());
    const x = await wa[i].variable.read().data();
    const z = await wc[i].variable.read().data();
    if (x.some((v, j) => v !== z[j])) differs++;
  }
  ok(differs > 10, `seed 4 should change most weights (${differs} differ)`);
  const n = a.countParams();
  deepStrictEqual(n, a.trainableWeights().reduce((s, v) => s + v.size, 0));
  ok(n > 10_000 && n < 100_000, `merba-tiny has tens of thousands of parameters (${n})`);
  const s = a.summary();
  ok(
    s.includes(n.toLocaleString("en-US")) && s.includes("stages.1.attn inter-window (full") &&
      s.includes("[b, 7, 7, 32]"),
    s,
  );
  const g = a.weightGroups();
  deepStrictEqual(g.decay.length + g.noDecay.length, a.trainableWeights().length);
  const noDecayNames = a.namedWeights().filter((w) => !w.decay).map((w) => w.name);
  ok(noDecayNames.some((x) => x.endsWith("mixer.A_log")) && noDecayNames.some((x) => x.endsWith("mixer.D")));
  ok(
    noDecayNames.every((x) => /A_log|\.D(\.\d+)?$|gamma|beta|bias|pos_embed|moving|merge_logits/.test(x)),
    noDecayNames.join(),
  );
  [a, b, c].forEach((m) => m.dispose());
});

Deno.test("linearInit: LeCun (default), MambaVision trunc-normal 0.02 and PyTorch uniform kernels", async () => {
  await tf.setBackend("cpu");
  // std of a kernel's values; truncation at ±2σ scales a normal's std by 0.8796
  const std = async (m: MerbaModel, name: string) => {
    const w = m.namedWeights().find((x) => x.name === name);
    ok(w, `no weight ${name} in ${m.namedWeights().map((x) => x.name).join()}`);
    const v = Array.from(await w.variable.read().data() as Float32Array);
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
    return { std: sd, max: Math.max(...v.map(Math.abs)) };
  };
  const lecun = createMerba("merba-tiny", {});
  const tn = createMerba("merba-tiny", { linearInit: "truncNormal" });
  const torch = createMerba("merba-tiny", { linearInit: "torch" });
  deepStrictEqual(lecun.config.linearInit, "lecun");
  // (name, fan-in): MLP of stage 0 (16 → 32 → 16), attention of stage 1 (32), mixer in_proj (16)
  const kernels: [string, number][] = [
    ["stages.0.blocks.0.mlp.fc1.kernel", 16],
    ["stages.0.blocks.0.mlp.fc2.kernel", 32],
    ["stages.1.attn.qkv.kernel", 32],
    ["stages.0.blocks.0.mixer.in_proj.kernel", 16],
  ];
  for (const [name, fanIn] of kernels) {
    // 512–3072 values: the sample std is within ±10 % of σ with overwhelming probability
    const l = await std(lecun, name);
    assertClose([l.std], [0.8796 / Math.sqrt(fanIn)], { rtol: 0.1, atol: 0, what: `${name} lecun std` });
    ok(l.max <= 2 / Math.sqrt(fanIn) + 1e-7, `${name}: lecun values within ±2σ`);
    const t = await std(tn, name);
    assertClose([t.std], [0.8796 * 0.02], { rtol: 0.1, atol: 0, what: `${name} truncNormal std` });
    const u = await std(torch, name);
    assertClose([u.std], [1 / Math.sqrt(3 * fanIn)], { rtol: 0.1, atol: 0, what: `${name} torch std` });
    ok(u.max <= 1 / Math.sqrt(fanIn), `${name}: torch values within ±1/√fan_in`);
  }
  throws(() => createMerba("merba-tiny", { linearInit: "xavier" as never }), /linearInit/);
  [lecun, tn, torch].forEach((m) => m.dispose());
});

Deno.test("save/load round trip is bit-identical (weights, BatchNorm statistics, outputs)", async () => {
  await tf.setBackend("cpu");
  const m = createMerba("merba-test", { seed: 5, scanSet: ["row-+", "col--"], merge: "softmax" });
  const x = rand([2, 16, 16, 3], 6);
  // one training step so that BN statistics and weights are not at their init
  const opt = tf.train.adam(1e-2);
  opt.minimize(
    () => m.loss(m.apply(x, { training: true }), tf.tensor1d([1, 2], "int32")),
    false,
    m.trainableWeights(),
  );
  const dir = await Deno.makeTempDir();
  await saveMerba(m, dir);
  const back = await loadMerba(dir);
  deepStrictEqual(back.config, m.config);
  const wa = m.namedWeights();
  const wb = back.namedWeights();
  deepStrictEqual(wa.map((w) => w.name), wb.map((w) => w.name));
  for (let i = 0; i < wa.length; i++) {
    deepStrictEqual(await wb[i].variable.read().data(), await wa[i].variable.read().data(), wa[i].name);
  }
  const ya = m.apply(x);
  const yb = back.apply(x);
  deepStrictEqual(await yb.fine.data(), await ya.fine.data());
  await Deno.writeTextFile(
    `${dir}/model.json`,
    JSON.stringify({ format: "layers-model", modelTopology: {} }),
  );
  await loadMerba(dir).then(
    () => ok(false),
    (e) => ok(e instanceof ModelFileError && /not a merba model/.test(e.message)),
  );
  await Deno.remove(dir, { recursive: true });
  tf.dispose([x, ya.fine, ya.coarse!, yb.fine, yb.coarse!]);
  opt.dispose();
  m.dispose();
  back.dispose();
});

Deno.test("a few Adam steps on a tiny random set lower the loss", async () => {
  await tf.setBackend("cpu");
  const m = createMerba("merba-test", { seed: 7 });
  const x = rand([16, 16, 16, 3], 8);
  const y = tf.tensor1d(Array.from({ length: 16 }, (_, i) => i % 5), "int32");
  const opt = tf.train.adam(1e-2);
  const losses: number[] = [];
  for (let i = 0; i < 12; i++) {
    const l = opt.minimize(() => m.loss(m.apply(x, { training: true }), y), true, m.trainableWeights())!;
    losses.push((await l.data())[0]);
    l.dispose();
  }
  ok(losses[11] < 0.8 * losses[0], `loss should fall: ${losses.map((v) => v.toFixed(3)).join(" ")}`);
  tf.dispose([x, y]);
  opt.dispose();
  m.dispose();
});

Deno.test("explain: logits, inter-window maps of every stage, scan hidden-attention maps of chosen blocks", async () => {
  await tf.setBackend("cpu");
  const m = createMerba("merba-test", { seed: 2 });
  const x = rand([2, 16, 16, 3], 9);
  const e = m.explain(x, { scanBlocks: "all" });
  const ref = m.apply(x);
  assertClose(await e.fine.data(), await ref.fine.data(), {
    atol: 1e-6,
    rtol: 1e-6,
    what: "explain logits = apply logits",
  });
  deepStrictEqual(e.attention.map((a) => [a.stage, a.mode, a.heads.shape, a.windowGrid]), [
    [0, "windowToken", [2, 2, 4, 4], [2, 2]],
    [1, "full", [2, 2, 16, 16], [4, 4]],
  ]);
  deepStrictEqual(e.scan.map((s) => [s.stage, s.block, s.orders, s.maps.shape, s.perOrder.shape]), [
    [0, 0, ["row++", "col++", "col+-"], [8, 16, 16], [3, 8, 16, 16]],
    [1, 0, ["row++", "col++", "col+-"], [2, 16, 16], [3, 2, 16, 16]],
  ]);
  // causality in scan order: for the raster order (row++) the map is lower-triangular in raster coordinates
  const raster = (await e.scan[0].perOrder.array()) as number[][][][];
  for (let t = 0; t < 16; t++) for (let s = t + 1; s < 16; s++) deepStrictEqual(raster[0][0][t][s], 0);
  // for col+- (column-major, bottom-up) token (row 3, col 0) is visited first: its row has one entry
  const colUp = raster[2][0];
  deepStrictEqual(colUp[12].filter((v) => v !== 0).length, 1);
  throws(() => m.explain(x, { scanBlocks: [{ stage: 0, block: 3 }] }), RangeError);
  throws(() => m.explain(x, { scanBlocks: "bogus" as never }), /scanBlocks must be "all", "last", "none"/);
  // whole-mixer-per-order scope: one map per order as well
  const mm = createMerba("merba-test", { seed: 2, scanScope: "mixer", shareScanParams: false });
  const em = mm.explain(x, { scanBlocks: [{ stage: 1, block: 0 }] });
  deepStrictEqual(em.scan.map((s) => [s.orders, s.perOrder.shape]), [[["row++", "col++", "col+-"], [
    3,
    2,
    16,
    16,
  ]]]);
  tf.dispose(em as never);
  mm.dispose();
  tf.dispose([x, ref.fine, ref.coarse!, e as never]);
  m.dispose();
});

Deno.test("no tensor leaks across apply, loss and gradients", async () => {
  await tf.setBackend("cpu");
  const m = createMerba("merba-test");
  const x = rand([2, 16, 16, 3], 10);
  const y = tf.tensor1d([0, 1], "int32");
  const step = () => {
    const { value, grads } = tf.variableGrads(
      () => m.loss(m.apply(x, { training: true }), y),
      m.trainableWeights(),
    );
    tf.dispose([value, ...Object.values(grads)]);
    const e = m.explain(x);
    tf.dispose(e as never);
  };
  step();
  const before = tf.memory().numTensors;
  step();
  deepStrictEqual(tf.memory().numTensors, before);
  tf.dispose([x, y]);
  m.dispose();
});

Deno.test({
  name: "cpu and webgpu give the same logits and loss gradients (same seed)",
  ignore: !gpu,
  async fn() {
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      const m = createMerba("merba-test", { seed: 11, inputSize: [18, 18] });
      const x = rand([2, 18, 18, 3], 12);
      const out = m.apply(x, { training: false });
      const { value, grads } = tf.variableGrads(
        () => m.loss(m.apply(x, { training: true }), tf.tensor1d([2, 4], "int32")),
        m.trainableWeights(),
      );
      const res = {
        fine: await out.fine.data(),
        loss: await value.data(),
        g: await Promise.all(Object.values(grads).map((g) => g.data())),
      };
      tf.dispose([x, out.fine, out.coarse!, value, ...Object.values(grads)]);
      m.dispose();
      return res;
    };
    const c = await run("cpu");
    const g = await run("webgpu");
    // float32 on both; reduction order and WGSL exp differ: 1e-4 absolute on O(1) logits and O(0.1) gradients
    assertClose(g.fine, c.fine, { atol: 1e-4, rtol: 1e-3, what: "fine logits" });
    assertClose(g.loss, c.loss, { atol: 1e-4, rtol: 1e-4, what: "loss" });
    g.g.forEach((v, i) => assertClose(v, c.g[i], { atol: 1e-4, rtol: 1e-3, what: `gradient ${i}` }));
    await tf.setBackend("cpu");
  },
});

Deno.test("wasm backend: a training step runs and matches the cpu loss", async () => {
  await import("@tensorflow/tfjs-backend-wasm");
  const lossOn = async (backend: string) => {
    // setBackend resolves to false when a backend fails to start; without this check the step would run on
    // the previous backend and fail far from the cause
    ok(await tf.setBackend(backend), `tfjs backend ${backend} did not start (see the message above)`);
    await tf.ready();
    const m = createMerba("merba-test", { seed: 13 });
    const x = rand([2, 16, 16, 3], 14);
    const { value, grads } = tf.variableGrads(
      () => m.loss(m.apply(x, { training: true }), tf.tensor1d([0, 4], "int32")),
      m.trainableWeights(),
    );
    const v = (await value.data())[0];
    ok(Object.keys(grads).length === m.trainableWeights().length);
    tf.dispose([x, value, ...Object.values(grads)]);
    m.dispose();
    return v;
  };
  const w = await lossOn("wasm");
  const c = await lossOn("cpu");
  assertClose([w], [c], { atol: 1e-5, rtol: 1e-5, what: "wasm vs cpu loss" });
});

Deno.test("stochastic depth: per-window masks from the seed, timm's linear rates, training only", async () => {
  await tf.setBackend("cpu");
  // dropPath on a branch: every row is either zero or t/(1 − rate); same seed, same mask
  const t = tf.add(rand([400, 3, 2], 1), 1);
  const d = await tf.div(dropPath(t, 0.25, 7), t).data();
  const rows = Array.from({ length: 400 }, (_, i) => d.slice(i * 6, i * 6 + 6));
  for (const r of rows) {
    ok(r.every((v) => v === 0) || r.every((v) => Math.abs(v - 1 / 0.75) < 1e-6), `row ${Array.from(r)}`);
  }
  const dropped = rows.filter((r) => r[0] === 0).length;
  ok(dropped > 70 && dropped < 130, `dropped ${dropped} of 400 at rate 0.25`); // binomial mean 100, sd 8.7
  deepStrictEqual(await dropPath(t, 0.25, 7).data(), await dropPath(t, 0.25, 7).data());

  // the local extractor with every branch dropped is the identity; with rate 0 it is the plain block
  const blk = new LocalExtractor({ dim: 8, windowSize: 3 });
  blk.ensureBuilt([null, 9, 8]);
  const x = rand([6, 9, 8], 2);
  deepStrictEqual(await blk.call(x, { drop: { rate: 1 - 1e-12, seed: 3 } }).data(), await x.data());
  deepStrictEqual(await blk.call(x, { drop: { rate: 0, seed: 3 } }).data(), await blk.call(x).data());
  throws(() => blk.call(x, { drop: { rate: 1, seed: 3 } }), /drop rate must be in \[0, 1\)/);

  // model: rates rise linearly over the local blocks from 0; inference and dropPath 0 draw nothing
  const m = createMerba("merba-test", {
    dropPath: 0.3,
    stages: [
      { dim: 8, depth: 2, windowSize: 4, heads: 2 },
      { dim: 16, depth: 1, windowSize: 4, heads: 2 },
    ],
  });
  deepStrictEqual(m.dropRates, [[0, 0.15], [0.3]]);
  const tiny = createMerba("merba-tiny", { dropPath: 0.2 });
  deepStrictEqual(tiny.dropRates, [[0], [0.2]]);
  tiny.dispose();
  const plain = createMerba("merba-test", { stages: m.config.stages });
  const xs = rand([4, 16, 16, 3], 4);
  const fine = async (mm: MerbaModel, training: boolean, seed?: number) =>
    Array.from(await mm.apply(xs, { training, seed }).fine.data());
  deepStrictEqual(await fine(m, false), await fine(plain, false)); // same weights (same seed), no drop at inference
  // same seed, same masks (training-mode BatchNorm normalises with batch statistics, so the output repeats)
  deepStrictEqual(await fine(m, true, 5), await fine(m, true, 5));
  const [a5, a6, p5] = [await fine(m, true, 5), await fine(m, true, 6), await fine(plain, true, 5)];
  ok(a5.some((v, i) => v !== a6[i]), "a different seed draws different masks");
  ok(a5.some((v, i) => v !== p5[i]), "dropPath 0.3 changes the training forward");
  throws(
    () => createMerba("merba-test", { dropPath: 1 }),
    /config.dropPath must be a number in \[0, 1\), got 1/,
  );
  m.dispose();
  plain.dispose();
});

Deno.test("explain: the over-orders scan map is weighted as a softmax merge weights the orders", async () => {
  await tf.setBackend("cpu");
  const m = createMerba("merba-test", { seed: 3, scanScope: "mixer", merge: "softmax" });
  const x = rand([1, 16, 16, 3], 4);
  m.apply(x); // builds the weights
  const logits = m.namedWeights().find((w) =>
    w.name.endsWith("merge_logits") && w.name.includes("stages.1")
  )!;
  logits.variable.write(tf.tensor1d([2, 0, -1]));
  const e = m.explain(x, { scanBlocks: [{ stage: 1, block: 0 }] });
  const per = (await e.scan[0].perOrder.array()) as number[][][][];
  const got = (await e.scan[0].maps.array()) as number[][][];
  const w = await tf.softmax(tf.tensor1d([2, 0, -1])).data();
  let worst = 0;
  let plainGap = 0;
  for (let t = 0; t < 16; t++) {
    for (let s = 0; s < 16; s++) {
      const want = per.reduce((a, p, k) => a + w[k] * p[0][t][s], 0);
      const plain = per.reduce((a, p) => a + p[0][t][s] / 3, 0);
      worst = Math.max(worst, Math.abs(got[0][t][s] - want));
      plainGap = Math.max(plainGap, Math.abs(got[0][t][s] - plain));
    }
  }
  // relative to the maps' scale (channel-averaged α is small): float32 rounding of a 3-term sum, against a
  // plain mean that differs by percents (measured: 3e-11 against 1.5e-4 absolute)
  const scale = Math.max(...got[0].flat().map(Math.abs));
  ok(worst / scale < 1e-5, `weighted map off by ${worst} (scale ${scale})`);
  ok(plainGap / scale > 1e-2, `the plain mean differs by only ${plainGap} (scale ${scale})`);
  tf.dispose(e as never);
  m.dispose();
});

Deno.test("config: unknown fields, bad numbers and impossible shapes are refused when the model is made", async () => {
  await tf.setBackend("cpu");
  const bad = (o: Record<string, unknown>, re: RegExp) =>
    throws(() => createMerba("merba-test", o as never), re);
  // typos and fields of another level name the field, suggest the spelling, and list the fields
  bad({ scanset: "raster" }, /config: unknown field "scanset" \(did you mean "scanSet"\?\) \(fields: name, /);
  bad({ mixer: { dstate: 4 } }, /config\.mixer: unknown field "dstate" \(did you mean "dState"\?\)/);
  bad({ mixer: { linearInit: "torch" } }, /config\.mixer: unknown field "linearInit"/);
  bad(
    { "mixer.dState": 4 },
    /unknown field "mixer\.dState".*nested fields are set as objects, e\.g\. mixer=\{"dState": \.\.\.\}/,
  );
  bad({ stem: { channel: [8] } }, /config\.stem: unknown field "channel" \(fields: channels, strides\)/);
  bad(
    {
      stages: [{ dim: 8, depth: 1, windowSize: 4, heads: 2, head: 2 }, {
        dim: 16,
        depth: 1,
        windowSize: 4,
        heads: 2,
      }],
    },
    /config\.stages\[0\]: unknown field "head"/,
  );
  bad({ mixer: 5 }, /config\.mixer must be an object of mixer fields, got 5/);
  // numbers: finite, in range
  bad({ mlpRatio: Infinity }, /config\.mlpRatio must be a finite number > 0, got null/);
  bad({ coarseLossWeight: "1" }, /config\.coarseLossWeight must be a finite number >= 0, got "1"/);
  bad({ mixer: { dtMin: -1 } }, /config\.mixer\.dtMin must be a number > 0, got -1/);
  bad(
    { mixer: { dtMin: 0.1, dtMax: 0.01 } },
    /config\.mixer\.dtMax must be a number >= mixer\.dtMin \(0\.1\)/,
  );
  bad({ mixer: { dtRank: 0 } }, /config\.mixer\.dtRank must be a positive integer/);
  bad({ seed: 2 ** 32 }, /config\.seed must be an integer in \[0, 2\^32\)/);
  bad({ seed: -1 }, /config\.seed must be an integer in \[0, 2\^32\)/);
  // class hierarchies a coarse head cannot use
  bad(
    { classes: { fine: ["a", "b"], coarse: ["all"], fineToCoarse: [0, 0] } },
    /config\.classes\.coarse has 1 class: a coarse head needs at least 2 \(or set coarseHead: false\)/,
  );
  bad(
    { classes: { fine: ["a", "b"], coarse: ["x", "y", "z"], fineToCoarse: [0, 1] } },
    /config\.classes\.coarse\[2\] \("z"\) has no fine class mapped to it/,
  );
  // a window larger than its stage's map (merba-test: stage 1 maps 4x4)
  bad(
    {
      stages: [{ dim: 8, depth: 1, windowSize: 4, heads: 2 }, { dim: 16, depth: 1, windowSize: 8, heads: 2 }],
    },
    /config\.stages\[1\]\.windowSize \(8\) is larger than the stage's 4x4 feature map/,
  );
  // declared mixer fields work
  const m = createMerba("merba-test", { mixer: { dtRank: 2, dtMin: 1e-3, dtMax: 0.05 } });
  m.dispose();
  throws(
    () => registerMerbaVariant("bad-variant-x", "typo", { mlpratio: 2 } as never),
    /registerMerbaVariant\("bad-variant-x"\): config: unknown field "mlpratio"/,
  );
});

Deno.test("loadMerba: a damaged weights file, manifest or config names the file", async () => {
  await tf.setBackend("cpu");
  const dir = await Deno.makeTempDir({ prefix: "merba-io-" });
  try {
    const m = createMerba("merba-test", { seed: 5 });
    await saveMerba(m, dir);
    m.dispose();
    const bin = `${dir}/weights.bin`;
    const json = `${dir}/model.json`;
    const bytes = await Deno.readFile(bin);
    const manifest = await Deno.readTextFile(json);
    const rejects = async (re: RegExp) => {
      let err: unknown;
      try {
        (await loadMerba(dir)).dispose();
      } catch (e) {
        err = e;
      }
      ok(err instanceof ModelFileError, `expected a ModelFileError, got ${err}`);
      ok(re.test((err as Error).message), (err as Error).message);
    };
    await Deno.writeFile(bin, bytes.subarray(0, bytes.length - 8));
    await rejects(/weights\.bin: holds \d+ bytes but the manifest in model\.json describes \d+ \(truncated/);
    await Deno.writeFile(bin, new Uint8Array([...bytes, 0, 0, 0, 0]));
    await rejects(/weights\.bin: holds \d+ bytes but the manifest/);
    await Deno.writeFile(bin, bytes);
    await Deno.writeTextFile(json, manifest.replace('"dtype": "float32"', '"dtype": "int8"'));
    await rejects(/model\.json: weight ".*" has dtype int8; merba saves float32/);
    await Deno.writeTextFile(json, manifest.replace('"mlpRatio": ', '"mlpratio": '));
    await rejects(
      /model\.json: its merbaConfig is not a valid configuration: config: unknown field "mlpratio"/,
    );
    await Deno.writeTextFile(json, manifest);
    (await loadMerba(dir)).dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
