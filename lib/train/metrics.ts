/**
 * Micro-expression recognition metrics on pooled predictions: UF1 (macro F1), UAR (macro recall, i.e.
 * balanced accuracy), accuracy, the confusion matrix, per-class values, and the same per group (per source
 * dataset on the MEGC2019 composite).
 *
 * For each label c (one-vs-rest on the pooled predictions):
 *
 *     F1_c     = 2·TP_c / (2·TP_c + FP_c + FN_c)      (0 when the denominator is 0)
 *     Recall_c = TP_c / (TP_c + FN_c)                 (0 when the class never occurs)
 *     UF1 = mean_c F1_c,   UAR = mean_c Recall_c      (plain means over the FULL label list)
 *
 * These equal scikit-learn's `f1_score` / `recall_score(labels=labels, average="macro", zero_division=0)`
 * (checked against the golden fixtures to 1e-12). Per group, the default uses the same full label list, so a
 * class absent from a group scores 0 there (the convention of the MEGC2019 breakdown with a fixed label set);
 * `perGroupUnion` gives the other common convention (only the classes present in that group's truth or
 * predictions, scikit-learn's `labels=None`). Reports say which one they show.
 *
 * @module
 */

/** Per-class values in `labels` order. */
export interface ClassMetrics {
  /** The label list the values follow. */
  labels: number[];
  /** F1 per label (0 where 2TP + FP + FN = 0). */
  f1: number[];
  /** Recall per label (0 where the label never occurs in the truth). */
  recall: number[];
  /** Precision per label (0 where the label is never predicted). */
  precision: number[];
  /** Number of true samples per label. */
  support: number[];
}

/** Metrics of one set of predictions (the pooled set, or one group's subset). */
export interface BasicMetrics {
  /** Number of samples. */
  n: number;
  /** Unweighted F1: mean over `labels` of the per-class F1. */
  uf1: number;
  /** Unweighted average recall: mean over `labels` of the per-class recall. */
  uar: number;
  /** Fraction of samples with prediction = truth. */
  accuracy: number;
  /** `confusion[i][j]` = samples with true label `labels[i]` predicted as `labels[j]`. */
  confusion: number[][];
  /** Per-class F1, recall, precision and support. */
  perClass: ClassMetrics;
}

/** UF1/UAR of a group under the union-of-present-labels convention (scikit-learn `labels=None`). */
export interface UnionLabelMetrics {
  /** Sorted labels that occur in this group's truth or predictions. */
  labelsUsed: number[];
  /** Mean F1 over `labelsUsed`. */
  uf1: number;
  /** Mean recall over `labelsUsed`. */
  uar: number;
}

/** Result of {@link computeMetrics}. */
export interface Metrics extends BasicMetrics {
  /** Per group, with the full label list (classes absent from a group count as 0). Empty without groups. */
  perGroup: Record<string, BasicMetrics>;
  /** Per group, averaging only over the labels present in that group (reported separately). */
  perGroupUnion: Record<string, UnionLabelMetrics>;
}

/** Options of {@link computeMetrics}. */
export interface MetricsOptions {
  /** The full label list (class indices) the macro means run over, in report order. */
  labels: readonly number[];
  /** One group name per sample (e.g. the source dataset), or omitted. */
  groups?: ArrayLike<string> | null;
}

function mean(values: readonly number[]): number {
  let s = 0;
  for (const v of values) s += v;
  return values.length === 0 ? 0 : s / values.length;
}

function basic(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, idx: number[], labels: readonly number[]) {
  const k = labels.length;
  const pos = new Map<number, number>();
  labels.forEach((l, i) => pos.set(l, i));
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let correct = 0;
  for (const i of idx) {
    const t = pos.get(yTrue[i])!;
    const p = pos.get(yPred[i])!;
    confusion[t][p]++;
    if (yTrue[i] === yPred[i]) correct++;
  }
  const f1: number[] = [];
  const recall: number[] = [];
  const precision: number[] = [];
  const support: number[] = [];
  for (let c = 0; c < k; c++) {
    const tp = confusion[c][c];
    let rowSum = 0; // TP + FN = support
    let colSum = 0; // TP + FP = predicted count
    for (let j = 0; j < k; j++) {
      rowSum += confusion[c][j];
      colSum += confusion[j][c];
    }
    const fn = rowSum - tp;
    const fp = colSum - tp;
    // F1_c = 2TP / (2TP + FP + FN), Recall_c = TP / (TP + FN), Precision_c = TP / (TP + FP); 0/0 -> 0.
    const d = 2 * tp + fp + fn;
    f1.push(d === 0 ? 0 : (2 * tp) / d);
    recall.push(rowSum === 0 ? 0 : tp / rowSum);
    precision.push(colSum === 0 ? 0 : tp / colSum);
    support.push(rowSum);
  }
  const result: BasicMetrics = {
    n: idx.length,
    uf1: mean(f1),
    uar: mean(recall),
    accuracy: correct / idx.length,
    confusion,
    perClass: { labels: [...labels], f1, recall, precision, support },
  };
  return result;
}

