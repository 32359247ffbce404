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

interface ScanExports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  forwardScratchBytes(l: number, n: number): number;
  backwardScratchBytes(l: number, n: number): number;
  scanForward(...args: number[]): void;
  scanBackward(...args: number[]): void;
}

let exportsCache: ScanExports | null | undefined;

function decodeBase64(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The instantiated module, or null where WebAssembly SIMD is not available (the JavaScript loops are used). */
function scanModule(): ScanExports | null {
  if (exportsCache !== undefined) return exportsCache;
  try {
    const mod = new WebAssembly.Module(decodeBase64(SCAN_SIMD_WASM_BASE64));
    exportsCache = new WebAssembly.Instance(mod, {}).exports as unknown as ScanExports;
  } catch {
    exportsCache = null;
  }
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

/** Bump allocator over the module memory for one call: 16-byte aligned regions, 16 bytes of slack after each. */
class Arena {
  private next: number;
  constructor(private readonly m: ScanExports) {
    this.next = (m.heapBase() + 15) & ~15;
  }
  /** Reserves `floats` float32 (plus slack); returns the byte offset. */
  take(floats: number): number {
    const at = this.next;
    this.next = at + ((floats * 4 + 15) & ~15) + 16;
    return at;
  }
  /**
   * Grows the memory to hold everything taken (it is kept for later calls: the module's memory stays at the
   * size of the largest call so far); returns a fresh Float32Array view of it.
   */
  commit(): Float32Array {
    const need = this.next - this.m.memory.buffer.byteLength;
    if (need > 0) {
      try {
        this.m.memory.grow(Math.ceil(need / 65536));
      } catch (e) {
        throw new RangeError(
          `selective scan (WebAssembly SIMD): this call needs ${(this.next / 2 ** 20).toFixed(0)} MiB of ` +
            `WebAssembly memory, more than can be allocated (${
              (e as Error).message
            }); split the batch or use ` +
            `setCpuScanImpl("js")`,
        );
      }
    }
    return new Float32Array(this.m.memory.buffer);
  }
}

function put(heap: Float32Array, at: number, v: Float32Array | null): number {
  if (!v) return 0;
  heap.set(v, at >> 2);
  return at;
}

/** Forward scan with the SIMD kernel: writes `out` `[b, d, l]` and, when given, `last` `[b, d, n]`. */
export function scanForwardSimd(s: SimdScanArrays, out: Float32Array, last: Float32Array | null): void {
  const m = scanModule();
  if (!m || !simdScanSupports(s.n)) {
    throw new Error(`scanForwardSimd: needs WebAssembly SIMD and n % 4 == 0 (n = ${s.n})`);
  }
  const { b, d, l, n } = s;
  const a = new Arena(m);
  const p = {
    u: a.take(s.u.length),
    delta: a.take(s.delta.length),
    A: a.take(s.A.length),
    B: a.take(s.B.length),
    C: a.take(s.C.length),
    D: s.D ? a.take(s.D.length) : 0,
    z: s.z ? a.take(s.z.length) : 0,
    bias: s.bias ? a.take(s.bias.length) : 0,
    out: a.take(out.length),
    last: last ? a.take(last.length) : 0,
    scratch: a.take(m.forwardScratchBytes(l, n) / 4),
  };
  const heap = a.commit();
  put(heap, p.u, s.u);
  put(heap, p.delta, s.delta);
  put(heap, p.A, s.A);
  put(heap, p.B, s.B);
  put(heap, p.C, s.C);
  put(heap, p.D, s.D);
  put(heap, p.z, s.z);
  put(heap, p.bias, s.bias);
  m.scanForward(
    b,
    d,
    l,
    n,
    p.u,
    p.delta,
    p.A,
    p.B,
    p.C,
    p.D,
    p.z,
    p.bias,
    s.softplus ? 1 : 0,
    p.out,
    p.last,
    p.scratch,
  );
  out.set(heap.subarray(p.out >> 2, (p.out >> 2) + out.length));
  if (last) last.set(heap.subarray(p.last >> 2, (p.last >> 2) + last.length));
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
  const { b, d, l, n } = s;
  const a = new Arena(m);
  const p = {
    u: a.take(s.u.length),
    delta: a.take(s.delta.length),
    A: a.take(s.A.length),
    B: a.take(s.B.length),
    C: a.take(s.C.length),
    D: s.D ? a.take(s.D.length) : 0,
    z: s.z ? a.take(s.z.length) : 0,
    bias: s.bias ? a.take(s.bias.length) : 0,
    G: a.take(G.length),
    gLast: gLast ? a.take(gLast.length) : 0,
    du: a.take(g.du.length),
    ddelta: a.take(g.ddelta.length),
    dA: a.take(g.dA.length),
    dB: a.take(g.dB.length),
    dC: a.take(g.dC.length),
    dD: g.dD ? a.take(g.dD.length) : 0,
    dz: g.dz ? a.take(g.dz.length) : 0,
    dbias: g.dbias ? a.take(g.dbias.length) : 0,
    scratch: a.take(m.backwardScratchBytes(l, n) / 4),
  };
  const heap = a.commit();
  put(heap, p.u, s.u);
  put(heap, p.delta, s.delta);
  put(heap, p.A, s.A);
  put(heap, p.B, s.B);
  put(heap, p.C, s.C);
  put(heap, p.D, s.D);
  put(heap, p.z, s.z);
  put(heap, p.bias, s.bias);
  put(heap, p.G, G);
  put(heap, p.gLast, gLast);
  m.scanBackward(
    b,
    d,
    l,
    n,
    p.u,
    p.delta,
    p.A,
    p.B,
    p.C,
    p.D,
    p.z,
    p.bias,
    s.softplus ? 1 : 0,
    p.G,
    p.gLast,
    p.du,
    p.ddelta,
    p.dA,
    p.dB,
    p.dC,
    p.dD,
    p.dz,
    p.dbias,
    p.scratch,
  );
  const get = (at: number, dst: Float32Array | null) => {
    if (dst) dst.set(heap.subarray(at >> 2, (at >> 2) + dst.length));
  };
  get(p.du, g.du);
  get(p.ddelta, g.ddelta);
  get(p.dA, g.dA);
  get(p.dB, g.dB);
  get(p.dC, g.dC);
  get(p.dD, g.dD);
  get(p.dz, g.dz);
  get(p.dbias, g.dbias);
}
