import assert from "node:assert/strict";
import { flowToInput } from "../../lib/data/flow_input.ts";
import { resizeArea } from "../../lib/data/image.ts";
import { opticalStrain } from "../../lib/data/strain.ts";
import type { Flow } from "../../lib/data/types.ts";
import { assertClose } from "../_util.ts";
import { loadFlowCase } from "./_flow_fixtures.ts";

/** Channel c of a [size, size, 3] array. */
function channel(x: Float32Array, c: number): Float32Array {
  return x.filter((_, i) => i % 3 === c);
}

function minMaxRef(a: Float32Array): Float32Array {
  let lo = Infinity, hi = -Infinity;
  for (const v of a) (lo = Math.min(lo, v), hi = Math.max(hi, v));
  return a.map((v) => (v - lo) / (hi - lo));
}

Deno.test("flowToInput: (u, v, strain) channels-last, each min-max normalised, at full size", async () => {
  const c = await loadFlowCase("translate_64");
  const flow = c.tvl1.flow;
  const x = flowToInput(flow, { size: 64 });
  assert.equal(x.length, 64 * 64 * 3);
  // No resize at the native size: exactly the per-channel min-max of u, v and the numpy.gradient strain.
  assert.deepEqual(channel(x, 0), minMaxRef(flow.u));
  assert.deepEqual(channel(x, 1), minMaxRef(flow.v));
  assert.deepEqual(channel(x, 2), minMaxRef(opticalStrain(flow)));
  for (let ch = 0; ch < 3; ch++) {
    const p = channel(x, ch);
    assert.equal(Math.min(...p), 0);
    assert.equal(Math.max(...p), 1);
  }
});

Deno.test("flowToInput: area resize of the normalised planes (28 x 28, the STSTNet size)", async () => {
  const c = await loadFlowCase("warp_128");
  const flow = c.tvl1.flow;
  const x = flowToInput(flow, { size: 28 });
  const planes = [flow.u, flow.v, opticalStrain(flow)];
  for (let ch = 0; ch < 3; ch++) {
    const want = resizeArea({ width: 128, height: 128, data: minMaxRef(planes[ch]) }, 28, 28).data;
    assertClose(channel(x, ch), want, { atol: 1e-7, rtol: 0, what: `channel ${ch}` });
    assert.ok(channel(x, ch).every((v) => v >= 0 && v <= 1));
  }
  // Area averaging of 128 -> 64 is the mean of each 2x2 block (checked on u by hand).
  const small = flowToInput(flow, { size: 64, normalise: false });
  const u = flow.u;
  const mean = (u[0] + u[1] + u[128] + u[129]) / 4;
  assert.ok(Math.abs(small[0] - mean) < 1e-6);
});

Deno.test("flowToInput: options (precomputed strain, no normalisation, bilinear, constant channel)", () => {
  const w = 6, h = 4;
  const u = new Float32Array(w * h).map((_, i) => 0.5 * (i % w));
  const v = new Float32Array(w * h).fill(0.25);
  const flow: Flow = { width: w, height: h, u, v };
  const strain = new Float32Array(w * h).map((_, i) => i);
  const raw = flowToInput(flow, { size: 6, strain, normalise: false, resize: "bilinear" });
  // 6x4 -> 6x6 enlarges rows: bilinear. u depends on x only, so its rows are unchanged.
  assert.deepEqual(Array.from(channel(raw, 0).subarray(0, 6)), [0, 0.5, 1, 1.5, 2, 2.5]);
  assert.ok(channel(raw, 1).every((a) => a === 0.25));
  // A constant channel normalises to 0 (not NaN).
  const norm = flowToInput(flow, { size: 3 });
  assert.ok(channel(norm, 1).every((a) => a === 0));
  // The precomputed strain is used as given.
  const s = flowToInput(flow, { size: 6, strain, normalise: false, resize: "bilinear" });
  assert.equal(channel(s, 2)[0], 0);
  assert.ok(Math.abs(channel(s, 2)[35] - 23) < 1e-5);
});

Deno.test("flowToInput: third channel as flow magnitude (HTNet's CAS(ME)^3 variant)", () => {
  const w = 3, h = 2;
  const flow: Flow = {
    width: w,
    height: h,
    u: Float32Array.from([3, 0, 1, 0, 6, 0]),
    v: Float32Array.from([4, 0, 0, 1, 8, 2]),
  };
  const x = flowToInput(flow, { size: 3, third: "magnitude", normalise: false, resize: "bilinear" });
  // 3x2 -> 3x3 enlarges rows only: the first output row is the first input row, magnitudes 5, 0, 1.
  assert.deepEqual(Array.from(channel(x, 2).subarray(0, 3)), [5, 0, 1]);
  assert.throws(
    () => flowToInput(flow, { size: 3, third: "magnitude", strain: new Float32Array(6) }),
    RangeError,
  );
});

Deno.test("flowToInput: bad input gets a clear error", () => {
  const flow: Flow = { width: 4, height: 4, u: new Float32Array(16), v: new Float32Array(16) };
  assert.throws(() => flowToInput(flow, { size: 0 }), {
    name: "RangeError",
    message: /size must be a positive integer, got 0/,
  });
  assert.throws(() => flowToInput(flow, { size: 2.5 }), { name: "RangeError" });
  assert.throws(() => flowToInput(flow, { size: 2, resize: "cubic" as "area" }), {
    name: "RangeError",
    message: /resize must be/,
  });
  assert.throws(() => flowToInput(flow, { size: 2, strain: new Float32Array(15) }), {
    name: "TypeError",
    message: /strain must be a Float32Array of length width\*height = 16, got length 15/,
  });
  assert.throws(() => flowToInput({ ...flow, u: new Float32Array(15) }, { size: 2 }), {
    name: "TypeError",
    message: /flowToInput: flow\.u has length 15/,
  });
  const bad = new Float32Array(16);
  bad[3] = Number.POSITIVE_INFINITY;
  assert.throws(() => flowToInput({ ...flow, v: bad }, { size: 2 }), {
    name: "RangeError",
    message: /v\[3\] is Infinity/,
  });
  assert.throws(() => flowToInput(flow, undefined as never), {
    name: "TypeError",
    message: /options must be an object/,
  });
});
