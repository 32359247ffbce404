/**
 * Farneback dense optical flow through opencv.js (`@techstark/opencv-js`, pinned in deno.json), i.e. OpenCV's own
 * `calcOpticalFlowFarneback` compiled to WebAssembly. HTNet's CAS(ME)^3 path uses it with
 * `(0.5, 3, 15, 3, 5, 1.2, 0)`, which are the defaults here.
 *
 * opencv.js (about 13 MB) is loaded lazily on the first call, so importing this module costs nothing; the
 * loaded module holds no timers, so it does not keep a Deno process alive.
 *
 * @module
 */
import type { Flow, GrayImage } from "./types.ts";
import { checkGrayImage } from "./optical_flow.ts";

/** Parameters of {@link opticalFlowFarneback}; names follow OpenCV's `calcOpticalFlowFarneback` arguments. */
export interface FarnebackOptions {
  /** Image scale between pyramid levels, in (0, 1). @default 0.5 */
  pyrScale?: number;
  /** Number of pyramid levels including the full-size image. @default 3 */
  levels?: number;
  /** Averaging window size (px). @default 15 */
  winsize?: number;
  /** Iterations per pyramid level. @default 3 */
  iterations?: number;
  /** Neighbourhood size of the polynomial expansion (5 or 7). @default 5 */
  polyN?: number;
  /** Gaussian sigma of the polynomial expansion (1.1 for polyN 5, 1.5 for 7 are typical). @default 1.2 */
  polySigma?: number;
  /** 0, or 256 (`OPTFLOW_FARNEBACK_GAUSSIAN`: Gaussian instead of box averaging window). @default 0 */
  flags?: number;
}

/** The MER defaults `(0.5, 3, 15, 3, 5, 1.2, 0)` (HTNet). */
export const FARNEBACK_DEFAULTS: Readonly<Required<FarnebackOptions>> = Object.freeze({
  pyrScale: 0.5,
  levels: 3,
  winsize: 15,
  iterations: 3,
  polyN: 5,
  polySigma: 1.2,
  flags: 0,
});

/** An opencv.js `cv.Mat` (WASM heap memory: call `delete()` when done). */
export interface CvMat {
  /** The pixels as float32 (a view into the WASM heap). */
  readonly data32F: Float32Array;
  /** Frees the matrix. */
  delete(): void;
}

/** The part of the opencv.js API this module uses (the module exposes much more; cast to reach it). */
export interface OpenCv {
  /** Empty matrix constructor. */
  Mat: new () => CvMat;
  /** Matrix of `rows × cols` of `type` holding a copy of `array`. */
  matFromArray(rows: number, cols: number, type: number, array: ArrayBufferView): CvMat;
  /** Type code of 8-bit single-channel matrices. */
  CV_8UC1: number;
  /** Type code of float32 single-channel matrices. */
  CV_32FC1: number;
  /** OpenCV's `calcOpticalFlowFarneback`; writes a `CV_32FC2` `[h, w, (u, v)]` flow into `flow`. */
  calcOpticalFlowFarneback(
    prev: CvMat,
    next: CvMat,
    flow: CvMat,
    pyrScale: number,
    levels: number,
    winsize: number,
    iterations: number,
    polyN: number,
    polySigma: number,
    flags: number,
  ): void;
}

let cvPromise: Promise<OpenCv> | null = null;

/**
 * Loads opencv.js once and resolves to the initialised module (the package's export is either a Promise of the
 * module, or the module itself, ready when `cv.Mat` exists).
 */
export function loadOpenCv(): Promise<OpenCv> {
  if (cvPromise === null) {
    cvPromise = (async () => {
      const mod = await import("@techstark/opencv-js");
      const exported = (mod as { default?: unknown }).default ?? mod;
      if (exported instanceof Promise) return await exported as OpenCv;
      const cv = exported as OpenCv & { onRuntimeInitialized?: () => void };
      if (typeof cv.Mat !== "function") {
        await new Promise<void>((resolve) => (cv.onRuntimeInitialized = resolve));
      }
      return cv;
    })();
    cvPromise.catch(() => (cvPromise = null));
  }
  return cvPromise;
}

