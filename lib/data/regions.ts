/**
 * Named facial regions as pixel masks in input coordinates, and labels for the windows of a window grid.
 *
 * Regions (from 68 iBUG landmarks; `L`/`R` pairs are merged into one region each):
 *
 * | region | built from |
 * |---|---|
 * | `brows` | capsules of radius 0.12·iod along each brow (17–21, 22–26) |
 * | `eyes` | each eye contour (36–41, 42–47) grown by 0.08·iod |
 * | `nose` | polygon 27, 31–35 (bridge to nostrils) grown by 0.06·iod |
 * | `mouth` | outer lip contour (48–59) grown by 0.08·iod |
 * | `cheeks` | per side: below the eye, between the jaw line (1–4 / 12–15) and the nose/mouth corner |
 * | `chin` | below the lower lip to the jaw (48, 54–59, 5–11) |
 *
 * A pixel belongs to every region whose shape contains its centre (`masks`); `labels` assigns each pixel to
 * one region by priority eyes > brows > mouth > nose > chin > cheeks (so the small, expressive regions win
 * at overlaps), `-1` outside all regions.
 *
 * @module
 */
import { canonicalLandmarks, eyeCentres, type Point } from "./faces.ts";

/** Region names, in label-priority order. */
export const REGION_NAMES = ["eyes", "brows", "mouth", "nose", "chin", "cheeks"] as const;

/** A facial region name. */
export type RegionName = typeof REGION_NAMES[number];

/** Region masks and the per-pixel label map of a `height × width` input. */
export interface FaceRegions {
  width: number;
  height: number;
  /** Region names; `labels` values index into it. */
  names: readonly RegionName[];
  /** Per region, `height × width` row-major, 1 inside. Regions may overlap. */
  masks: Record<RegionName, Uint8Array>;
  /** Per pixel, the index into `names` of its region by priority, or -1 (no region). */
  labels: Int8Array;
}

function pointInPolygon(x: number, y: number, poly: readonly Point[]): boolean {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const a = poly[i];
    const b = poly[j];
    if ((a.y > y) !== (b.y > y) && x < ((b.x - a.x) * (y - a.y)) / (b.y - a.y) + a.x) inside = !inside;
  }
  return inside;
}

function distToSegment(x: number, y: number, a: Point, b: Point): number {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const len2 = dx * dx + dy * dy;
  const t = len2 > 0 ? Math.min(1, Math.max(0, ((x - a.x) * dx + (y - a.y) * dy) / len2)) : 0;
  return Math.hypot(x - a.x - t * dx, y - a.y - t * dy);
}

/** Inside the polygon or within `grow` of its outline. */
function inGrownPolygon(x: number, y: number, poly: readonly Point[], grow: number): boolean {
  if (pointInPolygon(x, y, poly)) return true;
  if (grow <= 0) return false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    if (distToSegment(x, y, poly[j], poly[i]) <= grow) return true;
  }
  return false;
}

function onPolyline(x: number, y: number, line: readonly Point[], radius: number): boolean {
  for (let i = 1; i < line.length; i++) if (distToSegment(x, y, line[i - 1], line[i]) <= radius) return true;
  return false;
}

/**
 * Region masks from 68 landmarks given in the input's pixel-index coordinates (pixel `(c, r)` has its
 * centre at `(c, r)`).
 *
 * @param size `n` for an `n × n` input, or `{ width, height }`.
 * @throws {RangeError} for a landmark count other than 68 or a bad size.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { faceRegions } from "./regions.ts";
 * import { canonicalLandmarks } from "./faces.ts";
 * const r = faceRegions(canonicalLandmarks(28), 28);
 * const at = (x: number, y: number) => r.names[r.labels[y * 28 + x]];
 * assert.equal(at(14, 22), "mouth");
 * ```
 */
export function faceRegions(
  landmarks: readonly Point[],
  size: number | { width: number; height: number },
): FaceRegions {
  if (landmarks.length !== 68) {
    throw new RangeError(`faceRegions: expected 68 landmarks, got ${landmarks.length}`);
  }
  const width = typeof size === "number" ? size : size.width;
  const height = typeof size === "number" ? size : size.height;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`faceRegions: size must be positive integers, got ${width}x${height}`);
  }
  const P = landmarks;
  const [le, re] = eyeCentres(P);
  const iod = Math.hypot(re.x - le.x, re.y - le.y);
  const pick = (...idx: number[]) => idx.map((i) => P[i]);
  const browL = pick(17, 18, 19, 20, 21);
  const browR = pick(22, 23, 24, 25, 26);
  const eyeL = pick(36, 37, 38, 39, 40, 41);
  const eyeR = pick(42, 43, 44, 45, 46, 47);
  const nose = pick(27, 31, 32, 33, 34, 35);
  const mouth = pick(48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59);
  const cheekL = pick(1, 2, 3, 4, 48, 31, 39, 40, 41, 36);
  const cheekR = pick(15, 14, 13, 12, 54, 35, 42, 47, 46, 45);
  const chin = pick(48, 59, 58, 57, 56, 55, 54, 11, 10, 9, 8, 7, 6, 5);
  const tests: Record<RegionName, (x: number, y: number) => boolean> = {
    eyes: (x, y) => inGrownPolygon(x, y, eyeL, 0.08 * iod) || inGrownPolygon(x, y, eyeR, 0.08 * iod),
    brows: (x, y) => onPolyline(x, y, browL, 0.12 * iod) || onPolyline(x, y, browR, 0.12 * iod),
    mouth: (x, y) => inGrownPolygon(x, y, mouth, 0.08 * iod),
    nose: (x, y) => inGrownPolygon(x, y, nose, 0.06 * iod),
    chin: (x, y) => pointInPolygon(x, y, chin),
    cheeks: (x, y) => pointInPolygon(x, y, cheekL) || pointInPolygon(x, y, cheekR),
  };
  const masks = Object.fromEntries(REGION_NAMES.map((n) => [n, new Uint8Array(width * height)])) as Record<
    RegionName,
    Uint8Array
  >;
  const labels = new Int8Array(width * height).fill(-1);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      REGION_NAMES.forEach((name, k) => {
        if (tests[name](x, y)) {
          masks[name][i] = 1;
          if (labels[i] < 0) labels[i] = k;
        }
      });
    }
  }
  return { width, height, names: REGION_NAMES, masks, labels };
}

