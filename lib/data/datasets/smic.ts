/**
 * SMIC-HS loader (Univ. of Oulu; 164 samples, 16 subjects with MEs, 100 fps). Labels come from folder
 * names; there is no label sheet and **no annotated apex**.
 *
 * Layout: `HS/s1/micro/{negative|positive|surprise}/s1_ne_01/image<frame>.bmp`, or the cropped variant
 * `SMIC_all_cropped/HS/s1/micro/negative/s1_ne_01/reg_*.bmp`. Onset = first frame of the clip, offset =
 * last; the apex comes from the apex rule: `"middle"` (MEB, default), `"max-flow"` (MEAN; needs
 * `apexScorer`, e.g. `flowMagnitudeScorer()` from `lib/data/preprocess.ts`), or a function.
 *
 * Naming: folders say `s1` / `s1_ne_01`, the MEGC2019 composite list says `s01` / `s01_ne_01`;
 * {@link smicCanonical} maps both to the folder spelling.
 *
 * @module
 */

import { join } from "node:path";
import { DatasetError, type SampleRef } from "../types.ts";
import {
  type ApexOptions,
  checkOrder,
  clipFrames,
  exists,
  guardSample,
  listFrames,
  type LoaderOptions,
  type LoadResult,
  resolveApex,
} from "./common.ts";

/** SMIC-HS emotion folders (already 3-class). */
export const SMIC_EMOTIONS: readonly string[] = ["negative", "positive", "surprise"];

/** Options for {@link loadSmic}. */
export type SmicOptions = LoaderOptions & ApexOptions;

/**
 * Canonical SMIC names: strips zero padding after the `s` (`s01` -> `s1`, `s01_ne_01` -> `s1_ne_01`).
 */
export function smicCanonical(name: string): string {
  return name.trim().replace(/^s0*(\d+)/i, (_m, d: string) => `s${d}`);
}

async function subjectsRoot(root: string): Promise<string> {
  const hasSubjects = async (d: string) => {
    try {
      for await (const e of Deno.readDir(d)) if (e.isDirectory && /^s\d+$/i.test(e.name)) return true;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      throw e;
    }
    return false;
  };
  if (!(await exists(root))) throw new DatasetError("SMIC root folder not found", { file: root });
  for (const d of [root, join(root, "HS"), join(root, "SMIC_all_cropped", "HS"), join(root, "SMIC", "HS")]) {
    if (await hasSubjects(d)) return d;
  }
  throw new DatasetError(`no sN subject folders in ${root} or its HS/ folder`, { file: root });
}

async function dirs(path: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(path)) if (e.isDirectory) out.push(e.name);
  return out.sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
}

/**
 * Loads SMIC-HS micro-expression clips from folders.
 *
 * @param root the `HS` folder (holding `s1`, `s2`, ...) or a parent of it.
 * @returns samples sorted by subject, emotion, clip (`subject` = `smic/s1`, `id` = `s1_ne_01`,
 * `source.file` = the clip folder), and warnings (apex rule used, subjects without `micro/`, skipped clips).
 * @throws {DatasetError} naming the folder for an unknown emotion folder or a clip without frames, unless
 * `skipBad`.
 *
 * @example
 * ```ts ignore
 * const { samples } = await loadSmic("/data/SMIC/HS", { apexRule: "middle" });
 * ```
 */
export async function loadSmic(root: string, opts: SmicOptions = {}): Promise<LoadResult> {
  const base = await subjectsRoot(root);
  const warnings: string[] = [];
  const samples: SampleRef[] = [];
  const subjects = (await dirs(base)).filter((d) => /^s\d+$/i.test(d));
  let noApexCount = 0;
  const seen = new Map<string, string>(); // canonical clip id -> its first folder
  for (const subjectDir of subjects) {
    const micro = join(base, subjectDir, "micro");
    if (!(await exists(micro))) {
      warnings.push(`${join(base, subjectDir)}: no micro/ folder (subject without micro-expressions)`);
      continue;
    }
    const subject = smicCanonical(subjectDir);
    for (const emoDir of await dirs(micro)) {
      const emoPath = join(micro, emoDir);
      const emotion = emoDir.toLowerCase();
      for (const clip of await dirs(emoPath)) {
        const clipDir = join(emoPath, clip);
        const s = await guardSample(opts.skipBad, warnings, async () => {
          if (!SMIC_EMOTIONS.includes(emotion) && !(opts.extraEmotions ?? []).includes(emotion)) {
            throw new DatasetError(
              `unknown emotion folder "${emoDir}" (expected one of ${SMIC_EMOTIONS.join(", ")})`,
              { file: clipDir, field: "emotion folder" },
            );
          }
          const id = `${subject}/${smicCanonical(clip)}`;
          const first = seen.get(id);
          if (first !== undefined) {
            throw new DatasetError(
              `clip ${
                smicCanonical(clip)
              } of ${subject} is also in ${first}; each clip must be in one emotion folder`,
              { file: clipDir, field: "emotion folder" },
            );
          }
          seen.set(id, clipDir);
          const frames = await listFrames(clipDir, { file: clipDir });
          const onset = frames[0].frame;
          const offset = frames[frames.length - 1].frame;
          const { apex, how } = await resolveApex(
            { frames, onset, offset, dataset: "smic", id: clip },
            opts,
            {
              file: clipDir,
            },
          );
          checkOrder(onset, apex, offset, { file: clipDir }, {
            onset: "onset",
            apex: "apex",
            offset: "offset",
          });
          const ref: SampleRef = {
            dataset: "smic",
            subject: `smic/${subject}`,
            id: smicCanonical(clip),
            emotion,
            onsetFrame: onset,
            apexFrame: apex,
            offsetFrame: offset,
            onsetPath: frames[0].path,
            apexPath: frames.find((f) => f.frame === apex)!.path,
            offsetPath: frames[frames.length - 1].path,
            source: { file: clipDir },
            notes: [`no apex annotated; ${how} ${apex} used`],
          };
          const list = clipFrames(frames, onset, offset, opts.listFrames);
          if (list) ref.frames = list;
          return ref;
        });
        if (s) {
          samples.push(s);
          noApexCount++;
        }
      }
    }
  }
  if (noApexCount > 0) {
    const rule = typeof opts.apexRule === "function" ? "custom" : (opts.apexRule ?? "middle");
    warnings.push(`${base}: SMIC has no annotated apex; apex rule "${rule}" applied to ${noApexCount} clips`);
  }
  return { samples, warnings, labelFile: base };
}
