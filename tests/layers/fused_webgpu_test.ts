/**
 * The WGSL kernels of `lib/layers/fused_webgpu.ts` (LayerNorm, GELU, SiLU, linear layers, attention) against the
 * tfjs-op forms on webgpu, the cpu kernels or float64 references: values and all gradients, dispatch counts, no leaks.
 *
 * Tolerances: every path is float32 with different summation orders — per row over c ≤ 64 channels for the
 * statistics and `dx`, over up to 196 rows for `dγ`/`dβ` — so values of order 1 agree to ≈ 1e-6 relative and
 * the row sums (order 10) to ≈ 1e-5; atol 2e-5 with rtol 1e-4 covers that and nothing coarser. GELU against a
 * float64 reference: atol 1e-6, rtol 1e-5 (a few ulp). GELU against the cpu kernel and tfjs's ops: atol 3e-6 —
 * those compute `1 − t²` with `t = tanh(u)` rounded to float32, so one ulp of t (6e-8) near ±1 becomes up to
 * 1.2e-7 in `1 − t²`, times `½·|x|·√(2/π)·(1 + 0.134·x²)·|dy|` ≈ 21 at |x| = 6, |dy| ≤ 1.5: 2.5e-6.
 * Linear layers against a float64 reference with the standard bound of a float32 dot product, element by element:
 * |error| ≤ γ_k·Σ|aᵢbᵢ| (γ_k = k·u/(1 − k·u), u = 2⁻²⁴) with `k` the longest chain of roundings — the inner width
 * plus one for `y` and `dx`, and for the row sums `dW`, `db` ⌈n/64⌉ + 6 + 1 (each lane's strided sum, then the
 * 64-lane tree); the bias adds one more rounding of |b|.
 * SiLU against float64: atol 1e-6, rtol 1e-5 (WGSL's exp is within 3 + 2·|x| ulp, i.e. ≤ 1e-5 relative
 * at |x| ≤ 40 where σ is not already 0 or 1 to float32 precision; the rest is a few roundings). Against tfjs's
 * ops the same tolerance (both float32, the same formula up to the order of operations).
 * BatchNorm (batch statistics) against float64: `dγ`, `dβ` within the row-sum bound above; `y`, `dx`, `μ`, `σ²`
 * atol 5e-5, rtol 1e-4: μ is a row sum (k = ⌈n/64⌉ + 7 ≤ 105 roundings for n = 6,272, relative error ≤
 * k·u = 6.3e-6 of Σ|x|/n ≈ 3 here: 1.9e-5), which reaches y through r·γ ≈ 1, and σ²'s error as much again.
 * Attention against a float64 reference: atol 1e-5, rtol 1e-4. Each output is a sum of n ≤ 64 terms whose
 * absolute values add up to ≤ ≈ 1.5 here (probabilities sum to 1; |v|, |dO| ≤ 1.5), and each term carries WGSL's
 * exp error (≤ 3 + 2·|x| ulp, |x| ≤ 16 here: ≤ 2.1e-6 relative), a dot product of d ≤ 16 (≤ 1e-6) and the
 * sum's roundings (≤ 64·u = 3.8e-6): ≤ 7e-6 relative to 1.5, i.e. ≈ 1e-5.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import {
  fusedAttention,
  fusedBatchNorm,
  fusedBatchNormTrain,
  fusedConv3x3,
  fusedDepthwiseConv1d,
  fusedGelu,
  fusedLayerNorm,
  fusedLinear,
  fusedSilu,
} from "../../lib/layers/fused.ts";
import {
  attentionWebGPU,
  batchNormTrainWebGPU,
  conv3x3WebGPU,
  depthwiseConv1dWebGPU,
  layerNormWebGPU,
  linearWebGPU,
  setWebGPULayerImpl,
  siluWebGPU,
  webgpuLayersFor,
  webgpuLinearFor,
} from "../../lib/layers/fused_webgpu.ts";
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
  assert.equal(webgpuLinearFor(10, 4, 4), false);
  assert.throws(() => layerNormWebGPU(tf.ones([2, 4]), tf.ones([4]), tf.zeros([4])), /active backend is cpu/);
  assert.throws(() => linearWebGPU(tf.ones([2, 4]), tf.ones([4, 3])), /active backend is cpu/);
});

/**
 * Runs `f` with the WebGPU programs recorded; asserts that the programs whose keys start with one of
 * `prefixes` are `expected`, in order; reads every returned tensor, disposes them and asserts that no tensor
 * was left behind.
 */
