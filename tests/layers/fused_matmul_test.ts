/**
 * The register-blocked cpu matmul (lib/layers/fused_matmul.ts) against tfjs's own cpu `MatMul` kernel, on the
 * merba-tiny linear-layer shapes and on shapes exercising every remainder path (rows % 4, columns % 2, K = 1).
 *
 * Tolerance: both are float32 dot products of length K in different summation orders, so they may differ by
 * the standard bound |Δ| ≤ 2·γ_K·Σ_k|x_k·w_k| with γ_K = K·u/(1 − K·u), u = 2⁻²⁴ (one γ_K per side); the
 * bias adds one more rounding (u·|b|). Checked per element with that bound, not a fixed atol.
 */
import * as tf from "@tensorflow/tfjs";
import { ok } from "../_assert.ts";
import { assertClose } from "../_util.ts";
import {
  disableWasmMatmul,
  enableWasmMatmul,
  gemmNT,
  matmulRowsJs,
  transposeJs,
  wasmMatmulEnabled,
} from "../../lib/layers/fused_matmul.ts";
import { fusedAttention, fusedConv3x3, fusedLinear } from "../../lib/layers/fused.ts";

await tf.setBackend("cpu");

const U = 2 ** -24;

function check(n: number, i: number, o: number, withBias: boolean, seed: number) {
  tf.tidy(() => {
    const x = tf.randomNormal([n, i], 0, 1, "float32", seed);
    const w = tf.randomNormal([i, o], 0, 1, "float32", seed + 1);
    const b = tf.randomNormal([o], 0, 1, "float32", seed + 2);
    const xv = x.dataSync() as Float32Array;
    const wv = w.dataSync() as Float32Array;
    const bv = b.dataSync() as Float32Array;
    const got = matmulRowsJs(xv, wv, n, i, o, withBias ? bv : undefined);
    const ref = (withBias ? tf.add(tf.matMul(x, w), b) : tf.matMul(x, w)).dataSync();
    // per-element bound Σ_k |x_k·w_k|
    const mag = tf.matMul(tf.abs(x), tf.abs(w)).dataSync();
    const g = (K: number) => (K * U) / (1 - K * U);
    let worst = 0;
    for (let e = 0; e < got.length; e++) {
      const bound = 2 * g(i + 1) * mag[e] + (withBias ? 2 * U * Math.abs(bv[e % o]) : 0) + 1e-30;
      worst = Math.max(worst, Math.abs(got[e] - ref[e]) / bound);
    }
    ok(worst <= 1, `${n}x${i}x${o}${withBias ? "+b" : ""}: |Δ| is ${worst.toFixed(2)}× the float32 bound`);
  });
}

Deno.test("matmulRowsJs equals tfjs cpu MatMul within the float32 dot-product bound (merba-tiny shapes)", () => {
  const shapes: [number, number, number][] = [
    [6272, 16, 16],
    [18816, 8, 17],
    [18816, 1, 8],
    [4704, 16, 18],
    [4704, 2, 16],
    [1568, 32, 96],
    [1568, 64, 32],
    [1568, 144, 32],
    [128, 16, 48],
  ];
  let seed = 1;
  for (const [n, i, o] of shapes) {
    check(n, i, o, false, seed++);
    check(n, i, o, true, seed++);
  }
});

Deno.test("matmulRowsJs remainder paths: rows % 4 ∈ {1,2,3}, odd columns, K = 1, one row", () => {
  let seed = 100;
  for (const n of [1, 2, 3, 5, 6, 7, 9]) {
    for (const [i, o] of [[1, 1], [1, 3], [3, 1], [5, 7], [4, 2], [33, 9]]) {
      check(n, i, o, seed % 2 === 0, seed++);
    }
  }
});

Deno.test("gemmNT and transposeJs on a hand-worked example", () => {
  // a = [[1, 2], [3, 4], [5, 6]], bt = [[1, 0], [1, 1]] → a·btᵀ = [[1, 3], [3, 7], [5, 11]], + bias [10, 20]
  const c = gemmNT(
    new Float32Array([1, 2, 3, 4, 5, 6]),
    new Float32Array([1, 0, 1, 1]),
    3,
    2,
    2,
    new Float32Array([10, 20]),
  );
  assertClose(c, [11, 23, 13, 27, 15, 31], { atol: 0, rtol: 0, what: "gemmNT" });
  assertClose(transposeJs(new Float32Array([1, 2, 3, 4, 5, 6]), 2, 3), [1, 4, 2, 5, 3, 6], {
    atol: 0,
    rtol: 0,
    what: "transposeJs",
  });
});

