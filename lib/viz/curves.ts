/**
 * Training curves: losses on one panel, metrics on another, redrawn in place while a model trains.
 *
 * @module
 */
import { roundSig, subplotGrid } from "./grid.ts";
import { LiveFigure, type PlotlyFigure, type PlotlyTrace } from "./plotly.ts";

/**
 * One epoch of history: `epoch` plus numeric series (`loss`, `uf1`, ...). Nested objects are flattened, so
 * the trainer's `EpochLog` works as is: `eval: {test: {uf1}}` becomes the series `"test uf1"`.
 */
export type EpochRecord = { epoch: number };

/** Series never drawn by default: bookkeeping, not curves. */
const SKIP = /^(epochs|lr|learningRate|seconds|samplesPerSec|time|ms)$|(Ms|Seconds)$/;

/**
 * Flattens a record to numeric series: nested objects join their keys with a space, and the trainer's
 * `eval` wrapper is dropped from the names (`eval.test.uf1` -> `"test uf1"`); arrays and strings are skipped.
 */
export function flattenRecord(rec: object): Record<string, number> {
  const out: Record<string, number> = {};
  const walk = (o: Record<string, unknown>, prefix: string) => {
    for (const [k, v] of Object.entries(o)) {
      const name = prefix ? `${prefix} ${k}` : k;
      if (typeof v === "number") out[name] = v;
      else if (v && typeof v === "object" && !Array.isArray(v) && !ArrayBuffer.isView(v)) {
        walk(v as Record<string, unknown>, prefix === "" && k === "eval" ? "" : name);
      }
    }
  };
  walk(rec as Record<string, unknown>, "");
  return out;
}

function numericKeys(history: readonly Record<string, number>[]): string[] {
  const keys = new Set<string>();
  for (const h of history) for (const k of Object.keys(h)) if (k !== "epoch") keys.add(k);
  return [...keys];
}

/** Options of {@link trainingCurvesFigure}. */
export interface TrainingCurvesOptions {
  /** Series drawn on the loss panel. @default every series whose name contains "loss" */
  losses?: string[];
  /** Series drawn on the metric panel. @default every other series except `epochs`, `lr`, `seconds`, `samplesPerSec` */
  metrics?: string[];
  /** Figure title. @default "Training curves" */
  title?: string;
  /** Fix the x axis to `0..epochs` so a live figure does not rescale every epoch. */
  epochs?: number;
}

/**
 * Line plots of a training history: losses (left) and metrics such as UF1/UAR/accuracy (right, 0..1).
 *
 * @throws {TypeError} when a record has no numeric `epoch`.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { trainingCurvesFigure } from "./curves.ts";
 * const fig = trainingCurvesFigure([{ epoch: 1, loss: 1.1, uf1: 0.3 }, { epoch: 2, loss: 0.9, uf1: 0.4 }]);
 * assert.deepEqual(fig.data.map((t) => t.name), ["loss", "uf1"]);
 * ```
 */
export function trainingCurvesFigure<T extends EpochRecord>(
  history: readonly T[],
  opts: TrainingCurvesOptions = {},
): PlotlyFigure {
  const flat = history.map((h, i) => {
    if (typeof h?.epoch !== "number") {
      throw new TypeError(`trainingCurvesFigure: history[${i}].epoch must be a number`);
    }
    return { ...flattenRecord(h), epoch: h.epoch } as Record<string, number>;
  });
  const keys = numericKeys(flat);
  const losses = opts.losses ?? keys.filter((k) => /loss/i.test(k));
  const metrics = opts.metrics ?? keys.filter((k) => !losses.includes(k) && !SKIP.test(k));
  const grid = subplotGrid(2, { cols: 2, titles: ["loss", "metrics"], hGap: 0.1 });
  const series = (key: string, cell: number): PlotlyTrace => ({
    type: "scatter",
    mode: "lines+markers",
    name: key,
    x: flat.filter((h) => typeof h[key] === "number").map((h) => h.epoch),
    y: flat.filter((h) => typeof h[key] === "number").map((h) => roundSig(h[key], 5)),
    xaxis: grid.cells[cell].x,
    yaxis: grid.cells[cell].y,
    ...(/^(val|test)/i.test(key) ? { line: { dash: "dash" } } : {}),
  });
  const xRange = opts.epochs ? { range: [0, opts.epochs + 0.5] } : {};
  return {
    data: [...losses.map((k) => series(k, 0)), ...metrics.map((k) => series(k, 1))],
    layout: {
      ...grid.layout,
      xaxis: { ...(grid.layout.xaxis as object), title: { text: "epoch" }, ...xRange },
      xaxis2: { ...(grid.layout.xaxis2 as object), title: { text: "epoch" }, ...xRange },
      yaxis2: { ...(grid.layout.yaxis2 as object), range: [0, 1.02] },
      title: { text: opts.title ?? "Training curves" },
      height: 340,
      margin: { l: 50, r: 20, t: 70, b: 50 },
      legend: { orientation: "h", y: -0.25 },
    },
  };
}

/**
 * Live training curves in a notebook: `push` each epoch's record (e.g. from the trainer's `onEpoch`
 * callback) and the same output is redrawn in place.
 *
 * @example
 * ```ts ignore
 * const curves = new LiveCurves({ title: "fold sub01", epochs: 5 });
 * await trainModel(model, ds, train, { epochs: 5 }, { onEpoch: (r) => curves.push(r) });
 * ```
 */
export class LiveCurves {
  /** Records pushed so far. */
  readonly history: (EpochRecord & Record<string, number>)[] = [];
  readonly #fig: LiveFigure;
  readonly #opts: TrainingCurvesOptions;
  /** @param opts figure options; `displayId` names the output (default random). */
  constructor(opts: TrainingCurvesOptions & { displayId?: string } = {}) {
    this.#fig = new LiveFigure(opts.displayId);
    this.#opts = opts;
  }
  /** Appends a record (a flattened copy) and redraws the figure. */
  async push<T extends EpochRecord>(record: T): Promise<void> {
    this.history.push({ ...flattenRecord(record), epoch: record.epoch });
    await this.#fig.show(this.figure());
  }
  /** The current figure. */
  figure(): PlotlyFigure {
    return trainingCurvesFigure(this.history, this.#opts);
  }
}
