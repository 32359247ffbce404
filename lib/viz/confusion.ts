/**
 * Confusion-matrix figure (rows = true class, columns = predicted), as `computeMetrics` returns it.
 *
 * @module
 */
import { roundSig } from "./grid.ts";
import type { PlotlyFigure } from "./plotly.ts";

/** Options of {@link confusionFigure}. */
export interface ConfusionFigureOptions {
  /** Colour by row-normalised rate (recall per true class) instead of counts; cells still show counts. @default true */
  normalise?: boolean;
  /** Figure title (say the protocol, e.g. "LOSO, pooled over 8 folds"). */
  title?: string;
  /** Colour scale. @default "Blues" */
  colorscale?: string;
}

/**
 * A heat map of a confusion matrix with the counts (and row rates) written in every cell.
 *
 * @param confusion `confusion[i][j]` = samples of true class i predicted as j (square, `labels.length`).
 * @param labels class names in matrix order.
 * @throws {TypeError} when the matrix is not square with one row per label.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { confusionFigure } from "./confusion.ts";
 * const fig = confusionFigure([[3, 1], [0, 4]], ["neg", "pos"]);
 * assert.deepEqual(fig.data[0].z, [[0.75, 0.25], [0, 1]]);
 * ```
 */
export function confusionFigure(
  confusion: readonly (readonly number[])[],
  labels: readonly string[],
  opts: ConfusionFigureOptions = {},
): PlotlyFigure {
  const k = labels.length;
  if (confusion.length !== k || confusion.some((r) => r.length !== k)) {
    throw new TypeError(
      `confusionFigure: confusion must be ${k}x${k} (one row and column per label), got ${confusion.length}x${
        confusion[0]?.length ?? 0
      }`,
    );
  }
  const normalise = opts.normalise ?? true;
  const rates = confusion.map((row) => {
    const s = row.reduce((a, b) => a + b, 0);
    return row.map((v) => (s > 0 ? roundSig(v / s, 3) : 0));
  });
  const text = confusion.map((row, i) =>
    row.map((v, j) => (normalise ? `${v}<br>${Math.round(100 * rates[i][j])}%` : `${v}`))
  );
  const total = confusion.flat().reduce((a, b) => a + b, 0);
  const correct = confusion.reduce((a, row, i) => a + row[i], 0);
  return {
    data: [{
      type: "heatmap",
      z: normalise ? rates : confusion.map((r) => [...r]),
      x: [...labels],
      y: [...labels],
      text,
      texttemplate: "%{text}",
      colorscale: opts.colorscale ?? "Blues",
      zmin: 0,
      ...(normalise ? { zmax: 1 } : {}),
      colorbar: { title: { text: normalise ? "row rate" : "count" }, thickness: 12 },
      hovertemplate: "true %{y}, predicted %{x}: %{text}<extra></extra>",
    }],
    layout: {
      title: {
        text: opts.title ?? `Confusion matrix (${correct}/${total} correct)`,
      },
      xaxis: { title: { text: "predicted" }, type: "category", side: "bottom" },
      yaxis: { title: { text: "true" }, type: "category", autorange: "reversed" },
      width: Math.max(420, 220 + 75 * k),
      height: Math.max(360, 180 + 60 * k),
      margin: { l: 100, r: 20, t: 80, b: 70 },
    },
  };
}
