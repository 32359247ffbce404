/**
 * One training step of a MERba variant (forward + backward + Adam update), batch 32, per backend.
 *
 * Prints parameters, wall ms/step (median), samples/s, process CPU time per step (median) (user + system, `process.cpuUsage`:
 * on a shared machine the wall time includes waiting for a core; CPU time does not, and for the
 * single-threaded cpu backend it is the uncontended step time), peak tf.memory() per backend, and the ratio to a baseline
 * measured in the same run: the same step on a single 3x3 conv + GAP + linear classifier ("linear probe").
 *
 *   deno run -A bench/train_step_bench.ts [--model merba-tiny] [--batch 32] [--steps 10] [--backends cpu,webgpu,wasm]
 *     [--scanSet vmamba4] [--overrides '{"mlpRatio": 1}'] [--wasmMatmul]
 *
 * `--wasmMatmul`: on the cpu backend, time the model with the JS kernels and with `enableWasmMatmul()`
 * (linear, conv3x3 and attention products through XNNPACK, lib/layers/fused_matmul.ts), alternating every
 * step in the same run (two rows).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import process from "node:process";
import { parseArgs } from "node:util";
import { hasWebGPU } from "../lib/backend.ts";
import { createMerba } from "../lib/models/merba.ts";
import { disableWasmMatmul, enableWasmMatmul } from "../lib/layers/fused_matmul.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string", default: "merba-tiny" },
    batch: { type: "string", default: "32" },
    steps: { type: "string", default: "10" },
    warmup: { type: "string", default: "3" },
    backends: { type: "string", default: "cpu,webgpu" },
    scanSet: { type: "string" },
    overrides: { type: "string" },
    wasmMatmul: { type: "boolean", default: false },
  },
});
const batch = Number(values.batch);
const steps = Number(values.steps);
const warmup = Number(values.warmup);

interface Row {
  backend: string;
  what: string;
  params: number;
  msPerStep: number;
  cpuMsPerStep: number;
  samplesPerSec: number;
  peakBytes: number;
  peakTensors: number;
}

type StepFn = (x: tf.Tensor4D, y: tf.Tensor1D) => tf.Scalar;

async function timeSteps(step: StepFn, vars: tf.Variable[], h: number, w: number, nClasses: number) {
  const opt = tf.train.adam(1e-3);
  const x = tf.randomUniform([batch, h, w, 3]) as tf.Tensor4D;
  const y = tf.randomUniform([batch], 0, nClasses, "int32") as tf.Tensor1D;
  let peakBytes = 0;
  let peakTensors = 0;
  const one = async () => {
    const { value, grads } = tf.variableGrads(() => step(x, y), vars);
    const m = tf.memory();
    peakBytes = Math.max(peakBytes, m.numBytes);
    peakTensors = Math.max(peakTensors, m.numTensors);
    opt.applyGradients(grads as never);
    await value.data(); // sync point: the step is finished
    tf.dispose([value, ...Object.values(grads)]);
  };
  for (let i = 0; i < warmup; i++) await one();
  // per-step medians: robust against other jobs on a shared machine
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await one();
    const c1 = process.cpuUsage(c0);
    walls.push(performance.now() - t0);
    cpus.push((c1.user + c1.system) / 1000);
  }
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const ms = median(walls);
  const cpuMs = median(cpus);
  opt.dispose();
  tf.dispose([x, y]);
  return { ms, cpuMs, peakBytes, peakTensors };
}

/**
 * `--wasmMatmul`: the same step alternately with the JS kernels and with `enableWasmMatmul()`, switching
 * every step (one optimiser, same data), so both variants see the same load; per-variant medians.
 */
async function timeInterleaved(step: StepFn, vars: tf.Variable[], h: number, w: number, nClasses: number) {
  const opt = tf.train.adam(1e-3);
  const x = tf.randomUniform([batch, h, w, 3]) as tf.Tensor4D;
  const y = tf.randomUniform([batch], 0, nClasses, "int32") as tf.Tensor1D;
  const variants = [
    { variant: " (JS kernels, steps interleaved)", on: false },
    { variant: " + wasm matmul (steps interleaved)", on: true },
  ].map((v) => ({ ...v, walls: [] as number[], cpus: [] as number[], peakBytes: 0, peakTensors: 0 }));
  const one = async (v: (typeof variants)[number]) => {
    if (v.on) await enableWasmMatmul();
    else disableWasmMatmul();
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const { value, grads } = tf.variableGrads(() => step(x, y), vars);
    const m = tf.memory();
    v.peakBytes = Math.max(v.peakBytes, m.numBytes);
    v.peakTensors = Math.max(v.peakTensors, m.numTensors);
    opt.applyGradients(grads as never);
    await value.data();
    tf.dispose([value, ...Object.values(grads)]);
    const c1 = process.cpuUsage(c0);
    return { wall: performance.now() - t0, cpu: (c1.user + c1.system) / 1000 };
  };
  for (let i = 0; i < warmup; i++) for (const v of variants) await one(v);
  for (let i = 0; i < steps; i++) {
    for (const v of variants) {
      const r = await one(v);
      v.walls.push(r.wall);
      v.cpus.push(r.cpu);
    }
  }
  disableWasmMatmul();
  opt.dispose();
  tf.dispose([x, y]);
  const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
  return variants.map((v) => ({
    variant: v.variant,
    ms: median(v.walls),
    cpuMs: median(v.cpus),
    peakBytes: v.peakBytes,
    peakTensors: v.peakTensors,
  }));
}

