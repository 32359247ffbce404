/**
 * Action-unit-like motion fields and the class definitions of the synthetic micro-expression dataset.
 *
 * Each action unit (AU, FACS numbering) is a small set of Gaussian displacement blobs placed at face anchors:
 *
 *   d(p) = Σ_k a_k · w_k · exp(-|p - c_k|² / (2 σ_k²)) · dir_k
 *
 * with `c_k` an anchor (both sides, or one side for an asymmetric AU), `σ_k` a multiple of the inter-ocular
 * distance, `dir_k` a unit direction whose x component points outward from the face midline, `w_k` the
 * blob's share of the AU and `a_k` the sample's intensity in pixels (the peak displacement of a full-weight
 * blob). The field is smooth and localised: a few pixels of motion in one facial region, zero elsewhere.
 *
 * Classes (fine -> coarse), with their AUs (main AUs always active; optional ones with the given
 * probability and relative weight), loosely after the CASME II objective classes:
 *
 * | fine | coarse | main AUs | optional AUs | CASME II objective class |
 * |---|---|---|---|---|
 * | happiness | positive | 12 (lip-corner pull) | 6 (cheek raise) | I |
 * | surprise | surprise | 1 + 2 (brow raise) | 5 (upper-lid raise) | II |
 * | anger | negative | 4 (brow lowering) | 7 (lid tightening) | III |
 * | disgust | negative | 9 (nose wrinkle) | 10 (upper-lip raise), 4 | IV |
 * | sadness | negative | 15 (lip-corner depression) | 1 (inner brow raise), 17 (chin raise) | V |
 *
 * @module
 */
import type { ClassHierarchy } from "./types.ts";
import type { FaceAnchors, Point } from "./synthetic_face.ts";
import type { Rng } from "./synthetic_random.ts";

/** Anchor names a blob may sit on: pairs (both sides) or single midline points. */
type PairAnchor =
  | "browInner"
  | "browMid"
  | "browOuter"
  | "upperLid"
  | "lowerLid"
  | "cheek"
  | "noseWing"
  | "lipCorner";
type MidAnchor = "noseBridge" | "upperLip" | "lowerLip" | "chin";

/** One Gaussian displacement blob of an AU. */
interface Blob {
  anchor: PairAnchor | MidAnchor;
  /** Direction: x component outward from the midline (mirrored per side), y component down. */
  out: number;
  dy: number;
  /** Standard deviation in units of the inter-ocular distance. */
  sigma: number;
  /** Share of the AU's intensity. */
  w: number;
}

/** The AU vocabulary with its blobs (directions follow FACS descriptions of each AU's appearance change). */
export const AU_BLOBS: Readonly<Record<number, readonly Blob[]>> = {
  1: [{ anchor: "browInner", out: 0.1, dy: -1, sigma: 0.2, w: 1 }],
  2: [{ anchor: "browOuter", out: 0.2, dy: -1, sigma: 0.2, w: 1 }, {
    anchor: "browMid",
    out: 0.1,
    dy: -1,
    sigma: 0.16,
    w: 0.5,
  }],
  4: [{ anchor: "browInner", out: -0.55, dy: 0.85, sigma: 0.2, w: 1 }, {
    anchor: "browMid",
    out: -0.3,
    dy: 0.7,
    sigma: 0.18,
    w: 0.5,
  }],
  5: [{ anchor: "upperLid", out: 0, dy: -1, sigma: 0.11, w: 0.8 }],
  6: [{ anchor: "cheek", out: 0.25, dy: -1, sigma: 0.22, w: 0.9 }, {
    anchor: "lowerLid",
    out: 0,
    dy: -1,
    sigma: 0.1,
    w: 0.5,
  }],
  7: [{ anchor: "lowerLid", out: 0, dy: -1, sigma: 0.11, w: 0.8 }],
  9: [{ anchor: "noseWing", out: -0.15, dy: -1, sigma: 0.15, w: 1 }, {
    anchor: "noseBridge",
    out: 0,
    dy: 0.6,
    sigma: 0.12,
    w: 0.4,
  }],
  10: [{ anchor: "upperLip", out: 0, dy: -1, sigma: 0.2, w: 1 }],
  12: [{ anchor: "lipCorner", out: 0.6, dy: -0.8, sigma: 0.18, w: 1 }],
  15: [{ anchor: "lipCorner", out: 0.1, dy: 1, sigma: 0.18, w: 1 }],
  17: [{ anchor: "chin", out: 0, dy: -1, sigma: 0.28, w: 0.8 }],
};

/** How one fine class is expressed: `[au, relative weight]` always, `[au, weight, probability]` sometimes. */
export interface ClassRecipe {
  coarse: string;
  main: readonly (readonly [number, number])[];
  optional: readonly (readonly [number, number, number])[];
  /** CASME II objective class (1..7) written in the coding sheet. */
  objectiveClass: number;
}

/** The fine classes of the synthetic dataset and how each is generated. */
export const SYNTHETIC_RECIPES: Readonly<Record<string, ClassRecipe>> = {
  happiness: { coarse: "positive", main: [[12, 1]], optional: [[6, 0.7, 0.6]], objectiveClass: 1 },
  surprise: { coarse: "surprise", main: [[1, 1], [2, 1]], optional: [[5, 0.7, 0.6]], objectiveClass: 2 },
  anger: { coarse: "negative", main: [[4, 1]], optional: [[7, 0.7, 0.5]], objectiveClass: 3 },
  disgust: {
    coarse: "negative",
    main: [[9, 1]],
    optional: [[10, 0.7, 0.6], [4, 0.4, 0.3]],
    objectiveClass: 4,
  },
  sadness: {
    coarse: "negative",
    main: [[15, 1]],
    optional: [[1, 0.5, 0.5], [17, 0.6, 0.4]],
    objectiveClass: 5,
  },
};

