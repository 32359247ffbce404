/**
 * Face images for the synthetic dataset: a parametric face renderer and a face built from the public-domain
 * NASA astronaut portrait (`data/astronaut.png`). Both are continuous intensity functions `F(x, y)` of
 * frame coordinates, so a motion field is applied by evaluating `F` at displaced coordinates (no resampling
 * of an already sampled frame, hence no interpolation blur that differs between onset and apex).
 *
 * Coordinates are frame pixels: `x` to the right, `y` down, pixel `(c, r)` sampled at `(c, r)`.
 * "Left"/"right" in pairs are image-left (smaller `x`, the subject's right side) first.
 *
 * @module
 */
import type { GrayImage } from "./types.ts";
import type { Rng } from "./synthetic_random.ts";

/** A point in frame pixels. */
export interface Point {
  x: number;
  y: number;
}

/**
 * Named anchor points of a face in frame pixels; action-unit motion fields are placed relative to them.
 * Pairs are `[image-left, image-right]`.
 */
export interface FaceAnchors {
  /** Inter-ocular distance (eye centre to eye centre), px: the length unit of the motion fields. */
  iod: number;
  eyeCentre: [Point, Point];
  browInner: [Point, Point];
  browMid: [Point, Point];
  browOuter: [Point, Point];
  upperLid: [Point, Point];
  lowerLid: [Point, Point];
  cheek: [Point, Point];
  noseWing: [Point, Point];
  lipCorner: [Point, Point];
  noseBridge: Point;
  noseTip: Point;
  upperLip: Point;
  lowerLip: Point;
  chin: Point;
}

/** A renderable face: anchors plus a continuous intensity function (0..255 scale, unclamped). */
export interface FaceModel {
  kind: "parametric" | "astronaut";
  anchors: FaceAnchors;
  /** Intensity at frame coordinates `(x, y)` of the neutral face. */
  intensity(x: number, y: number): number;
}

// ---------------------------------------------------------------------------------------------------------
// Small maths helpers

function smoothstep(e0: number, e1: number, x: number): number {
  const t = Math.min(1, Math.max(0, (x - e0) / (e1 - e0)));
  return t * t * (3 - 2 * t);
}

/**
 * Value noise: a lattice of random values at `spacing` px, interpolated with the smooth (C1) Hermite
 * weights, so the texture is band-limited and can be evaluated at any real coordinate.
 */
