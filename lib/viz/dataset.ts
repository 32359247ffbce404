/**
 * Dataset and results overviews: samples per subject and class, metrics side by side, and a grid of maps.
 *
 * @module
 */
import type { FlowDataset } from "../data/types.ts";
import { roundSig, subplotGrid, toRows } from "./grid.ts";
import type { PlotlyFigure, PlotlyTrace } from "./plotly.ts";

/**
 * Samples per subject, stacked by class (fine or coarse level): the class balance and the LOSO fold sizes
 * at a glance.
 *
 * @example
 * ```ts ignore
 * await showFigure(datasetSummaryFigure(await loadSyntheticDefault()));
 * ```
 */
export function datasetSummaryFigure(
  ds: FlowDataset,
  opts: { level?: "fine" | "coarse"; title?: string } = {},
): PlotlyFigure {
  const level = opts.level ?? "fine";
  const names = level === "fine" ? ds.classes.fine : ds.classes.coarse;
  const y = level === "fine" ? ds.fine : ds.coarse;
  const subjects = [...new Set(ds.subjects)].sort();
  const counts = names.map(() => new Array<number>(subjects.length).fill(0));
  for (let i = 0; i < ds.n; i++) counts[y[i]][subjects.indexOf(ds.subjects[i])]++;
  const totals = names.map((_, c) => counts[c].reduce((a, b) => a + b, 0));
  return {
    data: names.map((name, c) => ({
      type: "bar",
      name: `${name} (${totals[c]})`,
      x: subjects,
      y: counts[c],
      hovertemplate: `%{x}: %{y} ${name}<extra></extra>`,
    })),
    layout: {
      barmode: "stack",
      title: {
        text: opts.title ?? `${ds.name}: ${ds.n} samples, ${subjects.length} subjects (${ds.protocol})`,
      },
      xaxis: { title: { text: "subject (one LOSO fold each)" }, tickangle: -45, type: "category" },
      yaxis: { title: { text: "samples" } },
      height: 380,
      margin: { l: 60, r: 20, t: 60, b: 110 },
    },
  };
}

/** One row of {@link metricsBarFigure}: a named result with its metrics. */
export interface NamedMetrics {
  name: string;
  uf1: number;
  uar: number;
  accuracy?: number;
}

/**
 * Grouped bars of UF1, UAR (and accuracy) for several results, e.g. two scan sets on the same fold. The title
 * should state the protocol the numbers come from.
 *
 * @throws {RangeError} when a metric is outside [0, 1].
 */
export function metricsBarFigure(
  results: readonly NamedMetrics[],
  opts: { title?: string } = {},
): PlotlyFigure {
  const keys = (["uf1", "uar", "accuracy"] as const).filter((k) => results.some((r) => r[k] !== undefined));
  for (const r of results) {
    for (const k of keys) {
      const v = r[k];
      if (v !== undefined && !(v >= 0 && v <= 1)) {
        throw new RangeError(`metricsBarFigure: ${r.name}.${k} must be in [0, 1], got ${v}`);
      }
    }
  }
  return {
    data: results.map((r) => ({
      type: "bar",
      name: r.name,
      x: keys.map((k) => k.toUpperCase()),
      y: keys.map((k) => roundSig(r[k] ?? NaN, 3)),
      text: keys.map((k) => (r[k] === undefined ? "" : r[k]!.toFixed(3))),
      textposition: "outside",
    })),
    layout: {
      barmode: "group",
      title: { text: opts.title ?? "Metrics" },
      yaxis: { range: [0, 1.1], title: { text: "score" } },
      height: 360,
      margin: { l: 60, r: 20, t: 60, b: 40 },
    },
  };
}

/** One panel of {@link mapsFigure}: a row-major `height × width` map. */
export interface MapPanel {
  title: string;
  values: ArrayLike<number>;
  width: number;
  height: number;
}

/**
 * A grid of heat maps on image axes (y down), sharing one colour range unless `sharedScale: false`.
 *
 * @throws {TypeError} when a panel's values do not match its size.
 */
export function mapsFigure(
  panels: readonly MapPanel[],
  opts: { title?: string; cols?: number; colorscale?: string; sharedScale?: boolean; height?: number } = {},
): PlotlyFigure {
  panels.forEach((p, i) => {
    if (p.values.length !== p.width * p.height) {
      throw new TypeError(
        `mapsFigure: panel ${i} ("${p.title}") has ${p.values.length} values, expected ${p.width}x${p.height}`,
      );
    }
  });
  const grid = subplotGrid(panels.length, {
    cols: opts.cols ?? Math.min(panels.length, 4),
    titles: panels.map((p) => p.title),
    image: true,
    rightMargin: 0.05,
  });
  let lo = Infinity;
  let hi = -Infinity;
  for (const p of panels) {
    for (let i = 0; i < p.values.length; i++) {
      const v = p.values[i];
      if (Number.isFinite(v)) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
  }
  const shared = (opts.sharedScale ?? true) && Number.isFinite(lo);
  const data: PlotlyTrace[] = panels.map((p, i) => ({
    type: "heatmap",
    z: toRows(p.values, p.width, p.height),
    colorscale: opts.colorscale ?? "Viridis",
    ...(shared ? { zmin: roundSig(lo), zmax: roundSig(hi) } : {}),
    showscale: shared ? i === panels.length - 1 : false,
    colorbar: { thickness: 10 },
    xaxis: grid.cells[i].x,
    yaxis: grid.cells[i].y,
    hovertemplate: "row %{y}, col %{x}: %{z}<extra>" + p.title + "</extra>",
  }));
  return {
    data,
    layout: {
      ...grid.layout,
      title: { text: opts.title ?? "" },
      height: opts.height ?? 260 * grid.rows + 70,
      margin: { l: 10, r: 10, t: 80, b: 10 },
    },
  };
}
