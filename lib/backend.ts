/**
 * Backend selection in one place.
 *
 * `initBackend()` picks `webgpu` when a hardware WebGPU adapter exists, else tfjs's `cpu` backend with merba's
 * WebAssembly SIMD kernels. A software adapter (Mesa llvmpipe on a headless Linux box) is skipped by `auto`:
 * it runs the shaders on the CPU, ≈ 7–10× slower than the cpu kernels for merba-tiny training (BENCHMARKS.md);
 * `backend: "webgpu"` still selects it. An explicit choice comes from the `backend` option or the
 * `MERBA_BACKEND` environment variable (`webgpu`, `cpu`, `wasm` or `auto`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
// Side-effect import: registers the "webgpu" backend factory (a type-only import would be elided).
import "@tensorflow/tfjs-backend-webgpu";
import { installWebGPUAddNSplit } from "./ops/webgpu_addn.ts";
import { watchActiveWebGPUDevice } from "./ops/webgpu_errors.ts";
import { disableWasmMatmul, enableWasmMatmul, wasmMatmulEnabled } from "./layers/fused_matmul.ts";
import { getCpuScanImpl, simdScanAvailable } from "./ops/selective_scan_cpu.ts";
import { layerSimdOn } from "./layers/layer_simd.ts";

// tfjs-backend-webgpu 4.22 computes AddN wrongly past the storage-buffer limit (see ops/webgpu_addn.ts)
installWebGPUAddNSplit();

/** Backends merba knows how to run on. `auto` = webgpu on a hardware adapter, else cpu. */
export type BackendName = "webgpu" | "cpu" | "wasm" | "auto";

/** What {@link initBackend} chose and why. */
export interface BackendInfo {
  /** The tfjs backend now active (`webgpu`, `cpu` or `wasm`). */
  name: "webgpu" | "cpu" | "wasm";
  /** Adapter description (vendor, architecture, device), or a note on why no adapter was used. */
  adapter: string;
  /**
   * True when the adapter found is a software fallback (Mesa llvmpipe; its timings are CPU timings). `auto`
   * skips such an adapter (`name` is then `cpu` and `adapter` says so); an explicit `webgpu` uses it.
   */
  isFallbackAdapter: boolean;
  /** How the choice was made: `option`, `env` (MERBA_BACKEND) or `auto`. */
  source: "option" | "env" | "auto";
  /**
   * The kernels behind merba's fused layers on `cpu`/`wasm` (null on webgpu): `scan` = selective-scan loops
   * (`"simd"` WebAssembly SIMD for state sizes that are multiples of 4, else `"js"`); `layers` = linear,
   * activation, LayerNorm, attention and convolution kernels (`"simd"` WebAssembly SIMD where the channel count
   * allows, see `setCpuLayerImpl`, else `"js"`); `matmul` = the matrix products the SIMD layer kernels do not
   * take (all of them with `layers: "js"`): `"xnnpack"` through tfjs's wasm backend, or `"js"`.
   */
  cpuKernels: { scan: "simd" | "js"; layers: "simd" | "js"; matmul: "xnnpack" | "js" } | null;
}

let current: BackendInfo | undefined;

/**
 * The kernels merba's fused layers use on the active backend right now (see {@link BackendInfo.cpuKernels}),
 * or null when the active backend is not `cpu`/`wasm`.
 */
export function cpuKernelsInUse(): BackendInfo["cpuKernels"] {
  const b = tf.getBackend();
  if (b !== "cpu" && b !== "wasm") return null;
  return {
    scan: getCpuScanImpl() !== "js" && simdScanAvailable() ? "simd" : "js",
    layers: layerSimdOn() ? "simd" : "js",
    matmul: wasmMatmulEnabled() ? "xnnpack" : "js",
  };
}

/** One-line form of {@link cpuKernelsInUse}'s answer, as results files and the backend report print it. */
export function describeCpuKernels(k: NonNullable<BackendInfo["cpuKernels"]>): string {
  return `scan ${k.scan}, layers ${k.layers}, matmul ${k.matmul}`;
}

/** Returns the adapter WebGPU would give us, or null where none exists (no GPU, no software driver). */
export async function webgpuAdapter(): Promise<GPUAdapter | null> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) return null;
  try {
    return await gpu.requestAdapter();
  } catch {
    return null;
  }
}

/** True when a WebGPU adapter exists (used to gate GPU tests and benchmarks). */
export async function hasWebGPU(): Promise<boolean> {
  return (await webgpuAdapter()) !== null;
}

function describeAdapter(a: GPUAdapter): { text: string; fallback: boolean } {
  const info = a.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s) => s);
  const fallback = Boolean(info.isFallbackAdapter);
  return { text: parts.join(" / ") || "unknown adapter", fallback };
}

