/**
 * scanHiddenAttention: reconstructing y[t] = Σ_s α[t, s]·u[s] must give the selective scan's output
 * (without z; with D when D is put on the diagonal), on golden inputs, against the CPU kernel. Tolerance
 * atol 1e-5, rtol 1e-4: both accumulate in float64 and round to float32; the matMul y = α·u is float32.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { assertClose } from "../_util.ts";
import {
  hiddenAttentionLoops,
  hiddenAttentionOps,
  scanHiddenAttention,
} from "../../lib/ops/hidden_attention.ts";
import { selectiveScan } from "../../lib/ops/selective_scan.ts";
import { loadScanCase, toTensor } from "../fixtures/selective_scan/load.ts";

await tf.setBackend("cpu");

const RECONSTRUCT_CASES = ["small_full", "large_delta", "dstate1", "len1", "merba_window"];
for (const name of RECONSTRUCT_CASES) {
  for (const withD of [false, true]) {
    Deno.test(`scanHiddenAttention reconstructs the scan output: ${name}${withD ? " with D" : ""}`, async () => {
      const c = await loadScanCase(name);
      const i = c.inputs;
      const [u, delta, B, C] = [i.u, i.delta, i.B, i.C].map(toTensor) as tf.Tensor3D[];
      const A = toTensor(i.A) as tf.Tensor2D;
      const D = withD ? toTensor(i.D!) as tf.Tensor1D : undefined;
      const deltaBias = toTensor(i.delta_bias!) as tf.Tensor1D;
      const opts = { D, deltaBias, deltaSoftplus: i.delta_softplus };
      const before = tf.memory().numTensors;
      const alpha = scanHiddenAttention(u, delta, A, B, C, opts);
      assert.equal(tf.memory().numTensors, before + 1, "only alpha is left");
      const { b, d, l } = c.dims;
      assert.deepEqual(alpha.shape, [b, d, l, l]);
      const a = await alpha.data();
      // causal: α[t, s] = 0 for s > t
      for (let t = 0; t < l; t++) for (let s = t + 1; s < l; s++) assert.ok(a[t * l + s] === 0);
      // y[t] = Σ_s α[t, s] u[s]
      const y = tf.squeeze(tf.matMul(alpha, u.reshape([b, d, l, 1])), [3]);
      const out = selectiveScan(u, delta, A, B, C, opts) as tf.Tensor;
      assertClose(await y.data(), await out.data(), { atol: 1e-5, rtol: 1e-4, what: `${name} y from alpha` });
      tf.dispose([alpha, y, out, u, delta, B, C, A, deltaBias, ...(D ? [D] : [])]);
    });
  }
}

Deno.test("scanHiddenAttention: no NaN/Inf for fast decay and large Δ", async () => {
  const c = await loadScanCase("fast_decay");
  const i = c.inputs;
  const alpha = scanHiddenAttention(
    null,
    toTensor(i.delta) as tf.Tensor3D,
    tf.mul(toTensor(i.A), 50) as tf.Tensor2D,
    toTensor(i.B) as tf.Tensor3D,
    toTensor(i.C) as tf.Tensor3D,
    { deltaBias: tf.fill([c.dims.d], 30) as tf.Tensor1D, deltaSoftplus: true },
  );
  for (const v of await alpha.data()) assert.ok(Number.isFinite(v));
  alpha.dispose();
});

Deno.test("scanHiddenAttention: wrong shapes throw TypeError naming the argument", () => {
  const delta = tf.zeros([1, 2, 3]) as tf.Tensor3D;
  assert.throws(
    () =>
      scanHiddenAttention(
        null,
        delta,
        tf.zeros([2, 4]) as tf.Tensor2D,
        tf.zeros([1, 5, 3]) as tf.Tensor3D,
        tf.zeros([1, 4, 3]) as tf.Tensor3D,
      ),
    (e: unknown) => e instanceof TypeError && /'B'.*\[b, n, l\] = \[1, 4, 3\]/.test(e.message),
  );
});

for (const name of ["small_full", "large_delta", "fast_decay"]) {
  Deno.test(`scanHiddenAttention: the tfjs-ops form (other backends) equals the cpu loops: ${name}`, async () => {
    const c = await loadScanCase(name);
    const i = c.inputs;
    const [delta, B, C] = [i.delta, i.B, i.C].map(toTensor) as tf.Tensor3D[];
    const A = toTensor(i.A) as tf.Tensor2D;
    const opts = {
      D: toTensor(i.D!) as tf.Tensor1D,
      deltaBias: toTensor(i.delta_bias!) as tf.Tensor1D,
      deltaSoftplus: i.delta_softplus,
    };
    const loops = hiddenAttentionLoops(delta, A, B, C, opts);
    const ops = hiddenAttentionOps(delta, A, B, C, opts);
    // float32 prefix sums (ops) vs float64 (loops): the exponent A·(S[t] − S[s]) differs by ~|A|·l·Δ·6e-8
    assertClose(await ops.data(), await loops.data(), { atol: 2e-5, rtol: 1e-3, what: `${name} alpha` });
    tf.dispose([loops, ops, delta, B, C, A, opts.D, opts.deltaBias]);
  });
}