async function runRecorded(
  what: string,
  prefixes: string[],
  expected: string[],
  f: () => tf.Tensor[],
): Promise<Float32Array[]> {
  const before = tf.memory().numTensors;
  const rec = recordWebGPUPrograms(f);
  assert.deepEqual(
    rec.keys.filter((k) => prefixes.some((p) => k.startsWith(p))),
    expected,
    `programs for ${what}`,
  );
  const out = await Promise.all(rec.result.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose(rec.result);
  assert.equal(tf.memory().numTensors, before, `tensors left behind (${what})`);
  return out;
}

/** Float64 `y = x·W + b`, `dx = g·Wᵀ`, `dW = xᵀ·g`, `db = Σ g` and, per element, the Σ|terms| of each sum. */
function linearRef(
  x: Float32Array,
  w: Float32Array,
  b: Float32Array | null,
  g: Float32Array,
  n: number,
  i: number,
  o: number,
) {
  const y = new Float64Array(n * o), ya = new Float64Array(n * o);
  const dx = new Float64Array(n * i), dxa = new Float64Array(n * i);
  const dw = new Float64Array(i * o), dwa = new Float64Array(i * o);
  const db = new Float64Array(o), dba = new Float64Array(o);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < o; c++) {
      let s = b ? b[c] : 0, a = b ? Math.abs(b[c]) : 0;
      for (let k = 0; k < i; k++) {
        const t = x[r * i + k] * w[k * o + c];
        s += t;
        a += Math.abs(t);
        const gt = g[r * o + c] * w[k * o + c];
        dx[r * i + k] += gt;
        dxa[r * i + k] += Math.abs(gt);
        const wt = x[r * i + k] * g[r * o + c];
        dw[k * o + c] += wt;
        dwa[k * o + c] += Math.abs(wt);
      }
      y[r * o + c] = s;
      ya[r * o + c] = a;
      db[c] += g[r * o + c];
      dba[c] += Math.abs(g[r * o + c]);
    }
  }
  return { y: [y, ya], dx: [dx, dxa], dw: [dw, dwa], db: [db, dba] } as Record<
    string,
    [Float64Array, Float64Array]
  >;
}

function assertWithinDotBound(
  actual: Float32Array,
  [ref, abs]: [Float64Array, Float64Array],
  k: number,
  what: string,
) {
  const u = 2 ** -24;
  const gamma = (k * u) / (1 - k * u);
  assert.equal(actual.length, ref.length, `${what}: length`);
  for (let e = 0; e < ref.length; e++) {
    const err = Math.abs(actual[e] - ref[e]);
    // + one rounding of the float32 result itself
    const bound = gamma * abs[e] + u * Math.abs(ref[e]) + 1e-30;
    if (!(err <= bound)) {
      assert.fail(
        `${what}[${e}]: ${actual[e]} vs float64 ${ref[e]} (error ${err.toExponential(2)} > bound ${
          bound.toExponential(2)
        })`,
      );
    }
  }
}

Deno.test({
  name:
    "linear layer on webgpu (WGSL): value and every gradient within the float32 dot-product bound of float64",
  ignore: !gpu,
  async fn() {
    await tf.setBackend("webgpu");
    watchActiveWebGPUDevice();
    const errors = webgpuErrorCount();
    const cases: [number[], number, boolean][] = [
      [[2, 7, 16], 32, true], // the MLP's shape class
      [[300, 8], 17, false], // rows not a multiple of 64; x_proj's widths
      [[4, 49, 96], 32, true], // wide inner dimension
      [[3000, 4], 5, true], // long row sums (47 per lane)
      [[5, 1], 3, false], // one input column
    ];
    for (const [[...xShape], o, withBias] of cases) {
      const i = xShape[xShape.length - 1];
      const n = xShape.reduce((a, b) => a * b, 1) / i;
      const seed = n + o;
      const xv = rnd(n * i, seed, 1);
      const wv = rnd(i * o, seed + 1, 0.5);
      const bv = withBias ? rnd(o, seed + 2, 0.5) : null;
      const gv = rnd(n * o, seed + 3, 1, 0.25);
      const x = tf.tensor(xv, xShape);
      const w = tf.tensor2d(wv, [i, o]);
      const b = bv ? tf.tensor1d(bv) : undefined;
      const g = tf.tensor(gv, [...xShape.slice(0, -1), o]);
      const loss = (...t: tf.Tensor[]) => tf.sum(tf.mul(fusedLinear(t[0], t[1], t[2]), g));
      const what = `${xShape}·[${i}, ${o}]${withBias ? " + b" : ""}`;
      const [y, dx, dw, db] = await runRecorded(
        what,
        ["merba_linear"],
        withBias
          ? [
            "merba_linear_bias",
            "merba_linear_bias",
            "merba_linear_dx",
            "merba_linear_dw",
            "merba_linear_db",
          ]
          : ["merba_linear", "merba_linear", "merba_linear_dx", "merba_linear_dw"],
        () => [fusedLinear(x, w, b), ...tf.grads(loss)(b ? [x, w, b] : [x, w])],
      );
      const ref = linearRef(xv, wv, bv, gv, n, i, o);
      const rows = Math.ceil(n / 64) + 6 + 1;
      assertWithinDotBound(y, ref.y, i + 2, `y ${what}`);
      assertWithinDotBound(dx, ref.dx, o + 1, `dx ${what}`);
      assertWithinDotBound(dw, ref.dw, rows, `dW ${what}`);
      if (db) assertWithinDotBound(db, ref.db, rows, `db ${what}`);
      tf.dispose([x, w, g, ...(b ? [b] : [])]);
    }
    assert.equal(webgpuErrorCount(), errors, "WebGPU reported errors (see the printed message)");
    await tf.setBackend("cpu");
  },
});

