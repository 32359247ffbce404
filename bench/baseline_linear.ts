/**
 * Simple baselines on a flow dataset under LOSO (predictions pooled over folds, UF1/UAR/accuracy over the
 * full label set): multinomial logistic regression and nearest class mean on the flattened `[h, w, 3]` flow
 * input. They set the "learnable but not trivial" bar of the synthetic dataset: a spatial model should beat
 * them clearly.
 *
 * Usage: `deno run -A bench/baseline_linear.ts [flow dataset file]` (default: the shipped synthetic set).
 *
 * Fixed hyper-parameters, chosen before looking at any test subject: features standardised with the
 * training folds' mean/std; logistic regression with L2 weight 1e-2 (mean loss), full-batch gradient
 * descent with Adam (lr 0.01, 300 steps) from zero weights. No model selection on the test subject.
 *
 * @module
 */
import { computeMetrics } from "../lib/train/metrics.ts";
import { losoSplits } from "../lib/data/loso.ts";
import { loadFlowDataset } from "../lib/data/cache.ts";
import { loadSyntheticDefault } from "../lib/data/synthetic.ts";
import type { FlowDataset } from "../lib/data/types.ts";

/** A fitted linear classifier: `scores = W x + b`, `W: [classes, features]` row-major. */
export interface LinearModel {
  classes: number;
  features: number;
  W: Float64Array;
  b: Float64Array;
  mean: Float64Array;
  std: Float64Array;
}

function standardiser(x: Float32Array, dim: number, rows: readonly number[]) {
  const mean = new Float64Array(dim);
  const std = new Float64Array(dim);
  for (const r of rows) for (let j = 0; j < dim; j++) mean[j] += x[r * dim + j];
  for (let j = 0; j < dim; j++) mean[j] /= rows.length;
  for (const r of rows) for (let j = 0; j < dim; j++) std[j] += (x[r * dim + j] - mean[j]) ** 2;
  for (let j = 0; j < dim; j++) std[j] = Math.sqrt(std[j] / rows.length) + 1e-6;
  return { mean, std };
}

/**
 * Multinomial logistic regression: minimises `mean_i CE(softmax(W x_i + b), y_i) + λ/2 ‖W‖²` by full-batch
 * Adam on standardised features.
 *
 * @param x `[n, dim]` row-major features; `rows` = training rows; `y` class per row (all n).
 */
export function fitSoftmax(
  x: Float32Array,
  dim: number,
  y: ArrayLike<number>,
  rows: readonly number[],
  classes: number,
  { l2 = 1e-2, lr = 0.01, steps = 300 }: { l2?: number; lr?: number; steps?: number } = {},
): LinearModel {
  const { mean, std } = standardiser(x, dim, rows);
  const m = rows.length;
  const xs = new Float64Array(m * dim);
  rows.forEach((r, i) => {
    for (let j = 0; j < dim; j++) xs[i * dim + j] = (x[r * dim + j] - mean[j]) / std[j];
  });
  const P = classes * dim + classes;
  const theta = new Float64Array(P);
  const g = new Float64Array(P);
  const m1 = new Float64Array(P);
  const m2 = new Float64Array(P);
  const z = new Float64Array(classes);
  for (let t = 1; t <= steps; t++) {
    g.fill(0);
    for (let i = 0; i < m; i++) {
      let zmax = -Infinity;
      for (let c = 0; c < classes; c++) {
        let s = theta[classes * dim + c];
        const off = c * dim;
        for (let j = 0; j < dim; j++) s += theta[off + j] * xs[i * dim + j];
        z[c] = s;
        if (s > zmax) zmax = s;
      }
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += z[c] = Math.exp(z[c] - zmax);
      const yi = y[rows[i]];
      for (let c = 0; c < classes; c++) {
        // dCE/dz_c = p_c - [c == y]
        const d = (z[c] / sum - (c === yi ? 1 : 0)) / m;
        const off = c * dim;
        for (let j = 0; j < dim; j++) g[off + j] += d * xs[i * dim + j];
        g[classes * dim + c] += d;
      }
    }
    for (let k = 0; k < classes * dim; k++) g[k] += l2 * theta[k];
    // Adam (β1 0.9, β2 0.999, ε 1e-8) with bias correction.
    const c1 = 1 - 0.9 ** t;
    const c2 = 1 - 0.999 ** t;
    for (let k = 0; k < P; k++) {
      m1[k] = 0.9 * m1[k] + 0.1 * g[k];
      m2[k] = 0.999 * m2[k] + 0.001 * g[k] * g[k];
      theta[k] -= lr * (m1[k] / c1) / (Math.sqrt(m2[k] / c2) + 1e-8);
    }
  }
  return {
    classes,
    features: dim,
    W: theta.slice(0, classes * dim),
    b: theta.slice(classes * dim),
    mean,
    std,
  };
}

