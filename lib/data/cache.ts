/**
 * On-disk formats for preprocessed flow data.
 *
 * ## Flow dataset file (`saveFlowDataset` / `loadFlowDataset`), format version 1
 *
 * One file, little-endian:
 *
 * | bytes | content |
 * |---|---|
 * | 0..7 | ASCII magic `MERBAFLW` |
 * | 8..11 | uint32 format version (1) |
 * | 12..15 | uint32 `H`, byte length of the JSON header |
 * | 16..16+H | UTF-8 JSON header (below) |
 * | .. | zero bytes up to the next multiple of 4 (so `x` is 4-byte aligned) |
 * | .. | `x`: float32 `[n, height, width, 3]` channels-last (u, v, strain) |
 *
 * JSON header: `{ name, protocol, n, height, width, channels: ["u","v","strain"], layout: "NHWC",
 * dtype: "float32", classes: {fine, coarse, fineToCoarse}, fine: number[n], coarse: number[n],
 * subjects: string[n], datasets: string[n], ids: string[n], preprocessing?: {...} }`.
 * Python reads it with `json.loads(b[16:16+H])` and `np.frombuffer(b, "<f4", offset=(16+H+3)//4*4)`.
 *
 * ## Per-sample flow cache (`FlowCache`)
 *
 * `<cacheDir>/<paramsHash>/params.json` records the preprocessing parameters (method, size, ...);
 * `<cacheDir>/<paramsHash>/<sampleHash>.f32` holds one sample's model input as raw little-endian float32
 * `[size, size, 3]`. `paramsHash` = first 16 hex digits of SHA-256 of the canonical JSON of the parameters;
 * `sampleHash` = the same of the sample key (dataset, id, onset/apex frame numbers and paths). Changing any
 * parameter, the apex, or the frame paths gives a new entry; changing the pixels of a frame on disk does not
 * (delete the folder then). Writes go to a temporary name and are renamed, so an interrupted run leaves no
 * half-written entries.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { DatasetError, type FlowDataset, type SampleRef } from "./types.ts";

/** Magic bytes at the start of a flow dataset file. */
export const FLOW_DATASET_MAGIC = "MERBAFLW";
/** Current flow dataset file format version. */
export const FLOW_DATASET_VERSION = 1;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function assertLittleEndian(): void {
  if (!LITTLE_ENDIAN) throw new Error("flow cache files are little-endian; this platform is big-endian");
}

/** JSON with object keys sorted at every level (stable input for hashing). */
export function canonicalJson(v: unknown): string {
  if (v === undefined) return "null";
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  const o = v as Record<string, unknown>;
  return `{${
    Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) =>
      `${JSON.stringify(k)}:${canonicalJson(o[k])}`
    )
      .join(",")
  }}`;
}

/** First 16 hex digits of SHA-256 of `canonicalJson(v)`. */
export function hashKey(v: unknown): string {
  return createHash("sha256").update(canonicalJson(v)).digest("hex").slice(0, 16);
}

function checkDataset(ds: FlowDataset): void {
  const { n, height, width } = ds;
  for (const [k, v] of Object.entries({ n, height, width })) {
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`saveFlowDataset: ${k} = ${v} is not a count`);
  }
  if (ds.x.length !== n * height * width * 3) {
    throw new TypeError(
      `saveFlowDataset: x has ${ds.x.length} values, expected n*h*w*3 = ${n * height * width * 3}`,
    );
  }
  for (const k of ["fine", "coarse", "subjects", "datasets", "ids"] as const) {
    if (ds[k].length !== n) {
      throw new TypeError(`saveFlowDataset: ${k} has ${ds[k].length} entries, expected n = ${n}`);
    }
  }
}

/**
 * Serialises a flow dataset to the documented single-file format (see the module doc).
 * @throws {TypeError} when array lengths disagree with `n`, `height`, `width`.
 */
