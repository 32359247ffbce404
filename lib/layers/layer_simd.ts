/**
 * WebAssembly SIMD kernels for the fused layers (`fused.ts`) on the `cpu` and `wasm` backends: linear layers,
 * SiLU, GELU, LayerNorm, scaled dot-product attention, the depthwise token convolution and the 3×3
 * convolution, forward and backward.
 *
 * Built from `wasm/layers.ts` (AssemblyScript) by `scripts/build_wasm.sh` and embedded in `layer_simd_wasm.ts`.
 * Same maths as the JavaScript kernels of `fused.ts`, in float32 with four channels (or elements) per
 * instruction; exp is the four-lane polynomial of `wasm/vmath.ts` (relative error below float32 rounding).
 * LayerNorm, attention (head width), the depthwise convolution and the 3×3 convolution (output channels)
 * vectorise over channels and need a multiple of 4 ({@link layerSimdFor}; the callers keep the JavaScript loops
 * otherwise); linear layers, SiLU and GELU take any size. Inputs are copied into the module's memory and
 * outputs copied back.
 *
 * @module
 */
import { LAYER_SIMD_WASM_BASE64 } from "./layer_simd_wasm.ts";
import { Arena, instantiateSimd, put, type SimdModuleBase } from "../ops/wasm_simd.ts";

type Fn = (...args: number[]) => void;

interface LayerExports extends SimdModuleBase {
  siluForward: Fn;
  siluBackward: Fn;
  geluForward: Fn;
  geluBackward: Fn;
  layerNormForward: Fn;
  layerNormBackward: Fn;
  attentionForward: Fn;
  attentionBackward: Fn;
  dwConv1dForward: Fn;
  dwConv1dBackward: Fn;
  conv3x3Forward: Fn;
  conv3x3Backward: Fn;
  linearForward: Fn;
  linearBackward: Fn;
}

let exportsCache: LayerExports | null | undefined;

function layerModule(): LayerExports | null {
  if (exportsCache === undefined) exportsCache = instantiateSimd<LayerExports>(LAYER_SIMD_WASM_BASE64);
  return exportsCache;
}

/** `"auto"`: the SIMD kernels wherever they apply; `"simd"`: the same, but an error where SIMD is unavailable;
 * `"js"`: always the JavaScript loops. */
export type CpuLayerImpl = "auto" | "simd" | "js";

let impl: CpuLayerImpl = "auto";

/** Chooses the loops of the fused layer kernels on `cpu`/`wasm`; returns the previous choice. */
export function setCpuLayerImpl(choice: CpuLayerImpl): CpuLayerImpl {
  if (choice !== "auto" && choice !== "simd" && choice !== "js") {
    throw new RangeError(`setCpuLayerImpl: expected "auto", "simd" or "js", got ${JSON.stringify(choice)}`);
  }
  if (choice === "simd" && !layerModule()) {
    throw new Error('setCpuLayerImpl("simd"): WebAssembly SIMD is not available in this runtime');
  }
  const prev = impl;
  impl = choice;
  return prev;
}

/** The current choice of {@link setCpuLayerImpl}. */
export function getCpuLayerImpl(): CpuLayerImpl {
  return impl;
}

/** True when the SIMD layer kernels are on (available and not switched off). */
export function layerSimdOn(): boolean {
  return impl !== "js" && layerModule() !== null;
}

/** True when the SIMD kernels run for a kernel whose channel count is `channels` (on, and a multiple of 4). */
export function layerSimdFor(channels: number): boolean {
  return channels > 0 && channels % 4 === 0 && layerSimdOn();
}

/**
 * Runs one kernel: copies `ins` into the module memory, reserves `outs` (float counts) and `scratch` floats,
 * calls `fn(inPtrs, outPtrs, scratchPtr)` and returns copies of the outputs.
 */
