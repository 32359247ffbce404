import assert from "node:assert/strict";
import { join } from "node:path";
import { loadComposite, readCompositeList } from "../../../lib/data/datasets/composite.ts";
import { COMPOSITE_ROWS, writeCsv } from "../../fixtures/datasets/make_fixtures.ts";
import { applyProtocol } from "../../../lib/data/protocols.ts";
import { losoSplits } from "../../../lib/data/loso.ts";
import { FIX, rejectsDataset } from "./_helpers.ts";

const LIST = join(FIX, "composite", "combined_3class_gt.csv");
const HTNET = join(FIX, "composite", "combined_3_class2_for_optical_flow.csv");
const PARTS = {
  casme2: { root: join(FIX, "casme2") },
  samm: { root: join(FIX, "samm") },
  smic: { root: join(FIX, "smic") },
};

Deno.test("readCompositeList parses the headerless list and HTNet's headered copy identically", async () => {
  const a = await readCompositeList(LIST);
  const b = await readCompositeList(HTNET);
  assert.equal(a.rows.length, 9);
  assert.deepEqual(a.rows.map(({ row: _r, ...x }) => x), b.rows.map(({ row: _r, ...x }) => x));
  assert.deepEqual(a.rows[4], { dataset: "smic", subject: "s1", filename: "s1_ne_01", label: 0, row: 5 });
  assert.deepEqual(a.rows[7], { dataset: "samm", subject: "006", filename: "006_1_2", label: 0, row: 8 });
  assert.equal(b.rows[0].row, 2);
});

Deno.test("loadComposite builds from the list with dataset-prefixed subjects; the list label wins", async () => {
  const { samples, warnings } = await loadComposite(LIST, PARTS);
  assert.deepEqual(samples.map((s) => `${s.subject}|${s.id}|${s.emotion}`), [
    "casme2/sub01|sub01/EP02_01f|happiness",
    "casme2/sub01|sub01/EP19_05f|disgust",
    "casme2/sub02|sub02/EP05_03|negative",
    "casme2/sub03|sub03/EP01_01|surprise",
    "smic/s1|s1_ne_01|negative",
    "smic/s1|s1_po_01|positive",
    "smic/s2|s2_sur_01|surprise",
    "samm/006|006_1_2|anger",
    "samm/007|007_6_1|happiness",
  ]);
  // EP05_03 is "others" in the sheet but negative in the list.
  assert.ok(
    warnings.some((w) =>
      /row 3 \(casme2\/sub02\/EP05_03\): label-file emotion "others" maps to nothing/.test(w)
    ),
  );
  const pr = applyProtocol(samples, "megc2019-3class");
  assert.deepEqual([...pr.fine], [1, 0, 0, 2, 0, 1, 2, 0, 1]);
  assert.deepEqual(pr.counts, { negative: 4, positive: 3, surprise: 2 });
  const folds = losoSplits(samples.map((s) => s.subject));
  assert.deepEqual(folds.map((f) => f.subject), [
    "casme2/sub01",
    "casme2/sub02",
    "casme2/sub03",
    "samm/006",
    "samm/007",
    "smic/s1",
    "smic/s2",
  ]);
  const fine = applyProtocol(samples, "megc2019-emotions");
  assert.deepEqual(fine.protocol.classes.fine.slice(0, 3), ["anger", "contempt", "disgust"]);
  assert.deepEqual([...fine.coarse], [...pr.coarse]);
});

Deno.test("loadComposite: a CASME II fear sample in the list takes the list's class (not in CASME II's MEGC classes)", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "merba_ds_" });
  try {
    const list = join(tmp, "list.csv");
    await writeCsv(list, [...COMPOSITE_ROWS, ["casme2", "sub03", "EP07_01", 0]]);
    const { samples, warnings } = await loadComposite(list, PARTS);
    const s = samples.find((x) => x.id === "sub03/EP07_01")!;
    assert.equal(s.emotion, "negative");
    assert.ok(
      warnings.some((w) =>
        /EP07_01\): label-file emotion "fear" maps to nothing but the list says negative/.test(w)
      ),
    );
    const pr = applyProtocol(samples, "megc2019-3class");
    assert.equal(pr.samples.length, 10);
    assert.deepEqual(pr.excluded, {});
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("loadComposite broken: missing sample, missing part, bad label", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "merba_ds_" });
  try {
    const list = join(tmp, "list.csv");
    await writeCsv(list, [...COMPOSITE_ROWS, ["casme2", "sub04", "EP09_09", 0]]);
    await rejectsDataset(loadComposite(list, PARTS), {
      file: /list\.csv$/,
      row: 10,
      field: "filename",
      message: /casme2\/sub04\/EP09_09 is not among the loadable casme2 samples/,
    });
    const skipped = await loadComposite(list, PARTS, { skipBad: true });
    assert.equal(skipped.samples.length, 9);
    await rejectsDataset(loadComposite(LIST, { casme2: PARTS.casme2, smic: PARTS.smic }), {
      message: /the list uses samm but parts\.samm/,
    });
    // a repeated row: dropped with a warning when it agrees, an error naming both rows when it does not
    await writeCsv(list, [...COMPOSITE_ROWS, ["samm", "006", "006_1_2", 0]]);
    const dup = await readCompositeList(list);
    assert.equal(dup.rows.length, 9);
    assert.ok(
      dup.warnings.some((w) => /row 10: duplicate of row 8 \(samm\/006\/006_1_2, same label\)/.test(w)),
    );
    await writeCsv(list, [...COMPOSITE_ROWS, ["samm", "6", "006_1_2", 2]]);
    await rejectsDataset(readCompositeList(list), {
      row: 10,
      field: "label",
      message: /samm\/006\/006_1_2 is listed again with label 2 \(row 8 says 0\)/,
    });
    const lenient = await readCompositeList(list, { skipBad: true });
    assert.equal(lenient.rows.find((r) => r.filename === "006_1_2")?.label, 0);
    assert.ok(
      lenient.warnings.some((w) =>
        /^skipped: .*row 10, field "label": samm\/006\/006_1_2 is listed again with label 2/.test(w)
      ),
    );
    await writeCsv(list, [["casme2", "sub01", "EP02_01f"]]);
    await rejectsDataset(readCompositeList(list), {
      row: 1,
      message: /expected 4 columns dataset,subject,filename,label .*row 1 has 3/,
    });
    await writeCsv(list, [["casme2", "sub01", "EP02_01f", 7]]);
    await rejectsDataset(loadComposite(list, PARTS), {
      row: 1,
      field: "label",
      message: /label 7 is not 0, 1 or 2/,
    });
    await writeCsv(list, [["mmew", "sub01", "EP02_01f", 1]]);
    await rejectsDataset(loadComposite(list, PARTS), {
      row: 1,
      field: "dataset",
      message: /unknown dataset "mmew"/,
    });
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
