/**
 * Selective-scan kernels for the tfjs `webgpu` backend (WGSL `WebGPUProgram`s).
 *
 * Every scan is a fixed number of dispatches for the whole batch, never one per time step:
 *
 * - **Sequential** (default, short sequences such as MERba windows, `l = ws²`): one invocation per lane
 *   `(b, d)` keeps the `n` states in registers and walks the sequence. Forward: 1 dispatch. Backward:
 *   1 dispatch (recompute the lane's states into the output buffer, then the reverse scan) plus small
 *   strided-sum dispatches that reduce the per-lane partial gradients of A, B, C, D and deltaBias.
 * - **Chunked associative scan** (long sequences with few lanes): the recurrence `h = a·h + x` composes as
 *   `(a₁, x₁) ∘ (a₂, x₂) = (a₁a₂, a₂x₁ + x₂)` (apply 1, then 2). The sequence is split into `K` chunks of
 *   `T` steps; dispatch 1 computes every chunk's aggregate `(Π ā, h_end from h = 0)` in parallel over
 *   `(b, d, chunk)`; dispatch 2 gives each `(b, d, chunk)` invocation its carry-in by composing the
 *   aggregates of the chunks before it (`O(K·n)`, K ≈ √l), then rescans its chunk. The backward pass does the
 *   same for the adjoint `μ[t−1] = ā[t]·(g[t]·C[t] + μ[t])`, which composes with the same decay products.
 *
 * The math (forward and backward) is the one of `selective_scan_cpu.ts` (merba-model.md §2).
 * Specialisations baked into the WGSL (state size `n`, optional D / z / deltaBias, softplus, chunked, last
 * state output) are all part of each program's `shaderKey`; sizes are uniforms.
 *
 * Notes: WebGPU's default limit of 8 storage buffers per stage (tfjs does not raise it) is why A, D and
 * deltaBias are packed into one buffer and B, C into another for the backward. The backward's scratch
 * (`3l + 2nl + K(n + 2)` floats per lane) runs in batch slices when it would exceed the device's storage
 * binding size (128 MiB on llvmpipe): a slice's dispatches are the same, so the count stays independent
 * of `l`. On llvmpipe (2 cores) the chunked path is not faster than the sequential one at (1, 64, 1024, 16),
 * since 64 lanes already occupy both cores; it exists for GPUs, where 64 lanes would idle the device.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import type { SelectiveScanAttrs } from "./selective_scan.ts";

const FWD = "MerbaSelectiveScan";
const BWD = "MerbaSelectiveScanGrad";
const WORKGROUP = 64;

/** Sequences at least this long may take the chunked path (see {@link chunkedScanIsBetter}). */
export const CHUNKED_MIN_LENGTH = 128;
/** Chunked path when the lanes' states `b·d·n` number fewer than this many times `l`. */
export const CHUNKED_LANES_PER_STEP = 16;

/**
 * The automatic choice of the WebGPU path: the chunked scan when the sequence is long (`l ≥ 128`) and there
 * are few states to run in parallel (`b·d·n < 16·l`), e.g. `(b, d, l, n) = (1, 64, 1024, 16)`; the
 * sequential per-lane scan otherwise, e.g. MERba windows `(512, 32, 49, 8)`.
 */
export function chunkedScanIsBetter(b: number, d: number, l: number, n: number): boolean {
  return l >= CHUNKED_MIN_LENGTH && b * d * n < CHUNKED_LANES_PER_STEP * l;
}

/** Chunk length `T` of the chunked path: the power of two nearest √l, clamped to [8, 256]. */
export function chunkLength(l: number): number {
  const p = 2 ** Math.round(Math.log2(Math.sqrt(Math.max(l, 1))));
  return Math.min(256, Math.max(8, p));
}

interface Spec {
  n: number;
  hasD: boolean;
  hasZ: boolean;
  hasBias: boolean;
  softplus: boolean;
}

function specKey(s: Spec): string {
  return `n${s.n}_D${+s.hasD}_z${+s.hasZ}_bias${+s.hasBias}_sp${+s.softplus}`;
}

/**
 * Input variable names (WGSL arrays) in binding order. WebGPU's default limit is 8 storage buffers per
 * shader stage (tfjs does not raise it), the output included, so A, D and deltaBias travel packed as one
 * `Pm [d, n + 2]` and, in the backward programs, B and C as one `BC [b, 2n, l]`.
 */
function scanVars(s: Spec, packedBC: boolean, extra: string[]): string[] {
  const v = packedBC ? ["U", "Dt", "Pm", "BC"] : ["U", "Dt", "Pm", "Bm", "Cm"];
  if (s.hasZ) v.push("Zg");
  return v.concat(extra);
}

