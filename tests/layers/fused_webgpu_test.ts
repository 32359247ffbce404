/**
 * The WGSL LayerNorm and GELU kernels (`lib/layers/fused_webgpu.ts`) against the tfjs-op forms on webgpu and the
 * cpu kernels: values and all gradients, dispatch counts, no leaks.
 *
 * Tolerances: every path is float32 with different summation orders — per row over c ≤ 64 channels for the
 * statistics and `dx`, over up to 196 rows for `dγ`/`dβ` — so values of order 1 agree to ≈ 1e-6 relative and
 * the row sums (order 10) to ≈ 1e-5; atol 2e-5 with rtol 1e-4 covers that and nothing coarser. GELU against a
 * float64 reference: atol 1e-6, rtol 1e-5 (a few ulp). GELU against the cpu kernel and tfjs's ops: atol 3e-6 —
 * those compute `1 − t²` with `t = tanh(u)` rounded to float32, so one ulp of t (6e-8) near ±1 becomes up to
 * 1.2e-7 in `1 − t²`, times `½·|x|·√(2/π)·(1 + 0.134·x²)·|dy|` ≈ 21 at |x| = 6, |dy| ≤ 1.5: 2.5e-6.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { fusedGelu, fusedLayerNorm } from "../../lib/layers/fused.ts";
import { layerNormWebGPU, setWebGPULayerImpl, webgpuLayersFor } from "../../lib/layers/fused_webgpu.ts";
import { assertClose, gpu, recordWebGPUPrograms } from "../_util.ts";
import { watchActiveWebGPUDevice, webgpuErrorCount } from "../../lib/ops/webgpu_errors.ts";

const rnd = (n: number, seed: number, scale = 1, offset = 0) =>
  Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) * scale + offset);

/** y and the gradients of Σ y·w with respect to every input, on `backend` with the given webgpu impl. */
async function layerNormRun(backend: string, impl: "wgsl" | "ops", shape: number[], seed: number) {
  await tf.setBackend(backend);
  if (backend === "webgpu") watchActiveWebGPUDevice();
  const errors = webgpuErrorCount();
  const prev = setWebGPULayerImpl(impl);
  const c = shape[shape.length - 1];
  const size = shape.reduce((a, b) => a * b, 1);
  const x = tf.tensor(rnd(size, seed, 2, 3), shape); // mean ≈ 3: the variance needs two passes
  const g = tf.tensor1d(rnd(c, seed + 1, 0.5, 1));
  const b = tf.tensor1d(rnd(c, seed + 2, 0.5));
  const w = tf.tensor(rnd(size, seed + 3), shape);
  const f = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(fusedLayerNorm(xx, gg, bb), w));
  const y = fusedLayerNorm(x, g, b);
  const [dx, dg, db] = tf.grads(f)([x, g, b]);
  const out = await Promise.all([y, dx, dg, db].map((t) => t.data() as Promise<Float32Array>));
  tf.dispose([x, g, b, w, y, dx, dg, db]);
  assert.equal(webgpuErrorCount(), errors, "WebGPU reported errors (see the printed message)");
  setWebGPULayerImpl(prev);
  await tf.setBackend("cpu");
  return out;
}

Deno.test({
  name: "LayerNorm on webgpu (WGSL) equals the tfjs-op form and the cpu kernels, value and gradients",
  ignore: !gpu,
  async fn() {
    for (const [shape, seed] of [[[2, 7, 16], 1], [[3, 5, 33], 2], [[4, 49, 64], 3], [[6, 12], 4]] as const) {
      const wgsl = await layerNormRun("webgpu", "wgsl", [...shape], seed);
      const ops = await layerNormRun("webgpu", "ops", [...shape], seed);
      const cpu = await layerNormRun("cpu", "wgsl", [...shape], seed);
      ["y", "dx", "dgamma", "dbeta"].forEach((what, i) => {
        assertClose(wgsl[i], ops[i], { atol: 2e-5, rtol: 1e-4, what: `${what} ${shape} vs webgpu ops` });
        assertClose(wgsl[i], cpu[i], { atol: 2e-5, rtol: 1e-4, what: `${what} ${shape} vs cpu` });
      });
    }
  },
});

