import assert from "node:assert/strict";
import { imageDataUrl, roundSig, subplotGrid, toRows } from "../../lib/viz/grid.ts";
import { decodeImage } from "../../lib/data/image_io.ts";
import { Buffer } from "node:buffer";

Deno.test("subplotGrid: row-major cells, non-overlapping domains, titles as annotations", () => {
  const g = subplotGrid(5, { cols: 3, titles: ["a", "b", "c", "d", "e"], hGap: 0.05, vGap: 0.1 });
  assert.equal(g.rows, 2);
  assert.deepEqual(g.cells.map((c) => c.x), ["x", "x2", "x3", "x4", "x5"]);
  const xa = g.layout.xaxis2 as { domain: number[]; anchor: string };
  assert.equal(xa.anchor, "y2");
  const w = (1 - 2 * 0.05) / 3;
  assert.ok(Math.abs(xa.domain[0] - (w + 0.05)) < 1e-12 && Math.abs(xa.domain[1] - (2 * w + 0.05)) < 1e-12);
  const y4 = (g.layout.yaxis4 as { domain: number[] }).domain;
  assert.ok(Math.abs(y4[0]) < 1e-12 && Math.abs(y4[1] - 0.45) < 1e-12); // second row: [0, (1 - 0.1) / 2]
  assert.deepEqual((g.layout.annotations as { text: string }[]).map((a) => a.text), [
    "a",
    "b",
    "c",
    "d",
    "e",
  ]);
  const img = subplotGrid(1, { image: true });
  assert.equal((img.layout.yaxis as { autorange: string }).autorange, "reversed");
  assert.throws(() => subplotGrid(0), RangeError);
});

Deno.test("toRows / roundSig", () => {
  assert.deepEqual(toRows([1, 2, 3, 4, 5, 6], 3, 2), [[1, 2, 3], [4, 5, 6]]);
  assert.equal(roundSig(3.14159265, 3), 3.14);
  assert.ok(Number.isNaN(roundSig(Infinity)));
  assert.throws(() => toRows([1, 2], 2, 2), { name: "RangeError", message: /expected width\*height = 4/ });
});

Deno.test("imageDataUrl: PNG data URL that decodes back; float gray is min-max scaled", () => {
  const url = imageDataUrl({ width: 2, height: 1, data: new Float32Array([-1, 3]) });
  assert.ok(url.startsWith("data:image/png;base64,"));
  const back = decodeImage(new Uint8Array(Buffer.from(url.slice(22), "base64")), "x.png");
  assert.deepEqual([back.width, back.height], [2, 1]);
  assert.deepEqual([...back.data], [0, 0, 0, 255, 255, 255]);
  assert.throws(() => imageDataUrl({ width: 2, height: 2, data: new Uint8Array(5) }), {
    name: "TypeError",
    message: /5 values/,
  });
});
