import assert from "node:assert/strict";
import { FARNEBACK_DEFAULTS, opticalFlowFarneback } from "../../lib/data/farneback.ts";
import type { GrayImage } from "../../lib/data/types.ts";
import { epe, FLOW_CASES, loadFlowCase } from "./_flow_fixtures.ts";

// opencv.js is a build of OpenCV's own Farneback, so the golden files ask for max |flow - farneback.flow| <= 1e-4
// px (provenance.tolerance.farneback_same_algorithm_port; the 5.0.0 builds agree to below 1e-6 px).
for (const name of FLOW_CASES) {
  Deno.test(`opticalFlowFarneback: ${name} equals OpenCV's flow to 1e-4 px`, async () => {
    const c = await loadFlowCase(name);
    const flow = await opticalFlowFarneback(c.prev, c.next);
    let worst = 0;
    for (let i = 0; i < flow.u.length; i++) {
      worst = Math.max(
        worst,
        Math.abs(flow.u[i] - c.farneback.flow.u[i]),
        Math.abs(flow.v[i] - c.farneback.flow.v[i]),
      );
    }
    assert.ok(worst <= c.tolerance.farnebackPortMaxAbs, `${name}: max |diff| ${worst} px`);
    // And so its accuracy is OpenCV's (interior EPE to the ground truth, 8 px margin).
    assert.ok(Math.abs(epe(flow, c.groundTruth.flow) - c.farneback.epeInterior) < 1e-4);
  });
}

Deno.test("opticalFlowFarneback: defaults are the MER parameters; options and bad input are checked", async () => {
  assert.deepEqual({ ...FARNEBACK_DEFAULTS }, {
    pyrScale: 0.5,
    levels: 3,
    winsize: 15,
    iterations: 3,
    polyN: 5,
    polySigma: 1.2,
    flags: 0,
  });
  const c = await loadFlowCase("translate_64");
  // Float32Array input on the 0..255 scale runs and agrees closely with the uint8 path.
  const f32 = (img: GrayImage): GrayImage => ({ ...img, data: Float32Array.from(img.data) });
  const a = await opticalFlowFarneback(f32(c.prev), f32(c.next));
  assert.ok(epe(a, c.farneback.flow, 0) < 1e-3);
  const g = await opticalFlowFarneback(c.prev, c.next, { flags: 256, polyN: 7, polySigma: 1.5 });
  assert.notDeepEqual(g.u, c.farneback.flow.u);

  await assert.rejects(() => opticalFlowFarneback(c.prev, f32(c.next)), {
    name: "TypeError",
    message: /prev\.data is a Uint8Array but next\.data is a Float32Array/,
  });
  await assert.rejects(
    () => opticalFlowFarneback(c.prev, { ...c.next, width: 32, data: new Uint8Array(32 * 64) }),
    {
      name: "TypeError",
      message: /prev is 64x64 but next is 32x64/,
    },
  );
  await assert.rejects(() => opticalFlowFarneback(c.prev, c.next, { polyN: 6 }), {
    name: "RangeError",
    message: /polyN must be 5 or 7, got 6/,
  });
  await assert.rejects(() => opticalFlowFarneback(c.prev, c.next, { winSize: 15 } as never), {
    name: "RangeError",
    message: /unknown option 'winSize'/,
  });
  await assert.rejects(() => opticalFlowFarneback(c.prev, c.next, { flags: 4 }), { name: "RangeError" });
});
