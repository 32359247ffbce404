/**
 * Figures of one micro-expression sample: onset and apex frames, the optical flow as a colour wheel and/or
 * arrows, and the optical strain; and the model input channels of a preprocessed {@link FlowDataset} sample.
 *
 * @module
 */
import type { Flow, FlowDataset, GrayImage, RgbImage } from "../data/types.ts";
import { colorWheelImage, flowToRgb } from "./flow_color.ts";
import { type GridCell, imageTrace, roundSig, subplotGrid, toRows } from "./grid.ts";
import type { PlotlyFigure, PlotlyTrace } from "./plotly.ts";

/** Options of {@link flowArrowsTrace}. */
export interface FlowArrowsOptions {
  /** Grid spacing in pixels; each arrow shows the mean flow of its `step`×`step` block. @default ~width/16 */
  step?: number;
  /** Arrow length per pixel of flow. @default the longest block mean is drawn 0.9·step long */
  scale?: number;
  /** Line colour. @default "black" */
  color?: string;
  /** Subplot to draw in. */
  cell?: GridCell;
}

/**
 * Flow as arrows: one scatter trace of line segments (with small arrow heads) in pixel coordinates, to
 * draw over an image trace on image axes (y down).
 *
 * @throws {TypeError} when `u`/`v` do not hold `width * height` values.
 * @throws {RangeError} when `step < 1`.
 */
export function flowArrowsTrace(flow: Flow, opts: FlowArrowsOptions = {}): PlotlyTrace {
  const { width: w, height: h } = flow;
  if (flow.u.length !== w * h || flow.v.length !== w * h) {
    throw new TypeError(`flowArrowsTrace: flow ${w}x${h} needs u and v of length ${w * h}`);
  }
  const step = opts.step ?? Math.max(2, Math.round(Math.max(w, h) / 16));
  if (!(step >= 1)) throw new RangeError(`flowArrowsTrace: step must be >= 1, got ${step}`);
  // Block means: arrows show the local motion, not one noisy pixel.
  const blocks: { x: number; y: number; u: number; v: number }[] = [];
  let maxLen = 0;
  for (let by = 0; by + step <= h; by += step) {
    for (let bx = 0; bx + step <= w; bx += step) {
      let su = 0;
      let sv = 0;
      let cnt = 0;
      for (let y = by; y < by + step; y++) {
        for (let x = bx; x < bx + step; x++) {
          const u = flow.u[y * w + x];
          const v = flow.v[y * w + x];
          if (Number.isFinite(u) && Number.isFinite(v)) {
            su += u;
            sv += v;
            cnt++;
          }
        }
      }
      if (!cnt) continue;
      const b = { x: bx + (step - 1) / 2, y: by + (step - 1) / 2, u: su / cnt, v: sv / cnt };
      maxLen = Math.max(maxLen, Math.hypot(b.u, b.v));
      blocks.push(b);
    }
  }
  const scale = opts.scale ?? (maxLen > 0 ? (0.9 * step) / maxLen : 0);
  const xs: (number | null)[] = [];
  const ys: (number | null)[] = [];
  for (const b of blocks) {
    const dx = b.u * scale;
    const dy = b.v * scale;
    const len = Math.hypot(dx, dy);
    if (len < 0.05 * step) continue;
    const tx = b.x + dx;
    const ty = b.y + dy;
    // Arrow head: two strokes at ±25° back from the tip, 30% of the shaft.
    const head = 0.3 * len;
    const ang = Math.atan2(dy, dx);
    xs.push(roundSig(b.x), roundSig(tx), null);
    ys.push(roundSig(b.y), roundSig(ty), null);
    for (const s of [1, -1]) {
      const a = ang + Math.PI - s * (25 * Math.PI) / 180;
      xs.push(roundSig(tx), roundSig(tx + head * Math.cos(a)), null);
      ys.push(roundSig(ty), roundSig(ty + head * Math.sin(a)), null);
    }
  }
  return {
    type: "scatter",
    mode: "lines",
    x: xs,
    y: ys,
    line: { color: opts.color ?? "black", width: 1 },
    hoverinfo: "skip",
    showlegend: false,
    name: "flow arrows",
    ...(opts.cell ? { xaxis: opts.cell.x, yaxis: opts.cell.y } : {}),
  };
}

