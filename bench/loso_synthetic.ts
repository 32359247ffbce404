/**
 * LOSO on the embedded synthetic dataset with merba-tiny and its ablations, next to the linear baseline on the
 * same folds, with wall times: the "done means" numbers of the training issue.
 *
 * Variants (merba-tiny overrides): `default` (bilateral3 scans, coarse head on), `raster` (one raster scan),
 * `vmamba4` (all four directions), `nocoarse` (coarse head off, fine head only), `axes2`.
 * Every variant uses the same fixed epoch count, seed and folds (honest protocol: nothing is selected on a test
 * subject). Runs are stored under `--out/<variant>` and resume if interrupted.
 *
 *   deno run -A bench/loso_synthetic.ts [--protocol synthetic-5class] [--epochs 20] [--variants default,raster]
 *     [--shard 1/3] [--folds 0,5] [--backend cpu] [--out out/bench-loso]
 *
 * `--shard i/n` or `--folds` runs a subset of folds (the tables then say how many folds were pooled); the
 * linear baseline is restricted to the same folds (its LOSO predictions for a fold depend only on that fold).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { type BackendName, initBackend } from "../lib/backend.ts";
import { loadSyntheticDefault } from "../lib/data/synthetic.ts";
import { losoSplits, selectFolds } from "../lib/data/loso.ts";
import { computeMetrics } from "../lib/train/metrics.ts";
import { runLoso } from "../lib/train/loso.ts";
import { merbaFactory } from "../lib/train/merba_factory.ts";
import { formatDuration } from "../lib/progress.ts";
import type { MerbaOverrides } from "../lib/models/config.ts";
import { losoBaseline } from "./baseline_linear.ts";

const VARIANTS: Record<string, MerbaOverrides> = {
  default: {},
  raster: { scanSet: "raster" },
  vmamba4: { scanSet: "vmamba4" },
  axes2: { scanSet: "axes2" },
  nocoarse: { coarseHead: false },
};

const { values } = parseArgs({
  args: Deno.args,
  options: {
    protocol: { type: "string", default: "synthetic-5class" },
    epochs: { type: "string", default: "20" },
    batch: { type: "string", default: "32" },
    lr: { type: "string", default: "2e-3" },
    seed: { type: "string", default: "0" },
    variants: { type: "string", default: "default,raster,vmamba4,nocoarse" },
    shard: { type: "string" },
    folds: { type: "string" },
    backend: { type: "string", default: "cpu" },
    out: { type: "string", default: "out/bench-loso" },
  },
});
const info = await initBackend({ backend: values.backend as BackendName, quiet: true });
const ds = await loadSyntheticDefault({
  protocol: values.protocol as "synthetic-5class" | "synthetic-3class",
});
const folds = values.folds?.split(",").map((s) => (/^\d+$/.test(s) ? Number(s) : s));
const chosen = selectFolds(losoSplits(ds.subjects), { folds, shard: values.shard });
const testIdx = chosen.flatMap((f) => f.test);
const allFolds = losoSplits(ds.subjects).length;
const train = { epochs: Number(values.epochs), batchSize: Number(values.batch), lr: Number(values.lr) };
const fineLabels = ds.classes.fine.map((_, i) => i);
const coarseLabels = ds.classes.coarse.map((_, i) => i);
const f3 = (x: number) => x.toFixed(3);

console.log(
  `# LOSO on ${ds.name} (${ds.protocol}, n=${ds.n}, ${ds.height}x${ds.width}x3), ${chosen.length}/${allFolds} folds ` +
    `(${testIdx.length} test samples pooled), backend ${info.name}${
      info.isFallbackAdapter ? " (llvmpipe)" : ""
    }, ` +
    `fixed ${train.epochs} epochs, batch ${train.batchSize}, lr ${train.lr}, seed ${values.seed}; ${
      new Date().toISOString()
    }`,
);
const rows: string[] = [];
// linear baseline on the same folds
for (const method of ["softmax", "nearest-mean"] as const) {
  const t0 = performance.now();
  const pf = losoBaseline(ds, "fine", method);
  const pc = losoBaseline(ds, "coarse", method);
  const s = (performance.now() - t0) / 1000;
  const mf = computeMetrics(testIdx.map((i) => ds.fine[i]), testIdx.map((i) => pf[i]), {
    labels: fineLabels,
  });
  const mc = computeMetrics(testIdx.map((i) => ds.coarse[i]), testIdx.map((i) => pc[i]), {
    labels: coarseLabels,
  });
  rows.push(
    `| ${method === "softmax" ? "logistic regression (baseline)" : "nearest class mean (baseline)"} | - | ` +
      `${f3(mf.uf1)} | ${f3(mf.uar)} | ${f3(mf.accuracy)} | ${f3(mc.uf1)} | ${f3(mc.uar)} | ${
        s.toFixed(0)
      } s (all ${allFolds} folds, both levels) |`,
  );
}
for (const name of values.variants!.split(",")) {
  const ov = VARIANTS[name];
  if (!ov) throw new RangeError(`unknown variant "${name}"; known: ${Object.keys(VARIANTS).join(", ")}`);
  const t0 = performance.now();
  const res = await runLoso(ds, {
    model: merbaFactory("merba-tiny", ov),
    train,
    seed: Number(values.seed),
    folds,
    shard: values.shard,
    outDir: join(values.out!, `${ds.protocol}-e${train.epochs}-${name}`),
  }, {
    onFoldEnd: ({ record: r, position, count, resumed }) =>
      console.error(
        `${name}: fold ${r.fold} ${position + 1}/${count}${resumed ? " (resumed)" : ""} ${
          r.seconds.toFixed(0)
        } s`,
      ),
  });
  const wall = (performance.now() - t0) / 1000;
  const m = res.metrics;
  const c = res.coarseMetrics;
  // without a coarse head, score the coarse level by mapping fine predictions through the hierarchy
  const cm = c ?? computeMetrics(
    testIdx.map((i) => ds.coarse[i]),
    (await Promise.all(res.foldsDone.map((k) =>
      Deno.readTextFile(
        join(
          values.out!,
          `${ds.protocol}-e${train.epochs}-${name}`,
          "folds",
          `fold-${String(k).padStart(3, "0")}.json`,
        ),
      )
    ))).flatMap((t) => (JSON.parse(t).yPred as number[]).map((p) => ds.classes.fineToCoarse[p])),
    { labels: coarseLabels },
  );
  rows.push(
    `| merba-tiny ${name} ${JSON.stringify(ov)} | ${train.epochs} | ${f3(m.uf1)} | ${f3(m.uar)} | ${
      f3(m.accuracy)
    } | ` +
      `${f3(cm.uf1)} | ${f3(cm.uar)} | ${formatDuration(res.timing.foldSecondsTotal * 1000)} (this call ${
        formatDuration(wall * 1000)
      }) |`,
  );
}
console.log(
  "\n| model | epochs | fine UF1 | fine UAR | fine acc | coarse UF1 | coarse UAR | fold wall time (sum) |",
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const r of rows) console.log(r);
