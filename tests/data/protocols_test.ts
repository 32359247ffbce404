import assert from "node:assert/strict";
import {
  applyProtocol,
  getProtocol,
  listProtocols,
  MEGC_EMOTION_CLASS,
  megcClassOf,
  type Protocol,
  PROTOCOLS,
  registerProtocol,
  validateProtocol,
} from "../../lib/data/protocols.ts";
import { DatasetError, type SampleRef } from "../../lib/data/types.ts";

function sample(dataset: string, emotion: string, row = 2): SampleRef {
  return {
    dataset,
    subject: `${dataset}/s1`,
    id: `${emotion}-${row}`,
    emotion,
    onsetFrame: 1,
    apexFrame: 2,
    onsetPath: "a.jpg",
    apexPath: "b.jpg",
    source: { file: "labels.xlsx", row },
    notes: [],
  };
}

Deno.test("built-in protocols are consistent and follow merba-model.md §5.4", () => {
  const names = listProtocols();
  for (
    const n of [
      "casme2-5class",
      "casme2-3class",
      "samm-5class",
      "samm-3class",
      "smic-3class",
      "casme3-7class",
      "casme3-4class",
      "casme3-3class",
      "megc2019-3class",
      "megc2019-emotions",
      "synthetic-5class",
      "synthetic-3class",
    ]
  ) {
    assert.ok(names.includes(n), n);
    validateProtocol(PROTOCOLS[n]);
  }
  const c2 = PROTOCOLS["casme2-5class"].classes;
  const parent = (cls: typeof c2, f: string) => cls.coarse[cls.fineToCoarse[cls.fine.indexOf(f)]];
  assert.deepEqual(c2.coarse, ["negative", "positive", "surprise", "others"]);
  assert.deepEqual(["disgust", "repression", "happiness", "surprise", "others"].map((f) => parent(c2, f)), [
    "negative",
    "negative",
    "positive",
    "surprise",
    "others",
  ]);
  const sm = PROTOCOLS["samm-5class"].classes;
  assert.deepEqual(["anger", "contempt", "happiness", "surprise", "others"].map((f) => parent(sm, f)), [
    "negative",
    "negative",
    "positive",
    "surprise",
    "others",
  ]);
  const c3 = PROTOCOLS["casme3-7class"].classes;
  assert.deepEqual(
    ["disgust", "fear", "anger", "sad", "happy", "surprise", "others"].map((f) => parent(c3, f)),
    [
      "negative",
      "negative",
      "negative",
      "negative",
      "positive",
      "surprise",
      "others",
    ],
  );
  assert.deepEqual(PROTOCOLS["megc2019-3class"].classes.fine, ["negative", "positive", "surprise"]);
  assert.equal(MEGC_EMOTION_CLASS.contempt, "negative");
  assert.equal(MEGC_EMOTION_CLASS.others, undefined);
  assert.deepEqual(PROTOCOLS["synthetic-3class"].emotionToFine, {
    anger: "negative",
    disgust: "negative",
    sadness: "negative",
    happiness: "positive",
    surprise: "surprise",
  });
  assert.deepEqual(Object.keys(PROTOCOLS).sort(), names);
});

Deno.test("applyProtocol maps emotions, counts excluded ones, and rejects unknown ones with the row", () => {
  const ss = ["happiness", "fear", "others", "disgust", "sadness", "repression", "surprise"].map((e, i) =>
    sample("casme2", e, i + 2)
  );
  const r = applyProtocol(ss, "casme2-5class");
  assert.deepEqual(r.samples.map((s) => s.emotion), [
    "happiness",
    "others",
    "disgust",
    "repression",
    "surprise",
  ]);
  assert.deepEqual([...r.fine], [2, 4, 0, 1, 3]);
  assert.deepEqual([...r.coarse], [1, 3, 0, 0, 2]);
  assert.deepEqual(r.excluded, { fear: 1, sadness: 1 });
  assert.deepEqual(r.counts, { disgust: 1, repression: 1, happiness: 1, surprise: 1, others: 1 });
  const r3 = applyProtocol(ss, "casme2-3class");
  assert.deepEqual(r3.excluded, { fear: 1, others: 1, sadness: 1 });
  assert.deepEqual([...r3.coarse], [1, 0, 0, 2]);

  const bad = [...ss, sample("casme2", "joy", 9)];
  assert.throws(
    () => applyProtocol(bad, "casme2-5class"),
    (e: unknown) =>
      e instanceof DatasetError && e.row === 9 && e.field === "emotion" && e.file === "labels.xlsx" &&
      /emotion "joy" of sample joy-9 is neither mapped nor excluded/.test(e.message),
  );
  const skipped = applyProtocol(bad, "casme2-5class", { skipBad: true });
  assert.equal(skipped.samples.length, 5);
  assert.match(skipped.warnings[0], /^skipped: labels\.xlsx, row 9, field "emotion"/);
  assert.throws(
    () => applyProtocol([sample("samm", "anger")], "casme2-5class"),
    (e: unknown) => e instanceof DatasetError && e.field === "dataset" && /covers casme2/.test(e.message),
  );
});

