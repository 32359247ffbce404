/**
 * SAMM loader (Manchester Metropolitan Univ.; 159 micro-expression rows, 29 subjects, 200 fps, gray frames).
 *
 * Layout: `SAMM/006/006_1_2/006_05562.jpg` — 3-digit subject folder, clip folder = `Filename`, frames
 * `<subject>_<frame>.jpg` with 5-digit padding (some copies use 4; the frame number is parsed from the
 * name, so any padding works).
 *
 * Label file `SAMM_Micro_FACS_Codes_v2.xlsx` (or `SAMM_20181215_Micro_FACS_Codes_v2.xlsx`, or CSV): 13 rows
 * of notes, then **the header on row 14**: `Subject | Filename | Inducement Code | Onset Frame | Apex Frame |
 * Offset Frame | Duration | Micro | Action Units | Estimated Emotion | Objective Classes | Notes`. The header
 * row is found by content (the first row holding both `Subject` and `Filename`), so a sheet whose notes are
 * one row shorter still loads. `Subject` `6` -> folder `006`. Emotions are capitalised in the sheet
 * (`Anger`); they are lower-cased, and `Other`/`Others` become `others`.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { DatasetError, type SampleRef } from "../types.ts";
import {
  type ApexOptions,
  applyFixes,
  checkUniqueClip,
  columnIndex,
  exists,
  findLabelFile,
  guardSample,
  type LabelFix,
  type LoaderOptions,
  type LoadResult,
  type ParsedRow,
  parseLabelRow,
  readTable,
  resolveClip,
  textCell,
  warnFrameGaps,
} from "./common.ts";

/** SAMM emotion vocabulary after normalisation (lower case, `other` -> `others`). */
export const SAMM_EMOTIONS: readonly string[] = [
  "anger",
  "contempt",
  "happiness",
  "surprise",
  "others",
  "disgust",
  "fear",
  "sadness",
];

/**
 * Label corrections published by MEB (`tvaranka/meb`, `meb/datasets/datasets.py`, class `SAMM`, commit
 * 0607d7d): one wrong offset and three missing apexes (flow-estimated). MEB indexes data rows from 0
 * starting at sheet row 15 (just under the header on row 14), so sheet row = MEB index + 15. MEB's AU
 * rewrites for `or` entries are not mirrored (AUs are not used here). Off by default.
 */
export const SAMM_MEB_FIXES: readonly LabelFix[] = [
  { row: 56 + 15, field: "offset", value: 5739, source: "MEB: offset mistake in file" },
  {
    row: 125 + 15,
    field: "apex",
    value: 1105,
    source: "MEB: missing apex estimated from optical flow",
    forMissing: true,
  },
  {
    row: 132 + 15,
    field: "apex",
    value: 4945,
    source: "MEB: missing apex estimated from optical flow",
    forMissing: true,
  },
  {
    row: 133 + 15,
    field: "apex",
    value: 5130,
    source: "MEB: missing apex estimated from optical flow",
    forMissing: true,
  },
];

/** Options for {@link loadSamm}. */
export interface SammOptions extends LoaderOptions, ApexOptions {
  /** Label file. Default: the newest `SAMM*Micro*FACS*.xlsx|csv` in `root`, then its parent. */
  labelFile?: string;
  /** Label corrections: `"meb"` = {@link SAMM_MEB_FIXES}, or your own. @default none */
  fixes?: "meb" | readonly LabelFix[];
}

const FIELDS = { onset: "Onset Frame", apex: "Apex Frame", offset: "Offset Frame" };

/** `6` / `"006"` -> `"006"`. */
export function sammSubjectDir(v: string | number, where: { file: string; row: number }): string {
  const s = String(v).trim();
  if (!/^\d+$/.test(s)) {
    throw new DatasetError(`expected a subject number such as 6 or 006, got "${s}"`, {
      ...where,
      field: "Subject",
    });
  }
  return String(Number(s)).padStart(3, "0");
}

async function framesRoot(root: string): Promise<string> {
  try {
    for await (const e of Deno.readDir(root)) if (e.isDirectory && /^\d{3}$/.test(e.name)) return root;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new DatasetError("SAMM root folder not found", { file: root });
    }
    throw e;
  }
  if (await exists(join(root, "SAMM"))) return join(root, "SAMM");
  throw new DatasetError(`no 3-digit subject folders in ${root} or ${join(root, "SAMM")}`, { file: root });
}

/**
 * Parses a SAMM label sheet (header found by content, normally row 14).
 * @throws {DatasetError} naming the file, row and field, unless `skipBad`.
 */
