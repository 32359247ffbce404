import * as tf from "@tensorflow/tfjs";
import { deepStrictEqual, equal, ok, throws } from "node:assert/strict";
import { assertClose, gpu, recordWebGPUPrograms } from "../_util.ts";
import {
  applyIndexMap,
  applyIndexMaps,
  applyIndexMapSum,
  cachedIndexMap,
  windowGrid,
  windowOrderOfRaster,
  windowPartition,
  windowReverse,
} from "../../lib/ops/windows.ts";

Deno.test("windowPartition: MambaVision order (batch, window-row, window-col; raster tokens) with padding", async () => {
  await tf.setBackend("cpu");
  // x[b, y, x, 0] = 100·b + 10·y + x on a 3x5 map, ws 2 -> 2x3 windows, 1 padded row, 1 padded column
  const vals: number[] = [];
  for (let b = 0; b < 2; b++) {
    for (let y = 0; y < 3; y++) for (let x = 0; x < 5; x++) vals.push(100 * b + 10 * y + x);
  }
  const x = tf.tensor(vals, [2, 3, 5, 1]);
  const { windows, grid } = windowPartition(x, 2);
  deepStrictEqual(windows.shape, [12, 4, 1]);
  deepStrictEqual([grid.rows, grid.cols, grid.padBottom, grid.padRight], [2, 3, 1, 1]);
  const w = Array.from(await windows.data());
  // batch 0: window (0,0) = 0 1 10 11; (0,1) = 2 3 12 13; (0,2) = 4 pad 14 pad; (1,0) = 20 21 pad pad
  deepStrictEqual(w.slice(0, 4), [0, 1, 10, 11]);
  deepStrictEqual(w.slice(4, 8), [2, 3, 12, 13]);
  deepStrictEqual(w.slice(8, 12), [4, 0, 14, 0]);
  deepStrictEqual(w.slice(12, 16), [20, 21, 0, 0]);
  deepStrictEqual(w.slice(24, 28), [100, 101, 110, 111]); // batch 1 first window
  const back = windowReverse(windows, grid);
  deepStrictEqual(Array.from(await back.data()), vals);
  tf.dispose([x, windows, back]);
});

Deno.test("windowPartition/windowReverse round trip and gradients (cpu and webgpu agree with tf.gather)", async () => {
  for (const backend of gpu ? ["cpu", "webgpu"] : ["cpu"]) {
    await tf.setBackend(backend);
    const x = tf.randomNormal([2, 9, 9, 3], 0, 1, "float32", 7);
    const { windows, grid } = windowPartition(x, 4);
    deepStrictEqual(windows.shape, [2 * 9, 16, 3]);
    const back = windowReverse(windows, grid);
    assertClose(await back.data(), await x.data(), { atol: 0, rtol: 0, what: `${backend} round trip` });
    // d/dx sum(partition(x)·G) = G mapped back (padding positions dropped)
    const G = tf.randomNormal(windows.shape, 0, 1, "float32", 8);
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(windowPartition(t, 4).windows, G)))(x);
    const expected = windowReverse(G, grid);
    assertClose(await g.data(), await expected.data(), { atol: 0, rtol: 0, what: `${backend} gradient` });
    tf.dispose([x, windows, back, G, g, expected]);
  }
});

