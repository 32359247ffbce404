/**
 * WeightEma against a float64 recurrence written out here, on both of its paths (host arrays on cpu, tf ops),
 * and trainModel's `ema` option against the same recurrence over the weights it reports after every step.
 * Tolerance 1e-6 absolute on O(1) values: a handful of float32 roundings per update.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { WeightEma } from "../../lib/train/ema.ts";
import { trainModel } from "../../lib/train/trainer.ts";
import { assertClose } from "../_util.ts";
import { LinearModel, toyDataset } from "./_fixtures.ts";

/** The recurrence of ema.ts in float64 over a list of snapshots (the first one starts the average). */
function reference(snapshots: number[][], decay: number): number[] {
  let avg = snapshots[0].slice();
  for (let t = 0; t < snapshots.length - 1; t++) {
    const d = Math.min(decay, (1 + t) / (10 + t));
    avg = avg.map((a, k) => d * a + (1 - d) * snapshots[t + 1][k]);
  }
  return avg;
}

for (const hostLoop of [true, false]) {
  Deno.test(`WeightEma (${hostLoop ? "host arrays" : "tf ops"}) follows the warm-up recurrence; swap/restore/commit`, async () => {
    await tf.setBackend("cpu");
    const before = tf.memory().numTensors;
    const [a, b] = tf.tidy(() => [
      tf.variable(tf.randomNormal([3, 4], 0, 1, "float32", 1), true, `ema_a_${hostLoop}`),
      tf.variable(tf.randomNormal([5], 0, 1, "float32", 2), true, `ema_b_${hostLoop}`),
    ]);
    const snaps: number[][] = [[...await a.data(), ...await b.data()]];
    const ema = new WeightEma([a, b], 0.75, { hostLoop });
    assert.equal(ema.nextDecay(), 0.1); // (1 + 0)/(10 + 0)
    for (let t = 1; t <= 30; t++) {
      tf.tidy(() => {
        a.assign(tf.randomNormal([3, 4], t * 0.01, 1, "float32", 10 + t));
        b.assign(tf.randomNormal([5], 0, 1, "float32", 100 + t));
      });
      snaps.push([...await a.data(), ...await b.data()]);
      ema.update();
    }
    assert.equal(ema.updates, 30);
    assert.equal(ema.nextDecay(), 0.75); // (1 + 30)/(10 + 30) = 0.775 > 0.75
    const raw = [...await a.data(), ...await b.data()];
    ema.swapIn();
    assertClose([...await a.data(), ...await b.data()], reference(snaps, 0.75), {
      atol: 1e-6,
      rtol: 0,
      what: "averaged weights",
    });
    assert.throws(() => ema.update(), /swapped in/);
    ema.restore();
    assert.deepEqual([...await a.data(), ...await b.data()], raw, "restore gives back the exact raw weights");
    ema.commit();
    assertClose([...await a.data(), ...await b.data()], reference(snaps, 0.75), {
      atol: 1e-6,
      rtol: 0,
      what: "commit",
    });
    assert.throws(() => ema.swapIn(), /disposed/);
    ema.dispose(); // idempotent
    tf.dispose([a, b]);
    assert.equal(tf.memory().numTensors, before, "no tensors left behind");
  });
}

Deno.test("WeightEma rejects a decay outside (0, 1)", () => {
  const v = tf.variable(tf.zeros([2]));
  for (const d of [0, 1, -0.5, 1.5, NaN]) assert.throws(() => new WeightEma([v], d), RangeError);
  v.dispose();
});

Deno.test("trainModel ema: the trained model holds the average of the per-step weights; memory stays flat", async () => {
  await tf.setBackend("cpu");
  const ds = toyDataset();
  const all = Array.from({ length: ds.n }, (_, i) => i);
  const model = new LinearModel(ds.height * ds.width * 3, 3, 4);
  const snaps: number[][] = [[...await model.w.data(), ...await model.b.data()]];
  const counts: number[] = [];
  await trainModel(
    model,
    ds,
    all.slice(0, 30),
    {
      epochs: 3,
      batchSize: 8,
      lr: 0.05,
      seed: 2,
      ema: 0.8,
      evalSets: [{ name: "val", indices: all.slice(30) }],
    },
    {
      onStep: async () => void snaps.push([...await model.w.data(), ...await model.b.data()]),
      onEpoch: () => void counts.push(tf.memory().numTensors),
    },
  );
  assert.equal(snaps.length, 1 + 3 * 4);
  assertClose([...await model.w.data(), ...await model.b.data()], reference(snaps, 0.8), {
    atol: 1e-6,
    rtol: 0,
    what: "final weights = EMA",
  });
  assert.ok(counts.every((c) => c === counts[0]), `numTensors per epoch: ${counts.join(", ")}`);
  await assert.rejects(
    () => trainModel(model, ds, all, { epochs: 1, ema: 1 }),
    RangeError,
  );
  model.dispose();
});
