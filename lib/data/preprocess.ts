/**
 * Turns loader samples into a {@link FlowDataset}: for each sample, read the onset and apex frames as
 * grayscale, optionally crop the face, compute optical flow onset -> apex (TV-L1 by default), and build the
 * `[size, size, 3]` (u, v, strain) input with `flowToInput`. Results are cached per sample on disk
 * (`lib/data/cache.ts`), so a second run with the same parameters only reads files.
 *
 * @module
 */

import { opticalFlowTVL1, type TVL1Options } from "./optical_flow.ts";
import { flowToInput } from "./flow_input.ts";
import { readGray } from "./image_io.ts";
import { resizeArea } from "./image.ts";
import { FlowCache, sampleCacheKey } from "./cache.ts";
import { applyProtocol, type Protocol, type ProtocolResult } from "./protocols.ts";
import { parseShard } from "./loso.ts";
import { DatasetError, type Flow, type FlowDataset, type GrayImage, type SampleRef } from "./types.ts";
import type { FrameScorer } from "./datasets/common.ts";

/** Optical flow from `prev` to `next` (sync or async). */
export type FlowMethod = (prev: GrayImage, next: GrayImage) => Flow | Promise<Flow>;

/** Builds the network input `[size, size, 3]` from a flow. */
export type InputBuilder = (flow: Flow, size: number) => Float32Array;

/** Crops (and/or aligns) the onset and apex frames to the face; must return two images of equal size. */
export type FaceCrop = (
  onset: GrayImage,
  apex: GrayImage,
  sample: SampleRef,
) => { onset: GrayImage; apex: GrayImage } | Promise<{ onset: GrayImage; apex: GrayImage }>;

/** Progress report: once with `done: 0` before the first sample, then after each sample. */
export interface PreprocessProgress {
  done: number;
  total: number;
  id: string;
  /** True when the sample came from the cache. */
  cached: boolean;
  elapsedMs: number;
}

/** Statistics of one {@link preprocessDataset} run. */
export interface PreprocessStats {
  /** Samples kept by the protocol (before skipping bad ones). */
  total: number;
  /** Samples read from the cache. */
  cacheHits: number;
  /** Samples skipped as bad (`skipBad`). */
  skipped: number;
  seconds: number;
  /** Cache folder of this parameter set, when caching. */
  cacheDir: string | null;
}

/** Options for {@link preprocessDataset}. */
export interface PreprocessOptions {
  /** Class protocol (name or object); decides which samples are kept and their labels. */
  protocol: string | Protocol;
  /** Output side length. @default 28 */
  size?: number;
  /** Flow method. @default TV-L1 (`opticalFlowTVL1` with `tvl1` options) */
  method?: FlowMethod;
  /**
   * Name of the flow method for the cache key. Required in spirit when `method` is custom: entries computed
   * with another function under the same name would be reused. @default "tvl1" (or the function's name)
   */
  methodName?: string;
  /** Options for the default TV-L1 method (part of the cache key). */
  tvl1?: TVL1Options;
  /** Input builder. @default flowToInput(flow, {size}) (per-channel min-max, area resize) */
  toInput?: InputBuilder;
  /** Name of the input builder for the cache key. @default "flowToInput" */
  toInputName?: string;
  /** Optional face crop applied to both frames before the flow. */
  faceCrop?: FaceCrop;
  /** Name of the face crop for the cache key. @default the function's name */
  faceCropName?: string;
  /** Cache folder; no caching when absent. */
  cacheDir?: string;
  /** Extra parameters folded into the cache key (anything that changes the output). */
  cacheParams?: Record<string, unknown>;
  /** Called after every sample. */
  onProgress?: (p: PreprocessProgress) => void;
  /**
   * Called once at the end with run statistics. They are kept out of `FlowDataset.preprocessing` so that the
   * same inputs give a byte-identical file whether or not the cache was warm.
   */
  onFinish?: (s: PreprocessStats) => void;
  /** Skip samples with unreadable frames or unknown emotions (warnings) instead of throwing. @default false */
  skipBad?: boolean;
  /** Dataset name. @default the distinct sample datasets joined with "+" */
  name?: string;
  /**
   * Process only shard `"i/n"` of the protocol-kept samples (positions `i-1, i-1+n, ...`). Runs with
   * shards `1/n .. n/n` in parallel processes fill the cache; a final run without `shard` then only reads it.
   */
  shard?: string;
}

