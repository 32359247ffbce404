/**
 * Turns a dense flow field into the `[size, size, 3]` network input used by STSTNet/HTNet-style recognisers:
 * channels (u, v, optical strain), each min-max normalised to [0, 1], resized to `size × size`.
 *
 * @module
 */
import type { Flow } from "./types.ts";
import { resizeArea, resizeBilinear } from "./image.ts";
import { checkFlow, opticalStrain, type StrainDifferences } from "./strain.ts";

/** Options of {@link flowToInput}. */
export interface FlowInputOptions {
  /** Output side length in pixels (the input is resized to `size × size`, whatever its aspect ratio). */
  size: number;
  /**
   * Precomputed strain `[height * width]` for the flow; by default it is computed with {@link opticalStrain}
   * and `differences`.
   */
  strain?: Float32Array;
  /** Finite differences for the strain when it is computed here. @default "central" */
  differences?: StrainDifferences;
  /**
   * Third channel: optical strain (STSTNet, HTNet, MEAN) or the flow magnitude `sqrt(u² + v²)` (HTNet's
   * CAS(ME)^3 script). @default "strain"
   */
  third?: "strain" | "magnitude";
  /** Per-channel min-max normalisation to [0, 1] before resizing. @default true */
  normalise?: boolean;
  /** Resampling: `"area"` (OpenCV `INTER_AREA`, bilinear when enlarging) or `"bilinear"`. @default "area" */
  resize?: "area" | "bilinear";
}

/**
 * Builds the network input from a flow: `out[(y * size + x) * 3 + c]` with `c` = 0 u, 1 v, 2 strain (or the
 * magnitude, `third: "magnitude"`).
 *
 * Steps, in the order of the HTNet-style preprocessing scripts:
 * 1. strain ε from the full-resolution flow (so its derivatives see the original pixel grid);
 * 2. each channel min-max normalised over the image, `(c − min) / (max − min)`; a constant channel becomes 0
 *    (instead of 0/0);
 * 3. each channel resized to `size × size` (area averaging by default, as `cv2.resize(..., INTER_AREA)`).
 *
 * Resizing after normalising keeps values in [0, 1], but the extremes may no longer be exactly 0 and 1.
 * Choices documented for reproducibility: channel order (u, v, strain) (MEAN's; HTNet-style scripts store strain,
 * v, u as B, G, R), float [0, 1] instead of uint8 0–255 (no quantisation), and with `normalise: false` the u/v
 * values stay in pixels of the original grid (not rescaled by the resize factor).
 *
 * @param flow `{ width, height, u, v }` (pixels).
 * @param options {@link FlowInputOptions}; `size` is required.
 * @returns Float32Array `[size, size, 3]`, channels-last (tfjs layout), row-major.
 * @throws {TypeError} for a malformed flow or a strain of the wrong length/type.
 * @throws {RangeError} for a bad `size`, `resize` or `differences`, or a non-finite flow or strain value.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { flowToInput } from "./flow_input.ts";
 * const w = 8, h = 8;
 * const u = new Float32Array(w * h).map((_, i) => (i % w) * 0.1);
 * const x = flowToInput({ width: w, height: h, u, v: new Float32Array(w * h) }, { size: 4 });
 * assert.ok(x.length === 4 * 4 * 3 && x.every((a) => a >= 0 && a <= 1));
 * ```
 */
export function flowToInput(flow: Flow, options: FlowInputOptions): Float32Array {
  const fn = "flowToInput";
  const { width: w, height: h, u, v } = checkFlow(flow, fn);
  if (options === null || typeof options !== "object") {
    throw new TypeError(`${fn}: options must be an object with at least {size}, got ${options}`);
  }
  const { size, normalise = true, resize = "area", differences = "central", third = "strain" } = options;
  if (!Number.isInteger(size) || size < 1) {
    throw new RangeError(`${fn}: size must be a positive integer, got ${size}`);
  }
  if (resize !== "area" && resize !== "bilinear") {
    throw new RangeError(`${fn}: resize must be "area" or "bilinear", got '${resize}'`);
  }
  if (third !== "strain" && third !== "magnitude") {
    throw new RangeError(`${fn}: third must be "strain" or "magnitude", got '${third}'`);
  }
  if (third === "magnitude" && options.strain !== undefined) {
    throw new RangeError(`${fn}: strain was given but third is "magnitude"`);
  }
  let strain = options.strain;
  if (third === "magnitude") {
    strain = new Float32Array(w * h);
    for (let i = 0; i < w * h; i++) strain[i] = Math.hypot(u[i], v[i]);
  } else if (strain === undefined) {
    strain = opticalStrain(flow, { differences });
  } else if (!(strain instanceof Float32Array) || strain.length !== w * h) {
    throw new TypeError(
      `${fn}: strain must be a Float32Array of length width*height = ${w * h}, got ${
        strain instanceof Float32Array ? `length ${strain.length}` : (strain as object)?.constructor?.name
      }`,
    );
  }
  const out = new Float32Array(size * size * 3);
  const channels = [["u", u], ["v", v], [third, strain]] as const;
  for (let c = 0; c < 3; c++) {
    const [name, src] = channels[c];
    const plane = normalise ? minMax(src, name, fn) : checkFinite(src, name, fn);
    const img = { width: w, height: h, data: plane };
    const small = w === size && h === size
      ? plane
      : (resize === "area" ? resizeArea(img, size, size) : resizeBilinear(img, size, size)).data;
    for (let i = 0; i < size * size; i++) out[i * 3 + c] = small[i];
  }
  return out;
}

/** `(a − min) / (max − min)` into a new array; all zeros when `max === min`. */
function minMax(a: Float32Array, name: string, fn: string): Float32Array {
  checkFinite(a, name, fn);
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < a.length; i++) {
    if (a[i] < lo) lo = a[i];
    if (a[i] > hi) hi = a[i];
  }
  const out = new Float32Array(a.length);
  const range = hi - lo;
  if (range > 0) {
    for (let i = 0; i < a.length; i++) out[i] = (a[i] - lo) / range;
  }
  return out;
}

function checkFinite(a: Float32Array, name: string, fn: string): Float32Array {
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) {
      throw new RangeError(`${fn}: ${name}[${i}] is ${a[i]}; expected finite values`);
    }
  }
  return a;
}
