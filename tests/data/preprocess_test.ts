import assert from "node:assert/strict";
import { join } from "node:path";
import { loadCasme2 } from "../../lib/data/datasets/casme2.ts";
import { loadSmic } from "../../lib/data/datasets/smic.ts";
import {
  flowMagnitudeScorer,
  preprocessDataset,
  type PreprocessProgress,
  type PreprocessStats,
} from "../../lib/data/preprocess.ts";
import { loadFlowDataset, saveFlowDataset } from "../../lib/data/cache.ts";
import { crop } from "../../lib/data/image.ts";
import { DatasetError, type Flow, type GrayImage } from "../../lib/data/types.ts";
import { FIX, scratchCopy } from "./datasets/_helpers.ts";

/** A cheap deterministic "flow": u = next − prev, v = prev / 255 (enough to check plumbing). */
function diffFlow(prev: GrayImage, next: GrayImage): Flow {
  const n = prev.width * prev.height;
  const u = new Float32Array(n);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    u[i] = next.data[i] - prev.data[i];
    v[i] = prev.data[i] / 255;
  }
  return { width: prev.width, height: prev.height, u, v };
}

/** Input builder that keeps raw values: pixel (y, x) of a size×size grid, nearest neighbour. */
function rawInput(f: Flow, size: number): Float32Array {
  const out = new Float32Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const sy = Math.floor((y * f.height) / size);
      const sx = Math.floor((x * f.width) / size);
      const k = (y * size + x) * 3;
      out[k] = f.u[sy * f.width + sx];
      out[k + 1] = f.v[sy * f.width + sx];
      out[k + 2] = f.width * 100 + f.height;
    }
  }
  return out;
}

