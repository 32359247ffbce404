/**
 * Device-resident constants and upload-free reductions (lib/ops/constants.ts): the cache's identity rules,
 * exact agreement of sumAxis/meanAxis with tf.sum/tf.mean (values and gradients, cpu and webgpu), and that a
 * merba-tiny training step on webgpu uploads nothing from the host but tfjs's own seed gradient.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { cachedScalar, cachedTensor1d, meanAxis, sumAxis } from "../../lib/ops/constants.ts";
import { createMerba } from "../../lib/models/merba.ts";
import { AdamW } from "../../lib/train/optimizer.ts";
import { gpu } from "../_util.ts";
import { watchActiveWebGPUDevice, webgpuErrorCount } from "../../lib/ops/webgpu_errors.ts";

const rnd = (n: number, seed: number) =>
  Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233));

Deno.test("cachedScalar / cachedTensor1d: one tensor per backend and value, kept through tidy, remade when disposed", async () => {
  await tf.setBackend("cpu");
  const a = cachedScalar(0.9);
  assert.equal(cachedScalar(0.9), a, "same value, same tensor");
  assert.notEqual(cachedScalar(0.9, "int32"), a, "the dtype is part of the key");
  assert.notEqual(cachedScalar(-0), cachedScalar(0), "−0 and 0 differ as factors");
  assert.ok(Object.is((await cachedScalar(-0).data())[0], -0));
  assert.equal((await a.data())[0], Math.fround(0.9));
  const inTidy = tf.tidy(() => {
    const t = cachedScalar(0.25);
    return tf.mul(tf.tensor1d([4, 8]), t);
  });
  assert.deepEqual(Array.from(await inTidy.data()), [1, 2]);
  assert.ok(!cachedScalar(0.25).isDisposed, "a constant made inside tidy outlives it");
  cachedScalar(3);
  cachedScalar(4);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) tf.dispose(tf.tidy(() => tf.add(cachedScalar(3), cachedScalar(4))));
  assert.equal(tf.memory().numTensors, before, "reusing constants makes no tensors");
  a.dispose();
  const b = cachedScalar(0.9);
  assert.ok(!b.isDisposed && b !== a, "a disposed entry is remade");
  const m = cachedTensor1d([0, 0, 1, 1, 2], "int32");
  assert.equal(cachedTensor1d(Int32Array.from([0, 0, 1, 1, 2]), "int32"), m, "same content, same tensor");
  assert.notEqual(cachedTensor1d([0, 0, 1, 1, 3], "int32"), m);
  assert.equal(m.dtype, "int32");
  assert.deepEqual(Array.from(await m.data()), [0, 0, 1, 1, 2]);
  tf.dispose(inTidy);
  if (gpu) {
    await tf.setBackend("webgpu");
    const g = cachedScalar(0.9);
    assert.notEqual(g, b, "each backend has its own copy");
    assert.equal(cachedScalar(0.9), g);
    assert.equal((await g.data())[0], Math.fround(0.9));
    await tf.setBackend("cpu");
  }
});

async function reductions(backend: string) {
  await tf.setBackend(backend);
  const shape = [3, 5, 4];
  const x = tf.tensor(rnd(60, 1), shape);
  const out: Record<string, Float32Array> = {};
  for (const axis of [0, 1, -1, null]) {
    for (const [name, ours, theirs] of [["sum", sumAxis, tf.sum], ["mean", meanAxis, tf.mean]] as const) {
      const a = ours(x, axis);
      const b = theirs(x, axis ?? undefined);
      assert.deepEqual(a.shape, b.shape, `${name} ${axis} shape`);
      const w = tf.tensor(rnd(b.size, 2), b.shape); // a weighted sum, so every dy differs
      const ga = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(ours(t, axis), w)))(x);
      const gb = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(theirs(t, axis ?? undefined), w)))(x);
      out[`${name} ${axis}`] = await a.data() as Float32Array;
      out[`${name} ${axis} tfjs`] = await b.data() as Float32Array;
      out[`d${name} ${axis}`] = await ga.data() as Float32Array;
      out[`d${name} ${axis} tfjs`] = await gb.data() as Float32Array;
      tf.dispose([a, b, w, ga, gb]);
    }
  }
  assert.throws(() => sumAxis(x, 3), /axis 3 outside a rank-3 tensor/);
  x.dispose();
  await tf.setBackend("cpu");
  return out;
}

Deno.test("sumAxis / meanAxis equal tf.sum / tf.mean bit for bit, value and gradient (cpu)", async () => {
  const r = await reductions("cpu");
  for (const k of Object.keys(r).filter((k) => !k.endsWith("tfjs"))) {
    assert.deepEqual(r[k], r[`${k} tfjs`], k);
  }
});

Deno.test({
  name: "sumAxis / meanAxis on webgpu: tf.sum / tf.mean's values and gradients bit for bit",
  ignore: !gpu,
  async fn() {
    const r = await reductions("webgpu");
    for (const k of Object.keys(r).filter((k) => !k.endsWith("tfjs"))) {
      assert.deepEqual(r[k], r[`${k} tfjs`], k);
    }
  },
});

/** Counts host-to-GPU uploads (tfjs-backend-webgpu 4.22's `uploadToGPU` of a tensor still held on the host). */
function countUploads(): { stop: () => Array<{ shape: number[]; dtype: string }> } {
  // deno-lint-ignore no-explicit-any
  const be = tf.backend() as any;
  const orig = be.uploadToGPU;
  const seen: Array<{ shape: number[]; dtype: string }> = [];
  // deno-lint-ignore no-explicit-any
  be.uploadToGPU = function (dataId: any) {
    const d = be.tensorMap.get(dataId);
    if (d && d.values != null && !d.resource) seen.push({ shape: [...d.shape], dtype: d.dtype });
    return orig.call(be, dataId);
  };
  return {
    stop: () => {
      be.uploadToGPU = orig;
      return seen;
    },
  };
}

