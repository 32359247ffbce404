/**
 * Face detection, 68 landmarks and the eye-based face crop, offline.
 *
 * Detection uses `@vladmandic/face-api` 1.7.15 (MIT), which ships its weights in the npm package
 * (`node_modules/@vladmandic/face-api/model`): SSD-MobileNetV1 for the box and the 68-point landmark net
 * (iBUG/dlib layout: jaw 0–16, brows 17–26, nose 27–35, eyes 36–47, mouth 48–67; "left" = image-left).
 * It is loaded from `dist/face-api.node-wasm.js` through `createRequire`, and shares the process's tfjs
 * engine: detection switches the tfjs backend to `wasm` (default) for the call and switches back after it.
 * Do not run detection concurrently with model code on another backend.
 *
 * Face crop (project recipe; STSTNet/HTNet crop faces around the eyes but publish no exact numbers): the
 * crop is a square aligned with the eye line, its side `eyeCropSide × iod` (inter-ocular distance between
 * the eye centres), centred horizontally on the eyes' midpoint, which sits at `eyeLine` of the crop height.
 * Defaults (side 2.8 iod, eye line at 0.375) keep the brows, cheeks, mouth and chin, and match the layout
 * of the synthetic dataset and of {@link CANONICAL_LANDMARKS_68}.
 *
 * @module
 */
import { createRequire } from "node:module";
import type { GrayImage, RgbImage } from "./types.ts";
import { ASTRONAUT_LANDMARKS_68, type Point } from "./synthetic_face.ts";

export type { Point } from "./synthetic_face.ts";

/** A detected face: box, detector score and 68 landmarks, in image pixels. */
export interface FaceDetection {
  box: { x: number; y: number; width: number; height: number };
  score: number;
  /** 68 points, iBUG/dlib order. */
  landmarks: Point[];
}

/** Options of {@link detectFaces}. */
export interface DetectOptions {
  /** Minimum detector score. @default 0.5 */
  minConfidence?: number;
  /**
   * tfjs backend to run the detector on: `wasm` (default; about 0.6 s for a 512×512 image on this 2-core VM),
   * `cpu` (pure JS, ~20× slower) or `current` (whatever backend is active).
   */
  backend?: "wasm" | "cpu" | "current";
}

// Minimal typing of the parts of face-api we use.
interface FaceApiPoint {
  x: number;
  y: number;
}
interface FaceApiResult {
  detection: { box: { x: number; y: number; width: number; height: number }; score: number };
  landmarks: { positions: FaceApiPoint[] };
}
interface FaceApi {
  tf: {
    getBackend(): string;
    setBackend(name: string): Promise<boolean>;
    ready(): Promise<void>;
    tensor3d(
      data: Uint8Array | Int32Array,
      shape: [number, number, number],
      dtype: string,
    ): { dispose(): void };
  };
  nets: {
    ssdMobilenetv1: { loadFromDisk(dir: string): Promise<void>; isLoaded: boolean };
    faceLandmark68Net: { loadFromDisk(dir: string): Promise<void>; isLoaded: boolean };
  };
  SsdMobilenetv1Options: new (o: { minConfidence: number; maxResults?: number }) => unknown;
  detectAllFaces(input: unknown, options: unknown): { withFaceLandmarks(): Promise<FaceApiResult[]> };
}

let faceApiPromise: Promise<FaceApi> | undefined;

/**
 * Loads face-api and its two networks once per process (later calls return the same promise).
 * @throws {Error} when the package or its weights cannot be found (run `deno install`).
 */
export function loadFaceModels(): Promise<FaceApi> {
  faceApiPromise ??= (async () => {
    const require = createRequire(import.meta.url);
    const api = require("@vladmandic/face-api/dist/face-api.node-wasm.js") as FaceApi;
    const pkg = require.resolve("@vladmandic/face-api/package.json");
    const dir = pkg.replace(/package\.json$/, "model");
    // a process that never started a backend (the preprocess command) must start one before the weights load
    await api.tf.ready();
    await api.nets.ssdMobilenetv1.loadFromDisk(dir);
    await api.nets.faceLandmark68Net.loadFromDisk(dir);
    return api;
  })();
  faceApiPromise.catch(() => (faceApiPromise = undefined));
  return faceApiPromise;
}

/**
 * Detects faces with their 68 landmarks, largest face first.
 *
 * @param rgb RGB image (`data` = `height × width × 3` bytes).
 * @returns all faces above `minConfidence`, sorted by box area (largest first); empty when none.
 * @throws {TypeError} when `rgb.data` does not hold `width × height × 3` bytes.
 */