const rows: Row[] = [];
const backends = values.backends!.split(",");
const gpu = await hasWebGPU();
for (const backend of backends) {
  if (backend === "webgpu" && !gpu) {
    console.log("webgpu: skipped (no WebGPU adapter)");
    continue;
  }
  if (backend === "wasm") await import("@tensorflow/tfjs-backend-wasm");
  await tf.setBackend(backend);
  await tf.ready();
  // baseline: conv3x3 s2 (3 -> 16) + ReLU + GAP + linear, same data and optimiser (tfjs's wasm backend has no
  // conv2d filter gradient: no baseline there)
  if (backend !== "wasm") {
    const k = tf.variable(tf.randomNormal([3, 3, 3, 16], 0, 0.1));
    const wl = tf.variable(tf.randomNormal([16, 5], 0, 0.1));
    const step: StepFn = (x, y) =>
      tf.tidy(() => {
        const f = tf.mean(tf.relu(tf.conv2d(x, k as tf.Tensor4D, 2, "same")), [1, 2]) as tf.Tensor2D;
        return tf.losses.softmaxCrossEntropy(tf.oneHot(y, 5), tf.matMul(f, wl)) as tf.Scalar;
      });
    const r = await timeSteps(step, [k, wl], 28, 28, 5);
    rows.push({
      backend,
      what: "baseline conv+GAP+linear",
      params: k.size + wl.size,
      msPerStep: r.ms,
      cpuMsPerStep: r.cpuMs,
      samplesPerSec: (1000 * batch) / r.ms,
      peakBytes: r.peakBytes,
      peakTensors: r.peakTensors,
    });
    tf.dispose([k, wl]);
  }
  const over = {
    ...(values.overrides ? JSON.parse(values.overrides) : {}),
    ...(values.scanSet ? { scanSet: values.scanSet } : {}),
  };
  const model = createMerba(values.model!, over);
  const [h, w] = model.config.inputSize;
  const step: StepFn = (x, y) => tf.tidy(() => model.loss(model.apply(x, { training: true }), y));
  const label = `${values.model}${Object.keys(over).length ? ` ${JSON.stringify(over)}` : ""}`;
  const timed = values.wasmMatmul && backend === "cpu" && await enableWasmMatmul()
    ? await timeInterleaved(step, model.trainableWeights(), h, w, model.config.classes.fine.length)
    : [{
      ...await timeSteps(step, model.trainableWeights(), h, w, model.config.classes.fine.length),
      variant: "",
    }];
  for (const r of timed) {
    rows.push({
      backend,
      what: `${label}${r.variant}`,
      params: model.countParams(),
      msPerStep: r.ms,
      cpuMsPerStep: r.cpuMs,
      samplesPerSec: (1000 * batch) / r.ms,
      peakBytes: r.peakBytes,
      peakTensors: r.peakTensors,
    });
  }
  model.dispose();
}

const base = new Map(rows.filter((r) => r.what.startsWith("baseline")).map((r) => [r.backend, r.msPerStep]));
console.log(
  `\ntraining step (forward + backward + Adam), batch ${batch}, median of ${steps} timed steps after ${warmup} ` +
    `warm-up; load average ${Deno.loadavg().map((v) => v.toFixed(1)).join(" ")}; ${new Date().toISOString()}`,
);
console.log(
  "| backend | model | params | wall ms/step | samples/s (wall) | process CPU ms/step | samples/s per CPU-s | " +
    "peak MiB (tf.memory) | peak tensors | x baseline (wall) |",
);
console.log("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const r of rows) {
  console.log(
    `| ${r.backend} | ${r.what} | ${r.params.toLocaleString("en-US")} | ${r.msPerStep.toFixed(1)} | ${
      r.samplesPerSec.toFixed(0)
    } | ${r.cpuMsPerStep.toFixed(1)} | ${((1000 * batch) / r.cpuMsPerStep).toFixed(0)} | ${
      (r.peakBytes / 2 ** 20).toFixed(1)
    } | ${r.peakTensors} | ${base.has(r.backend) ? (r.msPerStep / base.get(r.backend)!).toFixed(1) : "–"} |`,
  );
}
