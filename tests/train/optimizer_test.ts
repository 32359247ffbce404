import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { AdamW, clipByGlobalNorm, globalNorm } from "../../lib/train/optimizer.ts";
import { assertClose } from "../_util.ts";
import { replayAdamWTorchTrace } from "./_fixtures.ts";

await tf.setBackend("cpu");

/** Float64 AdamW (PyTorch update order) for one tensor, as the oracle. */
function adamwRef(
  theta: number[],
  grads: number[][],
  lrs: number[],
  wd: number,
  b1 = 0.9,
  b2 = 0.999,
  eps = 1e-8,
) {
  const p = theta.slice();
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  grads.forEach((g, s) => {
    const t = s + 1;
    const lr = lrs[s];
    for (let i = 0; i < p.length; i++) {
      p[i] *= 1 - lr * wd;
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const mh = m[i] / (1 - b1 ** t);
      const vh = v[i] / (1 - b2 ** t);
      p[i] -= (lr * mh) / (Math.sqrt(vh) + eps);
    }
  });
  return p;
}

Deno.test("AdamW matches a float64 reference; noDecay group gets no decay", () => {
  const w0 = [0.5, -1.25, 2, 0.03];
  const b0 = [0.7, -0.2];
  const w = tf.variable(tf.tensor1d(w0));
  const b = tf.variable(tf.tensor1d(b0));
  const before = tf.memory().numTensors;
  const opt = new AdamW({ decay: [w], noDecay: [b] }, { weightDecay: 0.1 });
  const gw: number[][] = [];
  const gb: number[][] = [];
  const lrs = [0.01, 0.02, 0.05, 0.03, 0.01];
  for (let s = 0; s < lrs.length; s++) {
    // fixed, sign-varying gradients (independent of θ so the oracle needs no autodiff)
    gw.push(w0.map((_, i) => Math.sin(1.3 * s + i) * (i + 1)));
    gb.push(b0.map((_, i) => Math.cos(0.7 * s - i) * 0.1));
    opt.learningRate = lrs[s];
    const grads = { [w.name]: tf.tensor1d(gw[s]), [b.name]: tf.tensor1d(gb[s]) };
    opt.step(grads);
    tf.dispose(Object.values(grads));
  }
  // float32 vs float64 over 5 steps: each step's update is ~lr and rounding is ~1e-7 relative.
  assertClose(w.dataSync(), adamwRef(w0, gw, lrs, 0.1), { atol: 1e-6, rtol: 1e-5, what: "decay group" });
  assertClose(b.dataSync(), adamwRef(b0, gb, lrs, 0), { atol: 1e-6, rtol: 1e-5, what: "noDecay group" });
  // decay really matters: with wd the decay-group result differs from plain Adam
  const noWd = adamwRef(w0, gw, lrs, 0);
  assert.ok(Math.abs(w.dataSync()[2] - noWd[2]) > 1e-3);
  assert.equal(opt.stepCount, 5);
  opt.dispose();
  assert.equal(tf.memory().numTensors, before, "no leaked tensors");
  tf.dispose([w, b]);
});

Deno.test("AdamW state round trip continues identically", async () => {
  const mk = () => tf.variable(tf.tensor2d([[1, 2], [3, 4]]));
  const a = mk(), c = mk();
  const oa = new AdamW({ decay: [a], noDecay: [] }, { learningRate: 0.1 });
  const oc = new AdamW({ decay: [c], noDecay: [] }, { learningRate: 0.1 });
  const g = (v: tf.Variable, s: number) => ({ [v.name]: tf.fill([2, 2], s + 0.5) });
  for (let s = 0; s < 3; s++) {
    const ga = g(a, s);
    oa.step(ga);
    tf.dispose(Object.values(ga));
  }
  oc.setState(await oa.getState());
  c.assign(a);
  for (let s = 3; s < 5; s++) {
    const ga = g(a, s), gc = g(c, s);
    oa.step(ga);
    oc.step(gc);
    tf.dispose([...Object.values(ga), ...Object.values(gc)]);
  }
  assert.deepEqual(a.dataSync(), c.dataSync());
  assert.throws(() => oc.setState({ step: 1, m: [], v: [] }), TypeError);
  oa.dispose();
  oc.dispose();
  tf.dispose([a, c]);
});

