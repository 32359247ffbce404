/**
 * Attention figures: the inter-window attention of a stage drawn over the face (per head, windows labelled
 * by facial region), and the hidden attention of a selective scan inside a window (per scan direction).
 *
 * The figure builders take plain arrays; {@link windowAttentionFromExplain} and
 * {@link scanAttentionFromExplain} read them from a model's `explain()` result (asynchronously, so GPU
 * tensors work).
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { GrayImage, RgbImage } from "../data/types.ts";
import type { ExplainResult } from "../models/merba.ts";
import { invertPermutation, parseScanOrder, scanPermutation } from "../ops/scan_orders.ts";
import { imageTrace, roundSig, subplotGrid, toRows } from "./grid.ts";
import type { PlotlyFigure, PlotlyTrace } from "./plotly.ts";

/** Inter-window attention of one stage for one sample (or a mean over samples). */
export interface WindowAttention {
  stage: number;
  /** `windowToken`: one token per window; `full`: every token of the stage attends to every other. */
  mode: "windowToken" | "full";
  /** Grid of the attending units `[rows, cols]` (windows, or tokens in `full` mode). */
  windowGrid: [number, number];
  /** One `nW × nW` matrix per head, row-major: `heads[h][q * nW + k]` = attention of unit q to unit k. */
  heads: Float32Array[];
  /**
   * Row and column edges of the units as fractions of the image (from `explain`; absent = an even split).
   * Uneven where the stage map is not a multiple of the window size (the last window holds padding).
   */
  cellEdges?: { y: number[]; x: number[] };
}

/** Hidden attention of one block's selective scans inside one window. */
export interface ScanAttention {
  stage: number;
  block: number;
  windowSize: number;
  /** Scan order labels (`row++`, `col+-`, ...). */
  orders: string[];
  /** Per order, `α[t, s]` over the window's `ws²` tokens in raster coordinates (`ws² × ws²`, row-major). */
  perOrder: Float32Array[];
  /** Mean over orders, weighted as the block merges them (raster coordinates). */
  mean: Float32Array;
}

async function meanOverBatch(t: tf.Tensor, sample: number | "mean", what: string): Promise<Float32Array> {
  const b = t.shape[0];
  const per = t.size / b;
  const all = (await t.data()) as Float32Array;
  if (sample === "mean") {
    const out = new Float32Array(per);
    for (let i = 0; i < b; i++) for (let j = 0; j < per; j++) out[j] += all[i * per + j] / b;
    return out;
  }
  if (!(Number.isInteger(sample) && sample >= 0 && sample < b)) {
    throw new RangeError(`${what}: sample must be an integer in 0..${b - 1} or "mean", got ${sample}`);
  }
  return all.slice(sample * per, (sample + 1) * per);
}

/**
 * Reads the inter-window attention of every stage from an `explain()` result, for one sample of the batch
 * or averaged over the batch (`"mean"`, e.g. all samples of a class). Does not dispose the result.
 *
 * @throws {RangeError} for a sample outside the batch.
 */
export async function windowAttentionFromExplain(
  res: ExplainResult,
  sample: number | "mean" = 0,
): Promise<WindowAttention[]> {
  const out: WindowAttention[] = [];
  for (const a of res.attention) {
    const [, h, n] = a.heads.shape;
    const flat = await meanOverBatch(a.heads, sample, "windowAttentionFromExplain");
    out.push({
      stage: a.stage,
      mode: a.mode,
      windowGrid: [...a.windowGrid],
      heads: Array.from({ length: h }, (_, i) => flat.slice(i * n * n, (i + 1) * n * n)),
      ...(a.cellEdges ? { cellEdges: { y: [...a.cellEdges.y], x: [...a.cellEdges.x] } } : {}),
    });
  }
  return out;
}

/**
 * Reads the scan hidden attention of every traced block from an `explain()` result for one window of one
 * sample (`window` in (window-row, window-col) order). Does not dispose the result.
 *
 * @throws {RangeError} for a sample or window outside the result.
 */
