import assert from "node:assert/strict";
import { loadCasme2 } from "../../../lib/data/datasets/casme2.ts";
import { PROTOCOLS } from "../../../lib/data/protocols.ts";
import { preprocessDataset } from "../../../lib/data/preprocess.ts";

// The generator belongs to helper "synthetic"; this checks that the CASME II loader reads its tree.
const SYNTH = new URL("../../../lib/data/synthetic.ts", import.meta.url);
const haveSynth = await Deno.stat(SYNTH).then(() => true, () => false);

Deno.test({
  name: "loadCasme2 reads a generated synthetic tree; synthetic-5class labels it",
  ignore: !haveSynth,
  fn: async () => {
    const { generateSyntheticDataset } = await import(SYNTH.href);
    const dir = await Deno.makeTempDir({ prefix: "merba_synth_" });
    try {
      const counts = Object.fromEntries(PROTOCOLS["synthetic-5class"].classes.fine.map((f) => [f, [1, 1]]));
      const summary = await generateSyntheticDataset(dir, {
        subjects: 2,
        astronautSubjects: 0,
        size: 32,
        counts,
      });
      const { samples, warnings } = await loadCasme2(dir, {
        dataset: "synthetic",
        emotions: PROTOCOLS["synthetic-5class"].classes.fine,
      });
      // the generator writes the key frames only: one summary warning, nothing else
      assert.equal(warnings.length, 1);
      assert.match(warnings[0], /10 of 10 clips lack frames between onset and offset/);
      assert.equal(samples.length, 10);
      assert.deepEqual(
        new Set(samples.map((s) => s.subject)),
        new Set(["synthetic/sub01", "synthetic/sub02"]),
      );
      const ds = await preprocessDataset(samples, { protocol: "synthetic-5class", size: 8 });
      assert.deepEqual(ds.preprocessing!.counts, summary.perClass);
      assert.ok(ds.x.every((v) => v >= 0 && v <= 1));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
