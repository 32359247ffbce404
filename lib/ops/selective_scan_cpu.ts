/**
 * Selective-scan kernels for the tfjs `cpu` backend: forward and backward as plain loops over typed arrays.
 *
 * Registered under the kernel names of `selective_scan.ts`. One pass per `(b, d)` lane keeps the `n` states
 * in a small Float64Array (float64 accumulation; results are rounded to float32 once). The backward
 * recomputes the lane's forward states into a reusable `l·n` scratch (what mamba's CUDA kernel does
 * per chunk) instead of keeping `b·d·l·n` states alive between forward and backward.
 *
 * Backward (merba-model.md §2): with g[t] = G[t]·silu(z[t]) and the adjoint
 *   λ[l] = g[l]·C[:,l] + G_last,   λ[t] = g[t]·C[:,t] + ā[t+1] ⊙ λ[t+1]
 * the gradients are ∂ā[t] = λ[t] ⊙ h[t−1], ∂Δ[t] = Σ_n (∂ā·ā·A + λ·B·u), ∂A = Σ_{b,t} ∂ā·ā·Δ,
 * ∂B[n,t] = Σ_d λ·Δ·u, ∂C[n,t] = Σ_d g·h, ∂u = g·D + Σ_n λ·B·Δ, ∂delta = ∂Δ·σ(delta + bias).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { SelectiveScanAttrs } from "./selective_scan.ts";
import {
  scanBackwardSimd,
  scanForwardSimd,
  type SimdScanArrays,
  simdScanAvailable,
  type SimdScanGrads,
  simdScanSupports,
} from "./selective_scan_simd.ts";

export { simdScanAvailable } from "./selective_scan_simd.ts";

const FWD = "MerbaSelectiveScan";
const BWD = "MerbaSelectiveScanGrad";

interface CpuBackendLike {
  data: { get(id: tf.DataId): { values: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: Float32Array): tf.TensorInfo;
}

/** 2^i for i in [−1100, 1099], the scale of {@link fastExp}. */
const POW2 = new Float64Array(2200);
for (let i = 0; i < 2200; i++) POW2[i] = 2 ** (i - 1100);

/**
 * eˣ for the inner loops: x = k·ln2 + r with |r| ≤ ln2/2, e^r by its degree-7 Taylor polynomial
 * (relative error ≤ 0.347⁸/8! ≈ 6e-9, far below float32's 6e-8), 2^k from a table. About 1.3–2× faster than
 * Math.exp in V8 here; exact limits: 0 below −745 (also for −∞), ∞ above 709, NaN for NaN.
 */
export function fastExp(x: number): number {
  if (!(x > -745)) return x !== x ? x : 0;
  if (x > 709) return Infinity;
  const k = Math.floor(x * 1.4426950408889634 + 0.5);
  const r = x - k * 0.6931471805599453;
  return (1 +
    r * (1 + r * (0.5 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (1 / 720 + r * (1 / 5040)))))))) *
    POW2[k + 1100];
}

/** softplus(x) = log(1 + eˣ), returning x itself for x > 20 (PyTorch's threshold; no overflow). */
export function softplus(x: number): number {
  if (x > 20) return x;
  // log1p(e) = log(1 + e), and e(1 − e/2) below 1e-4 where 1 + e would lose digits (error < 1e-12 relative)
  const e = fastExp(x);
  return e < 1e-4 ? e * (1 - 0.5 * e) : Math.log(1 + e);
}

/** σ(x) = 1 / (1 + e⁻ˣ); for very negative x, e⁻ˣ = ∞ gives 1/∞ = 0, never NaN. */
export function sigmoid(x: number): number {
  return 1 / (1 + fastExp(-x));
}

/**
 * Which loops the `cpu`/`wasm` kernels run: `"simd"` = the WebAssembly SIMD kernels of
 * `selective_scan_simd.ts` (float32; state size a multiple of 4), `"js"` = the JavaScript loops of this file
 * (float64 accumulation, any state size), `"auto"` (default) = SIMD where it is available and supports the
 * state size, JavaScript otherwise.
 */
export type CpuScanImpl = "auto" | "simd" | "js";

let cpuScanImpl: CpuScanImpl = "auto";