export function encodeFlowDataset(ds: FlowDataset): Uint8Array {
  assertLittleEndian();
  checkDataset(ds);
  const header = {
    name: ds.name,
    protocol: ds.protocol,
    n: ds.n,
    height: ds.height,
    width: ds.width,
    channels: ["u", "v", "strain"],
    layout: "NHWC",
    dtype: "float32",
    classes: ds.classes,
    fine: Array.from(ds.fine),
    coarse: Array.from(ds.coarse),
    subjects: ds.subjects,
    datasets: ds.datasets,
    ids: ds.ids,
    preprocessing: ds.preprocessing,
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const dataOffset = Math.ceil((16 + json.length) / 4) * 4;
  const out = new Uint8Array(dataOffset + ds.x.byteLength);
  out.set(new TextEncoder().encode(FLOW_DATASET_MAGIC), 0);
  const dv = new DataView(out.buffer);
  dv.setUint32(8, FLOW_DATASET_VERSION, true);
  dv.setUint32(12, json.length, true);
  out.set(json, 16);
  out.set(new Uint8Array(ds.x.buffer, ds.x.byteOffset, ds.x.byteLength), dataOffset);
  return out;
}

/**
 * Parses the single-file format back into a {@link FlowDataset} (`x` is a copy, 4-byte aligned).
 * @param name the file name, used in error messages.
 * @throws {DatasetError} naming the file for a wrong magic, unsupported version, bad header or truncated data.
 */
export function decodeFlowDataset(bytes: Uint8Array, name = "<bytes>"): FlowDataset {
  assertLittleEndian();
  const fail = (msg: string, field?: string) => new DatasetError(msg, { file: name, field });
  if (bytes.length < 16 || new TextDecoder().decode(bytes.subarray(0, 8)) !== FLOW_DATASET_MAGIC) {
    throw fail(`not a merba flow dataset (expected magic "${FLOW_DATASET_MAGIC}")`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint32(8, true);
  if (version !== FLOW_DATASET_VERSION) {
    throw fail(`format version ${version} is not supported (expected ${FLOW_DATASET_VERSION})`, "version");
  }
  const h = dv.getUint32(12, true);
  if (16 + h > bytes.length) {
    throw fail(`header length ${h} runs past the end of the file (${bytes.length} bytes)`);
  }
  let head: Record<string, unknown>;
  try {
    head = JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + h)));
  } catch (e) {
    throw fail(`header is not valid JSON: ${(e as Error).message}`, "header");
  }
  const n = head.n as number;
  const height = head.height as number;
  const width = head.width as number;
  for (const [k, v] of Object.entries({ n, height, width })) {
    if (!Number.isInteger(v) || (v as number) < 0) throw fail(`header ${k} = ${v} is not a count`, k);
  }
  const dataOffset = Math.ceil((16 + h) / 4) * 4;
  const count = n * height * width * 3;
  if (bytes.length !== dataOffset + 4 * count) {
    throw fail(
      `expected ${dataOffset + 4 * count} bytes for n=${n}, ${height}x${width}x3, found ${bytes.length}`,
      "x",
    );
  }
  const x = new Float32Array(count);
  new Uint8Array(x.buffer).set(bytes.subarray(dataOffset, dataOffset + 4 * count));
  const arr = (k: string) => {
    const v = head[k];
    if (!Array.isArray(v) || v.length !== n) {
      throw fail(`header ${k} must be an array of n = ${n} entries`, k);
    }
    return v;
  };
  const ds: FlowDataset = {
    name: String(head.name ?? ""),
    protocol: String(head.protocol ?? ""),
    n,
    height,
    width,
    x,
    fine: Int32Array.from(arr("fine") as number[]),
    coarse: Int32Array.from(arr("coarse") as number[]),
    classes: head.classes as FlowDataset["classes"],
    subjects: arr("subjects") as string[],
    datasets: arr("datasets") as string[],
    ids: arr("ids") as string[],
  };
  if (head.preprocessing !== undefined) ds.preprocessing = head.preprocessing as Record<string, unknown>;
  if (!ds.classes || !Array.isArray(ds.classes.fine) || !Array.isArray(ds.classes.coarse)) {
    throw fail("header classes must hold fine, coarse and fineToCoarse", "classes");
  }
  return ds;
}

