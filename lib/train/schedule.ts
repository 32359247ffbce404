/**
 * Learning-rate schedules: linear warmup followed by cosine decay (Loshchilov & Hutter, SGDR, ICLR 2017, without
 * restarts), evaluated per optimizer step.
 *
 * @module
 */

/** Options of {@link warmupCosine}. */
export interface WarmupCosineOptions {
  /** Peak learning rate η_max, reached at the end of warmup. */
  baseLr: number;
  /** Total number of optimizer steps T (epochs × batches per epoch). */
  totalSteps: number;
  /** Warmup steps W (linear ramp). @default 0 */
  warmupSteps?: number;
  /** Floor η_min at the end of the cosine. @default 0 */
  minLr?: number;
}

/**
 * Returns step ↦ learning rate (step is 0-based, the index of the update about to be applied):
 *
 *     step < W:  η = η_max · (step + 1) / W
 *     else:      p = (step − W) / max(1, T − W),  η = η_min + ½(η_max − η_min)(1 + cos(π·min(p, 1)))
 *
 * so the first update already uses a non-zero rate, and the cosine reaches η_min at step T, one past the last
 * update: the last one (step T − 1) is just above η_min when T − W is large (the peak rate itself for
 * T − W = 1, about half of it for T − W = 2).
 *
 * @throws {RangeError} on a negative or non-finite rate, `totalSteps < 1`, `warmupSteps > totalSteps`, or
 *   `minLr > baseLr`.
 *
 * @example
 * ```ts
 * import { warmupCosine } from "./schedule.ts";
 * const lr = warmupCosine({ baseLr: 1e-3, totalSteps: 100, warmupSteps: 10 });
 * if (lr(9) !== 1e-3) throw new Error("peak at the end of warmup");
 * if (!(lr(99) < 1e-5)) throw new Error("decays to ~0");
 * ```
 */
export function warmupCosine(options: WarmupCosineOptions): (step: number) => number {
  const { baseLr, totalSteps, warmupSteps = 0, minLr = 0 } = options;
  if (!(Number.isFinite(baseLr) && baseLr >= 0)) {
    throw new RangeError(`warmupCosine: baseLr = ${baseLr}, expected >= 0`);
  }
  if (!(Number.isFinite(minLr) && minLr >= 0 && minLr <= baseLr)) {
    throw new RangeError(`warmupCosine: minLr = ${minLr}, expected 0 <= minLr <= baseLr (${baseLr})`);
  }
  if (!(Number.isInteger(totalSteps) && totalSteps >= 1)) {
    throw new RangeError(`warmupCosine: totalSteps = ${totalSteps}, expected an integer >= 1`);
  }
  if (!(Number.isInteger(warmupSteps) && warmupSteps >= 0 && warmupSteps <= totalSteps)) {
    throw new RangeError(
      `warmupCosine: warmupSteps = ${warmupSteps}, expected an integer in [0, ${totalSteps}]`,
    );
  }
  return (step: number) => {
    if (step < warmupSteps) return (baseLr * (step + 1)) / warmupSteps;
    const p = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
    return minLr + 0.5 * (baseLr - minLr) * (1 + Math.cos(Math.PI * p));
  };
}
