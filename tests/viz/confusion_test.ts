import assert from "node:assert/strict";
import { confusionFigure } from "../../lib/viz/confusion.ts";

Deno.test("confusionFigure: row rates coloured, counts written, true on y (top to bottom)", () => {
  const fig = confusionFigure([[3, 1, 0], [0, 4, 0], [2, 0, 0]], ["neg", "pos", "sur"], { title: "LOSO" });
  const t = fig.data[0] as Record<string, unknown>;
  assert.deepEqual(t.z, [[0.75, 0.25, 0], [0, 1, 0], [1, 0, 0]]);
  assert.deepEqual((t.text as string[][])[0], ["3<br>75%", "1<br>25%", "0<br>0%"]);
  assert.deepEqual(t.y, ["neg", "pos", "sur"]);
  assert.equal((fig.layout!.yaxis as { autorange: string }).autorange, "reversed");
  const counts = confusionFigure([[3, 1], [0, 0]], ["a", "b"], { normalise: false });
  assert.deepEqual(counts.data[0].z, [[3, 1], [0, 0]]);
  assert.match(JSON.stringify(counts.layout!.title), /3\/4 correct/);
  assert.throws(() => confusionFigure([[1, 2]], ["a", "b"]), { name: "TypeError", message: /2x2/ });
});
