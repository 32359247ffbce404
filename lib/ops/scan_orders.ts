/**
 * Scan orders inside a window: which 1-D sequence the selective scan sees.
 *
 * A scan is a permutation `π` of the `rows · cols` window tokens (raster index `r · cols + c`), written
 * `{major, h, v}`: `major: "row"` walks along a row first (the horizontal axis is the fast one), `"col"`
 * walks down a column first; `h = +1` visits columns left → right, `−1` right → left; `v = +1` visits rows
 * top → bottom, `−1` bottom → top. The eight combinations cover every row/column-major traversal.
 *
 * `π[t]` is the raster index of the token visited at step `t`: tokens in scan order are `x[π[t]]`, and a scan
 * output goes back to raster order with `π⁻¹` (`y_raster[π[t]] = y_scan[t]`). Tables are built once per grid
 * and cached; the layers gather with {@link applyIndexMap}.
 *
 * Named sets (merba-model.md §5.1):
 * - `raster`: (row,+,+) only, MambaVision's order.
 * - `vmamba4`: (row,+,+) (row,−,−) (col,+,+) (col,−,−), the symmetric 4-direction 2-D Mamba baseline.
 * - `bilateral3` (default): (row,+,+) (col,+,+) (col,+,−). Faces are close to left-right symmetric, so two
 *   scans that differ only in the horizontal sign carry mirrored copies of the same context: one horizontal
 *   sign is kept. The upper face (brows, eyes) and lower face (mouth) move differently in micro-expressions,
 *   so both vertical directions are kept (top-down and bottom-up column scans) and the row scan supplies the
 *   horizontal context. Three scans instead of four: the asymmetric multi-scanning of MERba's abstract,
 *   removing a redundant direction.
 * - `axes2`: (row,+,+) (col,+,+), one order per axis, forward only.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { applyIndexMap, cachedIndexMap } from "./windows.ts";

/** One scan order: fast axis and the traversal sign along each axis. */
export interface ScanOrder {
  major: "row" | "col";
  h: 1 | -1;
  v: 1 | -1;
}

/** Names of the predefined scan sets. */
export type ScanSetName = "raster" | "vmamba4" | "bilateral3" | "axes2";

/** A scan set: a predefined name, or a custom list of orders (objects or labels such as `"col+-"`). */
export type ScanSetSpec = ScanSetName | readonly (ScanOrder | string)[];

const o = (major: "row" | "col", h: 1 | -1, v: 1 | -1): ScanOrder => ({ major, h, v });

/** The predefined scan sets (see the module documentation for the rationale of each). */
export const SCAN_SETS: Readonly<Record<ScanSetName, readonly ScanOrder[]>> = Object.freeze({
  raster: [o("row", 1, 1)],
  vmamba4: [o("row", 1, 1), o("row", -1, -1), o("col", 1, 1), o("col", -1, -1)],
  bilateral3: [o("row", 1, 1), o("col", 1, 1), o("col", 1, -1)],
  axes2: [o("row", 1, 1), o("col", 1, 1)],
});

/** The default scan set. */
export const DEFAULT_SCAN_SET: ScanSetName = "bilateral3";

/** All eight orders, in label order. */
export const ALL_SCAN_ORDERS: readonly ScanOrder[] = (["row", "col"] as const).flatMap((m) =>
  ([1, -1] as const).flatMap((h) => ([1, -1] as const).map((v) => o(m, h, v)))
);

/**
 * Short label of an order: `row++`, `col+-` (major, then the h sign, then the v sign).
 *
 * @example
 * ```ts
 * import { scanOrderLabel } from "./scan_orders.ts";
 * if (scanOrderLabel({ major: "col", h: 1, v: -1 }) !== "col+-") throw new Error();
 * ```
 */
export function scanOrderLabel(order: ScanOrder): string {
  return `${order.major}${order.h > 0 ? "+" : "-"}${order.v > 0 ? "+" : "-"}`;
}

/**
 * Parses a label written by {@link scanOrderLabel} (`row++`, `col+-`, …; `row,+,-` also accepted).
 *
 * @throws {RangeError} on anything else.
 */
