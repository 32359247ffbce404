import assert from "node:assert/strict";
import { COLOR_WHEEL, colorWheelImage, flowToRgb, flowVectorColor } from "../../lib/viz/flow_color.ts";

Deno.test("colour wheel: 55 Middlebury entries, red → yellow → green → cyan → blue → magenta", () => {
  assert.equal(COLOR_WHEEL.length, 55);
  assert.deepEqual(COLOR_WHEEL[0], [1, 0, 0]); // red
  assert.deepEqual(COLOR_WHEEL[15], [1, 1, 0]); // yellow after RY = 15 steps
  assert.deepEqual(COLOR_WHEEL[21], [0, 1, 0]); // green after YG = 6
  assert.deepEqual(COLOR_WHEEL[25], [0, 1, 1]); // cyan after GC = 4
  assert.deepEqual(COLOR_WHEEL[36], [0, 0, 1]); // blue after CB = 11
  assert.deepEqual(COLOR_WHEEL[49], [1, 0, 1]); // magenta after BM = 13
});

Deno.test("flowVectorColor: direction sets the hue, magnitude the saturation", () => {
  assert.deepEqual(flowVectorColor(0, 0), [255, 255, 255]); // no motion = white
  assert.deepEqual(flowVectorColor(1, 0), [255, 0, 0]); // right = red
  // left: a = 0, k = 27 = CB segment step 2: (0, 1 - 2/11, 1)
  assert.deepEqual(flowVectorColor(-1, 0), [0, Math.round(255 * (1 - 2 / 11)), 255]);
  // half magnitude to the right: halfway to white
  assert.deepEqual(flowVectorColor(0.5, 0), [255, 128, 128]);
  // beyond the rim: darkened by 0.75
  assert.deepEqual(flowVectorColor(2, 0), [191, 0, 0]);
  assert.deepEqual(flowVectorColor(NaN, 0), [0, 0, 0]);
});

Deno.test("flowToRgb normalises by the largest magnitude unless maxMagnitude is given", () => {
  const flow = { width: 3, height: 1, u: new Float32Array([0, 2, 4]), v: new Float32Array(3) };
  const a = flowToRgb(flow);
  assert.equal(a.maxMagnitude, 4);
  assert.deepEqual([...a.image.data], [255, 255, 255, 255, 128, 128, 255, 0, 0]);
  const b = flowToRgb(flow, { maxMagnitude: 2 });
  assert.deepEqual([...b.image.data.subarray(3)], [255, 0, 0, 191, 0, 0]);
  assert.throws(() => flowToRgb(flow, { maxMagnitude: 0 }), { name: "RangeError", message: /maxMagnitude/ });
  assert.throws(() => flowToRgb({ ...flow, v: new Float32Array(2) }), {
    name: "TypeError",
    message: /length 3/,
  });
});

Deno.test("colorWheelImage: white outside the disc, red at the right rim, white centre", () => {
  const img = colorWheelImage(21);
  const px = (x: number, y: number) => [...img.data.subarray(3 * (y * 21 + x), 3 * (y * 21 + x) + 3)];
  assert.deepEqual(px(0, 0), [255, 255, 255]);
  assert.deepEqual(px(10, 10), [255, 255, 255]);
  assert.deepEqual(px(20, 10), [255, 0, 0]);
});
