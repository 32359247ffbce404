/**
 * Test helpers for tests/train: a small separable FlowDataset built in memory, and a linear softmax
 * classifier that implements the trainer's model interface (fast mechanics tests; the MERba model itself is
 * exercised in loso_test.ts with its tiny configuration).
 */
import * as tf from "@tensorflow/tfjs";
import type { ClassHierarchy, FlowDataset } from "../../lib/data/types.ts";
import type { LosoModel, ModelFactory } from "../../lib/train/loso.ts";
import { mulberry32 } from "../../lib/train/random.ts";
import { AdamW } from "../../lib/train/optimizer.ts";

export const CLASSES: ClassHierarchy = {
  fine: ["a", "b", "c"],
  coarse: ["ab", "c"],
  fineToCoarse: [0, 0, 1],
};

/**
 * `subjects` subjects × `perSubject` samples of `size`×`size`×3; class c shifts channel (c mod 3) of a
 * class-specific quadrant by +`signal`, on top of N(0, 1)-ish noise, so a linear model separates them.
 */
export function toyDataset(
  { subjects = 6, perSubject = 6, size = 6, signal = 1.5, seed = 1 } = {},
): FlowDataset {
  const rng = mulberry32(seed);
  const n = subjects * perSubject;
  const x = new Float32Array(n * size * size * 3);
  const fine = new Int32Array(n);
  const subj: string[] = [];
  const ids: string[] = [];
  const datasets: string[] = [];
  for (let i = 0; i < n; i++) {
    const s = Math.floor(i / perSubject);
    const c = i % 3;
    fine[i] = c;
    subj.push(`${s % 2 === 0 ? "dsA" : "dsB"}/s${s}`);
    datasets.push(s % 2 === 0 ? "dsA" : "dsB");
    ids.push(`s${s}_${i}`);
    for (let y = 0; y < size; y++) {
      for (let xx = 0; xx < size; xx++) {
        for (let ch = 0; ch < 3; ch++) {
          const k = ((i * size + y) * size + xx) * 3 + ch;
          const inQuad = c === 0 ? y < size / 2 : c === 1 ? xx < size / 2 : y >= size / 2;
          x[k] = (rng.next() + rng.next() + rng.next() - 1.5) + (inQuad && ch === c ? signal : 0);
        }
      }
    }
  }
  return {
    name: "toy",
    protocol: "toy-3class",
    n,
    height: size,
    width: size,
    x,
    fine,
    coarse: Int32Array.from(fine, (f) => CLASSES.fineToCoarse[f]),
    classes: CLASSES,
    subjects: subj,
    datasets,
    ids,
  };
}

/** Linear softmax classifier: logits = flatten(x)·W + b (fine only, no coarse head). */
export class LinearModel implements LosoModel {
  readonly w: tf.Variable;
  readonly b: tf.Variable;
  constructor(d: number, k: number, seed: number) {
    const rng = mulberry32(seed);
    const init = Float32Array.from({ length: d * k }, () => (rng.next() - 0.5) * 0.02);
    this.w = tf.variable(tf.tensor2d(init, [d, k]), true);
    this.b = tf.variable(tf.zeros([k]), true);
  }
  apply(x: tf.Tensor4D): { fine: tf.Tensor2D; coarse: tf.Tensor2D | null } {
    const fine = tf.tidy(() =>
      tf.add(tf.matMul(tf.reshape(x, [x.shape[0], -1]), this.w), this.b) as tf.Tensor2D
    );
    return { fine, coarse: null };
  }
  /** The options of every `loss` call (what the trainer passed). */
  readonly lossCalls: { classWeights?: number[]; labelSmoothing?: number }[] = [];
  loss(
    out: { fine: tf.Tensor2D },
    y: tf.Tensor1D,
    opts?: { classWeights?: number[]; labelSmoothing?: number },
  ) {
    this.lossCalls.push({ ...opts });
    return tf.tidy(() => {
      const k = out.fine.shape[1];
      const oh = tf.oneHot(y, k);
      const ce = tf.neg(tf.sum(tf.mul(oh, tf.logSoftmax(out.fine)), 1));
      if (!opts?.classWeights) return tf.mean(ce) as tf.Scalar;
      const wts = tf.gather(tf.tensor1d(opts.classWeights), y);
      return tf.div(tf.sum(tf.mul(ce, wts)), tf.sum(wts)) as tf.Scalar;
    });
  }
  predictLevel(out: { fine: tf.Tensor2D }) {
    return tf.argMax(out.fine, 1) as tf.Tensor1D;
  }
  weightGroups() {
    return { decay: [this.w], noDecay: [this.b] };
  }
  dispose() {
    tf.dispose([this.w, this.b]);
  }
}

/** Factory for runLoso. */
export const linearFactory: ModelFactory = {
  name: "linear-test",
  config: (classes, [h, w]) => ({ kind: "linear", inputs: h * w * 3, classes: classes.fine.length }),
  create: (classes, [h, w], seed) => new LinearModel(h * w * 3, classes.fine.length, seed),
};

/** The samples `idx` of a dataset as a new dataset (copies x and the per-sample arrays). */
export function subsetDataset(
  ds: FlowDataset,
  idx: readonly number[],
  name = `${ds.name}-subset`,
): FlowDataset {
  const per = ds.height * ds.width * 3;
  const x = new Float32Array(idx.length * per);
  idx.forEach((k, i) => x.set(ds.x.subarray(k * per, (k + 1) * per), i * per));
  return {
    ...ds,
    name,
    n: idx.length,
    x,
    fine: Int32Array.from(idx, (i) => ds.fine[i]),
    coarse: Int32Array.from(idx, (i) => ds.coarse[i]),
    subjects: idx.map((i) => ds.subjects[i]),
    datasets: idx.map((i) => ds.datasets[i]),
    ids: idx.map((i) => ds.ids[i]),
  };
}

/**
 * Replays `fixtures/train/adamw_torch.json` (a torch.optim.AdamW trace: two groups, per-step learning rates)
 * through merba's AdamW on the active backend; returns the final weights and the expected ones.
 */
export async function replayAdamWTorchTrace(): Promise<{
  w: Float32Array;
  b: Float32Array;
  expected: { w: number[]; b: number[] };
}> {
  type T = { shape: number[]; data: number[] };
  const g: {
    lrs: number[];
    weight_decay: number[];
    w0: T;
    b0: T;
    grads_w: T[];
    grads_b: T[];
    expected: { w: T; b: T };
  } = JSON.parse(await Deno.readTextFile(new URL("../fixtures/train/adamw_torch.json", import.meta.url)));
  const w = tf.variable(tf.tensor(g.w0.data, g.w0.shape));
  const b = tf.variable(tf.tensor(g.b0.data, g.b0.shape));
  const opt = new AdamW({ decay: [w], noDecay: [b] }, { weightDecay: g.weight_decay[0] });
  g.lrs.forEach((lr, s) => {
    opt.learningRate = lr;
    const grads = {
      [w.name]: tf.tensor(g.grads_w[s].data, g.grads_w[s].shape),
      [b.name]: tf.tensor(g.grads_b[s].data, g.grads_b[s].shape),
    };
    opt.step(grads);
    tf.dispose(Object.values(grads));
  });
  const out = {
    w: (await w.data()) as Float32Array,
    b: (await b.data()) as Float32Array,
    expected: { w: g.expected.w.data, b: g.expected.b.data },
  };
  opt.dispose();
  tf.dispose([w, b]);
  return out;
}
