/**
 * `initBackend`: what `auto` picks (webgpu on a hardware adapter; cpu without an adapter or with a software
 * one such as Mesa llvmpipe), that an explicit `webgpu` still takes a software adapter, and bad names.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initBackend, webgpuAdapter } from "../lib/backend.ts";

async function withoutEnv<T>(fn: () => Promise<T>): Promise<T> {
  const saved = Deno.env.get("MERBA_BACKEND");
  Deno.env.delete("MERBA_BACKEND");
  try {
    return await fn();
  } finally {
    if (saved !== undefined) Deno.env.set("MERBA_BACKEND", saved);
  }
}

const adapter = await webgpuAdapter();
const software = Boolean(
  (adapter?.info as (GPUAdapterInfo & { isFallbackAdapter?: boolean }) | undefined)
    ?.isFallbackAdapter,
);

Deno.test("initBackend auto: webgpu on a hardware adapter, cpu without one or with a software adapter", async () => {
  const info = await withoutEnv(() => initBackend({ quiet: true }));
  assert.equal(info.source, "auto");
  if (adapter && !software) {
    assert.equal(info.name, "webgpu");
    assert.equal(info.isFallbackAdapter, false);
  } else {
    assert.equal(info.name, "cpu");
    assert.equal(tf.getBackend(), "cpu");
    assert.equal(info.isFallbackAdapter, software);
    if (software) assert.match(info.adapter, /software WebGPU adapter .* skipped/);
    assert.ok(info.cpuKernels, "cpu kernels reported");
  }
  await tf.setBackend("cpu");
});

Deno.test({
  name: "initBackend webgpu: an explicit choice takes a software adapter too",
  ignore: !adapter,
  async fn() {
    const info = await withoutEnv(() => initBackend({ backend: "webgpu", quiet: true }));
    assert.equal(info.name, "webgpu");
    assert.equal(info.source, "option");
    assert.equal(info.isFallbackAdapter, software);
    assert.equal(tf.getBackend(), "webgpu");
    await tf.setBackend("cpu");
  },
});

Deno.test("initBackend: unknown names are rejected, naming where they came from", async () => {
  await assert.rejects(
    initBackend({ backend: "gpu" as never, quiet: true }),
    /unknown backend "gpu" \(from option\)/,
  );
  const saved = Deno.env.get("MERBA_BACKEND");
  Deno.env.set("MERBA_BACKEND", "cuda");
  try {
    await assert.rejects(initBackend({ quiet: true }), /unknown backend "cuda" \(from env\)/);
  } finally {
    if (saved === undefined) Deno.env.delete("MERBA_BACKEND");
    else Deno.env.set("MERBA_BACKEND", saved);
  }
  // MERBA_WASM_MATMUL takes 0 or 1 only (a "false" or "off" used to leave XNNPACK on silently)
  const savedMm = Deno.env.get("MERBA_WASM_MATMUL");
  Deno.env.set("MERBA_WASM_MATMUL", "off");
  try {
    await assert.rejects(
      initBackend({ backend: "cpu", quiet: true }),
      /MERBA_WASM_MATMUL="off": expected 0 \(off\) or 1/,
    );
  } finally {
    if (savedMm === undefined) Deno.env.delete("MERBA_WASM_MATMUL");
    else Deno.env.set("MERBA_WASM_MATMUL", savedMm);
  }
});

Deno.test("initBackend cpu: no tfjs-node banner on the first tensor (a fresh process; control: plain setBackend)", async () => {
  const mod = new URL("../lib/backend.ts", import.meta.url).href;
  const run = async (init: string) => {
    const code = `import * as tf from "@tensorflow/tfjs"; import { initBackend } from "${mod}";\n${init}\n` +
      `const t = tf.tensor1d([1, 2]); console.log("sum", (await t.sum().data())[0]);`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=ts", code],
      env: { MERBA_WASM_MATMUL: "0" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.ok(out.success, text);
    assert.match(text, /sum 3/);
    return text;
  };
  assert.doesNotMatch(await run(`await initBackend({ backend: "cpu", quiet: true });`), /Hi, looks like/);
  // the control shows the banner exists in this setup, so the assertion above tests something
  assert.match(await run(`await tf.setBackend("cpu"); void initBackend;`), /Hi, looks like/);
});
