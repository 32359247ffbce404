import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { CASME2_MEB_FIXES, loadCasme2 } from "../../../lib/data/datasets/casme2.ts";
import { CASME2_ROWS, casme2Sheet, writeXlsx } from "../../fixtures/datasets/make_fixtures.ts";
import { FIX, rejectsDataset, scratchCopy } from "./_helpers.ts";

const ROOT = join(FIX, "casme2");
const LABELS = "CASME2-coding-20190701.xlsx";

Deno.test("loadCasme2 reads the raw tree and the coding sheet with its spacer columns", async () => {
  const { samples, warnings, labelFile } = await loadCasme2(ROOT);
  assert.equal(basename(labelFile), LABELS);
  assert.equal(samples.length, 6);
  const s = samples[0];
  assert.equal(s.dataset, "casme2");
  assert.equal(s.subject, "casme2/sub01");
  assert.equal(s.id, "sub01/EP02_01f");
  assert.equal(s.emotion, "happiness");
  assert.deepEqual([s.onsetFrame, s.apexFrame, s.offsetFrame], [46, 48, 50]);
  assert.ok(s.onsetPath.endsWith(join("CASME2_RAW_selected", "sub01", "EP02_01f", "img46.jpg")));
  assert.ok(s.apexPath.endsWith("img48.jpg"));
  assert.ok(s.offsetPath!.endsWith("img50.jpg"));
  assert.deepEqual(s.frames!.map((p) => basename(p)), [
    "img46.jpg",
    "img47.jpg",
    "img48.jpg",
    "img49.jpg",
    "img50.jpg",
  ]);
  assert.equal(s.actionUnits, "12");
  assert.deepEqual(s.source, { file: labelFile, row: 2 });
  assert.deepEqual(samples.map((x) => x.subject), [
    "casme2/sub01",
    "casme2/sub01",
    "casme2/sub02",
    "casme2/sub02",
    "casme2/sub03",
    "casme2/sub03",
  ]);
  assert.deepEqual(samples.map((x) => x.emotion), [
    "happiness",
    "disgust",
    "repression",
    "others",
    "surprise",
    "fear",
  ]);
  // Row 3 has ApexFrame "/": the middle frame onset + floor((400 - 396) / 2) = 398 is used and reported.
  const m = samples[1];
  assert.equal(m.actionUnits, "4+7+L10");
  assert.equal(m.apexFrame, 398);
  assert.ok(m.apexPath.endsWith("img398.jpg"));
  assert.match(m.notes.join(";"), /apex missing in label file; middle frame 398 used/);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /row 3: apex missing/);
});

Deno.test("loadCasme2 reads the cropped tree (reg_img frames) and a CSV copy of the sheet", async () => {
  const { samples } = await loadCasme2(ROOT, {
    layout: "cropped",
    labelFile: join(FIX, "casme2_coding.csv"),
  });
  assert.equal(samples.length, 6);
  assert.ok(samples[0].onsetPath.endsWith(join("Cropped", "sub01", "EP02_01f", "reg_img46.jpg")));
  const xlsx = await loadCasme2(ROOT);
  assert.deepEqual(
    samples.map((
      s,
    ) => [s.id, s.emotion, s.onsetFrame, s.apexFrame, s.offsetFrame, s.actionUnits, s.source.row]),
    xlsx.samples.map((
      s,
    ) => [s.id, s.emotion, s.onsetFrame, s.apexFrame, s.offsetFrame, s.actionUnits, s.source.row]),
  );
});

Deno.test("loadCasme2 accepts the frame folder itself as root, with listFrames off", async () => {
  const { samples } = await loadCasme2(join(ROOT, "CASME2_RAW_selected"), {
    labelFile: join(ROOT, LABELS),
    listFrames: false,
  });
  assert.equal(samples.length, 6);
  assert.equal(samples[0].frames, undefined);
});

Deno.test("loadCasme2 apex rules: custom function and max-flow with a scorer", async () => {
  const last = await loadCasme2(ROOT, { apexRule: (ctx) => ctx.frames[ctx.frames.length - 1].frame });
  assert.equal(last.samples[1].apexFrame, 400);
  assert.match(last.samples[1].notes.join(";"), /custom apex rule 400/);
  // A scorer peaking at frame 397: the rule must pick it.
  const scorer = (_onset: string, frame: string) => -Math.abs(Number(/img(\d+)/.exec(frame)![1]) - 397);
  const mf = await loadCasme2(ROOT, { apexRule: "max-flow", apexScorer: scorer });
  assert.equal(mf.samples[1].apexFrame, 397);
  // Annotated apexes are never replaced by the rule.
  assert.equal(mf.samples[0].apexFrame, 48);
  await assert.rejects(loadCasme2(ROOT, { apexRule: "max-flow" }), TypeError);
  await rejectsDataset(loadCasme2(ROOT, { apexRule: () => 1 }), {
    row: 3,
    field: "apex",
    message: /apex rule returned frame 1, which is not a frame of clip sub01\/EP19_05f/,
  });
});

