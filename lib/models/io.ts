/**
 * Saving and loading MERba models to a directory, through a Deno file-system tfjs `IOHandler` (tfjs ships
 * handlers for browsers, HTTP and Node's tfjs-node, none for Deno).
 *
 * Layout (the tfjs `model.json` format, so `tf.io` tooling can read the weights):
 * ```
 * <dir>/model.json    {"format": "merba", "generatedBy": ..., "modelTopology": {"merbaConfig": {...}},
 *                      "weightsManifest": [{"paths": ["weights.bin"], "weights": [{name, shape, dtype}, ...]}]}
 * <dir>/weights.bin   the float32 weights, little-endian, in manifest order
 * ```
 * Weight names are the model's stable names (`stages.0.blocks.0.mixer.in_proj.kernel`), BatchNorm moving
 * statistics included; values round-trip bit for bit.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { createMerba, type MerbaModel } from "./merba.ts";
import type { MerbaConfig } from "./config.ts";

/** Error reading a saved model (missing file, wrong format, mismatched weights). */
export class ModelFileError extends Error {
  /** The offending file. */
  readonly file: string;
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = "ModelFileError";
    this.file = file;
  }
}

/**
 * A tfjs `IOHandler` that reads and writes `model.json` + `weights.bin` in a directory with Deno's file API.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { fileSystemIO } from "./io.ts";
 * await tf.setBackend("cpu");
 * const dir = await Deno.makeTempDir();
 * const m = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3] })] });
 * await m.save(fileSystemIO(dir));
 * const back = await tf.loadLayersModel(fileSystemIO(dir));
 * if (back.countParams() !== 8) throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function fileSystemIO(
  dir: string,
): Required<Pick<tf.io.IOHandler, "save" | "load">> & tf.io.IOHandler {
  const jsonPath = join(dir, "model.json");
  const binName = "weights.bin";
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      await Deno.mkdir(dir, { recursive: true });
      const data = artifacts.weightData
        ? new Uint8Array(
          artifacts.weightData instanceof ArrayBuffer
            ? artifacts.weightData
            : tf.io.concatenateArrayBuffers(artifacts.weightData),
        )
        : new Uint8Array(0);
      await Deno.writeFile(join(dir, binName), data);
      const json = {
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        modelTopology: artifacts.modelTopology,
        ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
        weightsManifest: [{ paths: [binName], weights: artifacts.weightSpecs ?? [] }],
        ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
      };
      await Deno.writeTextFile(jsonPath, JSON.stringify(json, null, 1));
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: "JSON",
          weightDataBytes: data.byteLength,
        },
      };
    },
    async load(): Promise<tf.io.ModelArtifacts> {
      let json: tf.io.ModelJSON;
      try {
        json = JSON.parse(await Deno.readTextFile(jsonPath));
      } catch (e) {
        throw new ModelFileError(jsonPath, `cannot read model.json (${(e as Error).message})`);
      }
      const manifest = json.weightsManifest ?? [];
      const specs = manifest.flatMap((g) => g.weights);
      const parts: Uint8Array[] = [];
      for (const g of manifest) {
        for (const p of g.paths) {
          const file = join(dir, p);
          try {
            parts.push(await Deno.readFile(file));
          } catch (e) {
            throw new ModelFileError(file, `cannot read weights (${(e as Error).message})`);
          }
        }
      }
      const total = parts.reduce((s, p) => s + p.byteLength, 0);
      const buf = new Uint8Array(total);
      let o = 0;
      for (const p of parts) {
        buf.set(p, o);
        o += p.byteLength;
      }
      return {
        modelTopology: json.modelTopology,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
        trainingConfig: json.trainingConfig,
        userDefinedMetadata: json.userDefinedMetadata,
        weightSpecs: specs,
        weightData: buf.buffer,
      };
    },
  };
}

/**
 * Saves a model's configuration and every weight (BatchNorm statistics included) to `dir`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { createMerba, loadMerba, saveMerba } from "../../mod.ts";
 * await tf.setBackend("cpu");
 * const dir = await Deno.makeTempDir();
 * const m = createMerba("merba-test", { seed: 3 });
 * await saveMerba(m, dir);
 * const back = await loadMerba(dir);
 * if (back.countParams() !== m.countParams()) throw new Error();
 * m.dispose();
 * back.dispose();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveMerba(model: MerbaModel, dir: string): Promise<void> {
  const named = model.namedWeights();
  const tensors: tf.NamedTensorMap = {};
  for (const w of named) tensors[w.name] = w.variable.read();
  const { data, specs } = await tf.io.encodeWeights(tensors);
  await fileSystemIO(dir).save({
    format: "merba",
    generatedBy: "merba (lib/models/io.ts)",
    modelTopology: { merbaConfig: model.config } as unknown as tf.io.ModelArtifacts["modelTopology"],
    weightSpecs: specs,
    weightData: data,
  });
}

/**
 * Loads a model written by {@link saveMerba}: rebuilds it from the stored config and writes every weight.
 *
 * @throws {ModelFileError} when a file is missing, the format is not merba's, or the weights do not match
 *   the config (missing, extra or mis-shaped names).
 */
