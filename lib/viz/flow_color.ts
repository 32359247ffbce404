/**
 * Optical flow as colour: the Middlebury colour wheel (Baker et al., "A Database and Evaluation Methodology
 * for Optical Flow", IJCV 2011): hue = direction, saturation = magnitude (white = no motion).
 *
 * @module
 */
import type { Flow, RgbImage } from "../data/types.ts";

/**
 * Hue segments of the wheel, in order red → yellow → green → cyan → blue → magenta → red, with the number of
 * steps in each (chosen by Baker et al. to make the hues perceptually even).
 */
const SEGMENTS: ReadonlyArray<[steps: number, from: [number, number, number], to: [number, number, number]]> =
  [
    [15, [1, 0, 0], [1, 1, 0]], // RY
    [6, [1, 1, 0], [0, 1, 0]], // YG
    [4, [0, 1, 0], [0, 1, 1]], // GC
    [11, [0, 1, 1], [0, 0, 1]], // CB
    [13, [0, 0, 1], [1, 0, 1]], // BM
    [6, [1, 0, 1], [1, 0, 0]], // MR
  ];

/** The colour wheel as `ncols` RGB entries in 0..1 (55 for the Middlebury segments). */
export const COLOR_WHEEL: ReadonlyArray<readonly [number, number, number]> = (() => {
  const wheel: [number, number, number][] = [];
  for (const [steps, from, to] of SEGMENTS) {
    for (let i = 0; i < steps; i++) {
      const f = i / steps;
      wheel.push([0, 1, 2].map((c) => from[c] + (to[c] - from[c]) * f) as [number, number, number]);
    }
  }
  return wheel;
})();

/**
 * The colour of one normalised flow vector (`|(u, v)| = 1` is the wheel's rim), in 0..255.
 *
 * angle a = atan2(-v, -u) / π ∈ [-1, 1]; position k = (a + 1) / 2 · (ncols - 1), interpolated between the
 * two nearest wheel entries; inside the rim the colour fades to white: c = 1 - r·(1 - c); outside it is
 * darkened: c = 0.75·c.
 *
 * With image axes (y down) motion to the right is red, down is orange-yellow, left is cyan-blue, up is
 * blue-violet.
 */
export function flowVectorColor(u: number, v: number): [number, number, number] {
  const ncols = COLOR_WHEEL.length;
  if (!Number.isFinite(u) || !Number.isFinite(v)) return [0, 0, 0];
  const r = Math.hypot(u, v);
  const a = Math.atan2(-v, -u) / Math.PI;
  const fk = ((a + 1) / 2) * (ncols - 1);
  const k0 = Math.floor(fk);
  const k1 = (k0 + 1) % ncols;
  const f = fk - k0;
  const out: [number, number, number] = [0, 0, 0];
  for (let c = 0; c < 3; c++) {
    let col = (1 - f) * COLOR_WHEEL[k0][c] + f * COLOR_WHEEL[k1][c];
    col = r <= 1 ? 1 - r * (1 - col) : col * 0.75;
    out[c] = Math.round(255 * col);
  }
  return out;
}

/** Options of {@link flowToRgb}. */
export interface FlowToRgbOptions {
  /**
   * Magnitude (pixels) drawn at full saturation. Default: the largest finite magnitude in the flow, so the
   * strongest motion is fully saturated (pass a fixed value to compare several flows).
   */
  maxMagnitude?: number;
}

/**
 * Colours a flow field with the Middlebury wheel.
 *
 * @returns an RGB image of the flow's size, and the magnitude used for full saturation.
 * @throws {TypeError} when `u`/`v` do not hold `width * height` values.
 * @throws {RangeError} when `maxMagnitude` is not > 0.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { flowToRgb } from "./flow_color.ts";
 * const { image } = flowToRgb({ width: 2, height: 1, u: new Float32Array([0, 1]), v: new Float32Array(2) });
 * assert.deepEqual([...image.data], [255, 255, 255, 255, 0, 0]); // still = white, right = red
 * ```
 */
export function flowToRgb(
  flow: Flow,
  opts: FlowToRgbOptions = {},
): { image: RgbImage; maxMagnitude: number } {
  const n = flow.width * flow.height;
  if (flow.u.length !== n || flow.v.length !== n) {
    throw new TypeError(
      `flowToRgb: flow ${flow.width}x${flow.height} needs u and v of length ${n}, got ${flow.u.length} and ${flow.v.length}`,
    );
  }
  let max = opts.maxMagnitude;
  if (max === undefined) {
    max = 0;
    for (let i = 0; i < n; i++) {
      const m = Math.hypot(flow.u[i], flow.v[i]);
      if (Number.isFinite(m) && m > max) max = m;
    }
  } else if (!(max > 0)) {
    throw new RangeError(`flowToRgb: maxMagnitude must be > 0, got ${max}`);
  }
  const scale = max > 0 ? 1 / max : 0;
  const data = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    const [r, g, b] = flowVectorColor(flow.u[i] * scale, flow.v[i] * scale);
    data[3 * i] = r;
    data[3 * i + 1] = g;
    data[3 * i + 2] = b;
  }
  return { image: { width: flow.width, height: flow.height, data }, maxMagnitude: max };
}

/**
 * The colour-wheel legend: a `size`×`size` flow whose vector at each pixel points from the centre, coloured
 * like {@link flowToRgb} (rim = full saturation; corners outside the disc are white).
 */
export function colorWheelImage(size = 64): RgbImage {
  const data = new Uint8Array(3 * size * size).fill(255);
  const c = (size - 1) / 2;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const u = (x - c) / c;
      const v = (y - c) / c;
      if (Math.hypot(u, v) > 1) continue;
      const rgb = flowVectorColor(u, v);
      data.set(rgb, 3 * (y * size + x));
    }
  }
  return { width: size, height: size, data };
}
