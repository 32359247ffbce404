/**
 * Builds a synthetic stand-in with the shape of the MEGC2019 composite protocol (68 subjects, 442 samples:
 * SMIC-HS 16 subjects / 164 samples, CASME II 24 / 145, SAMM 28 / 133; 3 classes negative / positive /
 * surprise), so that the wall time of a full 68-fold LOSO can be measured on this machine instead of
 * projected. The real sets are licence-gated; the flows here come from a synthetic draw (`deno task synth
 * --subjects 68`), its valence labels become the 3 classes (fine = coarse, as in `megc2019-3class`).
 *
 * The result is a timing set, not a benchmark of accuracy on MEGC2019: its per-dataset blocks are synthetic
 * subjects relabelled, and its protocol string says so (`megc2019-shaped-synthetic`).
 *
 * ```sh
 * deno task synth --out out/megc-timing/synth68 --seed 2019 --subjects 68 --astronaut 12
 * deno run -A bench/megc2019_shaped.ts out/megc-timing/synth68/flow_tvl1_28.mflow out/megc-timing/megc2019-shaped.mflow
 * # --fine: keep the source's 5 fine classes (valence as the coarse level): a harder set of the same shape
 * deno task train --dataset out/megc-timing/megc2019-shaped.mflow --epochs 60 --batch-size 32 --lr 1e-2 \
 *   --backend cpu --jobs 2 --out out/loso/megc2019-shaped
 * ```
 *
 * @module
 */
import { loadFlowDataset, saveFlowDataset } from "../lib/data/cache.ts";
import type { FlowDataset } from "../lib/data/types.ts";

/** Subjects and samples of each part of the official composite (datasets-and-evaluation.md §5). */
export const MEGC2019_PARTS = [
  { dataset: "smic", subjects: 16, samples: 164, prefix: "s" },
  { dataset: "casme2", subjects: 24, samples: 145, prefix: "sub" },
  { dataset: "samm", subjects: 28, samples: 133, prefix: "0" },
] as const;

/**
 * Picks, for each part, its number of source subjects (in the source's subject order) and spreads the part's
 * sample count over them as evenly as the subjects' own counts allow (round robin over each subject's
 * samples in index order). Throws if the source has too few subjects or samples.
 */
export function megc2019Shaped(
  src: FlowDataset,
  { labels = "valence" }: { labels?: "valence" | "fine" } = {},
): FlowDataset {
  const bySubject = new Map<string, number[]>();
  src.subjects.forEach((s, i) => {
    if (!bySubject.has(s)) bySubject.set(s, []);
    bySubject.get(s)!.push(i);
  });
  const subjects = [...bySubject.keys()].sort();
  const need = MEGC2019_PARTS.reduce((a, p) => a + p.subjects, 0);
  if (subjects.length < need) {
    throw new RangeError(`megc2019Shaped: ${src.name} has ${subjects.length} subjects, need ${need}`);
  }
  const picked: { index: number; subject: string; dataset: string }[] = [];
  let next = 0;
  for (const part of MEGC2019_PARTS) {
    const own = subjects.slice(next, next + part.subjects);
    next += part.subjects;
    const cursor = own.map(() => 0);
    let left = part.samples;
    while (left > 0) {
      let progressed = false;
      for (let k = 0; k < own.length && left > 0; k++) {
        const list = bySubject.get(own[k])!;
        if (cursor[k] < list.length) {
          const name = `${part.dataset}/${part.prefix}${String(k + 1).padStart(2, "0")}`;
          picked.push({ index: list[cursor[k]++], subject: name, dataset: part.dataset });
          left--;
          progressed = true;
        }
      }
      if (!progressed) {
        throw new RangeError(
          `megc2019Shaped: the ${part.subjects} subjects for ${part.dataset} have too few samples`,
        );
      }
    }
  }
  const per = src.height * src.width * 3;
  const x = new Float32Array(picked.length * per);
  picked.forEach((p, j) => x.set(src.x.subarray(p.index * per, (p.index + 1) * per), j * per));
  const valence = Int32Array.from(picked, (p) => src.coarse[p.index]);
  const fine = labels === "fine" ? Int32Array.from(picked, (p) => src.fine[p.index]) : valence;
  return {
    name: `megc2019-shaped(${src.name})`,
    protocol: labels === "fine" ? "megc2019-shaped-synthetic-5class" : "megc2019-shaped-synthetic",
    n: picked.length,
    height: src.height,
    width: src.width,
    x,
    fine,
    coarse: Int32Array.from(valence),
    classes: labels === "fine" ? structuredClone(src.classes) : {
      fine: [...src.classes.coarse],
      coarse: [...src.classes.coarse],
      fineToCoarse: src.classes.coarse.map((_, i) => i),
    },
    subjects: picked.map((p) => p.subject),
    datasets: picked.map((p) => p.dataset),
    ids: picked.map((p) => `${p.dataset}:${src.ids[p.index]}`),
    preprocessing: {
      ...(src.preprocessing ?? {}),
      shapedAs: `MEGC2019 composite (timing stand-in; synthetic flows, ${
        labels === "fine" ? "the source's fine labels" : "valence labels"
      })`,
    },
  };
}

if (import.meta.main) {
  const fineLabels = Deno.args.includes("--fine");
  const [from, to] = Deno.args.filter((a) => a !== "--fine");
  if (!from || !to) {
    console.error("usage: deno run -A bench/megc2019_shaped.ts [--fine] SOURCE.mflow OUT.mflow");
    Deno.exit(2);
  }
  const ds = megc2019Shaped(await loadFlowDataset(from), { labels: fineLabels ? "fine" : "valence" });
  await saveFlowDataset(ds, to);
  const count = (k: number) => ds.fine.filter((v) => v === k).length;
  console.log(
    `wrote ${to}: ${ds.n} samples, ${new Set(ds.subjects).size} subjects; classes ` +
      ds.classes.fine.map((c, k) => `${c} ${count(k)}`).join(", "),
  );
}