Deno.test({
  name: "linear layer on webgpu: 1 + 3 dispatches, no tensors left behind; the tfjs-op form agrees",
  ignore: !gpu,
  async fn() {
    await tf.setBackend("webgpu");
    const x = tf.randomUniform([8, 49, 16], -1, 1, "float32", 1);
    const w = tf.randomUniform([16, 32], -0.5, 0.5, "float32", 2);
    const b = tf.randomUniform([32], -0.5, 0.5, "float32", 3);
    const before = tf.memory().numTensors;
    const rec = recordWebGPUPrograms(() =>
      tf.grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.sum(linearWebGPU(xx, ww, bb)))([x, w, b])
    );
    assert.deepEqual(rec.keys.filter((k) => k.startsWith("merba_")), [
      "merba_linear_bias",
      "merba_linear_dx",
      "merba_linear_dw",
      "merba_linear_db",
    ]);
    const wgsl = await Promise.all(rec.result.map((t) => t.data() as Promise<Float32Array>));
    tf.dispose(rec.result);
    assert.equal(tf.memory().numTensors, before, "tensors left behind");
    const prev = setWebGPULayerImpl("ops");
    const ops = tf.grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.sum(fusedLinear(xx, ww, bb)))([
      x,
      w,
      b,
    ]);
    setWebGPULayerImpl(prev);
    const opv = await Promise.all(ops.map((t) => t.data() as Promise<Float32Array>));
    // sums over ≤ 392 rows (dW, db) of terms ≤ 1 in size: atol 1e-4 is ≈ 3 ulp of the largest sums
    ["dx", "dW", "db"].forEach((what, k) => assertClose(wgsl[k], opv[k], { atol: 1e-4, rtol: 1e-5, what }));
    tf.dispose([x, w, b, ...ops]);
    await tf.setBackend("cpu");
  },
});

/** Float64 attention `softmax(scale·q·kᵀ)·v` and the gradients for upstream `g`, per slice of `n × d`. */
function attentionRef(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  g: Float32Array,
  nb: number,
  n: number,
  d: number,
  scale: number,
) {
  const o = new Float64Array(nb * n * d);
  const dq = new Float64Array(nb * n * d),
    dk = new Float64Array(nb * n * d),
    dv = new Float64Array(nb * n * d);
  for (let s = 0; s < nb; s++) {
    const at = (r: number, c: number) => (s * n + r) * d + c;
    const p = Array.from({ length: n }, () => new Float64Array(n));
    const dp = Array.from({ length: n }, () => new Float64Array(n));
    for (let i = 0; i < n; i++) {
      let m = -Infinity;
      for (let j = 0; j < n; j++) {
        let a = 0;
        for (let c = 0; c < d; c++) a += q[at(i, c)] * k[at(j, c)];
        p[i][j] = a * scale;
        m = Math.max(m, p[i][j]);
      }
      let sum = 0;
      for (let j = 0; j < n; j++) sum += p[i][j] = Math.exp(p[i][j] - m);
      for (let j = 0; j < n; j++) p[i][j] /= sum;
      for (let j = 0; j < n; j++) {
        for (let c = 0; c < d; c++) {
          o[at(i, c)] += p[i][j] * v[at(j, c)];
          dv[at(j, c)] += p[i][j] * g[at(i, c)];
          dp[i][j] += g[at(i, c)] * v[at(j, c)];
        }
      }
      let delta = 0;
      for (let j = 0; j < n; j++) delta += p[i][j] * dp[i][j];
      for (let j = 0; j < n; j++) {
        const ds = p[i][j] * (dp[i][j] - delta) * scale;
        for (let c = 0; c < d; c++) {
          dq[at(i, c)] += ds * k[at(j, c)];
          dk[at(j, c)] += ds * q[at(i, c)];
        }
      }
    }
  }
  return [o, dq, dk, dv];
}