/**
 * Selects and initialises the tfjs backend.
 *
 * @param options.backend explicit choice; overrides `MERBA_BACKEND`. `webgpu` throws when no adapter exists.
 * @param options.quiet do not print the one-line report.
 * @param options.wasmMatmul on `cpu`: run the fused layers' matrix products in XNNPACK through tfjs's wasm
 *   backend ({@link enableWasmMatmul}; ≈ 1.4× per training step of merba-tiny). Default true, or
 *   `MERBA_WASM_MATMUL=0` to turn it off; falls back to the JS kernels when the wasm backend cannot start.
 * @returns what was chosen, with the adapter's description.
 * @throws {RangeError} on an unknown backend name.
 * @throws {Error} when `webgpu` is forced and no adapter exists.
 *
 * @example
 * ```ts
 * import { initBackend } from "./backend.ts";
 * const info = await initBackend({ backend: "cpu", quiet: true });
 * if (info.name !== "cpu") throw new Error("expected cpu");
 * ```
 */
export async function initBackend(
  options: { backend?: BackendName; quiet?: boolean; wasmMatmul?: boolean } = {},
): Promise<BackendInfo> {
  let requested: BackendName = "auto";
  let source: BackendInfo["source"] = "auto";
  const env = Deno.env.get("MERBA_BACKEND");
  if (options.backend) {
    requested = options.backend;
    source = "option";
  } else if (env) {
    requested = env as BackendName;
    source = "env";
  }
  if (!["webgpu", "cpu", "wasm", "auto"].includes(requested)) {
    throw new RangeError(
      `initBackend: unknown backend "${requested}" (from ${source}); expected one of webgpu, cpu, wasm, auto`,
    );
  }
  let name: BackendInfo["name"];
  let adapterText = "none (cpu backend)";
  let fallback = false;
  if (requested === "webgpu" || requested === "auto") {
    const adapter = await webgpuAdapter();
    const d = adapter ? describeAdapter(adapter) : null;
    if (d && d.fallback && requested === "auto") {
      name = "cpu";
      fallback = true;
      adapterText = `software WebGPU adapter ${d.text} skipped (the cpu kernels are faster; ` +
        `backend "webgpu" forces it); using the cpu backend`;
    } else if (d) {
      adapterText = d.text;
      fallback = d.fallback;
      name = "webgpu";
    } else if (requested === "webgpu") {
      throw new Error(
        "initBackend: backend 'webgpu' was requested but navigator.gpu.requestAdapter() returned no adapter " +
          "(no GPU and no Vulkan/EGL software driver; check DENO_WEBGPU_BACKEND)",
      );
    } else {
      name = "cpu";
      adapterText = "no WebGPU adapter; using the cpu backend";
    }
  } else if (requested === "wasm") {
    await import("@tensorflow/tfjs-backend-wasm");
    name = "wasm";
  } else {
    name = "cpu";
  }
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`initBackend: tf.setBackend("${name}") failed`);
  await tf.ready();
  if (name === "cpu") silenceTfjsNodeBanner();
  // failed webgpu kernels are reported as device events only: print them and let trainModel stop on them
  watchActiveWebGPUDevice();
  const envMatmul = Deno.env.get("MERBA_WASM_MATMUL");
  if (envMatmul !== undefined && !["0", "1"].includes(envMatmul)) {
    throw new RangeError(
      `MERBA_WASM_MATMUL=${JSON.stringify(envMatmul)}: expected 0 (off) or 1 (on, the default)`,
    );
  }
  const wantMatmul = options.wasmMatmul ?? envMatmul !== "0";
  if (name === "cpu" && wantMatmul) {
    // switches to the wasm backend and back; cpu stays active (checked below)
    await enableWasmMatmul();
    if (tf.getBackend() !== "cpu") await tf.setBackend("cpu");
  } else disableWasmMatmul();
  const cpuKernels = cpuKernelsInUse();
  current = { name, adapter: adapterText, isFallbackAdapter: fallback, source, cpuKernels };
  if (!options.quiet) {
    console.log(
      `merba backend: ${name} (${source})${name === "webgpu" ? ` adapter: ${adapterText}` : ""}${
        fallback && name === "webgpu" ? " [software fallback: timings are CPU timings]" : ""
      }${fallback && name === "cpu" ? ` [${adapterText}]` : ""}${
        cpuKernels ? ` (${describeCpuKernels(cpuKernels)})` : ""
      }`,
    );
  }
  return current;
}

/**
 * tfjs-backend-cpu 4.22 prints a banner recommending tfjs-node on its first tensor when it sees Node's
 * globals, which Deno provides; tfjs-node does not run under Deno, so the advice only clutters notebook
 * outputs and logs. The banner is gated by the backend's `firstUse` flag, which this clears (nothing else
 * reads it).
 */
function silenceTfjsNodeBanner(): void {
  const be = tf.findBackend("cpu") as unknown as { firstUse?: unknown } | null;
  if (be && be.firstUse === true) be.firstUse = false;
}

/** The last result of {@link initBackend}, or undefined before the first call. */
export function backendInfo(): BackendInfo | undefined {
  return current;
}
