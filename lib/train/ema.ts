/**
 * Exponential moving average (EMA) of model weights, the "averaged model" of Polyak averaging:
 * `θ̄ ← d·θ̄ + (1 − d)·θ` after every optimizer step, with the warm-up `d = min(decay, (1 + t)/(10 + t))`
 * (t = number of updates so far; TensorFlow's `ExponentialMovingAverage` with `num_updates`), so early
 * averages are not dominated by the initialisation. Evaluation and the final model use `θ̄`; checkpoints
 * written during training hold the raw weights (to resume from). The cap `(1 + t)/(10 + t)` stays below
 * `decay` for the first `(10·decay − 1)/(1 − decay)` updates (890 for 0.99): over a LOSO fold of a few
 * hundred steps the decay value above that makes no difference.
 *
 * On the tfjs `cpu` backend the average is kept in host arrays and updated in one loop per variable; on other
 * backends it is a set of tf variables updated with three ops per variable. Both give the same numbers to
 * float32 rounding (`tests/train/ema_test.ts`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

interface CpuReader {
  readSync(dataId: unknown): Float32Array;
}

/** Moving average of a list of variables (see the module comment). */
export class WeightEma {
  private readonly host: Float32Array[] | null;
  private readonly shadow: tf.Variable[] | null;
  private saved: tf.Tensor[] | null = null;
  private t = 0;
  private disposed = false;

  /**
   * @param vars the variables to average (their current values start the average).
   * @param decay the decay `d` in (0, 1), e.g. 0.998. The warm-up caps it at `(1 + t)/(10 + t)` until
   *   `t ≥ (10d − 1)/(1 − d)` updates (890 for 0.99, 4,490 for 0.998): in runs shorter than that every `d`
   *   above the cap gives the same average, a horizon growing with the run (≈ t/10 + 1 steps), not
   *   `1/(1 − d)`.
   * @param opts `hostLoop`: force (true) or forbid (false) the host-array path; default: on the cpu backend.
   * @throws {RangeError} when `decay` is not in (0, 1).
   */
  constructor(
    private readonly vars: tf.Variable[],
    readonly decay: number,
    opts: { hostLoop?: boolean } = {},
  ) {
    if (!(decay > 0 && decay < 1)) {
      throw new RangeError(`WeightEma: decay = ${decay}, expected a value in (0, 1)`);
    }
    const host = opts.hostLoop ?? tf.getBackend() === "cpu";
    if (host && tf.getBackend() !== "cpu") {
      throw new Error("WeightEma: the host-array path needs the cpu backend");
    }
    if (host) {
      const be = tf.backend() as unknown as CpuReader;
      this.host = vars.map((v) => Float32Array.from(be.readSync(v.dataId)));
      this.shadow = null;
    } else {
      this.host = null;
      // (variables survive tidy; the clones they were made from do not)
      this.shadow = tf.tidy(() => vars.map((v) => tf.variable(v.clone(), false)));
    }
  }

  /** Number of updates so far. */
  get updates(): number {
    return this.t;
  }

  /** The decay the next update uses: `min(decay, (1 + t)/(10 + t))`. */
  nextDecay(): number {
    return Math.min(this.decay, (1 + this.t) / (10 + this.t));
  }

  /** Folds the variables' current values into the average (call after each optimizer step). */
  update(): void {
    if (this.disposed) throw new Error("WeightEma.update: disposed");
    if (this.saved) {
      throw new Error("WeightEma.update: the averaged weights are swapped in; call restore() first");
    }
    const d = this.nextDecay();
    this.t++;
    if (this.host) {
      const be = tf.backend() as unknown as CpuReader;
      const a = Math.fround(d);
      const b = Math.fround(1 - d);
      this.vars.forEach((v, i) => {
        const s = this.host![i];
        const x = be.readSync(v.dataId);
        for (let k = 0; k < s.length; k++) s[k] = a * s[k] + b * x[k];
      });
      return;
    }
    tf.tidy(() => {
      this.vars.forEach((v, i) =>
        this.shadow![i].assign(tf.add(tf.mul(this.shadow![i], d), tf.mul(v, 1 - d)))
      );
    });
  }

  /** Puts the averaged weights into the variables (the current ones are kept for {@link restore}). */
  swapIn(): void {
    if (this.disposed) throw new Error("WeightEma.swapIn: disposed");
    if (this.saved) return;
    this.saved = this.vars.map((v) => v.clone());
    this.vars.forEach((v, i) => {
      const value = this.host ? tf.tensor(this.host[i].slice(), v.shape, "float32") : this.shadow![i].clone();
      v.assign(value);
      value.dispose();
    });
  }

  /** Puts back the weights {@link swapIn} replaced. */
  restore(): void {
    if (!this.saved) return;
    this.vars.forEach((v, i) => v.assign(this.saved![i]));
    tf.dispose(this.saved);
    this.saved = null;
  }

  /** Leaves the averaged weights in the variables for good and frees the average. */
  commit(): void {
    this.swapIn();
    if (this.saved) tf.dispose(this.saved);
    this.saved = null;
    this.dispose();
  }

  /** Frees the average (the variables keep whatever they hold now). Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.shadow) tf.dispose(this.shadow);
  }
}
