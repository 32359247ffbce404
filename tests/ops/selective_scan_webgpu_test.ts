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
import { gpu } from "../_util.ts";
import { loadScanCase, SCAN_CASES } from "../fixtures/selective_scan/load.ts";
import { checkGoldenCase } from "./selective_scan_test.ts";

const GPU_ATOL_SCALE = 10;

for (const path of ["sequential", "chunked", "auto"] as const) {
  for (const name of SCAN_CASES) {
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