export async function scanAttentionFromExplain(
  res: ExplainResult,
  opts: { sample?: number; window?: number } = {},
): Promise<ScanAttention[]> {
  const sample = opts.sample ?? 0;
  const window = opts.window ?? 0;
  const batch = res.fine.shape[0];
  const out: ScanAttention[] = [];
  for (const s of res.scan) {
    const [k, bw, l] = s.perOrder.shape;
    const nW = bw / batch;
    if (!(Number.isInteger(sample) && sample >= 0 && sample < batch)) {
      throw new RangeError(`scanAttentionFromExplain: sample must be in 0..${batch - 1}, got ${sample}`);
    }
    if (!(Number.isInteger(window) && window >= 0 && window < nW)) {
      throw new RangeError(
        `scanAttentionFromExplain: window must be in 0..${nW - 1} for stage ${s.stage}, got ${window}`,
      );
    }
    const all = (await s.perOrder.data()) as Float32Array;
    const row = sample * nW + window;
    const perOrder = Array.from(
      { length: k },
      (_, o) => all.slice((o * bw + row) * l * l, (o * bw + row + 1) * l * l),
    );
    // the over-orders map as the block merges its orders (explain's `maps`; a plain mean for mean/sum merges)
    const maps = (await s.maps.data()) as Float32Array;
    const mean = maps.slice(row * l * l, (row + 1) * l * l);
    out.push({
      stage: s.stage,
      block: s.block,
      windowSize: s.windowSize,
      orders: [...s.orders],
      perOrder,
      mean,
    });
  }
  return out;
}

/** Options of {@link windowAttentionFigure}. */
export interface WindowAttentionFigureOptions {
  /** Image under the maps (the onset frame, or the flow as colour), covering the whole grid. */
  background?: GrayImage | RgbImage;
  /**
   * Which attention to draw per unit: the row of a query window (index, or `[row, col]`), or by default the
   * attention each unit receives on average over all queries (column mean).
   */
  query?: number | [number, number];
  /** A label per unit (e.g. the facial region of each window), written on the map when there are ≤ 16. */
  regionLabels?: string[];
  /** Overlay opacity over the background. @default 0.55 */
  opacity?: number;
  /** Figure title. */
  title?: string;
  /** Also draw the mean-over-heads panel. @default true when there are several heads */
  meanPanel?: boolean;
  /**
   * Panel titles instead of `head i`, one per entry of `heads` (e.g. class names when `heads` holds
   * per-class means).
   */
  panelTitles?: string[];
}

/**
 * Inter-window attention over the face: one panel per head (and their mean), the attention of each
 * window drawn as a translucent heat map over the background image, region labels on the windows, the
 * query window outlined.
 *
 * @throws {TypeError} when a head is not `nW × nW` for the grid, or labels do not match the grid.
 * @throws {RangeError} for a query outside the grid.
 * @example
 * ```ts ignore
 * const res = model.explain(x);
 * const [stage0] = await windowAttentionFromExplain(res, 0);
 * await showFigure(windowAttentionFigure(stage0, { background: onset, regionLabels }));
 * ```
 */