/** WGSL helpers shared by the scan programs: Δ (with bias and a safe softplus) and σ. */
function helpers(s: Spec, packedBC: boolean, withC = true): string {
  const N = s.n;
  const P = N + 2;
  const cIndex = packedBC
    ? `BC[(bi * ${2 * N} + ${N} + k) * uniforms.seqLen + t]`
    : `Cm[(bi * ${N} + k) * uniforms.seqLen + t]`;
  // WGSL "auto" layouts drop unused bindings, so C is only declared (and read) where it is used.
  const ssC = withC ? `fn ssC(bi : i32, k : i32, t : i32) -> f32 { return ${cIndex}; }` : "";
  return `
  // B[bi, k, t] and C[bi, k, t] of [b, n, l] (packed: BC [b, 2n, l])
  fn ssB(bi : i32, k : i32, t : i32) -> f32 {
    return ${
    packedBC ? `BC[(bi * ${2 * N} + k) * uniforms.seqLen + t]` : `Bm[(bi * ${N} + k) * uniforms.seqLen + t]`
  };
  }
  ${ssC}
  // Pm [d, n + 2] = [A row, D, deltaBias]
  fn ssA(di : i32, k : i32) -> f32 { return Pm[di * ${P} + k]; }
  fn ssD(di : i32) -> f32 { return Pm[di * ${P} + ${N}]; }
  // Δ = softplus(delta + bias); softplus(x) = x for x > 20; log1p(e) ≈ e(1 − e/2) for tiny e (f32 has no log1p)
  fn ssDelta(i : i32, di : i32) -> f32 {
    var dt = Dt[i] + Pm[di * ${P} + ${N + 1}];
    ${
    s.softplus
      ? `if (dt <= 20.0) {
      let e = exp(dt);
      dt = select(log(1.0 + e), e * (1.0 - 0.5 * e), e < 1e-3);
    }`
      : ""
  }
    return dt;
  }
  // σ(x) = 1 / (1 + e^(−x)); overflow of e^(−x) gives 0, never NaN
  fn ssSigmoid(x : f32) -> f32 {
    return 1.0 / (1.0 + exp(-x));
  }
  // raw (delta + bias), the softplus argument
  fn ssDeltaRaw(i : i32, di : i32) -> f32 {
    return Dt[i] + Pm[di * ${P} + ${N + 1}];
  }`;
}

// lanes: lanes in this dispatch; laneOff: global index of its first lane (the backward runs in batch slices)
const SCAN_UNIFORMS =
  "lanes : i32, chans : i32, seqLen : i32, chunk : i32, nChunks : i32, aux : i32, laneOff : i32,";

function scanUniforms(
  lanes: number,
  d: number,
  l: number,
  chunk: number,
  nChunks: number,
  aux: number,
  laneOff = 0,
): Array<{ type: string; data: number[] }> {
  return [lanes, d, l, chunk, nChunks, aux, laneOff].map((v) => ({ type: "int32", data: [v] }));
}

/**
 * Packs the per-channel parameters: `Pm [d, n + 2] = [A[d, :], D[d] or 0, deltaBias[d] or 0]`.
 */
class PackParamsProgram implements WebGPUProgram {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  uniforms = "chans : i32,";
  constructor(private s: Spec, d: number) {
    this.variableNames = ["Am"];
    if (s.hasD) this.variableNames.push("Dv");
    if (s.hasBias) this.variableNames.push("Bias");
    this.outputShape = [d, s.n + 2];
    this.dispatch = [Math.ceil((d * (s.n + 2)) / WORKGROUP), 1, 1];
    this.shaderKey = `merba_ss_pack_params_n${s.n}_D${+s.hasD}_bias${+s.hasBias}`;
  }
  getUserCode(): string {
    const N = this.s.n;
    return `
  fn main(index : i32) {
    if (index >= uniforms.chans * ${N + 2}) { return; }
    let di = index / ${N + 2};
    let k = index % ${N + 2};
    var v = 0.0;
    if (k < ${N}) { v = Am[di * ${N} + k]; }
    ${this.s.hasD ? `if (k == ${N}) { v = Dv[di]; }` : ""}
    ${this.s.hasBias ? `if (k == ${N + 1}) { v = Bias[di]; }` : ""}
    result[index] = v;
  }`;
  }
}