Deno.test({
  name: "a merba-tiny training step on webgpu uploads only tfjs's seed gradient (was ≈ 25 tensors)",
  ignore: !gpu,
  async fn() {
    await tf.setBackend("webgpu");
    watchActiveWebGPUDevice();
    const errors = webgpuErrorCount();
    const model = createMerba("merba-tiny", { seed: 3 });
    const groups = model.weightGroups();
    const vars = [...groups.decay, ...groups.noDecay];
    const opt = new AdamW(groups, { learningRate: 1e-3, weightDecay: 0.05 });
    const x = tf.tensor4d(rnd(2 * 28 * 28 * 3, 5), [2, 28, 28, 3]);
    const y = tf.tensor1d([0, 4], "int32");
    const step = async () => {
      const { value, grads } = tf.variableGrads(
        () => tf.tidy(() => model.loss(model.apply(x, { training: true }), y)),
        vars,
      );
      opt.step(grads);
      const v = (await value.data())[0];
      tf.dispose([value, ...Object.values(grads)]);
      return v;
    };
    // warm-up: weights, index tables and constants go up once (BatchNorm's moving statistics start on the host,
    // where tfjs runs their first small update, so two steps)
    await step();
    await step();
    const counter = countUploads();
    const loss = await step();
    const ups = counter.stop();
    assert.ok(Number.isFinite(loss));
    // the one left: tfjs's variableGrads seeds backprop with ones(loss.shape), made on the host
    assert.deepEqual(ups, [{ shape: [], dtype: "float32" }], `uploads in a step: ${JSON.stringify(ups)}`);
    assert.equal(webgpuErrorCount(), errors, "WebGPU reported errors (see the printed message)");
    tf.dispose([x, y]);
    model.dispose();
    await tf.setBackend("cpu");
  },
});
