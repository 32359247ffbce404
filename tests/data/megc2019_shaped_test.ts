import assert from "node:assert/strict";
import { MEGC2019_PARTS, megc2019Shaped } from "../../bench/megc2019_shaped.ts";
import type { FlowDataset } from "../../lib/data/types.ts";

/** A source with `subjects` subjects of `per` samples; pixel values encode the source index. */
function source(subjects: number, per: number): FlowDataset {
  const n = subjects * per;
  const h = 2, w = 2, px = h * w * 3;
  const x = new Float32Array(n * px);
  for (let i = 0; i < n; i++) x.fill(i, i * px, (i + 1) * px);
  const fine = Int32Array.from({ length: n }, (_, i) => i % 5);
  const fineToCoarse = [0, 0, 0, 1, 2];
  return {
    name: "src",
    protocol: "synthetic-5class",
    n,
    height: h,
    width: w,
    x,
    fine,
    coarse: Int32Array.from(fine, (f) => fineToCoarse[f]),
    classes: {
      fine: ["anger", "disgust", "sadness", "happiness", "surprise"],
      coarse: ["negative", "positive", "surprise"],
      fineToCoarse,
    },
    subjects: Array.from(
      { length: n },
      (_, i) => `synthetic/sub${String(Math.floor(i / per) + 1).padStart(2, "0")}`,
    ),
    datasets: Array.from({ length: n }, () => "synthetic"),
    ids: Array.from({ length: n }, (_, i) => `s${i}`),
  };
}

Deno.test("megc2019Shaped: 68 subjects, 442 samples split 164 / 145 / 133 with the source's rows and valence labels", () => {
  const src = source(70, 13);
  const ds = megc2019Shaped(src);
  assert.equal(ds.n, 442);
  assert.equal(ds.protocol, "megc2019-shaped-synthetic");
  assert.equal(new Set(ds.subjects).size, 68);
  for (const part of MEGC2019_PARTS) {
    const rows = ds.datasets.filter((d) => d === part.dataset).length;
    assert.equal(rows, part.samples, part.dataset);
    const subs = new Set(ds.subjects.filter((_, i) => ds.datasets[i] === part.dataset));
    assert.equal(subs.size, part.subjects, part.dataset);
    for (const s of subs) assert.ok(s.startsWith(`${part.dataset}/`), s);
  }
  assert.deepEqual(ds.classes.fine, ["negative", "positive", "surprise"]);
  const px = 2 * 2 * 3;
  for (let j = 0; j < ds.n; j++) {
    const i = ds.x[j * px]; // source index encoded in the pixels
    assert.ok(ds.x.subarray(j * px, (j + 1) * px).every((v) => v === i));
    assert.equal(ds.fine[j], src.coarse[i]);
    assert.equal(ds.ids[j], `${ds.datasets[j]}:s${i}`);
  }
  // no source row twice; each new subject holds rows of one source subject
  assert.equal(new Set(ds.ids).size, ds.n);
  const origin = new Map<string, Set<string>>();
  ds.subjects.forEach((s, j) => {
    if (!origin.has(s)) origin.set(s, new Set());
    origin.get(s)!.add(src.subjects[ds.x[j * px]]);
  });
  for (const o of origin.values()) assert.equal(o.size, 1);
  // SMIC's 164 over 16 subjects of 13: the round robin gives 10 or 11 each
  const smicCounts = [...new Set(ds.subjects.filter((s) => s.startsWith("smic/")))].map((s) =>
    ds.subjects.filter((t) => t === s).length
  );
  assert.deepEqual([...new Set(smicCounts)].sort(), [10, 11]);
});

Deno.test("megc2019Shaped: too few subjects or samples is a RangeError naming the shortfall", () => {
  assert.throws(() => megc2019Shaped(source(67, 13)), /has 67 subjects, need 68/);
  assert.throws(() => megc2019Shaped(source(68, 6)), /16 subjects for smic have too few samples/);
});

Deno.test("megc2019Shaped labels fine: the same rows with the source's 5 classes, valence as the coarse level", () => {
  const src = source(70, 13);
  const a = megc2019Shaped(src);
  const b = megc2019Shaped(src, { labels: "fine" });
  assert.equal(b.protocol, "megc2019-shaped-synthetic-5class");
  assert.deepEqual(b.ids, a.ids);
  assert.deepEqual(b.subjects, a.subjects);
  assert.deepEqual(b.classes, src.classes);
  const px = 2 * 2 * 3;
  for (let j = 0; j < b.n; j++) {
    const i = b.x[j * px];
    assert.equal(b.fine[j], src.fine[i]);
    assert.equal(b.coarse[j], src.coarse[i]);
    assert.equal(b.coarse[j], a.fine[j]);
  }
  assert.equal(new Set(b.fine).size, 5);
});