export function windowAttentionFigure(
  att: WindowAttention,
  opts: WindowAttentionFigureOptions = {},
): PlotlyFigure {
  const [rows, cols] = att.windowGrid;
  const n = rows * cols;
  att.heads.forEach((h, i) => {
    if (h.length !== n * n) {
      throw new TypeError(
        `windowAttentionFigure: head ${i} has ${h.length} values, expected ${n}x${n} for a ${rows}x${cols} grid`,
      );
    }
  });
  if (opts.regionLabels && opts.regionLabels.length !== n) {
    throw new TypeError(
      `windowAttentionFigure: regionLabels has ${opts.regionLabels.length} labels, expected ${n}`,
    );
  }
  let q: number | undefined;
  if (opts.query !== undefined) {
    q = Array.isArray(opts.query) ? opts.query[0] * cols + opts.query[1] : opts.query;
    const ok = Array.isArray(opts.query)
      ? opts.query[0] >= 0 && opts.query[0] < rows && opts.query[1] >= 0 && opts.query[1] < cols
      : Number.isInteger(q) && q >= 0 && q < n;
    if (!ok) {
      throw new RangeError(
        `windowAttentionFigure: query must be inside the ${rows}x${cols} grid, got ${opts.query}`,
      );
    }
  }
  // Per head: the attention row of the query, or the mean attention received by each unit.
  const maps = att.heads.map((h) => {
    const m = new Float32Array(n);
    if (q !== undefined) { for (let k = 0; k < n; k++) m[k] = h[q * n + k]; }
    else for (let qq = 0; qq < n; qq++) for (let k = 0; k < n; k++) m[k] += h[qq * n + k] / n;
    return m;
  });
  if (opts.panelTitles && opts.panelTitles.length !== maps.length) {
    throw new TypeError(
      `windowAttentionFigure: panelTitles has ${opts.panelTitles.length} titles, expected ${maps.length}`,
    );
  }
  const panels = maps.map((m, i) => ({ title: opts.panelTitles?.[i] ?? `head ${i}`, map: m }));
  if ((opts.meanPanel ?? maps.length > 1) && maps.length > 1) {
    const mean = new Float32Array(n);
    for (const m of maps) for (let k = 0; k < n; k++) mean[k] += m[k] / maps.length;
    panels.push({ title: "mean over heads", map: mean });
  }
  // Attention is often close to uniform (1 / nW): colour the range actually present, shared by all panels.
  const zmax = Math.max(...panels.map((p) => Math.max(...p.map)));
  const zmin = Math.min(...panels.map((p) => Math.min(...p.map)));
  const [lo, hi] = zmax > zmin ? [roundSig(zmin), roundSig(zmax)] : [zmin - 0.5, zmax + 0.5];
  const bg = opts.background;
  const W = bg?.width ?? cols;
  const H = bg?.height ?? rows;
  // unit edges in image pixel coordinates (pixel centres at integers): even, or explain's real geometry
  const fx = att.cellEdges?.x ?? Array.from({ length: cols + 1 }, (_, c) => c / cols);
  const fy = att.cellEdges?.y ?? Array.from({ length: rows + 1 }, (_, r) => r / rows);
  if (fx.length !== cols + 1 || fy.length !== rows + 1) {
    throw new TypeError(
      `windowAttentionFigure: cellEdges must have ${rows + 1} row and ${cols + 1} column edges, got ` +
        `${fy.length} and ${fx.length}`,
    );
  }
  const ex = fx.map((f) => f * W - 0.5);
  const ey = fy.map((f) => f * H - 0.5);
  const grid = subplotGrid(panels.length, {
    cols: Math.min(panels.length, 5),
    titles: panels.map((p) => p.title),
    image: true,
    rightMargin: 0.05,
  });
  const data: PlotlyTrace[] = [];
  panels.forEach((p, i) => {
    const cell = grid.cells[i];
    const axes = { xaxis: cell.x, yaxis: cell.y };
    if (bg) data.push(imageTrace(bg, cell));
    data.push({
      type: "heatmap",
      z: toRows(p.map, cols, rows),
      x: ex,
      y: ey,
      zmin: lo,
      zmax: hi,
      colorscale: "Hot",
      reversescale: true,
      opacity: bg ? (opts.opacity ?? 0.55) : 1,
      showscale: i === panels.length - 1,
      colorbar: { title: { text: "attention" }, thickness: 10 },
      ...(opts.regionLabels ? { text: toRowsText(opts.regionLabels, cols, rows) } : {}),
      hovertemplate: (opts.regionLabels ? "%{text}: " : "") + "%{z:.3f}<extra>" + p.title + "</extra>",
      ...axes,
    });
    // Window borders.
    const xs: (number | null)[] = [];
    const ys: (number | null)[] = [];
    for (const x of ex) xs.push(x, x, null), ys.push(-0.5, H - 0.5, null);
    for (const y of ey) xs.push(-0.5, W - 0.5, null), ys.push(y, y, null);
    data.push({
      type: "scatter",
      mode: "lines",
      x: xs,
      y: ys,
      line: { color: "rgba(255,255,255,0.7)", width: 1 },
      hoverinfo: "skip",
      ...axes,
    });
    if (q !== undefined) {
      const qr = Math.floor(q / cols);
      const qc = q % cols;
      const [x0, x1, y0, y1] = [ex[qc], ex[qc + 1], ey[qr], ey[qr + 1]];
      data.push({
        type: "scatter",
        mode: "lines",
        name: "query",
        x: [x0, x1, x1, x0, x0],
        y: [y0, y0, y1, y1, y0],
        line: { color: "dodgerblue", width: 3 },
        hoverinfo: "skip",
        ...axes,
      });
    }
    if (opts.regionLabels && n <= 16) {
      data.push({
        type: "scatter",
        mode: "text",
        x: opts.regionLabels.map((_, k) => (ex[k % cols] + ex[(k % cols) + 1]) / 2),
        y: opts.regionLabels.map((_, k) => (ey[Math.floor(k / cols)] + ey[Math.floor(k / cols) + 1]) / 2),
        text: [...opts.regionLabels],
        // "Hot" reversed: high attention is dark, so labels on the upper half of the range are drawn white
        textfont: {
          size: 10,
          color: Array.from(p.map, (v) => (hi > lo && (v - lo) / (hi - lo) > 0.5 ? "white" : "black")),
        },
        hoverinfo: "skip",
        ...axes,
      });
    }
  });
  const what = q !== undefined
    ? `from the outlined ${att.mode === "full" ? "token" : "window"}`
    : "received (mean over queries)";
  return {
    data,
    layout: {
      ...grid.layout,
      title: { text: opts.title ?? `Stage ${att.stage} ${att.mode} attention ${what}` },
      height: 300 * grid.rows + 60,
      margin: { l: 10, r: 10, t: 70, b: 10 },
      showlegend: false,
    },
  };
}