/**
 * The region layout of an eye-aligned input (cropped with `eyeCrop`'s defaults, e.g. `--face-crop`) when no
 * landmarks are at hand: {@link faceRegions} of the canonical landmarks. Faces that vary in size or place in
 * the input — the shipped synthetic set, whose faces vary by design — need their own landmarks instead
 * (`faceRegions(loadSyntheticLandmarks(size).get(id)!, size)`).
 */
export function defaultFaceRegions(size: number): FaceRegions {
  return faceRegions(canonicalLandmarks(size), size);
}

/** Region label of each window of a window grid. */
export interface WindowLabels {
  rows: number;
  cols: number;
  /** Per window, row-major: the dominant region, or `"other"` when regions cover under `minCover` of it. */
  labels: (RegionName | "other")[];
  /** Per window, the fraction of its pixels in each region by priority labels (absent = 0). */
  cover: Partial<Record<RegionName, number>>[];
}

/**
 * Labels each window of a `rows × cols` grid over the input by its dominant region (the region with the
 * most pixels in the window under the priority label map; ties go to the higher-priority region).
 * Windows split the input evenly (`height / rows` × `width / cols`; fractional edges are shared by
 * assigning each pixel to the window holding its centre), or as `cellEdges` says (image fractions, e.g.
 * `explain`'s, where the last window of a padded map covers less).
 *
 * @param grid `[rows, cols]`, e.g. a model's `windowGrid`.
 * @param minCover minimum covered fraction for a label other than `"other"`. @default 0.15
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultFaceRegions, labelWindows } from "./regions.ts";
 * const w = labelWindows(defaultFaceRegions(28), [7, 7]); // 4x4-pixel windows
 * assert.equal(w.labels.length, 49);
 * assert.ok(w.labels.includes("mouth") && w.labels.includes("eyes"));
 * ```
 */
export function labelWindows(
  regions: FaceRegions,
  grid: readonly [number, number],
  minCover = 0.15,
  cellEdges?: { y: readonly number[]; x: readonly number[] },
): WindowLabels {
  const [rows, cols] = grid;
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows <= 0 || cols <= 0) {
    throw new RangeError(
      `labelWindows: grid must be [rows, cols] positive integers, got [${grid.join(", ")}]`,
    );
  }
  const { width, height, labels, names } = regions;
  if (cellEdges && (cellEdges.y.length !== rows + 1 || cellEdges.x.length !== cols + 1)) {
    throw new RangeError(
      `labelWindows: cellEdges must have ${rows + 1} row and ${
        cols + 1
      } column edges, got ${cellEdges.y.length} ` +
        `and ${cellEdges.x.length}`,
    );
  }
  // the unit holding a pixel centre at fraction f: even split, or the last edge at or below f
  const unitOf = (f: number, n: number, edges?: readonly number[]) => {
    if (!edges) return Math.min(n - 1, Math.floor(f * n));
    let k = 0;
    while (k < n - 1 && edges[k + 1] <= f) k++;
    return k;
  };
  const counts = Array.from({ length: rows * cols }, () => new Float64Array(names.length));
  const totals = new Float64Array(rows * cols);
  for (let y = 0; y < height; y++) {
    const wr = unitOf((y + 0.5) / height, rows, cellEdges?.y);
    for (let x = 0; x < width; x++) {
      const wc = unitOf((x + 0.5) / width, cols, cellEdges?.x);
      const w = wr * cols + wc;
      totals[w]++;
      const l = labels[y * width + x];
      if (l >= 0) counts[w][l]++;
    }
  }
  const out: WindowLabels = { rows, cols, labels: [], cover: [] };
  for (let w = 0; w < rows * cols; w++) {
    const cover: Partial<Record<RegionName, number>> = {};
    let best = -1;
    let covered = 0;
    for (let k = 0; k < names.length; k++) {
      if (counts[w][k] === 0) continue;
      cover[names[k]] = counts[w][k] / totals[w];
      covered += counts[w][k];
      if (best < 0 || counts[w][k] > counts[w][best]) best = k;
    }
    out.cover.push(cover);
    out.labels.push(best >= 0 && covered / totals[w] >= minCover ? names[best] : "other");
  }
  return out;
}