export async function detectFaces(rgb: RgbImage, opts: DetectOptions = {}): Promise<FaceDetection[]> {
  const { width, height, data } = rgb;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`detectFaces: width and height must be positive integers, got ${width}x${height}`);
  }
  if (!(data instanceof Uint8Array) || data.length !== width * height * 3) {
    throw new TypeError(
      `detectFaces: rgb.data must be a Uint8Array of width*height*3 = ${
        width * height * 3
      } bytes, got ${data?.length}`,
    );
  }
  const api = await loadFaceModels();
  const tf = api.tf;
  const wanted = opts.backend ?? "wasm";
  let previous: string | undefined;
  try {
    previous = tf.getBackend();
  } catch {
    // no backend started yet in this process (tfjs would have to start an async one first): none to restore
  }
  if (wanted !== "current" && previous !== wanted) {
    await tf.setBackend(wanted);
    await tf.ready();
  }
  try {
    const input = tf.tensor3d(data, [height, width, 3], "int32");
    try {
      const options = new api.SsdMobilenetv1Options({ minConfidence: opts.minConfidence ?? 0.5 });
      const results = await api.detectAllFaces(input, options).withFaceLandmarks();
      return results.map((r) => ({
        box: {
          x: r.detection.box.x,
          y: r.detection.box.y,
          width: r.detection.box.width,
          height: r.detection.box.height,
        },
        score: r.detection.score,
        landmarks: r.landmarks.positions.map((p) => ({ x: p.x, y: p.y })),
      })).sort((a, b) => b.box.width * b.box.height - a.box.width * a.box.height);
    } finally {
      input.dispose();
    }
  } finally {
    if (wanted !== "current" && previous && previous !== wanted) {
      await tf.setBackend(previous);
      await tf.ready();
    }
  }
}

/**
 * Detects the main (largest) face with 68 landmarks, or null when there is none.
 *
 * @example
 * ```ts ignore
 * import { readImage } from "./image_io.ts";
 * const face = await detectFace(await readImage("data/astronaut.png"));
 * console.log(face?.box, face?.landmarks.length); // one box, 68 points
 * ```
 */
export async function detectFace(rgb: RgbImage, opts: DetectOptions = {}): Promise<FaceDetection | null> {
  return (await detectFaces(rgb, opts))[0] ?? null;
}

// ---------------------------------------------------------------------------------------------------------
// Eye-based crop

/** Options of the eye-based crop. */
export interface EyeCropOptions {
  /** Crop side in units of the inter-ocular distance. @default 2.8 */
  eyeCropSide?: number;
  /** Height of the eye line as a fraction of the crop (from the top). @default 0.375 */
  eyeLine?: number;
  /** Rotate so that the eye line is horizontal. @default true */
  rotate?: boolean;
}

/**
 * A crop as a similarity transform: input pixel `(c, r)` of a `size × size` crop samples the image at
 * `origin + c·ex + r·ey`, where `ex`, `ey` are the crop's x and y axes in image pixels per crop pixel.
 */
export interface CropTransform {
  size: number;
  origin: Point;
  ex: Point;
  ey: Point;
}

/** Eye centres (means of points 36–41 and 42–47), image-left first. */
export function eyeCentres(landmarks: readonly Point[]): [Point, Point] {
  if (landmarks.length !== 68) {
    throw new RangeError(`eyeCentres: expected 68 landmarks, got ${landmarks.length}`);
  }
  const mean = (a: number, b: number): Point => {
    let x = 0;
    let y = 0;
    for (let i = a; i < b; i++) {
      x += landmarks[i].x;
      y += landmarks[i].y;
    }
    return { x: x / (b - a), y: y / (b - a) };
  };
  return [mean(36, 42), mean(42, 48)];
}

/**
 * The eye-based crop of a face (see the module doc for the recipe) for a `size × size` input.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { canonicalLandmarks, eyeCrop, toCropCoords } from "./faces.ts";
 * // The canonical layout of a 100-px input is already eye-cropped: it maps onto itself.
 * const pts = canonicalLandmarks(100);
 * const crop = eyeCrop(pts, 100);
 * const back = toCropCoords(pts, crop);
 * assert.ok(Math.abs(back[30].x - pts[30].x) < 1e-6 && Math.abs(back[30].y - pts[30].y) < 1e-6);
 * ```
 */
