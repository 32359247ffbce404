/**
 * Where a webgpu training step's GPU time goes: every WebGPU program of one merba training step (forward,
 * backward, global gradient norm, AdamW update), timed on the GPU with timestamp queries, grouped by program,
 * at one or more batch sizes — with the launch size of each program (invocations per dispatch), so programs
 * that do not scale out with the batch stand out, and the unprofiled step wall time in the same run.
 *
 *   deno run -A bench/webgpu_program_times.ts [--batch 32,256] [--model merba-tiny] [--steps 2] [--top 25]
 *     [--detail MatMulPackedProgram]
 *
 * Needs a WebGPU adapter with the `timestamp-query` feature (tfjs-backend-webgpu times each program in its own
 * compute pass while profiling; a step is therefore slower profiled than not, and only the GPU columns are
 * per-program). On a software adapter (llvmpipe) the times are CPU times of the shaders. The ratio column
 * compares each program's GPU time at the largest batch with the first batch: a ratio near the batch ratio is
 * work that grows with the batch; a program with few invocations and a ratio near the batch ratio runs its
 * reduction serially. Exits 0 with a message where no adapter exists.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import { parseArgs } from "node:util";
import { hasWebGPU, initBackend } from "../lib/backend.ts";
import { createMerba } from "../lib/models/merba.ts";
import { AdamW, globalNorm } from "../lib/train/optimizer.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    batch: { type: "string", default: "32,256" },
    model: { type: "string", default: "merba-tiny" },
    steps: { type: "string", default: "2" },
    top: { type: "string", default: "25" },
    detail: { type: "string", multiple: true, default: [] },
  },
});
const batches = values.batch.split(",").map(Number);
const steps = Number(values.steps);
const top = Number(values.top);
if (batches.some((b) => !Number.isInteger(b) || b < 1) || !(steps >= 1)) {
  throw new RangeError(`--batch: comma-separated positive integers (got ${values.batch}); --steps >= 1`);
}

if (!(await hasWebGPU())) {
  console.log("webgpu_program_times: no WebGPU adapter here; nothing to measure");
  Deno.exit(0);
}
await initBackend({ backend: "webgpu", quiet: true });

interface WebGPUBackendLike {
  device: GPUDevice;
  supportTimestampQuery: boolean;
  runWebGPUProgram: (program: unknown, ...rest: unknown[]) => unknown;
  time(f: () => void): Promise<{ kernelMs: number; getExtraProfileInfo?: () => string }>;
}
const backend = tf.backend() as unknown as WebGPUBackendLike;
const adapter = backend.device.adapterInfo;
console.log(
  `adapter: ${
    adapter?.description || adapter?.vendor || "?"
  }; timestamp-query: ${backend.supportTimestampQuery}`,
);
if (!backend.supportTimestampQuery) {
  console.log("webgpu_program_times: this adapter has no timestamp-query; per-program GPU times unavailable");
  Deno.exit(0);
}

// launch sizes, in program order (same order as the timer list of `backend.time`)
let launches: { name: string; invocations: number; shapes: string }[] = [];
const run = backend.runWebGPUProgram.bind(backend);
backend.runWebGPUProgram = (program: unknown, ...rest: unknown[]) => {
  const p = program as {
    constructor: { name: string };
    dispatch: number[];
    workgroupSize: number[];
    outputShape: number[];
  };
  const wg = p.workgroupSize[0] * p.workgroupSize[1] * p.workgroupSize[2];
  const ins = (rest[0] as { shape: number[] }[] | undefined) ?? [];
  launches.push({
    name: p.constructor.name,
    invocations: p.dispatch[0] * p.dispatch[1] * p.dispatch[2] * wg,
    shapes: `${ins.map((t) => `[${t.shape}]`).join(" ")} → [${p.outputShape}]`,
  });
  return run(program, ...rest);
};

interface Row {
  dispatches: number;
  ms: number;
  invocations: number[];
}

async function measure(batch: number) {
  const model = createMerba(values.model as "merba-tiny", {});
  const groups = model.weightGroups();
  const vars = [...groups.decay, ...groups.noDecay];
  const opt = new AdamW(groups, { learningRate: 1e-3, weightDecay: 0.05 });
  const xb = tf.randomUniform([batch, 28, 28, 3], 0, 1, "float32", 7) as tf.Tensor4D;
  const yb = tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 3), "int32");
  const step = () => {
    const { value, grads } = tf.variableGrads(
      () => tf.tidy(() => model.loss(model.apply(xb, { training: true }), yb)),
      vars,
    );
    const norm = globalNorm(grads);
    opt.step(grads);
    tf.dispose([norm, ...Object.values(grads)]);
    return value;
  };
  // warm-up (pipeline compilation), then the unprofiled wall time with one read-back per step
  for (let i = 0; i < 2; i++) await step().data();
  const walls: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const v = step();
    await v.data();
    v.dispose();
    walls.push(performance.now() - t);
  }
  walls.sort((a, b) => a - b);
  const rows = new Map<string, Row>();
  const details = new Map<string, { n: number; ms: number; invocations: number }>();
  let total = 0;
  for (let s = 0; s < steps; s++) {
    launches = [];
    let loss: tf.Tensor | null = null;
    const res = await backend.time(() => {
      loss = step();
    });
    await loss!.data();
    loss!.dispose();
    // "Name: ms, Name: ms, ..." in dispatch order
    const timed = (res.getExtraProfileInfo?.() ?? "").split(", ").filter((e) => e.length > 0).map((e) => {
      const at = e.lastIndexOf(": ");
      return { name: e.slice(0, at), ms: Number(e.slice(at + 2)) };
    });
    if (timed.length !== launches.length) {
      throw new Error(`timer list (${timed.length}) and launches (${launches.length}) differ in length`);
    }
    timed.forEach((t, i) => {
      const r = rows.get(t.name) ?? { dispatches: 0, ms: 0, invocations: [] };
      r.dispatches++;
      r.ms += t.ms;
      r.invocations.push(launches[i].invocations);
      rows.set(t.name, r);
      if (values.detail.includes(t.name)) {
        const key = `${t.name} ${launches[i].shapes}`;
        const d = details.get(key) ?? { n: 0, ms: 0, invocations: launches[i].invocations };
        d.n++;
        d.ms += t.ms;
        details.set(key, d);
      }
      total += t.ms;
    });
  }
  tf.dispose([xb, yb]);
  opt.dispose();
  model.dispose();
  for (const r of rows.values()) {
    r.dispatches /= steps;
    r.ms /= steps;
  }
  for (const d of details.values()) {
    d.n /= steps;
    d.ms /= steps;
  }
  return { batch, wallMs: walls[1], gpuMs: total / steps, rows, details };
}

const results = [];
for (const b of batches) results.push(await measure(b));
const first = results[0];
const last = results[results.length - 1];
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

console.log(
  `\n${values.model}, one training step (forward, backward, global norm, AdamW), ${steps} profiled step(s)\n`,
);
console.log(
  "| batch | step wall, unprofiled (ms) | samples/s | GPU time of all programs (ms) | dispatches |",
);
console.log(
  "| ----: | -------------------------: | --------: | ----------------------------: | ---------: |",
);
for (const r of results) {
  const disp = [...r.rows.values()].reduce((s, x) => s + x.dispatches, 0);
  console.log(
    `| ${r.batch} | ${r.wallMs.toFixed(1)} | ${(r.batch / (r.wallMs / 1000)).toFixed(1)} | ${
      r.gpuMs.toFixed(1)
    } | ${disp} |`,
  );
}
const head = results.map((r) => `GPU ms @${r.batch}`).join(" | ");
const inv = results.map((r) => `invocations/dispatch @${r.batch}`).join(" | ");
const ratio = results.length > 1 ? ` | ratio @${last.batch}/@${first.batch}` : "";
console.log(`\nPrograms by GPU time at batch ${last.batch} (top ${top}):\n`);
console.log(`| program | dispatches | ${head} | share @${last.batch} | ${inv}${ratio} |`);
console.log(
  `| --- | ---: | ${results.map(() => "---:").join(" | ")} | ---: | ${results.map(() => "---:").join(" | ")}${
    results.length > 1 ? " | ---:" : ""
  } |`,
);
const names = [...last.rows.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, top).map(([n]) => n);
for (const name of names) {
  const cells = results.map((r) => (r.rows.get(name)?.ms ?? 0).toFixed(2)).join(" | ");
  const invs = results.map((r) => {
    const x = r.rows.get(name);
    return x ? String(median(x.invocations)) : "-";
  }).join(" | ");
  const a = first.rows.get(name)?.ms ?? 0;
  const z = last.rows.get(name)!.ms;
  console.log(
    `| ${name} | ${last.rows.get(name)!.dispatches} | ${cells} | ${
      (100 * z / last.gpuMs).toFixed(1)
    } % | ${invs}${results.length > 1 ? ` | ${a > 0 ? (z / a).toFixed(1) : "-"}` : ""} |`,
  );
}

for (const r of results) {
  if (r.details.size === 0) continue;
  console.log(`\nDetail at batch ${r.batch} (inputs → output, per step):\n`);
  console.log("| program and shapes | dispatches | invocations | GPU ms |");
  console.log("| --- | ---: | ---: | ---: |");
  for (const [k, d] of [...r.details.entries()].sort((a, b) => b[1].ms - a[1].ms)) {
    console.log(`| ${k} | ${d.n} | ${d.invocations} | ${d.ms.toFixed(2)} |`);
  }
}
