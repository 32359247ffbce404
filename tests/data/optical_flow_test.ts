import assert from "node:assert/strict";
import {
  DualTVL1,
  opticalFlowTVL1,
  resolveTVL1Options,
  TVL1_DEFAULTS,
  tvl1PyramidSizes,
} from "../../lib/data/optical_flow.ts";
import type { GrayImage } from "../../lib/data/types.ts";
import { epe, FLOW_CASES, loadFlowCase } from "./_flow_fixtures.ts";

// Accuracy against the ground-truth displacement, with the golden files' own criterion for an independent
// TV-L1: interior EPE <= 1.25 x OpenCV 4.6's + 0.02 px (provenance.tolerance.tvl1_independent_implementation).
for (const name of FLOW_CASES) {
  Deno.test(`opticalFlowTVL1: ${name} interior EPE within 1.25x OpenCV's + 0.02 px`, async () => {
    const c = await loadFlowCase(name);
    const flow = opticalFlowTVL1(c.prev, c.next);
    assert.equal(flow.width, c.prev.width);
    assert.equal(flow.height, c.prev.height);
    const ours = epe(flow, c.groundTruth.flow);
    const limit = 1.25 * c.tvl1.epeInterior + 0.02;
    assert.ok(
      ours <= limit,
      `${name}: EPE ${ours.toFixed(4)} > ${limit.toFixed(4)} (OpenCV ${c.tvl1.epeInterior})`,
    );
    // Same algorithm, so the two flows should also be close to each other: measured 0.005-0.009 px on these
    // pairs (OpenCV rounds warp positions to 1/32 px and sums its stopping criterion in float32), while other
    // good estimates (the ground truth itself, OpenCV's Farneback) are 0.03-0.07 px from OpenCV's TV-L1 here.
    // 0.02 px keeps a margin over the first and still tells the algorithm apart.
    const toOpenCv = epe(flow, c.tvl1.flow);
    assert.ok(toOpenCv <= 0.02, `${name}: mean interior |ours - OpenCV| = ${toOpenCv.toFixed(4)} px > 0.02`);
  });
}

Deno.test("opticalFlowTVL1: Float32Array input equals Uint8Array input; floatScale rescales", async () => {
  const c = await loadFlowCase("translate_64");
  const a = opticalFlowTVL1(c.prev, c.next);
  const f32 = (img: GrayImage, k: number): GrayImage => ({
    ...img,
    data: Float32Array.from(img.data, (x) => x * k),
  });
  const b = opticalFlowTVL1(f32(c.prev, 1), f32(c.next, 1));
  assert.deepEqual(b.u, a.u);
  assert.deepEqual(b.v, a.v);
  // Doubling the intensities and halving them back through floatScale is exact in float32.
  const d = opticalFlowTVL1(f32(c.prev, 2), f32(c.next, 2), { floatScale: 0.5 });
  assert.deepEqual(d.u, a.u);
});

Deno.test("DualTVL1: a reused solver gives the same flow as a fresh call", async () => {
  const c = await loadFlowCase("noisy_warp_64");
  const solver = new DualTVL1(64, 64);
  const other = await loadFlowCase("translate_64");
  solver.calc(other.prev, other.next);
  const a = solver.calc(c.prev, c.next);
  const b = opticalFlowTVL1(c.prev, c.next);
  assert.deepEqual(a.u, b.u);
  assert.deepEqual(a.v, b.v);
  assert.deepEqual(solver.levels, [[64, 64], [51, 51], [41, 41], [33, 33], [26, 26]]);
});

Deno.test("opticalFlowTVL1: options change the result as documented", async () => {
  const c = await loadFlowCase("translate_64");
  // Identical frames: zero flow exactly (every update is 0).
  const still = opticalFlowTVL1(c.prev, c.prev);
  assert.ok(still.u.every((x) => x === 0) && still.v.every((x) => x === 0));
  // The initial flow is used: starting from the ground truth with a single level and few iterations stays
  // closer to it than starting from zero.
  const quick = { nscales: 1, warps: 1, outerIterations: 1, innerIterations: 5 };
  const fromZero = opticalFlowTVL1(c.prev, c.next, quick);
  const fromGt = opticalFlowTVL1(c.prev, c.next, { ...quick, initialFlow: c.groundTruth.flow });
  assert.ok(epe(fromGt, c.groundTruth.flow) < epe(fromZero, c.groundTruth.flow));
  // The illumination term (gamma) runs and still recovers the translation.
  const withGamma = opticalFlowTVL1(c.prev, c.next, { gamma: 0.1 });
  assert.ok(epe(withGamma, c.groundTruth.flow) <= 1.25 * c.tvl1.epeInterior + 0.02);
  // Median size 3 and off are accepted and give different flows.
  const m3 = opticalFlowTVL1(c.prev, c.next, { medianFiltering: 3 });
  const m1 = opticalFlowTVL1(c.prev, c.next, { medianFiltering: 1 });
  assert.notDeepEqual(m3.u, m1.u);
});

