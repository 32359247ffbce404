/**
 * Figures of scan orders inside a window: the token path of each direction, and which tokens a query
 * token can see after one causal selective scan per direction (its receptive field inside the window).
 *
 * @module
 */
import {
  invertPermutation,
  resolveScanSet,
  type ScanOrder,
  scanOrderLabel,
  scanPermutation,
  type ScanSetSpec,
} from "../ops/scan_orders.ts";
import { subplotGrid } from "./grid.ts";
import type { PlotlyFigure, PlotlyTrace } from "./plotly.ts";

/** Options of {@link scanOrderFigure}. */
export interface ScanOrderFigureOptions {
  /** Window rows and columns (tokens). @default 7 × 7 (MERba's window size) */
  rows?: number;
  cols?: number;
  /** Write the step number on every token. @default true when the window has at most 64 tokens */
  numbers?: boolean;
  /** Figure title. */
  title?: string;
}

function checkGrid(rows: number, cols: number, fn: string): void {
  for (const [k, v] of [["rows", rows], ["cols", cols]] as const) {
    if (!(Number.isInteger(v) && v >= 1)) {
      throw new RangeError(`${fn}: ${k} must be an integer >= 1, got ${v}`);
    }
  }
}

/**
 * Draws the token order of each scan direction on a `rows × cols` window: a path through the token
 * centres coloured from first (dark) to last (bright) step, a green start and a red end marker.
 *
 * @throws {RangeError} for an unknown scan set or a bad grid size.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scanOrderFigure } from "./scan_order.ts";
 * const fig = scanOrderFigure("bilateral3", { rows: 3, cols: 3 });
 * assert.equal(fig.data.filter((t) => t.name === "path").length, 3);
 * ```
 */
export function scanOrderFigure(set: ScanSetSpec, opts: ScanOrderFigureOptions = {}): PlotlyFigure {
  const rows = opts.rows ?? 7;
  const cols = opts.cols ?? 7;
  checkGrid(rows, cols, "scanOrderFigure");
  const orders = resolveScanSet(set);
  const numbers = opts.numbers ?? rows * cols <= 64;
  const grid = subplotGrid(orders.length, {
    cols: Math.min(orders.length, 4),
    titles: orders.map(scanOrderLabel),
    image: true,
  });
  const data: PlotlyTrace[] = [];
  orders.forEach((order, k) => {
    const cell = grid.cells[k];
    const perm = scanPermutation(order, rows, cols);
    const xs = Array.from(perm, (p) => p % cols);
    const ys = Array.from(perm, (p) => Math.floor(p / cols));
    const axes = { xaxis: cell.x, yaxis: cell.y };
    data.push({
      type: "scatter",
      mode: "lines",
      name: "path",
      x: xs,
      y: ys,
      line: { color: "rgba(80,80,80,0.5)", width: 1.5 },
      hoverinfo: "skip",
      showlegend: false,
      ...axes,
    });
    data.push({
      type: "scatter",
      mode: numbers ? "markers+text" : "markers",
      name: "tokens",
      x: xs,
      y: ys,
      text: xs.map((_, t) => String(t)),
      textfont: { size: 9, color: "white" },
      marker: {
        size: numbers ? 18 : 9,
        color: xs.map((_, t) => t),
        colorscale: "Viridis",
        showscale: false,
      },
      hovertemplate: "step %{text}: row %{y}, col %{x}<extra>" + scanOrderLabel(order) + "</extra>",
      showlegend: false,
      ...axes,
    });
    data.push({
      type: "scatter",
      mode: "markers",
      name: "start/end",
      x: [xs[0], xs[xs.length - 1]],
      y: [ys[0], ys[ys.length - 1]],
      marker: {
        size: numbers ? 26 : 14,
        color: "rgba(0,0,0,0)",
        line: { color: ["green", "red"], width: 3 },
      },
      hoverinfo: "skip",
      showlegend: false,
      ...axes,
    });
    // Pad the axes by half a token so the markers are not clipped.
    Object.assign(grid.layout[cell.xKey] as object, { range: [-0.6, cols - 0.4] });
    Object.assign(grid.layout[cell.yKey] as object, { range: [rows - 0.4, -0.6], autorange: false });
  });
  return {
    data,
    layout: {
      ...grid.layout,
      title: { text: opts.title ?? `Scan orders (${rows}×${cols} window): green = first token, red = last` },
      height: 260 * grid.rows + 60,
      margin: { l: 10, r: 10, t: 70, b: 10 },
      showlegend: false,
    },
  };
}

