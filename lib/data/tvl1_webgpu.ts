/**
 * Dual TV-L1 optical flow on WebGPU: the algorithm of {@link opticalFlowTVL1} (OpenCV 4.6 `DualTVL1OpticalFlow`,
 * same parameters and stopping rule) with the per-warp work on the GPU.
 *
 * Per pyramid level the CPU builds the images (the same bilinear pyramid and centred gradients as the CPU
 * path) and upsamples the previous level's flow; the GPU then runs, for every warp, two dispatches:
 *
 * 1. `warp` (one invocation per pixel): bicubic warping of `I1` and its gradient by the flow, `|∇I1w|²` and
 *    the constant part of the linearised residual `ρc`;
 * 2. `solve` (one workgroup of up to 1024 invocations): the whole loop of up to `outerIterations × innerIterations`
 *    primal-dual iterations with the median filter before each outer iteration. The squared update `Σ|Δu|²`
 *    is reduced in workgroup memory after every primal step, so the early stop (`Σ|Δu|² <= ε²·n`) is exactly
 *    the CPU path's, with no round trip to the host. One workgroup keeps every barrier inside a single
 *    dispatch; a level is one submission and one read-back.
 *
 * One workgroup per pair uses one compute unit, so a single pair leaves most of a real GPU idle;
 * {@link opticalFlowTVL1WebGPUBatch} runs many pairs (a dataset) side by side, one workgroup each.
 *
 * Numerics: float32 throughout (the CPU path computes each step in float64 and stores float32), and the error
 * sum is a float32 tree sum, so an early stop can land one iteration apart; the flows agree to a few
 * thousandths of a pixel on the golden pairs (tests/data/tvl1_webgpu_test.ts). `gamma` (illumination term) and
 * `initialFlow` are not implemented here.
 *
 * Speed: only measured on Mesa llvmpipe (software, 2 CPU cores), where it is 8–14× slower than OpenCV on the
 * CPU (BENCHMARKS.md); no real GPU was available to measure it.
 *
 * @module
 */
import type { Flow, GrayImage } from "./types.ts";
import {
  checkGrayImage,
  resolveTVL1Options,
  type TVL1Options,
  type TVL1Params,
  tvl1PyramidSizes,
} from "./optical_flow.ts";
import { centeredGradientInto, resizeLinearInto } from "./tvl1_ops.ts";

/** Uniform block shared by both kernels (all 4-byte fields). */
const PARAMS_WGSL = /* wgsl */ `
struct Params {
  w: u32,
  h: u32,
  stride: u32,        // plane stride of the packed buffers (pixels of the finest level)
  outerIterations: u32,
  innerIterations: u32,
  median: u32,        // 1 (off), 3 or 5
  lt: f32,            // lambda * theta
  theta: f32,
  taut: f32,          // tau / theta
  scaledEpsilon: f32, // epsilon^2 * w * h
}
@group(0) @binding(0) var<uniform> P: Params;
`;

/**
 * warp: img = [I1 | I1x | I1y | I0], u = [u1 | u2 | ...], data <- [I1wx | I1wy | grad | rhoC].
 * Bicubic (Keys a = -0.75) with taps outside the image reading 0 (OpenCV remap INTER_CUBIC, BORDER_CONSTANT).
 */
