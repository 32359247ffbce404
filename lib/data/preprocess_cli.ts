/**
 * `deno task preprocess`: turns a dataset directory into a cached flow dataset file, with a progress bar
 * (rate, ETA) on stderr.
 *
 * ```
 * deno task preprocess --dataset casme2 --root DIR --out FILE [--protocol casme2-5class] [--size 28]
 *                      [--labels FILE] [--layout raw|cropped] [--apex-rule middle|max-flow] [--fixes meb]
 *                      [--method tvl1|farneback] [--cache DIR | --no-cache] [--skip-bad] [--name NAME] [--quiet]
 *                      [--shard i/n] [--max-side N]
 * deno task preprocess --dataset composite --list combined_3class_gt.csv --casme2-root DIR --samm-root DIR
 *                      --smic-root DIR --out FILE [--casme2-labels FILE] [--samm-labels FILE] ...
 * ```
 *
 * Datasets: `casme2`, `samm`, `smic`, `casme3`, `composite`, `synthetic` (a CASME II-like tree from
 * `generateSyntheticDataset`). Default protocols: casme2-5class, samm-5class, smic-3class, casme3-7class,
 * megc2019-3class, synthetic-5class. The output format is documented in `lib/data/cache.ts`.
 *
 * Exit codes: 0 done, 1 bad data (a DatasetError, message names file/row/field), 2 bad arguments.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { loadCasme2 } from "./datasets/casme2.ts";
import { loadSamm } from "./datasets/samm.ts";
import { loadSmic } from "./datasets/smic.ts";
import { loadCasme3 } from "./datasets/casme3.ts";
import { loadComposite } from "./datasets/composite.ts";
import type { ApexOptions, LoadResult } from "./datasets/common.ts";
import {
  flowMagnitudeScorer,
  type FlowMethod,
  preprocessDataset,
  type PreprocessStats,
} from "./preprocess.ts";
import { saveFlowDataset } from "./cache.ts";
import { getProtocol, PROTOCOLS } from "./protocols.ts";
import { parseShard } from "./loso.ts";
import { resizeArea } from "./image.ts";
import type { GrayImage } from "./types.ts";
import type { FaceCrop } from "./preprocess.ts";
import { cropFace, detectFace, eyeCrop } from "./faces.ts";
import { readImage } from "./image_io.ts";
import { ProgressBar, type ProgressSink } from "../progress.ts";
import { DatasetError } from "./types.ts";

/** Default protocol per `--dataset`. */
export const DEFAULT_PROTOCOLS: Readonly<Record<string, string>> = {
  casme2: "casme2-5class",
  samm: "samm-5class",
  smic: "smic-3class",
  casme3: "casme3-7class",
  composite: "megc2019-3class",
  synthetic: "synthetic-5class",
};

/** Usage text printed on `--help` and argument errors. */
export const USAGE = `usage: deno task preprocess --dataset NAME --root DIR --out FILE [options]
  --dataset casme2|samm|smic|casme3|composite|synthetic
  --root DIR            dataset folder (not for composite)
  --labels FILE         label sheet (.xlsx or .csv); default: found in --root or its parent
  --out FILE            output flow dataset file (format: lib/data/cache.ts)
  --protocol NAME       class protocol (default per dataset: ${Object.values(DEFAULT_PROTOCOLS).join(", ")})
  --size N              input side (default 28)
  --method tvl1|farneback   optical flow (default tvl1)
  --layout raw|cropped  CASME II frame tree (default raw)
  --apex-rule middle|max-flow  apex where none is annotated (default middle)
  --fixes meb           apply MEB's published label fixes (CASME II, SAMM, CAS(ME)^3)
  --cache DIR           per-sample flow cache (default .cache/merba-flow); --no-cache to disable
  --skip-bad            skip broken samples with a warning instead of stopping
  --name NAME           dataset name stored in the file
  --quiet               no progress bar
  --shard i/n           only shard i of n of the samples (fill the cache from n processes; then run without it)
  --max-side N          shrink frames (area) so the longer side is <= N before the flow (faster on raw frames)
  --face-crop N         find the face in the onset frame (68 landmarks) and crop onset and apex with one eye-based
                        N x N crop before the flow (uncropped trees: raw CASME II, SAMM, SMIC HS, CAS(ME)^3);
                        a clip without a detectable face is an error (--skip-bad skips it)
  composite: --list FILE --casme2-root DIR --samm-root DIR --smic-root DIR [--casme2-labels F] [--samm-labels F]`;

class UsageError extends Error {}

/** Where the CLI writes (stderr by default; tests capture it). */
export interface CliIo {
  stderr: ProgressSink;
}

/**
 * Runs the command line; returns the exit code (does not call `Deno.exit`).
 *
 * @example
 * ```ts ignore
 * const code = await preprocessMain(["--dataset", "casme2", "--root", "/data/CASME2", "--out", "casme2.mflow"]);
 * ```
 */
