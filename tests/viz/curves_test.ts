import assert from "node:assert/strict";
import { LiveCurves, trainingCurvesFigure } from "../../lib/viz/curves.ts";

Deno.test("trainingCurvesFigure: losses left, metrics right, lr and times left out", () => {
  const h = [
    { epoch: 1, loss: 1.2, valLoss: 1.3, uf1: 0.2, uar: 0.3, lr: 1e-3, timeMs: 50 },
    { epoch: 2, loss: 0.9, valLoss: 1.1, uf1: 0.4, uar: 0.45, lr: 5e-4, timeMs: 48 },
  ];
  const fig = trainingCurvesFigure(h, { epochs: 10 });
  assert.deepEqual(fig.data.map((t) => [t.name, t.xaxis]), [["loss", "x"], ["valLoss", "x"], ["uf1", "x2"], [
    "uar",
    "x2",
  ]]);
  assert.deepEqual(fig.data[1].y, [1.3, 1.1]);
  assert.deepEqual((fig.data[1].line as { dash: string }).dash, "dash");
  assert.deepEqual((fig.layout!.xaxis as { range: number[] }).range, [0, 10.5]);
  assert.throws(() => trainingCurvesFigure([{ loss: 1 } as never]), {
    name: "TypeError",
    message: /history\[0\]\.epoch/,
  });
});

Deno.test("LiveCurves keeps its own copy of the history", async () => {
  const orig = console.log;
  console.log = () => {};
  try {
    const live = new LiveCurves({ metrics: ["uf1"] });
    const rec = { epoch: 1, loss: 1, uf1: 0.5 };
    await live.push(rec);
    rec.loss = 99;
    await live.push({ epoch: 2, loss: 0.5, uf1: 0.6 });
    assert.deepEqual(live.figure().data[0].y, [1, 0.5]);
    assert.deepEqual(live.figure().data.map((t) => t.name), ["loss", "uf1"]);
  } finally {
    console.log = orig;
  }
});

Deno.test("trainingCurvesFigure takes the trainer's EpochLog: eval sets flattened, bookkeeping skipped", () => {
  const log = (epoch: number, loss: number, uf1: number) => ({
    epoch,
    epochs: 3,
    loss,
    trainAccuracy: 0.5,
    lr: 1e-3,
    seconds: 2,
    samplesPerSec: 40,
    eval: { test: { uf1, uar: uf1, accuracy: 0.6, yPred: [0, 1] } },
  });
  const fig = trainingCurvesFigure([log(1, 1.5, 0.2), log(2, 1.1, 0.35)]);
  assert.deepEqual(fig.data.map((t) => t.name), [
    "loss",
    "trainAccuracy",
    "test uf1",
    "test uar",
    "test accuracy",
  ]);
  assert.deepEqual(fig.data[2].y, [0.2, 0.35]);
});
