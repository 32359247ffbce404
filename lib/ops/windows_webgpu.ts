/**
 * The index-map gather of `windows.ts` on the tfjs `webgpu` backend as one WGSL dispatch:
 * `out[i] = idx[i] < 0 ? 0 : x[idx[i]]`. With tfjs ops a map with −1 entries (padding) costs a `concat` of the
 * whole input with an uploaded zero plus a `gather`; this reads the zero from the index instead.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";

const WORKGROUP = 64;
const MAX_WORKGROUPS = 65535;

class IndexGatherProgram implements WebGPUProgram {
  variableNames = ["X", "Idx"];
  outputShape: number[];
  shaderKey = "merba_index_gather";
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  uniforms = "count : i32,";
  constructor(shape: number[], count: number) {
    this.outputShape = shape;
    this.dispatchLayout = { x: shape.map((_, i) => i) };
    this.dispatch = [Math.ceil(count / WORKGROUP), 1, 1];
  }
  getUserCode(): string {
    return `
  fn main(index : i32) {
    if (index >= uniforms.count) { return; }
    let j = Idx[index];
    result[index] = select(0.0, X[max(j, 0)], j >= 0);
  }`;
  }
}

/** True when {@link indexGatherWebGPU} runs `count` outputs on the active backend. */
export function indexGatherWebGPUApplies(count: number): boolean {
  return tf.getBackend() === "webgpu" && count > 0 && Math.ceil(count / WORKGROUP) <= MAX_WORKGROUPS;
}

/**
 * `out.flat[i] = x.flat[index[i]]`, 0 where `index[i] < 0`, shaped `shape` (not differentiable by itself: the
 * caller's custom gradient applies the inverse tables). `x` float32, `index` int32.
 *
 * @throws {Error} when the active backend is not webgpu.
 */
export function indexGatherWebGPU(x: tf.Tensor, index: tf.Tensor1D, shape: number[]): tf.Tensor {
  if (tf.getBackend() !== "webgpu") {
    throw new Error(`indexGatherWebGPU: the active backend is ${tf.getBackend()}`);
  }
  const be = tf.backend() as unknown as WebGPUBackend;
  const info = be.runWebGPUProgram(new IndexGatherProgram(shape, index.size), [x, index], "float32", [
    { type: "int32", data: [index.size] },
  ]);
  return tf.engine().makeTensorFromTensorInfo(info);
}

/** `out[i] = scale·Σ_{r<k} X[Idx[r·count + i]]`, summed in order r = 0, 1, … (as tfjs's `addN`). */
class IndexGatherSumProgram implements WebGPUProgram {
  variableNames = ["X", "Idx"];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  uniforms = "count : i32, scale : f32,";
  constructor(shape: number[], count: number, private readonly k: number) {
    this.outputShape = shape;
    this.dispatchLayout = { x: shape.map((_, i) => i) };
    this.dispatch = [Math.ceil(count / WORKGROUP), 1, 1];
    this.shaderKey = `merba_index_gather_sum_${k}`;
  }
  getUserCode(): string {
    return `
  fn main(index : i32) {
    if (index >= uniforms.count) { return; }
    var acc = X[Idx[index]];
    for (var r = 1; r < ${this.k}; r++) { acc = acc + X[Idx[r * uniforms.count + index]]; }
    result[index] = acc * uniforms.scale;
  }`;
  }
}

/**
 * `out.flat[i] = scale·Σ_{r<k} x.flat[index[r·n + i]]` (`n` = the size of `shape`), summed in order; every index
 * must be in range (no padding entries). Not differentiable by itself.
 *
 * @throws {Error} when the active backend is not webgpu.
 */
export function indexGatherSumWebGPU(
  x: tf.Tensor,
  index: tf.Tensor1D,
  shape: number[],
  k: number,
  scale: number,
): tf.Tensor {
  if (tf.getBackend() !== "webgpu") {
    throw new Error(`indexGatherSumWebGPU: the active backend is ${tf.getBackend()}`);
  }
  const n = index.size / k;
  const be = tf.backend() as unknown as WebGPUBackend;
  const info = be.runWebGPUProgram(new IndexGatherSumProgram(shape, n, k), [x, index], "float32", [
    { type: "int32", data: [n] },
    { type: "float32", data: [scale] },
  ]);
  return tf.engine().makeTensorFromTensorInfo(info);
}
