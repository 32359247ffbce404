/**
 * Class protocols as data: which emotions each protocol keeps, their fine (native) classes, the coarse
 * valence classes above them (merba-model.md §5.4: negative / positive / surprise (/ others)), and which
 * emotions are dropped. {@link applyProtocol} turns loader samples into class indices and reports the
 * excluded emotions.
 *
 * Emotions are the loaders' normalised spellings (lower case; SAMM `Other` -> `others`; CAS(ME)^3 keeps its
 * own `happy`, `sad`). Counts in the descriptions are from `datasets-and-evaluation.md` and depend on the
 * label-file version; always report your own (`applyProtocol` returns them).
 *
 * @module
 */

import { type ClassHierarchy, DatasetError, type SampleRef } from "./types.ts";

/** A class protocol. */
export interface Protocol {
  /** Registry key, e.g. `casme2-5class`. */
  name: string;
  /** Datasets whose samples it accepts (`SampleRef.dataset`). */
  datasets: string[];
  /** What it is and the reference counts, for results files. */
  description: string;
  /** Class hierarchy: fine classes, coarse classes, fine -> coarse. */
  classes: ClassHierarchy;
  /** Emotion -> fine class name. Every fine class has at least one emotion. */
  emotionToFine: Record<string, string>;
  /** Emotions dropped by this protocol (counted, not errors). */
  exclude: string[];
  /**
   * Emotions dropped for one dataset's samples only (dataset → emotions), where a name the protocol maps for
   * other datasets is not part of the protocol in that one: MEGC2019 counts SAMM's fear and sadness as negative
   * but leaves CASME II's out. Counted in {@link ProtocolResult.excluded} as `"<emotion> (<dataset>)"`.
   */
  excludeByDataset?: Record<string, string[]>;
}

/**
 * Builds a {@link ClassHierarchy} from `{coarse: [fine...]}` groups (in order). Fine classes are listed
 * group by group.
 */
export function hierarchy(groups: [coarse: string, fine: string[]][]): ClassHierarchy {
  const fine: string[] = [];
  const fineToCoarse: number[] = [];
  groups.forEach(([, fs], ci) => {
    for (const f of fs) {
      fine.push(f);
      fineToCoarse.push(ci);
    }
  });
  return { fine, coarse: groups.map(([c]) => c), fineToCoarse };
}

/** A single-level hierarchy (fine = coarse, identity map). */
export function flatHierarchy(classes: string[]): ClassHierarchy {
  return { fine: [...classes], coarse: [...classes], fineToCoarse: classes.map((_, i) => i) };
}

/**
 * MEGC2019 mapping of every loader emotion to its 3-class name: positive = happiness (and SMIC `positive`),
 * negative = disgust, repression, anger, contempt, fear, sadness (and SMIC `negative`), surprise = surprise.
 * `others` has no class. Fear and sadness count only for SAMM: CASME II's MEGC classes are disgust +
 * repression, happiness and surprise ({@link MEGC_EXCLUDED_BY_DATASET}, {@link megcClassOf}).
 */
export const MEGC_EMOTION_CLASS: Readonly<Record<string, string>> = {
  negative: "negative",
  disgust: "negative",
  repression: "negative",
  anger: "negative",
  contempt: "negative",
  fear: "negative",
  sadness: "negative",
  positive: "positive",
  happiness: "positive",
  surprise: "surprise",
};

/**
 * Emotions outside MEGC2019's three classes for one dataset although {@link MEGC_EMOTION_CLASS} maps the name:
 * CASME II's fear (2) and sadness (4) are not in its MEGC classes (negative = disgust + repression: 150
 * label-file samples, datasets-and-evaluation.md §2), while SAMM's fear and sadness count as negative (§3).
 */
export const MEGC_EXCLUDED_BY_DATASET: Readonly<Record<string, readonly string[]>> = {
  casme2: ["fear", "sadness"],
};