/**
 * Preprocesses samples into a {@link FlowDataset} (samples the protocol excludes are dropped).
 *
 * `preprocessing` records size, method, cache hash, label counts, excluded emotions and warnings (no timings:
 * the output is the same whether or not the cache was warm; `onFinish` reports cache hits and time).
 *
 * @throws {DatasetError} naming the frame file for unreadable frames, or the label row for emotions the
 * protocol does not know, unless `skipBad`.
 * @throws {RangeError} for a bad `size`.
 *
 * @example
 * ```ts ignore
 * const { samples } = await loadCasme2("/data/CASME2");
 * const ds = await preprocessDataset(samples, { protocol: "casme2-5class", size: 28, cacheDir: ".cache/flow" });
 * await saveFlowDataset(ds, "out/casme2_5class_28.mflow");
 * ```
 */
export async function preprocessDataset(samples: SampleRef[], opts: PreprocessOptions): Promise<FlowDataset> {
  const size = opts.size ?? 28;
  if (!Number.isInteger(size) || size < 1) {
    throw new RangeError(`preprocessDataset: size must be a positive integer, got ${size}`);
  }
  const t0 = performance.now();
  const all = applyProtocol(samples, opts.protocol, { skipBad: opts.skipBad });
  const pr = opts.shard === undefined ? all : shardOf(all, opts.shard);
  const warnings = [...pr.warnings];
  const tvl1 = opts.tvl1 ?? {};
  const method: FlowMethod = opts.method ?? ((a, b) => opticalFlowTVL1(a, b, tvl1));
  const methodName = opts.methodName ?? (opts.method ? (opts.method.name || "custom") : "tvl1");
  const toInput: InputBuilder = opts.toInput ?? ((f, s) => flowToInput(f, { size: s }));
  const params: Record<string, unknown> = {
    format: 1,
    size,
    method: methodName,
    methodOptions: opts.method ? undefined : tvl1,
    toInput: opts.toInputName ?? (opts.toInput ? (opts.toInput.name || "custom") : "flowToInput"),
    faceCrop: opts.faceCrop ? (opts.faceCropName ?? (opts.faceCrop.name || "custom")) : null,
    extra: opts.cacheParams,
  };
  const cache = opts.cacheDir ? await FlowCache.open(opts.cacheDir, params) : undefined;
  const per = size * size * 3;
  const chunks: Float32Array[] = [];
  const kept: number[] = [];
  let hits = 0;
  opts.onProgress?.({ done: 0, total: pr.samples.length, id: "", cached: false, elapsedMs: 0 });
  for (let i = 0; i < pr.samples.length; i++) {
    const s = pr.samples[i];
    const key = sampleCacheKey(s);
    let x = cache ? await cache.get(key, per) : undefined;
    const cached = x !== undefined;
    if (cached) hits++;
    else {
      try {
        x = await computeSample(s, { method, toInput, size, faceCrop: opts.faceCrop });
      } catch (e) {
        if (opts.skipBad && e instanceof DatasetError) {
          warnings.push(`skipped ${s.dataset}/${s.id}: ${e.message}`);
          opts.onProgress?.({
            done: i + 1,
            total: pr.samples.length,
            id: s.id,
            cached,
            elapsedMs: performance.now() - t0,
          });
          continue;
        }
        throw e;
      }
      if (cache) await cache.put(key, x);
    }
    chunks.push(x!);
    kept.push(i);
    opts.onProgress?.({
      done: i + 1,
      total: pr.samples.length,
      id: s.id,
      cached,
      elapsedMs: performance.now() - t0,
    });
  }
  const n = kept.length;
  const xAll = new Float32Array(n * per);
  chunks.forEach((c, k) => xAll.set(c, k * per));
  const keptSamples = kept.map((i) => pr.samples[i]);
  const counts: Record<string, number> = Object.fromEntries(pr.protocol.classes.fine.map((f) => [f, 0]));
  for (const i of kept) counts[pr.protocol.classes.fine[pr.fine[i]]]++;
  const ds: FlowDataset = {
    name: opts.name ?? [...new Set(keptSamples.map((s) => s.dataset))].join("+"),
    protocol: pr.protocol.name,
    n,
    height: size,
    width: size,
    x: xAll,
    fine: Int32Array.from(kept, (i) => pr.fine[i]),
    coarse: Int32Array.from(kept, (i) => pr.coarse[i]),
    classes: pr.protocol.classes,
    subjects: keptSamples.map((s) => s.subject),
    datasets: keptSamples.map((s) => s.dataset),
    ids: keptSamples.map((s) => s.id),
    preprocessing: {
      ...params,
      channels: ["u", "v", "strain"],
      cacheHash: cache?.paramsHash ?? null,
      counts,
      excluded: pr.excluded,
      warnings,
      ...(opts.shard !== undefined ? { shard: opts.shard } : {}),
    },
  };
  opts.onFinish?.({
    total: pr.samples.length,
    cacheHits: hits,
    skipped: pr.samples.length - n,
    seconds: (performance.now() - t0) / 1000,
    cacheDir: cache?.dir ?? null,
  });
  return ds;
}

