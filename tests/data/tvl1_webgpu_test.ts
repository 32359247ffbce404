import assert from "node:assert/strict";
import { opticalFlowTVL1 } from "../../lib/data/optical_flow.ts";
import {
  medianNetwork,
  opticalFlowTVL1WebGPU,
  opticalFlowTVL1WebGPUBatch,
} from "../../lib/data/tvl1_webgpu.ts";
import type { GrayImage } from "../../lib/data/types.ts";
import { gpu } from "../_util.ts";
import { epe, loadFlowCase } from "./_flow_fixtures.ts";

// The 64x64 golden pairs (about 0.5-2 s each on Mesa llvmpipe); the GPU path must meet the same accuracy
// criterion as the CPU path (interior EPE <= 1.25 x OpenCV's + 0.02 px) and agree with it: measured interior
// mean |GPU - CPU| 0.0025-0.0052 px (float32 vs float64 arithmetic inside each step; an early stop can land
// one iteration apart). 0.01 px bounds that while staying far below the 0.03-0.07 px separating other good
// flow estimates from OpenCV's TV-L1 on these pairs.
for (const name of ["translate_64", "noisy_warp_64"]) {
  Deno.test({
    name: `opticalFlowTVL1WebGPU: ${name} accuracy and agreement with the CPU path`,
    ignore: !gpu,
    fn: async () => {
      const c = await loadFlowCase(name);
      const g = await opticalFlowTVL1WebGPU(c.prev, c.next);
      assert.equal(g.u.length, 64 * 64);
      const limit = 1.25 * c.tvl1.epeInterior + 0.02;
      const e = epe(g, c.groundTruth.flow);
      assert.ok(e <= limit, `${name}: EPE ${e.toFixed(4)} > ${limit.toFixed(4)}`);
      const d = epe(g, opticalFlowTVL1(c.prev, c.next));
      assert.ok(d <= 0.01, `${name}: mean interior |GPU - CPU| = ${d.toFixed(4)} px`);
    },
  });
}

Deno.test("medianNetwork: the pruned network leaves the exact median on the middle wire (9 and 25 inputs)", () => {
  let seed = 11;
  const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  assert.equal(medianNetwork(25).length, 113);
  assert.equal(medianNetwork(9).length, 24);
  for (const n of [9, 25]) {
    const net = medianNetwork(n);
    for (let t = 0; t < 3000; t++) {
      // Alternate continuous values and heavy ties.
      const a = Array.from({ length: n }, () => (t % 2 ? Math.floor(rnd() * 3) : rnd()));
      const b = a.slice();
      for (const [i, j] of net) {
        const lo = Math.min(b[i], b[j]);
        b[j] = Math.max(b[i], b[j]);
        b[i] = lo;
      }
      assert.equal(b[(n - 1) / 2], a.slice().sort((x, y) => x - y)[(n - 1) / 2]);
    }
  }
  assert.throws(() => medianNetwork(4), RangeError);
});

Deno.test({
  name: "opticalFlowTVL1WebGPU: 3x3 median filtering agrees with the CPU path",
  ignore: !gpu,
  fn: async () => {
    const c = await loadFlowCase("translate_64");
    const g = await opticalFlowTVL1WebGPU(c.prev, c.next, { medianFiltering: 3 });
    const d = epe(g, opticalFlowTVL1(c.prev, c.next, { medianFiltering: 3 }));
    assert.ok(d <= 0.01, `mean interior |GPU - CPU| = ${d.toFixed(4)} px`);
  },
});

Deno.test({
  name: "opticalFlowTVL1WebGPUBatch: each flow equals the single-pair result (mixed sizes)",
  ignore: !gpu,
  fn: async () => {
    const a = await loadFlowCase("translate_64");
    const b = await loadFlowCase("noisy_warp_64");
    // A small pair of another size (its own batch) between the 64x64 ones.
    const tex = (dx: number): GrayImage => ({
      width: 24,
      height: 20,
      data: new Float32Array(24 * 20).map((_, i) =>
        128 + 60 * Math.sin((i % 24 - dx) / 3) * Math.cos(Math.floor(i / 24) / 4)
      ),
    });
    const pairs: [GrayImage, GrayImage][] = [[a.prev, a.next], [tex(0), tex(0.7)], [b.prev, b.next], [
      b.next,
      b.prev,
    ]];
    const batch = await opticalFlowTVL1WebGPUBatch(pairs);
    assert.equal(batch.length, 4);
    for (const [k, [prev, next]] of pairs.entries()) {
      const single = await opticalFlowTVL1WebGPU(prev, next);
      assert.equal(batch[k].width, prev.width);
      assert.deepEqual(batch[k].u, single.u, `pair ${k} u`);
      assert.deepEqual(batch[k].v, single.v, `pair ${k} v`);
    }
    assert.deepEqual(await opticalFlowTVL1WebGPUBatch([]), []);
    await assert.rejects(() => opticalFlowTVL1WebGPUBatch([[a.prev, tex(0)]]), {
      name: "TypeError",
      message: /pairs\[0\]\.prev is 64x64 but pairs\[0\]\.next is 24x20/,
    });
  },
});

Deno.test({
  name: "opticalFlowTVL1WebGPU: bad input and unsupported options",
  ignore: !gpu,
  fn: async () => {
    const img = (w: number, h: number): GrayImage => ({ width: w, height: h, data: new Uint8Array(w * h) });
    await assert.rejects(() => opticalFlowTVL1WebGPU(img(8, 8), img(8, 9)), {
      name: "TypeError",
      message: /prev is 8x8 but next is 8x9/,
    });
    await assert.rejects(() => opticalFlowTVL1WebGPU(img(8, 8), img(8, 8), { gamma: 0.1 }), {
      name: "RangeError",
      message: /gamma != 0 is not implemented on WebGPU/,
    });
    await assert.rejects(() => opticalFlowTVL1WebGPU(img(8, 8), img(8, 8), { lamda: 1 } as never), {
      name: "RangeError",
      message: /unknown option 'lamda'/,
    });
    // Identical frames: zero flow, as on the CPU.
    const c = await loadFlowCase("translate_64");
    const still = await opticalFlowTVL1WebGPU(c.prev, c.prev);
    assert.ok(still.u.every((x) => x === 0) && still.v.every((x) => x === 0));
  },
});
