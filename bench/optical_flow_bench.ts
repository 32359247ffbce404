/**
 * Optical-flow benchmark: our TypeScript TV-L1 against OpenCV 4.6's contrib `DualTVL1OpticalFlow`, and
 * opencv.js Farneback against native OpenCV Farneback, on the same synthetic pairs in the same run.
 *
 *   deno run -A bench/optical_flow_bench.ts [--repeats 7] [--sizes 96,128,240] [--no-e2e | --e2e-only] [--e2e-n 250]
 *     [--python /usr/bin/python3]
 *
 * Needs Debian's `python3-opencv` (`apt-get install -y python3-opencv`; /usr/bin/python3 has `cv2.optflow`).
 * The pairs: an analytic texture (random cosines + Gaussian blobs around grey 128, as the golden fixtures) and
 * the same texture displaced by a smooth field of Gaussian bumps up to about 1.5 px (micro-expression scale),
 * rounded to uint8. Reported: median wall time after one warm-up, ratio ours / OpenCV, median CPU time of
 * ours and single-threaded OpenCV (steadier than wall time on a shared machine), mean endpoint error to
 * the generating displacement (interior, 8 px margin) and the mean distance between the two TV-L1 flows.
 *
 * The end-to-end part times `preprocessDataset` (read PNG frames, TV-L1 onset -> apex, flowToInput to 28×28×3)
 * on 250 generated 128×128 pairs (about a CASME II set), and on the shipped synthetic dataset when it exists.
 *
 * @module
 */
import { join } from "node:path";
import process from "node:process";
import { DualTVL1, opticalFlowTVL1 } from "../lib/data/optical_flow.ts";
import { opticalFlowFarneback } from "../lib/data/farneback.ts";
import { opticalFlowTVL1WebGPU, opticalFlowTVL1WebGPUBatch } from "../lib/data/tvl1_webgpu.ts";
import { webgpuAdapter } from "../lib/backend.ts";
import type { Flow, GrayImage, SampleRef } from "../lib/data/types.ts";

const args = Deno.args;
const arg = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
};
const repeats = Number(arg("--repeats", "7"));
const sizes = arg("--sizes", "96,128,240").split(",").map(Number);
const python = arg("--python", "/usr/bin/python3");
const e2e = !args.includes("--no-e2e");
/** Only the end-to-end part (skips the OpenCV comparison tables). */
const e2eOnly = args.includes("--e2e-only");
const e2eN = Number(arg("--e2e-n", "250"));
/** Pairs per `opticalFlowTVL1WebGPUBatch` call in the WebGPU table. */
const BATCH = 16;

/** Deterministic LCG in [0, 1). */
function lcg(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => (s = (s * 16807) % 2147483647) / 2147483647;
}

interface Pair {
  name: string;
  prev: GrayImage;
  next: GrayImage;
  truth: Flow;
}

/**
 * prev(p) = T(p), next(q) = T(q − g(q)); the flow f on the prev grid solves f(p) = g(p + f(p)) (fixed point).
 */
