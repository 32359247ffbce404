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
import { selectiveScanRef } from "../../lib/ops/selective_scan_ref.ts";
import { loadScanCase, SCAN_CASES } from "../fixtures/selective_scan/load.ts";
import {
  caseTensors,
  checkFinite,
  checkGoldenCase,
  lossWithLastState,
  type ScanFn,
} from "../fixtures/selective_scan/check.ts";

await tf.setBackend("cpu");

for (const name of SCAN_CASES) {
  Deno.test(`selectiveScan cpu kernel matches mamba golden: ${name} (fixture tolerances)`, async () => {
    await tf.setBackend("cpu");
    await checkGoldenCase(await loadScanCase(name));
  });
}

for (const name of ["small_full", "tiny_plain", "long_seq"]) {
  Deno.test(`selectiveScan cpu kernel: gradient with G_last (loss uses lastState) matches tfjs autodiff of the reference: ${name}`, async () => {
    await tf.setBackend("cpu");
    const c = await loadScanCase(name);
    const args = caseTensors(c);
    const { b, d, n } = c.dims;
    const W = tf.randomNormal([b, d, n], 0, 1, "float32", 7);
    const mine = await lossWithLastState(selectiveScan, c, args, W);
    const ref = await lossWithLastState(selectiveScanRef as ScanFn, c, args, W);
    // Both float32 on the same inputs: the reference accumulates in float32 tfjs ops, the kernel in float64;
    // the fixture's gradient tolerances (rtol 1e-3, atol ≤ 1e-3) bound the difference of either to torch.
    mine.forEach((g, i) => assertClose(g, ref[i], { atol: 1e-4, rtol: 1e-3, what: `${name} grad ${i}` }));
    tf.dispose([W, ...Object.values(args).filter((x): x is tf.Tensor => x != null)]);
  });
}

Deno.test("selectiveScan: wrong rank / shape / dtype throw TypeError naming the argument and expected shape", async () => {
  await tf.setBackend("cpu");
  const [b, d, l, n] = [2, 3, 5, 4];
  const u = tf.zeros([b, d, l]) as tf.Tensor3D;
  const A = tf.zeros([d, n]) as tf.Tensor2D;
  const B = tf.zeros([b, n, l]) as tf.Tensor3D;
  const expectType = (f: () => unknown, re: RegExp) =>
    assert.throws(
      f,
      (e: unknown) => e instanceof TypeError && re.test(e.message),
      `expected TypeError ${re}`,
    );
  expectType(
    () => selectiveScan(tf.zeros([b, d]) as unknown as tf.Tensor3D, u, A, B, B),
    /'u'.*rank 3.*\[b, d, l\].*got \[2, 3\]/,
  );
  expectType(
    () => selectiveScan(u, tf.zeros([b, d, l + 1]) as tf.Tensor3D, A, B, B),
    /'delta'.*\[b, d, l\] = \[2, 3, 5\], got \[2, 3, 6\]/,
  );
  expectType(
    () => selectiveScan(u, u, tf.zeros([d + 1, n]) as tf.Tensor2D, B, B),
    /'A'.*\[d, n\] = \[3, 4\]/,
  );
  expectType(() => selectiveScan(u, u, tf.zeros([d]) as unknown as tf.Tensor2D, B, B), /'A'.*rank 2/);
  expectType(
    () => selectiveScan(u, u, A, tf.zeros([b, l, n]) as tf.Tensor3D, B),
    /'B'.*\[b, n, l\] = \[2, 4, 5\], got \[2, 5, 4\]/,
  );
  expectType(() => selectiveScan(u, u, A, B, tf.zeros([1, n, l]) as tf.Tensor3D), /'C'.*\[b, n, l\]/);
  expectType(
    () => selectiveScan(u, u, A, B, B, { D: tf.zeros([d, 1]) as unknown as tf.Tensor1D }),
    /'D'.*\[d\] = \[3\]/,
  );
  expectType(
    () => selectiveScan(u, u, A, B, B, { z: tf.zeros([b, d]) as unknown as tf.Tensor3D }),
    /'z'.*\[b, d, l\]/,
  );
  expectType(
    () => selectiveScan(u, u, A, B, B, { deltaBias: tf.zeros([n]) as tf.Tensor1D }),
    /'deltaBias'.*\[d\] = \[3\], got \[4\]/,
  );
  expectType(
    () => selectiveScan(u, tf.zeros([b, d, l], "int32") as tf.Tensor3D, A, B, B),
    /'delta'.*float32.*int32/,
  );
  expectType(() => selectiveScan(u, [1, 2] as unknown as tf.Tensor3D, A, B, B), /'delta'.*tf.Tensor/);
  assert.throws(
    () => selectiveScan(u, u, A, B, B, { webgpuPath: "fast" as "auto" }),
    (e: unknown) => e instanceof RangeError && /webgpuPath/.test(e.message),
  );
  tf.dispose([u, A, B]);
});

