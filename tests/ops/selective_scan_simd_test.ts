/**
 * The two loop implementations behind the cpu/wasm selective-scan kernels, each forced with
 * `setCpuScanImpl`: the WebAssembly SIMD kernels (float32, state size a multiple of 4) and the JavaScript loops
 * (float64 accumulation, any state size). Both against the mamba golden fixtures with the fixture tolerances
 * unchanged (forward rtol 1e-4, gradients rtol 1e-3, atol from the fixture), the G_last path against tfjs
 * autodiff of the reference, and SIMD against JS at merba-tiny's stage-1 size.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { assertClose } from "../_util.ts";
import { selectiveScan } from "../../lib/ops/selective_scan.ts";
import { selectiveScanRef } from "../../lib/ops/selective_scan_ref.ts";
import { getCpuScanImpl, setCpuScanImpl, simdScanAvailable } from "../../lib/ops/selective_scan_cpu.ts";
import { cpuKernelsInUse, describeCpuKernels } from "../../lib/backend.ts";
import { layerSimdOn, setCpuLayerImpl } from "../../lib/layers/layer_simd.ts";
import { loadScanCase, SCAN_CASES } from "../fixtures/selective_scan/load.ts";
import {
  caseTensors,
  checkFinite,
  checkGoldenCase,
  lossWithLastState,
  type ScanFn,
} from "../fixtures/selective_scan/check.ts";

await tf.setBackend("cpu");
const SIMD = simdScanAvailable();
const noSimd = "WebAssembly SIMD is not available in this runtime";

async function withImpl<T>(impl: "simd" | "js", f: () => T | Promise<T>): Promise<T> {
  const prev = setCpuScanImpl(impl);
  try {
    return await f();
  } finally {
    setCpuScanImpl(prev);
  }
}

Deno.test("setCpuScanImpl: default auto; unknown names and SIMD on n = 3 are clear errors", async () => {
  await tf.setBackend("cpu");
  assert.equal(getCpuScanImpl(), "auto");
  assert.throws(() => setCpuScanImpl("fast" as never), /expected "auto", "simd" or "js", got "fast"/);
  if (!SIMD) return;
  const c = await loadScanCase("small_full"); // n = 3
  const a = caseTensors(c);
  await withImpl("simd", () => {
    assert.throws(
      () =>
        selectiveScan(
          a.u as tf.Tensor3D,
          a.delta as tf.Tensor3D,
          a.A as tf.Tensor2D,
          a.B as tf.Tensor3D,
          a.C as tf.Tensor3D,
        ),
      /SIMD kernel needs a state size that is a multiple of 4, got n = 3/,
    );
  });
  tf.dispose(Object.values(a).filter((x): x is tf.Tensor => x != null));
});

for (const name of SCAN_CASES) {
  Deno.test(`selectiveScan cpu, JavaScript loops matches mamba golden: ${name} (fixture tolerances)`, async () => {
    await tf.setBackend("cpu");
    await withImpl("js", async () => await checkGoldenCase(await loadScanCase(name)));
  });
}

for (const name of ["fast_decay", "large_delta", "long_seq", "merba_window"]) {
  Deno.test({
    name: `selectiveScan cpu, WebAssembly SIMD kernel matches mamba golden: ${name} (fixture tolerances)`,
    ignore: !SIMD,
    fn: async () => {
      await tf.setBackend("cpu");
      const c = await loadScanCase(name);
      assert.equal(c.dims.n % 4, 0, "SIMD cases have n % 4 == 0");
      await withImpl("simd", async () => await checkGoldenCase(c));
    },
  });
}

Deno.test({
  name:
    "selectiveScan cpu, SIMD kernel: gradient with G_last matches tfjs autodiff of the reference (long_seq)",
  ignore: !SIMD,
  fn: async () => {
    await tf.setBackend("cpu");
    const c = await loadScanCase("long_seq");
    const args = caseTensors(c);
    const { b, d, n } = c.dims;
    const W = tf.randomNormal([b, d, n], 0, 1, "float32", 7);
    const mine = await withImpl("simd", () => lossWithLastState(selectiveScan, c, args, W));
    const ref = await lossWithLastState(selectiveScanRef as ScanFn, c, args, W);
    // same bound as the JS kernel's version of this test: the fixture's gradient tolerances (rtol 1e-3,
    // atol ≤ 1e-3) bound either side's distance to torch
    mine.forEach((g, i) => assertClose(g, ref[i], { atol: 1e-4, rtol: 1e-3, what: `long_seq grad ${i}` }));
    tf.dispose([W, ...Object.values(args).filter((x): x is tf.Tensor => x != null)]);
  },
});

Deno.test({
  name: "selectiveScan cpu: SIMD and JavaScript loops agree at merba-tiny's stage-1 size (all options on)",
  ignore: !SIMD,
  fn: async () => {
    await tf.setBackend("cpu");
    // 3 scan orders × batch 8 × 4 windows, 16 channels, 7×7 tokens, state 8
    const [b, d, l, n] = [96, 16, 49, 8];
    const r = (shape: number[], seed: number, s = 1) =>
      tf.mul(tf.randomNormal(shape, 0, 1, "float32", seed), s);
    const u = r([b, d, l], 1) as tf.Tensor3D;
    const delta = r([b, d, l], 2) as tf.Tensor3D;
    const A = tf.neg(tf.exp(r([d, n], 3, 0.5))) as tf.Tensor2D;
    const B = r([b, n, l], 4) as tf.Tensor3D;
    const C = r([b, n, l], 5) as tf.Tensor3D;
    const D = r([d], 6) as tf.Tensor1D;
    const z = r([b, d, l], 7, 2) as tf.Tensor3D;
    const deltaBias = r([d], 8) as tf.Tensor1D;
    const G = r([b, d, l], 9);
    const W = r([b, d, n], 10);
    const run = async () => {
      const gs = tf.grads(
        (
          uu: tf.Tensor,
          dd: tf.Tensor,
          aa: tf.Tensor,
          bb: tf.Tensor,
          cc: tf.Tensor,
          DD: tf.Tensor,
          zz: tf.Tensor,
          bias: tf.Tensor,
        ) => {
          const { out, lastState } = selectiveScan(
            uu as tf.Tensor3D,
            dd as tf.Tensor3D,
            aa as tf.Tensor2D,
            bb as tf.Tensor3D,
            cc as tf.Tensor3D,
            {
              D: DD as tf.Tensor1D,
              z: zz as tf.Tensor3D,
              deltaBias: bias as tf.Tensor1D,
              deltaSoftplus: true,
              returnLastState: true,
            },
          ) as { out: tf.Tensor; lastState: tf.Tensor };
          return tf.add(tf.sum(tf.mul(out, G)), tf.sum(tf.mul(lastState, W)));
        },
      )([u, delta, A, B, C, D, z, deltaBias]);
      const { out, lastState } = selectiveScan(u, delta, A, B, C, {
        D,
        z,
        deltaBias,
        deltaSoftplus: true,
        returnLastState: true,
      }) as { out: tf.Tensor; lastState: tf.Tensor };
      const res = await Promise.all([out, lastState, ...gs].map((t) => t.data() as Promise<Float32Array>));
      tf.dispose([out, lastState, ...gs]);
      return res;
    };
    const simd = await withImpl("simd", run);
    const js = await withImpl("js", run);
    const names = ["out", "lastState", "du", "ddelta", "dA", "dB", "dC", "dD", "dz", "dbias"];
    // float32 state and sums (SIMD) vs float64 (JS) over 49 steps and ≤ 96·49 summed terms: the fixture
    // tolerances (forward rtol 1e-4, gradients rtol 1e-3) with atol scaled to these O(1)–O(100) values
    simd.forEach((v, i) =>
      assertClose(v, js[i], {
        atol: i < 2 ? 1e-4 : 1e-3,
        rtol: i < 2 ? 1e-4 : 1e-3,
        what: names[i],
      })
    );
    tf.dispose([u, delta, A, B, C, D, z, deltaBias, G, W]);
  },
});

Deno.test({
  name:
    "selectiveScan cpu, SIMD kernel: no NaN/Inf on extreme inputs; a NaN input gives NaN, not a silent number",
  ignore: !SIMD,
  fn: async () => {
    await tf.setBackend("cpu");
    await withImpl("simd", async () => {
      await checkFinite(selectiveScan);
      const [b, d, l, n] = [1, 2, 6, 4];
      const delta = tf.buffer([b, d, l], "float32");
      delta.set(NaN, 0, 0, 2);
      const out = selectiveScan(
        tf.ones([b, d, l]) as tf.Tensor3D,
        delta.toTensor() as tf.Tensor3D,
        tf.fill([d, n], -1) as tf.Tensor2D,
        tf.ones([b, n, l]) as tf.Tensor3D,
        tf.ones([b, n, l]) as tf.Tensor3D,
        { deltaSoftplus: true },
      ) as tf.Tensor;
      const v = await out.data();
      assert.ok(Number.isFinite(v[0]) && Number.isFinite(v[1]), "steps before the NaN are finite");
      assert.ok(
        Number.isNaN(v[2]) && Number.isNaN(v[5]),
        "the NaN step and later steps of that lane are NaN",
      );
      assert.ok([...v.slice(l)].every(Number.isFinite), "the other channel is untouched");
      out.dispose();
    });
  },
});

Deno.test({
  name: "selectiveScan cpu, SIMD kernel: a small call after a large one (memory reused) is still exact",
  ignore: !SIMD,
  fn: async () => {
    await tf.setBackend("cpu");
    await withImpl("simd", async () => {
      await checkGoldenCase(await loadScanCase("merba_window"));
      await checkGoldenCase(await loadScanCase("fast_decay"));
    });
  },
});

if (!SIMD) console.warn(`selective_scan_simd_test: SIMD tests ignored (${noSimd})`);

Deno.test("cpuKernelsInUse names the scan and layer loops in use on cpu", async () => {
  await tf.setBackend("cpu");
  const k = cpuKernelsInUse();
  assert.ok(k);
  assert.equal(k.scan, SIMD ? "simd" : "js");
  assert.match(k.matmul, /^(xnnpack|js)$/);
  assert.equal(k.layers, layerSimdOn() ? "simd" : "js");
  assert.equal(describeCpuKernels(k), `scan ${k.scan}, layers ${k.layers}, matmul ${k.matmul}`);
  await withImpl("js", () => assert.equal(cpuKernelsInUse()?.scan, "js"));
  const prev = setCpuLayerImpl("js");
  try {
    assert.equal(cpuKernelsInUse()?.layers, "js");
  } finally {
    setCpuLayerImpl(prev);
  }
});