const WARP_WGSL = PARAMS_WGSL + /* wgsl */ `
@group(0) @binding(1) var<storage, read> img: array<f32>;
@group(0) @binding(2) var<storage, read> u: array<f32>;
@group(0) @binding(3) var<storage, read_write> data: array<f32>;

fn cubicWeights(t: f32) -> vec4<f32> {
  let A = -0.75;
  let t1 = t + 1.0;
  let w0 = ((A * t1 - 5.0 * A) * t1 + 8.0 * A) * t1 - 4.0 * A;
  let w1 = ((A + 2.0) * t - (A + 3.0)) * t * t + 1.0;
  let s = 1.0 - t;
  let w2 = ((A + 2.0) * s - (A + 3.0)) * s * s + 1.0;
  return vec4<f32>(w0, w1, w2, 1.0 - w0 - w1 - w2);
}

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let x = gid.x;
  let y = gid.y;
  if (x >= P.w || y >= P.h) { return; }
  let S = P.stride;
  // Pair gid.z: its four planes start at 4 * S * gid.z in every packed buffer.
  let i = 4u * S * gid.z + y * P.w + x;
  let i0 = 4u * S * gid.z;
  let X = f32(x) + u[i];
  let Y = f32(y) + u[S + i];
  let fx = floor(X);
  let fy = floor(Y);
  let wx = cubicWeights(X - fx);
  let wy = cubicWeights(Y - fy);
  let ix = i32(fx) - 1;
  let iy = i32(fy) - 1;
  var a = 0.0;
  var gx = 0.0;
  var gy = 0.0;
  for (var k = 0; k < 4; k++) {
    let yy = iy + k;
    if (yy < 0 || yy >= i32(P.h)) { continue; }
    for (var j = 0; j < 4; j++) {
      let xx = ix + j;
      if (xx < 0 || xx >= i32(P.w)) { continue; }
      let wgt = wy[k] * wx[j];
      let q = i0 + u32(yy) * P.w + u32(xx);
      a += wgt * img[q];
      gx += wgt * img[S + q];
      gy += wgt * img[2u * S + q];
    }
  }
  data[i] = gx;
  data[S + i] = gy;
  data[2u * S + i] = gx * gx + gy * gy;
  data[3u * S + i] = a - gx * u[i] - gy * u[S + i] - img[3u * S + i];
}
`;

/**
 * Comparators `[i, j]` (min to wire i, max to wire j) that leave the median of `n` values (n odd) on wire
 * `(n − 1) / 2`: Batcher's odd-even merge sorting network for `n` inputs, pruned to the comparators the middle
 * output depends on (n = 25: 113 of 140; n = 9: 24 of 28). Branch-free with fixed indices, so a GPU keeps the
 * window in registers.
 */
export function medianNetwork(n: number): [number, number][] {
  if (!Number.isInteger(n) || n < 1 || n % 2 === 0) {
    throw new RangeError(`medianNetwork: n must be a positive odd integer, got ${n}`);
  }
  const net: [number, number][] = [];
  for (let p = 1; p < n; p <<= 1) {
    for (let k = p; k >= 1; k >>= 1) {
      for (let j = k % p; j + k < n; j += 2 * k) {
        for (let i = 0; i < Math.min(k, n - j - k); i++) {
          if (Math.floor((i + j) / (2 * p)) === Math.floor((i + j + k) / (2 * p))) {
            net.push([i + j, i + j + k]);
          }
        }
      }
    }
  }
  // Walk backwards from the middle wire, keeping the comparators that feed it.
  const need = new Set([(n - 1) / 2]);
  const kept: [number, number][] = [];
  for (let c = net.length - 1; c >= 0; c--) {
    const [a, b] = net[c];
    if (need.has(a) || need.has(b)) {
      kept.push([a, b]);
      need.add(a);
      need.add(b);
    }
  }
  return kept.reverse();
}

/** WGSL `median{k}(off, x, y)`: k×k median (replicate border) of the plane at `off`, unrolled network. */
function medianWgsl(k: number): string {
  const r = (k - 1) / 2;
  const lines: string[] = [`fn median${k}(off: u32, x: i32, y: i32) -> f32 {`];
  for (let d = -r; d <= r; d++) {
    const t = d + r;
    lines.push(`  let ry${t} = off + u32(clamp(y + (${d}), 0, i32(P.h) - 1)) * P.w;`);
    lines.push(`  let cx${t} = u32(clamp(x + (${d}), 0, i32(P.w) - 1));`);
  }
  for (let a = 0; a < k; a++) {
    for (let b = 0; b < k; b++) lines.push(`  var a${a * k + b} = u[ry${a} + cx${b}];`);
  }
  for (const [i, j] of medianNetwork(k * k)) {
    lines.push(`  { let t = min(a${i}, a${j}); a${j} = max(a${i}, a${j}); a${i} = t; }`);
  }
  lines.push(`  return a${(k * k - 1) / 2};`, "}");
  return lines.join("\n");
}