class ValueNoise {
  readonly #n: number;
  readonly #v: Float32Array;
  readonly #spacing: number;
  constructor(rng: Rng, extent: number, spacing: number) {
    this.#spacing = spacing;
    this.#n = Math.ceil(extent / spacing) + 4;
    this.#v = new Float32Array(this.#n * this.#n);
    for (let i = 0; i < this.#v.length; i++) this.#v[i] = rng.uniform(-1, 1);
  }
  at(x: number, y: number): number {
    const n = this.#n;
    const gx = Math.min(n - 2, Math.max(0, x / this.#spacing + 1));
    const gy = Math.min(n - 2, Math.max(0, y / this.#spacing + 1));
    const ix = Math.floor(gx);
    const iy = Math.floor(gy);
    let fx = gx - ix;
    let fy = gy - iy;
    fx = fx * fx * (3 - 2 * fx);
    fy = fy * fy * (3 - 2 * fy);
    const v = this.#v;
    const a = v[iy * n + ix] * (1 - fx) + v[iy * n + ix + 1] * fx;
    const b = v[(iy + 1) * n + ix] * (1 - fx) + v[(iy + 1) * n + ix + 1] * fx;
    return a * (1 - fy) + b * fy;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Parametric face

/** Random parameters of a parametric face (all lengths in frame pixels). */
export interface ParametricFaceParams {
  size: number;
  face: { cx: number; cy: number; rx: number; ry: number };
  eyeY: number;
  eyeHalfSep: number;
  eyeW: number;
  eyeH: number;
  irisR: number;
  browGap: number;
  browInnerX: number;
  browOuterX: number;
  browArch: number;
  browThick: number;
  browDark: number;
  noseY: number;
  noseW: number;
  mouthY: number;
  mouthHalfW: number;
  mouthCurve: number;
  lipThick: number;
  chinY: number;
  skin: number;
  background: number;
  light: { gx: number; gy: number };
  texture: number;
  fold: number;
}

/** Between-subject variation of face placement: overall face size factor range and centre shift std (px at 96). */
export interface FaceVariation {
  scale?: readonly [number, number];
  shift?: number;
}

/**
 * Draws the parameters of one synthetic subject's face for a `size`×`size` frame: overall face size and
 * position ({@link FaceVariation}), feature geometry (about ±6 % each), skin tone, lighting gradient and
 * texture strength.
 */
export function randomFaceParams(
  rng: Rng,
  size: number,
  variation: FaceVariation = {},
): ParametricFaceParams {
  const scaleRange = variation.scale ?? [0.86, 1.14];
  const shift = variation.shift ?? 3;
  // Layout designed on a 96-px frame, then scaled by the subject's face size `k` about a shifted centre.
  const k = rng.uniform(scaleRange[0], scaleRange[1]);
  const s = (size / 96) * k;
  const ox = size / 2 + rng.normal(0, shift) * (size / 96);
  const oy = size / 2 + rng.normal(0, shift) * (size / 96);
  const j = (v: number, rel: number) => v * (1 + rng.normal(0, rel));
  const Y = (v: number) => oy + (v - 48) * s;
  return {
    size,
    face: { cx: ox, cy: Y(j(51, 0.02)), rx: j(38, 0.05) * s, ry: j(47, 0.04) * s },
    eyeY: Y(j(36, 0.04)),
    eyeHalfSep: j(17, 0.05) * s,
    eyeW: j(6.8, 0.08) * s,
    eyeH: j(3.0, 0.12) * s,
    irisR: j(2.4, 0.08) * s,
    browGap: j(8.5, 0.1) * s,
    browInnerX: j(6.5, 0.12) * s,
    browOuterX: j(25, 0.06) * s,
    browArch: j(2.5, 0.3) * s,
    browThick: j(3.2, 0.15) * s,
    browDark: rng.uniform(0.35, 0.6),
    noseY: Y(j(55, 0.04)),
    noseW: j(5, 0.1) * s,
    mouthY: Y(j(70, 0.03)),
    mouthHalfW: j(13, 0.08) * s,
    mouthCurve: rng.normal(0, 0.8) * s,
    lipThick: j(3.0, 0.15) * s,
    chinY: Y(j(88, 0.02)),
    skin: rng.uniform(115, 185),
    background: rng.uniform(40, 110),
    light: { gx: rng.uniform(-0.35, 0.35), gy: rng.uniform(-0.2, 0.2) },
    texture: rng.uniform(5, 11),
    fold: rng.uniform(0.05, 0.14),
  };
}

function parametricAnchors(p: ParametricFaceParams): FaceAnchors {
  const cx = p.face.cx;
  const pair = (dx: number, y: number): [Point, Point] => [{ x: cx - dx, y }, { x: cx + dx, y }];
  const browY = p.eyeY - p.browGap;
  return {
    iod: 2 * p.eyeHalfSep,
    eyeCentre: pair(p.eyeHalfSep, p.eyeY),
    browInner: pair(p.browInnerX, browY),
    browMid: pair((p.browInnerX + p.browOuterX) / 2, browY - p.browArch),
    browOuter: pair(p.browOuterX, browY + 0.5),
    upperLid: pair(p.eyeHalfSep, p.eyeY - p.eyeH),
    lowerLid: pair(p.eyeHalfSep, p.eyeY + p.eyeH),
    cheek: pair(p.eyeHalfSep + 2, (p.eyeY + p.noseY) / 2 + 3),
    noseWing: pair(p.noseW, p.noseY - 2),
    lipCorner: pair(p.mouthHalfW, p.mouthY + p.mouthCurve),
    noseBridge: { x: cx, y: p.eyeY },
    noseTip: { x: cx, y: p.noseY },
    upperLip: { x: cx, y: p.mouthY - p.lipThick },
    lowerLip: { x: cx, y: p.mouthY + p.lipThick },
    chin: { x: cx, y: p.chinY },
  };
}

/**
 * A parametric face: ellipse head with shading and a lighting gradient, brows, eyes (sclera, iris, lid
 * lines), nose (side shading, nostrils), lips with a mouth line, nasolabial folds, and a two-octave skin
 * texture that moves with the face (so optical flow has texture to track on smooth skin).
 */
export function parametricFace(p: ParametricFaceParams, rng: Rng): FaceModel {
  const anchors = parametricAnchors(p);
  const fine = new ValueNoise(rng, p.size, 2.5 * (p.size / 96));
  const coarse = new ValueNoise(rng, p.size, 8 * (p.size / 96));
  const bgNoise = new ValueNoise(rng, p.size, 6 * (p.size / 96));
  const { cx, cy, rx, ry } = p.face;
  const browY = p.eyeY - p.browGap;
  const intensity = (x: number, y: number): number => {
    const tex = p.texture * (0.6 * fine.at(x, y) + 0.8 * coarse.at(x, y));
    // Head: elliptical radius r = 1 on the outline; darker towards the border (curvature shading).
    const dx = (x - cx) / rx;
    const dy = (y - cy) / ry;
    const r = Math.sqrt(dx * dx + dy * dy);
    const light = 1 + p.light.gx * dx + p.light.gy * dy;
    let v = p.skin * light * (1 - 0.28 * smoothstep(0.55, 1.0, r)) + tex;
    // Brows: shallow arcs, distance measured vertically to the arc.
    const ax = Math.abs(x - cx);
    if (ax > p.browInnerX - 3 && ax < p.browOuterX + 3) {
      const t = (ax - p.browInnerX) / (p.browOuterX - p.browInnerX);
      const tc = Math.min(1, Math.max(0, t));
      const yb = browY + 0.5 * tc - p.browArch * 4 * tc * (1 - tc);
      const half = p.browThick / 2 * (1 - 0.35 * tc);
      const m = smoothstep(half + 0.8, half - 0.8, Math.abs(y - yb)) * smoothstep(-0.12, 0.05, t) *
        smoothstep(1.12, 0.95, t);
      v *= 1 - p.browDark * m * (0.85 + 0.15 * fine.at(2 * x, 2 * y));
    }
    // Eyes: sclera ellipse, iris disc, dark upper lid line, faint lower lid line.
    const ex = ax - p.eyeHalfSep;
    const ey = y - p.eyeY;
    if (Math.abs(ex) < p.eyeW + 3 && Math.abs(ey) < p.eyeH + 4) {
      const e = Math.sqrt((ex / p.eyeW) ** 2 + (ey / p.eyeH) ** 2);
      const inside = smoothstep(1.08, 0.92, e);
      const ir = Math.sqrt(ex * ex + ey * ey);
      const iris = smoothstep(p.irisR + 0.6, p.irisR - 0.6, ir);
      const eyeVal = 215 * light * (1 - iris * 0.75);
      v = v * (1 - inside) + eyeVal * inside;
      const lidLine = smoothstep(0.9, 0.2, Math.abs(e - 1)) * (ey < 0 ? 0.65 : 0.25);
      v *= 1 - lidLine;
      // Upper-lid crease above the eye.
      const crease = Math.sqrt((ex / (p.eyeW * 1.05)) ** 2 + ((ey + 0.6) / (p.eyeH * 1.9)) ** 2);
      if (ey < 0) v *= 1 - 0.15 * smoothstep(0.7, 0.1, Math.abs(crease - 1) * 3);
    }
    // Nose: soft side shading between the eyes and the wings, nostrils, tip highlight.
    const nx = x - cx;
    if (y > p.eyeY && y < p.noseY + 4) {
      const side = Math.exp(-(((Math.abs(nx) - p.noseW * 0.8) / 1.5) ** 2)) *
        smoothstep(p.eyeY + 2, p.noseY - 3, y) * 0.16;
      v *= 1 - side;
    }
    for (const sgn of [-1, 1]) {
      const ndx = (nx - sgn * p.noseW * 0.7) / 2.2;
      const ndy = (y - p.noseY) / 1.3;
      v *= 1 - 0.45 * Math.exp(-(ndx * ndx + ndy * ndy));
    }
    v += 14 * Math.exp(-((nx / 3) ** 2 + ((y - p.noseY + 3) / 3) ** 2));
    // Nasolabial folds: faint lines from the nose wings to just outside the mouth corners.
    for (const sgn of [-1, 1]) {
      const y0 = p.noseY - 1;
      const y1 = p.mouthY + 4;
      if (y > y0 && y < y1) {
        const t = (y - y0) / (y1 - y0);
        const xf = cx + sgn * (p.noseW + 3 + t * (p.mouthHalfW + 2 - p.noseW - 3));
        v *= 1 - p.fold * Math.exp(-(((x - xf) / 1.2) ** 2)) * Math.sin(Math.PI * t);
      }
    }
    // Mouth: lips (darker band) and the mouth line, a parabola through the corners.
    const mx = x - cx;
    if (Math.abs(mx) < p.mouthHalfW + 3) {
      const t = mx / p.mouthHalfW;
      const ym = p.mouthY + p.mouthCurve * t * t;
      const ends = smoothstep(1.1, 0.9, Math.abs(t));
      const lipT = p.lipThick * (1 - 0.5 * t * t);
      const dyl = y - ym;
      const lips = smoothstep(lipT + 0.7, lipT - 0.7, Math.abs(dyl + (dyl < 0 ? 0 : -0.2))) * ends;
      v *= 1 - 0.28 * lips;
      v *= 1 - 0.55 * smoothstep(1.1, 0.2, Math.abs(dyl)) * smoothstep(1.2, 0.95, Math.abs(t));
    }
    // Chin: soft shadow under the lower lip.
    v *= 1 - 0.1 * Math.exp(-(((x - cx) / 7) ** 2 + ((y - p.mouthY - p.lipThick - 5) / 2.5) ** 2));
    // Background outside the head outline.
    const inside = smoothstep(1.03, 0.98, r);
    const bg = p.background * (1 + 0.2 * p.light.gx) + 8 * bgNoise.at(x, y);
    return v * inside + bg * (1 - inside);
  };
  return { kind: "parametric", anchors, intensity };
}

// ---------------------------------------------------------------------------------------------------------
// Astronaut face

/**
 * The 68 landmarks (iBUG/dlib order) of the face in `data/astronaut.png` (512×512), as detected by
 * `@vladmandic/face-api` 1.7.15 (ssdMobilenetv1 + faceLandmark68Net, tfjs wasm backend), rounded to 0.1 px.
 * Used to place action-unit motion on the astronaut-based subjects; `tests/data/faces_test.ts` checks that
 * `detectFace` still agrees with them.
 */
export const ASTRONAUT_LANDMARKS_68: readonly (readonly [number, number])[] = [
  [175.4, 99.5],
  [176, 111.9],
  [177.5, 123.7],
  [179.3, 134],
  [182.9, 145.6],
  [188.8, 155],
  [196.3, 162],
  [206.4, 170.1],
  [221, 174.5],
  [235.6, 170.8],
  [244.8, 164.6],
  [251.8, 158.7],
  [258.2, 149.9],
  [262.8, 139.1],
  [265.1, 128.7],
  [267.3, 118],
  [268.1, 105.9],
  [186.1, 90.6],
  [192.2, 87.1],
  [199.6, 86.7],
  [206.4, 87.9],
  [212.4, 90.6],
  [236.5, 92.2],
  [242.5, 90.3],
  [249, 89.6],
  [256.2, 90.6],
  [261.2, 94.3],
  [223.7, 104.4],
  [223.5, 113.2],
  [223.1, 121.5],
  [222.7, 128.8],
  [213.9, 130.7],
  [217.6, 132.7],
  [222.5, 133.7],
  [227.4, 132.5],
  [231, 131.5],
  [194.6, 100],
  [199.1, 98.4],
  [205.3, 98.8],
  [210.5, 102.2],
  [205.5, 103.8],
  [199.1, 102.9],
  [236.2, 103.5],
  [241.8, 100.5],
  [248.1, 100.9],
  [251.9, 103.4],
  [247.6, 105.7],
  [241.3, 105],
  [201.4, 141.1],
  [208.6, 139.9],
  [217.8, 139.2],
  [222.5, 140.1],
  [226.7, 139.2],
  [236.4, 140.5],
  [243.7, 142.4],
  [235.6, 150.2],
  [229, 153.8],
  [222.1, 154.9],
  [215.8, 153.7],
  [208.9, 150],
  [202.3, 141.4],
  [215.6, 142.2],
  [222.4, 142.6],
  [228.8, 142.7],
  [242.1, 142.4],
  [228.8, 148.6],
  [222.5, 149.4],
  [216.2, 148.7],
];

function mean(points: readonly Point[]): Point {
  let x = 0;
  let y = 0;
  for (const p of points) {
    x += p.x;
    y += p.y;
  }
  return { x: x / points.length, y: y / points.length };
}

/**
 * Anchors from 68 iBUG landmarks (in any coordinates): eyes 36–47, brows 17–26, nose 27–35, mouth 48–67,
 * jaw 0–16. Image-left first.
 */
export function anchorsFromLandmarks68(pts: readonly Point[]): FaceAnchors {
  if (pts.length !== 68) {
    throw new RangeError(`anchorsFromLandmarks68: expected 68 points, got ${pts.length}`);
  }
  const eyeL = mean(pts.slice(36, 42));
  const eyeR = mean(pts.slice(42, 48));
  const iod = Math.hypot(eyeR.x - eyeL.x, eyeR.y - eyeL.y);
  const mid = (a: Point, b: Point, t = 0.5): Point => ({
    x: a.x + (b.x - a.x) * t,
    y: a.y + (b.y - a.y) * t,
  });
  return {
    iod,
    eyeCentre: [eyeL, eyeR],
    browInner: [pts[21], pts[22]],
    browMid: [pts[19], pts[24]],
    browOuter: [pts[17], pts[26]],
    upperLid: [mid(pts[37], pts[38]), mid(pts[43], pts[44])],
    lowerLid: [mid(pts[40], pts[41]), mid(pts[46], pts[47])],
    cheek: [mid(mid(pts[41], pts[40]), pts[2], 0.45), mid(mid(pts[46], pts[47]), pts[14], 0.45)],
    noseWing: [mid(pts[31], pts[29], 0.3), mid(pts[35], pts[29], 0.3)],
    lipCorner: [pts[48], pts[54]],
    noseBridge: mid(pts[27], pts[28]),
    noseTip: pts[33],
    upperLip: pts[51],
    lowerLip: pts[57],
    chin: mid(pts[8], pts[57], 0.4),
  };
}

/** Random per-subject variation of an astronaut-based face. */
export interface AstronautFaceParams {
  size: number;
  /** Frame px per astronaut px. */
  scale: number;
  /** Vertical/horizontal stretch of the mapping (face-shape variation). */
  aspect: number;
  /** Shift of the face in the frame, px. */
  offset: Point;
  /** Mirror the face horizontally. */
  flip: boolean;
  /** In-plane rotation of the neutral face, radians. */
  angle: number;
  contrast: number;
  brightness: number;
  gamma: number;
  light: { gx: number; gy: number };
  texture: number;
}

/** Draws the variation of one astronaut-based subject. */
export function randomAstronautParams(
  rng: Rng,
  size: number,
  variation: FaceVariation = {},
): AstronautFaceParams {
  const scaleRange = variation.scale ?? [0.86, 1.14];
  const shift = variation.shift ?? 3;
  return {
    size,
    scale: (34 / 43) * (size / 96) * rng.uniform(scaleRange[0], scaleRange[1]),
    offset: { x: rng.normal(0, shift) * (size / 96), y: rng.normal(0, shift) * (size / 96) },
    aspect: 1 + rng.normal(0, 0.04),
    flip: rng.chance(0.5),
    angle: rng.normal(0, 0.03),
    contrast: rng.uniform(0.8, 1.15),
    brightness: rng.uniform(-20, 20),
    gamma: rng.uniform(0.8, 1.25),
    light: { gx: rng.uniform(-0.3, 0.3), gy: rng.uniform(-0.15, 0.15) },
    texture: rng.uniform(2, 5),
  };
}

/**
 * A face built from the astronaut portrait: the grayscale photo is mapped into the frame by a similarity
 * (plus a small stretch) that puts the eyes' midpoint at 37.5 % of the frame height, then re-lit, re-toned
 * and given a little extra texture. Intensities are sampled with Catmull–Rom bicubic interpolation.
 *
 * @param photo the 512×512 grayscale astronaut image (Float32 or Uint8).
 */
export function astronautFace(photo: GrayImage, p: AstronautFaceParams, rng: Rng): FaceModel {
  const src = photo.data;
  const W = photo.width;
  const H = photo.height;
  const pts = ASTRONAUT_LANDMARKS_68.map(([x, y]) => ({ x, y }));
  const a = anchorsFromLandmarks68(pts);
  const eyeMid = {
    x: (a.eyeCentre[0].x + a.eyeCentre[1].x) / 2,
    y: (a.eyeCentre[0].y + a.eyeCentre[1].y) / 2,
  };
  const target = { x: p.size / 2 + p.offset.x, y: 0.375 * p.size + p.offset.y };
  const cos = Math.cos(p.angle);
  const sin = Math.sin(p.angle);
  const sx = p.scale * (p.flip ? -1 : 1);
  const sy = p.scale * p.aspect;
  // photo -> frame: f = target + R · diag(sx, sy) · (q - eyeMid)
  const toFrame = (q: Point): Point => {
    const dx = (q.x - eyeMid.x) * sx;
    const dy = (q.y - eyeMid.y) * sy;
    return { x: target.x + cos * dx - sin * dy, y: target.y + sin * dx + cos * dy };
  };
  const toPhoto = (x: number, y: number): Point => {
    const dx = x - target.x;
    const dy = y - target.y;
    return { x: eyeMid.x + (cos * dx + sin * dy) / sx, y: eyeMid.y + (-sin * dx + cos * dy) / sy };
  };
  let framePts = pts.map(toFrame);
  if (p.flip) {
    // Mirroring swaps the subject's sides: reorder so that pairs stay image-left first.
    const mirror = [
      16,
      15,
      14,
      13,
      12,
      11,
      10,
      9,
      8,
      7,
      6,
      5,
      4,
      3,
      2,
      1,
      0,
      26,
      25,
      24,
      23,
      22,
      21,
      20,
      19,
      18,
      17,
      27,
      28,
      29,
      30,
      35,
      34,
      33,
      32,
      31,
      45,
      44,
      43,
      42,
      47,
      46,
      39,
      38,
      37,
      36,
      41,
      40,
      54,
      53,
      52,
      51,
      50,
      49,
      48,
      59,
      58,
      57,
      56,
      55,
      64,
      63,
      62,
      61,
      60,
      67,
      66,
      65,
    ];
    framePts = mirror.map((i) => framePts[i]);
  }
  const anchors = anchorsFromLandmarks68(framePts);
  const tex = new ValueNoise(rng, p.size, 2.5 * (p.size / 96));
  const pix = (x: number, y: number) =>
    src[Math.min(H - 1, Math.max(0, y)) * W + Math.min(W - 1, Math.max(0, x))];
  // Catmull–Rom weights (Keys cubic, a = -0.5).
  const cubic = (t: number): [number, number, number, number] => {
    const t2 = t * t;
    const t3 = t2 * t;
    return [
      -0.5 * t3 + t2 - 0.5 * t,
      1.5 * t3 - 2.5 * t2 + 1,
      -1.5 * t3 + 2 * t2 + 0.5 * t,
      0.5 * t3 - 0.5 * t2,
    ];
  };
  const intensity = (x: number, y: number): number => {
    const q = toPhoto(x, y);
    const ix = Math.floor(q.x);
    const iy = Math.floor(q.y);
    const wx = cubic(q.x - ix);
    const wy = cubic(q.y - iy);
    let acc = 0;
    for (let j = 0; j < 4; j++) {
      let row = 0;
      for (let i = 0; i < 4; i++) row += wx[i] * pix(ix - 1 + i, iy - 1 + j);
      acc += wy[j] * row;
    }
    const g = 255 * Math.pow(Math.min(1, Math.max(0, acc / 255)), p.gamma);
    const nx = (x - p.size / 2) / p.size;
    const ny = (y - p.size / 2) / p.size;
    return (g * p.contrast + p.brightness) * (1 + p.light.gx * nx + p.light.gy * ny) +
      p.texture * tex.at(x, y);
  };
  return { kind: "astronaut", anchors, intensity };
}
