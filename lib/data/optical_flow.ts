/**
 * Dense optical flow by the dual TV-L1 method (C. Zach, T. Pock & H. Bischof, "A Duality Based Approach for
 * Realtime TV-L1 Optical Flow", DAGM 2007, LNCS 4713, pp. 214–223), in plain TypeScript on the CPU.
 *
 * TV-L1 is the standard input of micro-expression recognisers (STSTNet points to the IPOL implementation;
 * MEAN and the HTNet-style scripts of forks use OpenCV's `DualTVL1OpticalFlow`; HTNet's own CAS(ME)^3 path uses
 * Farneback), and opencv.js does not ship it. This implementation follows the numerical scheme
 * described by Sánchez Pérez, Meinhardt-Llopis & Facciolo, "TV-L1 Optical Flow Estimation", Image Processing
 * On Line 3 (2013), pp. 137–150 (https://doi.org/10.5201/ipol.2013.26), with the variations of OpenCV 4.6's
 * contrib `optflow::DualTVL1OpticalFlow` (median filtering of the flow between outer iterations, a
 * separate number of warps, the illumination term `gamma`, `scaleStep`-spaced pyramid without pre-smoothing),
 * and OpenCV's default parameters.
 *
 * The energy, for flow `u = (u1, u2)` between `I0` (prev) and `I1` (next):
 *
 *   E(u) = Σ |∇u1| + |∇u2| + λ |I1(x + u) − I0(x)|
 *
 * is relaxed with an auxiliary field `v` (coupling `1/(2θ)·|u − v|²`) and minimised by alternating:
 *
 *   ρ(v)  = I1w + ∇I1w · (v − u0) − I0                       (linearised at the warp point u0)
 *   v     = u + { λθ∇I1w if ρ(u) < −λθ|∇I1w|²;  −λθ∇I1w if ρ(u) > λθ|∇I1w|²;  −ρ(u)∇I1w/|∇I1w|² otherwise }
 *   u     = v + θ · div p
 *   p     = (p + τ/θ · ∇u) / (1 + τ/θ · |∇u|)                (Chambolle's projection, per component)
 *
 * with forward differences for ∇ and the matching backward-difference divergence. The loop runs
 * `warps` times per pyramid level (re-warping `I1` by the current flow with bicubic interpolation), and within
 * a warp `outerIterations × innerIterations` times at most, stopping early once the mean squared update of `u`
 * falls below `epsilon²`; before each outer iteration the flow is median-filtered (`medianFiltering`).
 *
 * Notes (deviations from OpenCV 4.6, none of which changes the defaults' meaning):
 * - OpenCV rounds warp positions to 1/32 px inside `remap`; here positions are exact.
 * - Arithmetic within a step is float64 (stored as float32), and the stopping sum is float64; OpenCV uses
 *   float32 throughout. On the golden pairs the two flows differ by 0.005–0.009 px on average (interior).
 * - `Float32Array` input is taken on the 0..255 scale that `toFloat` (lib/data/image.ts) produces (OpenCV
 *   multiplies `CV_32F` input by 255, i.e. expects 0..1); pass `floatScale: 255` for 0..1 data.
 * - Single-threaded; {@link DualTVL1} reuses its buffers across same-sized pairs.
 *
 * @module
 */
import type { Flow, GrayImage } from "./types.ts";
import { centeredGradientInto, medianInPlace, resizeLinearInto, warpCubic3Into } from "./tvl1_ops.ts";