/**
 * The synthetic label hierarchy: 5 fine classes under the 3 MEGC coarse classes
 * (`negative` = anger + disgust + sadness, `positive` = happiness, `surprise`).
 */
export const SYNTHETIC_CLASSES: ClassHierarchy = {
  fine: ["anger", "disgust", "sadness", "happiness", "surprise"],
  coarse: ["negative", "positive", "surprise"],
  fineToCoarse: [0, 0, 0, 1, 2],
};

/** One active AU of a sample: which AU, its intensity in px, and which side(s). */
export interface ActiveAu {
  au: number;
  /** Peak displacement of a full-weight blob, in frame pixels. */
  amplitude: number;
  side: "both" | "L" | "R";
}

/** Options of {@link sampleAus} (the generator's difficulty knobs). */
export interface AuSamplingOptions {
  /** Range of the sample intensity (peak px of the main AU). */
  intensity: readonly [number, number];
  /** Probability that one extra, unrelated AU is co-activated (weakly). */
  coActivation: number;
  /** Relative weight range of the unrelated AU. */
  coActivationWeight: readonly [number, number];
  /** Probability that the expression is one-sided (bilateral AUs on one side only). */
  asymmetry: number;
}

/**
 * Draws the active AUs of one sample of class `emotion`.
 *
 * @param expressivity the subject's intensity factor (multiplies the sample intensity).
 * @throws {RangeError} for an unknown emotion.
 */
export function sampleAus(rng: Rng, emotion: string, expressivity: number, o: AuSamplingOptions): ActiveAu[] {
  const recipe = SYNTHETIC_RECIPES[emotion];
  if (!recipe) {
    throw new RangeError(
      `sampleAus: unknown emotion "${emotion}" (expected one of ${
        Object.keys(SYNTHETIC_RECIPES).join(", ")
      })`,
    );
  }
  const base = rng.uniform(o.intensity[0], o.intensity[1]) * expressivity;
  const side: ActiveAu["side"] = rng.chance(o.asymmetry) ? (rng.chance(0.5) ? "L" : "R") : "both";
  const out: ActiveAu[] = recipe.main.map(([au, w]) => ({
    au,
    amplitude: base * w * rng.uniform(0.85, 1.15),
    side,
  }));
  for (const [au, w, p] of recipe.optional) {
    if (rng.chance(p)) out.push({ au, amplitude: base * w * rng.uniform(0.7, 1.2), side });
  }
  if (rng.chance(o.coActivation)) {
    const used = new Set(out.map((a) => a.au));
    const others = Object.keys(AU_BLOBS).map(Number).filter((au) => !used.has(au));
    const au = rng.pick(others);
    out.push({
      au,
      amplitude: base * rng.uniform(o.coActivationWeight[0], o.coActivationWeight[1]),
      side: rng.chance(0.5) ? "both" : rng.chance(0.5) ? "L" : "R",
    });
  }
  return out;
}

/** Formats active AUs the CASME II way: `1+2+L5` (L/R prefix for one-sided AUs), in AU order. */
export function formatAus(aus: readonly ActiveAu[]): string {
  return [...aus].sort((a, b) => a.au - b.au).map((a) => `${a.side === "both" ? "" : a.side}${a.au}`).join(
    "+",
  );
}

/** A compiled displacement field: evaluate `displacement(x, y)` in frame pixels of the neutral face. */
export interface MotionField {
  /** Writes the displacement at `(x, y)` into `out` (`out.x` = +x px, `out.y` = +y px). */
  displacement(x: number, y: number, out: Point): void;
}

/**
 * Compiles the active AUs of a sample into a displacement field on a face with the given anchors.
 * "L"/"R" sides are image-left/right.
 */
export function motionField(anchors: FaceAnchors, aus: readonly ActiveAu[]): MotionField {
  // Flattened blobs: centre, direction * amplitude, 1 / (2σ²).
  const cxs: number[] = [];
  const cys: number[] = [];
  const dxs: number[] = [];
  const dys: number[] = [];
  const ks: number[] = [];
  const radius: number[] = [];
  for (const a of aus) {
    const blobs = AU_BLOBS[a.au];
    if (!blobs) throw new RangeError(`motionField: unknown AU ${a.au}`);
    for (const b of blobs) {
      const sigma = b.sigma * anchors.iod;
      const norm = Math.hypot(b.out, b.dy);
      const anchor = anchors[b.anchor];
      const placed: [Point, number][] = Array.isArray(anchor)
        ? [[anchor[0], -1], [anchor[1], 1]] // image-left side: outward = -x
        : [[anchor as Point, 0]];
      for (const [c, sgn] of placed) {
        if (a.side === "L" && sgn > 0) continue;
        if (a.side === "R" && sgn < 0) continue;
        cxs.push(c.x);
        cys.push(c.y);
        dxs.push(a.amplitude * b.w * (b.out * sgn) / norm);
        dys.push(a.amplitude * b.w * b.dy / norm);
        ks.push(1 / (2 * sigma * sigma));
        radius.push(4 * sigma);
      }
    }
  }
  const n = cxs.length;
  return {
    displacement(x: number, y: number, out: Point): void {
      let u = 0;
      let v = 0;
      for (let i = 0; i < n; i++) {
        const ex = x - cxs[i];
        const ey = y - cys[i];
        if (Math.abs(ex) > radius[i] || Math.abs(ey) > radius[i]) continue;
        const g = Math.exp(-(ex * ex + ey * ey) * ks[i]);
        u += g * dxs[i];
        v += g * dys[i];
      }
      out.x = u;
      out.y = v;
    },
  };
}