/**
 * solve: data = [I1wx | I1wy | grad | rhoC] (read), u = [u1 | u2 | tmp1 | tmp2], p = [p11 | p12 | p21 | p22].
 * One workgroup; every phase is a strided loop over the pixels followed by a storage barrier.
 */
const solveWgsl = (WG: number) =>
  PARAMS_WGSL + /* wgsl */ `
@group(0) @binding(1) var<storage, read> data: array<f32>;
@group(0) @binding(2) var<storage, read_write> u: array<f32>;
@group(0) @binding(3) var<storage, read_write> p: array<f32>;

const WG: u32 = ${WG}u;
const FLT_EPSILON: f32 = 1.1920928955078125e-7;
var<workgroup> partial: array<f32, ${WG}>;

${medianWgsl(3)}
${medianWgsl(5)}
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let S = P.stride;
  let w = P.w;
  let n = P.w * P.h;
  // One workgroup per pair: its planes start at 4 * S * pair in every packed buffer.
  let b = 4u * S * wid.x;
  var error = 3.4e38;
  for (var outer = 0u; outer < P.outerIterations; outer++) {
    if (!(error > P.scaledEpsilon)) { break; }
    if (P.median > 1u) {
      for (var i = lid; i < n; i += WG) {
        let x = i32(i % w);
        let y = i32(i / w);
        if (P.median == 3u) {
          u[b + 2u * S + i] = median3(b, x, y);
          u[b + 3u * S + i] = median3(b + S, x, y);
        } else {
          u[b + 2u * S + i] = median5(b, x, y);
          u[b + 3u * S + i] = median5(b + S, x, y);
        }
      }
      storageBarrier();
      for (var i = lid; i < n; i += WG) {
        u[b + i] = u[b + 2u * S + i];
        u[b + S + i] = u[b + 3u * S + i];
      }
      storageBarrier();
    }
    for (var inner = 0u; inner < P.innerIterations; inner++) {
      if (!(error > P.scaledEpsilon)) { break; }
      // Primal step: thresholding for v, then u = v + theta * div p (backward differences, OpenCV borders).
      var e = 0.0;
      for (var i = lid; i < n; i += WG) {
        let j = b + i;
        let x = i % w;
        let gx = data[j];
        let gy = data[S + j];
        let g = data[2u * S + j];
        let a1 = u[j];
        let a2 = u[S + j];
        let rho = data[3u * S + j] + gx * a1 + gy * a2;
        let ltg = P.lt * g;
        var d1 = 0.0;
        var d2 = 0.0;
        if (rho < -ltg) {
          d1 = P.lt * gx;
          d2 = P.lt * gy;
        } else if (rho > ltg) {
          d1 = -P.lt * gx;
          d2 = -P.lt * gy;
        } else if (g > FLT_EPSILON) {
          let fi = -rho / g;
          d1 = fi * gx;
          d2 = fi * gy;
        }
        var div1 = p[j] + p[S + j];
        var div2 = p[2u * S + j] + p[3u * S + j];
        if (x > 0u) {
          div1 -= p[j - 1u];
          div2 -= p[2u * S + j - 1u];
        }
        if (i >= w) {
          div1 -= p[S + j - w];
          div2 -= p[3u * S + j - w];
        }
        let n1 = a1 + d1 + P.theta * div1;
        let n2 = a2 + d2 + P.theta * div2;
        u[j] = n1;
        u[S + j] = n2;
        e += (n1 - a1) * (n1 - a1) + (n2 - a2) * (n2 - a2);
      }
      partial[lid] = e;
      storageBarrier();
      workgroupBarrier();
      for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) { partial[lid] += partial[lid + s]; }
        workgroupBarrier();
      }
      error = workgroupUniformLoad(&partial[0]);
      // Dual step: forward-difference gradient of the new u (0 on the last column / row), projection.
      for (var i = lid; i < n; i += WG) {
        let j = b + i;
        let x = i % w;
        let right = select(0u, 1u, x + 1u < w);
        let down = select(0u, w, i + w < n);
        let c1 = u[j];
        let c2 = u[S + j];
        let u1x = u[j + right] - c1;
        let u1y = u[j + down] - c1;
        let u2x = u[S + j + right] - c2;
        let u2y = u[S + j + down] - c2;
        let k1 = 1.0 / (1.0 + P.taut * sqrt(u1x * u1x + u1y * u1y));
        let k2 = 1.0 / (1.0 + P.taut * sqrt(u2x * u2x + u2y * u2y));
        p[j] = (p[j] + P.taut * u1x) * k1;
        p[S + j] = (p[S + j] + P.taut * u1y) * k1;
        p[2u * S + j] = (p[2u * S + j] + P.taut * u2x) * k2;
        p[3u * S + j] = (p[3u * S + j] + P.taut * u2y) * k2;
      }
      storageBarrier();
    }
  }
}
`;