function makePair(size: number, seed: number): Pair {
  const rnd = lcg(seed);
  const waves = Array.from({ length: 60 }, () => {
    const f = 0.02 + 0.16 * rnd(), t = 2 * Math.PI * rnd();
    return {
      fx: f * Math.cos(t),
      fy: f * Math.sin(t),
      p: 2 * Math.PI * rnd(),
      a: (0.5 + 0.5 * rnd()) / Math.sqrt(60),
    };
  });
  const blobs = Array.from({ length: 8 }, () => ({
    x: size * rnd(),
    y: size * rnd(),
    s: size * (0.03 + 0.07 * rnd()),
    a: 0.6 * (rnd() - 0.5),
  }));
  const T = (x: number, y: number) => {
    let v = 0;
    for (const w of waves) v += w.a * Math.cos(2 * Math.PI * (w.fx * x + w.fy * y) + w.p);
    for (const b of blobs) v += b.a * Math.exp(-((x - b.x) ** 2 + (y - b.y) ** 2) / (2 * b.s * b.s));
    return 128 + 55 * v;
  };
  const bumps = Array.from({ length: 6 }, () => {
    const ang = 2 * Math.PI * rnd();
    const mag = 0.5 + 1.0 * rnd();
    return {
      x: size * (0.2 + 0.6 * rnd()),
      y: size * (0.2 + 0.6 * rnd()),
      s: size * (0.08 + 0.08 * rnd()),
      dx: mag * Math.cos(ang),
      dy: mag * Math.sin(ang),
    };
  });
  const g = (x: number, y: number): [number, number] => {
    let dx = 0, dy = 0;
    for (const b of bumps) {
      const k = Math.exp(-((x - b.x) ** 2 + (y - b.y) ** 2) / (2 * b.s * b.s));
      dx += b.dx * k;
      dy += b.dy * k;
    }
    return [dx, dy];
  };
  const n = size * size;
  const prev = new Uint8Array(n), next = new Uint8Array(n);
  const u = new Float32Array(n), v = new Float32Array(n);
  const q = (x: number) => Math.min(255, Math.max(0, Math.round(x)));
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = y * size + x;
      prev[i] = q(T(x, y));
      const [gx, gy] = g(x, y);
      next[i] = q(T(x - gx, y - gy));
      let fx = 0, fy = 0;
      for (let it = 0; it < 50; it++) [fx, fy] = g(x + fx, y + fy);
      u[i] = fx;
      v[i] = fy;
    }
  }
  return {
    name: `warp_${size}`,
    prev: { width: size, height: size, data: prev },
    next: { width: size, height: size, data: next },
    truth: { width: size, height: size, u, v },
  };
}

function epe(a: Flow, b: Flow, margin = 8): number {
  let s = 0, n = 0;
  for (let y = margin; y < a.height - margin; y++) {
    for (let x = margin; x < a.width - margin; x++) {
      const i = y * a.width + x;
      s += Math.hypot(a.u[i] - b.u[i], a.v[i] - b.v[i]);
      n++;
    }
  }
  return s / n;
}

/** Median wall and CPU time (ms) of `n` calls after one warm-up call. */
async function timeIt(
  fn: () => unknown | Promise<unknown>,
  n: number,
): Promise<{ wall: number; cpu: number }> {
  await fn();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let k = 0; k < n; k++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await fn();
    const c = process.cpuUsage(c0);
    wall.push(performance.now() - t0);
    cpu.push((c.user + c.system) / 1000);
  }
  const med = (a: number[]) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)];
  return { wall: med(wall), cpu: med(cpu) };
}

