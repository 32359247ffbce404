/**
 * The webgpu optimizer kernels (`lib/train/optimizer_webgpu.ts`): the grouped AdamW update (the moments of up
 * to six variables per dispatch) against the op path and the cpu host loop (itself bit-equal to the op path
 * and checked against a torch trace), the torch trace on webgpu, and the grouped sum of squares against a
 * float64 host sum.
 *
 * Tolerances: the update and the op path are both float32 in the same order; the GPU may contract a
 * multiply and an add into one fused multiply-add and WGSL allows 2.5 ulp for division (sqrt as
 * 1/inverseSqrt), so each step may differ by a few ulp (≈ 1e-7 relative); over 5 steps rtol 1e-5 with an atol
 * of 1e-7 (values of order 1) leaves room for that and nothing more. The sum of squares accumulates in
 * float32 (≈ 50 terms per invocation, then a tree of 256): relative error below (50 + 8)·6e-8 ≈ 3.5e-6 for
 * non-negative terms, so rtol 1e-5.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { AdamW, globalNorm } from "../../lib/train/optimizer.ts";
import { ADAMW_GROUP_MAX, adamwGroups, sumOfSquaresWebGPU } from "../../lib/train/optimizer_webgpu.ts";
import { assertClose, gpu, recordWebGPUPrograms } from "../_util.ts";
import { replayAdamWTorchTrace } from "./_fixtures.ts";

const rnd = (n: number, seed: number) =>
  Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) * 3);

/** Runs 5 AdamW steps (decay and noDecay groups, varying lr, gradScale 1 and 0.37) on `backend`. */
async function fiveSteps(backend: string, fused: boolean, prefix: string) {
  await tf.setBackend(backend);
  const shapes: Record<string, number[]> = { w: [3, 4], big: [70, 37], b: [5] };
  const vars = Object.fromEntries(
    Object.entries(shapes).map(([k, s], i) => [
      k,
      tf.variable(tf.tensor(rnd(s.reduce((a, b) => a * b, 1), i + 1), s), true, `${prefix}.${k}`),
    ]),
  );
  const opt = new AdamW({ decay: [vars.w, vars.big], noDecay: [vars.b] }, {
    learningRate: 0.01,
    weightDecay: 0.05,
    fused,
  });
  let before = 0;
  for (let s = 0; s < 5; s++) {
    // from the second step: the first may create the packed webgpu state (one tensor per variable)
    if (s === 1) before = tf.memory().numTensors;
    const grads = Object.fromEntries(
      Object.entries(shapes).map(([k, sh], i) => [
        `${prefix}.${k}`,
        tf.tensor(rnd(sh.reduce((a, b) => a * b, 1), 10 * (s + 1) + i), sh),
      ]),
    );
    opt.learningRate = 0.01 * (1 - s / 10);
    opt.step(grads, { gradScale: s % 2 === 0 ? 1 : 0.37 });
    tf.dispose(Object.values(grads));
  }
  const leaked = tf.memory().numTensors - before;
  const out: Record<string, Float32Array> = {};
  for (const [k, v] of Object.entries(vars)) out[k] = (await v.data()) as Float32Array;
  const state = await opt.getState();
  opt.dispose();
  tf.dispose(Object.values(vars));
  await tf.setBackend("cpu");
  return { out, state, leaked };
}

Deno.test({
  name:
    "AdamW on webgpu (grouped moments, one parameter dispatch per variable) equals the op path and the cpu host loop to float32 rounding",
  ignore: !gpu,
  async fn() {
    const fusedGpu = await fiveSteps("webgpu", true, "fg");
    const opsGpu = await fiveSteps("webgpu", false, "og");
    const cpu = await fiveSteps("cpu", true, "c");
    assert.equal(fusedGpu.leaked, 0, "fused webgpu update left tensors behind");
    for (const k of ["w", "big", "b"]) {
      assertClose(fusedGpu.out[k], opsGpu.out[k], { atol: 1e-7, rtol: 1e-5, what: `${k} vs webgpu op path` });
      assertClose(fusedGpu.out[k], cpu.out[k], { atol: 1e-7, rtol: 1e-5, what: `${k} vs cpu host loop` });
    }
    fusedGpu.state.m.forEach((m, i) => {
      assertClose(m, cpu.state.m[i], { atol: 1e-7, rtol: 1e-5, what: `m[${i}]` });
      assertClose(fusedGpu.state.v[i], cpu.state.v[i], { atol: 1e-7, rtol: 1e-5, what: `v[${i}]` });
    });
    assert.equal(fusedGpu.state.step, 5);
  },
});

