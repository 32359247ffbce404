/**
 * Rich notebook display for tensors and dataset samples through the Deno kernel's display protocol
 * (`Symbol.for("Jupyter.display")`): wrap a value and make it the last expression of a cell, or pass it to
 * `Deno.jupyter.display`. Values are read asynchronously, so GPU tensors work.
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { FlowDataset, SampleRef } from "../data/types.ts";
import { readGray } from "../data/image_io.ts";
import { opticalFlowTVL1 } from "../data/optical_flow.ts";
import { opticalStrain } from "../data/strain.ts";
import { roundSig, subplotGrid, toRows } from "./grid.ts";
import { type MimeBundle, PLOTLY_MIME, plotlyBundle, type PlotlyTrace } from "./plotly.ts";
import { datasetSampleFigure, sampleFigure, type SampleFigureOptions } from "./sample.ts";

/** The symbol the Deno kernel calls to get an object's MIME bundle. */
export const JUPYTER_DISPLAY: unique symbol = Symbol.for("Jupyter.display") as never;

/** Summary statistics of a tensor's values (NaN-aware). */
export interface TensorStats {
  min: number;
  max: number;
  mean: number;
  std: number;
  /** Count of NaN or ±Infinity values. */
  nonFinite: number;
}

/** Statistics over the finite values of `data`. */
export function tensorStats(data: ArrayLike<number>): TensorStats {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let sum2 = 0;
  let n = 0;
  let nonFinite = 0;
  for (let i = 0; i < data.length; i++) {
    const v = Number(data[i]);
    if (!Number.isFinite(v)) {
      nonFinite++;
      continue;
    }
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
    sum2 += v * v;
    n++;
  }
  const mean = n ? sum / n : NaN;
  return {
    min: n ? min : NaN,
    max: n ? max : NaN,
    mean,
    std: n ? Math.sqrt(Math.max(0, sum2 / n - mean * mean)) : NaN,
    nonFinite,
  };
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : String(roundSig(v, 4));
}

/** Nested-array preview of the first values (`…` where rows or columns are cut). */
function preview(data: ArrayLike<number>, shape: readonly number[], maxItems = 6): string {
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const rec = (dim: number, offset: number): string => {
    if (dim === shape.length) return fmt(Number(data[offset]));
    const n = shape[dim];
    const shown = Math.min(n, maxItems);
    const parts: string[] = [];
    for (let i = 0; i < shown; i++) parts.push(rec(dim + 1, offset + i * strides[dim]));
    if (n > shown) parts.push("…");
    return `[${parts.join(dim === shape.length - 1 ? ", " : ",\n" + " ".repeat(dim + 1))}]`;
  };
  return shape.length === 0 ? fmt(Number(data[0])) : rec(0, 0);
}

/**
 * The MIME bundle of a tensor: a text summary (dtype, shape, backend, min/max/mean/std, first values) and,
 * for 2-D maps (`[h, w]`) and images (`[h, w, c≤4]`, `[1, h, w, c≤4]`), heat maps per channel.
 * Does not dispose `t`.
 */