export async function loadMerba(dir: string): Promise<MerbaModel> {
  const art = await fileSystemIO(dir).load();
  const file = join(dir, "model.json");
  const topo = art.modelTopology as { merbaConfig?: MerbaConfig } | undefined;
  if (art.format !== "merba" || !topo?.merbaConfig) {
    throw new ModelFileError(
      file,
      `not a merba model (format ${JSON.stringify(art.format)}, expected "merba")`,
    );
  }
  let model: MerbaModel;
  try {
    model = createMerba(topo.merbaConfig);
  } catch (e) {
    throw new ModelFileError(file, `its merbaConfig is not a valid configuration: ${(e as Error).message}`);
  }
  try {
    const specs = art.weightSpecs ?? [];
    // the manifest must describe exactly the bytes of weights.bin: a truncated file or a wrong dtype/shape
    // would otherwise fail inside tfjs without naming the file, and trailing bytes would pass silently
    const bytesOf: Record<string, number> = { float32: 4, int32: 4, bool: 1 };
    let need = 0;
    const seen = new Set<string>();
    for (const sp of specs) {
      if (seen.has(sp.name)) {
        throw new ModelFileError(file, `weight "${sp.name}" is listed twice in the manifest`);
      }
      seen.add(sp.name);
      const per = bytesOf[sp.dtype];
      if (per === undefined || (sp as { quantization?: unknown }).quantization !== undefined) {
        throw new ModelFileError(file, `weight "${sp.name}" has dtype ${sp.dtype}; merba saves float32`);
      }
      if (!Array.isArray(sp.shape) || sp.shape.some((d) => !Number.isInteger(d) || d < 0)) {
        throw new ModelFileError(file, `weight "${sp.name}" has a bad shape ${JSON.stringify(sp.shape)}`);
      }
      need += per * sp.shape.reduce((a, b) => a * b, 1);
    }
    const have = (art.weightData as ArrayBuffer | undefined)?.byteLength ?? 0;
    if (have !== need) {
      throw new ModelFileError(
        join(dir, "weights.bin"),
        `holds ${have} bytes but the manifest in model.json describes ${need} (truncated, or from another save)`,
      );
    }
    const decoded = tf.io.decodeWeights(art.weightData!, specs);
    const named = model.namedWeights();
    const names = new Set(named.map((w) => w.name));
    const extra = Object.keys(decoded).filter((n) => !names.has(n));
    if (extra.length > 0) {
      throw new ModelFileError(file, `unexpected weights ${extra.slice(0, 5).join(", ")}`);
    }
    for (const w of named) {
      const t = decoded[w.name];
      if (!t) throw new ModelFileError(file, `weight "${w.name}" is missing`);
      const want = w.variable.shape as number[];
      if (t.shape.length !== want.length || t.shape.some((s, i) => s !== want[i])) {
        throw new ModelFileError(file, `weight "${w.name}" has shape [${t.shape}], expected [${want}]`);
      }
      w.variable.write(t);
    }
    tf.dispose(Object.values(decoded));
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}