Deno.test("megc2019-3class leaves CASME II's fear and sadness out and keeps SAMM's as negative", () => {
  // reference §2: CASME II's MEGC classes are disgust + repression, happiness, surprise (150 label-file
  // samples); §3: SAMM's negative = anger + contempt + disgust + fear + sadness
  const ss = [
    sample("casme2", "fear", 2),
    sample("casme2", "sadness", 3),
    sample("casme2", "repression", 4),
    sample("samm", "fear", 5),
    sample("samm", "sadness", 6),
    sample("smic", "negative", 7),
  ];
  for (const name of ["megc2019-3class", "megc2019-emotions"]) {
    const r = applyProtocol(ss, name);
    assert.deepEqual(r.samples.map((s) => `${s.dataset}/${s.emotion}`), [
      "casme2/repression",
      "samm/fear",
      "samm/sadness",
      "smic/negative",
    ], name);
    assert.deepEqual(r.excluded, { "fear (casme2)": 1, "sadness (casme2)": 1 }, name);
    assert.deepEqual([...r.coarse], [0, 0, 0, 0], name);
  }
  assert.equal(megcClassOf("casme2", "fear"), undefined);
  assert.equal(megcClassOf("casme2", "disgust"), "negative");
  assert.equal(megcClassOf("samm", "sadness"), "negative");
  assert.equal(megcClassOf("smic", "others"), undefined);
  assert.throws(
    () =>
      validateProtocol({
        ...PROTOCOLS["megc2019-3class"],
        name: "x",
        excludeByDataset: { casme3: ["fear"] },
      }),
    /excludeByDataset names dataset "casme3", which it does not cover/,
  );
});

Deno.test("registerProtocol / getProtocol: validation, duplicates, unknown names", () => {
  const p: Protocol = {
    name: "test-binary",
    datasets: ["synthetic"],
    description: "test",
    classes: { fine: ["a", "b"], coarse: ["ab"], fineToCoarse: [0, 0] },
    emotionToFine: { anger: "a", happiness: "b" },
    exclude: ["surprise"],
  };
  registerProtocol(p);
  assert.equal(PROTOCOLS["test-binary"], p);
  assert.ok("test-binary" in PROTOCOLS);
  assert.throws(() => registerProtocol(p), /already registered/);
  registerProtocol({ ...p, description: "v2" }, { replace: true });
  assert.equal(getProtocol("test-binary").description, "v2");
  assert.throws(
    () => getProtocol("nope"),
    (e: unknown) => e instanceof RangeError && /registered: .*casme2-5class/.test(String(e)),
  );
  assert.throws(
    () => registerProtocol({ ...p, name: "bad1", classes: { ...p.classes, fineToCoarse: [0, 1] } }),
    /fineToCoarse\[1\] = 1 is not a coarse index/,
  );
  assert.throws(
    () => registerProtocol({ ...p, name: "bad2", emotionToFine: { anger: "a" } }),
    /fine class "b" has no emotion/,
  );
  assert.throws(
    () => registerProtocol({ ...p, name: "bad3", emotionToFine: { ...p.emotionToFine, surprise: "a" } }),
    /both mapped and excluded/,
  );
  const r = applyProtocol([sample("synthetic", "happiness"), sample("synthetic", "surprise")], "test-binary");
  assert.deepEqual([...r.fine], [1]);
  assert.deepEqual([...r.coarse], [0]);
});

// The synthetic generator is another helper's module: compare when it is present.
const SYNTH_AUS = new URL("../../lib/data/synthetic_aus.ts", import.meta.url);
const haveSynth = await Deno.stat(SYNTH_AUS).then(() => true, () => false);

Deno.test({
  name: "synthetic-5class mirrors the generator's SYNTHETIC_CLASSES",
  ignore: !haveSynth,
  fn: async () => {
    const { SYNTHETIC_CLASSES } = await import(SYNTH_AUS.href);
    assert.deepEqual(PROTOCOLS["synthetic-5class"].classes, SYNTHETIC_CLASSES);
  },
});
