/**
 * The selective-scan op on the tfjs `webgpu` backend (WGSL kernels; Mesa llvmpipe in CI) against the mamba
 * golden fixtures, on both WebGPU paths: the sequential per-lane scan and the chunked associative scan
 * (forced with `webgpuPath`), plus the automatic choice. Skipped, with a printed reason, without an adapter.
 *
 * Tolerances: the fixture's per-tensor rtol unchanged and atol × 10, the margin the golden README allows for
 * a GPU kernel (WGSL `exp`/`log` are less accurate than the CPU's; the chunked path also reassociates the
 * products of decays).
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import assert from "node:assert/strict";
import { assertClose, gpu } from "../_util.ts";
import { selectiveScan } from "../../lib/ops/selective_scan.ts";
import { chunkedScanIsBetter, chunkLength, webgpuScanConfig } from "../../lib/ops/selective_scan_webgpu.ts";
import { loadScanCase, SCAN_CASES } from "../fixtures/selective_scan/load.ts";
import {
  caseTensors,
  checkFinite,
  checkGoldenCase,
  lossWithLastState,
} from "../fixtures/selective_scan/check.ts";

const GPU_ATOL_SCALE = 10;

for (const path of ["sequential", "chunked", "auto"] as const) {
  // "auto" picks chunked for long_seq and sequential for the others: two cases cover the choice
  const cases = path === "auto" ? ["long_seq", "small_full"] : SCAN_CASES;
  for (const name of cases) {
    Deno.test({
      name: `selectiveScan webgpu kernel (${path}) matches mamba golden: ${name} (fixture rtol, 10x atol)`,
      ignore: !gpu,
      fn: async () => {
        await tf.setBackend("webgpu");
        await checkGoldenCase(await loadScanCase(name), { webgpuPath: path, atolScale: GPU_ATOL_SCALE });
      },
    });
  }
}

for (const path of ["sequential", "chunked"] as const) {
  for (const name of ["small_full", "long_seq", "merba_window"]) {
    Deno.test({
      name: `selectiveScan webgpu kernel (${path}): gradient with G_last matches the cpu kernel: ${name}`,
      ignore: !gpu,
      fn: async () => {
        const c = await loadScanCase(name);
        const { b, d, n } = c.dims;
        await tf.setBackend("cpu");
        const W0 = tf.randomNormal([b, d, n], 0, 1, "float32", 11);
        const w = await W0.data();
        let args = caseTensors(c);
        const cpu = await lossWithLastState(selectiveScan, c, args, W0);
        tf.dispose([W0, ...Object.values(args).filter((x): x is tf.Tensor => x != null)]);
        await tf.setBackend("webgpu");
        args = caseTensors(c);
        const W = tf.tensor(w, [b, d, n]);
        const gpuGrads = await lossWithLastState(selectiveScan, c, args, W, path);
        // GPU float32 vs CPU float64 accumulation: the fixture's gradient rtol (1e-3) and its largest
        // gradient atol (1e-3, merba_window), which covers the 10x GPU margin of the smaller cases.
        gpuGrads.forEach((g, i) =>
          assertClose(g, cpu[i], { atol: 1e-3, rtol: 1e-3, what: `${name} grad ${i}` })
        );
        tf.dispose([W, ...Object.values(args).filter((x): x is tf.Tensor => x != null)]);
      },
    });
  }
  Deno.test({
    name: `selectiveScan webgpu kernel (${path}): no NaN/Inf for huge softplus inputs, very negative A`,
    ignore: !gpu,
    fn: async () => {
      await tf.setBackend("webgpu");
      await checkFinite(selectiveScan, path);
    },
  });
}

Deno.test({
  name: "selectiveScan webgpu: automatic path choice and chunk length",
  fn: () => {
    // MERba windows stay sequential; one long sequence with few lanes goes chunked
    assert.equal(chunkedScanIsBetter(512, 32, 49, 8), false);
    assert.equal(chunkedScanIsBetter(1, 64, 1024, 16), true);
    assert.equal(chunkedScanIsBetter(64, 64, 1024, 16), false);
    assert.equal(chunkLength(1024), 32);
    assert.equal(chunkLength(49), 8);
    assert.equal(chunkLength(1), 8);
  },
});

for (const path of ["sequential", "chunked"] as const) {
  Deno.test({
    name: `selectiveScan webgpu kernel (${path}): forward + backward leave no tensors or GPU buffers behind`,
    ignore: !gpu,
    fn: async () => {
      await tf.setBackend("webgpu");
      const c = await loadScanCase("small_full");
      const args = caseTensors(c);
      const W = tf.ones([c.dims.b, c.dims.d, c.dims.n]);
      await lossWithLastState(selectiveScan, c, args, W, path); // warm-up: pipelines, pools
      const m0 = tf.memory() as tf.MemoryInfo & { numDataBuffers: number };
      await lossWithLastState(selectiveScan, c, args, W, path);
      const m1 = tf.memory() as tf.MemoryInfo & { numDataBuffers: number };
      assert.equal(m1.numTensors, m0.numTensors, "tensors");
      assert.equal(m1.numDataBuffers, m0.numDataBuffers, "data buffers (kernel intermediates)");
      assert.equal(m1.numBytes, m0.numBytes, "bytes");
      tf.dispose([W, ...Object.values(args).filter((x): x is tf.Tensor => x != null)]);
    },
  });
}

for (const path of ["sequential", "chunked"] as const) {
  for (const name of ["small_full", "merba_window"]) {
    Deno.test({
      name:
        `selectiveScan webgpu kernel (${path}): backward in batch slices (small scratch cap) matches golden: ${name}`,
      ignore: !gpu,
      fn: async () => {
        await tf.setBackend("webgpu");
        const c = await loadScanCase(name);
        // cap the scratch to about 3 batch elements' worth, so the backward runs in several slices
        const { d, l, n } = c.dims;
        webgpuScanConfig.maxBufferBytes = 3 * d * (3 * l + 2 * n * l + 16 * (n + 2)) * 4;
        try {
          await checkGoldenCase(c, { webgpuPath: path, atolScale: GPU_ATOL_SCALE });
          const W = tf.randomNormal([c.dims.b, d, n], 0, 1, "float32", 5);
          const args = caseTensors(c);
          const sliced = await lossWithLastState(selectiveScan, c, args, W, path);
          webgpuScanConfig.maxBufferBytes = 0;
          const whole = await lossWithLastState(selectiveScan, c, args, W, path);
          // same kernels, same sums per element; only dA/dD/dbias add the slices' partial sums in another order
          sliced.forEach((g, i) =>
            assertClose(g, whole[i], { atol: 1e-5, rtol: 1e-5, what: `${name} grad ${i}` })
          );
          tf.dispose([W, ...Object.values(args).filter((x): x is tf.Tensor => x != null)]);
        } finally {
          webgpuScanConfig.maxBufferBytes = 0;
        }
      },
    });
  }
}

for (const path of ["sequential", "chunked"] as const) {
  Deno.test({
    name: `selectiveScan webgpu kernel (${path}), mixer options (D, deltaBias, softplus, no z) vs cpu kernel`,
    ignore: !gpu,
    fn: async () => {
      const c = await loadScanCase("merba_window");
      const { b, d, n } = c.dims;
      const run = async (backend: string) => {
        await tf.setBackend(backend);
        const args = caseTensors(c);
        args.z!.dispose();
        args.z = undefined;
        const W = tf.ones([b, d, n]);
        const g = await lossWithLastState(selectiveScan, c, args, W, path);
        tf.dispose([W, ...Object.values(args).filter((x): x is tf.Tensor => x != null)]);
        return g;
      };
      const cpu = await run("cpu");
      const gpuGrads = await run("webgpu");
      // as the G_last test above: fixture gradient rtol, the largest fixture gradient atol
      gpuGrads.forEach((g, i) => assertClose(g, cpu[i], { atol: 1e-3, rtol: 1e-3, what: `grad ${i}` }));
    },
  });
}
