/**
 * The LOSO model factory for MERba: every fold gets `createMerba(name, {...overrides, classes, inputSize,
 * seed})` with the dataset's class hierarchy and input size and the fold's seed.
 *
 * @module
 */
import type { ClassHierarchy } from "../data/types.ts";
import { createMerba } from "../models/merba.ts";
import { type MerbaOverrides, resolveMerbaConfig } from "../models/config.ts";
import type { LosoModel, ModelFactory } from "./loso.ts";

/**
 * A {@link ModelFactory} for a registered MERba variant (or a partial config) plus overrides.
 *
 * @param nameOrConfig registry name (`merba-tiny`) or a partial config.
 * @param overrides e.g. `{ scanSet: "raster", coarseHead: false }`; `classes`, `inputSize` and `seed` are
 *   set per fold and may not be overridden here.
 * @param save optional weight writer for `saveWeights` (e.g. `saveMerba`).
 * @throws {RangeError} (from the config) on an unknown name or an invalid field, at the first `config()`.
 *
 * @example
 * ```ts
 * import { merbaFactory } from "./merba_factory.ts";
 * const f = merbaFactory("merba-tiny", { scanSet: "raster" });
 * const cfg = f.config({ fine: ["a", "b"], coarse: ["x"], fineToCoarse: [0, 0] }, [28, 28]);
 * if (cfg.scanSet !== "raster") throw new Error();
 * ```
 */
export function merbaFactory(
  nameOrConfig: string | MerbaOverrides,
  overrides: MerbaOverrides = {},
  save?: (model: LosoModel, dir: string) => Promise<void>,
): ModelFactory {
  for (const k of ["classes", "inputSize", "seed"] as const) {
    if (k in overrides) {
      throw new RangeError(
        `merbaFactory: "${k}" is set per fold from the dataset and seed; remove it from overrides`,
      );
    }
  }
  const fill = (classes: ClassHierarchy, inputSize: [number, number], seed: number): MerbaOverrides => ({
    ...overrides,
    classes,
    inputSize,
    seed,
  });
  return {
    name: typeof nameOrConfig === "string" ? nameOrConfig : null,
    config: (classes, inputSize) =>
      resolveMerbaConfig(nameOrConfig, fill(classes, inputSize, 0)) as unknown as Record<string, unknown>,
    create: (classes, inputSize, seed) => createMerba(nameOrConfig, fill(classes, inputSize, seed)),
    ...(save ? { save } : {}),
  };
}
