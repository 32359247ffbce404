/**
 * PyTorch state-dict import for the MambaVision mixer, kept apart from the model (timm convention).
 *
 * Names and layouts are those of NVlabs/MambaVision `MambaVisionMixer.state_dict()`:
 *
 * | PyTorch name | PyTorch shape | merba weight (tfjs layout) |
 * |---|---|---|
 * | `in_proj.weight` | `(d_inner, C)` | `in_proj.kernel [C, d_inner]` |
 * | `conv1d_x.weight`, `conv1d_z.weight` | `(h, 1, k)` | `conv1d_*.kernel [1, k, h, 1]` |
 * | `x_proj.weight` | `(R + 2n, h)` | `x_proj.kernel [h, R + 2n]` |
 * | `dt_proj.weight`, `dt_proj.bias` | `(h, R)`, `(h)` | `dt_proj.kernel [R, h]`, `dt_proj.bias [h]` |
 * | `A_log`, `D` | `(h, n)`, `(h)` | same |
 * | `out_proj.weight` | `(C, d_inner)` | `out_proj.kernel [d_inner, C]` |
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { MambaVisionMixer } from "../layers/mamba_vision_mixer.ts";

/** One PyTorch tensor: row-major data and its shape. */
export interface TorchTensor {
  shape: number[];
  data: ArrayLike<number>;
}

/** A PyTorch state dict (name → tensor). */
export type TorchStateDict = Record<string, TorchTensor>;

function take(dict: TorchStateDict, name: string, shape: number[]): Float32Array {
  const t = dict[name];
  if (!t) {
    throw new RangeError(`loadTorchStateDict: missing "${name}" (expected shape (${shape.join(", ")}))`);
  }
  if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
    throw new TypeError(
      `loadTorchStateDict: "${name}" has shape (${t.shape.join(", ")}), expected (${shape.join(", ")})`,
    );
  }
  const n = shape.reduce((a, b) => a * b, 1);
  if (t.data.length !== n) {
    throw new TypeError(`loadTorchStateDict: "${name}" has ${t.data.length} values, expected ${n}`);
  }
  const out = Float32Array.from(t.data as ArrayLike<number>);
  const bad = out.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    throw new TypeError(
      `loadTorchStateDict: "${name}" value ${bad} is ${
        String((t.data as ArrayLike<unknown>)[bad])
      }, not a finite number`,
    );
  }
  return out;
}

/** `(rows, cols)` row-major → `(cols, rows)` row-major. */
function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = a[i * cols + j];
  return out;
}

/** `(h, 1, k)` → `[1, k, h, 1]`. */
function convKernel(a: Float32Array, h: number, k: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let c = 0; c < h; c++) for (let j = 0; j < k; j++) out[j * h + c] = a[c * k + j];
  return out;
}

/**
 * Loads MambaVision mixer weights (PyTorch names and layouts, table above) into a built
 * {@link MambaVisionMixer}. With several scan orders and unshared parameters every order's set receives
 * the same tensors. Unknown keys are ignored; `prefix` selects a sub-dict (e.g. `"levels.2.blocks.0.mixer."`).
 *
 * @throws {RangeError} when a key is missing; {TypeError} when a shape differs or a value is not a finite
 *   number. Nothing is written unless every tensor checks out.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { mambaVisionMixer } from "../layers/mamba_vision_mixer.ts";
 * import { loadTorchStateDict } from "./torch_import.ts";
 * await tf.setBackend("cpu");
 * const m = mambaVisionMixer({ dModel: 16, dState: 8, dConv: 3, expand: 1 });
 * m.apply(tf.zeros([1, 4, 16])); // build
 * const z = (shape: number[]) => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
 * loadTorchStateDict(m, {
 *   "in_proj.weight": z([16, 16]), "conv1d_x.weight": z([8, 1, 3]), "conv1d_z.weight": z([8, 1, 3]),
 *   "x_proj.weight": z([17, 8]), "dt_proj.weight": z([8, 1]), "dt_proj.bias": z([8]),
 *   "A_log": z([8, 8]), "D": z([8]), "out_proj.weight": z([16, 16]),
 * });
 * ```
 */
export function loadTorchStateDict(layer: MambaVisionMixer, dict: TorchStateDict, prefix = ""): void {
  const { dModel: c, dInner, branch: h, dState: n, dtRank: r, dConv: k } = layer;
  const refs = layer.paramRefs();
  const p = (s: string) => prefix + s;
  const write = (v: { write(t: tf.Tensor): void; shape: (number | null)[] }, data: Float32Array) => {
    const t = tf.tensor(data, v.shape as number[], "float32");
    v.write(t);
    t.dispose();
  };
  // read and check every tensor before writing any, so a missing or mis-shaped key leaves the layer unchanged
  const inProj = transpose2d(take(dict, p("in_proj.weight"), [dInner, c]), dInner, c);
  const convZ = convKernel(take(dict, p("conv1d_z.weight"), [h, 1, k]), h, k);
  const outProj = transpose2d(take(dict, p("out_proj.weight"), [c, dInner]), c, dInner);
  const convX = convKernel(take(dict, p("conv1d_x.weight"), [h, 1, k]), h, k);
  const xProj = transpose2d(take(dict, p("x_proj.weight"), [r + 2 * n, h]), r + 2 * n, h);
  const dtW = transpose2d(take(dict, p("dt_proj.weight"), [h, r]), h, r);
  const dtB = take(dict, p("dt_proj.bias"), [h]);
  const aLog = take(dict, p("A_log"), [h, n]);
  const d = take(dict, p("D"), [h]);
  write(refs.inProj, inProj);
  write(refs.convZ, convZ);
  write(refs.outProj, outProj);
  for (const g of refs.groups) {
    write(g.convX, convX);
    write(g.xProj, xProj);
    write(g.dtProjW, dtW);
    write(g.dtProjB, dtB);
    write(g.aLog, aLog);
    write(g.d, d);
  }
}