export function eyeCrop(landmarks: readonly Point[], size: number, opts: EyeCropOptions = {}): CropTransform {
  if (!Number.isInteger(size) || size <= 0) {
    throw new RangeError(`eyeCrop: size must be a positive integer, got ${size}`);
  }
  const side = opts.eyeCropSide ?? 2.8;
  const eyeLine = opts.eyeLine ?? 0.375;
  const [l, r] = eyeCentres(landmarks);
  const iod = Math.hypot(r.x - l.x, r.y - l.y);
  if (!(iod > 0)) throw new RangeError("eyeCrop: the two eye centres coincide");
  const angle = opts.rotate === false ? 0 : Math.atan2(r.y - l.y, r.x - l.x);
  const scale = (side * iod) / size; // image px per crop px
  const ex = { x: Math.cos(angle) * scale, y: Math.sin(angle) * scale };
  const ey = { x: -Math.sin(angle) * scale, y: Math.cos(angle) * scale };
  const mid = { x: (l.x + r.x) / 2, y: (l.y + r.y) / 2 };
  // Crop pixel centre of the eye midpoint: (size/2 - 0.5, eyeLine*size - 0.5) in pixel-index coordinates.
  const cc = size / 2 - 0.5;
  const cr = eyeLine * size - 0.5;
  return { size, origin: { x: mid.x - cc * ex.x - cr * ey.x, y: mid.y - cc * ex.y - cr * ey.y }, ex, ey };
}

/** Maps image points into crop (input) pixel coordinates. */
export function toCropCoords(points: readonly Point[], crop: CropTransform): Point[] {
  const { origin, ex, ey } = crop;
  const det = ex.x * ey.y - ex.y * ey.x;
  return points.map((p) => {
    const dx = p.x - origin.x;
    const dy = p.y - origin.y;
    return { x: (dx * ey.y - dy * ey.x) / det, y: (ex.x * dy - ex.y * dx) / det };
  });
}

/**
 * Samples a grayscale crop (bilinear, replicate border) for a {@link CropTransform}.
 * @returns Float32 `size × size` image.
 */
export function cropFace(img: GrayImage, crop: CropTransform): GrayImage & { data: Float32Array } {
  const { width: w, height: h, data } = img;
  if (data.length !== w * h) {
    throw new TypeError(`cropFace: expected a grayscale image of ${w * h} values, got ${data.length}`);
  }
  const n = crop.size;
  const out = new Float32Array(n * n);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      let x = crop.origin.x + c * crop.ex.x + r * crop.ey.x;
      let y = crop.origin.y + c * crop.ex.y + r * crop.ey.y;
      x = Math.min(w - 1, Math.max(0, x));
      y = Math.min(h - 1, Math.max(0, y));
      const x0 = Math.floor(x);
      const y0 = Math.floor(y);
      const x1 = Math.min(w - 1, x0 + 1);
      const y1 = Math.min(h - 1, y0 + 1);
      const fx = x - x0;
      const fy = y - y0;
      const top = data[y0 * w + x0] * (1 - fx) + data[y0 * w + x1] * fx;
      const bot = data[y1 * w + x0] * (1 - fx) + data[y1 * w + x1] * fx;
      out[r * n + c] = top * (1 - fy) + bot * fy;
    }
  }
  return { width: n, height: n, data: out };
}

/**
 * A canonical 68-point face in the unit square of an eye-aligned crop (default {@link EyeCropOptions}): the
 * astronaut portrait's landmarks mapped through {@link eyeCrop}. Multiply by the input size for pixel
 * coordinates; the region layout for inputs cropped with {@link eyeCrop}'s defaults when no detector is run
 * (the shipped synthetic faces are not aligned: use their own landmarks, `loadSyntheticLandmarks`).
 */
export const CANONICAL_LANDMARKS_68: readonly Point[] = (() => {
  const pts = ASTRONAUT_LANDMARKS_68.map(([x, y]) => ({ x, y }));
  const size = 1000;
  return toCropCoords(pts, eyeCrop(pts, size)).map((p) => ({ x: (p.x + 0.5) / size, y: (p.y + 0.5) / size }));
})();

/**
 * The canonical landmarks in pixel-index coordinates of a `size × size` input (pixel `i` covers
 * `[i, i+1)`, so a unit-square point `u` is at `u·size − 0.5`).
 */
export function canonicalLandmarks(size: number): Point[] {
  return CANONICAL_LANDMARKS_68.map((p) => ({ x: p.x * size - 0.5, y: p.y * size - 0.5 }));
}

/**
 * MTCNN-style 5 points from 68 landmarks: image-left eye centre, image-right eye centre, nose tip (30),
 * mouth corners (48, 54).
 */
export function fivePoints(landmarks: readonly Point[]): [Point, Point, Point, Point, Point] {
  const [l, r] = eyeCentres(landmarks);
  return [l, r, { ...landmarks[30] }, { ...landmarks[48] }, { ...landmarks[54] }];
}
