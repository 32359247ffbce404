/**
 * The selective-scan op on the tfjs `wasm` backend (the CPU kernel's loops on heap copies) against the mamba
 * golden fixtures: forward, last state and every gradient, with the fixture tolerances unchanged (same
 * float64-accumulating loops as the cpu kernel).
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { loadScanCase, SCAN_CASES } from "../fixtures/selective_scan/load.ts";
import { checkGoldenCase } from "../fixtures/selective_scan/check.ts";

const wasmOk = await tf.setBackend("wasm").catch(() => false);
if (!wasmOk) console.warn("wasm tests skipped: the tfjs wasm backend did not initialise here");

for (const name of SCAN_CASES) {
  Deno.test({
    name: `selectiveScan wasm kernel matches mamba golden: ${name} (fixture tolerances)`,
    ignore: !wasmOk,
    fn: async () => {
      await tf.setBackend("wasm");
      await checkGoldenCase(await loadScanCase(name));
    },
  });
}