/** Parameters of {@link opticalFlowTVL1}; names and defaults are OpenCV 4.6's `DualTVL1OpticalFlow`. */
export interface TVL1Options {
  /** Time step of the dual update, τ. @default 0.25 (stable for τ ≤ 0.25) */
  tau?: number;
  /** Weight of the data term, λ, for intensities on the 0..255 scale; smaller gives smoother flow. @default 0.15 */
  lambda?: number;
  /** Coupling between `u` and `v`, θ; small values make them close. @default 0.3 */
  theta?: number;
  /** Number of pyramid levels (fewer if a level would be under 16 px wide or high). @default 5 */
  nscales?: number;
  /** Number of warps (re-linearisations) per level. @default 5 */
  warps?: number;
  /** Stopping threshold on the root-mean-square update of the flow per iteration, in px. @default 0.01 */
  epsilon?: number;
  /** Iterations per outer iteration. @default 30 */
  innerIterations?: number;
  /** Outer iterations (each preceded by median filtering) per warp. @default 10 */
  outerIterations?: number;
  /** Size ratio between consecutive pyramid levels, in (0, 1). @default 0.8 */
  scaleStep?: number;
  /** Weight of the illumination-change term (0 = off, as in the classic model). @default 0 */
  gamma?: number;
  /** Median filter size applied to the flow between outer iterations: 1 (off), 3 or 5. @default 5 */
  medianFiltering?: number;
  /** Multiplier applied to `Float32Array` input intensities (Uint8Array input is used as is). @default 1 */
  floatScale?: number;
  /** Start from this flow (OpenCV's `useInitialFlow`) instead of zero; same size as the images. */
  initialFlow?: Flow;
}

/** The resolved TV-L1 parameters (every field of {@link TVL1Options} except `initialFlow`). */
export type TVL1Params = Required<Omit<TVL1Options, "initialFlow">>;

/** OpenCV 4.6 `optflow::DualTVL1OpticalFlow_create()` defaults (plus `floatScale: 1`). */
export const TVL1_DEFAULTS: Readonly<TVL1Params> = Object.freeze({
  tau: 0.25,
  lambda: 0.15,
  theta: 0.3,
  nscales: 5,
  warps: 5,
  epsilon: 0.01,
  innerIterations: 30,
  outerIterations: 10,
  scaleStep: 0.8,
  gamma: 0,
  medianFiltering: 5,
  floatScale: 1,
});

const INTEGER_PARAMS = new Set(["nscales", "warps", "innerIterations", "outerIterations", "medianFiltering"]);
const OPTION_NAMES = [...Object.keys(TVL1_DEFAULTS), "initialFlow"];

/**
 * Merges `options` over {@link TVL1_DEFAULTS} and validates them.
 *
 * @throws {TypeError} if `options` is not an object.
 * @throws {RangeError} for an unknown option name or a value out of range (non-positive step sizes, non-integer
 * counts, `scaleStep` outside (0, 1), `medianFiltering` not 1, 3 or 5).
 */
export function resolveTVL1Options(options: TVL1Options = {}): TVL1Params {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`opticalFlowTVL1: options must be an object, got ${options}`);
  }
  for (const k of Object.keys(options)) {
    if (!OPTION_NAMES.includes(k)) {
      throw new RangeError(
        `opticalFlowTVL1: unknown option '${k}'; valid options: ${OPTION_NAMES.join(", ")}`,
      );
    }
  }
  const p = { ...TVL1_DEFAULTS } as TVL1Params;
  for (const k of Object.keys(TVL1_DEFAULTS) as (keyof TVL1Params)[]) {
    const val = options[k];
    if (val === undefined) continue;
    if (typeof val !== "number" || !Number.isFinite(val)) {
      throw new RangeError(`opticalFlowTVL1: option ${k} must be a finite number, got ${String(val)}`);
    }
    if (INTEGER_PARAMS.has(k) && !Number.isInteger(val)) {
      throw new RangeError(`opticalFlowTVL1: option ${k} must be an integer, got ${val}`);
    }
    p[k] = val;
  }
  for (const k of ["tau", "lambda", "theta", "floatScale"] as const) {
    if (!(p[k] > 0)) throw new RangeError(`opticalFlowTVL1: option ${k} must be > 0, got ${p[k]}`);
  }
  for (const k of ["nscales", "warps", "innerIterations", "outerIterations"] as const) {
    if (!(p[k] >= 1)) throw new RangeError(`opticalFlowTVL1: option ${k} must be >= 1, got ${p[k]}`);
  }
  if (!(p.epsilon >= 0)) {
    throw new RangeError(`opticalFlowTVL1: option epsilon must be >= 0, got ${p.epsilon}`);
  }
  if (!(p.gamma >= 0)) throw new RangeError(`opticalFlowTVL1: option gamma must be >= 0, got ${p.gamma}`);
  if (!(p.scaleStep > 0 && p.scaleStep < 1)) {
    throw new RangeError(`opticalFlowTVL1: option scaleStep must be in (0, 1), got ${p.scaleStep}`);
  }
  if (![1, 3, 5].includes(p.medianFiltering)) {
    throw new RangeError(
      `opticalFlowTVL1: option medianFiltering must be 1 (off), 3 or 5, got ${p.medianFiltering}`,
    );
  }
  return p;
}

