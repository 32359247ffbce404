/**
 * The selective-scan op on the tfjs `cpu` backend (the registered CPU kernel) against the mamba golden
 * fixtures: forward output, last state and the gradients of sum(out·G) for every input. Tolerances are the
 * per-tensor ones stored in each fixture (float32 CPU: rtol 1e-4 forward / 1e-3 gradients, atol from a
 * float64 check), used unchanged for every case.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { assertClose } from "../_util.ts";
import { selectiveScan } from "../../lib/ops/selective_scan.ts";
import { loadScanCase, SCAN_CASES, type ScanCase, toTensor } from "../fixtures/selective_scan/load.ts";

await tf.setBackend("cpu");

/** Map from fixture gradient key to argument name. */
const GRAD_KEYS = [
  ["dU", "u"],
  ["dDelta", "delta"],
  ["dA", "A"],
  ["dB", "B"],
  ["dC", "C"],
  ["dD", "D"],
  ["dZ", "z"],
  ["dDeltaBias", "deltaBias"],
] as const;

/** Runs the op on a golden case and checks out, lastState and all gradients (atolScale multiplies atol). */
export async function checkGoldenCase(
  c: ScanCase,
  options: { webgpuPath?: "auto" | "sequential" | "chunked"; atolScale?: number } = {},
): Promise<void> {
  const tol = c.provenance.tolerance.per_tensor;
  const scale = options.atolScale ?? 1;
  const t = (k: string) => ({ atol: tol[k].atol * scale, rtol: tol[k].rtol, what: `${c.case}.${k}` });
  const inp = c.inputs;
  const args: Record<string, tf.Tensor | undefined> = {
    u: toTensor(inp.u),
    delta: toTensor(inp.delta),
    A: toTensor(inp.A),
    B: toTensor(inp.B),
    C: toTensor(inp.C),
    D: inp.D ? toTensor(inp.D) : undefined,
    z: inp.z ? toTensor(inp.z) : undefined,
    deltaBias: inp.delta_bias ? toTensor(inp.delta_bias) : undefined,
  };
  const G = toTensor(c.gradients.G);
  const names = GRAD_KEYS.map(([, a]) => a).filter((a) => args[a] != null);
  const run = (vals: Record<string, tf.Tensor | undefined>, returnLastState: boolean) =>
    selectiveScan(
      vals.u as tf.Tensor3D,
      vals.delta as tf.Tensor3D,
      vals.A as tf.Tensor2D,
      vals.B as tf.Tensor3D,
      vals.C as tf.Tensor3D,
      {
        D: vals.D as tf.Tensor1D | undefined,
        z: vals.z as tf.Tensor3D | undefined,
        deltaBias: vals.deltaBias as tf.Tensor1D | undefined,
        deltaSoftplus: inp.delta_softplus,
        returnLastState,
        webgpuPath: options.webgpuPath,
      },
    );
  const before = tf.memory().numTensors;
  const { out, lastState } = run(args, true) as { out: tf.Tensor; lastState: tf.Tensor };
  assert.deepEqual(out.shape, c.expected.out.shape);
  assertClose(await out.data(), c.expected.out.data, t("out"));
  assertClose(await lastState.data(), c.expected.last_state.data, t("last_state"));
  out.dispose();
  lastState.dispose();
  const grads = tf.grads((...xs: tf.Tensor[]) => {
    const vals: Record<string, tf.Tensor | undefined> = { ...args };
    names.forEach((k, i) => (vals[k] = xs[i]));
    return tf.sum(tf.mul(run(vals, false) as tf.Tensor, G));
  })(names.map((k) => args[k]!));
  for (const [key, arg] of GRAD_KEYS) {
    const i = names.indexOf(arg);
    if (i < 0) {
      assert.equal(c.gradients[key], null, `${c.case}: fixture has ${key} but the input is absent`);
      continue;
    }
    assert.deepEqual(grads[i].shape, c.gradients[key]!.shape, `${c.case}.${key} shape`);
    assertClose(await grads[i].data(), c.gradients[key]!.data, t(key));
  }
  tf.dispose(grads);
  assert.equal(tf.memory().numTensors, before, `${c.case}: tensors leaked`);
  tf.dispose([G, ...Object.values(args).filter((x): x is tf.Tensor => x != null)]);
}

for (const name of SCAN_CASES) {
  Deno.test(`selectiveScan cpu kernel matches mamba golden: ${name} (fixture tolerances)`, async () => {
    await tf.setBackend("cpu");
    await checkGoldenCase(await loadScanCase(name));
  });
}