/** Packs B and C `[b, n, l]` into `BC [b, 2n, l]` (backward only, to stay within 8 storage buffers). */
class PackBCProgram implements WebGPUProgram {
  variableNames = ["Bm", "Cm"];
  outputShape: number[];
  shaderKey = "merba_ss_pack_bc";
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  uniforms = "half : i32, total : i32,";
  constructor(b: number, n: number, l: number) {
    this.outputShape = [b, 2 * n, l];
    this.dispatch = [Math.ceil((2 * b * n * l) / WORKGROUP), 1, 1];
  }
  getUserCode(): string {
    return `
  fn main(index : i32) {
    if (index >= uniforms.total) { return; }
    let bi = index / (2 * uniforms.half);
    let r = index % (2 * uniforms.half);
    if (r < uniforms.half) {
      result[index] = Bm[bi * uniforms.half + r];
    } else {
      result[index] = Cm[bi * uniforms.half + r - uniforms.half];
    }
  }`;
  }
}

/**
 * Chunk aggregates, one invocation per `(lane, chunk)`: `Π ā` and `h_end` (scan of the chunk from h = 0),
 * and with `backward` also `μ_out` (the adjoint scan of the chunk from μ = 0). Output
 * `[lanes, K, 2n or 3n]`; with `Glast` (backward) a copy of `G_last [lanes, n]` follows.
 */
class ScanAggregateProgram implements WebGPUProgram {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  uniforms = SCAN_UNIFORMS;
  constructor(
    private s: Spec,
    lanes: number,
    nChunks: number,
    private backward: boolean,
    private hasLast: boolean,
  ) {
    const extra = backward ? ["Gout"] : [];
    if (backward && hasLast) extra.push("Glast");
    // forward aggregates read neither C nor z
    this.variableNames = backward ? scanVars(s, true, extra) : ["U", "Dt", "Pm", "Bm"];
    const width = (backward ? 3 : 2) * s.n;
    this.outputShape = [lanes * nChunks * width + (backward && hasLast ? lanes * s.n : 0)];
    this.dispatch = [Math.ceil((lanes * nChunks) / WORKGROUP), 1, 1];
    this.shaderKey = `merba_ss_agg_${specKey(s)}_bwd${+backward}_glast${+(backward && hasLast)}`;
  }
  getUserCode(): string {
    const N = this.s.n;
    const W = (this.backward ? 3 : 2) * N;
    return `${helpers(this.s, this.backward, this.backward)}
  fn main(index : i32) {
    if (index >= uniforms.lanes * uniforms.nChunks) { return; }
    let ll = index / uniforms.nChunks;   // lane within this dispatch (outputs)
    let lane = uniforms.laneOff + ll;     // global lane (inputs)
    let c = index % uniforms.nChunks;
    let bi = lane / uniforms.chans;
    let di = lane % uniforms.chans;
    let L = uniforms.seqLen;
    let t0 = c * uniforms.chunk;
    let t1 = min(t0 + uniforms.chunk, L);
    var a : array<f32, ${N}>;
    var h : array<f32, ${N}>;
    var p : array<f32, ${N}>;
    for (var k = 0; k < ${N}; k++) { a[k] = ssA(di, k); p[k] = 1.0; }
    for (var t = t0; t < t1; t++) {
      let dt = ssDelta(lane * L + t, di);
      let dtu = dt * U[lane * L + t];
      for (var k = 0; k < ${N}; k++) {
        let e = exp(dt * a[k]);
        p[k] = p[k] * e;
        h[k] = e * h[k] + dtu * ssB(bi, k, t);
      }
    }
    let o = index * ${W};
    for (var k = 0; k < ${N}; k++) { result[o + k] = p[k]; result[o + ${N} + k] = h[k]; }
    ${
      this.backward
        ? `// μ[t−1] = ā[t]·(g[t]·C[t] + μ[t]) from μ = 0 at the chunk's end
    var mu : array<f32, ${N}>;
    for (var t = t1 - 1; t >= t0; t--) {
      let dt = ssDelta(lane * L + t, di);
      var g = Gout[lane * L + t];
      ${this.s.hasZ ? "let zt = Zg[lane * L + t]; g = g * zt * ssSigmoid(zt);" : ""}
      for (var k = 0; k < ${N}; k++) {
        mu[k] = exp(dt * a[k]) * (g * ssC(bi, k, t) + mu[k]);
      }
    }
    for (var k = 0; k < ${N}; k++) { result[o + ${2 * N} + k] = mu[k]; }`
        : ""
    }
    ${
      this.backward && this.hasLast
        ? `if (c == 0) {
      let g0 = uniforms.lanes * uniforms.nChunks * ${W} + ll * ${N};
      for (var k = 0; k < ${N}; k++) { result[g0 + k] = Glast[lane * ${N} + k]; }
    }`
        : ""
    }
  }`;
  }
}

