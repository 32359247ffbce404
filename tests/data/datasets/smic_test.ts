import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { loadSmic, smicCanonical } from "../../../lib/data/datasets/smic.ts";
import { FIX, rejectsDataset, scratchCopy } from "./_helpers.ts";

const ROOT = join(FIX, "smic");

Deno.test("smicCanonical maps the composite spelling to the folder spelling", () => {
  assert.equal(smicCanonical("s01"), "s1");
  assert.equal(smicCanonical("s01_ne_01"), "s1_ne_01");
  assert.equal(smicCanonical("s12_po_03"), "s12_po_03");
  assert.equal(smicCanonical("s1"), "s1");
});

Deno.test("loadSmic takes labels from folders and applies the middle-frame apex rule", async () => {
  const { samples, warnings } = await loadSmic(ROOT);
  assert.deepEqual(samples.map((s) => [s.subject, s.id, s.emotion]), [
    ["smic/s1", "s1_ne_01", "negative"],
    ["smic/s1", "s1_po_01", "positive"],
    ["smic/s2", "s2_sur_01", "surprise"],
  ]);
  const s = samples[0];
  assert.deepEqual([s.onsetFrame, s.apexFrame, s.offsetFrame], [1001, 1003, 1005]);
  assert.equal(basename(s.apexPath), "image0001003.bmp");
  assert.equal(s.frames!.length, 5);
  assert.match(s.source.file, /HS\/s1\/micro\/negative\/s1_ne_01$/);
  assert.match(s.notes[0], /no apex annotated; middle frame 1003 used/);
  assert.ok(warnings.some((w) => /s3: no micro\/ folder/.test(w)));
  assert.ok(warnings.some((w) => /apex rule "middle" applied to 3 clips/.test(w)));
  // The HS folder itself works as root too.
  assert.equal((await loadSmic(join(ROOT, "HS"))).samples.length, 3);
});

Deno.test("loadSmic max-flow apex rule scores every frame against onset", async () => {
  const calls: string[] = [];
  const scorer = (onset: string, frame: string) => {
    assert.match(onset, /image0001001\.bmp$|image0002001\.bmp$|image0000501\.bmp$/);
    calls.push(basename(frame));
    return basename(frame) === "image0001002.bmp" ? 10 : 1;
  };
  const { samples, warnings } = await loadSmic(ROOT, { apexRule: "max-flow", apexScorer: scorer });
  assert.equal(samples[0].apexFrame, 1002);
  assert.equal(samples[1].apexFrame, 2002); // all tie at 1: first candidate after onset
  assert.equal(calls.length, 12); // 4 candidates per clip
  assert.ok(warnings.some((w) => /apex rule "max-flow"/.test(w)));
  const strided = await loadSmic(ROOT, { apexRule: "max-flow", apexScorer: () => 0, apexStride: 2 });
  assert.equal(strided.samples[0].apexFrame, 1003); // candidates 1003, 1005 (stride 2 + last)
});

Deno.test("loadSmic broken: unknown emotion folder, empty clip, missing root", async () => {
  const { dir, cleanup } = await scratchCopy("smic");
  try {
    const odd = join(dir, "HS", "s2", "micro", "happy", "s2_ha_01");
    await Deno.mkdir(odd, { recursive: true });
    await Deno.copyFile(
      join(dir, "HS", "s2", "micro", "surprise", "s2_sur_01", "image0000501.bmp"),
      join(odd, "image1.bmp"),
    );
    await rejectsDataset(loadSmic(dir), {
      file: /s2\/micro\/happy\/s2_ha_01$/,
      field: "emotion folder",
      message: /unknown emotion folder "happy"/,
    });
    assert.equal((await loadSmic(dir, { extraEmotions: ["happy"] })).samples.length, 4);
    await Deno.mkdir(join(dir, "HS", "s1", "micro", "negative", "s1_ne_02"));
    const r = await loadSmic(dir, { skipBad: true });
    assert.equal(r.samples.length, 3);
    assert.ok(r.warnings.some((w) => /skipped: .*s1_ne_02.*no image frames/.test(w)));
    assert.ok(r.warnings.some((w) => /skipped: .*unknown emotion folder "happy"/.test(w)));
    await rejectsDataset(loadSmic(join(dir, "nowhere")), { message: /SMIC root folder not found/ });
  } finally {
    await cleanup();
  }
});

Deno.test("loadSmic: a clip in two emotion folders is an error naming both", async () => {
  const { dir, cleanup } = await scratchCopy("smic");
  try {
    const again = join(dir, "HS", "s1", "micro", "positive", "s1_ne_01");
    await Deno.mkdir(again, { recursive: true });
    for await (const e of Deno.readDir(join(dir, "HS", "s1", "micro", "negative", "s1_ne_01"))) {
      await Deno.copyFile(
        join(dir, "HS", "s1", "micro", "negative", "s1_ne_01", e.name),
        join(again, e.name),
      );
    }
    await rejectsDataset(loadSmic(dir), {
      field: "emotion folder",
      message:
        /clip s1_ne_01 of s1 is also in .*s1\/micro\/(negative|positive)\/s1_ne_01; each clip must be in one/,
    });
    const r = await loadSmic(dir, { skipBad: true });
    assert.equal(r.samples.filter((s) => s.id === "s1_ne_01").length, 1);
  } finally {
    await cleanup();
  }
});