/** What {@link sampleFigure} shows; every part is optional, at least one is required. */
export interface SampleFigureInput {
  /** Onset frame (gray or RGB). */
  onset?: GrayImage | RgbImage;
  /** Apex frame (gray or RGB). */
  apex?: GrayImage | RgbImage;
  /** Onset → apex optical flow in pixels. */
  flow?: Flow;
  /** Optical strain on the flow's grid (`height * width` values, row-major). */
  strain?: ArrayLike<number>;
  /** Figure title (sample id, label...). */
  title?: string;
}

/** Options of {@link sampleFigure}. */
export interface SampleFigureOptions {
  /** How to draw the flow. @default "both" (colour wheel with arrows on top) */
  flowStyle?: "wheel" | "arrows" | "both";
  /** Arrow grid spacing in pixels (see {@link flowArrowsTrace}). */
  arrowStep?: number;
  /** Magnitude (px) at full colour saturation. @default the flow's maximum */
  maxMagnitude?: number;
  /** Add the colour-wheel legend as a panel. @default true when the flow is shown as a wheel */
  wheelLegend?: boolean;
  /** Figure height in pixels. @default 300 */
  height?: number;
}

/**
 * One sample at a glance: onset, apex, flow (Middlebury colour wheel and/or arrows) and strain, side by
 * side on image axes (y down, square pixels).
 *
 * @throws {TypeError} when nothing is given, or the strain does not match the flow's size.
 * @example
 * ```ts ignore
 * const flow = opticalFlowTVL1(onset, apex);
 * await showFigure(sampleFigure({ onset, apex, flow, strain: opticalStrain(flow), title: ref.id }));
 * ```
 */
export function sampleFigure(input: SampleFigureInput, opts: SampleFigureOptions = {}): PlotlyFigure {
  const style = opts.flowStyle ?? "both";
  const panels: { title: string; draw: (cell: GridCell) => PlotlyTrace[] }[] = [];
  if (input.onset) panels.push({ title: "onset", draw: (c) => [imageTrace(input.onset!, c)] });
  if (input.apex) panels.push({ title: "apex", draw: (c) => [imageTrace(input.apex!, c)] });
  const flow = input.flow;
  let maxMag = 0;
  if (flow) {
    const rgb = flowToRgb(flow, { maxMagnitude: opts.maxMagnitude });
    maxMag = rgb.maxMagnitude;
    const title = `flow (max ${maxMag.toFixed(2)} px)`;
    panels.push({
      title,
      draw: (c) => {
        const traces: PlotlyTrace[] = [];
        if (style === "arrows") {
          const bg = input.onset ??
            {
              width: flow.width,
              height: flow.height,
              data: new Uint8Array(flow.width * flow.height).fill(255),
            };
          traces.push(imageTrace(bg, c, { opacity: 0.6 }));
        } else traces.push(imageTrace(rgb.image, c));
        if (style !== "wheel") traces.push(flowArrowsTrace(flow, { step: opts.arrowStep, cell: c }));
        return traces;
      },
    });
    if (style !== "arrows" && (opts.wheelLegend ?? true)) {
      panels.push({ title: "direction key", draw: (c) => [imageTrace(colorWheelImage(48), c)] });
    }
  }
  if (input.strain) {
    const w = flow?.width ?? input.onset?.width ?? 0;
    const h = flow?.height ?? input.onset?.height ?? 0;
    if (input.strain.length !== w * h) {
      throw new TypeError(
        `sampleFigure: strain has ${input.strain.length} values, expected ${w}x${h} = ${
          w * h
        } (the flow's grid)`,
      );
    }
    panels.push({
      title: "optical strain",
      draw: (c) => [{
        type: "heatmap",
        z: toRows(input.strain!, w, h, 3),
        colorscale: "Viridis",
        colorbar: { thickness: 10, len: 0.8, x: 1.0 },
        xaxis: c.x,
        yaxis: c.y,
        hovertemplate: "x %{x}, y %{y}: strain %{z}<extra></extra>",
      }],
    });
  }
  if (!panels.length) {
    throw new TypeError("sampleFigure: give at least one of onset, apex, flow, strain");
  }
  const grid = subplotGrid(panels.length, {
    cols: panels.length,
    titles: panels.map((p) => p.title),
    image: true,
    rightMargin: input.strain ? 0.04 : 0,
  });
  const data = panels.flatMap((p, i) => p.draw(grid.cells[i]));
  return {
    data,
    layout: {
      ...grid.layout,
      title: { text: input.title ?? "sample" },
      height: opts.height ?? 300,
      margin: { l: 10, r: 10, t: 60, b: 10 },
      showlegend: false,
      plot_bgcolor: "white",
    },
  };
}

