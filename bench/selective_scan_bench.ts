/**
 * Selective-scan benchmark: forward and forward+backward time of
 *   - the WebGPU kernel (auto path; at the long shape also the forced sequential path),
 *   - the CPU kernel (and the same loops as the wasm-backend kernel): WebAssembly SIMD and JavaScript loops,
 *   - the tfjs-ops reference (`selectiveScanRef`, tfjs autodiff) on each backend,
 *   - PyTorch eager on CPU (bench/torch_selective_scan.py, 2 threads and 1 thread), the same recurrence,
 * at the MERba window shape (b = 512 windows, d = 32, l = 49, n = 8) and a long one (1, 64, 1024, 16),
 * with every option on (D, z, deltaBias, softplus). Forward+backward = gradients of sum(out·G) for all 8
 * inputs (a vector-Jacobian product with upstream G). Times are medians of wall-clock runs that include
 * reading the results back (`await data()`), plus the process CPU time of the same runs.
 *
 * Run: `deno run -A bench/selective_scan_bench.ts [--quick] [--shape merba|long] [--no-torch] [--no-ref]
 * [--wasm-ref]` (the wasm backend's kernel is timed whenever that backend initialises; its reference only
 * with `--wasm-ref`).
 * PyTorch is looked up in `.cache/torch-venv` (python3 -m venv .cache/torch-venv && pip install torch).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import "@tensorflow/tfjs-backend-wasm";
import process from "node:process";
import { hasWebGPU } from "../lib/backend.ts";
import { selectiveScan, type SelectiveScanKernelOptions } from "../lib/ops/selective_scan.ts";
import { selectiveScanRef } from "../lib/ops/selective_scan_ref.ts";
import { setCpuScanImpl, simdScanAvailable } from "../lib/ops/selective_scan_cpu.ts";

const args = new Set(Deno.args);
const quick = args.has("--quick");
const shapeArg = Deno.args.find((_a, i) => Deno.args[i - 1] === "--shape");
const SHAPES: Record<string, [number, number, number, number]> = {
  merba: [512, 32, 49, 8],
  long: [1, 64, 1024, 16],
};
const shapes = shapeArg ? [shapeArg] : ["merba", "long"];
const KERNEL_ITERS = quick ? 3 : 10;
const REF_ITERS = 1;

type Impl = "kernel" | "kernel-seq" | "kernel-js" | "ref";

interface Row {
  shape: string;
  impl: string;
  backend: string;
  fwd: number;
  fwdBwd: number;
  fwdCpu: number;
  fwdBwdCpu: number;
}

function makeInputs(b: number, d: number, l: number, n: number): tf.Tensor[] {
  // Same distributions as the golden fixtures (delta U(-2.5, 1.5), A = -exp(log(1..n) + noise)).
  return tf.tidy(() => [
    tf.randomNormal([b, d, l], 0, 1, "float32", 1),
    tf.randomUniform([b, d, l], -2.5, 1.5, "float32", 2),
    tf.neg(
      tf.exp(
        tf.add(tf.log(tf.range(1, n + 1).reshape([1, n]).tile([d, 1])), tf.randomNormal([d, n], 0, 0.1)),
      ),
    ),
    tf.randomNormal([b, n, l], 0, 1, "float32", 3),
    tf.randomNormal([b, n, l], 0, 1, "float32", 4),
    tf.add(1, tf.randomNormal([d], 0, 0.5, "float32", 5)),
    tf.randomNormal([b, d, l], 0, 1, "float32", 6),
    tf.randomUniform([d], -1, 1, "float32", 7),
    tf.randomNormal([b, d, l], 0, 1, "float32", 8), // upstream gradient G
  ]);
}

function runScan(impl: Impl, xs: tf.Tensor[]): tf.Tensor {
  const [u, delta, A, B, C, D, z, deltaBias] = xs;
  const opts: SelectiveScanKernelOptions = {
    D: D as tf.Tensor1D,
    z: z as tf.Tensor3D,
    deltaBias: deltaBias as tf.Tensor1D,
    deltaSoftplus: true,
  };
  if (impl === "kernel-seq") opts.webgpuPath = "sequential";
  const f = impl === "ref" ? selectiveScanRef : selectiveScan;
  return f(
    u as tf.Tensor3D,
    delta as tf.Tensor3D,
    A as tf.Tensor2D,
    B as tf.Tensor3D,
    C as tf.Tensor3D,
    opts,
  ) as tf.Tensor;
}

async function forward(impl: Impl, xs: tf.Tensor[]): Promise<void> {
  const out = runScan(impl, xs);
  await out.data();
  out.dispose();
}

async function forwardBackward(impl: Impl, xs: tf.Tensor[], G: tf.Tensor): Promise<void> {
  // vector-Jacobian product with upstream gradient G (= the gradients of sum(out·G), without the loss ops)
  const grads = tf.grads((...v: tf.Tensor[]) => runScan(impl, v))(xs, G);
  await Promise.all(grads.map((g) => g.data()));
  tf.dispose(grads);
}

/** Median wall-clock and process-CPU (user + sys, all threads incl. llvmpipe's) ms after one warm-up. */
async function median(iters: number, f: () => Promise<void>): Promise<[number, number]> {
  await f(); // warm-up (shader compilation, buffer pools)
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < iters; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await f();
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  const mid = (v: number[]) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)];
  return [mid(wall), mid(cpu)];
}

