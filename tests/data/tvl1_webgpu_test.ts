import assert from "node:assert/strict";
import { opticalFlowTVL1 } from "../../lib/data/optical_flow.ts";
import { opticalFlowTVL1WebGPU } from "../../lib/data/tvl1_webgpu.ts";
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