Deno.test("applyIndexMap: zeros where idx = -1, inverse-table gradient, shape and injectivity checks", async () => {
  // webgpu: one WGSL gather per application (no concat of the input with an uploaded zero)
  for (const backend of gpu ? ["cpu", "webgpu"] : ["cpu"]) {
    await tf.setBackend(backend);
    const map = cachedIndexMap("test:reverse-pad", [3], [4], (idx) => idx.set([2, 1, 0, -1]));
    const x = tf.tensor1d([1, 2, 3]);
    const { result: y, keys: kernels } = recordWebGPUPrograms(() => applyIndexMap(x, map));
    deepStrictEqual(Array.from(await y.data()), [3, 2, 1, 0], backend);
    if (backend === "webgpu") {
      deepStrictEqual(kernels, ["merba_index_gather"]);
      // the shader gets −1 for a padding entry, never an index past the input (an out-of-bounds read returns
      // what the WebGPU implementation likes: zero on wgpu, another element elsewhere)
      // deno-lint-ignore no-explicit-any
      const be = tf.backend() as any;
      const orig = be.runWebGPUProgram;
      const seen: Array<{ n: number; idx: Promise<Int32Array> }> = [];
      // deno-lint-ignore no-explicit-any
      be.runWebGPUProgram = function (p: any, inputs: any[], ...rest: any[]) {
        if (p.shaderKey === "merba_index_gather") {
          seen.push({
            n: inputs[0].shape.reduce((a: number, b: number) => a * b, 1),
            idx: be.read(inputs[1].dataId),
          });
        }
        return orig.call(be, p, inputs, ...rest);
      };
      try {
        const gg = tf.grad((t: tf.Tensor) =>
          tf.sum(tf.mul(applyIndexMap(t, map), tf.tensor1d([1, 2, 3, 4])))
        )(x);
        gg.dispose();
      } finally {
        be.runWebGPUProgram = orig;
      }
      equal(seen.length, 2, "forward and backward gathers");
      for (const { n, idx } of seen) {
        const v = Array.from(await idx);
        ok(v.every((j) => j >= -1 && j < n), `index table ${v} for an input of ${n}`);
      }
      deepStrictEqual(Array.from(await seen[0].idx), [2, 1, 0, -1]);
    }
    const g = tf.grad((t: tf.Tensor) =>
      tf.sum(tf.mul(applyIndexMap(t, map), tf.tensor1d([1, 10, 100, 1000])))
    )(
      x,
    );
    deepStrictEqual(Array.from(await g.data()), [100, 10, 1], backend);
    throws(() => applyIndexMap(tf.zeros([4]), map), TypeError);
    throws(() => cachedIndexMap("test:bad", [2], [2], (idx) => idx.set([1, 2])), RangeError);
    // non-injective: the gradient sums over every reader
    const dup = cachedIndexMap("test:dup", [2], [3], (idx) => idx.set([1, 1, 0]));
    const gd = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(applyIndexMap(t, dup), tf.tensor1d([1, 10, 100]))))(
      tf.tensor1d([5, 6]),
    );
    deepStrictEqual(Array.from(await gd.data()), [100, 11], backend);
    tf.dispose([x, y, g, gd]);
  }
  await tf.setBackend("cpu");
  throws(() => windowGrid(0, 4, 2), RangeError);
  throws(() => windowPartition(tf.zeros([2, 3]), 2), TypeError);
});

Deno.test("windowPartition: no tensors leak", async () => {
  await tf.setBackend("cpu");
  const x = tf.randomNormal([1, 7, 7, 2]);
  tf.tidy(() => windowReverse(windowPartition(x, 3).windows, windowGrid(7, 7, 3)));
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    const g = tf.grad((t: tf.Tensor) =>
      tf.sum(windowReverse(windowPartition(t, 3).windows, windowGrid(7, 7, 3)))
    )(x);
    return g.sum();
  }).dispose();
  deepStrictEqual(tf.memory().numTensors, before);
  x.dispose();
});

Deno.test("applyIndexMaps: several maps of one input in one op; gradient = sum of the single-map gradients", async () => {
  await tf.setBackend("cpu");
  const a = cachedIndexMap("test:multi-a", [4], [3], (idx) => idx.set([3, 0, -1]));
  const b = cachedIndexMap("test:multi-b", [4], [2, 2], (idx) => idx.set([0, 0, 1, 2]));
  const x = tf.tensor1d([1, 2, 3, 4]);
  const [ya, yb] = applyIndexMaps(x, [a, b]);
  deepStrictEqual(Array.from(await ya.data()), [4, 1, 0]);
  deepStrictEqual(Array.from(await yb.data()), [1, 1, 2, 3]);
  const ga = tf.tensor1d([1, 10, 100]);
  const gb = tf.tensor2d([[1000, 2000], [3000, 4000]]);
  const f = (t: tf.Tensor) => {
    const [p, q] = applyIndexMaps(t, [a, b]);
    return tf.add(tf.sum(tf.mul(p, ga)), tf.sum(tf.mul(q, gb)));
  };
  deepStrictEqual(Array.from(await tf.grad(f)(x).data()), [10 + 3000, 3000, 4000, 1]);
  throws(() => applyIndexMaps(tf.zeros([5]), [a]), TypeError);
});

