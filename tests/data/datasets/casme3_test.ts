import assert from "node:assert/strict";
import { join } from "node:path";
import { CASME3_MEB_FIXES, loadCasme3 } from "../../../lib/data/datasets/casme3.ts";
import { CASME3_HEADER, CASME3_ROWS, writeXlsx } from "../../fixtures/datasets/make_fixtures.ts";
import { FIX, rejectsDataset, scratchCopy } from "./_helpers.ts";

const ROOT = join(FIX, "casme3", "data");
const LABELS = join(FIX, "casme3", "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx");

Deno.test("loadCasme3 keys duplicate file names by onset and normalises 'Others'", async () => {
  const { samples, warnings, labelFile } = await loadCasme3(ROOT);
  assert.equal(labelFile, LABELS); // found in the parent of root
  assert.deepEqual(samples.map((s) => [s.subject, s.id, s.emotion]), [
    ["casme3/spNO.1", "spNO.1/b/166", "disgust"],
    ["casme3/spNO.1", "spNO.1/b/175", "others"],
    ["casme3/spNO.2", "spNO.2/a/10", "happy"],
    ["casme3/spNO.3", "spNO.3/e/3", "surprise"],
  ]);
  assert.ok(samples[1].apexPath.endsWith(join("spNO.1", "b", "color", "176.jpg")));
  assert.equal(samples[1].actionUnits, "4+7");
  assert.equal(samples[2].actionUnits, "12");
  assert.ok(warnings.some((w) => /1 clips hold several MEs/.test(w)));
});

Deno.test("loadCasme3: repeated (Subject, Filename, Onset) gets the row appended; MEB table rows", async () => {
  assert.equal(CASME3_MEB_FIXES.length, 7);
  assert.deepEqual(CASME3_MEB_FIXES[0], { row: 130, field: "apex", value: 160, source: "MEB" });
  const { dir, cleanup } = await scratchCopy("casme3");
  try {
    const labels = join(dir, "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx");
    await writeXlsx(labels, [CASME3_HEADER, ...CASME3_ROWS, CASME3_ROWS[0]]);
    const { samples, warnings } = await loadCasme3(join(dir, "data"));
    assert.equal(samples[4].id, "spNO.1/b/166@r6");
    assert.ok(warnings.some((w) => /row 6: \(Subject, Filename, Onset\) repeats row 2/.test(w)));

    const bad = CASME3_ROWS.map((r) => [...r]);
    bad[2][7] = "joy";
    bad[3][3] = 99; // apex outside 3..6
    await writeXlsx(labels, [CASME3_HEADER, ...bad]);
    await rejectsDataset(loadCasme3(join(dir, "data")), {
      row: 4,
      field: "emotion",
      message: /unknown emotion "joy"/,
    });
    const skipped = await loadCasme3(join(dir, "data"), { skipBad: true });
    assert.equal(skipped.samples.length, 2);
    assert.ok(
      skipped.warnings.some((w) =>
        /row 5, field "Apex": apex 99 is outside onset..offset 3..6; correct the cell, pass fixes .*--fixes meb/
          .test(w)
      ),
    );

    await Deno.remove(join(dir, "data", "spNO.2"), { recursive: true });
    await writeXlsx(labels, [CASME3_HEADER, ...CASME3_ROWS]);
    await rejectsDataset(loadCasme3(join(dir, "data")), {
      row: 4,
      field: "Filename",
      message: /clip folder not found: .*spNO\.2\/a\/color/,
    });
  } finally {
    await cleanup();
  }
});