/**
 * Forward scan, one invocation per `(lane, chunk)` (K = 1: the sequential scan). Output `out [b, d, l]`,
 * or flat `[b·d·l + b·d·n]` with the last state appended.
 */
class ScanForwardProgram implements WebGPUProgram {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  uniforms = SCAN_UNIFORMS;
  constructor(
    private s: Spec,
    shape: [number, number, number],
    nChunks: number,
    private chunked: boolean,
    private withLast: boolean,
  ) {
    const [b, d, l] = shape;
    this.variableNames = scanVars(s, false, chunked ? ["Agg"] : []);
    this.outputShape = withLast ? [b * d * l + b * d * s.n] : [b, d, l];
    this.dispatch = [Math.ceil((b * d * nChunks) / WORKGROUP), 1, 1];
    this.shaderKey = `merba_ss_fwd_${specKey(s)}_chunked${+chunked}_last${+withLast}`;
  }
  getUserCode(): string {
    const N = this.s.n;
    return `${helpers(this.s, false)}
  fn main(index : i32) {
    if (index >= uniforms.lanes * uniforms.nChunks) { return; }
    let lane = index / uniforms.nChunks;
    let c = index % uniforms.nChunks;
    let bi = lane / uniforms.chans;
    let di = lane % uniforms.chans;
    let L = uniforms.seqLen;
    let t0 = c * uniforms.chunk;
    let t1 = min(t0 + uniforms.chunk, L);
    var a : array<f32, ${N}>;
    var h : array<f32, ${N}>;
    for (var k = 0; k < ${N}; k++) { a[k] = ssA(di, k); }
    ${
      this.chunked
        ? `// carry-in: compose the aggregates (Π ā, h_end) of chunks 0..c−1
    for (var j = 0; j < c; j++) {
      let ab = (lane * uniforms.nChunks + j) * ${2 * N};
      for (var k = 0; k < ${N}; k++) { h[k] = Agg[ab + k] * h[k] + Agg[ab + ${N} + k]; }
    }`
        : ""
    }
    let dD = ssD(di);
    for (var t = t0; t < t1; t++) {
      let i = lane * L + t;
      let dt = ssDelta(i, di);
      let ut = U[i];
      let dtu = dt * ut;
      var y = 0.0;
      // h = exp(Δ·A) ⊙ h + Δ·B·u;  y = Σ_n C·h
      for (var k = 0; k < ${N}; k++) {
        let hk = exp(dt * a[k]) * h[k] + dtu * ssB(bi, k, t);
        h[k] = hk;
        y = y + ssC(bi, k, t) * hk;
      }
      // out = (y + D·u)·silu(z)
      var r = y + dD * ut;
      ${this.s.hasZ ? "let zt = Zg[i]; r = r * zt * ssSigmoid(zt);" : ""}
      result[i] = r;
    }
    ${
      this.withLast
        ? `if (c == uniforms.nChunks - 1) {
      for (var k = 0; k < ${N}; k++) { result[uniforms.aux + lane * ${N} + k] = h[k]; }
    }`
        : ""
    }
  }`;
  }
}

/**
 * Backward scan, one invocation per `(lane, chunk)`. Output: `S` fields per lane,
 * `[du (l), ddelta (l), dz (l), dC part (n×l), dB part (n×l), K × (dA part (n), dD part, dbias part)]`:
 * du, ddelta, dz as `[b, d, l]` blocks, the rest field-major (`field·lanes + lane`) so that neighbouring
 * invocations write neighbouring addresses;
 * the dC fields first hold the recomputed states h[t] and are overwritten step by step in the reverse scan.
 */