Deno.test({
  name:
    "AdamW on webgpu: one moments program per group of 6 variables + one per variable, no uploads; globalNorm in one program per 16 gradients",
  ignore: !gpu,
  async fn() {
    await tf.setBackend("webgpu");
    const be = tf.backend() as unknown as WebGPUBackend;
    // everything resident on the GPU before counting (a host tensor is uploaded on its first GPU use)
    const onGpu = (x: Float32Array) => tf.tidy(() => tf.add(tf.tensor1d(x), 0));
    const vars = Array.from({ length: 20 }, (_, i) => tf.variable(onGpu(rnd(8 + i, i)), true, `p${i}`));
    const opt = new AdamW({ decay: vars.slice(0, 10), noDecay: vars.slice(10) }, { learningRate: 1e-3 });
    const grads = Object.fromEntries(vars.map((v, i) => [v.name, onGpu(rnd(8 + i, 50 + i))]));
    opt.step(grads); // first step: packs the zero moments (made on the host for small sizes) on the GPU
    // host-to-GPU uploads: tfjs calls uploadToGPU for every program input and uploads those whose data is
    // still on the host (no GPU resource yet), as scalar operands of the op path are
    const up = be as unknown as {
      uploadToGPU(id: unknown): void;
      tensorMap: { get(id: unknown): { resource: unknown; values: unknown } };
    };
    const origUpload = up.uploadToGPU.bind(be);
    let uploads = 0;
    up.uploadToGPU = (id: unknown) => {
      const d = up.tensorMap.get(id);
      if (d.resource == null && d.values != null) uploads++;
      origUpload(id);
    };
    try {
      const step = recordWebGPUPrograms(() => opt.step(grads, { gradScale: 0.5 })).keys;
      const limit = be.device.limits.maxStorageBuffersPerShaderStage;
      const perGroup = Math.min(ADAMW_GROUP_MAX, limit - 2);
      const moments = step.filter((n) => n.startsWith("merba_adamw_moments_"));
      assert.equal(
        moments.length,
        Math.ceil(vars.length / perGroup),
        `programs per step: ${step.join(", ")}`,
      );
      assert.equal(step.filter((n) => n === "merba_adamw_param").length, vars.length, step.join(", "));
      assert.equal(step.length, moments.length + vars.length, step.join(", "));
      const { result: norm, keys } = recordWebGPUPrograms(() => globalNorm(grads));
      const groups = Math.ceil(vars.length / Math.max(1, Math.min(16, limit - 1)));
      assert.equal(keys.filter((n) => n.startsWith("merba_sum_squares_")).length, groups, keys.join(", "));
      norm.dispose();
    } finally {
      up.uploadToGPU = origUpload;
    }
    assert.equal(uploads, 0, "host-to-GPU uploads during the step and the norm");
    opt.dispose();
    tf.dispose([...vars, ...Object.values(grads)]);
    await tf.setBackend("cpu");
  },
});

Deno.test({
  name:
    "AdamW on webgpu: the packed [m | v] state round-trips (getState, setState, unpack) and training continues",
  ignore: !gpu,
  async fn() {
    await tf.setBackend("webgpu");
    const mk = (p: string) => [
      tf.variable(tf.tensor2d(rnd(12, 1), [3, 4]), true, `${p}.w`),
      tf.variable(tf.tensor1d(rnd(5, 2)), true, `${p}.b`),
    ];
    const grads = (p: string, s: number) => ({
      [`${p}.w`]: tf.tensor2d(rnd(12, 30 + s), [3, 4]),
      [`${p}.b`]: tf.tensor1d(rnd(5, 40 + s)),
    });
    const run = async (p: string, interrupt: (o: AdamW) => Promise<void> | void) => {
      const [w, b] = mk(p);
      const o = new AdamW({ decay: [w], noDecay: [b] }, { learningRate: 0.01 });
      for (let s = 0; s < 4; s++) {
        if (s === 2) await interrupt(o);
        const g = grads(p, s);
        o.step(g);
        tf.dispose(Object.values(g));
      }
      const out = { w: await w.data(), b: await b.data(), state: await o.getState() };
      o.dispose();
      tf.dispose([w, b]);
      return out;
    };
    const plain = await run("plain", () => {});
    // setState with the state read back: identical continuation
    const viaState = await run("state", async (o) => o.setState(await o.getState()));
    // moving the packed state into m/v (what a non-webgpu path does first), then packing again
    const viaUnpack = await run("unpack", (o) => (o as unknown as { unpack(): void }).unpack());
    for (const other of [viaState, viaUnpack]) {
      assert.deepEqual(other.w, plain.w);
      assert.deepEqual(other.b, plain.b);
      assert.deepEqual(other.state, plain.state);
    }
    assert.equal(plain.state.step, 4);
    assert.equal(plain.state.m[1].length, 5);
    await tf.setBackend("cpu");
  },
});

