import assert from "node:assert/strict";
import { receptiveFieldFigure, scanOrderFigure, scanReach } from "../../lib/viz/scan_order.ts";

Deno.test("scanOrderFigure: one path per order following the scan permutation", () => {
  const fig = scanOrderFigure("bilateral3", { rows: 2, cols: 3 });
  const paths = fig.data.filter((t) => t.name === "path");
  assert.equal(paths.length, 3);
  // row++ : raster; col++ : down columns; col+- : up columns
  assert.deepEqual([paths[0].x, paths[0].y], [[0, 1, 2, 0, 1, 2], [0, 0, 0, 1, 1, 1]]);
  assert.deepEqual([paths[1].x, paths[1].y], [[0, 0, 1, 1, 2, 2], [0, 1, 0, 1, 0, 1]]);
  assert.deepEqual([paths[2].x, paths[2].y], [[0, 0, 1, 1, 2, 2], [1, 0, 1, 0, 1, 0]]);
  assert.deepEqual((fig.layout!.annotations as { text: string }[]).map((a) => a.text), [
    "row++",
    "col++",
    "col+-",
  ]);
  assert.throws(() => scanOrderFigure("nope" as never), RangeError);
  assert.throws(() => scanOrderFigure("raster", { rows: 0 }), { name: "RangeError", message: /rows/ });
});

Deno.test("scanReach: bilateral3 lets the centre of a 3x3 window see more than raster", () => {
  // raster: the centre (1,1) = step 4 sees tokens 0..4
  assert.deepEqual(Array.from(scanReach("raster", 3, 3, [1, 1])), [1, 1, 1, 1, 1, 0, 0, 0, 0]);
  // + col++ (sees columns 0 and (0..1,1)) + col+- (column 0 and (1..2, 1))
  assert.deepEqual(Array.from(scanReach("bilateral3", 3, 3, [1, 1])), [3, 2, 1, 3, 3, 0, 2, 1, 0]);
  assert.throws(() => scanReach("raster", 3, 3, [3, 0]), { name: "RangeError", message: /inside 3x3/ });
});

Deno.test("receptiveFieldFigure: one heat map per set, coverage in the titles", () => {
  const fig = receptiveFieldFigure(["raster", "bilateral3"], { rows: 3, cols: 3, query: [1, 1] });
  assert.deepEqual(fig.data.map((t) => t.type), ["heatmap", "scatter", "heatmap", "scatter"]);
  const titles = (fig.layout!.annotations as { text: string }[]).map((a) => a.text);
  assert.deepEqual(titles, ["raster<br>sees 5/9 tokens", "bilateral3<br>sees 7/9 tokens"]);
});