if (e2eOnly) {
  await endToEnd();
  Deno.exit(0);
}
const pairs = sizes.map((s) => makePair(s, 1000 + s));
const dir = await Deno.makeTempDir({ prefix: "merba_flow_bench_" });
try {
  const manifest = {
    repeats,
    out_dir: dir,
    pairs: await Promise.all(pairs.map(async (p) => {
      await Deno.writeFile(join(dir, `${p.name}.prev.u8`), p.prev.data as Uint8Array);
      await Deno.writeFile(join(dir, `${p.name}.next.u8`), p.next.data as Uint8Array);
      return {
        name: p.name,
        width: p.prev.width,
        height: p.prev.height,
        prev: join(dir, `${p.name}.prev.u8`),
        next: join(dir, `${p.name}.next.u8`),
      };
    })),
  };
  await Deno.writeTextFile(join(dir, "manifest.json"), JSON.stringify(manifest));

  console.log(`Running OpenCV (${python} bench/opencv_tvl1.py) ...`);
  const out = await new Deno.Command(python, {
    args: [new URL("./opencv_tvl1.py", import.meta.url).pathname, join(dir, "manifest.json")],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `bench/opencv_tvl1.py failed (is python3-opencv installed?):\n${new TextDecoder().decode(out.stderr)}`,
    );
  }
  const cv = JSON.parse(new TextDecoder().decode(out.stdout));
  type Timing = { median_ms: number; median_cpu_ms: number };
  type CvRow = { name: string; threads: number; tvl1: Timing; farneback: Timing };
  const cvRow = (name: string, threads: number) =>
    (cv.results as CvRow[]).find((r) => r.name === name && r.threads === threads);

  console.log(`Running ours (${repeats} repeats after a warm-up) ...`);
  const rows: string[][] = [];
  const fbRows: string[][] = [];
  const gpuRows: string[][] = [];
  const adapter = await webgpuAdapter();
  for (const p of pairs) {
    const { width: w, height: h } = p.prev;
    const ours = opticalFlowTVL1(p.prev, p.next);
    const cvFlowRaw = new Float32Array((await Deno.readFile(join(dir, `${p.name}.tvl1.f32`))).buffer);
    const cvFlow: Flow = {
      width: w,
      height: h,
      u: cvFlowRaw.filter((_, i) => i % 2 === 0),
      v: cvFlowRaw.filter((_, i) => i % 2 === 1),
    };
    const solver = new DualTVL1(w, h);
    const tFresh = await timeIt(() => opticalFlowTVL1(p.prev, p.next), repeats);
    const tReuse = await timeIt(() => solver.calc(p.prev, p.next), repeats);
    const tFb = await timeIt(() => opticalFlowFarneback(p.prev, p.next), repeats);
    const c2 = cvRow(p.name, cv.default_threads)!;
    const c1 = cvRow(p.name, 1) ?? c2;
    rows.push([
      `${w}×${h}`,
      c2.tvl1.median_ms.toFixed(1),
      c1.tvl1.median_ms.toFixed(1),
      tFresh.wall.toFixed(1),
      tReuse.wall.toFixed(1),
      (tFresh.wall / c2.tvl1.median_ms).toFixed(2),
      (tFresh.wall / c1.tvl1.median_ms).toFixed(2),
      `${c1.tvl1.median_cpu_ms.toFixed(0)} / ${tFresh.cpu.toFixed(0)} = ${
        (tFresh.cpu / c1.tvl1.median_cpu_ms).toFixed(2)
      }`,
      epe(ours, p.truth).toFixed(4),
      epe(cvFlow, p.truth).toFixed(4),
      epe(ours, cvFlow).toFixed(4),
    ]);
    if (adapter) {
      const tGpu = await timeIt(() => opticalFlowTVL1WebGPU(p.prev, p.next), Math.min(repeats, 3));
      const g = await opticalFlowTVL1WebGPU(p.prev, p.next);
      const batch = Array.from({ length: BATCH }, () => [p.prev, p.next] as const);
      const tBatch = await timeIt(() => opticalFlowTVL1WebGPUBatch(batch), 1);
      gpuRows.push([
        `${w}×${h}`,
        c2.tvl1.median_ms.toFixed(1),
        tFresh.wall.toFixed(1),
        tGpu.wall.toFixed(1),
        (tGpu.wall / c2.tvl1.median_ms).toFixed(2),
        (tBatch.wall / BATCH).toFixed(1),
        epe(g, p.truth).toFixed(4),
        epe(g, ours).toFixed(4),
      ]);
    }
    fbRows.push([
      `${w}×${h}`,
      c2.farneback.median_ms.toFixed(1),
      c1.farneback.median_ms.toFixed(1),
      tFb.wall.toFixed(1),
      (tFb.wall / c2.farneback.median_ms).toFixed(2),
    ]);
  }
  const table = (head: string[], body: string[][]) =>
    [
      `| ${head.join(" | ")} |`,
      `|${head.map(() => " ---: |").join("")}`,
      ...body.map((r) => `| ${r.join(" | ")} |`),
    ]
      .join("\n");
  const threads = cv.default_threads;
  console.log(
    `\nTV-L1 (OpenCV ${cv.opencv} contrib DualTVL1 defaults vs ours, same defaults); ms = median wall time`,
  );
  console.log(table([
    "pair",
    `OpenCV ${threads} thr ms`,
    "OpenCV 1 thr ms",
    "ours ms",
    "ours reused solver ms",
    `ours / OpenCV ${threads} thr`,
    "ours / OpenCV 1 thr",
    "CPU ms OpenCV 1 thr / ours = ratio",
    "EPE ours px",
    "EPE OpenCV px",
    "mean |ours − OpenCV| px",
  ], rows));
  console.log(`\nFarneback (0.5, 3, 15, 3, 5, 1.2, 0): native OpenCV ${cv.opencv} vs opencv.js 5.0.0 (WASM)`);
  console.log(
    table([
      "pair",
      `OpenCV ${threads} thr ms`,
      "OpenCV 1 thr ms",
      "opencv.js ms",
      `opencv.js / OpenCV ${threads} thr`,
    ], fbRows),
  );

  if (adapter) {
    const info = adapter.info;
    console.log(
      `\nTV-L1 on WebGPU (opticalFlowTVL1WebGPU), adapter: ${
        [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(" / ")
      }; median of ${Math.min(repeats, 3)} runs`,
    );
    console.log(
      table([
        "pair",
        `OpenCV ${threads} thr ms`,
        "ours CPU ms",
        "ours WebGPU ms",
        `WebGPU / OpenCV ${threads} thr`,
        `WebGPU batch of ${BATCH}, ms per pair`,
        "EPE WebGPU px",
        "mean |WebGPU − CPU| px",
      ], gpuRows),
    );
  } else {
    console.log("\nTV-L1 on WebGPU: skipped (no WebGPU adapter).");
  }

  if (e2e) await endToEnd();
} finally {
  await Deno.remove(dir, { recursive: true });
}