function call(
  what: string,
  ins: Float32Array[],
  outs: number[],
  scratch: number,
  fn: (m: LayerExports, i: number[], o: number[], s: number) => void,
): Float32Array[] {
  const m = layerModule();
  if (!m) throw new Error(`${what}: WebAssembly SIMD is not available`);
  const a = new Arena(m, what, 'use setCpuLayerImpl("js")');
  const pi = ins.map((v) => a.take(v.length));
  const po = outs.map((n) => a.take(n));
  const ps = scratch > 0 ? a.take(scratch) : 0;
  const heap = a.commit();
  ins.forEach((v, k) => put(heap, pi[k], v));
  fn(m, pi, po, ps);
  return outs.map((n, k) => heap.slice(po[k] >> 2, (po[k] >> 2) + n));
}

/** SiLU forward `x·σ(x)` (the backward recomputes σ from x). */
export function siluForwardSimd(x: Float32Array): Float32Array {
  const n = x.length;
  return call("silu", [x], [n], 0, (m, i, o) => m.siluForward(i[0], n, o[0]))[0];
}

/** SiLU backward. */
export function siluBackwardSimd(x: Float32Array, g: Float32Array): Float32Array {
  const n = x.length;
  return call("silu", [x, g], [n], 0, (m, i, o) => m.siluBackward(i[0], i[1], n, o[0]))[0];
}

/** GELU (tanh approximation) forward (the backward recomputes the tanh term from x). */
export function geluForwardSimd(x: Float32Array): Float32Array {
  const n = x.length;
  return call("gelu", [x], [n], 0, (m, i, o) => m.geluForward(i[0], n, o[0]))[0];
}

/** GELU backward. */
export function geluBackwardSimd(x: Float32Array, g: Float32Array): Float32Array {
  const n = x.length;
  return call("gelu", [x, g], [n], 0, (m, i, o) => m.geluBackward(i[0], i[1], n, o[0]))[0];
}

/** LayerNorm forward over rows of `c` channels (`c % 4 == 0`): `[mean, rstd, y]` (per-row statistics kept). */
export function layerNormForwardSimd(
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  c: number,
  eps: number,
): [Float32Array, Float32Array, Float32Array] {
  const n = x.length / c;
  const [mean, rstd, y] = call(
    "layerNorm",
    [x, gamma, beta],
    [n, n, x.length],
    0,
    (m, i, o) => m.layerNormForward(i[0], i[1], i[2], n, c, eps, o[0], o[1], o[2]),
  );
  return [mean, rstd, y];
}

/** LayerNorm backward from the input and the kept row statistics: `[dx, dγ, dβ]`. */
export function layerNormBackwardSimd(
  x: Float32Array,
  g: Float32Array,
  gamma: Float32Array,
  mean: Float32Array,
  rstd: Float32Array,
  c: number,
): [Float32Array, Float32Array, Float32Array] {
  const n = rstd.length;
  const [dx, dg, db] = call(
    "layerNorm",
    [x, g, gamma, mean, rstd],
    [g.length, c, c],
    0,
    (m, i, o) => m.layerNormBackward(i[0], i[1], i[2], i[3], i[4], n, c, o[0], o[1], o[2]),
  );
  return [dx, dg, db];
}

/** Attention forward for `nb` heads of `n` tokens × `d` channels (`d % 4 == 0`): `[P, O]`. */
export function attentionForwardSimd(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  nb: number,
  n: number,
  d: number,
  scale: number,
): [Float32Array, Float32Array] {
  const [p, o] = call(
    "attention",
    [q, k, v],
    [nb * n * n, nb * n * d],
    (n + 3) & ~3,
    (m, i, out, s) => m.attentionForward(i[0], i[1], i[2], nb, n, d, scale, out[0], out[1], s),
  );
  return [p, o];
}

/** Attention backward from the kept probabilities: `[dQ, dK, dV]`. */
export function attentionBackwardSimd(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  p: Float32Array,
  g: Float32Array,
  nb: number,
  n: number,
  d: number,
  scale: number,
): [Float32Array, Float32Array, Float32Array] {
  const len = nb * n * d;
  const [dq, dk, dv] = call(
    "attention",
    [q, k, v, p, g],
    [len, len, len],
    n,
    (m, i, o, s) => m.attentionBackward(i[0], i[1], i[2], i[3], i[4], nb, n, d, scale, o[0], o[1], o[2], s),
  );
  return [dq, dk, dv];
}

