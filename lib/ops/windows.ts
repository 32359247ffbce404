/**
 * Window partition / reverse in MambaVision's token order, built on one primitive: an injective element
 * gather with a precomputed index table ({@link IndexMap}).
 *
 * Dimension letters: `b` batch, `h`/`w` map height/width, `c` channels, `s` window size (`ws`), `nW` windows
 * per image (`rows · cols`), `l = s²` tokens per window.
 *
 * Why a custom gather: tfjs's `tf.gather` gradient is `unsortedSegmentSum`, which the cpu backend evaluates as
 * one masked reduction per segment (O(segments · elements)), and its `transpose`/`gather` kernels compute an
 * index vector per element. Every token reordering in the model (window partition, scan orders, the switch
 * to the scan's `[b, d, l]` layout) is an injective map from output elements to input elements, so the
 * gradient is the same kind of gather with the inverse table. Both tables are built once per shape and
 * cached. On cpu/wasm the gather is a typed-array loop; on other backends it is `tf.gather` on the flattened
 * tensor (index tables kept as tensors in the cache).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { indexGatherSumWebGPU, indexGatherWebGPU, indexGatherWebGPUApplies } from "./windows_webgpu.ts";
import { cachedScalar, jsBackend } from "./constants.ts";

/**
 * An element map: `out.flat[i] = idx[i] < 0 ? 0 : x.flat[idx[i]]`, `x` of shape `inShape`, `out` of shape
 * `outShape`. An input element may be read several times (e.g. one token in several scan orders): `inv[r][j]`
 * is the `r`-th output element that reads input element `j`, or −1; the gradient sums over `r`.
 */
export interface IndexMap {
  /** Cache key (shape and purpose). */
  key: string;
  inShape: number[];
  outShape: number[];
  idx: Int32Array;
  /** Inverse tables, one per multiplicity level (length 1 for an injective map). */
  inv: Int32Array[];
}

const mapCache = new Map<string, IndexMap>();
const MAP_CACHE_LIMIT = 256;
const tensorCache = new Map<string, { fwd: tf.Tensor1D; bwd: tf.Tensor1D[] }>();
/** Index tables of {@link applyIndexMapSum} on webgpu, by map key (evicted with the map). */
const sumTables = new Map<string, { fwd: tf.Tensor1D; bwd: tf.Tensor1D }>();

function product(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

/**
 * Returns the cached map for `key`, or builds it with `build` (which fills `idx` for the given shapes).
 *
 * @throws {RangeError} when `build` produces an out-of-range index.
 */
export function cachedIndexMap(
  key: string,
  inShape: number[],
  outShape: number[],
  build: (idx: Int32Array) => void,
): IndexMap {
  const hit = mapCache.get(key);
  if (hit) return hit;
  const nIn = product(inShape);
  const idx = new Int32Array(product(outShape));
  build(idx);
  const inv: Int32Array[] = [new Int32Array(nIn).fill(-1)];
  const count = new Int32Array(nIn);
  for (let i = 0; i < idx.length; i++) {
    const j = idx[i];
    if (j < 0) continue;
    if (j >= nIn) {
      throw new RangeError(`index map ${key}: index ${j} at ${i} outside input of ${nIn} elements`);
    }
    const r = count[j]++;
    if (r === inv.length) inv.push(new Int32Array(nIn).fill(-1));
    inv[r][j] = i;
  }
  if (mapCache.size >= MAP_CACHE_LIMIT) {
    const oldest = mapCache.keys().next().value as string;
    mapCache.delete(oldest);
    for (const k of [oldest, `${oldest}|raw`]) {
      const t = tensorCache.get(k);
      if (t) {
        tf.dispose([t.fwd, ...t.bwd]);
        tensorCache.delete(k);
      }
    }
    const s = sumTables.get(oldest);
    if (s) {
      tf.dispose([s.fwd, s.bwd]);
      sumTables.delete(oldest);
    }
  }
  const map: IndexMap = { key, inShape: [...inShape], outShape: [...outShape], idx, inv };
  mapCache.set(key, map);
  return map;
}

function gatherJs(x: tf.Tensor, idx: Int32Array, shape: number[]): tf.Tensor {
  const src = x.dataSync() as Float32Array;
  const out = new Float32Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    const j = idx[i];
    out[i] = j < 0 ? 0 : src[j];
  }
  return tf.tensor(out, shape, "float32");
}