Deno.test("tvl1PyramidSizes: OpenCV's rounding and the 16 px floor", () => {
  assert.deepEqual(tvl1PyramidSizes(128, 128, 5, 0.8).map(([w]) => w), [128, 102, 82, 66, 53]);
  assert.deepEqual(tvl1PyramidSizes(240, 240, 5, 0.8).map(([w]) => w), [240, 192, 154, 123, 98]);
  assert.deepEqual(tvl1PyramidSizes(20, 40, 5, 0.8), [[20, 40], [16, 32]]);
  assert.deepEqual(tvl1PyramidSizes(10, 10, 5, 0.8), [[10, 10]]);
});

Deno.test("resolveTVL1Options: OpenCV defaults; bad options are RangeErrors naming the option", () => {
  assert.deepEqual(resolveTVL1Options(), { ...TVL1_DEFAULTS });
  assert.equal(TVL1_DEFAULTS.lambda, 0.15);
  assert.equal(resolveTVL1Options({ warps: 3 }).warps, 3);
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ lamda: 0.1 }, /unknown option 'lamda'/],
    [{ tau: 0 }, /tau must be > 0/],
    [{ warps: 1.5 }, /warps must be an integer/],
    [{ nscales: 0 }, /nscales must be >= 1/],
    [{ scaleStep: 1 }, /scaleStep must be in \(0, 1\)/],
    [{ medianFiltering: 4 }, /medianFiltering must be 1 \(off\), 3 or 5/],
    [{ epsilon: Number.NaN }, /epsilon must be a finite number/],
  ];
  for (const [opts, re] of bad) {
    assert.throws(() => resolveTVL1Options(opts), { name: "RangeError", message: re });
  }
  assert.throws(() => resolveTVL1Options(null as never), {
    name: "TypeError",
    message: /options must be an object/,
  });
});

Deno.test("opticalFlowTVL1: bad input gets a clear error", () => {
  const img = (w: number, h: number, data: ArrayLike<number> = new Uint8Array(w * h)) =>
    ({ width: w, height: h, data }) as GrayImage;
  const a = img(8, 8);
  assert.throws(() => opticalFlowTVL1(a, img(8, 9)), {
    name: "TypeError",
    message: /prev is 8x8 but next is 8x9/,
  });
  assert.throws(() => opticalFlowTVL1(img(8, 8, new Uint8Array(63)), a), {
    name: "TypeError",
    message: /prev\.data has length 63, expected width\*height = 8\*8 = 64/,
  });
  assert.throws(() => opticalFlowTVL1(a, img(8, 8, new Float64Array(64))), {
    name: "TypeError",
    message: /next\.data must be a Uint8Array or Float32Array, got Float64Array/,
  });
  const nan = new Float32Array(64);
  nan[10] = Number.NaN;
  assert.throws(() => opticalFlowTVL1(img(8, 8, nan), img(8, 8, new Float32Array(64))), {
    name: "RangeError",
    message: /prev\.data\[10\] \(x=2, y=1\) is NaN/,
  });
  assert.throws(() => opticalFlowTVL1(img(1, 8), img(1, 8)), {
    name: "RangeError",
    message: /integers >= 2/,
  });
  assert.throws(() => opticalFlowTVL1(null as unknown as GrayImage, a), { name: "TypeError" });
  assert.throws(
    () =>
      opticalFlowTVL1(a, a, {
        initialFlow: { width: 4, height: 4, u: new Float32Array(16), v: new Float32Array(16) },
      }),
    {
      name: "TypeError",
      message: /initialFlow is 4x4, expected 8x8/,
    },
  );
  assert.throws(() => new DualTVL1(8, 8).calc(a, img(9, 9)), {
    name: "TypeError",
    message: /next is 9x9, expected 8x8/,
  });
});
