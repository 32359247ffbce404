/**
 * Training throughput of the real training loop (`trainModel`: batch gathering, flip augmentation, forward,
 * backward, AdamW update, one loss read-back per step) per backend, and the projected wall time of the
 * MEGC2019 composite LOSO protocol (442 samples, 68 folds) at a given epoch count.
 *
 * Baseline measured in the same run and the same loop: a linear softmax classifier on the flattened input
 * (the cost floor of the loop itself). Data: random 28×28×3 inputs (throughput does not depend on values).
 *
 *   deno run -A bench/train_throughput.ts [--model merba-tiny] [--batch 32] [--epochs-proj 30]
 *     [--backends cpu-js,cpu-scan,cpu,webgpu] [--samples 320] [--rounds 3] [--set KEY=JSON ...]
 *
 * Backends: `cpu` = tfjs cpu with merba's default cpu kernels (WebAssembly SIMD selective scan and layer
 * kernels, XNNPACK for the remaining products: what `initBackend({ backend: "cpu" })` sets up); `cpu-scan` =
 * the same with the JavaScript layer kernels (the third session's default: SIMD scan, XNNPACK products);
 * `cpu-js` = the JavaScript scan and layer loops and JS matrix products (the kernels before any SIMD work);
 * `webgpu`; `wasm` = tfjs's wasm backend (XNNPACK kernels for tfjs's ops, merba's SIMD kernels for the fused
 * layers and the scan, with a copy out of and into the wasm heap around each).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { parseArgs } from "node:util";
import { hasWebGPU } from "../lib/backend.ts";
import { disableWasmMatmul, enableWasmMatmul } from "../lib/layers/fused_matmul.ts";
import { setCpuScanImpl } from "../lib/ops/selective_scan_cpu.ts";
import { setCpuLayerImpl } from "../lib/layers/layer_simd.ts";
import "@tensorflow/tfjs-backend-webgpu";
import type { FlowDataset } from "../lib/data/types.ts";
import { createMerba } from "../lib/models/merba.ts";
import { parseOverrides } from "../lib/train/cli.ts";
import { formatDuration } from "../lib/progress.ts";
import { type TrainableModel, trainModel } from "../lib/train/trainer.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string", default: "merba-tiny" },
    batch: { type: "string", default: "32" },
    samples: { type: "string", default: "320" },
    rounds: { type: "string", default: "3" },
    "epochs-proj": { type: "string", default: "30" },
    backends: { type: "string", default: "cpu-js,cpu-scan,cpu,webgpu" },
    set: { type: "string", multiple: true, default: [] },
  },
});
const batch = Number(values.batch);
const n = Number(values.samples);
const epochsProj = Number(values["epochs-proj"]);
const rounds = Number(values.rounds);
const size = 28;
const classes = {
  fine: ["negative", "positive", "surprise"],
  coarse: ["negative", "positive", "surprise"],
  fineToCoarse: [0, 1, 2],
};

function randomDataset(): FlowDataset {
  const x = new Float32Array(n * size * size * 3);
  let s = 12345;
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    x[i] = s / 4294967296;
  }
  const fine = Int32Array.from({ length: n }, (_, i) => i % 3);
  return {
    name: "random",
    protocol: "bench",
    n,
    height: size,
    width: size,
    x,
    fine,
    coarse: fine.slice(),
    classes,
    subjects: Array.from({ length: n }, (_, i) => `s${i % 4}`),
    datasets: Array(n).fill("random"),
    ids: Array.from({ length: n }, (_, i) => String(i)),
  };
}

class Linear implements TrainableModel {
  w = tf.variable(tf.zeros([size * size * 3, 3]));
  b = tf.variable(tf.zeros([3]));
  apply(x: tf.Tensor4D) {
    const fine = tf.tidy(() =>
      tf.add(tf.matMul(tf.reshape(x, [x.shape[0], -1]), this.w), this.b) as tf.Tensor2D
    );
    return { fine, coarse: null };
  }
  loss(out: { fine: tf.Tensor2D }, y: tf.Tensor1D) {
    return tf.tidy(() => tf.losses.softmaxCrossEntropy(tf.oneHot(y, 3), out.fine) as tf.Scalar);
  }
  predictLevel(out: { fine: tf.Tensor2D }) {
    return tf.argMax(out.fine, 1) as tf.Tensor1D;
  }
  weightGroups() {
    return { decay: [this.w], noDecay: [this.b] };
  }
  dispose() {
    tf.dispose([this.w, this.b]);
  }
}

/** samples/s of epochs 2..3 (epoch 1 warms up kernels and allocations). */
async function measure(model: TrainableModel, ds: FlowDataset): Promise<{ sps: number; msPerStep: number }> {
  const idx = Array.from({ length: ds.n }, (_, i) => i);
  const r = await trainModel(model, ds, idx, { epochs: 3, batchSize: batch, lr: 1e-3, seed: 0 });
  const timed = r.history.slice(1);
  const secs = timed.reduce((s, h) => s + h.seconds, 0);
  const samples = timed.length * ds.n;
  const steps = timed.length * Math.ceil(ds.n / batch);
  return { sps: samples / secs, msPerStep: (secs * 1000) / steps };
}