interface Pipelines {
  device: GPUDevice;
  warp: GPUComputePipeline;
  solve: GPUComputePipeline;
}

const pipelineCache = new WeakMap<GPUDevice, Pipelines>();
let defaultDevice: Promise<GPUDevice> | null = null;

/**
 * The WebGPU device used when none is passed: requested once from `navigator.gpu`.
 *
 * @throws {Error} when WebGPU or an adapter is unavailable.
 */
export function tvl1Device(): Promise<GPUDevice> {
  if (defaultDevice === null) {
    defaultDevice = (async () => {
      const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
      if (!gpu) {
        throw new Error("opticalFlowTVL1WebGPU: WebGPU is not available (navigator.gpu is undefined)");
      }
      const adapter = await gpu.requestAdapter();
      if (!adapter) throw new Error("opticalFlowTVL1WebGPU: no WebGPU adapter on this machine");
      // Software adapters (Mesa llvmpipe) keep the default 256 invocations: their shader compile time grows
      // steeply with the workgroup size (≈ 1 s at 256, ≈ 15 s at 1024 here) and they gain nothing from more.
      const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
      const software = Boolean(info.isFallbackAdapter) || /llvmpipe|lavapipe|swiftshader/i.test(
        `${info.description} ${info.device} ${info.architecture}`,
      );
      if (software) return await adapter.requestDevice();
      const lim = adapter.limits;
      return await adapter.requestDevice({
        requiredLimits: {
          maxComputeInvocationsPerWorkgroup: Math.min(1024, lim.maxComputeInvocationsPerWorkgroup),
          maxComputeWorkgroupSizeX: Math.min(1024, lim.maxComputeWorkgroupSizeX),
        },
      });
    })();
    defaultDevice.catch(() => (defaultDevice = null));
  }
  return defaultDevice;
}

/**
 * Invocations of the single `solve` workgroup: the largest power of two the device allows, up to 1024
 * (WebGPU guarantees 256; {@link tvl1Device} requests the adapter's maximum on hardware adapters).
 */
export function solveWorkgroupSize(device: GPUDevice): number {
  const lim = Math.min(
    device.limits.maxComputeInvocationsPerWorkgroup,
    device.limits.maxComputeWorkgroupSizeX,
    1024,
  );
  return 2 ** Math.floor(Math.log2(lim));
}