export async function tensorBundle(t: tf.Tensor, name = "tensor"): Promise<MimeBundle> {
  const data = await t.data();
  const shape = t.shape;
  const stats = tensorStats(data as ArrayLike<number>);
  const head = `${name}: ${t.dtype} [${shape.join(", ")}]` +
    ` min ${fmt(stats.min)} max ${fmt(stats.max)} mean ${fmt(stats.mean)} std ${fmt(stats.std)}` +
    (stats.nonFinite ? ` (${stats.nonFinite} non-finite)` : "");
  const text = `${head}\n${preview(data as ArrayLike<number>, shape)}`;
  let hw: [number, number, number] | undefined; // [h, w, channels]
  if (shape.length === 2 && shape[0] > 1 && shape[1] > 1) hw = [shape[0], shape[1], 1];
  else if (shape.length === 3 && shape[2] <= 4 && shape[0] > 1 && shape[1] > 1) {
    hw = [shape[0], shape[1], shape[2]];
  } else if (shape.length === 4 && shape[0] === 1 && shape[3] <= 4 && shape[1] > 1) {
    hw = [shape[1], shape[2], shape[3]];
  }
  if (!hw || t.dtype === "string" || hw[0] * hw[1] > 512 * 512) return { "text/plain": text };
  const [h, w, c] = hw;
  const grid = subplotGrid(c, {
    cols: c,
    titles: c > 1 ? Array.from({ length: c }, (_, i) => `channel ${i}`) : undefined,
    image: true,
  });
  const traces: PlotlyTrace[] = [];
  for (let ch = 0; ch < c; ch++) {
    const plane = new Float32Array(h * w);
    for (let i = 0; i < h * w; i++) plane[i] = Number(data[i * c + ch]);
    traces.push({
      type: "heatmap",
      z: toRows(plane, w, h),
      colorscale: "Viridis",
      showscale: ch === c - 1,
      xaxis: grid.cells[ch].x,
      yaxis: grid.cells[ch].y,
    });
  }
  const bundle = plotlyBundle({
    data: traces,
    layout: { ...grid.layout, title: { text: head }, height: 320, margin: { l: 10, r: 10, t: 60, b: 10 } },
  });
  return { [PLOTLY_MIME]: bundle[PLOTLY_MIME], "text/plain": text };
}

/** A displayable wrapper: the kernel calls `[Symbol.for("Jupyter.display")]()` to render it. */
export interface Displayable {
  [JUPYTER_DISPLAY](): Promise<MimeBundle>;
}

/**
 * Wraps a tensor so a notebook cell shows its values: heat maps for 2-D maps and images, a text summary
 * otherwise (a bare tfjs Tensor as last expression only prints its object fields). The tensor must still be
 * alive when the cell ends.
 *
 * @example
 * ```ts ignore
 * viewTensor(tf.randomNormal([28, 28]), "noise")   // last expression of a cell
 * ```
 */
export function viewTensor(t: tf.Tensor, name = "tensor"): Displayable {
  return { [JUPYTER_DISPLAY]: () => tensorBundle(t, name) };
}

/**
 * Wraps sample `index` of a dataset so a notebook cell shows its model input channels (u, v, strain) and
 * the flow direction, titled with id, subject and labels.
 *
 * @throws {RangeError} (when displayed) for an index outside the dataset.
 */
export function viewSample(ds: FlowDataset, index: number): Displayable {
  return {
    [JUPYTER_DISPLAY]: () => Promise.resolve(plotlyBundle(datasetSampleFigure(ds, index))),
  };
}

/**
 * Wraps a loaded sample (`SampleRef` from any dataset loader) so a notebook cell shows it: reads the onset
 * and apex frames, computes TV-L1 flow and strain, and draws {@link sampleFigure}. The work happens when the
 * cell displays it (about 0.2 s for 96×96 frames).
 *
 * @throws {DatasetError} (when displayed) if a frame cannot be read.
 * @example
 * ```ts ignore
 * const { samples } = await loadCasme2("/data/CASME2");
 * viewSampleRef(samples[0])   // last expression of a cell
 * ```
 */
export function viewSampleRef(ref: SampleRef, opts: SampleFigureOptions = {}): Displayable {
  return {
    [JUPYTER_DISPLAY]: async () => {
      const onset = await readGray(ref.onsetPath);
      const apex = await readGray(ref.apexPath);
      const flow = opticalFlowTVL1(onset, apex);
      const title = `${ref.id} (${ref.subject}, ${ref.emotion}; frames ${ref.onsetFrame} → ${ref.apexFrame})`;
      return plotlyBundle(sampleFigure({ onset, apex, flow, strain: opticalStrain(flow), title }, opts));
    },
  };
}