async function linearAgainstTfOps(shapes: number[][]) {
  for (const [n, i, o] of shapes) {
    const x = tf.randomNormal([n, i], 0, 1, "float32", 7);
    const w = tf.randomNormal([i, o], 0, 1, "float32", 8);
    const b = tf.randomNormal([o], 0, 1, "float32", 9);
    const G = tf.randomNormal([n, o], 0, 1, "float32", 10);
    const f = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(fusedLinear(xx, ww, bb), G));
    const fr = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
      tf.sum(tf.mul(tf.add(tf.matMul(xx as tf.Tensor2D, ww as tf.Tensor2D), bb), G));
    assertClose(await fusedLinear(x, w, b).data(), await tf.add(tf.matMul(x, w), b).data(), {
      atol: 1e-5,
      rtol: 1e-5,
      what: `linear ${n}x${i}x${o} value`,
    });
    const g = tf.grads(f)([x, w, b]);
    const gr = tf.grads(fr)([x, w, b]);
    for (let k = 0; k < 3; k++) {
      assertClose(await g[k].data(), await gr[k].data(), { atol: 1e-4, rtol: 1e-4, what: `gradient ${k}` });
    }
    tf.dispose([x, w, b, G, ...g, ...gr]);
  }
}

Deno.test("fusedLinear (cpu kernels) equals tf.matMul + add, values and gradients, row counts not divisible by 4", async () => {
  await linearAgainstTfOps([[7, 5, 3], [130, 16, 33]]);
});

Deno.test("enableWasmMatmul: fusedLinear, fusedConv3x3, fusedAttention on the cpu backend through XNNPACK equal the tf-op maths", async () => {
  const on = await enableWasmMatmul();
  try {
    ok(tf.getBackend() === "cpu", `enableWasmMatmul left the backend at ${tf.getBackend()}`);
    if (!on) {
      console.warn("wasm backend unavailable: enableWasmMatmul returned false (JS kernels stay on)");
      return;
    }
    ok(wasmMatmulEnabled());
    // i ≥ 4 takes the wasm forward, i·o ≥ 512 the wasm backward; [5, 3] stays on JS
    await linearAgainstTfOps([[7, 5, 3], [130, 16, 33], [61, 32, 64]]);
    const x = tf.randomNormal([2, 9, 9, 16], 0, 1, "float32", 21);
    const k = tf.randomNormal([3, 3, 16, 32], 0, 0.2, "float32", 22);
    const G = tf.randomNormal([2, 5, 5, 32], 0, 1, "float32", 23);
    const ref = (xx: tf.Tensor, kk: tf.Tensor) =>
      tf.conv2d(tf.pad(xx as tf.Tensor4D, [[0, 0], [1, 1], [1, 1], [0, 0]]), kk as tf.Tensor4D, 2, "valid");
    assertClose(await fusedConv3x3(x, k, 2).data(), await ref(x, k).data(), {
      atol: 1e-4,
      rtol: 1e-4,
      what: "conv3x3 value",
    });
    const g = tf.grads((xx: tf.Tensor, kk: tf.Tensor) => tf.sum(tf.mul(fusedConv3x3(xx, kk, 2), G)))([x, k]);
    const gr = tf.grads((xx: tf.Tensor, kk: tf.Tensor) => tf.sum(tf.mul(ref(xx, kk), G)))([x, k]);
    for (let j = 0; j < 2; j++) {
      assertClose(await g[j].data(), await gr[j].data(), {
        atol: 1e-4,
        rtol: 1e-4,
        what: `conv3x3 gradient ${j}`,
      });
    }
    tf.dispose([x, k, G, ...g, ...gr]);
    for (const shape of [[2, 2, 49, 8], [1, 1, 4, 16]]) {
      const [q, kk, v] = [31, 32, 33].map((sd) => tf.randomNormal(shape, 0, 1, "float32", sd));
      const Go = tf.randomNormal(shape, 0, 1, "float32", 34);
      const scale = 1 / Math.sqrt(shape[3]);
      const refA = (a: tf.Tensor, bb: tf.Tensor, c: tf.Tensor) =>
        tf.matMul(tf.softmax(tf.matMul(tf.mul(a, scale), bb, false, true)), c);
      assertClose(await fusedAttention(q, kk, v, scale).data(), await refA(q, kk, v).data(), {
        atol: 1e-5,
        rtol: 1e-4,
        what: `attention ${shape} value`,
      });
      const ga = tf.grads((a: tf.Tensor, bb: tf.Tensor, c: tf.Tensor) =>
        tf.sum(tf.mul(fusedAttention(a, bb, c, scale), Go))
      )([q, kk, v]);
      const gra = tf.grads((a: tf.Tensor, bb: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(refA(a, bb, c), Go)))(
        [
          q,
          kk,
          v,
        ],
      );
      for (let j = 0; j < 3; j++) {
        assertClose(await ga[j].data(), await gra[j].data(), {
          atol: 1e-5,
          rtol: 1e-4,
          what: `attention ${shape} gradient ${j}`,
        });
      }
      tf.dispose([q, kk, v, Go, ...ga, ...gra]);
    }
  } finally {
    disableWasmMatmul();
  }
  ok(!wasmMatmulEnabled());
});