/**
 * Checks that `img` is a {@link GrayImage} of at least 2×2 with `width * height` finite values.
 *
 * @throws {TypeError} if `img` is not an object with a Uint8Array/Float32Array `data` of length
 * `width * height`. @throws {RangeError} if a size is not an integer >= 2 or a value is not finite.
 */
export function checkGrayImage(img: GrayImage, what: string, fn = "opticalFlowTVL1"): void {
  if (img === null || typeof img !== "object") {
    throw new TypeError(`${fn}: ${what} must be a GrayImage {width, height, data}, got ${img}`);
  }
  const { width, height, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 2 || height < 2) {
    throw new RangeError(`${fn}: ${what} width and height must be integers >= 2, got ${width}x${height}`);
  }
  if (!(data instanceof Uint8Array || data instanceof Float32Array)) {
    throw new TypeError(
      `${fn}: ${what}.data must be a Uint8Array or Float32Array, got ${
        (data as object | undefined)?.constructor?.name ?? typeof data
      }`,
    );
  }
  if (data.length !== width * height) {
    throw new TypeError(
      `${fn}: ${what}.data has length ${data.length}, expected width*height = ${width}*${height} = ${
        width * height
      }`,
    );
  }
  if (data instanceof Float32Array) {
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) {
        throw new RangeError(
          `${fn}: ${what}.data[${i}] (x=${i % width}, y=${Math.floor(i / width)}) is ${
            data[i]
          }; expected finite`,
        );
      }
    }
  }
}

/** Round half to even, as OpenCV's `saturate_cast<int>(double)` (`cvRound`). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The pyramid level sizes OpenCV's TV-L1 uses: `round(prev * scaleStep)` until a side would be < 16. */
export function tvl1PyramidSizes(
  width: number,
  height: number,
  nscales: number,
  scaleStep: number,
): [number, number][] {
  const sizes: [number, number][] = [[width, height]];
  for (let s = 1; s < nscales; s++) {
    const [pw, ph] = sizes[s - 1];
    const w = roundHalfEven(pw * scaleStep);
    const h = roundHalfEven(ph * scaleStep);
    if (w < 16 || h < 16) break;
    sizes.push([w, h]);
  }
  return sizes;
}

/** Smallest positive float32 difference from 1 (`FLT_EPSILON`): OpenCV's test for a zero image gradient. */
const FLT_EPSILON = 1.1920928955078125e-7;

/**
 * A dual TV-L1 solver for one image size, holding every buffer it needs, so repeated calls (a dataset of
 * same-sized crops) allocate only the returned flow.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DualTVL1 } from "./optical_flow.ts";
 * const w = 32, h = 32;
 * const prev = { width: w, height: h, data: new Uint8Array(w * h).map((_, i) => 128 + 60 * Math.sin(i % w / 3)) };
 * const solver = new DualTVL1(w, h);
 * const flow = solver.calc(prev, prev);
 * assert.ok(flow.u.length === w * h);
 * ```
 */
export class DualTVL1 {
  /** Image width this solver was built for. */
  readonly width: number;
  /** Image height this solver was built for. */
  readonly height: number;
  /** Resolved parameters. */
  readonly params: Readonly<TVL1Params>;
  /** `[width, height]` of every pyramid level, finest first. */
  readonly levels: readonly [number, number][];

