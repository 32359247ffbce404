/**
 * Optical strain: the magnitude of the infinitesimal strain tensor of a flow field, the third input channel of
 * STSTNet/HTNet-style micro-expression recognisers.
 *
 * @module
 */
import type { Flow } from "./types.ts";

/**
 * How the spatial derivatives of the flow are taken.
 * - `"central"` (default): `numpy.gradient` with unit spacing — `(f[i+1] − f[i−1]) / 2` inside, one-sided
 *   `f[1] − f[0]` on the first and `f[n−1] − f[n−2]` on the last row/column.
 * - `"forward"`: `f[i+1] − f[i]`, the last row/column copying its neighbour's difference (the HTNet-style
 *   preprocessing scripts).
 * - `"backward"`: `f[i] − f[i−1]`, 0 on the first row/column (MEAN's `feature_extraction.py`).
 *
 * The three agree on smooth flow up to half-pixel shifts; they differ most on the one-pixel border.
 */
export type StrainDifferences = "central" | "forward" | "backward";

/** Options of {@link opticalStrain}. */
export interface StrainOptions {
  /** Finite-difference scheme. @default "central" */
  differences?: StrainDifferences;
}

const SCHEMES: readonly StrainDifferences[] = ["central", "forward", "backward"];

/**
 * Optical strain per pixel,
 *
 *   ε = sqrt(u_x² + v_y² + ½ (u_y + v_x)²)
 *
 * (the Frobenius norm of the symmetric strain tensor `[[u_x, ½(u_y+v_x)], [½(u_y+v_x), v_y]]`), with `x` along
 * columns and `y` along rows. Computed in float64 and rounded to float32; with the default central differences
 * it matches the golden strain of `numpy.gradient` to float32 rounding.
 *
 * @param flow `{ width, height, u, v }`, `u`/`v` Float32Array `[height * width]` (row-major).
 * @returns Float32Array `[height * width]`, same units as the flow per pixel (dimensionless).
 * @throws {TypeError} if `u`/`v` are not Float32Arrays of length `width * height`.
 * @throws {RangeError} if a side is < 2 or `differences` is unknown.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { opticalStrain } from "./strain.ts";
 * // A uniform stretch u = 0.1·x has u_x = 0.1 everywhere, so ε = 0.1.
 * const w = 4, h = 3;
 * const u = new Float32Array(w * h).map((_, i) => 0.1 * (i % w));
 * const eps = opticalStrain({ width: w, height: h, u, v: new Float32Array(w * h) });
 * assert.ok(eps.every((e) => Math.abs(e - 0.1) < 1e-6));
 * ```
 */
export function opticalStrain(flow: Flow, options: StrainOptions = {}): Float32Array {
  const { width: w, height: h, u, v } = checkFlow(flow, "opticalStrain");
  const scheme = options.differences ?? "central";
  if (!SCHEMES.includes(scheme)) {
    throw new RangeError(`opticalStrain: differences must be one of ${SCHEMES.join(", ")}, got '${scheme}'`);
  }
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const ux = diff(u, i, x, w, 1, scheme);
      const vx = diff(v, i, x, w, 1, scheme);
      const uy = diff(u, i, y, h, w, scheme);
      const vy = diff(v, i, y, h, w, scheme);
      const s = uy + vx;
      out[i] = Math.sqrt(ux * ux + vy * vy + 0.5 * s * s);
    }
  }
  return out;
}

/** Derivative of `f` at flat index `i`, coordinate `c` in `[0, n)` along an axis whose step is `stride`. */
function diff(
  f: Float32Array,
  i: number,
  c: number,
  n: number,
  stride: number,
  scheme: StrainDifferences,
): number {
  switch (scheme) {
    case "central":
      if (c === 0) return f[i + stride] - f[i];
      if (c === n - 1) return f[i] - f[i - stride];
      return (f[i + stride] - f[i - stride]) / 2;
    case "forward":
      return c < n - 1 ? f[i + stride] - f[i] : f[i] - f[i - stride];
    case "backward":
      return c > 0 ? f[i] - f[i - stride] : 0;
  }
}

/**
 * Validates a {@link Flow}: integer sides >= 2 and Float32Array `u`, `v` of length `width * height`.
 *
 * @throws {TypeError} for a non-object or wrong component type/length. @throws {RangeError} for bad sides.
 */
export function checkFlow(flow: Flow, fn: string): Flow {
  if (flow === null || typeof flow !== "object") {
    throw new TypeError(`${fn}: flow must be a Flow {width, height, u, v}, got ${flow}`);
  }
  const { width, height } = flow;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 2 || height < 2) {
    throw new RangeError(`${fn}: flow width and height must be integers >= 2, got ${width}x${height}`);
  }
  for (const k of ["u", "v"] as const) {
    const a = flow[k];
    if (!(a instanceof Float32Array)) {
      throw new TypeError(
        `${fn}: flow.${k} must be a Float32Array, got ${
          (a as object | undefined)?.constructor?.name ?? typeof a
        }`,
      );
    }
    if (a.length !== width * height) {
      throw new TypeError(
        `${fn}: flow.${k} has length ${a.length}, expected width*height = ${width}*${height} = ${
          width * height
        }`,
      );
    }
  }
  return flow;
}