export function parseScanOrder(label: string): ScanOrder {
  const m = /^(row|col),?([+-]),?([+-])$/.exec(label.trim());
  if (!m) {
    throw new RangeError(`parseScanOrder: "${label}" is not a scan order; expected e.g. "row++", "col+-"`);
  }
  return o(m[1] as "row" | "col", m[2] === "+" ? 1 : -1, m[3] === "+" ? 1 : -1);
}

/**
 * Resolves a scan-set spec to a list of orders.
 *
 * @throws {RangeError} on an unknown set name, an invalid order, an empty list or a repeated order.
 */
export function resolveScanSet(spec: ScanSetSpec): ScanOrder[] {
  if (typeof spec === "string") {
    const set = (SCAN_SETS as Record<string, readonly ScanOrder[]>)[spec];
    if (!set) {
      throw new RangeError(
        `scan set "${spec}" is unknown; expected one of ${
          Object.keys(SCAN_SETS).join(", ")
        } or a list of orders`,
      );
    }
    return set.map((x) => ({ ...x }));
  }
  if (!Array.isArray(spec) || spec.length === 0) {
    throw new RangeError("scan set: a custom set must be a non-empty list of orders");
  }
  const orders = spec.map((x) => {
    if (typeof x === "string") return parseScanOrder(x);
    if ((x.major !== "row" && x.major !== "col") || Math.abs(x.h) !== 1 || Math.abs(x.v) !== 1) {
      throw new RangeError(
        `scan set: invalid order ${JSON.stringify(x)}; expected {major: row|col, h: ±1, v: ±1}`,
      );
    }
    return o(x.major, x.h, x.v);
  });
  const labels = orders.map(scanOrderLabel);
  const dup = labels.find((l, i) => labels.indexOf(l) !== i);
  if (dup) throw new RangeError(`scan set: order ${dup} appears twice`);
  return orders;
}

/**
 * The permutation of an order on a `rows × cols` grid: `π[t]` = raster index visited at step `t`.
 *
 * @example
 * ```ts
 * import { scanPermutation } from "./scan_orders.ts";
 * // column-major, bottom-up, on a 2x2 grid: (1,0) (0,0) (1,1) (0,1)
 * const p = scanPermutation({ major: "col", h: 1, v: -1 }, 2, 2);
 * if (Array.from(p).join() !== "2,0,3,1") throw new Error();
 * ```
 */
export function scanPermutation(order: ScanOrder, rows: number, cols: number): Int32Array {
  const perm = new Int32Array(rows * cols);
  let t = 0;
  const rowAt = (i: number) => (order.v > 0 ? i : rows - 1 - i);
  const colAt = (j: number) => (order.h > 0 ? j : cols - 1 - j);
  if (order.major === "row") {
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) perm[t++] = rowAt(i) * cols + colAt(j);
  } else {
    for (let j = 0; j < cols; j++) for (let i = 0; i < rows; i++) perm[t++] = rowAt(i) * cols + colAt(j);
  }
  return perm;
}

/** Inverse of a permutation: `inv[perm[t]] = t`. */
export function invertPermutation(perm: ArrayLike<number>): Int32Array {
  const inv = new Int32Array(perm.length);
  for (let t = 0; t < perm.length; t++) inv[perm[t]] = t;
  return inv;
}

/** True when `perm` is the identity. */
export function isIdentity(perm: ArrayLike<number>): boolean {
  for (let i = 0; i < perm.length; i++) if (perm[i] !== i) return false;
  return true;
}

function orderKey(orders: readonly ScanOrder[], rows: number, cols: number): string {
  return `${orders.map(scanOrderLabel).join("|")}@${rows}x${cols}`;
}

/**
 * Reorders tokens into every scan order, stacked along the batch axis.
 *
 * `x: [b, l, c]` (raster order, `l = rows · cols`) → `[k · b, l, c]`, block `k` holding `x[:, π_k, :]`.
 * Differentiable; does not dispose `x`.
 *
 * @throws {TypeError} when `x` is not `[b, rows·cols, c]`.
 */