  #i0: Float32Array[];
  #i1: Float32Array[];
  #u1: Float32Array[];
  #u2: Float32Array[];
  #u3: Float32Array[];
  // Work buffers sized for the finest level; coarser levels use their first w*h entries.
  #i1x: Float32Array;
  #i1y: Float32Array;
  #i1w: Float32Array;
  #i1wx: Float32Array;
  #i1wy: Float32Array;
  #grad: Float32Array;
  #rhoC: Float32Array;
  #p11: Float32Array;
  #p12: Float32Array;
  #p21: Float32Array;
  #p22: Float32Array;
  #p31: Float32Array;
  #p32: Float32Array;
  #tmp: Float32Array;

  /**
   * Allocates the pyramid and work buffers for `width × height` images.
   *
   * @param width image width (>= 2)
   * @param height image height (>= 2)
   * @param options TV-L1 parameters; `initialFlow` is not accepted here (pass it to {@link DualTVL1.calc}).
   * @throws {RangeError} for bad sizes or options.
   */
  constructor(width: number, height: number, options: Omit<TVL1Options, "initialFlow"> = {}) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 2 || height < 2) {
      throw new RangeError(`DualTVL1: width and height must be integers >= 2, got ${width}x${height}`);
    }
    if ("initialFlow" in options) {
      throw new RangeError("DualTVL1: pass initialFlow to calc(), not to the constructor");
    }
    this.width = width;
    this.height = height;
    this.params = Object.freeze(resolveTVL1Options(options));
    this.levels = Object.freeze(tvl1PyramidSizes(width, height, this.params.nscales, this.params.scaleStep));
    const useGamma = this.params.gamma !== 0;
    const alloc = (n: number) => new Float32Array(n);
    this.#i0 = this.levels.map(([w, h]) => alloc(w * h));
    this.#i1 = this.levels.map(([w, h]) => alloc(w * h));
    this.#u1 = this.levels.map(([w, h]) => alloc(w * h));
    this.#u2 = this.levels.map(([w, h]) => alloc(w * h));
    this.#u3 = useGamma ? this.levels.map(([w, h]) => alloc(w * h)) : [];
    const n = width * height;
    this.#i1x = alloc(n);
    this.#i1y = alloc(n);
    this.#i1w = alloc(n);
    this.#i1wx = alloc(n);
    this.#i1wy = alloc(n);
    this.#grad = alloc(n);
    this.#rhoC = alloc(n);
    this.#p11 = alloc(n);
    this.#p12 = alloc(n);
    this.#p21 = alloc(n);
    this.#p22 = alloc(n);
    this.#p31 = useGamma ? alloc(n) : alloc(0);
    this.#p32 = useGamma ? alloc(n) : alloc(0);
    this.#tmp = alloc(n);
  }

  /**
   * Flow from `prev` to `next` (both `width × height`): `prev(y, x) ≈ next(y + v, x + u)`.
   *
   * @returns a new {@link Flow} (`u`, `v`: Float32Array `[height * width]`, pixels).
   * @throws {TypeError} / {RangeError} as {@link opticalFlowTVL1}.
   */
  calc(prev: GrayImage, next: GrayImage, initialFlow?: Flow): Flow {
    checkGrayImage(prev, "prev");
    checkGrayImage(next, "next");
    const { width: w, height: h } = this;
    for (const [img, what] of [[prev, "prev"], [next, "next"]] as const) {
      if (img.width !== w || img.height !== h) {
        throw new TypeError(
          `opticalFlowTVL1: ${what} is ${img.width}x${img.height}, expected ${w}x${h}` +
            (what === "next" && prev.width === w && prev.height === h ? " (the size of prev)" : ""),
        );
      }
    }
    const p = this.params;
    const useGamma = p.gamma !== 0;
    const L = this.levels.length;
    // Level 0: intensities as float32 on the 0..255 scale.
    toScaled(prev.data, this.#i0[0], p.floatScale);
    toScaled(next.data, this.#i1[0], p.floatScale);
    const inv = 1 / p.scaleStep;
    for (let s = 1; s < L; s++) {
      const [pw, ph] = this.levels[s - 1];
      const [lw, lh] = this.levels[s];
      resizeLinearInto(this.#i0[s - 1], pw, ph, this.#i0[s], lw, lh, inv, inv);
      resizeLinearInto(this.#i1[s - 1], pw, ph, this.#i1[s], lw, lh, inv, inv);
    }
    if (initialFlow !== undefined) {
      checkFlow(initialFlow, w, h);
      this.#u1[0].set(initialFlow.u);
      this.#u2[0].set(initialFlow.v);
      // Coarser initial flows: resized and scaled by scaleStep at every level, as OpenCV does.
      for (let s = 1; s < L; s++) {
        const [pw, ph] = this.levels[s - 1];
        const [lw, lh] = this.levels[s];
        for (const u of [this.#u1, this.#u2]) {
          resizeLinearInto(u[s - 1], pw, ph, u[s], lw, lh, inv, inv);
          scaleInPlace(u[s], p.scaleStep);
        }
      }
    } else {
      this.#u1[L - 1].fill(0);
      this.#u2[L - 1].fill(0);
    }
    if (useGamma) this.#u3[L - 1].fill(0);

    for (let s = L - 1; s >= 0; s--) {
      const [lw, lh] = this.levels[s];
      this.#solveLevel(s, lw, lh);
      if (s === 0) break;
      // Upsample to the next finer level; the displacement grows by 1/scaleStep (u3 is an intensity: unscaled).
      const [fw, fh] = this.levels[s - 1];
      for (const u of useGamma ? [this.#u1, this.#u2, this.#u3] : [this.#u1, this.#u2]) {
        resizeLinearInto(u[s], lw, lh, u[s - 1], fw, fh, lw / fw, lh / fh);
      }
      scaleInPlace(this.#u1[s - 1], inv);
      scaleInPlace(this.#u2[s - 1], inv);
    }
    return { width: w, height: h, u: this.#u1[0].slice(), v: this.#u2[0].slice() };
  }

  /** All warps of one pyramid level, updating `u1/u2(/u3)[s]` in place. */
  #solveLevel(s: number, w: number, h: number): void {
    const p = this.params;
    const n = w * h;
    const I0 = this.#i0[s];
    const I1 = this.#i1[s];
    const u1 = this.#u1[s];
    const u2 = this.#u2[s];
    const useGamma = p.gamma !== 0;
    const u3 = useGamma ? this.#u3[s] : u1;
    const i1x = this.#i1x, i1y = this.#i1y, i1w = this.#i1w, i1wx = this.#i1wx, i1wy = this.#i1wy;
    const grad = this.#grad, rhoC = this.#rhoC;
    centeredGradientInto(I1, w, h, i1x, i1y);
    // Dual variables restart from 0 at every level (as OpenCV).
    for (const q of [this.#p11, this.#p12, this.#p21, this.#p22]) q.fill(0, 0, n);
    if (useGamma) {
      this.#p31.fill(0, 0, n);
      this.#p32.fill(0, 0, n);
    }
    const lt = p.lambda * p.theta;
    const taut = p.tau / p.theta;
    // Stop when Σ|Δu|² <= ε² · (number of pixels).
    const scaledEpsilon = p.epsilon * p.epsilon * n;

    for (let warp = 0; warp < p.warps; warp++) {
      // Linearise I1 around the current flow u0: I1w = I1(x + u0), ∇I1w, |∇I1w|², ρc = I1w − ∇I1w·u0 − I0.
      warpCubic3Into(I1, i1x, i1y, w, h, u1, u2, i1w, i1wx, i1wy);
      for (let i = 0; i < n; i++) {
        const gx = i1wx[i], gy = i1wy[i];
        grad[i] = gx * gx + gy * gy;
        rhoC[i] = i1w[i] - gx * u1[i] - gy * u2[i] - I0[i];
      }
      let error = Infinity;
      for (let outer = 0; error > scaledEpsilon && outer < p.outerIterations; outer++) {
        if (p.medianFiltering > 1) {
          medianInPlace(u1, w, h, p.medianFiltering, this.#tmp);
          medianInPlace(u2, w, h, p.medianFiltering, this.#tmp);
        }
        for (let inner = 0; error > scaledEpsilon && inner < p.innerIterations; inner++) {
          error = useGamma ? this.#iterateGamma(w, h, u1, u2, u3, lt, p.theta, taut, p.gamma) : iterate(
            w,
            h,
            i1wx,
            i1wy,
            grad,
            rhoC,
            u1,
            u2,
            this.#p11,
            this.#p12,
            this.#p21,
            this.#p22,
            lt,
            p.theta,
            taut,
          );
        }
      }
    }
  }

  /** One primal-dual iteration with the illumination term γ·u3 (OpenCV's `gamma`); returns Σ|Δu|². */
  #iterateGamma(
    w: number,
    h: number,
    u1: Float32Array,
    u2: Float32Array,
    u3: Float32Array,
    lt: number,
    theta: number,
    taut: number,
    gamma: number,
  ): number {
    const i1wx = this.#i1wx, i1wy = this.#i1wy, grad = this.#grad, rhoC = this.#rhoC;
    const p11 = this.#p11,
      p12 = this.#p12,
      p21 = this.#p21,
      p22 = this.#p22,
      p31 = this.#p31,
      p32 = this.#p32;
    let err = 0;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = y * w + x;
        const gx = i1wx[i], gy = i1wy[i], g = grad[i];
        const a1 = u1[i], a2 = u2[i], a3 = u3[i];
        const rho = rhoC[i] + gx * a1 + gy * a2 + gamma * a3;
        let d1 = 0, d2 = 0, d3 = 0;
        const ltg = lt * g;
        if (rho < -ltg) {
          d1 = lt * gx;
          d2 = lt * gy;
          d3 = lt * gamma;
        } else if (rho > ltg) {
          d1 = -lt * gx;
          d2 = -lt * gy;
          d3 = -lt * gamma;
        } else if (g > FLT_EPSILON) {
          const fi = -rho / g;
          d1 = fi * gx;
          d2 = fi * gy;
          d3 = fi * gamma;
        }
        let div1 = p11[i] + p12[i], div2 = p21[i] + p22[i], div3 = p31[i] + p32[i];
        if (x > 0) {
          div1 -= p11[i - 1];
          div2 -= p21[i - 1];
          div3 -= p31[i - 1];
        }
        if (y > 0) {
          div1 -= p12[i - w];
          div2 -= p22[i - w];
          div3 -= p32[i - w];
        }
        u1[i] = a1 + d1 + theta * div1;
        u2[i] = a2 + d2 + theta * div2;
        u3[i] = a3 + d3 + theta * div3;
        const e1 = u1[i] - a1, e2 = u2[i] - a2, e3 = u3[i] - a3;
        err += e1 * e1 + e2 * e2 + e3 * e3;
      }
    }
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = y * w + x;
        const right = x < w - 1, down = y < h - 1;
        for (const [u, pa, pb] of [[u1, p11, p12], [u2, p21, p22], [u3, p31, p32]] as const) {
          const c = u[i];
          const gx = right ? u[i + 1] - c : 0;
          const gy = down ? u[i + w] - c : 0;
          const ng = 1 + taut * Math.sqrt(gx * gx + gy * gy);
          pa[i] = (pa[i] + taut * gx) / ng;
          pb[i] = (pb[i] + taut * gy) / ng;
        }
      }
    }
    return err;
  }
}

/**
 * One primal-dual iteration without the illumination term; returns Σ|u_new − u_old|².
 *
 * Primal step (per pixel, needs only the old `p`): thresholding step for `v`, then `u = v + θ·div p`, with the
 * backward-difference divergence whose first row/column use `p` itself (OpenCV's `divergence`).
 * Dual step (needs the new `u` at the right/down neighbours): forward-difference gradient (0 on the last
 * column/row) and the projected update `p = (p + τ/θ·∇u) / (1 + τ/θ·|∇u|)`.
 *
 * Rows are interleaved for cache locality: the primal step of row y + 1 runs before the dual step of row y,
 * which is what both need (the primal step of row y + 1 reads the old `p` of rows y and y + 1; the dual step of
 * row y reads the new `u` of rows y and y + 1), so the result equals two full passes.
 */
function iterate(
  w: number,
  h: number,
  i1wx: Float32Array,
  i1wy: Float32Array,
  grad: Float32Array,
  rhoC: Float32Array,
  u1: Float32Array,
  u2: Float32Array,
  p11: Float32Array,
  p12: Float32Array,
  p21: Float32Array,
  p22: Float32Array,
  lt: number,
  theta: number,
  taut: number,
): number {
  let err = primalRow(0, w, i1wx, i1wy, grad, rhoC, u1, u2, p11, p12, p21, p22, lt, theta);
  for (let y = 0; y < h; y++) {
    if (y + 1 < h) err += primalRow(y + 1, w, i1wx, i1wy, grad, rhoC, u1, u2, p11, p12, p21, p22, lt, theta);
    dualRow(y, w, h, u1, u2, p11, p12, p21, p22, taut);
  }
  return err;
}

/** Primal step on row y; returns the row's Σ|Δu|². */
function primalRow(
  y: number,
  w: number,
  i1wx: Float32Array,
  i1wy: Float32Array,
  grad: Float32Array,
  rhoC: Float32Array,
  u1: Float32Array,
  u2: Float32Array,
  p11: Float32Array,
  p12: Float32Array,
  p21: Float32Array,
  p22: Float32Array,
  lt: number,
  theta: number,
): number {
  let err = 0;
  const r = y * w;
  // Offset of the row above; on the first row the "previous" p is taken as 0 (OpenCV's divergence).
  const up = y > 0 ? w : 0;
  const upMask = y > 0 ? 1 : 0;
  // p11, p21 of the left neighbour (0 left of the first column), carried along the row.
  let left11 = 0, left21 = 0;
  for (let x = 0; x < w; x++) {
    const i = r + x;
    const gx = i1wx[i], gy = i1wy[i], g = grad[i];
    const a1 = u1[i], a2 = u2[i];
    const rho = rhoC[i] + gx * a1 + gy * a2;
    const ltg = lt * g;
    let d1 = 0, d2 = 0;
    if (rho < -ltg) {
      d1 = lt * gx;
      d2 = lt * gy;
    } else if (rho > ltg) {
      d1 = -lt * gx;
      d2 = -lt * gy;
    } else if (g > FLT_EPSILON) {
      const fi = -rho / g;
      d1 = fi * gx;
      d2 = fi * gy;
    }
    const q11 = p11[i], q21 = p21[i];
    const div1 = q11 - left11 + p12[i] - upMask * p12[i - up];
    const div2 = q21 - left21 + p22[i] - upMask * p22[i - up];
    left11 = q11;
    left21 = q21;
    const n1 = Math.fround(a1 + d1 + theta * div1);
    const n2 = Math.fround(a2 + d2 + theta * div2);
    u1[i] = n1;
    u2[i] = n2;
    err += (n1 - a1) * (n1 - a1) + (n2 - a2) * (n2 - a2);
  }
  return err;
}

/** Dual step on row y (needs the new u on rows y and y + 1). */
function dualRow(
  y: number,
  w: number,
  h: number,
  u1: Float32Array,
  u2: Float32Array,
  p11: Float32Array,
  p12: Float32Array,
  p21: Float32Array,
  p22: Float32Array,
  taut: number,
): void {
  const r = y * w;
  // With `down` = 0 (last row) or `right` = 0 (last column) the difference is c − c = 0: OpenCV's zero
  // forward gradient there.
  const down = y < h - 1 ? w : 0;
  const lastCol = w - 1;
  for (let x = 0; x < w; x++) {
    const i = r + x;
    const right = x < lastCol ? 1 : 0;
    const c1 = u1[i], c2 = u2[i];
    const u1x = u1[i + right] - c1, u1y = u1[i + down] - c1;
    const u2x = u2[i + right] - c2, u2y = u2[i + down] - c2;
    const k1 = 1 / (1 + taut * Math.sqrt(u1x * u1x + u1y * u1y));
    const k2 = 1 / (1 + taut * Math.sqrt(u2x * u2x + u2y * u2y));
    p11[i] = (p11[i] + taut * u1x) * k1;
    p12[i] = (p12[i] + taut * u1y) * k1;
    p21[i] = (p21[i] + taut * u2x) * k2;
    p22[i] = (p22[i] + taut * u2y) * k2;
  }
}

function toScaled(src: Uint8Array | Float32Array, dst: Float32Array, floatScale: number): void {
  if (src instanceof Uint8Array || floatScale === 1) {
    dst.set(src);
  } else {
    for (let i = 0; i < src.length; i++) dst[i] = src[i] * floatScale;
  }
}

function scaleInPlace(a: Float32Array, k: number): void {
  for (let i = 0; i < a.length; i++) a[i] *= k;
}

function checkFlow(flow: Flow, w: number, h: number): void {
  if (flow === null || typeof flow !== "object") {
    throw new TypeError(`opticalFlowTVL1: initialFlow must be a Flow {width, height, u, v}, got ${flow}`);
  }
  if (flow.width !== w || flow.height !== h) {
    throw new TypeError(`opticalFlowTVL1: initialFlow is ${flow.width}x${flow.height}, expected ${w}x${h}`);
  }
  for (const k of ["u", "v"] as const) {
    if (!(flow[k] instanceof Float32Array) || flow[k].length !== w * h) {
      throw new TypeError(`opticalFlowTVL1: initialFlow.${k} must be a Float32Array of length ${w * h}`);
    }
  }
}

/**
 * Dense TV-L1 optical flow from `prev` to `next` (OpenCV 4.6 `DualTVL1OpticalFlow` algorithm and defaults),
 * so that `prev(y, x) ≈ next(y + v[y*w+x], x + u[y*w+x])`.
 *
 * @param prev first frame (onset), `GrayImage` with `data` Uint8Array (0..255) or Float32Array (0..255 scale,
 *   see `floatScale`), row-major `[height * width]`.
 * @param next second frame (apex), same size.
 * @param options {@link TVL1Options}; defaults {@link TVL1_DEFAULTS}.
 * @returns `{ width, height, u, v }`, `u`/`v` Float32Array `[height * width]` in pixels.
 * @throws {TypeError} if an image is not a GrayImage, its data length is not `width * height`, or the two sizes
 *   differ. @throws {RangeError} for a side < 2, a non-finite pixel, or a bad option.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { opticalFlowTVL1 } from "./optical_flow.ts";
 * // A smooth texture shifted right by one pixel: the flow is about +1 px in x.
 * const w = 48, h = 48;
 * const tex = (x: number, y: number) => 128 + 50 * Math.sin(x / 4) * Math.cos(y / 5);
 * const prev = { width: w, height: h, data: new Float32Array(w * h).map((_, i) => tex(i % w, (i / w) | 0)) };
 * const next = { width: w, height: h, data: new Float32Array(w * h).map((_, i) => tex(i % w - 1, (i / w) | 0)) };
 * const flow = opticalFlowTVL1(prev, next);
 * const centre = 24 * w + 24;
 * assert.ok(Math.abs(flow.u[centre] - 1) < 0.1 && Math.abs(flow.v[centre]) < 0.1);
 * ```
 */
export function opticalFlowTVL1(prev: GrayImage, next: GrayImage, options: TVL1Options = {}): Flow {
  checkGrayImage(prev, "prev");
  checkGrayImage(next, "next");
  if (prev.width !== next.width || prev.height !== next.height) {
    throw new TypeError(
      `opticalFlowTVL1: prev is ${prev.width}x${prev.height} but next is ${next.width}x${next.height}; ` +
        "the two frames must have the same size",
    );
  }
  const { initialFlow, ...rest } = options;
  return new DualTVL1(prev.width, prev.height, rest).calc(prev, next, initialFlow);
}
