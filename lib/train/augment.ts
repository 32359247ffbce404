/**
 * Training augmentations that keep an optical-flow input a valid flow field.
 *
 * Input layout: `[b, h, w, 3]` channels-last, channel 0 = u (+x, right), 1 = v (+y, down), 2 = optical strain
 * (see `lib/data/types.ts`). A geometric transform of a flow image must transform the vectors as well as the
 * pixels, so each augmentation here says what it does to u, v and strain:
 *
 * | Augmentation | Pixels | u | v | strain | Why it is valid |
 * | --- | --- | --- | --- | --- | --- |
 * | `hflip` (default p = 0.5) | mirror columns x → w−1−x | negated | unchanged | unchanged | a mirrored face moving right moves left; strain √(u_x² + v_y² + ½(u_y + v_x)²) is invariant (u_x, v_y keep their sign, u_y and v_x both flip) |
 * | `translate` (default 2 px) | integer shift by (dx, dy), edge pixels replicated | unchanged | unchanged | unchanged | a translation moves the field, not the vectors; it mimics small face-alignment errors |
 * | `magnitudeScale` (signed input only) | none | × s | × s | × s | a stronger/weaker expression of the same motion; strain is linear in the flow |
 *
 * Not offered: rotations (rotating the field would also need the (u, v) vectors rotated, and min-max
 * normalised channels cannot be rotated without their per-sample ranges), vertical flips (faces are not
 * up-down symmetric), colour/intensity jitter on u or v independently (it changes the direction of motion).
 *
 * **Normalised inputs.** `flowToInput` min-max normalises each channel of each sample to [0, 1]:
 * u_n = (u − min u)/(max u − min u). Negating u then maps the range [min, max] to [−max, −min], so the
 * normalised flipped value is (−u + max)/(max − min) = 1 − u_n: with `uEncoding: "minmax01"` (the default) the
 * flip computes 1 − u_n, which is exact for per-sample min-max. `magnitudeScale` is a no-op after per-sample
 * min-max normalisation (the scale cancels), so it requires `uEncoding: "signed"`.
 *
 * @module
 */
import type { Rng } from "./random.ts";

/** Which augmentations to apply, with their parameters. */
export interface AugmentOptions {
  /** Probability of a horizontal flip per sample. @default 0.5 */
  hflip?: number;
  /**
   * Largest integer shift in pixels along each axis (uniform in [−t, t]); 0 = off. @default 2 (adopted by a
   * rule fixed in advance on the development draw, BENCHMARKS.md "Training and LOSO → Ninth session")
   */
  translate?: number;
  /** Range [lo, hi] of a uniform magnitude scale applied to u, v and strain; only with `signed`. */
  magnitudeScale?: [number, number] | null;
  /**
   * How u is stored: `minmax01` (per-sample min-max to [0, 1], flip gives 1 − u) or `signed` (raw pixels,
   * flip gives −u). @default "minmax01"
   */
  uEncoding?: "minmax01" | "signed";
}

/** The defaults, as a fresh object: flip with p = 0.5, shifts of up to 2 px, no magnitude scale, min-max u. */
export function defaultAugment(): Required<AugmentOptions> {
  return { hflip: 0.5, translate: 2, magnitudeScale: null, uEncoding: "minmax01" };
}

/**
 * Validates and fills augmentation options.
 *
 * @throws {RangeError} on a probability outside [0, 1], a negative or fractional shift, a bad scale range,
 *   or `magnitudeScale` with min-max input.
 */
export function resolveAugment(options: AugmentOptions = {}): Required<AugmentOptions> {
  const o = { ...defaultAugment(), ...options };
  if (!(o.hflip >= 0 && o.hflip <= 1)) {
    throw new RangeError(`augment.hflip = ${o.hflip}, expected a probability in [0, 1]`);
  }
  if (!(Number.isInteger(o.translate) && o.translate >= 0)) {
    throw new RangeError(`augment.translate = ${o.translate}, expected an integer number of pixels >= 0`);
  }
  if (o.uEncoding !== "minmax01" && o.uEncoding !== "signed") {
    throw new RangeError(`augment.uEncoding = ${o.uEncoding}, expected "minmax01" or "signed"`);
  }
  if (o.magnitudeScale != null) {
    const [lo, hi] = o.magnitudeScale;
    if (!(lo > 0 && hi >= lo && Number.isFinite(hi))) {
      throw new RangeError(`augment.magnitudeScale = [${lo}, ${hi}], expected 0 < lo <= hi`);
    }
    if (o.uEncoding !== "signed") {
      throw new RangeError(
        'augment.magnitudeScale needs uEncoding "signed": per-sample min-max normalisation cancels a scale',
      );
    }
  }
  return o;
}