class ScanBackwardProgram implements WebGPUProgram {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  uniforms = SCAN_UNIFORMS;
  constructor(
    private s: Spec,
    lanes: number,
    stride: number,
    nChunks: number,
    private chunked: boolean,
    private hasLast: boolean,
  ) {
    const extra = ["Gout"];
    // chunked: G_last travels inside Agg (see ScanAggregateProgram)
    if (hasLast && !chunked) extra.push("Glast");
    if (chunked) extra.push("Agg");
    this.variableNames = scanVars(s, true, extra);
    this.outputShape = [lanes * stride];
    this.dispatch = [Math.ceil((lanes * nChunks) / WORKGROUP), 1, 1];
    this.shaderKey = `merba_ss_bwd_${specKey(s)}_chunked${+chunked}_glast${+hasLast}`;
  }
  getUserCode(): string {
    const N = this.s.n;
    const z = this.s.hasZ;
    let initMu = "";
    if (this.hasLast && !this.chunked) {
      initMu = `for (var k = 0; k < ${N}; k++) { mu[k] = Glast[lane * ${N} + k]; }`;
    } else if (this.hasLast) {
      initMu = `let g0 = uniforms.lanes * K * ${3 * N} + ll * ${N};
    for (var k = 0; k < ${N}; k++) { mu[k] = Agg[g0 + k]; }`;
    }
    return `${helpers(this.s, true)}
  fn main(index : i32) {
    if (index >= uniforms.lanes * uniforms.nChunks) { return; }
    let ll = index / uniforms.nChunks;   // lane within this dispatch (outputs)
    let lane = uniforms.laneOff + ll;     // global lane (inputs)
    let c = index % uniforms.nChunks;
    let K = uniforms.nChunks;
    let bi = lane / uniforms.chans;
    let di = lane % uniforms.chans;
    let L = uniforms.seqLen;
    let t0 = c * uniforms.chunk;
    let t1 = min(t0 + uniforms.chunk, L);
    // packed output: du, ddelta, dz as three [lanes, l] blocks (their final layout), then the fields
    // h[t]/∂C[k,t], ∂B[k,t], per chunk (dA, dD, dbias) field-major: field f of this lane at F0 + f·lanes + lane,
    // so that neighbouring invocations touch neighbouring addresses
    let LN = uniforms.lanes;
    let F0 = 3 * L * LN;
    let hOff = F0 + ll;
    let bOff = F0 + ${N} * L * LN + ll;
    let rOff = F0 + (${2 * N} * L + c * ${N + 2}) * LN + ll;
    var a : array<f32, ${N}>;
    var h : array<f32, ${N}>;
    var hin : array<f32, ${N}>;
    var mu : array<f32, ${N}>;
    var dA : array<f32, ${N}>;
    for (var k = 0; k < ${N}; k++) { a[k] = ssA(di, k); }
    ${initMu}
    ${
      this.chunked
        ? `// carry-in state from chunks 0..c−1; adjoint carry μ from chunks K−1..c+1 (μ[l−1] = G_last)
    for (var j = 0; j < c; j++) {
      let ab = (ll * K + j) * ${3 * N};
      for (var k = 0; k < ${N}; k++) { hin[k] = Agg[ab + k] * hin[k] + Agg[ab + ${N} + k]; }
    }
    for (var j = K - 1; j > c; j--) {
      let ab = (ll * K + j) * ${3 * N};
      for (var k = 0; k < ${N}; k++) { mu[k] = Agg[ab + k] * mu[k] + Agg[ab + ${2 * N} + k]; }
    }`
        : ""
    }
    // recompute this chunk's states h[t] into the dC block
    for (var k = 0; k < ${N}; k++) { h[k] = hin[k]; }
    for (var t = t0; t < t1; t++) {
      let dt = ssDelta(lane * L + t, di);
      let dtu = dt * U[lane * L + t];
      for (var k = 0; k < ${N}; k++) {
        h[k] = exp(dt * a[k]) * h[k] + dtu * ssB(bi, k, t);
        result[hOff + (k * L + t) * LN] = h[k];
      }
    }
    let dD = ssD(di);
    var dDacc = 0.0;
    var dBiasAcc = 0.0;
    // reverse scan: λ[t] = g[t]·C[t] + μ[t];  μ[t−1] = ā[t]·λ[t]  (h holds h[t1 − 1] here)
    for (var t = t1 - 1; t >= t0; t--) {
      let i = lane * L + t;     // inputs
      let io = ll * L + t;      // outputs
      let dt = ssDelta(i, di);
      let ut = U[i];
      var g = Gout[i];
      ${
      z
        ? `// o = y + D·u;  ∂z = G·o·σ(z)(1 + z(1 − σ(z)));  g = G·silu(z)
      var y = 0.0;
      for (var k = 0; k < ${N}; k++) { y = y + ssC(bi, k, t) * h[k]; }
      let zt = Zg[i];
      let sz = ssSigmoid(zt);
      result[2 * L * LN + io] = g * (y + dD * ut) * sz * (1.0 + zt * (1.0 - sz));
      g = g * zt * sz;`
        : ""
    }
      dDacc = dDacc + g * ut;
      var du = g * dD;
      var dDelta = 0.0;
      for (var k = 0; k < ${N}; k++) {
        let e = exp(dt * a[k]);
        let bk = ssB(bi, k, t);
        let lam = g * ssC(bi, k, t) + mu[k];
        let hk = h[k];                               // h[t], carried in registers
        var hp = hin[k];
        if (t > t0) { hp = result[hOff + (k * L + t - 1) * LN]; }
        h[k] = hp;
        result[hOff + (k * L + t) * LN] = g * hk;          // ∂C part = g·h[t]
        let daa = lam * hp * e;                      // ∂ā·ā = λ·h[t−1]·ā
        dDelta = dDelta + daa * a[k] + lam * bk * ut;
        dA[k] = dA[k] + daa * dt;
        result[bOff + (k * L + t) * LN] = lam * dt * ut;    // ∂B part = λ·Δ·u
        du = du + lam * bk * dt;
        mu[k] = e * lam;
      }
      ${this.s.softplus ? "dDelta = dDelta * ssSigmoid(ssDeltaRaw(i, di));" : ""}
      result[io] = du;
      result[L * LN + io] = dDelta;
      dBiasAcc = dBiasAcc + dDelta;
    }
    for (var k = 0; k < ${N}; k++) { result[rOff + k * LN] = dA[k]; }
    result[rOff + ${N} * LN] = dDacc;
    result[rOff + ${N + 1} * LN] = dBiasAcc;
  }`;
  }
}