Deno.test({
  name: "attention on webgpu (WGSL): value and every gradient equal a float64 reference; 1 + 4 dispatches",
  ignore: !gpu,
  async fn() {
    await tf.setBackend("webgpu");
    watchActiveWebGPUDevice();
    const errors = webgpuErrorCount();
    const cases: [number[], number][] = [
      [[2, 4, 49, 8], 8 ** -0.5], // merba-tiny's window attention
      [[1, 2, 5, 16], 0.25],
      [[3, 1, 4, 4], 0.5], // inter-window attention over 4 windows
      [[1, 1, 64, 3], 2.5], // width not a multiple of 4; large scores (the max subtraction matters)
    ];
    for (const [shape, scale] of cases) {
      const [b, h, n, d] = shape;
      const size = b * h * n * d;
      const seed = size + d;
      const [qv, kv, vv, gv] = [0, 1, 2, 3].map((t) => rnd(size, seed + t, 1.5));
      const [q, k, v, g] = [qv, kv, vv, gv].map((a) =>
        tf.tensor4d(a, shape as [number, number, number, number])
      );
      const got = await runRecorded(
        `${shape}`,
        ["merba_attn"],
        [`fwd`, `fwd`, `stats`, `dq`, `dk`, `dv`].map((w) => `merba_attn_${w}_${n}_${d}`),
        () => [
          fusedAttention(q, k, v, scale),
          ...tf.grads((qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) =>
            tf.sum(tf.mul(fusedAttention(qq, kk, vv, scale), g))
          )([q, k, v]),
        ],
      );
      const ref = attentionRef(qv, kv, vv, gv, b * h, n, d, scale);
      ["O", "dQ", "dK", "dV"].forEach((what, i) =>
        assertClose(got[i], ref[i], { atol: 1e-5, rtol: 1e-4, what: `${what} ${shape} scale ${scale}` })
      );
      tf.dispose([q, k, v, g]);
    }
    assert.equal(webgpuErrorCount(), errors, "WebGPU reported errors (see the printed message)");
    // the tfjs-op form on webgpu agrees too (same reference, same tolerance)
    const prev = setWebGPULayerImpl("ops");
    const shape: [number, number, number, number] = [2, 4, 49, 8];
    const [qv, kv, vv] = [0, 1, 2].map((t) => rnd(3136, 3144 + t, 1.5));
    const [q, k, v] = [qv, kv, vv].map((a) => tf.tensor4d(a, shape));
    const y = fusedAttention(q, k, v, 8 ** -0.5);
    const ref = attentionRef(qv, kv, vv, new Float32Array(3136), 8, 49, 8, 8 ** -0.5);
    assertClose(await y.data() as Float32Array, ref[0], { atol: 1e-5, rtol: 1e-4, what: "O via tfjs ops" });
    setWebGPULayerImpl(prev);
    tf.dispose([q, k, v, y]);
    assert.throws(
      () => attentionWebGPU(tf.ones([1, 1, 2, 2]), tf.ones([1, 1, 2, 3]), tf.ones([1, 1, 2, 2]), 1),
      /must be equal/,
    );
    await tf.setBackend("cpu");
    assert.throws(
      () => attentionWebGPU(tf.ones([1, 1, 2, 2]), tf.ones([1, 1, 2, 2]), tf.ones([1, 1, 2, 2]), 1),
      /active backend is cpu/,
    );
  },
});