/**
 * Horizontal flip of one flow image in place semantics, written to `out`: out(y, x) = in(y, w−1−x) with u
 * negated (`signed`) or replaced by 1 − u (`minmax01`).
 *
 * @param src `[h, w, 3]` view of one sample.
 * @param out `[h, w, 3]` destination (must not alias `src`).
 */
export function hflipFlow(
  src: Float32Array,
  out: Float32Array,
  h: number,
  w: number,
  uEncoding: "minmax01" | "signed",
): void {
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const s = (y * w + (w - 1 - x)) * 3;
      const d = (y * w + x) * 3;
      out[d] = uEncoding === "signed" ? -src[s] : 1 - src[s];
      out[d + 1] = src[s + 1];
      out[d + 2] = src[s + 2];
    }
  }
}

/**
 * Integer translation of one flow image with edge replication: out(y, x) = in(clamp(y − dy), clamp(x − dx)).
 *
 * @param src `[h, w, 3]` one sample.
 * @param out `[h, w, 3]` destination (must not alias `src`).
 */
export function translateFlow(
  src: Float32Array,
  out: Float32Array,
  h: number,
  w: number,
  dx: number,
  dy: number,
) {
  for (let y = 0; y < h; y++) {
    const sy = Math.min(h - 1, Math.max(0, y - dy));
    for (let x = 0; x < w; x++) {
      const sx = Math.min(w - 1, Math.max(0, x - dx));
      const s = (sy * w + sx) * 3;
      const d = (y * w + x) * 3;
      out[d] = src[s];
      out[d + 1] = src[s + 1];
      out[d + 2] = src[s + 2];
    }
  }
}

/**
 * Applies the configured augmentations to a batch, drawing per-sample parameters from `rng` in a fixed order
 * (flip, dx, dy, scale), so a seed reproduces the batch exactly.
 *
 * @param x `[b, h, w, 3]` batch (not modified).
 * @param shape `[b, h, w, 3]`.
 * @param rng the generator.
 * @param options see {@link AugmentOptions}; validated here.
 * @returns a new `[b, h, w, 3]` array.
 * @throws {TypeError} when `x.length` does not match `shape` or the channel count is not 3.
 *
 * @example
 * ```ts
 * import { augmentBatch } from "./augment.ts";
 * import { mulberry32 } from "./random.ts";
 * // one 1x2 sample, signed flow: u = [1, 2]; a certain flip gives u = [-2, -1]
 * const x = Float32Array.from([1, 0, 0, 2, 0, 0]);
 * const y = augmentBatch(x, [1, 1, 2, 3], mulberry32(0), { hflip: 1, uEncoding: "signed" });
 * if (y[0] !== -2 || y[3] !== -1) throw new Error("flip must mirror and negate u");
 * ```
 */
export function augmentBatch(
  x: Float32Array,
  shape: readonly [number, number, number, number],
  rng: Rng,
  options: AugmentOptions = {},
): Float32Array {
  const [b, h, w, c] = shape;
  if (c !== 3) {
    throw new TypeError(`augmentBatch: expected 3 channels (u, v, strain), got shape [${shape.join(", ")}]`);
  }
  if (x.length !== b * h * w * c) {
    throw new TypeError(
      `augmentBatch: x has ${x.length} values, shape [${shape.join(", ")}] needs ${b * h * w * c}`,
    );
  }
  const o = resolveAugment(options);
  const out = new Float32Array(x.length);
  const per = h * w * 3;
  const tmp = new Float32Array(per);
  for (let i = 0; i < b; i++) {
    const src = x.subarray(i * per, (i + 1) * per);
    const dst = out.subarray(i * per, (i + 1) * per);
    const flip = rng.next() < o.hflip;
    const dx = o.translate > 0 ? rng.int(2 * o.translate + 1) - o.translate : 0;
    const dy = o.translate > 0 ? rng.int(2 * o.translate + 1) - o.translate : 0;
    const scale = o.magnitudeScale
      ? o.magnitudeScale[0] + rng.next() * (o.magnitudeScale[1] - o.magnitudeScale[0])
      : 1;
    let cur = src;
    if (flip) {
      hflipFlow(cur, tmp, h, w, o.uEncoding);
      cur = tmp;
    }
    if (dx !== 0 || dy !== 0) {
      translateFlow(cur, dst, h, w, dx, dy);
    } else {
      dst.set(cur);
    }
    if (scale !== 1) { for (let k = 0; k < per; k++) dst[k] *= scale; }
  }
  return out;
}