/** Chooses the loops of the `cpu`/`wasm` selective-scan kernels (see {@link CpuScanImpl}); returns the previous choice. */
export function setCpuScanImpl(impl: CpuScanImpl): CpuScanImpl {
  if (impl !== "auto" && impl !== "simd" && impl !== "js") {
    throw new RangeError(`setCpuScanImpl: expected "auto", "simd" or "js", got ${JSON.stringify(impl)}`);
  }
  if (impl === "simd" && !simdScanAvailable()) {
    throw new Error('setCpuScanImpl("simd"): WebAssembly SIMD is not available in this runtime');
  }
  const prev = cpuScanImpl;
  cpuScanImpl = impl;
  return prev;
}

/** The current choice of {@link setCpuScanImpl}. */
export function getCpuScanImpl(): CpuScanImpl {
  return cpuScanImpl;
}

function useSimd(n: number): boolean {
  if (cpuScanImpl === "js") return false;
  if (cpuScanImpl === "simd" && !simdScanSupports(n)) {
    throw new Error(
      `selective scan: the SIMD kernel needs a state size that is a multiple of 4, got n = ${n}`,
    );
  }
  return simdScanSupports(n);
}

/** Raw arrays of one scan call, shared by the forward and backward loops (JavaScript and SIMD). */
type ScanArrays = SimdScanArrays;

function gather(inputs: tf.NamedTensorInfoMap, read: ReadInput, attrs: SelectiveScanAttrs): ScanArrays {
  const u = inputs.u!;
  const [b, d, l] = u.shape;
  const n = inputs.A!.shape[1];
  return {
    b,
    d,
    l,
    n,
    u: read(u),
    delta: read(inputs.delta!),
    A: read(inputs.A!),
    B: read(inputs.B!),
    C: read(inputs.C!),
    D: attrs.hasD ? read(inputs.D!) : null,
    z: attrs.hasZ ? read(inputs.z!) : null,
    bias: attrs.hasDeltaBias ? read(inputs.deltaBias!) : null,
    softplus: attrs.deltaSoftplus,
  };
}

/** Copies batch `bi` of a `[b, n, l]` array into `dst` as `[l, n]` (so the inner loop over n is contiguous). */
function transposeBatch(src: Float32Array, bi: number, n: number, l: number, dst: Float64Array): void {
  const base = bi * n * l;
  for (let k = 0; k < n; k++) {
    const row = base + k * l;
    for (let t = 0; t < l; t++) dst[t * n + k] = src[row + t];
  }
}

/**
 * Forward scan over all lanes. Writes out `[b, d, l]` and, when given, lastState `[b, d, n]`.
 * Exported for the benchmark and tests; the op goes through the registered kernel.
 */
export function scanForwardCpu(s: ScanArrays, out: Float32Array, last: Float32Array | null): void {
  const { b, d, l, n, u, delta, A, B, C, D, z, bias } = s;
  const Bt = new Float64Array(l * n);
  const Ct = new Float64Array(l * n);
  const h = new Float64Array(n);
  const aRow = new Float64Array(n);
  for (let bi = 0; bi < b; bi++) {
    transposeBatch(B, bi, n, l, Bt);
    transposeBatch(C, bi, n, l, Ct);
    for (let di = 0; di < d; di++) {
      const lane = (bi * d + di) * l;
      for (let k = 0; k < n; k++) {
        aRow[k] = A[di * n + k];
        h[k] = 0;
      }
      const biasD = bias ? bias[di] : 0;
      const dD = D ? D[di] : 0;
      for (let t = 0; t < l; t++) {
        // Δ = softplus(delta + bias)
        let dt = delta[lane + t] + biasD;
        if (s.softplus) dt = softplus(dt);
        const ut = u[lane + t];
        const dtu = dt * ut;
        const o = t * n;
        let y = 0;
        // h = exp(Δ·A) ⊙ h + Δ·B·u;  y = Σ_n C·h
        for (let k = 0; k < n; k++) {
          const hk = fastExp(dt * aRow[k]) * h[k] + dtu * Bt[o + k];
          h[k] = hk;
          y += Ct[o + k] * hk;
        }
        // out = (y + D·u) · silu(z)
        let res = y + dD * ut;
        if (z) {
          const zt = z[lane + t];
          res *= zt / (1 + fastExp(-zt));
        }
        out[lane + t] = res;
      }
      if (last) {
        const lb = (bi * d + di) * n;
        for (let k = 0; k < n; k++) last[lb + k] = h[k];
      }
    }
  }
}