Deno.test("preprocessDataset: protocol, labels, subjects, cache reuse, progress, save/load", async () => {
  const { samples } = await loadCasme2(join(FIX, "casme2"));
  const cacheDir = await Deno.makeTempDir();
  try {
    let calls = 0;
    const method = (a: GrayImage, b: GrayImage) => {
      calls++;
      return diffFlow(a, b);
    };
    const progress: PreprocessProgress[] = [];
    const opts = {
      protocol: "casme2-5class",
      size: 4,
      method,
      methodName: "diff",
      toInput: rawInput,
      toInputName: "raw",
      cacheDir,
      onProgress: (p: PreprocessProgress) => progress.push(p),
    };
    const stats: PreprocessStats[] = [];
    const ds = await preprocessDataset(samples, { ...opts, onFinish: (s) => stats.push(s) });
    assert.equal(calls, 5); // fear is excluded by the 5-class protocol
    assert.equal(ds.n, 5);
    assert.equal(ds.protocol, "casme2-5class");
    assert.equal(ds.name, "casme2");
    assert.deepEqual([ds.height, ds.width], [4, 4]);
    assert.equal(ds.x.length, 5 * 4 * 4 * 3);
    assert.deepEqual(ds.ids, [
      "sub01/EP02_01f",
      "sub01/EP19_05f",
      "sub02/EP03_02",
      "sub02/EP05_03",
      "sub03/EP01_01",
    ]);
    assert.deepEqual(ds.subjects, [
      "casme2/sub01",
      "casme2/sub01",
      "casme2/sub02",
      "casme2/sub02",
      "casme2/sub03",
    ]);
    assert.deepEqual(ds.datasets, Array(5).fill("casme2"));
    // fine order: disgust, repression, happiness, surprise, others
    assert.deepEqual([...ds.fine], [2, 0, 1, 4, 3]);
    assert.deepEqual([...ds.coarse], [1, 0, 0, 3, 2]);
    assert.deepEqual(ds.preprocessing!.excluded, { fear: 1 });
    assert.equal(stats[0].cacheHits, 0);
    assert.equal(stats[0].total, 5);
    assert.deepEqual(
      progress.map((p) => [p.done, p.total, p.cached]),
      [0, 1, 2, 3, 4, 5].map((d) => [d, 5, false]),
    );
    // The input really is apex − onset of the 8x8 frames, sampled at (0, 0).
    assert.equal(ds.x[2], 8 * 100 + 8);
    const { readGray } = await import("../../lib/data/image_io.ts");
    const on = await readGray(samples[0].onsetPath);
    const ap = await readGray(samples[0].apexPath);
    assert.equal(ds.x[0], ap.data[0] - on.data[0]);

    // Second run: everything from the cache, method never called, identical tensor.
    const again = await preprocessDataset(samples, {
      ...opts,
      onProgress: undefined,
      onFinish: (s) => stats.push(s),
    });
    assert.equal(calls, 5);
    assert.equal(stats[1].cacheHits, 5);
    assert.deepEqual(again.x, ds.x);
    // Same inputs, same file bytes, warm or cold.
    const { encodeFlowDataset } = await import("../../lib/data/cache.ts");
    assert.deepEqual(encodeFlowDataset(again), encodeFlowDataset(ds));
    // A different size is a different cache entry.
    await preprocessDataset(samples, { ...opts, size: 2, onProgress: undefined });
    assert.equal(calls, 10);

    const file = join(cacheDir, "out.mflow");
    await saveFlowDataset(ds, file);
    const back = await loadFlowDataset(file);
    assert.deepEqual(back.x, ds.x);
    assert.deepEqual(back.classes, ds.classes);
    assert.deepEqual(back.preprocessing, JSON.parse(JSON.stringify(ds.preprocessing)));
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("preprocessDataset: face crop callback, skipBad on unreadable frames, size mismatch", async () => {
  const { dir, cleanup } = await scratchCopy("casme2");
  try {
    const { samples } = await loadCasme2(dir);
    const crop6 = (a: GrayImage, b: GrayImage) => ({ onset: crop(a, 1, 1, 6, 5), apex: crop(b, 1, 1, 6, 5) });
    const ds = await preprocessDataset(samples, {
      protocol: "casme2-5class",
      size: 2,
      method: diffFlow,
      toInput: rawInput,
      faceCrop: crop6,
    });
    assert.equal(ds.x[2], 6 * 100 + 5);
    assert.equal(ds.preprocessing!.faceCrop, "crop6");

    // A frame that disappears after loading (or is corrupt) is a DatasetError naming the file.
    await Deno.writeTextFile(samples[2].apexPath, "garbage");
    await Deno.remove(samples[0].onsetPath);
    const opts = { protocol: "casme2-5class", size: 2, method: diffFlow, toInput: rawInput };
    await assert.rejects(
      preprocessDataset(samples, opts),
      (e: unknown) =>
        e instanceof DatasetError && e.file === samples[0].onsetPath &&
        /image file not found/.test(e.message),
    );
    const skipped = await preprocessDataset(samples, { ...opts, skipBad: true });
    assert.equal(skipped.n, 3);
    const w = skipped.preprocessing!.warnings as string[];
    assert.equal(w.length, 2);
    assert.match(w[0], /skipped casme2\/sub01\/EP02_01f: .*img46\.jpg: image file not found/);
    assert.match(w[1], /skipped casme2\/sub02\/EP03_02: .*img11\.jpg: (cannot decode|unknown image format)/);

    const uneven = (a: GrayImage, b: GrayImage) => ({ onset: a, apex: crop(b, 0, 0, 7, 8) });
    await assert.rejects(
      preprocessDataset(samples.slice(1, 2), { ...opts, faceCrop: uneven }),
      /apex frame is 7x8 but onset frame .* is 8x8 \(after faceCrop\)/,
    );
    await assert.rejects(preprocessDataset(samples, { ...opts, size: 0 }), RangeError);
  } finally {
    await cleanup();
  }
});

Deno.test("preprocessDataset with the default TV-L1 + flowToInput on the fixture frames", async () => {
  const { samples } = await loadCasme2(join(FIX, "casme2"));
  const ds = await preprocessDataset(samples.slice(0, 2), { protocol: "casme2-5class", size: 4 });
  assert.equal(ds.preprocessing!.method, "tvl1");
  assert.equal(ds.x.length, 2 * 4 * 4 * 3);
  assert.ok(ds.x.every((v) => Number.isFinite(v) && v >= 0 && v <= 1), "flowToInput normalises to [0, 1]");
  // The fixture pattern moves right by 1 px from onset to apex: TV-L1's mean u must be positive.
  const { opticalFlowTVL1 } = await import("../../lib/data/optical_flow.ts");
  const { readGray } = await import("../../lib/data/image_io.ts");
  const f = opticalFlowTVL1(await readGray(samples[0].onsetPath), await readGray(samples[0].apexPath));
  const meanU = f.u.reduce((a, b) => a + b, 0) / f.u.length;
  assert.ok(meanU > 0.3, `mean u ${meanU}`);
});

Deno.test("flowMagnitudeScorer + max-flow apex: picks the frame farthest from onset on a steady drift", async () => {
  const scorer = flowMagnitudeScorer();
  const { samples } = await loadSmic(join(FIX, "smic"), { apexRule: "max-flow", apexScorer: scorer });
  // The fixture drifts 0.5 px per frame, so motion from onset grows to the last frame.
  assert.deepEqual(samples.map((s) => s.apexFrame), [1005, 2005, 505]);
  const s1 = await scorer(samples[0].onsetPath, samples[0].frames![1]);
  const s4 = await scorer(samples[0].onsetPath, samples[0].frames![4]);
  assert.ok(s4 > s1, `${s4} > ${s1}`);
});