function shardOf(pr: ProtocolResult, spec: string): ProtocolResult {
  const { index, count } = parseShard(spec, "preprocessDataset");
  const keep = pr.samples.map((_, k) => k).filter((k) => k % count === index - 1);
  return {
    ...pr,
    samples: keep.map((k) => pr.samples[k]),
    fine: Int32Array.from(keep, (k) => pr.fine[k]),
    coarse: Int32Array.from(keep, (k) => pr.coarse[k]),
  };
}

async function computeSample(
  s: SampleRef,
  o: { method: FlowMethod; toInput: InputBuilder; size: number; faceCrop?: FaceCrop },
): Promise<Float32Array> {
  let onset: GrayImage = await readGray(s.onsetPath);
  let apex: GrayImage = await readGray(s.apexPath);
  if (o.faceCrop) ({ onset, apex } = await o.faceCrop(onset, apex, s));
  if (onset.width !== apex.width || onset.height !== apex.height) {
    throw new DatasetError(
      `apex frame is ${apex.width}x${apex.height} but onset frame ${s.onsetPath} is ${onset.width}x${onset.height}` +
        (o.faceCrop ? " (after faceCrop)" : ""),
      { file: s.apexPath },
    );
  }
  const flow = await o.method(onset, apex);
  const x = o.toInput(flow, o.size);
  const bad = x.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    throw new DatasetError(
      `the network input of ${s.id} has a non-finite value (${
        x[bad]
      } at ${bad}): flow or input builder failed`,
      { file: s.source.file, row: s.source.row, field: "onset/apex frames" },
    );
  }
  if (x.length !== o.size * o.size * 3) {
    throw new TypeError(
      `preprocessDataset: toInput returned ${x.length} values, expected size*size*3 = ${o.size * o.size * 3}`,
    );
  }
  return x;
}

/**
 * A {@link FrameScorer} for the `"max-flow"` apex rule (SMIC, or any clip without an apex): mean flow
 * magnitude `mean(sqrt(u² + v²))` between the onset frame and a candidate, on frames shrunk (area
 * resampling) so the longer side is at most `maxSide`. TV-L1 with fewer scales/warps by default, since only
 * the ranking matters.
 *
 * @example
 * ```ts ignore
 * const { samples } = await loadSmic(root, { apexRule: "max-flow", apexScorer: flowMagnitudeScorer(), apexStride: 2 });
 * ```
 */
export function flowMagnitudeScorer(
  { maxSide = 64, method, tvl1 = { nscales: 3, warps: 3 } }: {
    maxSide?: number;
    method?: FlowMethod;
    tvl1?: TVL1Options;
  } = {},
): FrameScorer {
  const flowFn: FlowMethod = method ?? ((a, b) => opticalFlowTVL1(a, b, tvl1));
  let lastOnset: { path: string; img: GrayImage } | undefined;
  const shrink = (img: GrayImage): GrayImage => {
    const s = Math.min(1, maxSide / Math.max(img.width, img.height));
    if (s >= 1) return img;
    return resizeArea(img, Math.max(2, Math.round(img.width * s)), Math.max(2, Math.round(img.height * s)));
  };
  return async (onsetPath: string, framePath: string) => {
    if (lastOnset?.path !== onsetPath) {
      lastOnset = { path: onsetPath, img: shrink(await readGray(onsetPath)) };
    }
    const next = shrink(await readGray(framePath));
    const f = await flowFn(lastOnset.img, next);
    let sum = 0;
    for (let i = 0; i < f.u.length; i++) sum += Math.hypot(f.u[i], f.v[i]);
    return sum / f.u.length;
  };
}