type Times = { fwd: number; fwdBwd: number; fwdCpu: number; fwdBwdCpu: number };

async function torchTimes(shape: number[], threads: number): Promise<(Times & { version: string }) | null> {
  const py = new URL("../.cache/torch-venv/bin/python", import.meta.url).pathname;
  try {
    await Deno.stat(py);
  } catch {
    console.warn(`PyTorch baseline skipped: ${py} not found`);
    return null;
  }
  const script = new URL("./torch_selective_scan.py", import.meta.url).pathname;
  const iters = quick || shape[2] > 500 ? 3 : 5;
  const p = await new Deno.Command(py, {
    args: [script, ...shape.map(String), String(iters), String(threads)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!p.success) {
    console.warn(`PyTorch baseline failed: ${new TextDecoder().decode(p.stderr)}`);
    return null;
  }
  const line = new TextDecoder().decode(p.stdout).trim().split("\n").pop()!;
  const r = JSON.parse(line);
  return {
    fwd: r.forward_ms,
    fwdBwd: r.forward_backward_ms,
    fwdCpu: r.forward_cpu_ms,
    fwdBwdCpu: r.forward_backward_cpu_ms,
    version: r.torch,
  };
}

const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);
const ratio = (base: number | undefined, ms: number) => (base ? `${(base / ms).toFixed(1)}x` : "–");

const gpu = await hasWebGPU();
const backends = gpu ? ["webgpu", "cpu"] : ["cpu"];
if (await tf.setBackend("wasm").catch(() => false)) backends.push("wasm");
if (!gpu) console.warn("no WebGPU adapter: webgpu rows skipped");
const rows: Row[] = [];
let torchVersion = "";
for (const shapeName of shapes) {
  const shape = SHAPES[shapeName];
  const [b, d, l, n] = shape;
  const label = `(${b}, ${d}, ${l}, ${n})`;
  for (const backend of backends) {
    await tf.setBackend(backend);
    await tf.ready();
    const all = makeInputs(b, d, l, n);
    const xs = all.slice(0, 8);
    const G = all[8];
    const impls: Impl[] = ["kernel"];
    if (backend === "webgpu" && shapeName === "long") impls.push("kernel-seq");
    // cpu/wasm: "kernel" runs the WebAssembly SIMD loops (n % 4 == 0); "kernel-js" the JavaScript loops
    if (backend !== "webgpu" && simdScanAvailable()) impls.push("kernel-js");
    // the tfjs-ops reference on wasm is slow (tens of seconds here): opt-in
    if (!args.has("--no-ref") && (backend !== "wasm" || args.has("--wasm-ref"))) impls.push("ref");
    for (const impl of impls) {
      const iters = impl === "ref" ? REF_ITERS : KERNEL_ITERS;
      setCpuScanImpl(impl === "kernel-js" ? "js" : "auto");
      const [fwd, fwdCpu] = await median(iters, () => forward(impl, xs));
      const [fwdBwd, fwdBwdCpu] = await median(iters, () => forwardBackward(impl, xs, G));
      setCpuScanImpl("auto");
      const name = impl === "ref"
        ? "tfjs-ops reference"
        : impl === "kernel-seq"
        ? "kernel, forced sequential"
        : impl === "kernel-js"
        ? "kernel, JavaScript loops"
        : backend === "webgpu" || !simdScanAvailable()
        ? "kernel"
        : "kernel, WebAssembly SIMD";
      rows.push({ shape: label, impl: name, backend, fwd, fwdBwd, fwdCpu, fwdBwdCpu });
      console.error(`${label} ${backend} ${name}: ${fmt(fwd)} / ${fmt(fwdBwd)}`);
    }
    tf.dispose(all);
  }
  if (!args.has("--no-torch")) {
    // 2 threads is the baseline; 1 thread as well, because OpenMP's spinning threads suffer most on a
    // shared, oversubscribed machine
    for (const threads of [2, 1]) {
      const t = await torchTimes(shape, threads);
      if (!t) break;
      torchVersion = t.version;
      const impl = `PyTorch eager (${threads} thread${threads > 1 ? "s" : ""})`;
      rows.push({ shape: label, impl, backend: "cpu", ...t });
      console.error(`${label} ${impl}: ${fmt(t.fwd)} / ${fmt(t.fwdBwd)}`);
    }
  }
}

const pair = (base: Row | undefined, r: Row, cpu: boolean) =>
  cpu
    ? `${ratio(base?.fwdCpu, r.fwdCpu)} / ${ratio(base?.fwdBwdCpu, r.fwdBwdCpu)}`
    : `${ratio(base?.fwd, r.fwd)} / ${ratio(base?.fwdBwd, r.fwdBwd)}`;
const lines = [
  "| shape (b, d, l, n) | implementation | backend | forward | fwd+bwd | forward CPU | fwd+bwd CPU | " +
  "speed-up vs tfjs-ops ref, same backend (wall; fwd / fwd+bwd) | vs ref (CPU time) | " +
  "vs PyTorch 2 threads (wall) | vs PyTorch 1 thread (CPU time) |",
  "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
];
for (const r of rows) {
  const ref = rows.find((x) =>
    x.shape === r.shape && x.backend === r.backend && x.impl === "tfjs-ops reference"
  );
  const torch2 = rows.find((x) => x.shape === r.shape && x.impl === "PyTorch eager (2 threads)");
  const torch1 = rows.find((x) => x.shape === r.shape && x.impl === "PyTorch eager (1 thread)");
  const isTorch = r.impl.startsWith("PyTorch");
  lines.push(
    `| ${r.shape} | ${r.impl} | ${r.backend} | ${fmt(r.fwd)} | ${fmt(r.fwdBwd)} | ${fmt(r.fwdCpu)} | ${
      fmt(r.fwdBwdCpu)
    } | ${isTorch ? "–" : pair(ref, r, false)} | ${isTorch ? "–" : pair(ref, r, true)} | ${
      isTorch ? "–" : pair(torch2, r, false)
    } | ${isTorch ? "–" : pair(torch1, r, true)} |`,
  );
}
console.log(lines.join("\n"));
console.log(
  `\nmedian of ${KERNEL_ITERS} runs (kernels) / ${REF_ITERS} run (reference) after one warm-up; ` +
    `tfjs 4.22.0, Deno ${Deno.version.deno}${torchVersion ? `, torch ${torchVersion}` : ""}; ` +
    "speed-up = baseline time / this time (> 1: faster than the baseline); CPU = process CPU " +
    `time (user + sys, all threads) of the same runs; load average ${
      Deno.loadavg().map((x) => x.toFixed(1)).join(" / ")
    } at the end`,
);
