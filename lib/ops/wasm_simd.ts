/**
 * Loading and memory handling shared by merba's embedded WebAssembly SIMD modules (the selective scan,
 * `selective_scan_simd.ts`, and the layer kernels, `../layers/layer_simd.ts`): base64 decoding,
 * instantiation (null where WebAssembly SIMD is unavailable) and a per-call bump allocator over a module's
 * memory.
 *
 * @module
 */

/** What every merba SIMD module exports besides its kernels. */
export interface SimdModuleBase {
  memory: WebAssembly.Memory;
  /** First byte after the module's static data. */
  heapBase(): number;
}

function decodeBase64(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Instantiates an embedded module; null when this runtime cannot (no WebAssembly, or no 128-bit SIMD). */
export function instantiateSimd<T extends SimdModuleBase>(base64: string): T | null {
  try {
    const mod = new WebAssembly.Module(decodeBase64(base64));
    return new WebAssembly.Instance(mod, {}).exports as unknown as T;
  } catch {
    return null;
  }
}

/**
 * Bump allocator over a module's memory for one call: 16-byte aligned regions with 16 bytes of slack after
 * each (kernels may read and write up to 3 floats past a region's end).
 */
export class Arena {
  private next: number;
  /** `what` names the caller in errors; `fallback` says how to avoid the WebAssembly path. */
  constructor(
    private readonly m: SimdModuleBase,
    private readonly what: string,
    private readonly fallback: string,
  ) {
    this.next = (m.heapBase() + 15) & ~15;
  }
  /** Reserves `floats` float32 (plus slack); returns the byte offset. */
  take(floats: number): number {
    const at = this.next;
    this.next = at + ((floats * 4 + 15) & ~15) + 16;
    return at;
  }
  /**
   * Grows the memory to hold everything taken (it is kept for later calls: a module's memory stays at the
   * size of its largest call so far); returns a fresh Float32Array view of it.
   */
  commit(): Float32Array {
    const need = this.next - this.m.memory.buffer.byteLength;
    if (need > 0) {
      try {
        this.m.memory.grow(Math.ceil(need / 65536));
      } catch (e) {
        throw new RangeError(
          `${this.what} (WebAssembly SIMD): this call needs ${(this.next / 2 ** 20).toFixed(0)} MiB of ` +
            `WebAssembly memory, more than can be allocated (${(e as Error).message}); split the batch or ` +
            this.fallback,
        );
      }
    }
    return new Float32Array(this.m.memory.buffer);
  }
}

/** Copies `v` to byte offset `at` of `heap` (nothing for null); returns `at`, or 0 for null. */
export function put(heap: Float32Array, at: number, v: Float32Array | null): number {
  if (!v) return 0;
  heap.set(v, at >> 2);
  return at;
}