/** Class with the highest score for row `r` of `x`. */
export function predictLinear(model: LinearModel, x: Float32Array, r: number): number {
  const { classes, features: dim, W, b, mean, std } = model;
  let best = 0;
  let bestS = -Infinity;
  for (let c = 0; c < classes; c++) {
    let s = b[c];
    for (let j = 0; j < dim; j++) s += W[c * dim + j] * (x[r * dim + j] - mean[j]) / std[j];
    if (s > bestS) {
      bestS = s;
      best = c;
    }
  }
  return best;
}

/** Nearest class mean (Euclidean, standardised features); classes absent from training are never predicted. */
export function fitNearestMean(
  x: Float32Array,
  dim: number,
  y: ArrayLike<number>,
  rows: readonly number[],
  classes: number,
): LinearModel {
  const { mean, std } = standardiser(x, dim, rows);
  const centroids = new Float64Array(classes * dim);
  const count = new Float64Array(classes);
  for (const r of rows) {
    count[y[r]]++;
    for (let j = 0; j < dim; j++) centroids[y[r] * dim + j] += (x[r * dim + j] - mean[j]) / std[j];
  }
  // argmin ‖x − μ_c‖² = argmax (μ_c·x − ‖μ_c‖²/2): a linear rule.
  const b = new Float64Array(classes);
  for (let c = 0; c < classes; c++) {
    if (count[c] === 0) {
      b[c] = -Infinity;
      continue;
    }
    let nn = 0;
    for (let j = 0; j < dim; j++) {
      centroids[c * dim + j] /= count[c];
      nn += centroids[c * dim + j] ** 2;
    }
    b[c] = -nn / 2;
  }
  return { classes, features: dim, W: centroids, b, mean, std };
}

/** LOSO predictions (pooled) of a baseline on one label level. */
export function losoBaseline(
  ds: FlowDataset,
  level: "fine" | "coarse",
  method: "softmax" | "nearest-mean",
): Int32Array {
  const dim = ds.height * ds.width * 3;
  const y = level === "fine" ? ds.fine : ds.coarse;
  const classes = level === "fine" ? ds.classes.fine.length : ds.classes.coarse.length;
  const pred = new Int32Array(ds.n);
  for (const fold of losoSplits(ds.subjects)) {
    const model = method === "softmax"
      ? fitSoftmax(ds.x, dim, y, fold.train, classes)
      : fitNearestMean(ds.x, dim, y, fold.train, classes);
    for (const r of fold.test) pred[r] = predictLinear(model, ds.x, r);
  }
  return pred;
}

if (import.meta.main) {
  const file = Deno.args[0];
  const ds = file ? await loadFlowDataset(file) : await loadSyntheticDefault();
  const subjects = new Set(ds.subjects).size;
  console.log(
    `# Baselines, LOSO over ${subjects} subjects, ${ds.n} samples, input ${ds.height}x${ds.width}x3`,
  );
  console.log(`# dataset: ${file ?? "data/synthetic (shipped)"}; date: ${new Date().toISOString()}`);
  console.log("| protocol | classes | method | UF1 | UAR | accuracy | seconds |");
  console.log("|---|---|---|---|---|---|---|");
  for (const level of ["coarse", "fine"] as const) {
    const names = level === "fine" ? ds.classes.fine : ds.classes.coarse;
    const y = level === "fine" ? ds.fine : ds.coarse;
    for (const method of ["softmax", "nearest-mean"] as const) {
      const t0 = performance.now();
      const pred = losoBaseline(ds, level, method);
      const s = (performance.now() - t0) / 1000;
      const m = computeMetrics(y, pred, { labels: names.map((_, i) => i) });
      console.log(
        `| ${
          level === "fine" ? "synthetic-5class (fine)" : "synthetic-3class (coarse)"
        } | ${names.length} | ` +
          `${method === "softmax" ? "logistic regression" : "nearest class mean"} | ${m.uf1.toFixed(3)} | ` +
          `${m.uar.toFixed(3)} | ${m.accuracy.toFixed(3)} | ${s.toFixed(1)} |`,
      );
    }
  }
}