/**
 * What one causal scan per direction lets a query token see: for every token of the window, how many of
 * the orders visit it at or before the query (`reach[s] = #{k : rank_k(s) ≤ rank_k(q)}`, raster order).
 * A token with reach 0 cannot influence the query's output through the scans of one layer (the mixer's short
 * non-causal depthwise convolution before the scan still passes on the next token of each order).
 *
 * @throws {RangeError} when the query is outside the window.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scanReach } from "./scan_order.ts";
 * // raster scan on a 2x2 window: token 3 (bottom right) sees everything, token 0 only itself
 * assert.deepEqual(Array.from(scanReach("raster", 2, 2, [1, 1])), [1, 1, 1, 1]);
 * assert.deepEqual(Array.from(scanReach("raster", 2, 2, [0, 0])), [1, 0, 0, 0]);
 * ```
 */
export function scanReach(
  set: ScanSetSpec | readonly ScanOrder[],
  rows: number,
  cols: number,
  query: [number, number],
): Int32Array {
  checkGrid(rows, cols, "scanReach");
  const [qr, qc] = query;
  if (!(Number.isInteger(qr) && Number.isInteger(qc) && qr >= 0 && qr < rows && qc >= 0 && qc < cols)) {
    throw new RangeError(`scanReach: query must be [row, col] inside ${rows}x${cols}, got [${query}]`);
  }
  const orders = resolveScanSet(set as ScanSetSpec);
  const q = qr * cols + qc;
  const reach = new Int32Array(rows * cols);
  for (const order of orders) {
    const rank = invertPermutation(scanPermutation(order, rows, cols));
    for (let s = 0; s < rows * cols; s++) if (rank[s] <= rank[q]) reach[s]++;
  }
  return reach;
}

/**
 * The receptive field of a query token after one layer of causal scans, per scan set: a heat map of
 * {@link scanReach} for each set (colour = number of directions that carry the token to the query).
 *
 * @throws {RangeError} for an unknown scan set, a bad grid or a query outside it.
 */
export function receptiveFieldFigure(
  sets: ScanSetSpec[],
  opts: { rows?: number; cols?: number; query?: [number, number]; title?: string } = {},
): PlotlyFigure {
  const rows = opts.rows ?? 7;
  const cols = opts.cols ?? 7;
  const query = opts.query ?? [Math.floor(rows / 2), Math.floor(cols / 2)];
  const names = sets.map((
    s,
  ) => (typeof s === "string" ? s : resolveScanSet(s).map(scanOrderLabel).join(" ")));
  const grid = subplotGrid(sets.length, { cols: Math.min(sets.length, 4), titles: names, image: true });
  const data: PlotlyTrace[] = [];
  sets.forEach((set, k) => {
    const reach = scanReach(set, rows, cols, query);
    const nOrders = resolveScanSet(set).length;
    const z: number[][] = [];
    for (let r = 0; r < rows; r++) z.push(Array.from(reach.subarray(r * cols, (r + 1) * cols)));
    const cover = reach.reduce((a, v) => a + (v > 0 ? 1 : 0), 0);
    (grid.layout.annotations as Record<string, unknown>[])[k].text = `${names[k]}<br>sees ${cover}/${
      rows * cols
    } tokens`;
    data.push({
      type: "heatmap",
      z,
      zmin: 0,
      zmax: nOrders,
      colorscale: "Blues",
      showscale: false,
      xaxis: grid.cells[k].x,
      yaxis: grid.cells[k].y,
      hovertemplate: `row %{y}, col %{x}: seen by %{z} of ${nOrders} orders<extra></extra>`,
    });
    data.push({
      type: "scatter",
      mode: "markers",
      x: [query[1]],
      y: [query[0]],
      marker: { symbol: "x", size: 12, color: "red" },
      name: "query",
      hoverinfo: "skip",
      showlegend: false,
      xaxis: grid.cells[k].x,
      yaxis: grid.cells[k].y,
    });
  });
  return {
    data,
    layout: {
      ...grid.layout,
      title: { text: opts.title ?? `Receptive field of token (${query}) after one scan layer (red ×)` },
      height: 280 * grid.rows + 60,
      margin: { l: 10, r: 10, t: 90, b: 10 },
    },
  };
}