/**
 * Strided gather-sum: `out[p·inner + q] = Σ_{i<c1, j<c2} P[p·outerStride + q·innerStride + off + i·s1 + j·s2]`.
 * Extracts and reduces the packed per-lane blocks (sums over channels for dB/dC, over batch and chunks for
 * dA/dD/dbias). Optionally writes at `outOff` of an existing output, adding to it with `accumulate`
 * (the backward's batch slices).
 */
class StridedSumProgram implements WebGPUProgram {
  variableNames = ["P"];
  outputShape: number[];
  shaderKey = "merba_ss_strided_sum";
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  uniforms =
    "total : i32, inner : i32, outerStride : i32, innerStride : i32, off : i32, c1 : i32, s1 : i32, c2 : i32, " +
    "s2 : i32, swap : i32, outOff : i32, accumulate : i32,";
  constructor(shape: number[], total: number) {
    this.outputShape = shape;
    this.dispatch = [Math.ceil(total / WORKGROUP), 1, 1];
  }
  getUserCode(): string {
    return `
  fn main(index : i32) {
    if (index >= uniforms.total) { return; }
    // swap: neighbouring invocations take neighbouring p (coalesced reads when p·outerStride is contiguous)
    var p = index / uniforms.inner;
    var q = index % uniforms.inner;
    if (uniforms.swap == 1) {
      let outer = uniforms.total / uniforms.inner;
      p = index % outer;
      q = index / outer;
    }
    let base = p * uniforms.outerStride + q * uniforms.innerStride + uniforms.off;
    var acc = 0.0;
    for (var i = 0; i < uniforms.c1; i++) {
      for (var j = 0; j < uniforms.c2; j++) {
        acc = acc + P[base + i * uniforms.s1 + j * uniforms.s2];
      }
    }
    let o = uniforms.outOff + p * uniforms.inner + q;
    if (uniforms.accumulate == 1) {
      result[o] = result[o] + acc;
    } else {
      result[o] = acc;
    }
  }`;
  }
}

function int32Uniforms(values: number[]): Array<{ type: string; data: number[] }> {
  return values.map((v) => ({ type: "int32", data: [v] }));
}

function stridedSum(
  backend: WebGPUBackend,
  packed: tf.TensorInfo,
  shape: number[],
  p: {
    inner: number;
    outerStride: number;
    innerStride?: number;
    off: number;
    c1?: number;
    s1?: number;
    c2?: number;
    s2?: number;
    /** Map neighbouring invocations to neighbouring `p` instead of neighbouring `q`. */
    swap?: boolean;
    /** Write into this output (at `outOff`) instead of a new one; `shape` is then the written part. */
    into?: tf.TensorInfo;
    outOff?: number;
    accumulate?: boolean;
  },
): tf.TensorInfo {
  const total = shape.reduce((x, y) => x * y, 1);
  return backend.runWebGPUProgram(
    new StridedSumProgram(p.into ? p.into.shape : shape, total),
    [packed],
    "float32",
    int32Uniforms([
      total,
      p.inner,
      p.outerStride,
      p.innerStride ?? 1,
      p.off,
      p.c1 ?? 1,
      p.s1 ?? 0,
      p.c2 ?? 1,
      p.s2 ?? 0,
      p.swap ? 1 : 0,
      p.outOff ?? 0,
      p.accumulate ? 1 : 0,
    ]),
    p.into,
  );
}