Deno.test("loadCasme2 fixes: documented MEB table and user fixes", async () => {
  assert.equal(CASME2_MEB_FIXES.length, 22);
  assert.deepEqual(CASME2_MEB_FIXES[0], {
    row: 62,
    field: "offset",
    value: 91,
    source: "MEB: offset mistake in file",
  });
  assert.equal(CASME2_MEB_FIXES.filter((f) => f.field === "apex").length, 21);
  const { samples, warnings } = await loadCasme2(ROOT, {
    fixes: [{ row: 3, field: "apex", value: 399, source: "test" }],
  });
  assert.equal(samples[1].apexFrame, 399);
  assert.deepEqual(samples[1].notes, ["apex (missing) -> 399 (test)"]);
  assert.ok(warnings.some((w) => /row 3 \(sub01\/EP19_05f\): apex \(missing\) -> 399/.test(w)));
  // The MEB rows do not exist in the 6-row fixture: reported, not applied.
  const meb = await loadCasme2(ROOT, { fixes: "meb" });
  assert.equal(meb.warnings.filter((w) => /not applied: no such data row/.test(w)).length, 22);
  assert.ok(CASME2_MEB_FIXES.filter((f) => f.field === "apex").every((f) => f.forMissing));
  // A fix made for a missing apex that meets a present one (another sheet version), and one that changes
  // nothing, are applied with a warning each.
  const odd = await loadCasme2(ROOT, {
    fixes: [
      { row: 2, field: "apex", value: 47, forMissing: true },
      { row: 4, field: "offset", value: 13 },
    ],
  });
  assert.equal(odd.samples[0].apexFrame, 47);
  assert.ok(
    odd.warnings.some((w) =>
      /row 2 \(sub01\/EP02_01f\): the fix fills a missing apex but the sheet has 48/.test(w)
    ),
  );
  assert.ok(odd.warnings.some((w) => /row 4 \(sub02\/EP03_02\): the sheet already has offset 13/.test(w)));
});

Deno.test("loadCasme2 broken trees: missing frame, missing folder, missing label file", async () => {
  const { dir, cleanup } = await scratchCopy("casme2");
  try {
    await Deno.remove(join(dir, "CASME2_RAW_selected", "sub01", "EP02_01f", "img48.jpg"));
    await rejectsDataset(loadCasme2(dir), {
      file: /CASME2-coding-20190701\.xlsx$/,
      row: 2,
      field: "ApexFrame",
      message: /row 2, field "ApexFrame": frame 48 not found in .*EP02_01f \(frames on disk: 46\.\.50\)/,
    });
    const skipped = await loadCasme2(dir, { skipBad: true });
    assert.equal(skipped.samples.length, 5);
    assert.ok(
      skipped.warnings.some((w) => /^skipped: .*row 2, field "ApexFrame": frame 48 not found/.test(w)),
    );

    await Deno.remove(join(dir, "CASME2_RAW_selected", "sub03", "EP07_01"), { recursive: true });
    // Still row 2 first (sheet order); restore its frame and the missing folder of row 7 is next.
    await rejectsDataset(loadCasme2(dir), { row: 2, message: /frame 48/ });
    const both = await loadCasme2(dir, { skipBad: true });
    assert.equal(both.samples.length, 4);
    await Deno.copyFile(
      join(dir, "CASME2_RAW_selected", "sub01", "EP02_01f", "img47.jpg"),
      join(dir, "CASME2_RAW_selected", "sub01", "EP02_01f", "img48.jpg"),
    );
    await rejectsDataset(loadCasme2(dir), {
      row: 7,
      field: "Filename",
      message: /clip folder not found: .*sub03\/EP07_01/,
    });
    assert.ok(
      both.warnings.some((w) => /row 7, field "Filename": clip folder not found: .*sub03\/EP07_01/.test(w)),
    );

    await rejectsDataset(loadCasme2(dir, { labelFile: join(dir, "nope.xlsx") }), {
      file: /nope\.xlsx$/,
      message: /label file not found/,
    });
    await rejectsDataset(loadCasme2(join(dir, "missing_root"), { labelFile: join(dir, LABELS) }), {
      message: /CASME II root folder not found/,
    });
  } finally {
    await cleanup();
  }
});