/** Depthwise token convolution forward: `x [b, l, c]` (`c % 4 == 0`), `w [k, c]`, `left` zeros of padding. */
export function dwConv1dForwardSimd(
  x: Float32Array,
  w: Float32Array,
  b: number,
  l: number,
  c: number,
  k: number,
  left: number,
): Float32Array {
  return call("depthwiseConv1d", [x, w], [x.length], 0, (m, i, o) => {
    m.dwConv1dForward(i[0], i[1], b, l, c, k, left, o[0]);
  })[0];
}

/** Depthwise token convolution backward: `[dx, dw]`. */
export function dwConv1dBackwardSimd(
  x: Float32Array,
  w: Float32Array,
  g: Float32Array,
  b: number,
  l: number,
  c: number,
  k: number,
  left: number,
): [Float32Array, Float32Array] {
  const [dx, dw] = call("depthwiseConv1d", [x, w, g], [x.length, w.length], 0, (m, i, o) => {
    m.dwConv1dBackward(i[0], i[1], i[2], b, l, c, k, left, o[0], o[1]);
  });
  return [dx, dw];
}

/** Shape of a 3×3 convolution call: input `[b, h, w, ci]`, `co` outputs (`co % 4 == 0`), stride, output size. */
export interface Conv3x3Shape {
  b: number;
  h: number;
  w: number;
  ci: number;
  co: number;
  stride: number;
  ho: number;
  wo: number;
}

/** 3×3 convolution forward (zero padding 1): `y [b, ho, wo, co]`. */
export function conv3x3ForwardSimd(x: Float32Array, kernel: Float32Array, s: Conv3x3Shape): Float32Array {
  return call("conv3x3", [x, kernel], [s.b * s.ho * s.wo * s.co], 0, (m, i, o) => {
    m.conv3x3Forward(i[0], i[1], s.b, s.h, s.w, s.ci, s.co, s.stride, s.ho, s.wo, o[0]);
  })[0];
}

/** 3×3 convolution backward: `[dx, dkernel]`. */
export function conv3x3BackwardSimd(
  x: Float32Array,
  kernel: Float32Array,
  g: Float32Array,
  s: Conv3x3Shape,
): [Float32Array, Float32Array] {
  const [dx, dk] = call("conv3x3", [x, kernel, g], [x.length, kernel.length], 0, (m, i, o) => {
    m.conv3x3Backward(i[0], i[1], i[2], s.b, s.h, s.w, s.ci, s.co, s.stride, s.ho, s.wo, o[0], o[1]);
  });
  return [dx, dk];
}

/** Linear layer forward `x [n, i] · W [i, o] (+ b)` → `[n, o]` (any `o`). */
export function linearForwardSimd(
  x: Float32Array,
  w: Float32Array,
  bias: Float32Array | null,
  n: number,
  i: number,
  o: number,
): Float32Array {
  const ins = bias ? [x, w, bias] : [x, w];
  return call("linear", ins, [n * o], 0, (m, p, out) => {
    m.linearForward(p[0], p[1], bias ? p[2] : 0, n, i, o, out[0]);
  })[0];
}

/** Linear layer backward: `dx = g·Wᵀ`, `dW = xᵀ·g`, `db = Σ g` (all rows; `db` only when `withBias`). */
export function linearBackwardSimd(
  x: Float32Array,
  w: Float32Array,
  g: Float32Array,
  n: number,
  i: number,
  o: number,
  withBias: boolean,
): { dx: Float32Array; dw: Float32Array; db: Float32Array | null } {
  const outs = withBias ? [n * i, i * o, o] : [n * i, i * o];
  const r = call("linear", [x, w, g], outs, i * o, (m, p, out, wt) => {
    m.linearBackward(p[0], p[1], p[2], n, i, o, out[0], out[1], withBias ? out[2] : 0, wt);
  });
  return { dx: r[0], dw: r[1], db: withBias ? r[2] : null };
}
