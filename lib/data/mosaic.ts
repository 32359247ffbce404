/**
 * HTNet's 4-region mosaic (wangzhifengharrison/HTNet `main_HTNet.py`; datasets-and-evaluation.md §7):
 * four 14×14 patches of the 28×28×3 flow input, centred on the two eyes and the two mouth corners, tiled
 * as `[left eye | right eye]` over `[mouth left | mouth right]`.
 *
 * Exact HTNet behaviour (`mosaicAxes: "htnet"`, the default for parity):
 * 1. five points (left eye, right eye, nose, mouth left, mouth right) in 28×28 input coordinates;
 * 2. each coordinate clamped to [7, 21] and cast to int (truncation);
 * 3. patch `k` = `img[x−7 : x+7, y−7 : y+7]`, where the first index is the **row**: HTNet passes `(x, y)`
 *    where `(row, col)` is meant, so x and y are swapped;
 * 4. mosaic `[p0 | p1]` over `[p3 | p4]`; the nose patch is unused.
 *
 * `mosaicAxes: "corrected"` cuts `img[y−7 : y+7, x−7 : x+7]` (rows from y), i.e. patches really centred on
 * the points. HTNet finds its points with MTCNN on the resized apex crop and falls back to fixed points when
 * no face is found; here the caller passes the points (from {@link fivePoints} of detected landmarks mapped
 * into input coordinates, or of {@link canonicalLandmarks} for aligned inputs — {@link defaultMosaicPoints}).
 * HTNet's own fallback constants are not reproduced.
 *
 * @module
 */
import { canonicalLandmarks, fivePoints, type Point } from "./faces.ts";

/** How patch rows/columns are taken from the points: HTNet's swapped axes, or corrected. */
export type MosaicAxes = "htnet" | "corrected";

/** The 5 points of an aligned 28×28 input from the canonical landmark layout. */
export function defaultMosaicPoints(size = 28): [Point, Point, Point, Point, Point] {
  return fivePoints(canonicalLandmarks(size));
}

/**
 * Builds the 4-region mosaic of one `[28, 28, channels]` channels-last input.
 *
 * @param x Float32Array `[28 * 28 * channels]`, row-major, channels-last.
 * @param points five points `(x, y)` in input pixel coordinates: left eye, right eye, nose, mouth left,
 *   mouth right (MTCNN order).
 * @returns Float32Array `[28, 28, channels]`.
 * @throws {TypeError} when `x` does not hold `28 × 28 × channels` values or fewer than 5 points are given.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { htnetMosaic } from "./mosaic.ts";
 * const x = new Float32Array(28 * 28).map((_, i) => i); // value = row * 28 + col
 * const pts = [{ x: 7, y: 10 }, { x: 21, y: 10 }, { x: 14, y: 14 }, { x: 9, y: 20 }, { x: 19, y: 20 }];
 * const corrected = htnetMosaic(x, pts, { axes: "corrected", channels: 1 });
 * assert.equal(corrected[0], (10 - 7) * 28 + (7 - 7)); // left-eye patch starts at row y-7, col x-7
 * const htnet = htnetMosaic(x, pts, { axes: "htnet", channels: 1 });
 * assert.equal(htnet[0], (7 - 7) * 28 + (10 - 7)); // HTNet: row from x, col from y
 * ```
 */
export function htnetMosaic(
  x: Float32Array,
  points: readonly Point[],
  { axes = "htnet", channels = 3 }: { axes?: MosaicAxes; channels?: number } = {},
): Float32Array {
  const n = 28;
  const half = 7;
  if (x.length !== n * n * channels) {
    throw new TypeError(
      `htnetMosaic: x has ${x.length} values, expected 28*28*${channels} = ${n * n * channels}`,
    );
  }
  if (points.length < 5) throw new TypeError(`htnetMosaic: expected 5 points, got ${points.length}`);
  if (axes !== "htnet" && axes !== "corrected") {
    throw new RangeError(`htnetMosaic: axes must be "htnet" or "corrected", got "${axes}"`);
  }
  const clampInt = (v: number) => Math.trunc(Math.min(21, Math.max(7, v)));
  const out = new Float32Array(n * n * channels);
  // Quadrants: top-left p0, top-right p1, bottom-left p3, bottom-right p4.
  const tiles: [number, number, number][] = [[0, 0, 0], [1, 0, 14], [3, 14, 0], [4, 14, 14]];
  for (const [k, oy, ox] of tiles) {
    const px = clampInt(points[k].x);
    const py = clampInt(points[k].y);
    const row0 = (axes === "htnet" ? px : py) - half;
    const col0 = (axes === "htnet" ? py : px) - half;
    for (let r = 0; r < 14; r++) {
      for (let c = 0; c < 14; c++) {
        const src = ((row0 + r) * n + (col0 + c)) * channels;
        const dst = ((oy + r) * n + (ox + c)) * channels;
        for (let ch = 0; ch < channels; ch++) out[dst + ch] = x[src + ch];
      }
    }
  }
  return out;
}

/**
 * Applies {@link htnetMosaic} to every sample of a `[n, 28, 28, 3]` batch (same points for all samples, or
 * one set of 5 points per sample).
 *
 * @returns a new Float32Array `[n, 28, 28, 3]`.
 */
export function htnetMosaicBatch(
  x: Float32Array,
  n: number,
  points: readonly Point[] | readonly (readonly Point[])[],
  opts: { axes?: MosaicAxes } = {},
): Float32Array {
  const per = 28 * 28 * 3;
  if (x.length !== n * per) {
    throw new TypeError(`htnetMosaicBatch: x has ${x.length} values, expected n*28*28*3 = ${n * per}`);
  }
  const perSample = Array.isArray(points[0]);
  if (perSample && points.length !== n) {
    throw new TypeError(`htnetMosaicBatch: got ${points.length} point sets for ${n} samples`);
  }
  const out = new Float32Array(n * per);
  for (let i = 0; i < n; i++) {
    const pts = (perSample ? points[i] : points) as readonly Point[];
    out.set(htnetMosaic(x.subarray(i * per, (i + 1) * per), pts, opts), i * per);
  }
  return out;
}