Deno.test("loadCasme2 broken sheets: unknown emotion and bad numbers name the row and field", async () => {
  const { dir, cleanup } = await scratchCopy("casme2");
  try {
    const rows = CASME2_ROWS.map((r) => [...r]) as typeof CASME2_ROWS;
    rows[2][6] = "angry";
    await writeXlsx(join(dir, LABELS), casme2Sheet(rows));
    await rejectsDataset(loadCasme2(dir), {
      row: 4,
      field: "Estimated Emotion",
      message: /unknown emotion "angry" \(known: happiness, disgust/,
    });
    const ok = await loadCasme2(dir, { extraEmotions: ["angry"] });
    assert.equal(ok.samples[2].emotion, "angry");

    rows[2][6] = "repression";
    rows[3][2] = "2x0" as unknown as number;
    rows[4][4] = 4; // offset 4 before onset 5
    await writeXlsx(join(dir, LABELS), casme2Sheet(rows));
    await rejectsDataset(loadCasme2(dir), {
      row: 5,
      field: "OnsetFrame",
      message: /expected a non-negative integer, got "2x0"/,
    });
    const skipped = await loadCasme2(dir, { skipBad: true });
    assert.deepEqual(skipped.samples.map((s) => s.id), [
      "sub01/EP02_01f",
      "sub01/EP19_05f",
      "sub02/EP03_02",
      "sub03/EP07_01",
    ]);
    assert.ok(skipped.warnings.some((w) => /row 6, field "OffsetFrame": offset 4 is before onset 5/.test(w)));

    rows[3][2] = 20;
    rows[4][4] = 8;
    rows[0][0] = "subX" as unknown as number;
    await writeXlsx(join(dir, LABELS), casme2Sheet(rows));
    await rejectsDataset(loadCasme2(dir), { row: 2, field: "Subject", message: /subject number/ });

    await Deno.writeTextFile(join(dir, "bad.xlsx"), "not a zip");
    await rejectsDataset(loadCasme2(dir, { labelFile: join(dir, "bad.xlsx") }), {
      file: /bad\.xlsx$/,
      message: /not an \.xlsx file/,
    });
    await Deno.writeTextFile(join(dir, "old.xls"), "x");
    await rejectsDataset(loadCasme2(dir, { labelFile: join(dir, "old.xls") }), { message: /legacy \.xls/ });
  } finally {
    await cleanup();
  }
});

Deno.test("loadCasme2: a clip listed twice in the sheet is an error naming both rows (skipBad keeps the first)", async () => {
  const { dir, cleanup } = await scratchCopy("casme2");
  try {
    const rows = [...CASME2_ROWS.map((r) => [...r]), [...CASME2_ROWS[0]]] as typeof CASME2_ROWS;
    rows[rows.length - 1][6] = "surprise";
    await writeXlsx(join(dir, LABELS), casme2Sheet(rows));
    await rejectsDataset(loadCasme2(dir), {
      row: 8,
      field: "Filename",
      message: /clip sub01\/EP02_01f is listed again \(first on row 2\)/,
    });
    const skipped = await loadCasme2(dir, { skipBad: true });
    assert.equal(skipped.samples.length, 6);
    assert.deepEqual(
      skipped.samples.filter((s) => s.id === "sub01/EP02_01f").map((s) => s.emotion),
      ["happiness"],
    );
    assert.ok(
      skipped.warnings.some((w) => /^skipped: .*row 8, field "Filename": clip sub01\/EP02_01f/.test(w)),
    );
  } finally {
    await cleanup();
  }
});

Deno.test("loadCasme2: a frame missing inside a clip is reported (the clip still loads)", async () => {
  const { dir, cleanup } = await scratchCopy("casme2");
  try {
    await Deno.remove(join(dir, "CASME2_RAW_selected", "sub01", "EP19_05f", "img397.jpg"));
    const { samples, warnings } = await loadCasme2(dir);
    const s = samples.find((x) => x.id === "sub01/EP19_05f")!;
    assert.equal(s.frames?.length, 4);
    assert.ok(s.notes.includes("frames missing between onset and offset: 1 (397)"));
    assert.ok(
      warnings.some((w) =>
        /1 of 6 clips lack frames between onset and offset \(first: row 3, sub01\/EP19_05f: frames missing between onset and offset: 1 \(397\)\)/
          .test(w)
      ),
    );
  } finally {
    await cleanup();
  }
});
