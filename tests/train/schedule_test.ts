import assert from "node:assert/strict";
import { warmupCosine } from "../../lib/train/schedule.ts";
import { assertClose } from "../_util.ts";

Deno.test("warmupCosine: linear warmup, cosine to minLr", () => {
  const lr = warmupCosine({ baseLr: 1, totalSteps: 12, warmupSteps: 4, minLr: 0.1 });
  // warmup: (step+1)/W
  assertClose([0, 1, 2, 3].map(lr), [0.25, 0.5, 0.75, 1], { atol: 1e-15, rtol: 0 });
  // cosine over T - W = 8 steps: p = (s - 4)/8
  const cos = [4, 6, 8, 12].map((s) => 0.1 + 0.45 * (1 + Math.cos(Math.PI * Math.min(1, (s - 4) / 8))));
  assertClose([4, 6, 8, 12].map(lr), cos, { atol: 1e-15, rtol: 0 });
  assert.equal(lr(8), 0.55); // half-way: midpoint of [0.1, 1]
  assert.equal(lr(100), 0.1); // past the end: floor
  // monotone non-increasing after warmup
  for (let s = 4; s < 12; s++) assert.ok(lr(s + 1) <= lr(s));
});

Deno.test("warmupCosine: no warmup starts at the peak; bad options throw RangeError", () => {
  assert.equal(warmupCosine({ baseLr: 0.01, totalSteps: 5 })(0), 0.01);
  assert.throws(() => warmupCosine({ baseLr: -1, totalSteps: 5 }), RangeError);
  assert.throws(() => warmupCosine({ baseLr: 1, totalSteps: 0 }), /totalSteps = 0/);
  assert.throws(() => warmupCosine({ baseLr: 1, totalSteps: 5, warmupSteps: 6 }), /warmupSteps = 6/);
  assert.throws(() => warmupCosine({ baseLr: 1, totalSteps: 5, minLr: 2 }), /minLr = 2/);
});