function toRowsText(labels: string[], cols: number, rows: number): string[][] {
  return Array.from({ length: rows }, (_, r) => labels.slice(r * cols, (r + 1) * cols));
}

/**
 * The attention matrix of one stage (`nW × nW`, mean over heads unless `head` is given) with region labels
 * on both axes: who attends (rows) to whom (columns).
 */
export function windowAttentionMatrixFigure(
  att: WindowAttention,
  opts: { head?: number; regionLabels?: string[]; title?: string } = {},
): PlotlyFigure {
  const [rows, cols] = att.windowGrid;
  const n = rows * cols;
  const hs = opts.head === undefined ? att.heads : [att.heads[opts.head]];
  if (hs.some((h) => h === undefined)) {
    throw new RangeError(
      `windowAttentionMatrixFigure: head must be in 0..${att.heads.length - 1}, got ${opts.head}`,
    );
  }
  const m = new Float32Array(n * n);
  for (const h of hs) for (let i = 0; i < n * n; i++) m[i] += h[i] / hs.length;
  const names = opts.regionLabels ??
    Array.from({ length: n }, (_, k) => `(${Math.floor(k / cols)},${k % cols})`);
  const labels = names.map((s, k) => `${k}: ${s}`);
  return {
    data: [{
      type: "heatmap",
      z: toRows(m, n, n),
      x: labels,
      y: labels,
      colorscale: "Hot",
      reversescale: true,
      zmin: 0,
      hovertemplate: "%{y} → %{x}: %{z:.3f}<extra></extra>",
    }],
    layout: {
      title: {
        text: opts.title ??
          `Stage ${att.stage} attention matrix (${
            opts.head === undefined ? "mean over heads" : `head ${opts.head}`
          })`,
      },
      xaxis: { title: { text: "attended (key)" }, type: "category", tickfont: { size: 9 } },
      yaxis: {
        title: { text: "attending (query)" },
        type: "category",
        autorange: "reversed",
        tickfont: { size: 9 },
      },
      height: Math.min(700, 220 + 28 * n),
      width: Math.max(520, Math.min(800, 300 + 28 * n)),
      margin: { l: 120, r: 20, t: 60, b: 120 },
    },
  };
}

/** Options of {@link scanAttentionFigure}. */
export interface ScanAttentionFigureOptions {
  /** Query token `[row, col]` in the window. @default the centre */
  query?: [number, number];
  /** Show `|α|` (default) or the signed `α`. */
  signed?: boolean;
  /** Figure title. */
  title?: string;
}

/**
 * Hidden attention of a block's scans inside one window, per direction: top row, the `α` matrix in the
 * direction's own scan order (lower-triangular: a causal scan only looks back); bottom row, the query
 * token's row `α[q, ·]` mapped back onto the `ws × ws` window, i.e. which tokens feed the query in that
 * direction. The last column is the mean over directions, weighted as the block merges them (what the merged
 * block sees).
 *
 * @throws {RangeError} for a query outside the window or an unknown order label.
 */