Deno.test("selectiveScan: no NaN/Inf for huge softplus inputs, very negative A and saturated gates (cpu)", async () => {
  await tf.setBackend("cpu");
  await checkFinite(selectiveScan);
});

Deno.test("selectiveScan: throws a clear error on a backend without a kernel", async () => {
  await tf.setBackend("cpu");
  // a second instance of the cpu backend under another name has none of our kernels
  const Cpu = Object.getPrototypeOf(tf.backend()).constructor as new () => tf.KernelBackend;
  tf.registerBackend("merba-no-kernel", () => new Cpu());
  try {
    await tf.setBackend("merba-no-kernel");
    const t = tf.tensor3d([[[0, 0]]]);
    assert.throws(
      () => selectiveScan(t, t, tf.tensor2d([[0]]), t, t),
      /no kernel for the tfjs backend "merba-no-kernel"; supported backends: cpu, webgpu, wasm/,
    );
  } finally {
    await tf.setBackend("cpu");
    tf.removeBackend("merba-no-kernel");
  }
});

Deno.test("selectiveScan: returns out only by default, disposes nothing of the caller's, leaks nothing", async () => {
  await tf.setBackend("cpu");
  const c = await loadScanCase("small_full");
  const args = caseTensors(c);
  const before = tf.memory().numTensors;
  const out = selectiveScan(
    args.u as tf.Tensor3D,
    args.delta as tf.Tensor3D,
    args.A as tf.Tensor2D,
    args.B as tf.Tensor3D,
    args.C as tf.Tensor3D,
  );
  assert.ok(out instanceof tf.Tensor);
  assert.equal(tf.memory().numTensors, before + 1);
  out.dispose();
  for (const t of Object.values(args)) if (t) assert.equal(t.isDisposed, false);
  tf.dispose(Object.values(args).filter((x): x is tf.Tensor => x != null));
});

for (const name of ["small_full", "long_seq"]) {
  Deno.test(`selectiveScan cpu kernel, mixer options (D, deltaBias, softplus, no z) vs reference autodiff: ${name}`, async () => {
    await tf.setBackend("cpu");
    const c = await loadScanCase(name);
    const args = caseTensors(c);
    args.z!.dispose();
    args.z = undefined; // MambaVision's mixer passes no gate
    const W = tf.randomNormal([c.dims.b, c.dims.d, c.dims.n], 0, 1, "float32", 3);
    const mine = await lossWithLastState(selectiveScan, c, args, W);
    const ref = await lossWithLastState(selectiveScanRef as ScanFn, c, args, W);
    assert.equal(mine.length, 7);
    mine.forEach((g, i) => assertClose(g, ref[i], { atol: 1e-4, rtol: 1e-3, what: `${name} grad ${i}` }));
    tf.dispose([W, ...Object.values(args).filter((x): x is tf.Tensor => x != null)]);
  });
}