Deno.test({
  name: "SiLU on webgpu (WGSL): value and gradient equal float64 and the tfjs-op form; 1 + 1 dispatches",
  ignore: !gpu,
  async fn() {
    await tf.setBackend("webgpu");
    watchActiveWebGPUDevice();
    const errors = webgpuErrorCount();
    const xs = Float32Array.from([...rnd(300, 11, 8), -100, -40, -17, -1e-3, 0, 1e-3, 17, 40, 100]);
    const gs = rnd(xs.length, 12, 1, 0.5);
    const x = tf.tensor2d(xs, [1, xs.length]);
    const g = tf.tensor2d(gs, [1, xs.length]);
    const [y, dx] = await runRecorded(
      "silu",
      ["merba_silu"],
      ["merba_silu", "merba_silu", "merba_silu_grad"],
      () => [
        fusedSilu(x),
        tf.grad((t: tf.Tensor) => tf.sum(tf.mul(fusedSilu(t), g)))(x),
      ],
    );
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const yRef = Array.from(xs, (v) => v * sig(v));
    const dRef = Array.from(xs, (v, i) => gs[i] * sig(v) * (1 + v * (1 - sig(v))));
    assertClose(y, yRef, { atol: 1e-6, rtol: 1e-5, what: "silu vs float64" });
    assertClose(dx, dRef, { atol: 1e-6, rtol: 1e-5, what: "silu grad vs float64" });
    const prev = setWebGPULayerImpl("ops");
    const yo = fusedSilu(x);
    const dxo = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(fusedSilu(t), g)))(x);
    setWebGPULayerImpl(prev);
    assertClose(y, await yo.data(), { atol: 1e-6, rtol: 1e-5, what: "silu vs tfjs ops" });
    assertClose(dx, await dxo.data(), { atol: 1e-6, rtol: 1e-5, what: "silu grad vs tfjs ops" });
    tf.dispose([x, g, yo, dxo]);
    assert.equal(webgpuErrorCount(), errors, "WebGPU reported errors (see the printed message)");
    await tf.setBackend("cpu");
    assert.throws(() => siluWebGPU(tf.ones([2])), /active backend is cpu/);
  },
});

/** Float64 BatchNorm with batch statistics over `n` rows of `c`, and its gradients for upstream `g`. */
function batchNormRef(
  x: Float32Array,
  gm: Float32Array,
  bt: Float32Array,
  g: Float32Array,
  n: number,
  c: number,
  eps: number,
) {
  const mean = new Float64Array(c), vr = new Float64Array(c);
  for (let r = 0; r < n; r++) for (let j = 0; j < c; j++) mean[j] += x[r * c + j] / n;
  for (let r = 0; r < n; r++) for (let j = 0; j < c; j++) vr[j] += (x[r * c + j] - mean[j]) ** 2 / n;
  const rs = Array.from(vr, (v) => 1 / Math.sqrt(v + eps));
  const y = new Float64Array(n * c), dx = new Float64Array(n * c);
  const dg = new Float64Array(c),
    dga = new Float64Array(c),
    db = new Float64Array(c),
    dba = new Float64Array(c);
  const xh = (r: number, j: number) => (x[r * c + j] - mean[j]) * rs[j];
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < c; j++) {
      const k = r * c + j;
      y[k] = xh(r, j) * gm[j] + bt[j];
      dg[j] += g[k] * xh(r, j);
      dga[j] += Math.abs(g[k] * xh(r, j));
      db[j] += g[k];
      dba[j] += Math.abs(g[k]);
    }
  }
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < c; j++) {
      dx[r * c + j] = gm[j] * rs[j] * (g[r * c + j] - db[j] / n - xh(r, j) * dg[j] / n);
    }
  }
  return {
    y,
    dx,
    mean,
    vr,
    dg: [dg, dga] as [Float64Array, Float64Array],
    db: [db, dba] as [Float64Array, Float64Array],
  };
}

