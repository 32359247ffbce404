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
 * Numerics: float32 throughout (the CPU path computes each step in float64 and stores float32), and the error
 * sum is a float32 tree sum, so an early stop can land one iteration apart; the flows agree to a few
 * thousandths of a pixel on the golden pairs (tests/data/tvl1_webgpu_test.ts). `gamma` (illumination term) is
 * not implemented here.
 *
 * @module
 */
import type { Flow, GrayImage } from "./types.ts";
import { checkGrayImage, resolveTVL1Options, type TVL1Options, tvl1PyramidSizes } from "./optical_flow.ts";
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
  let i = y * P.w + x;
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
      let q = u32(yy) * P.w + u32(xx);
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

// Median of the k x k window (replicate border) of plane 'off' at pixel (x, y), by partial selection sort.
fn medianAt(off: u32, x: i32, y: i32, k: i32) -> f32 {
  var a: array<f32, 25>;
  let r = k / 2;
  var n = 0;
  for (var dy = -r; dy <= r; dy++) {
    let yy = clamp(y + dy, 0, i32(P.h) - 1);
    for (var dx = -r; dx <= r; dx++) {
      let xx = clamp(x + dx, 0, i32(P.w) - 1);
      a[n] = u[off + u32(yy) * P.w + u32(xx)];
      n++;
    }
  }
  let mid = n / 2;
  for (var i = 0; i <= mid; i++) {
    var m = i;
    for (var j = i + 1; j < n; j++) {
      if (a[j] < a[m]) { m = j; }
    }
    let t = a[i];
    a[i] = a[m];
    a[m] = t;
  }
  return a[mid];
}

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  let S = P.stride;
  let w = P.w;
  let n = P.w * P.h;
  var error = 3.4e38;
  for (var outer = 0u; outer < P.outerIterations; outer++) {
    if (!(error > P.scaledEpsilon)) { break; }
    if (P.median > 1u) {
      for (var i = lid; i < n; i += WG) {
        let x = i32(i % w);
        let y = i32(i / w);
        u[2u * S + i] = medianAt(0u, x, y, i32(P.median));
        u[3u * S + i] = medianAt(S, x, y, i32(P.median));
      }
      storageBarrier();
      for (var i = lid; i < n; i += WG) {
        u[i] = u[2u * S + i];
        u[S + i] = u[3u * S + i];
      }
      storageBarrier();
    }
    for (var inner = 0u; inner < P.innerIterations; inner++) {
      if (!(error > P.scaledEpsilon)) { break; }
      // Primal step: thresholding for v, then u = v + theta * div p (backward differences, OpenCV borders).
      var e = 0.0;
      for (var i = lid; i < n; i += WG) {
        let x = i % w;
        let gx = data[i];
        let gy = data[S + i];
        let g = data[2u * S + i];
        let a1 = u[i];
        let a2 = u[S + i];
        let rho = data[3u * S + i] + gx * a1 + gy * a2;
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
        var div1 = p[i] + p[S + i];
        var div2 = p[2u * S + i] + p[3u * S + i];
        if (x > 0u) {
          div1 -= p[i - 1u];
          div2 -= p[2u * S + i - 1u];
        }
        if (i >= w) {
          div1 -= p[S + i - w];
          div2 -= p[3u * S + i - w];
        }
        let n1 = a1 + d1 + P.theta * div1;
        let n2 = a2 + d2 + P.theta * div2;
        u[i] = n1;
        u[S + i] = n2;
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
        let x = i % w;
        let right = select(0u, 1u, x + 1u < w);
        let down = select(0u, w, i + w < n);
        let c1 = u[i];
        let c2 = u[S + i];
        let u1x = u[i + right] - c1;
        let u1y = u[i + down] - c1;
        let u2x = u[S + i + right] - c2;
        let u2y = u[S + i + down] - c2;
        let k1 = 1.0 / (1.0 + P.taut * sqrt(u1x * u1x + u1y * u1y));
        let k2 = 1.0 / (1.0 + P.taut * sqrt(u2x * u2x + u2y * u2y));
        p[i] = (p[i] + P.taut * u1x) * k1;
        p[S + i] = (p[S + i] + P.taut * u1y) * k1;
        p[2u * S + i] = (p[2u * S + i] + P.taut * u2x) * k2;
        p[3u * S + i] = (p[3u * S + i] + P.taut * u2y) * k2;
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
 * (WebGPU guarantees 256; {@link tvl1Device} requests the adapter's maximum).
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

/**
 * Dense TV-L1 optical flow from `prev` to `next` on WebGPU; same contract, defaults and errors as
 * {@link opticalFlowTVL1} (`prev(y, x) ≈ next(y + v, x + u)`).
 *
 * @param prev first frame, Uint8Array (0..255) or Float32Array (0..255 scale, see `floatScale`).
 * @param next second frame, same size.
 * @param options TV-L1 parameters (defaults: OpenCV's) and an optional `device`.
 * @returns `{ width, height, u, v }`, Float32Array `[height * width]` in pixels.
 * @throws {TypeError} / {RangeError} as {@link opticalFlowTVL1}; {@link RangeError} for `gamma` ≠ 0
 *   (not implemented on the GPU); {@link Error} when no WebGPU device is available.
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
  checkGrayImage(prev, "prev", "opticalFlowTVL1WebGPU");
  checkGrayImage(next, "next", "opticalFlowTVL1WebGPU");
  if (prev.width !== next.width || prev.height !== next.height) {
    throw new TypeError(
      `opticalFlowTVL1WebGPU: prev is ${prev.width}x${prev.height} but next is ${next.width}x${next.height}; ` +
        "the two frames must have the same size",
    );
  }
  const { device: given, initialFlow, ...rest } = options;
  const p = resolveTVL1Options(rest);
  if (p.gamma !== 0) throw new RangeError("opticalFlowTVL1WebGPU: gamma != 0 is not implemented on WebGPU");
  if (initialFlow !== undefined) {
    throw new RangeError("opticalFlowTVL1WebGPU: initialFlow is not implemented on WebGPU");
  }
  const device = given ?? await tvl1Device();
  const { warp, solve } = pipelines(device);
  const W = prev.width, H = prev.height, N = W * H;
  const levels = tvl1PyramidSizes(W, H, p.nscales, p.scaleStep);
  const L = levels.length;

  // CPU pyramid (identical to the CPU path).
  const inv = 1 / p.scaleStep;
  const i0: Float32Array<ArrayBuffer>[] = [], i1: Float32Array<ArrayBuffer>[] = [];
  for (let s = 0; s < L; s++) {
    const [w, h] = levels[s];
    i0.push(new Float32Array(w * h));
    i1.push(new Float32Array(w * h));
    if (s === 0) {
      const k = prev.data instanceof Float32Array ? p.floatScale : 1;
      for (let i = 0; i < N; i++) (i0[0][i] = prev.data[i] * k), (i1[0][i] = next.data[i] * k);
    } else {
      const [pw, ph] = levels[s - 1];
      resizeLinearInto(i0[s - 1], pw, ph, i0[s], w, h, inv, inv);
      resizeLinearInto(i1[s - 1], pw, ph, i1[s], w, h, inv, inv);
    }
  }

  const F = GPUBufferUsage;
  const buf = (planes: number, usage: number) => device.createBuffer({ size: planes * N * 4, usage });
  const paramsBuf = device.createBuffer({ size: 48, usage: F.UNIFORM | F.COPY_DST });
  const imgBuf = buf(4, F.STORAGE | F.COPY_DST);
  const uBuf = buf(4, F.STORAGE | F.COPY_DST | F.COPY_SRC);
  const dataBuf = buf(4, F.STORAGE);
  const pBuf = buf(4, F.STORAGE | F.COPY_DST);
  const readBuf = device.createBuffer({ size: 2 * N * 4, usage: F.MAP_READ | F.COPY_DST });
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
    let u1 = new Float32Array(levels[L - 1][0] * levels[L - 1][1]);
    let u2 = new Float32Array(u1.length);
    const gradX = new Float32Array(N), gradY = new Float32Array(N);
    const params = new ArrayBuffer(48);
    const pu = new Uint32Array(params), pf = new Float32Array(params);
    for (let s = L - 1; s >= 0; s--) {
      const [w, h] = levels[s];
      const n = w * h;
      pu.set([w, h, N, p.outerIterations, p.innerIterations, p.medianFiltering]);
      pf.set([p.lambda * p.theta, p.theta, p.tau / p.theta, p.epsilon * p.epsilon * n], 6);
      device.queue.writeBuffer(paramsBuf, 0, params);
      centeredGradientInto(i1[s], w, h, gradX, gradY);
      device.queue.writeBuffer(imgBuf, 0, i1[s]);
      device.queue.writeBuffer(imgBuf, N * 4, gradX, 0, n);
      device.queue.writeBuffer(imgBuf, 2 * N * 4, gradY, 0, n);
      device.queue.writeBuffer(imgBuf, 3 * N * 4, i0[s]);
      device.queue.writeBuffer(uBuf, 0, u1);
      device.queue.writeBuffer(uBuf, N * 4, u2);
      const enc = device.createCommandEncoder();
      enc.clearBuffer(pBuf);
      const pass = enc.beginComputePass();
      for (let k = 0; k < p.warps; k++) {
        pass.setPipeline(warp);
        pass.setBindGroup(0, warpGroup);
        pass.dispatchWorkgroups(Math.ceil(w / 8), Math.ceil(h / 8));
        pass.setPipeline(solve);
        pass.setBindGroup(0, solveGroup);
        pass.dispatchWorkgroups(1);
      }
      pass.end();
      enc.copyBufferToBuffer(uBuf, 0, readBuf, 0, n * 4);
      enc.copyBufferToBuffer(uBuf, N * 4, readBuf, N * 4, n * 4);
      device.queue.submit([enc.finish()]);
      await readBuf.mapAsync(GPUMapMode.READ);
      const out = new Float32Array(readBuf.getMappedRange());
      const r1 = out.slice(0, n), r2 = out.slice(N, N + n);
      readBuf.unmap();
      if (s === 0) return { width: W, height: H, u: r1, v: r2 };
      // Upsample to the next finer level and scale the displacement by 1/scaleStep (as the CPU path).
      const [fw, fh] = levels[s - 1];
      u1 = new Float32Array(fw * fh);
      u2 = new Float32Array(fw * fh);
      resizeLinearInto(r1, w, h, u1, fw, fh, w / fw, h / fh);
      resizeLinearInto(r2, w, h, u2, fw, fh, w / fw, h / fh);
      for (let i = 0; i < u1.length; i++) (u1[i] *= inv), (u2[i] *= inv);
    }
    throw new Error("unreachable");
  } finally {
    for (const b of buffers) b.destroy();
  }
}
