import assert from "node:assert/strict";
import { opticalStrain } from "../../lib/data/strain.ts";
import type { Flow } from "../../lib/data/types.ts";
import { assertClose } from "../_util.ts";
import { FLOW_CASES, loadFlowCase } from "./_flow_fixtures.ts";

// The golden strain was computed by numpy.gradient in float64 from each stored float32 flow; tolerance from the
// files (atol 1e-5, rtol 1e-4): an exact-arithmetic check of the formula and the border rule.
for (const name of FLOW_CASES) {
  Deno.test(`opticalStrain: ${name} matches numpy.gradient strain of every stored flow`, async () => {
    const c = await loadFlowCase(name);
    for (
      const [what, m] of [["ground_truth", c.groundTruth], ["tvl1", c.tvl1], [
        "farneback",
        c.farneback,
      ]] as const
    ) {
      assertClose(opticalStrain(m.flow), m.strain, { ...c.tolerance.strain, what: `${name} ${what} strain` });
    }
  });
}

Deno.test("opticalStrain: border variants by hand on a 3x3 flow", () => {
  // u = x^2 along columns, v = 0: u_x central = [1, 2, 3] (numpy: f1-f0, (f2-f0)/2, f2-f1),
  // forward = [1, 3, 3], backward = [0, 1, 3]; the strain is |u_x| (u_y = v_x = v_y = 0).
  const w = 3, h = 3;
  const u = new Float32Array(w * h).map((_, i) => (i % w) ** 2);
  const flow: Flow = { width: w, height: h, u, v: new Float32Array(w * h) };
  const row = (a: Float32Array) => Array.from(a.subarray(0, 3));
  assert.deepEqual(row(opticalStrain(flow)), [1, 2, 3]);
  assert.deepEqual(row(opticalStrain(flow, { differences: "forward" })), [1, 3, 3]);
  assert.deepEqual(row(opticalStrain(flow, { differences: "backward" })), [0, 1, 3]);
  // Shear u = y: u_y = 1, so strain = sqrt(0.5 * 1) everywhere (central).
  const shear: Flow = {
    width: w,
    height: h,
    u: new Float32Array(w * h).map((_, i) => Math.floor(i / w)),
    v: new Float32Array(9),
  };
  assert.ok(opticalStrain(shear).every((e) => Math.abs(e - Math.SQRT1_2) < 1e-7));
});

Deno.test("opticalStrain: bad input gets a clear error", () => {
  const ok = new Float32Array(6);
  assert.throws(() => opticalStrain({ width: 3, height: 2, u: ok, v: new Float32Array(5) }), {
    name: "TypeError",
    message: /flow\.v has length 5, expected width\*height = 3\*2 = 6/,
  });
  assert.throws(
    () => opticalStrain({ width: 3, height: 2, u: [0, 0, 0, 0, 0, 0] as unknown as Float32Array, v: ok }),
    {
      name: "TypeError",
      message: /flow\.u must be a Float32Array, got Array/,
    },
  );
  assert.throws(() => opticalStrain({ width: 6, height: 1, u: ok, v: ok }), {
    name: "RangeError",
    message: />= 2/,
  });
  assert.throws(
    () => opticalStrain({ width: 3, height: 2, u: ok, v: ok }, { differences: "sobel" as "central" }),
    { name: "RangeError", message: /differences must be one of central, forward, backward/ },
  );
});