/**
 * Computes UF1, UAR, accuracy, the confusion matrix and per-class values of pooled predictions, overall and
 * per group.
 *
 * @param yTrue true class index per sample, length n.
 * @param yPred predicted class index per sample, length n.
 * @param options.labels the full label list; every value of `yTrue` and `yPred` must be in it.
 * @param options.groups optional group name per sample (length n), e.g. `"casme2"`, `"samm"`, `"smic"`.
 * @returns overall metrics, `perGroup` (full label list) and `perGroupUnion` (labels present in the group).
 * @throws {TypeError} when the lengths of `yTrue`, `yPred` and `groups` differ.
 * @throws {RangeError} on an empty input, an empty or duplicated label list, or a value outside `labels`.
 *
 * @example
 * ```ts
 * import { computeMetrics } from "./metrics.ts";
 * import assert from "node:assert/strict";
 * const m = computeMetrics([0, 0, 1, 2], [0, 1, 1, 2], { labels: [0, 1, 2] });
 * assert.equal(m.accuracy, 0.75);
 * assert.deepEqual(m.confusion, [[1, 1, 0], [0, 1, 0], [0, 0, 1]]);
 * ```
 */
export function computeMetrics(
  yTrue: ArrayLike<number>,
  yPred: ArrayLike<number>,
  options: MetricsOptions,
): Metrics {
  const { labels, groups } = options;
  if (yTrue.length !== yPred.length) {
    throw new TypeError(`computeMetrics: yTrue has ${yTrue.length} entries but yPred has ${yPred.length}`);
  }
  if (groups != null && groups.length !== yTrue.length) {
    throw new TypeError(`computeMetrics: groups has ${groups.length} entries, expected ${yTrue.length}`);
  }
  if (yTrue.length === 0) throw new RangeError("computeMetrics: no samples (yTrue is empty)");
  if (labels.length === 0) throw new RangeError("computeMetrics: options.labels is empty");
  const known = new Set(labels);
  if (known.size !== labels.length) {
    throw new RangeError(`computeMetrics: options.labels has duplicates: [${labels.join(", ")}]`);
  }
  for (let i = 0; i < yTrue.length; i++) {
    if (!known.has(yTrue[i])) {
      throw new RangeError(
        `computeMetrics: yTrue[${i}] = ${yTrue[i]} is not in labels [${labels.join(", ")}]`,
      );
    }
    if (!known.has(yPred[i])) {
      throw new RangeError(
        `computeMetrics: yPred[${i}] = ${yPred[i]} is not in labels [${labels.join(", ")}]`,
      );
    }
  }
  const all = Array.from({ length: yTrue.length }, (_, i) => i);
  const overall = basic(yTrue, yPred, all, labels);
  const perGroup: Record<string, BasicMetrics> = {};
  const perGroupUnion: Record<string, UnionLabelMetrics> = {};
  if (groups != null) {
    const members = new Map<string, number[]>();
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      if (!members.has(g)) members.set(g, []);
      members.get(g)!.push(i);
    }
    for (const g of [...members.keys()].sort()) {
      const idx = members.get(g)!;
      perGroup[g] = basic(yTrue, yPred, idx, labels);
      const present = new Set<number>();
      for (const i of idx) {
        present.add(yTrue[i]);
        present.add(yPred[i]);
      }
      const used = [...present].sort((a, b) => a - b);
      const u = basic(yTrue, yPred, idx, used);
      perGroupUnion[g] = { labelsUsed: used, uf1: u.uf1, uar: u.uar };
    }
  }
  return { ...overall, perGroup, perGroupUnion };
}

/**
 * Formats metrics as a compact markdown table (overall row, then one row per group), for summaries and
 * notebook output. Values are printed with 4 decimals.
 *
 * @param m metrics from {@link computeMetrics}.
 * @param title first-column heading (default `"set"`).
 * @returns markdown text ending in a newline.
 */
export function metricsTable(m: Metrics, title = "set"): string {
  const f = (x: number) => x.toFixed(4);
  const rows = [`| ${title} | n | UF1 | UAR | accuracy |`, "| --- | ---: | ---: | ---: | ---: |"];
  rows.push(`| all | ${m.n} | ${f(m.uf1)} | ${f(m.uar)} | ${f(m.accuracy)} |`);
  for (const [g, gm] of Object.entries(m.perGroup)) {
    rows.push(`| ${g} | ${gm.n} | ${f(gm.uf1)} | ${f(gm.uar)} | ${f(gm.accuracy)} |`);
  }
  return rows.join("\n") + "\n";
}