Deno.test("applyIndexMapSum: the map, then its k slices summed in order and scaled (values, gradient; webgpu: 1 + 1 dispatches)", async () => {
  // a permutation of 12 elements read as k = 3 slices of [2, 2]
  const perm = [5, 0, 7, 2, 11, 9, 1, 4, 8, 3, 10, 6];
  const map = cachedIndexMap("test:sum3", [3, 4], [3, 2, 2], (idx) => idx.set(perm));
  for (const backend of gpu ? ["cpu", "webgpu"] : ["cpu"]) {
    await tf.setBackend(backend);
    const x = tf.tensor2d(Array.from({ length: 12 }, (_, i) => Math.sin(i + 1) * 10), [3, 4]);
    const g = tf.tensor2d([[1, 2], [3, 4]]);
    const { result: y, keys } = recordWebGPUPrograms(() => applyIndexMapSum(x, map, 1 / 3));
    const ref = tf.tidy(() => tf.mul(tf.addN(tf.unstack(applyIndexMap(x, map), 0)), tf.scalar(1 / 3)));
    deepStrictEqual(y.shape, [2, 2]);
    deepStrictEqual(await y.data(), await ref.data(), `${backend}: value`);
    const f = (fn: (t: tf.Tensor) => tf.Tensor) => (t: tf.Tensor) => tf.sum(tf.mul(fn(t), g));
    const { result: dx, keys: bk } = recordWebGPUPrograms(() =>
      tf.grad(f((t) => applyIndexMapSum(t, map, 1 / 3)))(x)
    );
    const dref = tf.grad(f((t) => tf.mul(tf.addN(tf.unstack(applyIndexMap(t, map), 0)), tf.scalar(1 / 3))))(
      x,
    );
    deepStrictEqual(await dx.data(), await dref.data(), `${backend}: gradient`);
    if (backend === "webgpu") {
      deepStrictEqual(keys, ["merba_index_gather_sum_3"]);
      // tf.grad runs the forward again, then one scaled gather back
      deepStrictEqual(bk.filter((k) => k.startsWith("merba_")), [
        "merba_index_gather_sum_3",
        "merba_index_gather_sum_1",
      ]);
      // its two index tables leave the GPU when the map leaves the cache (256 newer maps), and come back on use
      const flush = (tag: string) => {
        for (let i = 0; i < 256; i++) cachedIndexMap(`test:${tag}${i}`, [1], [1], (idx) => idx.set([0]));
      };
      flush("flush"); // every earlier map (and its tables) out of the cache
      const fresh = cachedIndexMap("test:sum3-evict", [3, 4], [3, 2, 2], (idx) => idx.set(perm));
      applyIndexMapSum(x, fresh, 1 / 3).dispose();
      const held = tf.memory().numTensors;
      flush("evict");
      equal(tf.memory().numTensors, held - 2, "the map's two tables disposed with it");
      const again = applyIndexMapSum(x, fresh, 1 / 3);
      deepStrictEqual(await again.data(), await ref.data(), "webgpu: value after eviction");
      again.dispose();
    }
    tf.dispose([x, g, y, ref, dx, dref]);
  }
  await tf.setBackend("cpu");
  const dup = cachedIndexMap("test:sum-dup", [4], [2, 2], (idx) => idx.set([0, 1, 1, 2]));
  throws(() => applyIndexMapSum(tf.zeros([4]), dup, 1), /exactly once/);
});

Deno.test("windowOrderOfRaster: raster token i sits at windowOrderOfRaster[i] of windowPartition's flattened windows", async () => {
  for (const [rows, cols, ws] of [[2, 2, 2], [2, 3, 3], [1, 1, 4]] as const) {
    const h = rows * ws;
    const w = cols * ws;
    const x = tf.tensor4d(Float32Array.from({ length: h * w }, (_, i) => i), [1, h, w, 1]);
    const { windows } = windowPartition(x, ws);
    const flat = await windows.data();
    const perm = windowOrderOfRaster(rows, cols, ws);
    deepStrictEqual(Array.from(perm, (j) => flat[j]), Array.from({ length: h * w }, (_, i) => i));
    tf.dispose([x, windows]);
  }
});