export function permuteTokens(
  x: tf.Tensor,
  orders: readonly ScanOrder[],
  rows: number,
  cols: number,
): tf.Tensor3D {
  const [b, l, c] = x.shape;
  if (x.rank !== 3 || l !== rows * cols) {
    throw new TypeError(`permuteTokens: x must be [b, ${rows * cols}, c], got [${x.shape}]`);
  }
  const perms = orders.map((od) => scanPermutation(od, rows, cols));
  const map = cachedIndexMap(`permute:${orderKey(orders, rows, cols)}:${b}x${c}`, [b, l, c], [
    orders.length * b,
    l,
    c,
  ], (idx) => {
    let i = 0;
    for (const p of perms) {
      for (let bi = 0; bi < b; bi++) {
        for (let t = 0; t < l; t++) {
          const base = (bi * l + p[t]) * c;
          for (let ci = 0; ci < c; ci++) idx[i++] = base + ci;
        }
      }
    }
  });
  return applyIndexMap(x, map) as tf.Tensor3D;
}

/**
 * Inverse of {@link permuteTokens}: `[k · b, l, c]` in scan order → `[k, b, l, c]` in raster order.
 *
 * @throws {TypeError} when `y` is not `[k·b, rows·cols, c]`.
 */
export function unpermuteTokens(
  y: tf.Tensor,
  orders: readonly ScanOrder[],
  rows: number,
  cols: number,
): tf.Tensor4D {
  const [kb, l, c] = y.shape;
  const k = orders.length;
  if (y.rank !== 3 || l !== rows * cols || kb % k !== 0) {
    throw new TypeError(`unpermuteTokens: y must be [${k}·b, ${rows * cols}, c], got [${y.shape}]`);
  }
  const b = kb / k;
  const invs = orders.map((od) => invertPermutation(scanPermutation(od, rows, cols)));
  const map = cachedIndexMap(
    `unpermute:${orderKey(orders, rows, cols)}:${b}x${c}`,
    [kb, l, c],
    [k, b, l, c],
    (idx) => {
      let i = 0;
      for (let ki = 0; ki < k; ki++) {
        const inv = invs[ki];
        for (let bi = 0; bi < b; bi++) {
          for (let t = 0; t < l; t++) {
            const base = ((ki * b + bi) * l + inv[t]) * c;
            for (let ci = 0; ci < c; ci++) idx[i++] = base + ci;
          }
        }
      }
    },
  );
  return applyIndexMap(y, map) as tf.Tensor4D;
}

/**
 * Maps per-order token-pair matrices from scan order back to raster order:
 * `a: [k·b, l, l]` with `a[k, b, t, s]` between scan steps `t`, `s` → `[k, b, l, l]` with
 * `out[k, b, π_k[t], π_k[s]] = a[k, b, t, s]` (hidden-attention maps in window coordinates).
 *
 * @throws {TypeError} when `a` is not `[k·b, rows·cols, rows·cols]`.
 */
export function unpermutePairs(
  a: tf.Tensor,
  orders: readonly ScanOrder[],
  rows: number,
  cols: number,
): tf.Tensor4D {
  const [kb, l, l2] = a.shape;
  const k = orders.length;
  if (a.rank !== 3 || l !== rows * cols || l2 !== l || kb % k !== 0) {
    throw new TypeError(
      `unpermutePairs: a must be [${k}·b, ${rows * cols}, ${rows * cols}], got [${a.shape}]`,
    );
  }
  const b = kb / k;
  const invs = orders.map((od) => invertPermutation(scanPermutation(od, rows, cols)));
  const map = cachedIndexMap(
    `unpermute-pairs:${orderKey(orders, rows, cols)}:${b}`,
    [kb, l, l],
    [k, b, l, l],
    (idx) => {
      let i = 0;
      for (let ki = 0; ki < k; ki++) {
        const inv = invs[ki];
        for (let bi = 0; bi < b; bi++) {
          const base = (ki * b + bi) * l * l;
          for (let p = 0; p < l; p++) for (let q = 0; q < l; q++) idx[i++] = base + inv[p] * l + inv[q];
        }
      }
    },
  );
  return applyIndexMap(a, map) as tf.Tensor4D;
}
