/**
 * A guard for tfjs-backend-webgpu's `AddN` (4.22): its kernel binds every input as a storage buffer in one
 * shader, with no split when the inputs outnumber the device's `maxStorageBuffersPerShaderStage` (8 on
 * WebGPU's default limits, the output included). Pipeline creation then fails inside WebGPU's error scope —
 * nothing is thrown — and the output buffer is never written, so the result is whatever that pooled buffer
 * held before (zeros, or an earlier tensor's values). tfjs's `Concat` splits its inputs for the same reason;
 * `AddN` does not.
 *
 * merba hit it in `globalNorm` (one `tf.sum(tf.square(g))` per weight, then `addN` over 72 of them): on webgpu
 * the gradient norm and, through buffer reuse, the next step's loss read back as stale values, so gradient
 * clipping and the non-finite-loss check saw wrong numbers and training was unstable.
 *
 * {@link installWebGPUAddNSplit} wraps the registered webgpu `AddN` kernel: more inputs than the limit allows
 * are summed in groups (a tree of `AddN` calls, each within the limit), intermediate results disposed. Fewer
 * inputs go straight to the original kernel (bit-identical). Installed when this module is imported.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

const TAG = Symbol.for("merba.webgpuAddNSplit");

interface WebGPULike {
  device?: { limits?: { maxStorageBuffersPerShaderStage?: number } };
  disposeData(id: unknown): boolean;
}

/** Inputs one webgpu `AddN` shader may bind: the device's storage-buffer limit minus the output (at least 2). */
export function webgpuAddNMaxInputs(backend: unknown): number {
  const lim = (backend as WebGPULike).device?.limits?.maxStorageBuffersPerShaderStage ?? 8;
  return Math.max(2, lim - 1);
}

/**
 * Replaces the webgpu `AddN` kernel with one that splits long input lists (see the module note). Idempotent;
 * a no-op when tfjs-backend-webgpu has not registered `AddN`.
 */
export function installWebGPUAddNSplit(): void {
  const orig = tf.getKernel("AddN", "webgpu") as (tf.KernelConfig & { [TAG]?: boolean }) | undefined;
  if (!orig || orig[TAG]) return;
  const origFunc = orig.kernelFunc;
  const kernelFunc: tf.KernelFunc = (args) => {
    const inputs = args.inputs as unknown as tf.TensorInfo[];
    const max = webgpuAddNMaxInputs(args.backend);
    if (inputs.length <= max) return origFunc(args);
    const temps: tf.TensorInfo[] = [];
    let level = inputs;
    while (level.length > max) {
      const next: tf.TensorInfo[] = [];
      for (let i = 0; i < level.length; i += max) {
        const group = level.slice(i, i + max);
        if (group.length === 1) {
          next.push(group[0]);
          continue;
        }
        const r = origFunc({ ...args, inputs: group as unknown as tf.NamedTensorInfoMap }) as tf.TensorInfo;
        temps.push(r);
        next.push(r);
      }
      level = next;
    }
    const out = origFunc({ ...args, inputs: level as unknown as tf.NamedTensorInfoMap });
    const be = args.backend as unknown as WebGPULike;
    for (const t of temps) be.disposeData(t.dataId);
    return out;
  };
  tf.unregisterKernel("AddN", "webgpu");
  tf.registerKernel({ ...orig, kernelFunc, [TAG]: true } as tf.KernelConfig);
}
installWebGPUAddNSplit();