Deno.test({
  name:
    "BatchNorm (batch statistics) on webgpu (WGSL): y, statistics and gradients equal float64; 2 + 3 dispatches",
  ignore: !gpu,
  async fn() {
    await tf.setBackend("webgpu");
    watchActiveWebGPUDevice();
    const errors = webgpuErrorCount();
    for (const shape of [[4, 7, 7, 16], [2, 5, 3, 3], [32, 14, 14, 16]]) {
      const c = shape[3];
      const n = shape[0] * shape[1] * shape[2];
      const eps = 1e-3;
      const xv = rnd(n * c, n + c, 2, 3); // mean ≈ 3: the variance needs two passes
      const gmv = rnd(c, c, 0.5, 1);
      const btv = rnd(c, c + 1, 0.5);
      const gv = rnd(n * c, n + c + 2, 1, 0.25);
      const x = tf.tensor(xv, shape);
      const gm = tf.tensor1d(gmv);
      const bt = tf.tensor1d(btv);
      const g = tf.tensor(gv, shape);
      const [y, mean, vr, dx, dg, db] = await runRecorded(
        `${shape}`,
        ["merba_bn", "merba_ln_dbeta"],
        [
          "merba_bn_stats",
          "merba_bn_forward",
          "merba_bn_stats",
          "merba_bn_forward",
          "merba_bn_dgamma",
          "merba_ln_dbeta",
          "merba_bn_dx",
        ],
        () => {
          const out = fusedBatchNorm(x, gm, bt, eps, { training: true });
          const grads = tf.grads((xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) =>
            tf.tidy(() => {
              const o = fusedBatchNorm(xx, gg, bb, eps, { training: true });
              tf.dispose([o.mean!, o.variance!]);
              return tf.sum(tf.mul(o.y, g));
            })
          )([x, gm, bt]);
          return [out.y, out.mean!, out.variance!, ...grads];
        },
      );
      const ref = batchNormRef(xv, gmv, btv, gv, n, c, eps);
      const tol = { atol: 5e-5, rtol: 1e-4 };
      assertClose(y, ref.y, { ...tol, what: `y ${shape}` });
      assertClose(mean, ref.mean, { ...tol, what: `mean ${shape}` });
      assertClose(vr, ref.vr, { ...tol, what: `variance ${shape}` });
      assertClose(dx, ref.dx, { ...tol, what: `dx ${shape}` });
      const k = Math.ceil(n / 64) + 7;
      assertWithinDotBound(dg, ref.dg, k + 2, `dgamma ${shape}`); // + x̂'s own roundings
      assertWithinDotBound(db, ref.db, k, `dbeta ${shape}`);
      tf.dispose([x, gm, bt, g]);
    }
    assert.equal(webgpuErrorCount(), errors, "WebGPU reported errors (see the printed message)");
    await tf.setBackend("cpu");
    assert.throws(
      () => batchNormTrainWebGPU(tf.ones([2, 4]), tf.ones([4]), tf.zeros([4]), 1e-3),
      /active backend is cpu/,
    );
  },
});

Deno.test({
  name:
    "BatchNorm's moving statistics on webgpu: 2 dispatches from the kernel's statistics, equal to the op form on cpu",
  ignore: !gpu,
  async fn() {
    const shape = [4, 7, 7, 16];
    const [n, c] = [4 * 7 * 7, 16];
    const xv = rnd(n * c, 5, 2, 3);
    const [gmv, btv, mmv, mvv] = [rnd(c, 1, 0.5, 1), rnd(c, 2, 0.5), rnd(c, 3, 0.2), rnd(c, 4, 0.2, 1)];
    const go = async (backend: string) => {
      await tf.setBackend(backend);
      const [x, gm, bt, mm, mv] = [
        tf.tensor(xv, shape),
        tf.tensor1d(gmv),
        tf.tensor1d(btv),
        tf.tensor1d(mmv),
        tf
          .tensor1d(mvv),
      ];
      const rec = recordWebGPUPrograms(() =>
        fusedBatchNormTrain(x, gm, bt, 1e-3, { mean: mm, variance: mv, momentum: 0.9 })
      );
      const { y, movingMean, movingVar } = rec.result;
      const out = await Promise.all([y, movingMean, movingVar].map((t) => t.data() as Promise<Float32Array>));
      tf.dispose([x, gm, bt, mm, mv, y, movingMean, movingVar]);
      return { out, keys: rec.keys };
    };
    await go("cpu"); // the cpu path's constants (ops/constants.ts) are made on first use and kept
    const before = tf.memory().numTensors;
    const g = await go("webgpu");
    const cpu = await go("cpu");
    assert.equal(tf.memory().numTensors, before, "tensors left behind");
    await tf.setBackend("cpu");
    assert.deepEqual(g.keys, ["merba_bn_stats", "merba_bn_forward", "merba_bn_moving", "merba_bn_moving"]);
    // float32 rounding: the statistics' sums differ in order between the kernels (over 196 rows: ≲ 1e-5)
    assertClose(g.out[0], cpu.out[0], { atol: 5e-5, rtol: 1e-4, what: "y" });
    assertClose(g.out[1], cpu.out[1], { atol: 1e-6, rtol: 1e-5, what: "moving mean" });
    assertClose(g.out[2], cpu.out[2], { atol: 1e-6, rtol: 1e-5, what: "moving variance (unbiased)" });
    // against the definition: 0.9·old + 0.1·μ, 0.9·old + 0.1·σ²·n/(n − 1)
    const mu = new Float64Array(c), vr = new Float64Array(c);
    for (let r = 0; r < n; r++) for (let j = 0; j < c; j++) mu[j] += xv[r * c + j] / n;
    for (let r = 0; r < n; r++) for (let j = 0; j < c; j++) vr[j] += (xv[r * c + j] - mu[j]) ** 2 / (n - 1);
    assertClose(g.out[1], Array.from(mu, (m, j) => 0.9 * mmv[j] + 0.1 * m), {
      atol: 1e-6,
      rtol: 1e-5,
      what: "mean def",
    });
    assertClose(g.out[2], Array.from(vr, (v, j) => 0.9 * mvv[j] + 0.1 * v), {
      atol: 1e-6,
      rtol: 1e-5,
      what: "var def",
    });
  },
});