Deno.test("AdamW rejects bad hyper-parameters and overlapping groups", () => {
  const v = tf.variable(tf.scalar(1));
  assert.throws(() => new AdamW({ decay: [v], noDecay: [v] }), /both the decay and the noDecay/);
  assert.throws(() => new AdamW({ decay: [v], noDecay: [] }, { beta1: 1 }), /beta1/);
  assert.throws(() => new AdamW({ decay: [v], noDecay: [] }, { learningRate: NaN }), /learningRate/);
  v.dispose();
});

Deno.test("globalNorm and clipByGlobalNorm", () => {
  const g = { a: tf.tensor1d([3, 0]), b: tf.tensor1d([4]) };
  const n = globalNorm(g);
  assert.equal(n.dataSync()[0], 5);
  const c = clipByGlobalNorm(g, 5, 1);
  assertClose([...c.a.dataSync(), ...c.b.dataSync()], [0.6, 0, 0.8], { atol: 1e-6, rtol: 0 });
  tf.dispose([n, ...Object.values(g), ...Object.values(c)]);
});

Deno.test("AdamW reproduces a torch.optim.AdamW trace (two groups, per-step lr)", async () => {
  const r = await replayAdamWTorchTrace();
  // tolerance from the fixture's provenance (float32 both sides; op order differs)
  assertClose(r.w, r.expected.w, { atol: 1e-6, rtol: 1e-5, what: "w (decay)" });
  assertClose(r.b, r.expected.b, { atol: 1e-6, rtol: 1e-5, what: "b (noDecay)" });
});

Deno.test("cpu host-loop update equals the op path bit for bit (decay, no decay, gradScale, 5 steps)", async () => {
  const rnd = (n: number, seed: number) =>
    Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) * 3);
  const make = (p: string) => ({
    w: tf.variable(tf.tensor2d(rnd(12, 1), [3, 4]), true, `${p}.w`),
    b: tf.variable(tf.tensor1d(rnd(4, 2)), true, `${p}.b`),
  });
  const fused = make("hostloop");
  const ops = make("ops");
  const oF = new AdamW({ decay: [fused.w], noDecay: [fused.b] }, { learningRate: 0.01, weightDecay: 0.05 });
  const oO = new AdamW({ decay: [ops.w], noDecay: [ops.b] }, {
    learningRate: 0.01,
    weightDecay: 0.05,
    fused: false,
  });
  assert.equal(oF.fused, true);
  assert.equal(oO.fused, false);
  for (let s = 0; s < 5; s++) {
    const g = { w: tf.tensor2d(rnd(12, 10 + s), [3, 4]), b: tf.tensor1d(rnd(4, 20 + s)) };
    const lr = 0.01 * (1 - s / 10);
    oF.learningRate = lr;
    oO.learningRate = lr;
    const gradScale = s % 2 === 0 ? 1 : 0.37;
    oF.step({ "hostloop.w": g.w, "hostloop.b": g.b }, { gradScale });
    oO.step({ "ops.w": g.w, "ops.b": g.b }, { gradScale });
    tf.dispose(Object.values(g));
  }
  assert.deepEqual(await fused.w.data(), await ops.w.data());
  assert.deepEqual(await fused.b.data(), await ops.b.data());
  const [sF, sO] = [await oF.getState(), await oO.getState()];
  assert.deepEqual(sF, sO);
  assert.throws(() => oF.step({}, { gradScale: Number.NaN }), /gradScale/);
  oF.dispose();
  oO.dispose();
  tf.dispose([fused.w, fused.b, ops.w, ops.b]);
});

Deno.test("globalNorm: the cpu host sum gives the exact norm", () => {
  const g = { a: tf.tensor2d([[1, -2], [3, 0.5]]), b: tf.tensor1d([4, -1e-3]) };
  const n = globalNorm(g);
  const want = Math.sqrt(1 + 4 + 9 + 0.25 + 16 + 1e-6);
  assertClose(n.dataSync(), [want], { atol: 0, rtol: 1e-7 });
  tf.dispose([n, ...Object.values(g)]);
});