function scatterAddJs(dy: tf.Tensor, idx: Int32Array, shape: number[], n: number): tf.Tensor {
  const g = dy.dataSync() as Float32Array;
  const out = new Float32Array(n);
  for (let i = 0; i < idx.length; i++) {
    const j = idx[i];
    if (j >= 0) out[j] += g[i];
  }
  return tf.tensor(out, shape, "float32");
}

/**
 * The map's index tables as int32 tensors on the active backend, cached. For the WGSL gather (`raw`) −1 stays
 * −1 (the shader writes 0 for it); for `tf.gather` it becomes the position of a zero appended after the
 * flattened source (an index past the end would be an out-of-bounds read, whose value WebGPU leaves to the
 * implementation).
 */
function gatherTensors(map: IndexMap, raw: boolean): { fwd: tf.Tensor1D; bwd: tf.Tensor1D[] } {
  const key = raw ? `${map.key}|raw` : map.key;
  let t = tensorCache.get(key);
  if (!t) {
    const nIn = map.inv[0].length;
    const nOut = map.idx.length;
    const f = raw ? map.idx : Int32Array.from(map.idx, (j) => (j < 0 ? nIn : j));
    const b = raw ? map.inv : map.inv.map((inv) => Int32Array.from(inv, (j) => (j < 0 ? nOut : j)));
    t = {
      fwd: tf.keep(tf.tensor1d(f, "int32")),
      bwd: b.map((x) => tf.keep(tf.tensor1d(x, "int32"))),
    };
    tensorCache.set(key, t);
  }
  return t;
}

function gatherTf(x: tf.Tensor, map: IndexMap, r: number | null, shape: number[]): tf.Tensor {
  const table = r === null ? map.idx : map.inv[r];
  if (indexGatherWebGPUApplies(table.length)) {
    const t = gatherTensors(map, true);
    return indexGatherWebGPU(x, r === null ? t.fwd : t.bwd[r], shape);
  }
  const t = gatherTensors(map, false);
  const index = r === null ? t.fwd : t.bwd[r];
  const padded = hasNeg(table);
  return tf.tidy(() => {
    // the appended zero is read by −1 entries only; skip the copy when the table has none
    const flat = padded ? tf.concat([x.reshape([-1]), tf.zeros([1])]) : x.reshape([-1]);
    return tf.gather(flat, index).reshape(shape);
  });
}

const hasNegCache = new WeakMap<Int32Array, boolean>();
function hasNeg(a: Int32Array): boolean {
  let v = hasNegCache.get(a);
  if (v === undefined) {
    v = a.some((j) => j < 0);
    hasNegCache.set(a, v);
  }
  return v;
}

/**
 * Applies an {@link IndexMap}: `out.flat[i] = x.flat[idx[i]]` (0 where `idx[i] = −1`). Differentiable; the
 * gradient applies the inverse tables (a scatter-add where an input is read more than once). Does not
 * dispose `x`.
 *
 * @param x float32 tensor of shape `map.inShape`.
 * @returns float32 tensor of shape `map.outShape`.
 * @throws {TypeError} when `x.shape` differs from `map.inShape`.
 */
export function applyIndexMap(x: tf.Tensor, map: IndexMap): tf.Tensor {
  if (x.shape.length !== map.inShape.length || x.shape.some((s, i) => s !== map.inShape[i])) {
    throw new TypeError(
      `applyIndexMap(${map.key}): x has shape [${x.shape}], expected [${map.inShape}]`,
    );
  }
  const op = tf.customGrad(
    ((xi: tf.Tensor) => {
      const value = jsBackend() ? gatherJs(xi, map.idx, map.outShape) : gatherTf(xi, map, null, map.outShape);
      const gradFunc = (dy: tf.Tensor) => {
        if (jsBackend()) {
          return map.inv.length === 1
            ? gatherJs(dy, map.inv[0], map.inShape)
            : scatterAddJs(dy, map.idx, map.inShape, map.inv[0].length);
        }
        const parts = map.inv.map((_, r) => gatherTf(dy, map, r, map.inShape));
        return parts.length === 1 ? parts[0] : tf.tidy(() => tf.addN(parts));
      };
      return { value, gradFunc };
    }) as unknown as Parameters<typeof tf.customGrad>[0],
  );
  return op(x);
}

