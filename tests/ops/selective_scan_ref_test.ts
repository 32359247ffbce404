/**
 * The tfjs-ops reference (`selectiveScanRef`, the oracle of the kernels' tests and benchmarks) against the
 * mamba golden fixtures, with gradients from tfjs autodiff, on the cpu backend. Tolerances: the fixture's
 * per-tensor ones, unchanged.
 */
import * as tf from "@tensorflow/tfjs";
import { selectiveScanRef } from "../../lib/ops/selective_scan_ref.ts";
import { loadScanCase, SCAN_CASES } from "../fixtures/selective_scan/load.ts";
import { checkGoldenCase, type ScanFn } from "../fixtures/selective_scan/check.ts";

for (const name of SCAN_CASES) {
  Deno.test(`selectiveScanRef (tfjs ops, autodiff) matches mamba golden: ${name} (fixture tolerances)`, async () => {
    await tf.setBackend("cpu");
    await checkGoldenCase(await loadScanCase(name), { scan: selectiveScanRef as ScanFn });
  });
}