/**
 * End to end through `preprocessDataset` (read PNG frames, TV-L1 onset -> apex, flowToInput to 28×28×3, no
 * cache): `e2eN` generated 128×128 pairs (CASME II face crops are about this size before the 28×28 resize),
 * then the shipped synthetic dataset when `data/synthetic` exists.
 */
async function endToEnd(): Promise<void> {
  const { preprocessDataset } = await import("../lib/data/preprocess.ts");
  const { writePng } = await import("../lib/data/image_io.ts");
  if (e2eN > 0) {
    const tmp = await Deno.makeTempDir({ prefix: "merba_flow_e2e_" });
    try {
      const samples: SampleRef[] = [];
      for (let k = 0; k < e2eN; k++) {
        const p = makePair(128, 5000 + k);
        const onsetPath = join(tmp, `s${k}_onset.png`);
        const apexPath = join(tmp, `s${k}_apex.png`);
        await writePng(onsetPath, p.prev);
        await writePng(apexPath, p.next);
        samples.push({
          dataset: "bench",
          subject: `bench/s${k % 26}`,
          id: `s${k}`,
          emotion: "motion",
          onsetFrame: 0,
          apexFrame: 1,
          onsetPath,
          apexPath,
          source: { file: tmp },
          notes: [],
        });
      }
      const protocol = {
        name: "bench-1class",
        datasets: ["bench"],
        description: "benchmark pairs",
        classes: { fine: ["motion"], coarse: ["motion"], fineToCoarse: [0] },
        emotionToFine: { motion: "motion" },
        exclude: [],
      };
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      const ds = await preprocessDataset(samples, { protocol, size: 28 });
      const c = process.cpuUsage(c0);
      const total = performance.now() - t0;
      console.log(
        `\nEnd to end (preprocessDataset, ${ds.n} generated 128×128 pairs -> 28×28×3, TV-L1 defaults, no cache): ` +
          `${(total / 1000).toFixed(1)} s wall, ${((c.user + c.system) / 1e6).toFixed(1)} s CPU, ` +
          `${(total / ds.n).toFixed(0)} ms/sample.`,
      );
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  }

  const root = new URL("../data/synthetic/", import.meta.url).pathname;
  try {
    await Deno.stat(root);
  } catch {
    console.log(`End to end on data/synthetic: skipped (${root} not found).`);
    return;
  }
  const { computeSyntheticFlowDataset, loadSyntheticSamples } = await import("../lib/data/synthetic.ts");
  const { readGray } = await import("../lib/data/image_io.ts");
  const first = await readGray((await loadSyntheticSamples(root))[0].onsetPath);
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const ds = await computeSyntheticFlowDataset(root); // preprocessDataset, protocol synthetic-5class, 28×28×3
  const c = process.cpuUsage(c0);
  const total = performance.now() - t0;
  console.log(
    `End to end (computeSyntheticFlowDataset = preprocessDataset on data/synthetic: ${ds.n} samples of ` +
      `${first.width}×${first.height} px -> 28×28×3): ${(total / 1000).toFixed(1)} s wall, ` +
      `${((c.user + c.system) / 1e6).toFixed(1)} s CPU, ` +
      `${(total / ds.n).toFixed(0)} ms/sample; 250 samples ≈ ${(total / ds.n * 250 / 1000).toFixed(1)} s ` +
      "(measured rate × 250).",
  );
}
