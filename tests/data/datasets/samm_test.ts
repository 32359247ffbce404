import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { loadSamm, SAMM_MEB_FIXES } from "../../../lib/data/datasets/samm.ts";
import { SAMM_ROWS, sammSheet, writeXlsx } from "../../fixtures/datasets/make_fixtures.ts";
import { FIX, rejectsDataset, scratchCopy } from "./_helpers.ts";

const ROOT = join(FIX, "samm");
const LABELS = "SAMM_Micro_FACS_Codes_v2.xlsx";

Deno.test("loadSamm finds the header on row 14, pads subjects, reads 5- and 4-digit frame names", async () => {
  const { samples, warnings, labelFile } = await loadSamm(ROOT);
  assert.equal(basename(labelFile), LABELS);
  assert.equal(samples.length, 4);
  const [a, b, c, d] = samples;
  assert.equal(a.subject, "samm/006");
  assert.equal(a.id, "006_1_2");
  assert.equal(a.emotion, "anger");
  assert.deepEqual(a.source, { file: labelFile, row: 15 });
  assert.deepEqual([a.onsetFrame, a.apexFrame, a.offsetFrame], [5562, 5564, 5566]);
  assert.ok(a.onsetPath.endsWith(join("SAMM", "006", "006_1_2", "006_05562.jpg")));
  // Subject 007's copy uses 4-digit frame numbers.
  assert.ok(b.apexPath.endsWith(join("007_6_1", "007_0499.jpg")));
  assert.equal(b.actionUnits, "(R6 or R12)+R15");
  assert.deepEqual([b.emotion, c.emotion, d.emotion], ["happiness", "others", "surprise"]);
  assert.equal(c.source.row, 17);
  // Missing apex -> middle frame 1202, reported.
  assert.equal(d.apexFrame, 1202);
  assert.ok(warnings.some((w) => /row 18: apex missing in label file; middle frame 1202 used/.test(w)));
  assert.ok(!warnings.some((w) => /header found on row/.test(w)));
});

Deno.test("loadSamm: MEB fix table is sheet-row based (index + 15) and user fixes apply", async () => {
  assert.deepEqual(SAMM_MEB_FIXES.map((f) => [f.row, f.field, f.value]), [
    [71, "offset", 5739],
    [140, "apex", 1105],
    [147, "apex", 4945],
    [148, "apex", 5130],
  ]);
  const { samples } = await loadSamm(ROOT, { fixes: [{ row: 18, field: "apex", value: 1203 }] });
  assert.equal(samples[3].apexFrame, 1203);
});

Deno.test("loadSamm broken: missing frame, unknown emotion, bad number, shifted header", async () => {
  const { dir, cleanup } = await scratchCopy("samm");
  try {
    await Deno.remove(join(dir, "SAMM", "006", "006_1_2", "006_05566.jpg"));
    await rejectsDataset(loadSamm(dir), {
      file: /SAMM_Micro_FACS_Codes_v2\.xlsx$/,
      row: 15,
      field: "Offset Frame",
      message: /frame 5566 not found/,
    });
    const skipped = await loadSamm(dir, { skipBad: true });
    assert.deepEqual(skipped.samples.map((s) => s.id), ["007_6_1", "007_6_2", "009_3_1"]);

    const rows = SAMM_ROWS.map((r) => [...r]) as typeof SAMM_ROWS;
    rows[1][6] = "Joy";
    rows[2][2] = -3;
    await writeXlsx(join(dir, LABELS), sammSheet(rows));
    await rejectsDataset(loadSamm(dir), {
      row: 16,
      field: "Estimated Emotion",
      message: /unknown emotion "Joy"/,
    });
    const s2 = await loadSamm(dir, { skipBad: true });
    assert.deepEqual(s2.samples.map((s) => s.id), ["009_3_1"]);
    assert.ok(
      s2.warnings.some((w) =>
        /row 17, field "Onset Frame": expected a non-negative integer, got "-3"/.test(w)
      ),
    );

    // One note row fewer: the header is found by content on row 13 and the shift is reported.
    await writeXlsx(join(dir, LABELS), sammSheet().slice(1));
    const shifted = await loadSamm(dir, { skipBad: true });
    // (006_1_2 on row 14 is skipped: its frame 5566 was deleted above.)
    assert.deepEqual([shifted.samples[0].id, shifted.samples[0].source.row], ["007_6_1", 15]);
    assert.ok(shifted.warnings.some((w) => /header found on row 13/.test(w)));
    // MEB's SAMM rows count from the header on row 14: on a shifted sheet they would hit other clips.
    await rejectsDataset(loadSamm(dir, { skipBad: true, fixes: "meb" }), {
      row: 13,
      field: "fixes",
      message: /MEB's SAMM fixes are for the sheet with its header on row 14; this sheet has it on row 13/,
    });

    await writeXlsx(join(dir, LABELS), [["no header here"]]);
    await rejectsDataset(loadSamm(dir), { message: /no header row holding "Subject" and "Filename"/ });
  } finally {
    await cleanup();
  }
});

Deno.test("loadSamm: a clip listed twice in the sheet is an error naming both rows", async () => {
  const { dir, cleanup } = await scratchCopy("samm");
  try {
    const rows = [...SAMM_ROWS.map((r) => [...r]), [...SAMM_ROWS[0]]] as typeof SAMM_ROWS;
    await writeXlsx(join(dir, LABELS), sammSheet(rows));
    await rejectsDataset(loadSamm(dir), {
      row: 19,
      field: "Filename",
      message: /clip 006\/006_1_2 is listed again \(first on row 15\)/,
    });
    assert.equal((await loadSamm(dir, { skipBad: true })).samples.length, 4);
  } finally {
    await cleanup();
  }
});