function pipelines(device: GPUDevice): Pipelines {
  let p = pipelineCache.get(device);
  if (!p) {
    const make = (code: string, label: string) =>
      device.createComputePipeline({
        label,
        layout: "auto",
        compute: { module: device.createShaderModule({ label, code }), entryPoint: "main" },
      });
    p = {
      device,
      warp: make(WARP_WGSL, "tvl1-warp"),
      solve: make(solveWgsl(solveWorkgroupSize(device)), "tvl1-solve"),
    };
    pipelineCache.set(device, p);
  }
  return p;
}

/** Options of {@link opticalFlowTVL1WebGPU}: the TV-L1 parameters plus the device to use. */
export interface TVL1WebGPUOptions extends TVL1Options {
  /** Device to run on; by default one requested from `navigator.gpu` (see {@link tvl1Device}). */
  device?: GPUDevice;
}

/** Validates and resolves the options shared by the single-pair and batch entry points. */
function resolveGpuOptions(options: TVL1WebGPUOptions, fn: string) {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`${fn}: options must be an object, got ${options}`);
  }
  const { device, initialFlow, ...rest } = options;
  const p = resolveTVL1Options(rest);
  if (p.gamma !== 0) throw new RangeError(`${fn}: gamma != 0 is not implemented on WebGPU`);
  if (initialFlow !== undefined) throw new RangeError(`${fn}: initialFlow is not implemented on WebGPU`);
  return { device, p };
}

/**
 * Dense TV-L1 optical flow from `prev` to `next` on WebGPU; same contract, defaults and errors as
 * {@link opticalFlowTVL1} (`prev(y, x) ≈ next(y + v, x + u)`).
 *
 * @param prev first frame, Uint8Array (0..255) or Float32Array (0..255 scale, see `floatScale`).
 * @param next second frame, same size.
 * @param options TV-L1 parameters (defaults: OpenCV's) and an optional `device`.
 * @returns `{ width, height, u, v }`, Float32Array `[height * width]` in pixels.
 * @throws {TypeError} / {RangeError} as {@link opticalFlowTVL1}; {@link RangeError} for `gamma` ≠ 0 or an
 *   `initialFlow` (not implemented on the GPU); {@link Error} when no WebGPU device is available.
 *
 * @example
 * ```ts ignore
 * import { opticalFlowTVL1WebGPU } from "./tvl1_webgpu.ts";
 * const flow = await opticalFlowTVL1WebGPU(onset, apex); // needs a WebGPU adapter
 * ```
 */
export async function opticalFlowTVL1WebGPU(
  prev: GrayImage,
  next: GrayImage,
  options: TVL1WebGPUOptions = {},
): Promise<Flow> {
  const fn = "opticalFlowTVL1WebGPU";
  checkPair(prev, next, fn, "");
  const { device, p } = resolveGpuOptions(options, fn);
  const [flow] = await runBatch(device ?? await tvl1Device(), [[prev, next]], p);
  return flow;
}

/**
 * TV-L1 flows of many pairs at once on WebGPU: one `solve` workgroup per pair, so on a real GPU the pairs run
 * in parallel across the compute units (a dataset of face crops in a few submissions). Pairs may differ in
 * size; each size is run as its own batch, in chunks that fit the device's storage-buffer limit. Each flow is
 * exactly what {@link opticalFlowTVL1WebGPU} returns for that pair.
 *
 * @param pairs `[prev, next]` frames (each pair of equal size).
 * @param options as {@link opticalFlowTVL1WebGPU}.
 * @returns one {@link Flow} per pair, in order.
 * @throws {TypeError} / {RangeError} as {@link opticalFlowTVL1WebGPU}, naming the pair index.
 */