/**
 * Writes a flow dataset file (parent folders are created; written to a temporary name, then renamed).
 *
 * @example
 * ```ts ignore
 * await saveFlowDataset(ds, "out/casme2_5class_28.mflow");
 * const again = await loadFlowDataset("out/casme2_5class_28.mflow");
 * ```
 */
export async function saveFlowDataset(ds: FlowDataset, path: string): Promise<void> {
  const bytes = encodeFlowDataset(ds);
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.writeFile(tmp, bytes);
  await Deno.rename(tmp, path);
}

/**
 * Reads a flow dataset file written by {@link saveFlowDataset}.
 * @throws {DatasetError} naming the path when missing or malformed.
 */
export async function loadFlowDataset(path: string): Promise<FlowDataset> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new DatasetError("flow dataset file not found", { file: path });
    }
    throw new DatasetError(`cannot read flow dataset: ${(e as Error).message}`, { file: path });
  }
  return decodeFlowDataset(bytes, path);
}

/** The part of a sample that identifies its cache entry. */
export function sampleCacheKey(s: SampleRef): Record<string, unknown> {
  return {
    dataset: s.dataset,
    id: s.id,
    onsetFrame: s.onsetFrame,
    apexFrame: s.apexFrame,
    onsetPath: s.onsetPath,
    apexPath: s.apexPath,
  };
}

/**
 * Per-sample cache of preprocessed inputs (`[size, size, 3]` float32) under one parameter set.
 *
 * @example
 * ```ts
 * import { FlowCache } from "./cache.ts";
 * import assert from "node:assert/strict";
 * const dir = await Deno.makeTempDir();
 * const cache = await FlowCache.open(dir, { method: "tvl1", size: 2 });
 * const key = { dataset: "d", id: "a" };
 * assert.equal(await cache.get(key, 12), undefined);
 * await cache.put(key, new Float32Array(12).fill(0.5));
 * assert.equal((await cache.get(key, 12))![3], 0.5);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class FlowCache {
  /** Folder of this parameter set: `<cacheDir>/<paramsHash>`. */
  readonly dir: string;
  /** Hash of the parameters. */
  readonly paramsHash: string;

  private constructor(dir: string, paramsHash: string) {
    this.dir = dir;
    this.paramsHash = paramsHash;
  }

  /** Opens (creating) the cache folder for `params` and records them in `params.json`. */
  static async open(cacheDir: string, params: Record<string, unknown>): Promise<FlowCache> {
    const h = hashKey(params);
    const dir = join(cacheDir, h);
    await Deno.mkdir(dir, { recursive: true });
    const pj = join(dir, "params.json");
    try {
      await Deno.stat(pj);
    } catch {
      await Deno.writeTextFile(pj, JSON.stringify(JSON.parse(canonicalJson(params)), null, 2) + "\n");
    }
    return new FlowCache(dir, h);
  }

  /** Path of the entry for a sample key. */
  path(key: Record<string, unknown>): string {
    return join(this.dir, `${hashKey(key)}.f32`);
  }

  /** Reads an entry; undefined when absent or of the wrong length (then it is recomputed). */
  async get(key: Record<string, unknown>, length: number): Promise<Float32Array | undefined> {
    assertLittleEndian();
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(this.path(key));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    }
    if (bytes.length !== 4 * length) return undefined;
    const out = new Float32Array(length);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }

  /** Writes an entry atomically (temporary name, then rename). */
  async put(key: Record<string, unknown>, data: Float32Array): Promise<void> {
    assertLittleEndian();
    const p = this.path(key);
    const tmp = `${p}.tmp-${crypto.randomUUID().slice(0, 8)}`;
    await Deno.writeFile(tmp, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    await Deno.rename(tmp, p);
  }
}
