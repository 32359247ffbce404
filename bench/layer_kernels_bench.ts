/**
 * Fused layer kernels on the tfjs `cpu` backend: forward + backward time of each op at merba-tiny's shapes
 * (batch 32, 28×28 input; the calls one training step makes), with the WebAssembly SIMD kernels
 * (`setCpuLayerImpl("simd")`) and with the JavaScript loops (`"js"`, XNNPACK for their matrix products: the
 * previous default), measured in the same run. Variants are interleaved over rounds; the table reports the
 * median round. Forward + backward = the vector-Jacobian product with an upstream gradient G for every input,
 * results read back.
 *
 *   deno run -A bench/layer_kernels_bench.ts [--rounds 5] [--reps 10]
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { parseArgs } from "node:util";
import { initBackend } from "../lib/backend.ts";
import {
  fusedAttention,
  fusedConv3x3,
  fusedDepthwiseConv1d,
  fusedGelu,
  fusedLayerNorm,
  fusedLinear,
  fusedSilu,
} from "../lib/layers/fused.ts";
import { layerSimdOn, setCpuLayerImpl } from "../lib/layers/layer_simd.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { rounds: { type: "string", default: "5" }, reps: { type: "string", default: "10" } },
});
const rounds = Number(values.rounds);
const reps = Number(values.reps);
await initBackend({ backend: "cpu", quiet: true });
if (!layerSimdOn()) {
  console.log("WebAssembly SIMD is not available here: nothing to compare");
  Deno.exit(0);
}

const r = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, "float32", seed);

interface Case {
  name: string;
  f: (...xs: tf.Tensor[]) => tf.Tensor;
  inputs: tf.Tensor[];
}

// merba-tiny, batch 32: stage 1 works on 128 windows of 49 tokens × 16 channels (384 = 3 scan orders × 128),
// stage 2 on 32 windows of 49 tokens × 32 channels (attention: 4 heads of 8).
const cases: Case[] = [
  {
    name: "conv3x3 stem 3→16, s2",
    f: (x, w) => fusedConv3x3(x, w, 2),
    inputs: [r([32, 28, 28, 3], 1), r([3, 3, 3, 16], 2)],
  },
  {
    name: "conv3x3 16→32, s2",
    f: (x, w) => fusedConv3x3(x, w, 2),
    inputs: [r([32, 14, 14, 16], 3), r([3, 3, 16, 32], 4)],
  },
  { name: "linear 6272×16→16", f: (x, w) => fusedLinear(x, w), inputs: [r([6272, 16], 5), r([16, 16], 6)] },
  { name: "linear 18816×8→17", f: (x, w) => fusedLinear(x, w), inputs: [r([18816, 8], 7), r([8, 17], 8)] },
  {
    name: "linear+b 6272×16→32 (MLP)",
    f: fusedLinear,
    inputs: [r([6272, 16], 9), r([16, 32], 10), r([32], 11)],
  },
  {
    name: "linear+b 6272×32→16 (MLP)",
    f: fusedLinear,
    inputs: [r([6272, 32], 12), r([32, 16], 13), r([16], 14)],
  },
  {
    name: "linear+b 1568×32→96 (qkv)",
    f: fusedLinear,
    inputs: [r([1568, 32], 15), r([32, 96], 16), r([96], 17)],
  },
  {
    name: "layerNorm 6272×16",
    f: (x, g, b) => fusedLayerNorm(x, g, b),
    inputs: [r([6272, 16], 18), r([16], 19), r([16], 20)],
  },
  { name: "silu 384×49×8", f: fusedSilu, inputs: [r([384, 49, 8], 21)] },
  { name: "gelu 6272×32", f: fusedGelu, inputs: [r([6272, 32], 22)] },
  {
    name: "dwconv1d 384×49×8, k3",
    f: fusedDepthwiseConv1d,
    inputs: [r([384, 49, 8], 23), r([1, 3, 8, 1], 24)],
  },
  {
    name: "attention 32×4 heads×49×8",
    f: (q, k, v) => fusedAttention(q, k, v, 8 ** -0.5),
    inputs: [r([32, 4, 49, 8], 25), r([32, 4, 49, 8], 26), r([32, 4, 49, 8], 27)],
  },
];

async function fwdBwd(c: Case, G: tf.Tensor): Promise<void> {
  const grads = tf.grads((...xs: tf.Tensor[]) => c.f(...xs))(c.inputs, G);
  for (const g of grads) await g.data();
  tf.dispose(grads);
}

const impls = ["js", "simd"] as const;
const times = new Map<string, number[]>();
const Gs = cases.map((c, i) => tf.tidy(() => r(c.f(...c.inputs).shape, 100 + i)));
for (let round = 0; round < rounds; round++) {
  for (const [ci, c] of cases.entries()) {
    for (const impl of impls) {
      setCpuLayerImpl(impl);
      await fwdBwd(c, Gs[ci]); // warm-up of this variant
      const t0 = performance.now();
      for (let k = 0; k < reps; k++) await fwdBwd(c, Gs[ci]);
      const key = `${c.name}|${impl}`;
      (times.get(key) ?? times.set(key, []).get(key)!).push((performance.now() - t0) / reps);
    }
  }
}
setCpuLayerImpl("auto");
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
console.log(
  `\nFused layer kernels, tfjs cpu backend, forward + backward (vector-Jacobian products for all inputs, read back); median of ` +
    `${rounds} interleaved rounds of ${reps} calls\n`,
);
console.log("| op (merba-tiny, batch 32) | JS loops + XNNPACK (previous) | WebAssembly SIMD | speed-up |");
console.log("| --- | ---: | ---: | ---: |");
let sumJs = 0, sumSimd = 0;
for (const c of cases) {
  const js = median(times.get(`${c.name}|js`)!);
  const simd = median(times.get(`${c.name}|simd`)!);
  sumJs += js;
  sumSimd += simd;
  console.log(`| ${c.name} | ${js.toFixed(2)} ms | ${simd.toFixed(2)} ms | ${(js / simd).toFixed(1)}× |`);
}
console.log(
  `| **sum of the rows** | ${sumJs.toFixed(1)} ms | ${sumSimd.toFixed(1)} ms | ${
    (sumJs / sumSimd).toFixed(1)
  }× |`,
);