export async function opticalFlowTVL1WebGPUBatch(
  pairs: readonly (readonly [GrayImage, GrayImage])[],
  options: TVL1WebGPUOptions = {},
): Promise<Flow[]> {
  const fn = "opticalFlowTVL1WebGPUBatch";
  if (!Array.isArray(pairs)) {
    throw new TypeError(`${fn}: pairs must be an array of [prev, next], got ${pairs}`);
  }
  pairs.forEach((pair, k) => {
    if (!Array.isArray(pair) || pair.length !== 2) {
      throw new TypeError(`${fn}: pairs[${k}] must be a [prev, next] array`);
    }
    checkPair(pair[0], pair[1], fn, `pairs[${k}].`);
  });
  const { device: given, p } = resolveGpuOptions(options, fn);
  const device = given ?? await tvl1Device();
  const bySize = new Map<string, number[]>();
  pairs.forEach(([a], k) => {
    const key = `${a.width}x${a.height}`;
    bySize.set(key, [...(bySize.get(key) ?? []), k]);
  });
  const out: Flow[] = new Array(pairs.length);
  for (const idx of bySize.values()) {
    const [a] = pairs[idx[0]];
    // 4 planes of float32 per pair in each packed storage buffer.
    const perPair = 4 * a.width * a.height * 4;
    const maxPairs = Math.max(1, Math.floor(device.limits.maxStorageBufferBindingSize / perPair));
    for (let k = 0; k < idx.length; k += maxPairs) {
      const chunk = idx.slice(k, k + maxPairs);
      const flows = await runBatch(device, chunk.map((i) => pairs[i]), p);
      chunk.forEach((i, j) => (out[i] = flows[j]));
    }
  }
  return out;
}

function checkPair(prev: GrayImage, next: GrayImage, fn: string, where: string): void {
  checkGrayImage(prev, `${where}prev`, fn);
  checkGrayImage(next, `${where}next`, fn);
  if (prev.width !== next.width || prev.height !== next.height) {
    throw new TypeError(
      `${fn}: ${where}prev is ${prev.width}x${prev.height} but ${where}next is ${next.width}x${next.height}; ` +
        "the two frames must have the same size",
    );
  }
}