export function scanAttentionFigure(att: ScanAttention, opts: ScanAttentionFigureOptions = {}): PlotlyFigure {
  const ws = att.windowSize;
  const l = ws * ws;
  const [qr, qc] = opts.query ?? [Math.floor(ws / 2), Math.floor(ws / 2)];
  if (!(qr >= 0 && qr < ws && qc >= 0 && qc < ws)) {
    throw new RangeError(
      `scanAttentionFigure: query must be [row, col] inside ${ws}x${ws}, got [${opts.query}]`,
    );
  }
  const q = qr * ws + qc;
  const f = opts.signed ? (v: number) => v : Math.abs;
  const cols = att.orders.length + 1;
  const grid = subplotGrid(2 * cols, {
    cols,
    titles: [
      ...att.orders.map((o) => `${o}: α in scan order`),
      "mean: α (raster order)",
      ...att.orders.map((o) => `${o}: sources of the query`),
      "mean over directions",
    ],
    image: true,
    rightMargin: 0.04,
  });
  const data: PlotlyTrace[] = [];
  const heat = (z: number[][], cell: number, showscale: boolean, extra: PlotlyTrace = {}): PlotlyTrace => ({
    type: "heatmap",
    z,
    colorscale: opts.signed ? "RdBu" : "Viridis",
    ...(opts.signed ? { zmid: 0 } : {}),
    showscale,
    colorbar: { thickness: 10, len: 0.4, y: showscale && cell >= cols ? 0.2 : 0.8 },
    xaxis: grid.cells[cell].x,
    yaxis: grid.cells[cell].y,
    ...extra,
  });
  const matrices = [
    ...att.perOrder.map((p, k) => {
      // α_scan[t, s] = α_raster[π[t], π[s]]: the causal (lower-triangular) structure of the order
      const perm = scanPermutation(parseScanOrder(att.orders[k]), ws, ws);
      const m = new Float32Array(l * l);
      for (let t = 0; t < l; t++) for (let s = 0; s < l; s++) m[t * l + s] = f(p[perm[t] * l + perm[s]]);
      return m;
    }),
    att.mean.map(f),
  ];
  matrices.forEach((m, k) =>
    data.push(
      heat(toRows(m, l, l, 3), k, k === cols - 1, { hovertemplate: "t %{y}, s %{x}: %{z}<extra></extra>" }),
    )
  );
  const sources = [...att.perOrder, att.mean].map((p) => {
    const row = new Float32Array(l);
    for (let s = 0; s < l; s++) row[s] = f(p[q * l + s]);
    return row;
  });
  sources.forEach((row, k) => {
    data.push(
      heat(toRows(row, ws, ws, 3), cols + k, k === cols - 1, {
        hovertemplate: "row %{y}, col %{x}: %{z}<extra></extra>",
      }),
    );
    data.push({
      type: "scatter",
      mode: "markers",
      x: [qc],
      y: [qr],
      marker: { symbol: "x", size: 10, color: "red" },
      hoverinfo: "skip",
      xaxis: grid.cells[cols + k].x,
      yaxis: grid.cells[cols + k].y,
    });
  });
  // Order position of the query in each direction, for the reader.
  const ranks = att.orders.map((o) => invertPermutation(scanPermutation(parseScanOrder(o), ws, ws))[q]);
  return {
    data,
    layout: {
      ...grid.layout,
      title: {
        text: opts.title ??
          `Stage ${att.stage} block ${att.block}: hidden attention ${
            opts.signed ? "α" : "|α|"
          } per scan direction; query (${qr},${qc}) is step ${ranks.join("/")}`,
      },
      height: 560,
      margin: { l: 10, r: 10, t: 80, b: 10 },
      showlegend: false,
    },
  };
}

/** Region masks as {@link regionMapFigure} takes them (the shape of `FaceRegions` from `lib/data/regions.ts`). */
export interface RegionMap {
  width: number;
  height: number;
  /** Region names; `labels` values index into it. */
  names: readonly string[];
  /** Per pixel, the index into `names`, or -1 for no region. */
  labels: ArrayLike<number>;
}

const REGION_COLOURS = [
  "#e41a1c",
  "#377eb8",
  "#4daf4a",
  "#984ea3",
  "#ff7f00",
  "#a6761d",
  "#f781bf",
  "#999999",
];

/**
 * The facial regions of an input as a translucent colour map over an optional background, with the window
 * grid drawn on top and each window's label written in it: which region each window (or token) covers.
 *
 * @throws {TypeError} when `labels` does not hold `width * height` values, or `windowLabels` does not match the grid.
 */
