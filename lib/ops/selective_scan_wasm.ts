/**
 * Selective-scan kernels for the tfjs `wasm` backend: the CPU kernel's loops (`selective_scan_cpu.ts`) run
 * in JavaScript on copies of the inputs read from the WebAssembly heap; outputs are written back to it.
 * The copies cost a few milliseconds at MERba sizes, small next to the scan itself.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { SelectiveScanAttrs } from "./selective_scan.ts";
import { backwardKernel, forwardKernel, type MakeOutput, type ReadInput } from "./selective_scan_cpu.ts";

/** The parts of tfjs-backend-wasm's BackendWasm used here. */
interface WasmBackendLike {
  readSync(dataId: tf.DataId): unknown;
  makeOutput(
    shape: number[],
    dtype: tf.DataType,
    memoryOffset?: number,
    values?: Float32Array,
  ): tf.TensorInfo;
}

function wasmIo(backend: unknown): [ReadInput, MakeOutput] {
  const w = backend as WasmBackendLike;
  return [
    (t) => w.readSync(t.dataId) as Float32Array,
    (shape, v) => w.makeOutput(shape, "float32", undefined, v),
  ];
}

tf.registerKernel({
  kernelName: "MerbaSelectiveScan",
  backendName: "wasm",
  kernelFunc: ({ inputs, backend, attrs }) =>
    forwardKernel(inputs, attrs as unknown as SelectiveScanAttrs, ...wasmIo(backend)),
});

tf.registerKernel({
  kernelName: "MerbaSelectiveScanGrad",
  backendName: "wasm",
  kernelFunc: ({ inputs, backend, attrs }) =>
    backwardKernel(inputs, attrs as unknown as SelectiveScanAttrs, ...wasmIo(backend)),
});