/**
 * The MEGC2019 3-class name of a loader emotion from `dataset`, or undefined when MEGC2019 has no class for
 * it there (`others` anywhere; fear and sadness in CASME II).
 *
 * @example
 * ```ts
 * import { megcClassOf } from "./protocols.ts";
 * import assert from "node:assert/strict";
 * assert.equal(megcClassOf("samm", "fear"), "negative");
 * assert.equal(megcClassOf("casme2", "fear"), undefined);
 * ```
 */
export function megcClassOf(dataset: string, emotion: string): string | undefined {
  if (MEGC_EXCLUDED_BY_DATASET[dataset]?.includes(emotion)) return undefined;
  return MEGC_EMOTION_CLASS[emotion];
}

function identity(names: string[]): Record<string, string> {
  return Object.fromEntries(names.map((n) => [n, n]));
}

const BUILTIN: Protocol[] = [
  {
    name: "casme2-5class",
    datasets: ["casme2"],
    description: "CASME II 5-class: happiness 32, disgust 63, repression 27, surprise 28, others 99 " +
      "(2019 coding file: 249 samples / 26 subjects; fear and sadness dropped).",
    classes: hierarchy([
      ["negative", ["disgust", "repression"]],
      ["positive", ["happiness"]],
      ["surprise", ["surprise"]],
      ["others", ["others"]],
    ]),
    emotionToFine: identity(["disgust", "repression", "happiness", "surprise", "others"]),
    exclude: ["fear", "sadness"],
  },
  {
    name: "casme2-3class",
    datasets: ["casme2"],
    description: "CASME II 3-class from the label file (MEGC mapping): negative = disgust + repression, " +
      "positive = happiness, surprise (150 in the file; the official composite keeps 145 — use megc2019-3class " +
      "for MEGC numbers).",
    classes: hierarchy([
      ["negative", ["disgust", "repression"]],
      ["positive", ["happiness"]],
      ["surprise", ["surprise"]],
    ]),
    emotionToFine: identity(["disgust", "repression", "happiness", "surprise"]),
    exclude: ["others", "fear", "sadness"],
  },
  {
    name: "samm-5class",
    datasets: ["samm"],
    description: "SAMM 5-class: anger 57, contempt 12, happiness 26, surprise 15, others 26 " +
      "(136 / 27 subjects; disgust, fear, sadness dropped).",
    classes: hierarchy([
      ["negative", ["anger", "contempt"]],
      ["positive", ["happiness"]],
      ["surprise", ["surprise"]],
      ["others", ["others"]],
    ]),
    emotionToFine: identity(["anger", "contempt", "happiness", "surprise", "others"]),
    exclude: ["disgust", "fear", "sadness"],
  },
  {
    name: "samm-3class",
    datasets: ["samm"],
    description:
      "SAMM 3-class (MEGC mapping): negative = anger + contempt + disgust + fear + sadness (92), " +
      "positive = happiness (26), surprise (15): 133 / 28 subjects.",
    classes: hierarchy([
      ["negative", ["anger", "contempt", "disgust", "fear", "sadness"]],
      ["positive", ["happiness"]],
      ["surprise", ["surprise"]],
    ]),
    emotionToFine: identity(["anger", "contempt", "disgust", "fear", "sadness", "happiness", "surprise"]),
    exclude: ["others"],
  },
  {
    name: "smic-3class",
    datasets: ["smic"],
    description:
      "SMIC-HS 3-class from the emotion folders: negative 70, positive 51, surprise 43 = 164 / 16 " +
      "subjects. Fine = coarse.",
    classes: flatHierarchy(["negative", "positive", "surprise"]),
    emotionToFine: identity(["negative", "positive", "surprise"]),
    exclude: [],
  },
  {
    name: "casme3-7class",
    datasets: ["casme3"],
    description: "CAS(ME)^3 part A 7-class (v2 label file: disgust 250, surprise 187, others 161, fear 86, " +
      "anger 64, sad 57, happy 55 = 860).",
    classes: hierarchy([
      ["negative", ["disgust", "fear", "anger", "sad"]],
      ["positive", ["happy"]],
      ["surprise", ["surprise"]],
      ["others", ["others"]],
    ]),
    emotionToFine: identity(["disgust", "fear", "anger", "sad", "happy", "surprise", "others"]),
    exclude: [],
  },
  {
    name: "casme3-4class",
    datasets: ["casme3"],
    description:
      "CAS(ME)^3 part A 4-class: negative (disgust, fear, anger, sad), positive (happy), surprise, " +
      "others.",
    classes: flatHierarchy(["negative", "positive", "surprise", "others"]),
    emotionToFine: {
      disgust: "negative",
      fear: "negative",
      anger: "negative",
      sad: "negative",
      happy: "positive",
      surprise: "surprise",
      others: "others",
    },
    exclude: [],
  },
  {
    name: "casme3-3class",
    datasets: ["casme3"],
    description: "CAS(ME)^3 part A 3-class: negative = disgust + fear + anger + sad, positive = happy, " +
      "surprise (v2 label file: 457/55/187 = 699); others dropped.",
    classes: flatHierarchy(["negative", "positive", "surprise"]),
    emotionToFine: {
      disgust: "negative",
      fear: "negative",
      anger: "negative",
      sad: "negative",
      happy: "positive",
      surprise: "surprise",
    },
    exclude: ["others"],
  },
  {
    name: "megc2019-3class",
    datasets: ["casme2", "samm", "smic"],
    description:
      "MEGC2019 composite 3-class (load with loadComposite from the official list): negative 250, " +
      "positive 109, surprise 83 = 442 / 68 subjects (SMIC 164, CASME II 145, SAMM 133). Fine = coarse. " +
      "From label files alone: CASME II's fear and sadness are left out, SAMM's count as negative.",
    classes: flatHierarchy(["negative", "positive", "surprise"]),
    emotionToFine: { ...MEGC_EMOTION_CLASS },
    exclude: ["others"],
    excludeByDataset: { casme2: [...MEGC_EXCLUDED_BY_DATASET.casme2] },
  },
  {
    name: "megc2019-emotions",
    datasets: ["casme2", "samm", "smic"],
    description:
      "MEGC2019 composite with the label-file emotions as the fine level (union vocabulary) under " +
      "the 3 MEGC classes; SMIC's folder labels stay `negative`/`positive` fine classes of their own, and so " +
      "do CASME II / SAMM samples whose label the composite list overrides. CASME II's fear and sadness are " +
      "left out (not in its MEGC classes).",
    classes: hierarchy([
      ["negative", ["anger", "contempt", "disgust", "fear", "repression", "sadness", "negative"]],
      ["positive", ["happiness", "positive"]],
      ["surprise", ["surprise"]],
    ]),
    emotionToFine: identity([
      "anger",
      "contempt",
      "disgust",
      "fear",
      "repression",
      "sadness",
      "negative",
      "happiness",
      "positive",
      "surprise",
    ]),
    exclude: ["others"],
    excludeByDataset: { casme2: [...MEGC_EXCLUDED_BY_DATASET.casme2] },
  },
  {
    name: "synthetic-5class",
    datasets: ["synthetic"],
    description:
      "Synthetic dataset (lib/data/synthetic.ts): anger, disgust, sadness under negative; happiness " +
      "under positive; surprise. Mirrors SYNTHETIC_CLASSES (a test checks they agree).",
    classes: hierarchy([
      ["negative", ["anger", "disgust", "sadness"]],
      ["positive", ["happiness"]],
      ["surprise", ["surprise"]],
    ]),
    emotionToFine: identity(["anger", "disgust", "sadness", "happiness", "surprise"]),
    exclude: [],
  },
  {
    name: "synthetic-3class",
    datasets: ["synthetic"],
    description: "Synthetic dataset, coarse classes only (fine = coarse).",
    classes: flatHierarchy(["negative", "positive", "surprise"]),
    emotionToFine: {
      anger: "negative",
      disgust: "negative",
      sadness: "negative",
      happiness: "positive",
      surprise: "surprise",
    },
    exclude: [],
  },
];