function specOf(inputs: tf.NamedTensorInfoMap, a: SelectiveScanAttrs): Spec {
  return {
    n: inputs.A!.shape[1],
    hasD: a.hasD,
    hasZ: a.hasZ,
    hasBias: a.hasDeltaBias,
    softplus: a.deltaSoftplus,
  };
}

/** Runs the parameter packing; returns `Pm [d, n + 2]` (caller disposes). */
function packParams(wg: WebGPUBackend, inputs: tf.NamedTensorInfoMap, s: Spec): tf.TensorInfo {
  const v = [inputs.A!];
  if (s.hasD) v.push(inputs.D!);
  if (s.hasBias) v.push(inputs.deltaBias!);
  const d = inputs.A!.shape[0];
  return wg.runWebGPUProgram(new PackParamsProgram(s, d), v, "float32", int32Uniforms([d]));
}

function usesChunks(a: SelectiveScanAttrs, b: number, d: number, l: number, n: number): boolean {
  return a.path === 2 || (a.path === 0 && chunkedScanIsBetter(b, d, l, n));
}

tf.registerKernel({
  kernelName: FWD,
  backendName: "webgpu",
  kernelFunc: ({ inputs, backend, attrs }) => {
    const wg = backend as unknown as WebGPUBackend;
    const a = attrs as unknown as SelectiveScanAttrs;
    const s = specOf(inputs, a);
    const [b, d, l] = inputs.u!.shape;
    const lanes = b * d;
    const chunked = usesChunks(a, b, d, l, s.n);
    const T = chunked ? chunkLength(l) : l;
    const K = Math.ceil(l / T);
    const pm = packParams(wg, inputs, s);
    const vars = [inputs.u!, inputs.delta!, pm, inputs.B!, inputs.C!];
    if (s.hasZ) vars.push(inputs.z!);
    const uni = scanUniforms(lanes, d, l, T, K, b * d * l);
    let agg: tf.TensorInfo | null = null;
    if (chunked) {
      const aggVars = vars.slice(0, 4);
      agg = wg.runWebGPUProgram(new ScanAggregateProgram(s, lanes, K, false, false), aggVars, "float32", uni);
    }
    const res = wg.runWebGPUProgram(
      new ScanForwardProgram(s, [b, d, l], K, chunked, a.returnLastState),
      agg ? [...vars, agg] : vars,
      "float32",
      uni,
    );
    if (agg) wg.disposeData(agg.dataId);
    wg.disposeData(pm.dataId);
    if (!a.returnLastState) return [res];
    const out = stridedSum(wg, res, [b, d, l], { inner: l, outerStride: l, off: 0 });
    const last = stridedSum(wg, res, [b, d, s.n], { inner: s.n, outerStride: s.n, off: b * d * l });
    wg.disposeData(res.dataId);
    return [out, last];
  },
});

tf.registerKernel({
  kernelName: BWD,
  backendName: "webgpu",
  kernelFunc: ({ inputs, backend, attrs }) => {
    const wg = backend as unknown as WebGPUBackend;
    const a = attrs as unknown as SelectiveScanAttrs;
    const s = specOf(inputs, a);
    const n = s.n;
    const [b, d, l] = inputs.u!.shape;
    const chunked = usesChunks(a, b, d, l, n);
    const T = chunked ? chunkLength(l) : l;
    const K = Math.ceil(l / T);
    const S = 3 * l + 2 * n * l + K * (n + 2);
    const hasLast = inputs.dLast!.shape.length === 3;
    const pm = packParams(wg, inputs, s);
    const bc = wg.runWebGPUProgram(
      new PackBCProgram(b, n, l),
      [inputs.B!, inputs.C!],
      "float32",
      int32Uniforms([n * l, 2 * b * n * l]),
    );
    const vars = [inputs.u!, inputs.delta!, pm, bc];
    if (s.hasZ) vars.push(inputs.z!);
    vars.push(inputs.dOut!);
    const outs = [
      wg.makeTensorInfo([b, d, l], "float32"),
      wg.makeTensorInfo([b, d, l], "float32"),
      wg.makeTensorInfo([d, n], "float32"),
      wg.makeTensorInfo([b, n, l], "float32"),
      wg.makeTensorInfo([b, n, l], "float32"),
      wg.makeTensorInfo(s.hasD ? [d] : [0], "float32"),
      wg.makeTensorInfo(s.hasZ ? [b, d, l] : [0], "float32"),
      wg.makeTensorInfo(s.hasBias ? [d] : [0], "float32"),
    ];
    // The packed buffer holds S floats per lane; batch slices keep it within one storage binding.
    const bSlice = Math.max(1, Math.min(b, Math.floor(maxBufferBytes(wg) / 4 / (d * S))));
    for (let b0 = 0; b0 < b; b0 += bSlice) {
      const bs = Math.min(bSlice, b - b0);
      backwardSlice(wg, s, vars, inputs, outs, { b, d, l, n, b0, bs, chunked, T, K, S, hasLast });
    }
    wg.disposeData(pm.dataId);
    wg.disposeData(bc.dataId);
    return outs;
  },
});

