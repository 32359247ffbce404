/**
 * Leave-one-subject-out (LOSO) folds: for each subject, train on every other subject and test on that one.
 * Metrics are computed once on the predictions pooled over all folds (datasets-and-evaluation.md §8).
 *
 * Subjects are the dataset-prefixed fold keys of `SampleRef.subject` / `FlowDataset.subjects`
 * (`casme2/sub01`, `samm/006`, `smic/s1`), so the MEGC2019 composite gives 68 folds even if two parts used
 * the same bare subject name.
 *
 * @module
 */

/** One LOSO fold. */
export interface LosoFold {
  /** Position in the sorted subject list (stable across runs and shards). */
  index: number;
  /** The held-out subject. */
  subject: string;
  /** Sample indices (into the subjects array) of every other subject, ascending. */
  train: number[];
  /** Sample indices of the held-out subject, ascending. */
  test: number[];
}

/**
 * Builds one fold per distinct subject, ordered by subject name (natural order: `sub2` < `sub10`).
 *
 * @param subjects fold key per sample (`[n]`).
 * @throws {RangeError} when fewer than 2 distinct subjects are given (no training data for a fold), or a
 * subject is empty.
 *
 * @example
 * ```ts
 * import { losoSplits } from "./loso.ts";
 * import assert from "node:assert/strict";
 * const folds = losoSplits(["a/s2", "a/s1", "a/s2", "b/s1"]);
 * assert.deepEqual(folds.map((f) => f.subject), ["a/s1", "a/s2", "b/s1"]);
 * assert.deepEqual(folds[1], { index: 1, subject: "a/s2", train: [1, 3], test: [0, 2] });
 * ```
 */
export function losoSplits(subjects: readonly string[]): LosoFold[] {
  subjects.forEach((s, i) => {
    if (typeof s !== "string" || s === "") throw new RangeError(`losoSplits: subject ${i} is empty`);
  });
  const names = [...new Set(subjects)].sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  if (names.length < 2) {
    throw new RangeError(`losoSplits: need at least 2 distinct subjects, got ${names.length}`);
  }
  return names.map((subject, index) => {
    const train: number[] = [];
    const test: number[] = [];
    subjects.forEach((s, i) => (s === subject ? test : train).push(i));
    return { index, subject, train, test };
  });
}

/** Options for {@link selectFolds}. */
export interface FoldSelection {
  /** Keep only these folds, by held-out subject name or fold index. */
  folds?: readonly (string | number)[];
  /**
   * Keep shard `i` of `n` (`"i/n"`, 1-based: `"1/4"` .. `"4/4"`) of the (already filtered) folds, dealt
   * round-robin so shards get similar mixes: fold positions `i-1, i-1+n, i-1+2n, ...`.
   */
  shard?: string;
}

/**
 * Selects folds by name/index and/or a shard, for running LOSO in pieces (several processes or machines).
 * The union of shards `1/n .. n/n` is every fold exactly once.
 *
 * @throws {RangeError} for a malformed shard, an unknown fold name or an index out of range.
 *
 * @example
 * ```ts
 * import { losoSplits, selectFolds } from "./loso.ts";
 * import assert from "node:assert/strict";
 * const folds = losoSplits(["s1", "s2", "s3", "s4", "s5"]);
 * assert.deepEqual(selectFolds(folds, { shard: "2/2" }).map((f) => f.subject), ["s2", "s4"]);
 * assert.deepEqual(selectFolds(folds, { folds: ["s5", 0] }).map((f) => f.index), [0, 4]);
 * ```
 */
export function selectFolds(folds: readonly LosoFold[], sel: FoldSelection = {}): LosoFold[] {
  let out = [...folds];
  if (sel.folds !== undefined) {
    const want = new Set<number>();
    for (const f of sel.folds) {
      if (typeof f === "number") {
        if (!Number.isInteger(f) || !folds.some((x) => x.index === f)) {
          throw new RangeError(`selectFolds: no fold with index ${f} (0..${folds.length - 1})`);
        }
        want.add(f);
      } else {
        const hit = folds.find((x) => x.subject === f);
        if (!hit) {
          throw new RangeError(
            `selectFolds: no fold for subject "${f}" (subjects: ${folds.map((x) => x.subject).join(", ")})`,
          );
        }
        want.add(hit.index);
      }
    }
    out = out.filter((f) => want.has(f.index));
  }
  if (sel.shard !== undefined) {
    const { index, count } = parseShard(sel.shard, "selectFolds");
    out = out.filter((_, k) => k % count === index - 1);
  }
  return out;
}

/**
 * Parses a shard spec `"i/n"` (1-based: `1/4` .. `4/4`). Shard `i` of `n` takes positions `i-1, i-1+n, ...`.
 * @throws {RangeError} naming `fn` and the spec unless `1 <= i <= n`.
 */
export function parseShard(spec: string, fn = "parseShard"): { index: number; count: number } {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(spec);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) {
    throw new RangeError(`${fn}: shard must be "i/n" with 1 <= i <= n, got "${spec}"`);
  }
  return { index, count };
}