export async function readSammLabels(
  file: string,
  opts: Pick<SammOptions, "skipBad" | "extraEmotions" | "fixes"> = {},
): Promise<{ rows: ParsedRow[]; warnings: string[]; headerRow: number }> {
  const table = await readTable(file);
  const header = table.find((r) => {
    const h = r.cells.map((c) => String(c ?? "").trim().toLowerCase());
    return h.includes("subject") && h.includes("filename");
  });
  if (!header) {
    throw new DatasetError('no header row holding "Subject" and "Filename" (expected row 14)', { file });
  }
  const col = columnIndex(
    header,
    {
      subject: ["Subject"],
      filename: ["Filename"],
      onset: ["Onset Frame", "OnsetFrame", "Onset"],
      apex: ["Apex Frame", "ApexFrame", "Apex"],
      offset: ["Offset Frame", "OffsetFrame", "Offset"],
      au: ["Action Units", "AU"],
      emotion: ["Estimated Emotion", "Emotion"],
    },
    file,
    ["subject", "filename", "onset", "apex", "offset", "emotion"],
  );
  const warnings: string[] = [];
  if (header.row !== 14) {
    warnings.push(`${file}: header found on row ${header.row} (SAMM's sheet has it on row 14)`);
  }
  const rows: ParsedRow[] = [];
  const seen = new Map<string, number>();
  for (const r of table) {
    if (r.row <= header.row) continue;
    const w = (field: string) => ({ file, row: r.row, field });
    const parsed = await guardSample(opts.skipBad, warnings, () => {
      const c = r.cells;
      const p = parseLabelRow(
        r,
        col,
        file,
        sammSubjectDir(textCell(c[col.subject] ?? null, w("Subject")), { file, row: r.row }),
        {
          fields: FIELDS,
          emotionField: "Estimated Emotion",
          emotions: SAMM_EMOTIONS,
          extraEmotions: opts.extraEmotions,
          aliases: { other: "others" },
        },
      );
      checkUniqueClip(seen, p, file, "Filename");
      return Promise.resolve(p);
    });
    if (parsed) rows.push(parsed);
  }
  const fixes = opts.fixes === "meb" ? SAMM_MEB_FIXES : opts.fixes;
  if (fixes) {
    if (opts.fixes === "meb" && header.row !== 14) {
      // MEB numbers SAMM's rows from the header on row 14: on a shifted sheet its rows are other clips
      throw new DatasetError(
        `MEB's SAMM fixes are for the sheet with its header on row 14; this sheet has it on row ` +
          `${header.row}, so they would change other clips. Pass the fixes with this sheet's rows instead ` +
          "(SAMM_MEB_FIXES lists them; shift each row by the difference)",
        { file, row: header.row, field: "fixes" },
      );
    }
    applyFixes(rows, fixes, warnings, file);
  }
  return { rows, warnings, headerRow: header.row };
}

/**
 * Loads SAMM samples.
 *
 * @param root the folder holding the 3-digit subject folders, or its parent holding `SAMM/`.
 * @returns samples (`subject` = `samm/006`, `id` = `006_1_2`), warnings and the label file used.
 * @throws {DatasetError} naming the file, row and field, unless `skipBad`.
 *
 * @example
 * ```ts ignore
 * const { samples } = await loadSamm("/data/SAMM", { labelFile: "/data/SAMM_Micro_FACS_Codes_v2.xlsx" });
 * ```
 */
export async function loadSamm(root: string, opts: SammOptions = {}): Promise<LoadResult> {
  const labelFile = await findLabelFile(
    opts.labelFile,
    [root, dirname(root)],
    /^SAMM.*FACS.*\.(xlsx|csv)$/i,
    "SAMM FACS code sheet",
  );
  const { rows, warnings } = await readSammLabels(labelFile, opts);
  const dir = await framesRoot(root);
  const samples = await resolveSammRows(rows, dir, opts, warnings);
  return { samples, warnings, labelFile };
}

/** Looks parsed SAMM rows up on disk under `dir` (the folder holding the subject folders). */
export async function resolveSammRows(
  rows: ParsedRow[],
  dir: string,
  opts: SammOptions,
  warnings: string[],
): Promise<SampleRef[]> {
  const samples: SampleRef[] = [];
  for (const r of rows) {
    const s = await guardSample(opts.skipBad, warnings, () =>
      resolveClip(r, {
        ...opts,
        dataset: "samm",
        subject: r.subjectDir,
        id: r.filename,
        dir: join(dir, r.subjectDir, r.filename),
        fields: FIELDS,
      }));
    if (!s) continue;
    for (const n of s.notes) {
      if (n.startsWith("apex missing")) {
        warnings.push(`${r.source.file} row ${r.source.row}: ${n}`);
      }
    }
    samples.push(s);
  }
  warnFrameGaps(samples, warnings, rows[0]?.source.file ?? dir);
  return samples;
}

/** Finds the SAMM frame folder for a root (exported for the composite loader). */
export function sammFramesRoot(root: string): Promise<string> {
  return framesRoot(root);
}