// MEGC2019 composite: 442 samples, 68 subjects; fold k trains on 442 - n_k samples.
const MEGC_N = 442;
const MEGC_FOLDS = 68;
const trainSamplesPerEpoch = MEGC_FOLDS * MEGC_N - MEGC_N; // Σ_k (442 − n_k) = 68·442 − 442

const ds = randomDataset();
const overrides = parseOverrides(values.set);
const gpu = await hasWebGPU();
const rows: string[] = [];
const variants = values.backends!.split(",").filter((backend) => {
  if (backend === "webgpu" && !gpu) console.log("webgpu: skipped (no WebGPU adapter)");
  return backend !== "webgpu" || gpu;
});
for (const backend of variants) {
  if (!["cpu", "cpu-scan", "cpu-js", "webgpu", "wasm"].includes(backend)) {
    throw new Error(`--backends: unknown backend "${backend}"`);
  }
}

/** Makes `backend` (a variant name) active with its kernels. */
async function activate(backend: string): Promise<void> {
  const cpu = backend.startsWith("cpu");
  if (backend === "wasm") await import("@tensorflow/tfjs-backend-wasm");
  if (!(await tf.setBackend(cpu ? "cpu" : backend))) throw new Error(`backend ${backend} did not start`);
  await tf.ready();
  setCpuScanImpl(backend === "cpu-js" ? "js" : "auto");
  setCpuLayerImpl(backend === "cpu-js" || backend === "cpu-scan" ? "js" : "auto");
  if (backend === "cpu" || backend === "cpu-scan") {
    if (!(await enableWasmMatmul())) console.log("cpu: the wasm backend did not start; JS matrix products");
    await tf.setBackend("cpu");
  } else disableWasmMatmul();
}

// Rounds: every variant is measured once per round, variants interleaved, so a slow phase of the machine
// (GC, other load) does not land on one variant only; the table reports the median round per variant.
const results = new Map<string, { sps: number; msPerStep: number; base: number; params: number }[]>();
for (let round = 0; round < rounds; round++) {
  for (const backend of variants) {
    if (backend === "webgpu" && round > 0) continue; // one round: ~10x slower, and not the bottleneck
    await activate(backend);
    const lin = new Linear();
    const base = await measure(lin, ds);
    lin.dispose();
    const m = createMerba(values.model!, { ...overrides, classes, inputSize: [size, size], seed: 0 });
    const params = m.countParams();
    const r = await measure(m, ds);
    m.dispose();
    (results.get(backend) ?? results.set(backend, []).get(backend)!).push({ ...r, base: base.sps, params });
    console.error(
      `round ${round + 1}: ${backend} ${r.sps.toFixed(1)} samples/s (linear ${base.sps.toFixed(0)})`,
    );
  }
}
for (const backend of variants) {
  const rs = [...results.get(backend)!].sort((a, b) => a.sps - b.sps);
  const r = rs[Math.floor((rs.length - 1) / 2)];
  const projS = (trainSamplesPerEpoch * epochsProj) / r.sps;
  rows.push(
    `| ${backend} | ${values.model} (${r.params.toLocaleString("en-US")} params) | ${batch} | ${
      r.msPerStep.toFixed(0)
    } | ` +
      `${r.sps.toFixed(1)} (${rs.map((x) => x.sps.toFixed(0)).join(", ")}) | ${r.base.toFixed(0)} | ` +
      `${formatDuration(projS * 1000)}; ${formatDuration(projS * 500)} |`,
  );
}
console.log(
  `\nTraining throughput (trainModel: gather + flip + forward + backward + AdamW), ${n} random 28x28x3 samples, ` +
    `epochs 2-3 timed, ${rounds} interleaved rounds (webgpu: 1); projection = ${trainSamplesPerEpoch} training samples per LOSO epoch (MEGC2019 composite, ` +
    `68 folds x (442 - test subject)) x ${epochsProj} epochs / throughput (evaluation excluded, < 1%); "2 processes" ` +
    `halves it (\`deno task train --jobs 2\`: one shard per core, if the two processes do not slow each other).\n`,
);
console.log(
  "| backend | model | batch | ms/step | samples/s, median (rounds) | linear baseline samples/s | projected MEGC2019 LOSO: 1 process; 2 processes |",
);
console.log("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
for (const r of rows) console.log(r);