Deno.test({
  name: "GELU on webgpu (WGSL) equals the tfjs-op form and the cpu kernel, finite for large inputs",
  ignore: !gpu,
  async fn() {
    const xs = Float32Array.from([...rnd(200, 5, 6), -40, -12, -3, -1e-3, 0, 1e-3, 3, 12, 40]);
    const run = async (backend: string, impl: "wgsl" | "ops") => {
      await tf.setBackend(backend);
      const prev = setWebGPULayerImpl(impl);
      const x = tf.tensor2d(xs, [1, xs.length]);
      const dyv = tf.tensor2d(rnd(xs.length, 9, 1, 0.5), [1, xs.length]);
      const y = fusedGelu(x);
      const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(fusedGelu(t), dyv)))(x);
      const out = [await y.data(), await dx.data()] as Float32Array[];
      tf.dispose([x, dyv, y, dx]);
      setWebGPULayerImpl(prev);
      await tf.setBackend("cpu");
      return out;
    };
    const wgsl = await run("webgpu", "wgsl");
    const ops = await run("webgpu", "ops");
    const cpu = await run("cpu", "wgsl");
    // float64 reference (x and dy as the float32 values used)
    const K = Math.sqrt(2 / Math.PI);
    const dys = Float32Array.from(rnd(xs.length, 9, 1, 0.5));
    const refY = Array.from(xs, (v) => 0.5 * v * (1 + Math.tanh(K * (v + 0.044715 * v ** 3))));
    const refDx = Array.from(xs, (v, i) => {
      const t = Math.tanh(K * (v + 0.044715 * v ** 3));
      return dys[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * K * (1 + 3 * 0.044715 * v * v));
    });
    for (const [i, what, ref] of [[0, "y", refY], [1, "dx", refDx]] as const) {
      assert.ok(wgsl[i].every(Number.isFinite), `${what} finite`);
      assertClose(wgsl[i], ref, { atol: 1e-6, rtol: 1e-5, what: `${what} vs float64` });
      assertClose(wgsl[i], cpu[i], { atol: 3e-6, rtol: 1e-5, what: `${what} vs cpu` });
      // tfjs's op form is not finite at ±40 (tanh's gradient); compare where it is
      const fin = [...ops[i].keys()].filter((k) => Number.isFinite(ops[i][k]));
      assertClose(fin.map((k) => wgsl[i][k]), fin.map((k) => ops[i][k]), {
        atol: 3e-6,
        rtol: 1e-5,
        what: `${what} vs webgpu ops`,
      });
    }
  },
});

Deno.test({
  name: "LayerNorm and GELU on webgpu: 1 + 4 and 1 + 1 dispatches, no tensors left behind",
  ignore: !gpu,
  async fn() {
    await tf.setBackend("webgpu");
    const x = tf.randomUniform([8, 49, 32], -2, 2, "float32", 1);
    const g = tf.randomUniform([32], 0.5, 1.5, "float32", 2);
    const b = tf.randomUniform([32], -1, 1, "float32", 3);
    const before = tf.memory().numTensors;
    const ln = recordWebGPUPrograms(() =>
      tf.grads((xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(layerNormWebGPU(xx, gg, bb)))([
        x,
        g,
        b,
      ])
    );
    assert.deepEqual(ln.keys.filter((k) => k.startsWith("merba_ln_")), [
      "merba_ln_forward",
      "merba_ln_stats",
      "merba_ln_dx",
      "merba_ln_dgamma",
      "merba_ln_dbeta",
    ]);
    tf.dispose(ln.result);
    const gelu = recordWebGPUPrograms(() => tf.grad((t: tf.Tensor) => tf.sum(fusedGelu(t)))(x));
    assert.deepEqual(gelu.keys.filter((k) => k.startsWith("merba_gelu")), ["merba_gelu", "merba_gelu_grad"]);
    gelu.result.dispose();
    assert.equal(tf.memory().numTensors, before, "tensors left behind");
    tf.dispose([x, g, b]);
    await tf.setBackend("cpu");
  },
});

Deno.test("setWebGPULayerImpl: bad choice rejected; the WGSL path only on webgpu", async () => {
  assert.throws(() => setWebGPULayerImpl("fast" as never), /expected "wgsl" or "ops"/);
  await tf.setBackend("cpu");
  assert.equal(webgpuLayersFor(10), false);
  assert.throws(() => layerNormWebGPU(tf.ones([2, 4]), tf.ones([4]), tf.zeros([4])), /active backend is cpu/);
});