/**
 * The map applied, then the `k` slices of its output (`[k, ...shape]`) summed in order and scaled:
 * `out.flat[i] = scale·Σ_r x.flat[idx[r·n + i]]` — what `tf.unstack` + `tf.addN` + `tf.mul` compute after
 * {@link applyIndexMap} (the mean or sum of the scan orders in the mixer), the same values. The map must read
 * every input element exactly once (a permutation, as the scan orders' way back); the gradient is then the
 * scaled gather `dx.flat[j] = scale·dy.flat[i(j)]`. On webgpu one dispatch forward and one backward (the
 * composed ops take ≈ 6 + 3); elsewhere the composed ops.
 *
 * @param map an {@link IndexMap} whose `outShape` is `[k, ...shape]`.
 * @returns float32 tensor of shape `outShape.slice(1)`.
 * @throws {TypeError} when `x.shape` differs from `map.inShape`, or the map is not a permutation.
 */
export function applyIndexMapSum(x: tf.Tensor, map: IndexMap, scale: number): tf.Tensor {
  const [k, ...shape] = map.outShape;
  const n = map.idx.length / k;
  if (map.inv.length !== 1 || map.idx.length !== map.inv[0].length || hasNeg(map.idx)) {
    throw new TypeError(`applyIndexMapSum(${map.key}): the map must read every input element exactly once`);
  }
  if (!indexGatherWebGPUApplies(map.idx.length)) {
    return tf.tidy(() => {
      const parts = tf.unstack(applyIndexMap(x, map), 0);
      const s = parts.length === 1 ? parts[0] : tf.addN(parts);
      return scale === 1 ? s : tf.mul(s, cachedScalar(scale));
    });
  }
  if (x.shape.length !== map.inShape.length || x.shape.some((d, i) => d !== map.inShape[i])) {
    throw new TypeError(`applyIndexMapSum(${map.key}): x has shape [${x.shape}], expected [${map.inShape}]`);
  }
  let t = sumTables.get(map.key);
  if (!t || t.fwd.isDisposed) {
    // input element j is read by output i(j) = inv[j] mod n of slice ⌊inv[j] / n⌋
    const back = Int32Array.from(map.inv[0], (o) => o % n);
    t = { fwd: tf.keep(tf.tensor1d(map.idx, "int32")), bwd: tf.keep(tf.tensor1d(back, "int32")) };
    sumTables.set(map.key, t);
  }
  const tables = t;
  const op = tf.customGrad(
    ((xi: tf.Tensor) => ({
      value: indexGatherSumWebGPU(xi, tables.fwd, shape, k, scale),
      gradFunc: (dy: tf.Tensor) => indexGatherSumWebGPU(dy, tables.bwd, map.inShape, 1, scale),
    })) as unknown as Parameters<typeof tf.customGrad>[0],
  );
  return op(x);
}

/** tfjs kernel name of the multi-output gather of {@link applyIndexMaps} (cpu only). */
export const INDEX_MAPS_KERNEL = "MerbaIndexMaps";

interface CpuBackendLike {
  readSync(dataId: unknown): Float32Array;
  makeTensorInfo(shape: number[], dtype: string, values: Float32Array): tf.TensorInfo;
}

tf.registerKernel({
  kernelName: INDEX_MAPS_KERNEL,
  backendName: "cpu",
  kernelFunc: ({ inputs, backend, attrs }) => {
    const be = backend as unknown as CpuBackendLike;
    const xv = be.readSync((inputs.x as tf.TensorInfo).dataId);
    const maps = (attrs as unknown as { maps: IndexMap[] }).maps;
    return maps.map((m) => {
      const out = new Float32Array(m.idx.length);
      const idx = m.idx;
      for (let i = 0; i < idx.length; i++) {
        const j = idx[i];
        out[i] = j < 0 ? 0 : xv[j];
      }
      return be.makeTensorInfo(m.outShape, "float32", out);
    });
  },
});