/** Runs same-sized pairs as one batch (one solve workgroup per pair). */
async function runBatch(
  device: GPUDevice,
  pairs: readonly (readonly [GrayImage, GrayImage])[],
  p: TVL1Params,
): Promise<Flow[]> {
  const { warp, solve } = pipelines(device);
  const B = pairs.length;
  const W = pairs[0][0].width, H = pairs[0][0].height, N = W * H;
  const levels = tvl1PyramidSizes(W, H, p.nscales, p.scaleStep);
  const L = levels.length;
  const inv = 1 / p.scaleStep;

  // CPU pyramids (identical to the CPU path): i0[b][s], i1[b][s].
  const pyramid = (img: GrayImage): Float32Array<ArrayBuffer>[] => {
    const k = img.data instanceof Float32Array ? p.floatScale : 1;
    const out = [Float32Array.from(img.data, (x) => x * k)];
    for (let s = 1; s < L; s++) {
      const [pw, ph] = levels[s - 1];
      const [w, h] = levels[s];
      out.push(new Float32Array(w * h));
      resizeLinearInto(out[s - 1], pw, ph, out[s], w, h, inv, inv);
    }
    return out;
  };
  const i0 = pairs.map(([a]) => pyramid(a));
  const i1 = pairs.map(([, b]) => pyramid(b));

  const F = GPUBufferUsage;
  const packed = (usage: number) => device.createBuffer({ size: 4 * N * 4 * B, usage });
  const paramsBuf = device.createBuffer({ size: 48, usage: F.UNIFORM | F.COPY_DST });
  const imgBuf = packed(F.STORAGE | F.COPY_DST);
  const uBuf = packed(F.STORAGE | F.COPY_DST | F.COPY_SRC);
  const dataBuf = packed(F.STORAGE);
  const pBuf = packed(F.STORAGE | F.COPY_DST);
  const readBuf = device.createBuffer({ size: 4 * N * 4 * B, usage: F.MAP_READ | F.COPY_DST });
  const buffers = [paramsBuf, imgBuf, uBuf, dataBuf, pBuf, readBuf];
  try {
    const warpGroup = device.createBindGroup({
      layout: warp.getBindGroupLayout(0),
      entries: [paramsBuf, imgBuf, uBuf, dataBuf].map((b, i) => ({ binding: i, resource: { buffer: b } })),
    });
    const solveGroup = device.createBindGroup({
      layout: solve.getBindGroupLayout(0),
      entries: [paramsBuf, dataBuf, uBuf, pBuf].map((b, i) => ({ binding: i, resource: { buffer: b } })),
    });
    const [cw, ch] = levels[L - 1];
    let u1 = pairs.map(() => new Float32Array(cw * ch));
    let u2 = pairs.map(() => new Float32Array(cw * ch));
    const gradX = new Float32Array(N), gradY = new Float32Array(N);
    const params = new ArrayBuffer(48);
    const pu = new Uint32Array(params), pf = new Float32Array(params);
    const plane = (b: number, k: number) => (4 * b + k) * N * 4; // byte offset of plane k of pair b
    for (let s = L - 1; s >= 0; s--) {
      const [w, h] = levels[s];
      const n = w * h;
      pu.set([w, h, N, p.outerIterations, p.innerIterations, p.medianFiltering]);
      pf.set([p.lambda * p.theta, p.theta, p.tau / p.theta, p.epsilon * p.epsilon * n], 6);
      device.queue.writeBuffer(paramsBuf, 0, params);
      for (let b = 0; b < B; b++) {
        centeredGradientInto(i1[b][s], w, h, gradX, gradY);
        device.queue.writeBuffer(imgBuf, plane(b, 0), i1[b][s]);
        device.queue.writeBuffer(imgBuf, plane(b, 1), gradX, 0, n);
        device.queue.writeBuffer(imgBuf, plane(b, 2), gradY, 0, n);
        device.queue.writeBuffer(imgBuf, plane(b, 3), i0[b][s]);
        device.queue.writeBuffer(uBuf, plane(b, 0), u1[b]);
        device.queue.writeBuffer(uBuf, plane(b, 1), u2[b]);
      }
      const enc = device.createCommandEncoder();
      enc.clearBuffer(pBuf);
      const pass = enc.beginComputePass();
      for (let k = 0; k < p.warps; k++) {
        pass.setPipeline(warp);
        pass.setBindGroup(0, warpGroup);
        pass.dispatchWorkgroups(Math.ceil(w / 8), Math.ceil(h / 8), B);
        pass.setPipeline(solve);
        pass.setBindGroup(0, solveGroup);
        pass.dispatchWorkgroups(B);
      }
      pass.end();
      enc.copyBufferToBuffer(uBuf, 0, readBuf, 0, 4 * N * 4 * B);
      device.queue.submit([enc.finish()]);
      await readBuf.mapAsync(GPUMapMode.READ);
      const all = new Float32Array(readBuf.getMappedRange());
      const r1 = pairs.map((_, b) => all.slice(4 * b * N, 4 * b * N + n));
      const r2 = pairs.map((_, b) => all.slice((4 * b + 1) * N, (4 * b + 1) * N + n));
      readBuf.unmap();
      if (s === 0) return r1.map((u, b) => ({ width: W, height: H, u, v: r2[b] }));
      // Upsample to the next finer level and scale the displacement by 1/scaleStep (as the CPU path).
      const [fw, fh] = levels[s - 1];
      const up = (r: Float32Array) => {
        const o = new Float32Array(fw * fh);
        resizeLinearInto(r, w, h, o, fw, fh, w / fw, h / fh);
        for (let i = 0; i < o.length; i++) o[i] *= inv;
        return o;
      };
      u1 = r1.map(up);
      u2 = r2.map(up);
    }
    throw new Error("unreachable");
  } finally {
    for (const b of buffers) b.destroy();
  }
}