function resolveOptions(options: FarnebackOptions): Required<FarnebackOptions> {
  const names = Object.keys(FARNEBACK_DEFAULTS);
  for (const k of Object.keys(options)) {
    if (!names.includes(k)) {
      throw new RangeError(`opticalFlowFarneback: unknown option '${k}'; valid options: ${names.join(", ")}`);
    }
  }
  const o = { ...FARNEBACK_DEFAULTS, ...options };
  for (const k of names as (keyof FarnebackOptions)[]) {
    if (typeof o[k] !== "number" || !Number.isFinite(o[k])) {
      throw new RangeError(`opticalFlowFarneback: option ${k} must be a finite number, got ${String(o[k])}`);
    }
  }
  const bad = (msg: string) => new RangeError(`opticalFlowFarneback: ${msg}`);
  if (!(o.pyrScale > 0 && o.pyrScale < 1)) throw bad(`pyrScale must be in (0, 1), got ${o.pyrScale}`);
  for (const k of ["levels", "winsize", "iterations"] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1) throw bad(`${k} must be an integer >= 1, got ${o[k]}`);
  }
  if (o.polyN !== 5 && o.polyN !== 7) throw bad(`polyN must be 5 or 7, got ${o.polyN}`);
  if (!(o.polySigma > 0)) throw bad(`polySigma must be > 0, got ${o.polySigma}`);
  if (o.flags !== 0 && o.flags !== 256) {
    throw bad(`flags must be 0 or 256 (OPTFLOW_FARNEBACK_GAUSSIAN), got ${o.flags}`);
  }
  return o;
}

/**
 * Dense Farneback optical flow from `prev` to `next` with OpenCV's implementation (opencv.js), so that
 * `prev(y, x) ≈ next(y + v, x + u)`. Matches OpenCV 4.6/5.0 Python output to ≈ 5e-7 px on a
 * shifted synthetic pair; on photographs up to ≈ 3e-5 px inside the image and a few hundredths of a pixel at the
 * border (float rounding inside opencv.js).
 *
 * @param prev first frame: Uint8Array data is passed as `CV_8UC1`, Float32Array as `CV_32FC1` (values as given;
 *   use the 0..255 scale).
 * @param next second frame, same size and data type.
 * @param options {@link FarnebackOptions}; defaults {@link FARNEBACK_DEFAULTS}.
 * @returns `{ width, height, u, v }`, Float32Array `[height * width]` in pixels.
 * @throws {TypeError} for a malformed image, different sizes or different data types.
 * @throws {RangeError} for a side < 2, a non-finite pixel or a bad option.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { opticalFlowFarneback } from "./farneback.ts";
 * // A smooth texture moved one pixel to the right: u ≈ 1, v ≈ 0 in the middle.
 * const w = 32, h = 32;
 * const tex = (x: number, y: number) => 128 + 60 * Math.sin(x / 3) * Math.cos(y / 4);
 * const frame = (dx: number) => ({
 *   width: w,
 *   height: h,
 *   data: new Uint8Array(w * h).map((_, i) => tex((i % w) - dx, Math.floor(i / w))),
 * });
 * const flow = await opticalFlowFarneback(frame(0), frame(1));
 * const mid = 16 * w + 16;
 * assert.ok(Math.abs(flow.u[mid] - 1) < 0.05 && Math.abs(flow.v[mid]) < 0.05);
 * ```
 */
export async function opticalFlowFarneback(
  prev: GrayImage,
  next: GrayImage,
  options: FarnebackOptions = {},
): Promise<Flow> {
  const fn = "opticalFlowFarneback";
  checkGrayImage(prev, "prev", fn);
  checkGrayImage(next, "next", fn);
  if (prev.width !== next.width || prev.height !== next.height) {
    throw new TypeError(
      `${fn}: prev is ${prev.width}x${prev.height} but next is ${next.width}x${next.height}; ` +
        "the two frames must have the same size",
    );
  }
  if (prev.data.constructor !== next.data.constructor) {
    throw new TypeError(
      `${fn}: prev.data is a ${prev.data.constructor.name} but next.data is a ${next.data.constructor.name}; ` +
        "use the same type for both",
    );
  }
  const o = resolveOptions(options);
  const cv = await loadOpenCv();
  const { width: w, height: h } = prev;
  const type = prev.data instanceof Uint8Array ? cv.CV_8UC1 : cv.CV_32FC1;
  const mats: CvMat[] = [];
  try {
    const a = cv.matFromArray(h, w, type, prev.data);
    mats.push(a);
    const b = cv.matFromArray(h, w, type, next.data);
    mats.push(b);
    const flow = new cv.Mat();
    mats.push(flow);
    cv.calcOpticalFlowFarneback(
      a,
      b,
      flow,
      o.pyrScale,
      o.levels,
      o.winsize,
      o.iterations,
      o.polyN,
      o.polySigma,
      o.flags,
    );
    // [h, w, 2] interleaved (u, v) -> two planes.
    const uv = flow.data32F;
    const u = new Float32Array(w * h);
    const v = new Float32Array(w * h);
    for (let i = 0; i < w * h; i++) {
      u[i] = uv[2 * i];
      v[i] = uv[2 * i + 1];
    }
    return { width: w, height: h, u, v };
  } finally {
    for (const m of mats) m.delete();
  }
}