tf.registerGradient({
  kernelName: INDEX_MAPS_KERNEL,
  gradFunc: (dy: tf.Tensor | tf.Tensor[], _saved: tf.Tensor[], attrs: unknown) => {
    const maps = (attrs as { maps: IndexMap[] }).maps;
    const dys = Array.isArray(dy) ? dy : [dy];
    return {
      x: () => {
        const out = new Float32Array(maps[0].inv[0].length);
        maps.forEach((m, k) => {
          const g = dys[k].dataSync() as Float32Array;
          const idx = m.idx;
          for (let i = 0; i < idx.length; i++) {
            const j = idx[i];
            if (j >= 0) out[j] += g[i];
          }
        });
        return tf.tensor(out, maps[0].inShape, "float32");
      },
    };
  },
});

/**
 * Applies several {@link IndexMap}s to the same input as one op (`outs[m] = applyIndexMap(x, maps[m])`): on
 * the cpu backend the gradient is accumulated in one pass instead of one tfjs `add` per extra consumer of
 * `x`; elsewhere it is `maps.map(applyIndexMap)`.
 *
 * @throws {TypeError} when a map's input shape differs from `x.shape`.
 */
export function applyIndexMaps(x: tf.Tensor, maps: IndexMap[]): tf.Tensor[] {
  for (const map of maps) {
    if (x.shape.length !== map.inShape.length || x.shape.some((s, i) => s !== map.inShape[i])) {
      throw new TypeError(`applyIndexMaps(${map.key}): x has shape [${x.shape}], expected [${map.inShape}]`);
    }
  }
  if (tf.getBackend() !== "cpu") return maps.map((m) => applyIndexMap(x, m));
  return tf.engine().runKernel(
    INDEX_MAPS_KERNEL,
    { x },
    { maps } as unknown as tf.NamedAttrMap,
  ) as tf.Tensor[];
}

/** Geometry of a window partition: padded size and window grid. */
export interface WindowGrid {
  /** Map height and width before padding. */
  height: number;
  width: number;
  /** Window side `ws`. */
  windowSize: number;
  /** Windows per column (`ceil(h / ws)`) and per row (`ceil(w / ws)`). */
  rows: number;
  cols: number;
  /** Zeros added at the bottom and at the right. */
  padBottom: number;
  padRight: number;
}

/**
 * Window grid of an `h × w` map for window side `ws` (bottom/right zero padding to a multiple of `ws`).
 *
 * @throws {RangeError} when a size is not a positive integer.
 */
export function windowGrid(height: number, width: number, windowSize: number): WindowGrid {
  for (const [name, v] of [["height", height], ["width", width], ["windowSize", windowSize]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`windowGrid: ${name} must be a positive integer, got ${v}`);
    }
  }
  const rows = Math.ceil(height / windowSize);
  const cols = Math.ceil(width / windowSize);
  return {
    height,
    width,
    windowSize,
    rows,
    cols,
    padBottom: rows * windowSize - height,
    padRight: cols * windowSize - width,
  };
}

function partitionMap(b: number, g: WindowGrid, c: number): IndexMap {
  const { height: h, width: w, windowSize: s, rows, cols } = g;
  const key = `partition:${b}x${h}x${w}x${c}:ws${s}`;
  return cachedIndexMap(key, [b, h, w, c], [b * rows * cols, s * s, c], (idx) => {
    let o = 0;
    for (let bi = 0; bi < b; bi++) {
      for (let wr = 0; wr < rows; wr++) {
        for (let wc = 0; wc < cols; wc++) {
          for (let ty = 0; ty < s; ty++) {
            const y = wr * s + ty;
            for (let tx = 0; tx < s; tx++) {
              const x = wc * s + tx;
              const inside = y < h && x < w;
              const base = ((bi * h + y) * w + x) * c;
              for (let ci = 0; ci < c; ci++) idx[o++] = inside ? base + ci : -1;
            }
          }
        }
      }
    }
  });
}

