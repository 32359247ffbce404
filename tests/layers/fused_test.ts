/**
 * The fused cpu kernels against the same maths written with plain tf ops (values and gradients).
 * Tolerance: float32 rounding of differently ordered sums, atol 1e-5 / rtol 1e-4 (values O(1)).
 * Run once with the JavaScript loops and once with the WebAssembly SIMD kernels (`setCpuLayerImpl`); shapes
 * include channel counts that are multiples of 4 (SIMD) and that are not (JavaScript loops either way).
 */
import * as tf from "@tensorflow/tfjs";
import { assertClose } from "../_util.ts";
import {
  attentionProbs,
  fusedAddTokens,
  fusedAttention,
  fusedBatchNorm,
  fusedConv3x3,
  fusedDepthwiseConv1d,
  fusedGelu,
  fusedLayerNorm,
  fusedLinear,
  fusedMeanTokens,
  fusedRelu,
  fusedScaleRows,
  fusedSilu,
  fusedSoftmax,
} from "../../lib/layers/fused.ts";
import { type CpuLayerImpl, layerSimdOn, setCpuLayerImpl } from "../../lib/layers/layer_simd.ts";

const TOL = { atol: 1e-5, rtol: 1e-4 };
const r = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, "float32", seed);

/** Compares f and ref (values, and gradients of sum(out·G) with respect to every input). */
async function same(
  name: string,
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  ref: (...xs: tf.Tensor[]) => tf.Tensor,
  xs: tf.Tensor[],
) {
  const y = f(...xs);
  const yr = ref(...xs);
  assertClose(await y.data(), await yr.data(), { ...TOL, what: `${name} value` });
  const G = r(y.shape, 99);
  const g = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(f(...a), G)))(xs);
  const gr = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(ref(...a), G)))(xs);
  for (let i = 0; i < xs.length; i++) {
    assertClose(await g[i].data(), await gr[i].data(), { ...TOL, what: `${name} gradient ${i}` });
  }
  tf.dispose([y, yr, G, ...g, ...gr]);
}

/** Runs `body` with the layer kernels set to `impl` (restored afterwards). */
async function withImpl(impl: CpuLayerImpl, body: () => Promise<void>) {
  const prev = setCpuLayerImpl(impl);
  try {
    await body();
  } finally {
    setCpuLayerImpl(prev);
  }
}

const IMPLS: { impl: CpuLayerImpl; ignore: boolean }[] = [
  { impl: "js", ignore: false },
  { impl: "simd", ignore: !layerSimdOn() },
];

for (const { impl, ignore } of IMPLS) {
  Deno.test({
    name: `fused cpu kernels (${impl}) equal their tf-op definitions (values and gradients)`,
    ignore,
    fn: () => withImpl(impl, fusedKernelsAgainstTfOps),
  });
  Deno.test({
    name: `fused attention (${impl}) equals softmax(q·kᵀ·s)·v (values, gradients) and its probabilities`,
    ignore,
    fn: () => withImpl(impl, fusedAttentionAgainstTfOps),
  });
}

