/**
 * Small layout helpers shared by the figure builders: a grid of subplots with titles, image-like axes
 * (y down, square pixels), rounding to keep notebook outputs small, and images as PNG data URLs.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { encodePng } from "../data/image_io.ts";
import type { GrayImage, RgbImage } from "../data/types.ts";
import type { PlotlyTrace } from "./plotly.ts";

/** One subplot cell: the axis names for traces (`x2`, `y2`) and layout keys (`xaxis2`, `yaxis2`). */
export interface GridCell {
  /** Trace axis reference: `"x"`, `"x2"`, ... */
  x: string;
  y: string;
  /** Layout key: `"xaxis"`, `"xaxis2"`, ... */
  xKey: string;
  yKey: string;
}

/** Options of {@link subplotGrid}. */
export interface SubplotGridOptions {
  /** Columns. @default min(n, 4) */
  cols?: number;
  /** Titles shown above each cell. */
  titles?: string[];
  /** Gap between cells, as a fraction of the figure. @default 0.04 horizontal, 0.08 vertical */
  hGap?: number;
  vGap?: number;
  /** Image-like axes: y grows downwards, square pixels, no grid or ticks. @default false */
  image?: boolean;
  /** Fraction of the width kept free on the right (for a colour bar). @default 0 */
  rightMargin?: number;
}

/**
 * Lays out `n` subplots on a grid (row-major, top-left first) and returns the cells and the layout
 * entries (`xaxis`, `yaxis2`, ..., `annotations` for titles) to spread into a figure's layout.
 *
 * @throws {RangeError} when `n < 1` or `cols < 1`.
 */
export function subplotGrid(
  n: number,
  opts: SubplotGridOptions = {},
): { cells: GridCell[]; layout: Record<string, unknown>; rows: number; cols: number } {
  if (!(Number.isInteger(n) && n >= 1)) {
    throw new RangeError(`subplotGrid: n must be an integer >= 1, got ${n}`);
  }
  const cols = opts.cols ?? Math.min(n, 4);
  if (!(Number.isInteger(cols) && cols >= 1)) {
    throw new RangeError(`subplotGrid: cols must be an integer >= 1, got ${cols}`);
  }
  const rows = Math.ceil(n / cols);
  const hGap = opts.hGap ?? 0.04;
  const vGap = opts.vGap ?? (opts.titles ? 0.1 : 0.06);
  const usable = 1 - (opts.rightMargin ?? 0);
  const w = (usable - hGap * (cols - 1)) / cols;
  const h = (1 - vGap * (rows - 1)) / rows;
  const cells: GridCell[] = [];
  const layout: Record<string, unknown> = {};
  const annotations: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const r = Math.floor(i / cols);
    const c = i % cols;
    const suffix = i === 0 ? "" : String(i + 1);
    const cell: GridCell = {
      x: `x${suffix}`,
      y: `y${suffix}`,
      xKey: `xaxis${suffix}`,
      yKey: `yaxis${suffix}`,
    };
    const x0 = c * (w + hGap);
    const y1 = 1 - r * (h + vGap);
    const xa: Record<string, unknown> = { domain: [x0, x0 + w], anchor: cell.y };
    const ya: Record<string, unknown> = { domain: [y1 - h, y1], anchor: cell.x };
    if (opts.image) {
      Object.assign(xa, {
        showgrid: false,
        zeroline: false,
        showticklabels: false,
        ticks: "",
        constrain: "domain",
      });
      Object.assign(ya, {
        showgrid: false,
        zeroline: false,
        showticklabels: false,
        ticks: "",
        autorange: "reversed",
        scaleanchor: cell.x,
        scaleratio: 1,
        constrain: "domain",
      });
    }
    layout[cell.xKey] = xa;
    layout[cell.yKey] = ya;
    if (opts.titles?.[i]) {
      annotations.push({
        text: opts.titles[i],
        showarrow: false,
        xref: "paper",
        yref: "paper",
        x: x0 + w / 2,
        y: y1,
        xanchor: "center",
        yanchor: "bottom",
        font: { size: 12 },
      });
    }
    cells.push(cell);
  }
  if (annotations.length) layout.annotations = annotations;
  return { cells, layout, rows, cols };
}

/** Rounds to `digits` significant digits (keeps notebook outputs small); non-finite values become NaN. */
export function roundSig(x: number, digits = 4): number {
  if (!Number.isFinite(x)) return NaN;
  if (x === 0) return 0;
  return Number(x.toPrecision(digits));
}

/**
 * A row-major flat array as rows (`z[y][x]`) for heat maps, rounded to `digits` significant digits.
 *
 * @throws {RangeError} when `data` is shorter than `width * height`.
 */
export function toRows(data: ArrayLike<number>, width: number, height: number, digits = 4): number[][] {
  if (data.length < width * height) {
    throw new RangeError(`toRows: data has ${data.length} values, expected width*height = ${width * height}`);
  }
  const z: number[][] = [];
  for (let y = 0; y < height; y++) {
    const row = new Array<number>(width);
    for (let x = 0; x < width; x++) row[x] = roundSig(data[y * width + x], digits);
    z.push(row);
  }
  return z;
}

/** Whether an image is RGB (3 bytes per pixel) rather than gray (one value per pixel). */
export function isRgb(img: GrayImage | RgbImage): img is RgbImage {
  return img.data.length === img.width * img.height * 3 && img.width * img.height > 0;
}

/**
 * An image as a `data:image/png;base64,...` URL. Float gray images are min-max scaled to 0..255.
 *
 * @throws {TypeError} when `data` does not hold one (gray) or three (RGB) values per pixel.
 */
export function imageDataUrl(img: GrayImage | RgbImage): string {
  const n = img.width * img.height;
  let out: GrayImage | RgbImage;
  if (isRgb(img)) out = img;
  else if (img.data.length === n) {
    if (img.data instanceof Uint8Array) out = img;
    else {
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of img.data) {
        if (Number.isFinite(v)) {
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
      }
      const s = hi > lo ? 255 / (hi - lo) : 0;
      const bytes = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        bytes[i] = Number.isFinite(img.data[i]) ? Math.round((img.data[i] - lo) * s) : 0;
      }
      out = { width: img.width, height: img.height, data: bytes };
    }
  } else {
    throw new TypeError(
      `imageDataUrl: image ${img.width}x${img.height} has ${img.data.length} values, expected ${n} (gray) or ${
        3 * n
      } (RGB)`,
    );
  }
  return `data:image/png;base64,${Buffer.from(encodePng(out)).toString("base64")}`;
}

/**
 * A plotly `image` trace showing `img` with pixel centres at integer coordinates (x right, y down), so
 * other traces can be drawn on top in pixel units.
 */
export function imageTrace(img: GrayImage | RgbImage, cell?: GridCell, extra: PlotlyTrace = {}): PlotlyTrace {
  return {
    type: "image",
    source: imageDataUrl(img),
    x0: 0,
    y0: 0,
    dx: 1,
    dy: 1,
    hoverinfo: "x+y",
    ...(cell ? { xaxis: cell.x, yaxis: cell.y } : {}),
    ...extra,
  };
}