Deno.test("adamwGroups: consecutive groups of at most 6 (storage limit − 2), state within one dispatch", () => {
  const sizes = Array.from({ length: 14 }, (_, i) => i + 1);
  assert.deepEqual(adamwGroups(sizes, 8).map((g) => g.length), [6, 6, 2]);
  assert.deepEqual(adamwGroups(sizes, 8).flat(), sizes.map((_, i) => i), "every variable once, in order");
  assert.deepEqual(adamwGroups(sizes, 4).map((g) => g.length), [2, 2, 2, 2, 2, 2, 2]);
  assert.deepEqual(adamwGroups(sizes, 2).map((g) => g.length), Array(14).fill(1), "at least one per group");
  assert.deepEqual(adamwGroups(sizes, 64).map((g) => g.length), [6, 6, 2], "never more than 6");
  // a group's packed state (2·Σn floats) must fit one dispatch of 65535 workgroups of 64: 2,097,120 per member
  const big = 2_000_000;
  assert.deepEqual(adamwGroups([big, 10, big, 10], 8), [[0, 1], [2, 3]]);
  assert.deepEqual(adamwGroups([], 8), []);
});

Deno.test({
  name: "AdamW on webgpu: a variable without a gradient keeps its moments and value, in a group with others",
  ignore: !gpu,
  async fn() {
    // 8 variables (groups of 6 + 2); steps 2 and 4 leave out one member of each group, as a frozen weight
    const sizes = [3, 12, 5, 7, 1, 9, 4, 6];
    const run = async (backend: string, p: string) => {
      await tf.setBackend(backend);
      const vars = sizes.map((n, i) => tf.variable(tf.tensor1d(rnd(n, i + 1)), true, `${p}.${i}`));
      const opt = new AdamW({ decay: vars.slice(0, 4), noDecay: vars.slice(4) }, { learningRate: 0.01 });
      const states: Float32Array[][] = [];
      for (let s = 0; s < 5; s++) {
        const skip = s === 1 || s === 3 ? [2, 7] : [];
        const grads = Object.fromEntries(
          vars.filter((_, i) => !skip.includes(i)).map((
            v,
            i,
          ) => [v.name, tf.tensor1d(rnd(v.size, 20 * s + i))]),
        );
        opt.step(grads);
        tf.dispose(Object.values(grads));
        states.push((await opt.getState()).m);
      }
      const out = await Promise.all(vars.map((v) => v.data() as Promise<Float32Array>));
      opt.dispose();
      tf.dispose(vars);
      await tf.setBackend("cpu");
      return { out, states };
    };
    const g = await run("webgpu", "gs");
    const c = await run("cpu", "cs");
    g.out.forEach((o, i) => assertClose(o, c.out[i], { atol: 1e-7, rtol: 1e-5, what: `variable ${i}` }));
    for (const s of [1, 3]) {
      for (const i of [2, 7]) {
        assert.deepEqual(g.states[s][i], g.states[s - 1][i], `step ${s + 1}: m of variable ${i} unchanged`);
      }
      assert.notDeepEqual(g.states[s][3], g.states[s - 1][3], "the others moved");
    }
  },
});

Deno.test({
  name: "AdamW on webgpu reproduces the torch.optim.AdamW trace (fixture tolerance)",
  ignore: !gpu,
  async fn() {
    await tf.setBackend("webgpu");
    const r = await replayAdamWTorchTrace();
    // the fixture's tolerance (float32 both sides; op order differs), as in optimizer_test.ts
    assertClose(r.w, r.expected.w, { atol: 1e-6, rtol: 1e-5, what: "w (decay)" });
    assertClose(r.b, r.expected.b, { atol: 1e-6, rtol: 1e-5, what: "b (noDecay)" });
    await tf.setBackend("cpu");
  },
});

Deno.test({
  name: "sumOfSquaresWebGPU and globalNorm on webgpu equal a float64 host sum (1..40 tensors, mixed sizes)",
  ignore: !gpu,
  async fn() {
    await tf.setBackend("webgpu");
    for (const count of [1, 3, 16, 17, 40]) {
      const xs = Array.from({ length: count }, (_, i) => tf.tensor1d(rnd(1 + ((i * 977) % 3000), 200 + i)));
      let want = 0;
      for (const x of xs) for (const v of (await x.data()) as Float32Array) want += v * v;
      const before = tf.memory().numTensors;
      const s = sumOfSquaresWebGPU(xs);
      assert.deepEqual(s.shape, []);
      assertClose(await s.data(), [want], { atol: 0, rtol: 1e-5, what: `sum of squares of ${count}` });
      s.dispose();
      const n = globalNorm(Object.fromEntries(xs.map((x, i) => [`g${i}`, x])));
      assertClose(await n.data(), [Math.sqrt(want)], {
        atol: 0,
        rtol: 1e-5,
        what: `global norm of ${count}`,
      });
      n.dispose();
      assert.equal(tf.memory().numTensors, before, `leak with ${count} tensors`);
      tf.dispose(xs);
    }
    const z = sumOfSquaresWebGPU([]);
    assert.equal((await z.data())[0], 0);
    z.dispose();
    assert.throws(() => sumOfSquaresWebGPU([tf.tensor1d([1], "int32")]), /float32/);
    await tf.setBackend("cpu");
    assert.throws(() => sumOfSquaresWebGPU([tf.tensor1d([1])]), /not webgpu/);
  },
});