/** Gradient buffers written by {@link scanBackwardCpu} (float32, shapes of the inputs). */
export type ScanGrads = SimdScanGrads;

/** Backward scan over all lanes (recomputes the states per lane). `G` `[b, d, l]`, `gLast` `[b, d, n]` or null. */
export function scanBackwardCpu(
  s: ScanArrays,
  G: Float32Array,
  gLast: Float32Array | null,
  g: ScanGrads,
): void {
  const { b, d, l, n, u, delta, A, B, C, D, z, bias } = s;
  const Bt = new Float64Array(l * n);
  const Ct = new Float64Array(l * n);
  const dBt = new Float64Array(l * n); // Σ_d for the current batch, [l, n]
  const dCt = new Float64Array(l * n);
  const dA = new Float64Array(d * n);
  const dD = new Float64Array(d);
  const dbias = new Float64Array(d);
  // h[t] for the current lane at row t + 1 of [l + 1, n]; row 0 is h[−1] = 0 (no branch for t = 0)
  const hs = new Float64Array((l + 1) * n);
  const decay = new Float64Array(l * n); // ā[t]
  const dts = new Float64Array(l); // Δ[t]
  const sig = new Float64Array(l); // σ(delta[t] + bias)
  const mu = new Float64Array(n); // μ[t] = ā[t+1] ⊙ λ[t+1], the adjoint carried to step t
  const aRow = new Float64Array(n);
  const dArow = new Float64Array(n);
  for (let bi = 0; bi < b; bi++) {
    transposeBatch(B, bi, n, l, Bt);
    transposeBatch(C, bi, n, l, Ct);
    dBt.fill(0);
    dCt.fill(0);
    for (let di = 0; di < d; di++) {
      const lane = (bi * d + di) * l;
      const biasD = bias ? bias[di] : 0;
      const Dd = D ? D[di] : 0;
      for (let k = 0; k < n; k++) {
        aRow[k] = A[di * n + k];
        dArow[k] = 0;
      }
      // Forward again, keeping Δ, ā and h per step.
      for (let t = 0; t < l; t++) {
        let dt = delta[lane + t] + biasD;
        if (s.softplus) {
          // keep σ(delta + bias) for ∂delta = ∂Δ·σ(·)
          sig[t] = sigmoid(dt);
          dt = softplus(dt);
        }
        dts[t] = dt;
        const dtu = dt * u[lane + t];
        const o = t * n;
        for (let k = 0; k < n; k++) {
          const a = fastExp(dt * aRow[k]);
          decay[o + k] = a;
          hs[o + n + k] = a * hs[o + k] + dtu * Bt[o + k];
        }
      }
      // Reverse scan: λ[t] = g[t]·C[t] + μ[t], μ[t−1] = ā[t] ⊙ λ[t], starting from μ[l−1] = G_last.
      if (gLast) {
        const lb = (bi * d + di) * n;
        for (let k = 0; k < n; k++) mu[k] = gLast[lb + k];
      } else mu.fill(0);
      let dDd = 0;
      let dbiasd = 0;
      for (let t = l - 1; t >= 0; t--) {
        const o = t * n;
        const ut = u[lane + t];
        const dt = dts[t];
        let gt = G[lane + t];
        if (z) {
          // o = y + D·u;  ∂z = G·o·σ(z)(1 + z(1 − σ(z)));  g = G·silu(z)
          let y = 0;
          for (let k = 0; k < n; k++) y += Ct[o + k] * hs[o + n + k];
          const zt = z[lane + t];
          const sz = sigmoid(zt);
          g.dz![lane + t] = gt * (y + Dd * ut) * sz * (1 + zt * (1 - sz));
          gt *= zt * sz;
        }
        dDd += gt * ut;
        let du = gt * Dd;
        let dDelta = 0;
        const dtu = dt * ut;
        for (let k = 0; k < n; k++) {
          const lk = mu[k] + gt * Ct[o + k];
          const ak = decay[o + k];
          mu[k] = ak * lk;
          dCt[o + k] += gt * hs[o + n + k];
          // ∂ā·ā = λ·h[t−1]·ā
          const daa = lk * hs[o + k] * ak;
          const bk = Bt[o + k];
          dDelta += daa * aRow[k] + lk * bk * ut;
          dArow[k] += daa * dt;
          dBt[o + k] += lk * dtu;
          du += lk * bk * dt;
        }
        g.du[lane + t] = du;
        if (s.softplus) dDelta *= sig[t];
        g.ddelta[lane + t] = dDelta;
        dbiasd += dDelta;
      }
      dD[di] += dDd;
      dbias[di] += dbiasd;
      for (let k = 0; k < n; k++) dA[di * n + k] += dArow[k];
    }
    const base = bi * n * l;
    for (let k = 0; k < n; k++) {
      for (let t = 0; t < l; t++) {
        g.dB[base + k * l + t] = dBt[t * n + k];
        g.dC[base + k * l + t] = dCt[t * n + k];
      }
    }
  }
  g.dA.set(dA);
  if (g.dD) g.dD.set(dD);
  if (g.dbias) g.dbias.set(dbias);
}