const REGISTRY = new Map<string, Protocol>(BUILTIN.map((p) => [p.name, p]));

/**
 * The registered protocols by name (built-ins plus those added with {@link registerProtocol}). A live view:
 * read it after registering.
 */
export const PROTOCOLS: Readonly<Record<string, Protocol>> = new Proxy({} as Record<string, Protocol>, {
  get: (_t, k) => (typeof k === "string" ? REGISTRY.get(k) : undefined),
  has: (_t, k) => typeof k === "string" && REGISTRY.has(k),
  ownKeys: () => [...REGISTRY.keys()],
  getOwnPropertyDescriptor: (_t, k) =>
    typeof k === "string" && REGISTRY.has(k)
      ? { enumerable: true, configurable: true, value: REGISTRY.get(k) }
      : undefined,
});

/** Names of the registered protocols, sorted. */
export function listProtocols(): string[] {
  return [...REGISTRY.keys()].sort();
}

/**
 * Checks a protocol's internal consistency.
 * @throws {RangeError} naming the protocol and the inconsistent entry.
 */
export function validateProtocol(p: Protocol): void {
  const { fine, coarse, fineToCoarse } = p.classes;
  if (fine.length === 0) throw new RangeError(`protocol ${p.name}: no fine classes`);
  if (fineToCoarse.length !== fine.length) {
    throw new RangeError(
      `protocol ${p.name}: fineToCoarse has ${fineToCoarse.length} entries, fine has ${fine.length}`,
    );
  }
  fineToCoarse.forEach((c, i) => {
    if (!Number.isInteger(c) || c < 0 || c >= coarse.length) {
      throw new RangeError(
        `protocol ${p.name}: fineToCoarse[${i}] = ${c} is not a coarse index 0..${coarse.length - 1}`,
      );
    }
  });
  if (new Set(fine).size !== fine.length) {
    throw new RangeError(`protocol ${p.name}: duplicate fine class names`);
  }
  for (const [e, f] of Object.entries(p.emotionToFine)) {
    if (!fine.includes(f)) {
      throw new RangeError(`protocol ${p.name}: emotion "${e}" maps to unknown fine class "${f}"`);
    }
    if (p.exclude.includes(e)) {
      throw new RangeError(`protocol ${p.name}: emotion "${e}" is both mapped and excluded`);
    }
  }
  for (const [d, es] of Object.entries(p.excludeByDataset ?? {})) {
    if (!p.datasets.includes(d)) {
      throw new RangeError(
        `protocol ${p.name}: excludeByDataset names dataset "${d}", which it does not cover (${
          p.datasets.join(", ")
        })`,
      );
    }
    if (!Array.isArray(es) || es.some((e) => typeof e !== "string")) {
      throw new RangeError(`protocol ${p.name}: excludeByDataset.${d} must be a list of emotion names`);
    }
  }
  for (const f of fine) {
    if (!Object.values(p.emotionToFine).includes(f)) {
      throw new RangeError(`protocol ${p.name}: fine class "${f}" has no emotion mapped to it`);
    }
  }
}