async function fusedKernelsAgainstTfOps() {
  await tf.setBackend("cpu");
  await same(
    "linear+bias",
    fusedLinear,
    (x, w, b) => tf.add(tf.matMul(x.reshape([-1, 5]), w), b).reshape([2, 3, 4]),
    [
      r([2, 3, 5], 1),
      r([5, 4], 2),
      r([4], 3),
    ],
  );
  await same("linear", (x, w) => fusedLinear(x, w), (x, w) => tf.matMul(x, w), [r([6, 5], 4), r([5, 3], 5)]);
  // SIMD paths: 16-column register blocks, 4-column vectors and a scalar tail (o = 17, 20, 37); dx through Wᵀ
  // (input width a multiple of 4) or per-column sums (not); rows not a multiple of 4 (dW's 4-row blocks)
  for (const [n, i, o] of [[7, 8, 20], [6, 4, 17], [5, 16, 37], [9, 3, 16]]) {
    await same(
      `linear+bias ${n}×${i}→${o}`,
      fusedLinear,
      (x, w, b) => tf.add(tf.matMul(x, w), b),
      [r([n, i], 50 + o), r([i, o], 51 + o), r([o], 52 + o)],
    );
    await same(`linear ${n}×${i}→${o}`, (x, w) => fusedLinear(x, w), (x, w) => tf.matMul(x, w), [
      r([n, i], 53 + o),
      r([i, o], 54 + o),
    ]);
  }
  for (const c of [6, 8]) {
    await same(`layerNorm c${c}`, (x, g, b) => fusedLayerNorm(x, g, b), (x, g, b) => {
      const { mean, variance } = tf.moments(x, -1, true);
      return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), g), b);
    }, [r([7, c], 6), r([c], 7), r([c], 8)]);
  }
  await same("relu", fusedRelu, (x) => tf.relu(x), [
    tf.concat([r([30], 30), tf.tensor1d([0, -0, 1e-30, -1e-30])]),
  ]);
  await same("silu", fusedSilu, (x) => tf.mul(x, tf.sigmoid(x)), [r([4, 9], 9)]);
  // the tails of σ and tanh (saturation, exp clamped at ±87–88 in the SIMD kernels)
  const wide = tf.tensor1d([-100, -40, -12, -3, -0.5, 0, 1e-3, 0.5, 3, 12, 40, 100, 87.5, -87.5]);
  await same("silu, wide range", fusedSilu, (x) => tf.mul(x, tf.sigmoid(x)), [wide]);
  await same(
    "gelu",
    fusedGelu,
    (x) =>
      tf.mul(
        tf.mul(0.5, x),
        tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3)))))),
      ),
    [
      r([4, 9], 10),
    ],
  );
  await same(
    "gelu, wide range",
    fusedGelu,
    (x) =>
      tf.mul(
        tf.mul(0.5, x),
        tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3)))))),
      ),
    [wide],
  );
  for (const [k, c] of [[3, 3], [4, 3], [3, 8], [4, 8]]) {
    await same(
      `dwconv1d k${k} c${c}`,
      fusedDepthwiseConv1d,
      (x, w) =>
        tf.depthwiseConv2d(x.reshape([2, 1, 7, c]) as tf.Tensor4D, w as tf.Tensor4D, 1, "same").reshape([
          2,
          7,
          c,
        ]),
      [
        r([2, 7, c], 11),
        r([1, k, c, 1], 12),
      ],
    );
  }
  for (const [s, ci, co] of [[1, 3, 4], [2, 3, 4], [2, 5, 8], [1, 2, 3]]) {
    await same(
      `conv3x3 s${s} ${ci}→${co}`,
      (x, w) => fusedConv3x3(x, w, s),
      (x, w) =>
        tf.conv2d(tf.pad(x as tf.Tensor4D, [[0, 0], [1, 1], [1, 1], [0, 0]]), w as tf.Tensor4D, s, "valid"),
      [
        r([2, 7, 6, ci], 13),
        r([3, 3, ci, co], 14),
      ],
    );
  }
  await same("softmax", fusedSoftmax, (x) => tf.softmax(x), [r([3, 2, 5], 15)]);
  await same("meanTokens", fusedMeanTokens, (x) => tf.mean(x, 1), [r([3, 5, 4], 16)]);
  await same("addTokens", fusedAddTokens, (x, v) => tf.add(x, v.reshape([3, 1, 4])), [
    r([3, 5, 4], 17),
    r([3, 4], 18),
  ]);
  await same("scaleRows", fusedScaleRows, (x, s) => tf.mul(x, s.reshape([3, 1, 1])), [
    r([3, 5, 4], 24),
    r([3], 25),
  ]);
  await same(
    "batchNorm train",
    (x, g, b) => fusedBatchNorm(x, g, b, 1e-4, { training: true }).y,
    (x, g, b) => {
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      return tf.batchNorm(x, mean, variance, b, g, 1e-4);
    },
    [r([2, 3, 3, 4], 19), r([4], 20), r([4], 21)],
  );
  const mm = r([4], 22);
  const mv = tf.add(tf.abs(r([4], 23)), 0.5);
  await same(
    "batchNorm inference",
    (x, g, b) => fusedBatchNorm(x, g, b, 1e-4, { training: false, mean: mm, variance: mv }).y,
    (x, g, b) => tf.batchNorm(x, mm, mv, b, g, 1e-4),
    [r([2, 3, 3, 4], 24), r([4], 25), r([4], 26)],
  );
}

Deno.test("fast cpu Add/Sub/Multiply: same-shape and scalar cases exact, broadcast and int32 fall back", async () => {
  await tf.setBackend("cpu");
  const a = r([5, 7], 30);
  const b = r([5, 7], 31);
  const av = await a.data();
  const bv = await b.data();
  const exact = (f: (x: number, y: number) => number) => Float32Array.from(av, (v, i) => f(v, bv[i]));
  assertClose(await tf.add(a, b).data(), exact((x, y) => x + y), { atol: 0, rtol: 0, what: "add" });
  assertClose(await tf.sub(a, b).data(), exact((x, y) => x - y), { atol: 0, rtol: 0, what: "sub" });
  assertClose(await tf.mul(a, b).data(), exact((x, y) => x * y), { atol: 0, rtol: 0, what: "mul" });
  assertClose(await tf.mul(a, 3).data(), Float32Array.from(av, (v) => v * 3), {
    atol: 0,
    rtol: 0,
    what: "scalar",
  });
  assertClose(await tf.sub(2, a).data(), Float32Array.from(av, (v) => 2 - v), {
    atol: 0,
    rtol: 0,
    what: "scalar left",
  });
  const row = tf.tensor1d([1, 2, 3, 4, 5, 6, 7]);
  assertClose(await tf.add(a, row).data(), Float32Array.from(av, (v, i) => v + (i % 7) + 1), {
    atol: 0,
    rtol: 0,
    what: "broadcast",
  });
  const ints = tf.add(tf.tensor1d([1, 2], "int32"), tf.tensor1d([3, 4], "int32"));
  if (ints.dtype !== "int32" || (await ints.data()).join() !== "4,6") throw new Error("int32 add");
});

async function fusedAttentionAgainstTfOps() {
  await tf.setBackend("cpu");
  const s = 0.35;
  // d = 4, 8: SIMD; d = 6: JavaScript loops; n = 5, 49 (MERba's 7×7 window): rows that are not whole vectors
  for (const [n, d] of [[5, 4], [49, 8], [5, 6]]) {
    await same(
      `attention n${n} d${d}`,
      (q, k, v) => fusedAttention(q, k, v, s),
      (q, k, v) => tf.matMul(tf.softmax(tf.matMul(tf.mul(q, s), k, false, true)), v),
      [r([2, 3, n, d], 40), r([2, 3, n, d], 41), r([2, 3, n, d], 42)],
    );
  }
  const q = r([2, 3, 5, 4], 43);
  const k = r([2, 3, 5, 4], 44);
  assertClose(
    await attentionProbs(q, k, s).data(),
    await tf.softmax(tf.matMul(tf.mul(q, s), k, false, true)).data(),
    {
      ...TOL,
      what: "probabilities",
    },
  );
}
