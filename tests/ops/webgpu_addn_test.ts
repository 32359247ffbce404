import * as tf from "@tensorflow/tfjs";
import { deepStrictEqual, equal, match, ok } from "node:assert/strict";
import { assertClose, gpu } from "../_util.ts";
import { installWebGPUAddNSplit, webgpuAddNMaxInputs } from "../../lib/ops/webgpu_addn.ts";
import { globalNorm } from "../../lib/train/optimizer.ts";
import { trainModel } from "../../lib/train/trainer.ts";
import { createMerba } from "../../lib/models/merba.ts";
import type { FlowDataset } from "../../lib/data/types.ts";
import {
  recordWebGPUError,
  watchWebGPUErrors,
  webgpuErrorCount,
  webgpuErrorsSince,
  WebGPUValidationError,
} from "../../lib/ops/webgpu_errors.ts";
import { LinearModel } from "../train/_fixtures.ts";

Deno.test("webgpuAddNMaxInputs: the device's storage-buffer limit minus the output, 7 when unknown", () => {
  equal(webgpuAddNMaxInputs({ device: { limits: { maxStorageBuffersPerShaderStage: 8 } } }), 7);
  equal(webgpuAddNMaxInputs({ device: { limits: { maxStorageBuffersPerShaderStage: 10 } } }), 9);
  equal(webgpuAddNMaxInputs({}), 7);
  equal(webgpuAddNMaxInputs({ device: { limits: { maxStorageBuffersPerShaderStage: 1 } } }), 2);
});

Deno.test({
  name: "webgpu addN past the storage-buffer limit equals the cpu sum and leaks nothing",
  ignore: !gpu,
  async fn() {
    await tf.setBackend("webgpu");
    installWebGPUAddNSplit(); // idempotent: already installed on import
    const limit = webgpuAddNMaxInputs(tf.backend());
    for (const n of [2, limit, limit + 1, 2 * limit + 3, 72]) {
      const parts = Array.from({ length: n }, (_, i) => tf.randomUniform([5, 3], -1, 1, "float32", 100 + i));
      const host = await Promise.all(parts.map((p) => p.data()));
      const want = new Float64Array(15);
      for (const h of host) h.forEach((v, j) => (want[j] += v));
      const before = tf.memory().numTensors;
      const got = tf.addN(parts);
      assertClose(await got.data(), want, { atol: 1e-5, rtol: 1e-6, what: `addN of ${n}` });
      got.dispose();
      equal(tf.memory().numTensors, before, `addN of ${n} left tensors behind`);
      tf.dispose(parts);
    }
    // scalars, as in globalNorm over merba-tiny's 72 gradients: was read back as 0 / a stale value
    const grads = Object.fromEntries(
      Array.from({ length: 72 }, (_, i) => [`g${i}`, tf.fill([3], (i % 5) + 1)]),
    ) as tf.NamedTensorMap;
    const sumsq = Array.from({ length: 72 }, (_, i) => 3 * ((i % 5) + 1) ** 2).reduce((a, b) => a + b, 0);
    const norm = globalNorm(grads);
    assertClose(await norm.data(), [Math.sqrt(sumsq)], { atol: 0, rtol: 1e-6, what: "global norm" });
    tf.dispose([norm, ...Object.values(grads)]);
    await tf.setBackend("cpu");
  },
});

Deno.test({
  name: "trainModel on webgpu follows cpu step by step (loss and gradient norm of the first 8 steps)",
  ignore: !gpu,
  async fn() {
    const n = 24;
    const ds: FlowDataset = {
      name: "steps",
      n,
      height: 16,
      width: 16,
      x: Float32Array.from({ length: n * 16 * 16 * 3 }, (_, i) => 0.5 + 0.5 * Math.sin(i * 0.37 + (i % 7))),
      fine: Int32Array.from({ length: n }, (_, i) => i % 5),
      subjects: Array.from({ length: n }, (_, i) => `s${i % 3}`),
      classes: {
        fine: ["disgust", "repression", "happiness", "surprise", "others"],
        coarse: ["negative", "positive", "surprise", "others"],
        fineToCoarse: [0, 0, 1, 2, 3],
      },
    } as unknown as FlowDataset;
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      const m = createMerba("merba-test", { seed: 3 });
      const steps: [number, number][] = [];
      await trainModel(m, ds, Array.from({ length: n }, (_, i) => i), { epochs: 1, batchSize: 3, lr: 5e-3 }, {
        onStep: (s) => void steps.push([s.loss, s.gradNorm]),
      });
      m.dispose();
      return steps;
    };
    const c = await run("cpu");
    const g = await run("webgpu");
    deepStrictEqual(g.length, 8);
    ok(c.every(([l, gn]) => l > 0.5 && gn > 0), `cpu steps ${JSON.stringify(c)}`);
    // float32 on both with different reduction orders; the differences compound over the steps (1e-3 relative)
    assertClose(g.map((s) => s[0]), c.map((s) => s[0]), { atol: 1e-4, rtol: 1e-3, what: "step losses" });
    assertClose(g.map((s) => s[1]), c.map((s) => s[1]), { atol: 1e-4, rtol: 1e-3, what: "gradient norms" });
    await tf.setBackend("cpu");
  },
});

Deno.test("trainModel stops with WebGPUValidationError when WebGPU reported an error", async () => {
  // the count is process-wide; an error recorded during training (as a device event would be) stops the next step
  const n = 12;
  const ds = {
    name: "err",
    n,
    height: 2,
    width: 2,
    x: new Float32Array(n * 12).fill(0.5),
    fine: Int32Array.from({ length: n }, (_, i) => i % 3),
    classes: { fine: ["a", "b", "c"], coarse: ["a", "b", "c"], fineToCoarse: [0, 1, 2] },
  } as unknown as FlowDataset;
  const model = new LinearModel(12, 3, 1);
  let caught: unknown;
  try {
    await trainModel(model, ds, Array.from({ length: n }, (_, i) => i), { epochs: 2, batchSize: 4 }, {
      onStep: (s) => {
        if (s.globalStep === 1) recordWebGPUError("Error while parsing WGSL: test\nsecond line");
      },
    });
  } catch (e) {
    caught = e;
  }
  ok(caught instanceof WebGPUValidationError, String(caught));
  match(caught.message, /training stopped at epoch 1, step 3\/3: WebGPU reported 1 error\(s\)/);
  match(caught.message, /First: Error while parsing WGSL: test\. Run on the cpu backend/);
  equal(caught.errors.length, 1);
  equal(webgpuErrorsSince(webgpuErrorCount() - 1)[0].message, "Error while parsing WGSL: test\nsecond line");
  model.dispose();
});

Deno.test({
  name: "a WebGPU validation error on the device reaches the watcher (once printed, counted)",
  ignore: !gpu,
  async fn() {
    await tf.setBackend("webgpu");
    const device = (tf.backend() as unknown as { device: GPUDevice }).device;
    watchWebGPUErrors(device);
    watchWebGPUErrors(device); // idempotent: one listener
    const mark = webgpuErrorCount();
    device.createShaderModule({ code: "this is not WGSL" });
    for (let i = 0; i < 50 && webgpuErrorCount() === mark; i++) await new Promise((r) => setTimeout(r, 20));
    const errs = webgpuErrorsSince(mark);
    equal(errs.length, 1);
    match(errs[0].message, /pars/i);
    await tf.setBackend("cpu");
  },
});