/**
 * Adds (or, with `replace`, replaces) a protocol in the registry, e.g. the synthetic dataset's.
 * @throws {RangeError} when the protocol is inconsistent or the name is taken and `replace` is not set.
 */
export function registerProtocol(p: Protocol, { replace = false }: { replace?: boolean } = {}): void {
  validateProtocol(p);
  if (REGISTRY.has(p.name) && !replace) {
    throw new RangeError(`protocol "${p.name}" is already registered (pass {replace: true} to override)`);
  }
  REGISTRY.set(p.name, p);
}

/**
 * Looks a protocol up by name (objects pass through after validation).
 * @throws {RangeError} listing the registered names for an unknown one.
 */
export function getProtocol(p: string | Protocol): Protocol {
  if (typeof p !== "string") {
    validateProtocol(p);
    return p;
  }
  const got = REGISTRY.get(p);
  if (!got) throw new RangeError(`unknown protocol "${p}" (registered: ${listProtocols().join(", ")})`);
  return got;
}

/** Result of {@link applyProtocol}. */
export interface ProtocolResult {
  protocol: Protocol;
  /** Kept samples, in input order. */
  samples: SampleRef[];
  /** Fine class index per kept sample. */
  fine: Int32Array;
  /** Coarse class index per kept sample. */
  coarse: Int32Array;
  /** Count of kept samples per fine class name. */
  counts: Record<string, number>;
  /** Count of dropped samples per excluded emotion (`"<emotion> (<dataset>)"` for a dataset-only exclusion). */
  excluded: Record<string, number>;
  /** Skipped samples (unknown emotions with `skipBad`). */
  warnings: string[];
}