/** Largest buffer the backward's packed scratch may use (device binding limit, or the override). */
function maxBufferBytes(wg: WebGPUBackend): number {
  if (webgpuScanConfig.maxBufferBytes > 0) return webgpuScanConfig.maxBufferBytes;
  return Math.min(wg.device.limits.maxStorageBufferBindingSize, wg.device.limits.maxBufferSize);
}

/**
 * Tuning knobs of the WebGPU kernels. `maxBufferBytes` caps the backward's per-call scratch (0 = the
 * device's storage-binding limit); tests lower it to exercise the batch slicing.
 */
export const webgpuScanConfig = { maxBufferBytes: 0 };

/** Backward for batch elements [b0, b0 + bs): scan into a packed buffer, then reduce into the outputs. */
function backwardSlice(
  wg: WebGPUBackend,
  s: Spec,
  vars: tf.TensorInfo[],
  inputs: tf.NamedTensorInfoMap,
  outs: tf.TensorInfo[],
  z: {
    b: number;
    d: number;
    l: number;
    n: number;
    b0: number;
    bs: number;
    chunked: boolean;
    T: number;
    K: number;
    S: number;
    hasLast: boolean;
  },
): void {
  const { d, l, n, b0, bs, chunked, T, K, S, hasLast } = z;
  const lanes = bs * d;
  const uni = scanUniforms(lanes, d, l, T, K, S, b0 * d);
  let agg: tf.TensorInfo | null = null;
  if (chunked) {
    const aggVars = hasLast ? [...vars, inputs.dLast!] : vars;
    agg = wg.runWebGPUProgram(new ScanAggregateProgram(s, lanes, K, true, hasLast), aggVars, "float32", uni);
  }
  const bwdVars = [...vars];
  if (hasLast && !chunked) bwdVars.push(inputs.dLast!);
  if (agg) bwdVars.push(agg);
  const P = wg.runWebGPUProgram(
    new ScanBackwardProgram(s, lanes, S, K, chunked, hasLast),
    bwdVars,
    "float32",
    uni,
  );
  if (agg) wg.disposeData(agg.dataId);
  const rOff = 2 * n * l;
  const accumulate = b0 > 0;
  // P: three [bs, d, l] blocks (du, ddelta, dz), then field f of lane (bi, di) at F0 + f·lanes + bi·d + di
  const F0 = 3 * lanes * l;
  const perLane = (block: number, into: tf.TensorInfo) =>
    stridedSum(wg, P, [bs, d, l], {
      inner: l,
      outerStride: l,
      off: block * lanes * l,
      into,
      outOff: b0 * d * l,
    });
  // Σ over channels d: [bs, n, l]
  const overD = (f: number, into: tf.TensorInfo) =>
    stridedSum(wg, P, [bs, n, l], {
      inner: n * l,
      outerStride: d,
      innerStride: lanes,
      off: F0 + f * lanes,
      c1: d,
      s1: 1,
      swap: true,
      into,
      outOff: b0 * n * l,
    });
  // Σ over the slice's batch and the chunks, added to the previous slices': [d, width]
  const overB = (shape: number[], inner: number, f: number, into: tf.TensorInfo) =>
    stridedSum(wg, P, shape, {
      inner,
      outerStride: 1,
      innerStride: lanes,
      off: F0 + f * lanes,
      c1: bs,
      s1: d,
      c2: K,
      s2: (n + 2) * lanes,
      into,
      accumulate,
    });
  perLane(0, outs[0]);
  perLane(1, outs[1]);
  overB([d, n], n, rOff, outs[2]);
  overD(n * l, outs[3]);
  overD(0, outs[4]);
  if (s.hasD) overB([d], 1, rOff + n, outs[5]);
  if (s.hasZ) perLane(2, outs[6]);
  if (s.hasBias) overB([d], 1, rOff + n + 1, outs[7]);
  wg.disposeData(P.dataId);
}