/** Reads a kernel input as a Float32Array (the backend's storage or a copy). */
export type ReadInput = (t: tf.TensorInfo) => Float32Array;
/** Creates a kernel output from values. */
export type MakeOutput = (shape: number[], values: Float32Array) => tf.TensorInfo;

/** The forward kernel body on plain arrays, shared by the `cpu` and `wasm` registrations. */
export function forwardKernel(
  inputs: tf.NamedTensorInfoMap,
  a: SelectiveScanAttrs,
  read: ReadInput,
  make: MakeOutput,
): tf.TensorInfo[] {
  const s = gather(inputs, read, a);
  const out = new Float32Array(s.b * s.d * s.l);
  const last = a.returnLastState ? new Float32Array(s.b * s.d * s.n) : null;
  if (useSimd(s.n)) scanForwardSimd(s, out, last);
  else scanForwardCpu(s, out, last);
  const res = [make([s.b, s.d, s.l], out)];
  if (last) res.push(make([s.b, s.d, s.n], last));
  return res;
}

/** The backward kernel body on plain arrays, shared by the `cpu` and `wasm` registrations. */
export function backwardKernel(
  inputs: tf.NamedTensorInfoMap,
  a: SelectiveScanAttrs,
  read: ReadInput,
  make: MakeOutput,
): tf.TensorInfo[] {
  const s = gather(inputs, read, a);
  const { b, d, l, n } = s;
  const dLast = inputs.dLast!;
  const g: ScanGrads = {
    du: new Float32Array(b * d * l),
    ddelta: new Float32Array(b * d * l),
    dA: new Float32Array(d * n),
    dB: new Float32Array(b * n * l),
    dC: new Float32Array(b * n * l),
    dD: a.hasD ? new Float32Array(d) : null,
    dz: a.hasZ ? new Float32Array(b * d * l) : null,
    dbias: a.hasDeltaBias ? new Float32Array(d) : null,
  };
  const gLast = dLast.shape.length === 3 ? read(dLast) : null;
  if (useSimd(n)) scanBackwardSimd(s, read(inputs.dOut!), gLast, g);
  else scanBackwardCpu(s, read(inputs.dOut!), gLast, g);
  const empty = () => make([0], new Float32Array(0));
  return [
    make([b, d, l], g.du),
    make([b, d, l], g.ddelta),
    make([d, n], g.dA),
    make([b, n, l], g.dB),
    make([b, n, l], g.dC),
    g.dD ? make([d], g.dD) : empty(),
    g.dz ? make([b, d, l], g.dz) : empty(),
    g.dbias ? make([d], g.dbias) : empty(),
  ];
}

function cpuIo(backend: unknown): [ReadInput, MakeOutput] {
  const cpu = backend as CpuBackendLike;
  return [
    (t) => cpu.data.get(t.dataId).values as Float32Array,
    (shape, v) => cpu.makeTensorInfo(shape, "float32", v),
  ];
}

tf.registerKernel({
  kernelName: FWD,
  backendName: "cpu",
  kernelFunc: ({ inputs, backend, attrs }) =>
    forwardKernel(inputs, attrs as unknown as SelectiveScanAttrs, ...cpuIo(backend)),
});

tf.registerKernel({
  kernelName: BWD,
  backendName: "cpu",
  kernelFunc: ({ inputs, backend, attrs }) =>
    backwardKernel(inputs, attrs as unknown as SelectiveScanAttrs, ...cpuIo(backend)),
});
