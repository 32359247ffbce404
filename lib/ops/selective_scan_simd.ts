/**
 * WebAssembly SIMD selective-scan kernels for the `cpu` (and `wasm`) backend.
 *
 * The module is built from `wasm/selective_scan.ts` (AssemblyScript) by `scripts/build_wasm.sh` and embedded in
 * `selective_scan_simd_wasm.ts`. Same math as the JavaScript loops of `selective_scan_cpu.ts`, in float32 with
 * four state entries per instruction (the state size `n` must be a multiple of 4; other sizes use the
 * JavaScript loops) and the element-wise softplus/sigmoid/SiLU four time steps at a time. The JavaScript loops
 * accumulate in float64; the two agree to float32 rounding (tests compare both with the mamba golden fixtures
 * under the same tolerances). Inputs are copied into the module's memory and outputs copied back: a few
 * hundred microseconds at MERba sizes.
 *
 * @module
 */
import { SCAN_SIMD_WASM_BASE64 } from "./selective_scan_simd_wasm.ts";
import { Arena, instantiateSimd, put, type SimdModuleBase } from "./wasm_simd.ts";

/** Arrays of one scan call (the layout of `selective_scan_cpu.ts`). */
export interface SimdScanArrays {
  b: number;
  d: number;
  l: number;
  n: number;
  u: Float32Array;
  delta: Float32Array;
  A: Float32Array;
  B: Float32Array;
  C: Float32Array;
  D: Float32Array | null;
  z: Float32Array | null;
  bias: Float32Array | null;
  softplus: boolean;
}

/** Gradient buffers (float32, shapes of the inputs), filled by {@link scanBackwardSimd}. */
export interface SimdScanGrads {
  du: Float32Array;
  ddelta: Float32Array;
  dA: Float32Array;
  dB: Float32Array;
  dC: Float32Array;
  dD: Float32Array | null;
  dz: Float32Array | null;
  dbias: Float32Array | null;
}

interface ScanExports extends SimdModuleBase {
  forwardScratchBytes(l: number, n: number): number;
  backwardScratchBytes(l: number, n: number): number;
  scanForward(...args: number[]): void;
  scanBackward(...args: number[]): void;
}

let exportsCache: ScanExports | null | undefined;

/** The instantiated module, or null where WebAssembly SIMD is not available (the JavaScript loops are used). */
function scanModule(): ScanExports | null {
  if (exportsCache === undefined) exportsCache = instantiateSimd<ScanExports>(SCAN_SIMD_WASM_BASE64);
  return exportsCache;
}

/** True when the SIMD kernels can run here (WebAssembly with 128-bit SIMD). */
export function simdScanAvailable(): boolean {
  return scanModule() !== null;
}

/** True when the SIMD kernels handle a scan with state size `n` (available and `n % 4 === 0`). */
export function simdScanSupports(n: number): boolean {
  return n > 0 && n % 4 === 0 && simdScanAvailable();
}

/** Byte offsets of a call's inputs in the module memory (0 for an absent optional input). */
interface InputOffsets {
  u: number;
  delta: number;
  A: number;
  B: number;
  C: number;
  D: number;
  z: number;
  bias: number;
}

/** Reserves the inputs of `s` in `a` (call before {@link Arena.commit}). */
function takeInputs(a: Arena, s: SimdScanArrays): InputOffsets {
  return {
    u: a.take(s.u.length),
    delta: a.take(s.delta.length),
    A: a.take(s.A.length),
    B: a.take(s.B.length),
    C: a.take(s.C.length),
    D: s.D ? a.take(s.D.length) : 0,
    z: s.z ? a.take(s.z.length) : 0,
    bias: s.bias ? a.take(s.bias.length) : 0,
  };
}

/** Copies the inputs of `s` to their offsets; returns the scan's leading arguments (shapes, pointers, flag). */
function putInputs(heap: Float32Array, p: InputOffsets, s: SimdScanArrays): number[] {
  for (const k of ["u", "delta", "A", "B", "C", "D", "z", "bias"] as const) put(heap, p[k], s[k]);
  return [s.b, s.d, s.l, s.n, p.u, p.delta, p.A, p.B, p.C, p.D, p.z, p.bias, s.softplus ? 1 : 0];
}

/** Forward scan with the SIMD kernel: writes `out` `[b, d, l]` and, when given, `last` `[b, d, n]`. */
export function scanForwardSimd(s: SimdScanArrays, out: Float32Array, last: Float32Array | null): void {
  const m = scanModule();
  if (!m || !simdScanSupports(s.n)) {
    throw new Error(`scanForwardSimd: needs WebAssembly SIMD and n % 4 == 0 (n = ${s.n})`);
  }
  const a = new Arena(m, "selective scan", 'use setCpuScanImpl("js")');
  const inp = takeInputs(a, s);
  const pOut = a.take(out.length);
  const pLast = last ? a.take(last.length) : 0;
  const pScratch = a.take(m.forwardScratchBytes(s.l, s.n) / 4);
  const heap = a.commit();
  m.scanForward(...putInputs(heap, inp, s), pOut, pLast, pScratch);
  out.set(heap.subarray(pOut >> 2, (pOut >> 2) + out.length));
  if (last) last.set(heap.subarray(pLast >> 2, (pLast >> 2) + last.length));
}

/** Backward scan with the SIMD kernel (recomputes the states per lane); fills every buffer of `g`. */
export function scanBackwardSimd(
  s: SimdScanArrays,
  G: Float32Array,
  gLast: Float32Array | null,
  g: SimdScanGrads,
): void {
  const m = scanModule();
  if (!m || !simdScanSupports(s.n)) {
    throw new Error(`scanBackwardSimd: needs WebAssembly SIMD and n % 4 == 0 (n = ${s.n})`);
  }
  const a = new Arena(m, "selective scan", 'use setCpuScanImpl("js")');
  const inp = takeInputs(a, s);
  const pG = a.take(G.length);
  const pGLast = gLast ? a.take(gLast.length) : 0;
  const keys = ["du", "ddelta", "dA", "dB", "dC", "dD", "dz", "dbias"] as const;
  const pg = keys.map((k) => (g[k] ? a.take(g[k]!.length) : 0));
  const pScratch = a.take(m.backwardScratchBytes(s.l, s.n) / 4);
  const heap = a.commit();
  const args = putInputs(heap, inp, s);
  put(heap, pG, G);
  put(heap, pGLast, gLast);
  m.scanBackward(...args, pG, pGLast, ...pg, pScratch);
  keys.forEach((k, i) => {
    const dst = g[k];
    if (dst) dst.set(heap.subarray(pg[i] >> 2, (pg[i] >> 2) + dst.length));
  });
}