export async function preprocessMain(args: string[], io: CliIo = { stderr: Deno.stderr }): Promise<number> {
  const say = (s: string) => io.stderr.writeSync(new TextEncoder().encode(s + "\n"));
  try {
    return await run(args, io, say);
  } catch (e) {
    if (e instanceof UsageError) {
      say(`error: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    if (e instanceof DatasetError) {
      say(`error: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

async function run(args: string[], io: CliIo, say: (s: string) => void): Promise<number> {
  let v;
  try {
    v = parseArgs({
      args,
      options: {
        dataset: { type: "string" },
        root: { type: "string" },
        labels: { type: "string" },
        out: { type: "string" },
        protocol: { type: "string" },
        size: { type: "string", default: "28" },
        method: { type: "string", default: "tvl1" },
        layout: { type: "string", default: "raw" },
        "apex-rule": { type: "string", default: "middle" },
        fixes: { type: "string" },
        cache: { type: "string", default: ".cache/merba-flow" },
        "no-cache": { type: "boolean", default: false },
        "skip-bad": { type: "boolean", default: false },
        name: { type: "string" },
        quiet: { type: "boolean", default: false },
        shard: { type: "string" },
        "max-side": { type: "string" },
        "face-crop": { type: "string" },
        list: { type: "string" },
        "casme2-root": { type: "string" },
        "casme2-labels": { type: "string" },
        "samm-root": { type: "string" },
        "samm-labels": { type: "string" },
        "smic-root": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (v.help) {
    say(USAGE);
    return 0;
  }
  const dataset = v.dataset;
  if (!dataset || !(dataset in DEFAULT_PROTOCOLS)) {
    throw new UsageError(
      `--dataset must be one of ${Object.keys(DEFAULT_PROTOCOLS).join(", ")}, got ${dataset}`,
    );
  }
  if (!v.out && v.shard === undefined) throw new UsageError("--out FILE is required (optional with --shard)");
  if (v.shard !== undefined) {
    try {
      parseShard(v.shard, "--shard");
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const maxSide = v["max-side"] === undefined ? undefined : Number(v["max-side"]);
  if (maxSide !== undefined && (!Number.isInteger(maxSide) || maxSide < 2)) {
    throw new UsageError(`--max-side must be an integer >= 2, got ${v["max-side"]}`);
  }
  const faceSide = v["face-crop"] === undefined ? undefined : Number(v["face-crop"]);
  if (faceSide !== undefined && (!Number.isInteger(faceSide) || faceSide < 8)) {
    throw new UsageError(
      `--face-crop must be an integer >= 8 (the crop side in pixels), got ${v["face-crop"]}`,
    );
  }
  if (faceSide !== undefined && maxSide !== undefined) {
    throw new UsageError("--face-crop and --max-side exclude each other (the face crop sets the frame size)");
  }
  const size = Number(v.size);
  if (!Number.isInteger(size) || size < 1) {
    throw new UsageError(`--size must be a positive integer, got ${v.size}`);
  }
  if (v.method !== "tvl1" && v.method !== "farneback") {
    throw new UsageError(`--method must be tvl1 or farneback, got ${v.method}`);
  }
  if (v.layout !== "raw" && v.layout !== "cropped") {
    throw new UsageError(`--layout must be raw or cropped, got ${v.layout}`);
  }
  if (v["apex-rule"] !== "middle" && v["apex-rule"] !== "max-flow") {
    throw new UsageError(`--apex-rule must be middle or max-flow, got ${v["apex-rule"]}`);
  }
  if (v.fixes !== undefined && v.fixes !== "meb") throw new UsageError(`--fixes must be meb, got ${v.fixes}`);
  const protocolName = v.protocol ?? DEFAULT_PROTOCOLS[dataset];
  try {
    getProtocol(protocolName);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (dataset !== "composite" && !v.root) throw new UsageError("--root DIR is required");

  let method: FlowMethod | undefined;
  if (v.method === "farneback") {
    const { opticalFlowFarneback } = await import("./farneback.ts");
    method = (a, b) => opticalFlowFarneback(a, b);
  }
  const apex: ApexOptions = v["apex-rule"] === "max-flow"
    ? { apexRule: "max-flow", apexScorer: flowMagnitudeScorer(method ? { method } : {}) }
    : { apexRule: "middle" };
  const common = { skipBad: v["skip-bad"], ...apex };
  const fixes = v.fixes === "meb" ? "meb" as const : undefined;
  const root = v.root!;

  const t0 = performance.now();
  let loaded: LoadResult;
  switch (dataset) {
    case "casme2":
      loaded = await loadCasme2(root, { ...common, labelFile: v.labels, layout: v.layout, fixes });
      break;
    case "synthetic":
      loaded = await loadCasme2(root, {
        ...common,
        labelFile: v.labels,
        dataset: "synthetic",
        emotions: PROTOCOLS["synthetic-5class"].classes.fine,
      });
      break;
    case "samm":
      loaded = await loadSamm(root, { ...common, labelFile: v.labels, fixes });
      break;
    case "smic":
      loaded = await loadSmic(root, common);
      break;
    case "casme3":
      loaded = await loadCasme3(root, { ...common, labelFile: v.labels, fixes });
      break;
    default: {
      if (!v.list) throw new UsageError("--list FILE is required for --dataset composite");
      loaded = await loadComposite(v.list, {
        casme2: v["casme2-root"]
          ? { root: v["casme2-root"], labelFile: v["casme2-labels"], layout: v.layout, fixes, ...apex }
          : undefined,
        samm: v["samm-root"]
          ? { root: v["samm-root"], labelFile: v["samm-labels"], fixes, ...apex }
          : undefined,
        smic: v["smic-root"] ? { root: v["smic-root"], ...apex } : undefined,
      }, { skipBad: v["skip-bad"] });
    }
  }
  say(
    `${dataset}: ${loaded.samples.length} samples from ${loaded.labelFile} (${loaded.warnings.length} warnings)`,
  );
  for (const w of loaded.warnings.slice(0, 20)) say(`  warning: ${w}`);
  if (loaded.warnings.length > 20) say(`  ... ${loaded.warnings.length - 20} more warnings`);

  let progress: ProgressBar | undefined;
  let stats: PreprocessStats | undefined;
  const ds = await preprocessDataset(loaded.samples, {
    protocol: protocolName,
    size,
    method,
    methodName: v.method,
    cacheDir: v["no-cache"] ? undefined : v.cache,
    skipBad: v["skip-bad"],
    name: v.name,
    shard: v.shard,
    faceCrop: faceSide !== undefined
      ? eyeFaceCrop(faceSide)
      : maxSide !== undefined
      ? shrinkFrames(maxSide)
      : undefined,
    faceCropName: faceSide !== undefined
      ? `eyeCrop${faceSide}`
      : maxSide !== undefined
      ? `maxSide${maxSide}`
      : undefined,
    onFinish: (s) => (stats = s),
    onProgress: (p) => {
      if (v.quiet) return;
      if (!progress || progress.total !== p.total) {
        progress = new ProgressBar(p.total, { sink: io.stderr, label: "flow" });
      }
      progress.update(p.done, `${p.id}${p.cached ? " (cached)" : ""}`);
    },
  });
  progress?.finish();
  if (!v.out) {
    say(
      `shard ${v.shard}: ${ds.n} samples cached in ${
        stats?.cacheDir ?? "(no cache)"
      }; no --out, nothing written`,
    );
    return 0;
  }
  await saveFlowDataset(ds, v.out);
  const pre = ds.preprocessing ?? {};
  say(
    `wrote ${v.out}: n=${ds.n}, ${ds.height}x${ds.width}x3, protocol ${ds.protocol}, ` +
      `${new Set(ds.subjects).size} subjects, cache hits ${stats?.cacheHits ?? 0}, ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s`,
  );
  say(`  classes: ${JSON.stringify(pre.counts)}; excluded: ${JSON.stringify(pre.excluded)}`);
  for (const w of (pre.warnings as string[] | undefined) ?? []) say(`  warning: ${w}`);
  return 0;
}

/** A frame transform that shrinks both frames (area resampling) so the longer side is at most `maxSide`. */
/**
 * `--face-crop N`: detects the face (68 landmarks, @vladmandic/face-api) in the onset frame and crops onset and
 * apex with the same eye-based transform (`eyeCrop`: eye line level, side 2.8 × the inter-ocular distance),
 * so the flow sees the face at a fixed scale and no head-position change is introduced between the frames.
 */
function eyeFaceCrop(side: number): FaceCrop {
  return async (onset, apex, s) => {
    const det = await detectFace(await readImage(s.onsetPath));
    if (!det) {
      throw new DatasetError(
        `no face found in the onset frame ${s.onsetPath} (--face-crop); crop this clip yourself or skip it ` +
          "with --skip-bad",
        { file: s.source.file, row: s.source.row, field: "onset frame" },
      );
    }
    const t = eyeCrop(det.landmarks, side);
    return { onset: cropFace(onset, t), apex: cropFace(apex, t) };
  };
}

function shrinkFrames(maxSide: number) {
  const shrink = (img: GrayImage): GrayImage => {
    const f = maxSide / Math.max(img.width, img.height);
    if (f >= 1) return img;
    return resizeArea(img, Math.max(2, Math.round(img.width * f)), Math.max(2, Math.round(img.height * f)));
  };
  return (onset: GrayImage, apex: GrayImage) => ({ onset: shrink(onset), apex: shrink(apex) });
}

if (import.meta.main) {
  const code = await preprocessMain(Deno.args);
  // opencv.js (Farneback) keeps the event loop alive; exit explicitly.
  Deno.exit(code);
}
