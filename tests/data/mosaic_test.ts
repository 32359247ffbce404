import assert from "node:assert/strict";
import { defaultMosaicPoints, htnetMosaic, htnetMosaicBatch } from "../../lib/data/mosaic.ts";

// Channel c of pixel (r, col) holds 1000 * c + 28 * r + col, so every output value names its source.
function indexImage(): Float32Array {
  const x = new Float32Array(28 * 28 * 3);
  for (let r = 0; r < 28; r++) {
    for (let c = 0; c < 28; c++) {
      for (let ch = 0; ch < 3; ch++) x[(r * 28 + c) * 3 + ch] = 1000 * ch + 28 * r + c;
    }
  }
  return x;
}
const src = (v: number) => ({ ch: Math.floor(v / 1000), r: Math.floor((v % 1000) / 28), c: (v % 1000) % 28 });

Deno.test("htnetMosaic: corrected axes cut 14x14 patches centred on the points", () => {
  const x = indexImage();
  const pts = [{ x: 8, y: 9 }, { x: 19, y: 10 }, { x: 14, y: 15 }, { x: 10, y: 20 }, { x: 18, y: 21 }];
  const m = htnetMosaic(x, pts, { axes: "corrected" });
  // Quadrant origins: p0 top-left, p1 top-right, p3 bottom-left, p4 bottom-right; nose unused.
  for (const [k, oy, ox] of [[0, 0, 0], [1, 0, 14], [3, 14, 0], [4, 14, 14]]) {
    for (const [dr, dc] of [[0, 0], [13, 13], [7, 3]]) {
      const v = src(m[((oy + dr) * 28 + ox + dc) * 3 + 2]);
      assert.deepEqual(v, { ch: 2, r: pts[k].y - 7 + dr, c: pts[k].x - 7 + dc });
    }
  }
});

Deno.test("htnetMosaic: htnet axes swap x and y, and coordinates are clamped to [7, 21] and truncated", () => {
  const x = indexImage();
  const pts = [{ x: 3.9, y: 9.7 }, { x: 25, y: 10.2 }, { x: 14, y: 14 }, { x: 10, y: 20 }, { x: 18, y: 21 }];
  const m = htnetMosaic(x, pts, { axes: "htnet" });
  // p0: x clamps to 7 -> row 0..13; y truncates to 9 -> cols 2..15.
  assert.deepEqual(src(m[0]), { ch: 0, r: 0, c: 2 });
  // p1 (top-right quadrant): x 25 -> 21 -> rows 14..27; y 10.2 -> 10 -> cols 3..16.
  assert.deepEqual(src(m[14 * 3]), { ch: 0, r: 14, c: 3 });
  // p4 (bottom-right): rows from x = 18 (11..24), cols from y = 21 (14..27).
  assert.deepEqual(src(m[(27 * 28 + 27) * 3 + 1]), { ch: 1, r: 24, c: 27 });
});

Deno.test("htnetMosaicBatch: per-batch and per-sample points; errors", () => {
  const one = indexImage();
  const x = new Float32Array(2 * one.length);
  x.set(one, 0);
  x.set(one.map((v) => -v), one.length);
  const pts = defaultMosaicPoints(28);
  const out = htnetMosaicBatch(x, 2, pts, { axes: "corrected" });
  const single = htnetMosaic(one, pts, { axes: "corrected" });
  assert.deepEqual(out.subarray(0, one.length), single);
  assert.deepEqual(out.subarray(one.length), single.map((v) => -v));
  const per = htnetMosaicBatch(x, 2, [pts, pts], { axes: "corrected" });
  assert.deepEqual(per, out);
  assert.throws(() => htnetMosaic(new Float32Array(10), pts), TypeError);
  assert.throws(() => htnetMosaic(one, pts.slice(0, 3)), TypeError);
  assert.throws(() => htnetMosaicBatch(x, 2, [pts]), TypeError);
  // The default points of an aligned input: eyes in the upper half, mouth corners in the lower half.
  assert.ok(pts[0].y < 14 && pts[1].y < 14 && pts[3].y > 14 && pts[4].y > 14);
  assert.ok(pts[0].x < pts[1].x && pts[3].x < pts[4].x);
});