export function regionMapFigure(
  regions: RegionMap,
  opts: {
    background?: GrayImage | RgbImage;
    windowGrid?: [number, number];
    /** Edges of the grid's rows and columns as image fractions (`explain`'s `cellEdges`); default even. */
    cellEdges?: { y: number[]; x: number[] };
    windowLabels?: string[];
    title?: string;
  } = {},
): PlotlyFigure {
  const { width: w, height: h, names } = regions;
  if (regions.labels.length !== w * h) {
    throw new TypeError(`regionMapFigure: labels has ${regions.labels.length} values, expected ${w}x${h}`);
  }
  const bg = opts.background;
  const sx = bg ? bg.width / w : 1;
  const sy = bg ? bg.height / h : 1;
  const k = names.length;
  // Discrete colour scale: label c (0..k-1) maps to [c / k, (c + 1) / k]; -1 (no region) is left out (NaN).
  const colorscale: [number, string][] = [];
  names.forEach((_, c) => {
    const col = REGION_COLOURS[c % REGION_COLOURS.length];
    colorscale.push([c / k, col], [(c + 1) / k, col]);
  });
  const z: (number | null)[][] = [];
  for (let y = 0; y < h; y++) {
    const row: (number | null)[] = [];
    for (let x = 0; x < w; x++) {
      const l = regions.labels[y * w + x];
      row.push(l >= 0 ? l + 0.5 : null);
    }
    z.push(row);
  }
  const W = bg?.width ?? w;
  const H = bg?.height ?? h;
  const data: PlotlyTrace[] = [];
  if (bg) data.push(imageTrace(bg));
  data.push({
    type: "heatmap",
    z,
    x0: sx / 2 - 0.5,
    dx: sx,
    y0: sy / 2 - 0.5,
    dy: sy,
    zmin: 0,
    zmax: k,
    colorscale,
    opacity: bg ? 0.45 : 1,
    colorbar: {
      tickvals: names.map((_, c) => c + 0.5),
      ticktext: [...names],
      thickness: 12,
    },
    hovertemplate: "x %{x:.0f}, y %{y:.0f}<extra></extra>",
  });
  if (opts.windowGrid) {
    const [rows, cols] = opts.windowGrid;
    if (opts.windowLabels && opts.windowLabels.length !== rows * cols) {
      throw new TypeError(
        `regionMapFigure: windowLabels has ${opts.windowLabels.length} labels, expected ${rows}x${cols}`,
      );
    }
    const fx = opts.cellEdges?.x ?? Array.from({ length: cols + 1 }, (_, c) => c / cols);
    const fy = opts.cellEdges?.y ?? Array.from({ length: rows + 1 }, (_, r) => r / rows);
    if (fx.length !== cols + 1 || fy.length !== rows + 1) {
      throw new TypeError(
        `regionMapFigure: cellEdges must have ${rows + 1} row and ${
          cols + 1
        } column edges, got ${fy.length} and ` +
          `${fx.length}`,
      );
    }
    const ex = fx.map((f) => f * W - 0.5);
    const ey = fy.map((f) => f * H - 0.5);
    const xs: (number | null)[] = [];
    const ys: (number | null)[] = [];
    for (const x of ex) xs.push(x, x, null), ys.push(-0.5, H - 0.5, null);
    for (const y of ey) xs.push(-0.5, W - 0.5, null), ys.push(y, y, null);
    data.push({
      type: "scatter",
      mode: "lines",
      x: xs,
      y: ys,
      line: { color: "white", width: 2 },
      hoverinfo: "skip",
    });
    if (opts.windowLabels) {
      data.push({
        type: "scatter",
        mode: "text",
        x: opts.windowLabels.map((_, i) => (ex[i % cols] + ex[(i % cols) + 1]) / 2),
        y: opts.windowLabels.map((_, i) => (ey[Math.floor(i / cols)] + ey[Math.floor(i / cols) + 1]) / 2),
        text: [...opts.windowLabels],
        textfont: { size: rows * cols > 16 ? 8 : 13, color: "black" },
        hoverinfo: "skip",
      });
    }
  }
  return {
    data,
    layout: {
      title: { text: opts.title ?? "Facial regions" },
      xaxis: { showgrid: false, zeroline: false, showticklabels: false, ticks: "", constrain: "domain" },
      yaxis: {
        showgrid: false,
        zeroline: false,
        showticklabels: false,
        ticks: "",
        autorange: "reversed",
        scaleanchor: "x",
        constrain: "domain",
      },
      width: 480,
      height: 440,
      margin: { l: 10, r: 10, t: 70, b: 10 },
      showlegend: false,
    },
  };
}