function reverseMap(b: number, g: WindowGrid, c: number): IndexMap {
  const { height: h, width: w, windowSize: s, rows, cols } = g;
  const key = `reverse:${b}x${h}x${w}x${c}:ws${s}`;
  return cachedIndexMap(key, [b * rows * cols, s * s, c], [b, h, w, c], (idx) => {
    let o = 0;
    for (let bi = 0; bi < b; bi++) {
      for (let y = 0; y < h; y++) {
        const wr = Math.floor(y / s);
        const ty = y - wr * s;
        for (let x = 0; x < w; x++) {
          const wc = Math.floor(x / s);
          const tx = x - wc * s;
          const base = (((bi * rows + wr) * cols + wc) * s * s + ty * s + tx) * c;
          for (let ci = 0; ci < c; ci++) idx[o++] = base + ci;
        }
      }
    }
  });
}

/**
 * Splits a channels-last map into non-overlapping `ws × ws` windows, MambaVision order.
 *
 * `x: [b, h, w, c]` → `[b · nW, ws², c]`; the map is zero-padded at the bottom and right to a multiple of
 * `ws` (padded tokens are not masked, as in MambaVision); windows are ordered (batch, window-row,
 * window-col) and the tokens inside a window in row-major raster order. Differentiable; does not dispose `x`.
 *
 * @throws {TypeError} when `x` is not rank 4.
 * @throws {RangeError} when `windowSize` is not a positive integer.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { windowPartition, windowReverse } from "./windows.ts";
 * const x = tf.range(0, 2 * 5 * 5 * 3).reshape([2, 5, 5, 3]);
 * const { windows, grid } = windowPartition(x, 3); // [2·4, 9, 3], 1 row/col of zero padding
 * const back = windowReverse(windows, grid);
 * if (back.shape.join() !== "2,5,5,3") throw new Error("shape");
 * ```
 */
export function windowPartition(
  x: tf.Tensor,
  windowSize: number,
): { windows: tf.Tensor3D; grid: WindowGrid } {
  if (x.rank !== 4) throw new TypeError(`windowPartition: x must be [b, h, w, c], got shape [${x.shape}]`);
  const [b, h, w, c] = x.shape;
  const grid = windowGrid(h, w, windowSize);
  return { windows: applyIndexMap(x, partitionMap(b, grid, c)) as tf.Tensor3D, grid };
}

/**
 * For each token of the padded `[rows·ws, cols·ws]` map in raster (row-major) order, its position in window
 * order — the order of {@link windowPartition}'s windows flattened one after another (`w · ws² + t`, window
 * `w` row-major over the grid, `t` row-major inside it). Gathering a window-ordered token axis with it gives
 * raster order (e.g. full attention over several windows, for figures in image space).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { windowOrderOfRaster } from "./windows.ts";
 * // 2 × 2 windows of 2 × 2 tokens: raster token 2 (row 0, column 2) is the first token of window 1
 * assert.equal(windowOrderOfRaster(2, 2, 2)[2], 4);
 * ```
 */
export function windowOrderOfRaster(rows: number, cols: number, windowSize: number): Int32Array {
  const ws = windowSize;
  const width = cols * ws;
  const out = new Int32Array(rows * ws * width);
  for (let y = 0; y < rows * ws; y++) {
    for (let x = 0; x < width; x++) {
      const w = Math.floor(y / ws) * cols + Math.floor(x / ws);
      out[y * width + x] = w * ws * ws + (y % ws) * ws + (x % ws);
    }
  }
  return out;
}

/**
 * Inverse of {@link windowPartition}: `[b · nW, ws², c]` → `[b, h, w, c]`, cropping the padding.
 *
 * @throws {TypeError} when the window tensor does not fit `grid`.
 */
export function windowReverse(windows: tf.Tensor, grid: WindowGrid): tf.Tensor4D {
  const s = grid.windowSize;
  const nW = grid.rows * grid.cols;
  if (windows.rank !== 3 || windows.shape[1] !== s * s || windows.shape[0] % nW !== 0) {
    throw new TypeError(
      `windowReverse: windows must be [b·${nW}, ${
        s * s
      }, c] for a ${grid.height}x${grid.width} map with ws ${s}, ` +
        `got [${windows.shape}]`,
    );
  }
  const b = windows.shape[0] / nW;
  return applyIndexMap(windows, reverseMap(b, grid, windows.shape[2] as number)) as tf.Tensor4D;
}
