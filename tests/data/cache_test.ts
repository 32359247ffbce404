import assert from "node:assert/strict";
import { join } from "node:path";
import {
  canonicalJson,
  decodeFlowDataset,
  encodeFlowDataset,
  FLOW_DATASET_MAGIC,
  FlowCache,
  hashKey,
  loadFlowDataset,
  saveFlowDataset,
} from "../../lib/data/cache.ts";
import { DatasetError, type FlowDataset } from "../../lib/data/types.ts";

function toyDataset(n: number, size: number, name = "toy"): FlowDataset {
  const x = new Float32Array(n * size * size * 3);
  for (let i = 0; i < x.length; i++) x[i] = Math.fround(Math.sin(i * 0.37) * 1e3 + i * 1e-7);
  x[0] = -0;
  x[1] = Number.MIN_VALUE; // subnormal: must survive bit for bit
  return {
    name,
    protocol: "casme2-5class",
    n,
    height: size,
    width: size,
    x,
    fine: Int32Array.from({ length: n }, (_, i) => i % 5),
    coarse: Int32Array.from({ length: n }, (_, i) => [0, 0, 1, 2, 3][i % 5]),
    classes: {
      fine: ["disgust", "repression", "happiness", "surprise", "others"],
      coarse: ["negative", "positive", "surprise", "others"],
      fineToCoarse: [0, 0, 1, 2, 3],
    },
    subjects: Array.from({ length: n }, (_, i) => `casme2/sub0${i % 3}`),
    datasets: Array.from({ length: n }, () => "casme2"),
    ids: Array.from({ length: n }, (_, i) => `id${i}`),
    preprocessing: { size, method: "tvl1", ünïcode: "✓" },
  };
}

Deno.test("flow dataset file: bit-identical round trip, documented layout, 4-byte aligned data", async () => {
  for (const name of ["a", "ab", "abc", "abcd"]) { // header lengths mod 4 differ
    const ds = toyDataset(7, 3, name);
    const bytes = encodeFlowDataset(ds);
    assert.equal(new TextDecoder().decode(bytes.subarray(0, 8)), FLOW_DATASET_MAGIC);
    const dv = new DataView(bytes.buffer);
    assert.equal(dv.getUint32(8, true), 1);
    const h = dv.getUint32(12, true);
    const head = JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + h)));
    assert.equal(head.layout, "NHWC");
    assert.deepEqual(head.channels, ["u", "v", "strain"]);
    const off = Math.ceil((16 + h) / 4) * 4;
    assert.equal(bytes.length, off + 4 * ds.x.length);
    assert.equal(dv.getFloat32(off + 4 * 5, true), ds.x[5]);
    const back = decodeFlowDataset(bytes);
    assert.deepEqual(new Uint8Array(back.x.buffer), new Uint8Array(ds.x.buffer));
    assert.deepEqual({ ...back, x: null }, { ...ds, x: null });
  }
  const dir = await Deno.makeTempDir();
  try {
    const ds = toyDataset(4, 5);
    const p = join(dir, "sub", "ds.mflow");
    await saveFlowDataset(ds, p);
    const back = await loadFlowDataset(p);
    assert.deepEqual(new Uint8Array(back.x.buffer), new Uint8Array(ds.x.buffer));
    assert.deepEqual([...back.fine], [...ds.fine]);
    assert.deepEqual([...Deno.readDirSync(join(dir, "sub"))].map((e) => e.name), ["ds.mflow"]); // no temp left
    // Empty dataset is legal.
    await saveFlowDataset(toyDataset(0, 2), p);
    assert.equal((await loadFlowDataset(p)).n, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("flow dataset file: errors name the file", async () => {
  const good = encodeFlowDataset(toyDataset(2, 2));
  const bad = (b: Uint8Array, re: RegExp) =>
    assert.throws(
      () => decodeFlowDataset(b, "x.mflow"),
      (e: unknown) => e instanceof DatasetError && e.file === "x.mflow" && re.test(e.message),
    );
  bad(new TextEncoder().encode("hello world, not ours"), /not a merba flow dataset/);
  bad(good.subarray(0, good.length - 4), /expected \d+ bytes for n=2, 2x2x3, found/);
  const v2 = good.slice();
  new DataView(v2.buffer).setUint32(8, 2, true);
  bad(v2, /format version 2 is not supported/);
  const longHead = good.slice();
  new DataView(longHead.buffer).setUint32(12, 1e6, true);
  bad(longHead, /runs past the end/);
  await assert.rejects(loadFlowDataset("/nonexistent/x.mflow"), /flow dataset file not found/);
  assert.throws(
    () => encodeFlowDataset({ ...toyDataset(2, 2), ids: ["a"] }),
    /ids has 1 entries, expected n = 2/,
  );
  assert.throws(() => encodeFlowDataset({ ...toyDataset(2, 2), n: 3 }), TypeError);
});

Deno.test("FlowCache: keyed by parameters and sample; wrong-length entries are misses", async () => {
  assert.equal(canonicalJson({ b: 1, a: [2, { d: 3, c: undefined }] }), '{"a":[2,{"d":3}],"b":1}');
  assert.equal(hashKey({ a: 1, b: 2 }), hashKey({ b: 2, a: 1 }));
  assert.notEqual(hashKey({ a: 1 }), hashKey({ a: 2 }));
  assert.match(hashKey({}), /^[0-9a-f]{16}$/);
  const dir = await Deno.makeTempDir();
  try {
    const c1 = await FlowCache.open(dir, { size: 2, method: "tvl1" });
    const c2 = await FlowCache.open(dir, { method: "tvl1", size: 2 });
    const c3 = await FlowCache.open(dir, { method: "tvl1", size: 4 });
    assert.equal(c1.dir, c2.dir);
    assert.notEqual(c1.dir, c3.dir);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(join(c1.dir, "params.json"))), {
      method: "tvl1",
      size: 2,
    });
    const key = { dataset: "casme2", id: "sub01/EP02_01f", apexFrame: 48 };
    const data = Float32Array.from({ length: 12 }, (_, i) => i / 7);
    await c1.put(key, data);
    assert.deepEqual(await c2.get(key, 12), data);
    assert.equal(await c3.get(key, 12), undefined);
    assert.equal(await c1.get({ ...key, apexFrame: 49 }, 12), undefined);
    assert.equal(await c1.get(key, 48), undefined);
    assert.ok(c1.path(key).endsWith(".f32"));
    assert.equal((await Deno.stat(c1.path(key))).size, 48);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