Deno.test({
  name: "depthwise token convolution on webgpu (WGSL): y, dx, dW equal float64 (dW within the row-sum bound)",
  ignore: !gpu,
  async fn() {
    await tf.setBackend("webgpu");
    watchActiveWebGPUDevice();
    const errors = webgpuErrorCount();
    for (const [b, l, c, k] of [[2, 49, 8, 3], [3, 5, 4, 4], [1, 7, 3, 5], [40, 49, 8, 3]]) {
      const left = Math.floor((k - 1) / 2);
      const xv = rnd(b * l * c, l + k, 1.5);
      const wv = rnd(k * c, c + k, 0.7);
      const gv = rnd(b * l * c, b + l, 1, 0.2);
      const x = tf.tensor3d(xv, [b, l, c]);
      const w = tf.tensor4d(wv, [1, k, c, 1]);
      const g = tf.tensor3d(gv, [b, l, c]);
      const [y, dx, dw] = await runRecorded(
        `dwconv [${b}, ${l}, ${c}] k ${k}`,
        ["merba_dwconv"],
        ["merba_dwconv", "merba_dwconv", "merba_dwconv_dx", "merba_dwconv_dw"],
        () => [
          fusedDepthwiseConv1d(x, w),
          ...tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.mul(fusedDepthwiseConv1d(xx, ww), g)))([
            x,
            w,
          ]),
        ],
      );
      // float64 reference
      const yr = new Float64Array(b * l * c), ya = new Float64Array(b * l * c);
      const dxr = new Float64Array(b * l * c), dxa = new Float64Array(b * l * c);
      const dwr = new Float64Array(k * c), dwa = new Float64Array(k * c);
      for (let s = 0; s < b; s++) {
        for (let t = 0; t < l; t++) {
          for (let j = 0; j < k; j++) {
            const src = t + j - left;
            if (src < 0 || src >= l) continue;
            for (let ch = 0; ch < c; ch++) {
              const xi = (s * l + src) * c + ch, yi = (s * l + t) * c + ch, wi = j * c + ch;
              yr[yi] += xv[xi] * wv[wi];
              ya[yi] += Math.abs(xv[xi] * wv[wi]);
              dxr[xi] += gv[yi] * wv[wi];
              dxa[xi] += Math.abs(gv[yi] * wv[wi]);
              dwr[wi] += xv[xi] * gv[yi];
              dwa[wi] += Math.abs(xv[xi] * gv[yi]);
            }
          }
        }
      }
      const what = `[${b}, ${l}, ${c}] k ${k}`;
      assertWithinDotBound(y, [yr, ya], k + 1, `y ${what}`);
      assertWithinDotBound(dx, [dxr, dxa], k + 1, `dx ${what}`);
      assertWithinDotBound(dw, [dwr, dwa], Math.ceil((b * l) / 64) + 7, `dW ${what}`);
      // and the tfjs-op form (depthwiseConv2d) agrees within the same bounds
      const prev = setWebGPULayerImpl("ops");
      const yo = fusedDepthwiseConv1d(x, w);
      setWebGPULayerImpl(prev);
      assertWithinDotBound(await yo.data() as Float32Array, [yr, ya], k + 1, `y via tfjs ops ${what}`);
      tf.dispose([x, w, g, yo]);
    }
    assert.equal(webgpuErrorCount(), errors, "WebGPU reported errors (see the printed message)");
    await tf.setBackend("cpu");
    assert.throws(
      () => depthwiseConv1dWebGPU(tf.ones([1, 4, 2]), tf.ones([1, 3, 2, 1])),
      /active backend is cpu/,
    );
  },
});