/**
 * Maps samples to a protocol's classes, dropping its excluded emotions.
 *
 * @throws {DatasetError} naming the sample's label file, row and field `emotion` for an emotion the protocol
 * neither maps nor excludes, or for a sample from a dataset the protocol does not cover (unless `skipBad`:
 * then a warning).
 *
 * @example
 * ```ts
 * import { applyProtocol } from "./protocols.ts";
 * import assert from "node:assert/strict";
 * const s = (emotion: string) => ({
 *   dataset: "casme2", subject: "casme2/sub01", id: emotion, emotion, onsetFrame: 1, apexFrame: 2,
 *   onsetPath: "a", apexPath: "b", source: { file: "x.xlsx", row: 2 }, notes: [],
 * });
 * const r = applyProtocol([s("happiness"), s("fear"), s("repression")], "casme2-5class");
 * assert.deepEqual([...r.fine], [2, 1]); // fine order: disgust, repression, happiness, surprise, others
 * assert.deepEqual([...r.coarse], [1, 0]);
 * assert.deepEqual(r.excluded, { fear: 1 });
 * ```
 */
export function applyProtocol(
  samples: SampleRef[],
  protocol: string | Protocol,
  opts: { skipBad?: boolean } = {},
): ProtocolResult {
  const p = getProtocol(protocol);
  const kept: SampleRef[] = [];
  const fine: number[] = [];
  const excluded: Record<string, number> = {};
  const counts: Record<string, number> = Object.fromEntries(p.classes.fine.map((f) => [f, 0]));
  const warnings: string[] = [];
  for (const s of samples) {
    try {
      if (!p.datasets.includes(s.dataset)) {
        throw new DatasetError(
          `sample ${s.id} is from dataset "${s.dataset}"; protocol ${p.name} covers ${p.datasets.join(", ")}`,
          { file: s.source.file, row: s.source.row, field: "dataset" },
        );
      }
      if (p.exclude.includes(s.emotion)) {
        excluded[s.emotion] = (excluded[s.emotion] ?? 0) + 1;
        continue;
      }
      if (p.excludeByDataset?.[s.dataset]?.includes(s.emotion)) {
        const key = `${s.emotion} (${s.dataset})`;
        excluded[key] = (excluded[key] ?? 0) + 1;
        continue;
      }
      const f = p.emotionToFine[s.emotion];
      if (f === undefined) {
        throw new DatasetError(
          `emotion "${s.emotion}" of sample ${s.id} is neither mapped nor excluded by protocol ${p.name} ` +
            `(mapped: ${Object.keys(p.emotionToFine).join(", ")}; excluded: ${
              p.exclude.join(", ") || "none"
            })`,
          { file: s.source.file, row: s.source.row, field: "emotion" },
        );
      }
      kept.push(s);
      fine.push(p.classes.fine.indexOf(f));
      counts[f]++;
    } catch (e) {
      if (opts.skipBad && e instanceof DatasetError) warnings.push(`skipped: ${e.message}`);
      else throw e;
    }
  }
  const fineArr = Int32Array.from(fine);
  const coarse = Int32Array.from(fine, (f) => p.classes.fineToCoarse[f]);
  return { protocol: p, samples: kept, fine: fineArr, coarse, counts, excluded, warnings };
}