/** The model input channel names of a {@link FlowDataset}, in order. */
export const INPUT_CHANNELS: readonly string[] = [
  "u (horizontal flow)",
  "v (vertical flow)",
  "optical strain",
];

/**
 * The three model input channels of a preprocessed sample (`[h, w, 3]` channels-last: u, v, strain) as heat
 * maps, plus the flow as a colour wheel. The stored channels are min-max normalised, so zero motion is not
 * known exactly: the wheel panel subtracts each channel's median (most of a face does not move).
 *
 * @throws {RangeError} when `index` is outside `0..ds.n-1`.
 * @example
 * ```ts ignore
 * const ds = await loadSyntheticDefault();
 * await showFigure(datasetSampleFigure(ds, 0));
 * ```
 */
export function datasetSampleFigure(
  ds: FlowDataset,
  index: number,
  opts: { height?: number } = {},
): PlotlyFigure {
  if (!(Number.isInteger(index) && index >= 0 && index < ds.n)) {
    throw new RangeError(`datasetSampleFigure: index must be an integer in 0..${ds.n - 1}, got ${index}`);
  }
  const { height: h, width: w } = ds;
  const size = h * w;
  const base = index * size * 3;
  const ch = [0, 1, 2].map((c) => {
    const a = new Float32Array(size);
    for (let i = 0; i < size; i++) a[i] = ds.x[base + 3 * i + c];
    return a;
  });
  const median = (a: Float32Array) => {
    const s = Float32Array.from(a).sort();
    return s[Math.floor(s.length / 2)];
  };
  const mu = median(ch[0]);
  const mv = median(ch[1]);
  const flow: Flow = {
    width: w,
    height: h,
    u: ch[0].map((x) => x - mu),
    v: ch[1].map((x) => x - mv),
  };
  const grid = subplotGrid(4, {
    cols: 4,
    titles: [...INPUT_CHANNELS, "flow direction (median-centred)"],
    image: true,
  });
  const data: PlotlyTrace[] = ch.map((a, c) => ({
    type: "heatmap",
    z: toRows(a, w, h, 3),
    colorscale: c === 2 ? "Viridis" : "RdBu",
    showscale: false,
    xaxis: grid.cells[c].x,
    yaxis: grid.cells[c].y,
    hovertemplate: `x %{x}, y %{y}: %{z}<extra>${INPUT_CHANNELS[c]}</extra>`,
  }));
  data.push(imageTrace(flowToRgb(flow).image, grid.cells[3]));
  const fine = ds.classes.fine[ds.fine[index]];
  const coarse = ds.classes.coarse[ds.coarse[index]];
  return {
    data,
    layout: {
      ...grid.layout,
      title: {
        text: `${ds.ids[index]} · ${ds.subjects[index]} · ${fine}${fine !== coarse ? ` (${coarse})` : ""}`,
      },
      height: opts.height ?? 280,
      margin: { l: 10, r: 10, t: 60, b: 10 },
      showlegend: false,
    },
  };
}