Deno.test({
  name:
    "3×3 convolution on webgpu (WGSL): y, dx, dK equal float64 within the dot-product bounds; 1 + 2 dispatches",
  ignore: !gpu,
  async fn() {
    await tf.setBackend("webgpu");
    watchActiveWebGPUDevice();
    const errors = webgpuErrorCount();
    // merba-tiny's stem (3→16, s2 at 28×28; 16→32, s2 at 14×14), odd sizes, stride 1 and 3
    for (
      const [b, h, w, ci, co, s] of [[4, 28, 28, 3, 16, 2], [2, 14, 14, 16, 32, 2], [1, 5, 7, 2, 3, 1], [
        2,
        7,
        5,
        3,
        2,
        3,
      ]]
    ) {
      const ho = Math.floor((h - 1) / s) + 1, wo = Math.floor((w - 1) / s) + 1;
      const xv = rnd(b * h * w * ci, h + ci, 1.5);
      const kv = rnd(9 * ci * co, co + s, 0.5);
      const gv = rnd(b * ho * wo * co, b + co, 1, 0.2);
      const x = tf.tensor4d(xv, [b, h, w, ci]);
      const k = tf.tensor4d(kv, [3, 3, ci, co]);
      const g = tf.tensor4d(gv, [b, ho, wo, co]);
      const [y, dx, dk] = await runRecorded(
        `conv3 [${b}, ${h}, ${w}, ${ci}]→${co} s${s}`,
        ["merba_conv3"],
        ["merba_conv3", "merba_conv3", "merba_conv3_dx", "merba_conv3_dk"],
        () => [
          fusedConv3x3(x, k, s),
          ...tf.grads((xx: tf.Tensor, kk: tf.Tensor) => tf.sum(tf.mul(fusedConv3x3(xx, kk, s), g)))([x, k]),
        ],
      );
      const yr = new Float64Array(y.length), ya = new Float64Array(y.length);
      const dxr = new Float64Array(xv.length), dxa = new Float64Array(xv.length);
      const dkr = new Float64Array(kv.length), dka = new Float64Array(kv.length);
      for (let bb = 0; bb < b; bb++) {
        for (let oy = 0; oy < ho; oy++) {
          for (let ox = 0; ox < wo; ox++) {
            for (let ky = 0; ky < 3; ky++) {
              for (let kx = 0; kx < 3; kx++) {
                const yy = oy * s + ky - 1, xx = ox * s + kx - 1;
                if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                for (let c = 0; c < ci; c++) {
                  for (let o = 0; o < co; o++) {
                    const xi = ((bb * h + yy) * w + xx) * ci + c;
                    const ki = ((ky * 3 + kx) * ci + c) * co + o;
                    const yi = ((bb * ho + oy) * wo + ox) * co + o;
                    yr[yi] += xv[xi] * kv[ki];
                    ya[yi] += Math.abs(xv[xi] * kv[ki]);
                    dxr[xi] += gv[yi] * kv[ki];
                    dxa[xi] += Math.abs(gv[yi] * kv[ki]);
                    dkr[ki] += xv[xi] * gv[yi];
                    dka[ki] += Math.abs(xv[xi] * gv[yi]);
                  }
                }
              }
            }
          }
        }
      }
      const what = `[${b}, ${h}, ${w}, ${ci}]→${co} s${s}`;
      assertWithinDotBound(y, [yr, ya], 9 * ci + 1, `y ${what}`);
      assertWithinDotBound(dx, [dxr, dxa], 9 * co + 1, `dx ${what}`);
      assertWithinDotBound(dk, [dkr, dka], Math.ceil((b * ho * wo) / 64) + 7, `dK ${what}`);
      // the tfjs-op form (pad + conv2d) gives the same forward within the bound
      const prev = setWebGPULayerImpl("ops");
      const yo = fusedConv3x3(x, k, s);
      setWebGPULayerImpl(prev);
      assertWithinDotBound(await yo.data() as Float32Array, [yr, ya], 9 * ci + 1, `y via tfjs ops ${what}`);
      tf.dispose([x, k, g, yo]);
    }
    assert.equal(webgpuErrorCount(), errors, "WebGPU reported errors (see the printed message)");
    await tf.setBackend("cpu");
    assert.throws(
      () => conv3x3WebGPU(tf.ones([1, 4, 4, 2]), tf.ones([3, 3, 2, 2]), 1),
      /active backend is cpu/,
    );
  },
});
