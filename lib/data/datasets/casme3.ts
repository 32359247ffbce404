/**
 * CAS(ME)^3 part A loader (Inst. of Psychology, CAS; v2 ME label file: 860 rows, 94 subjects, 30 fps).
 *
 * Layout: `{Subject}/{Filename}/color/{frame}.jpg` (e.g. `spNO.1/b/color/175.jpg`); depth frames sit beside
 * `color` (`frames: "depth"` reads those).
 *
 * Label file `cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx` (or CSV), header on row 1:
 * `Subject | Filename | Onset | Apex | Offset | AU | Objective class | emotion`.
 * Emotions are lower-cased (the file has 3 `Others` among `others`).
 *
 * **Duplicate file names:** one clip (`Filename`) can hold several MEs, so samples are keyed by
 * (Subject, Filename, Onset): `id` = `spNO.1/b/166`. If even that repeats, the sheet row is appended
 * (`spNO.1/b/166@r12`) and a warning says so.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { DatasetError, type SampleRef } from "../types.ts";
import {
  type ApexOptions,
  applyFixes,
  columnIndex,
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

/** CAS(ME)^3 part A emotion vocabulary (lower case, as in the label file). */
export const CASME3_EMOTIONS: readonly string[] = [
  "disgust",
  "surprise",
  "others",
  "fear",
  "anger",
  "sad",
  "happy",
];

/**
 * Label corrections published by MEB (`tvaranka/meb`, `meb/datasets/datasets.py`, class `Casme3`, commit
 * 0607d7d), on the v2 ME label file with its header on row 1: sheet row = MEB index + 2. Off by default.
 */
export const CASME3_MEB_FIXES: readonly LabelFix[] = [
  { row: 128 + 2, field: "apex", value: 160, source: "MEB" },
  { row: 749 + 2, field: "onset", value: 2647, source: "MEB" },
  { row: 708 + 2, field: "offset", value: 34, source: "MEB" },
  { row: 796 + 2, field: "offset", value: 1845, source: "MEB" },
  { row: 798 + 2, field: "offset", value: 2403, source: "MEB" },
  { row: 750 + 2, field: "onset", value: 1, source: "MEB" },
  { row: 750 + 2, field: "apex", value: 1, source: "MEB" },
];

/** Options for {@link loadCasme3}. */
export interface Casme3Options extends LoaderOptions, ApexOptions {
  /** Label file. Default: the newest `cas(me)3*part*A*.xlsx|csv` in `root`, then its parent. */
  labelFile?: string;
  /** Which frames to read. @default "color" */
  frames?: "color" | "depth";
  /** Label corrections: `"meb"` = {@link CASME3_MEB_FIXES}, or your own. @default none */
  fixes?: "meb" | readonly LabelFix[];
}

const FIELDS = { onset: "Onset", apex: "Apex", offset: "Offset" };

/**
 * Parses a CAS(ME)^3 part A label sheet.
 * @throws {DatasetError} naming the file, row and field, unless `skipBad`.
 */
export async function readCasme3Labels(
  file: string,
  opts: Pick<Casme3Options, "skipBad" | "extraEmotions" | "fixes"> = {},
): Promise<{ rows: ParsedRow[]; warnings: string[] }> {
  const table = await readTable(file);
  const header = table.find((r) => r.cells.some((c) => /^\s*subject\s*$/i.test(String(c ?? ""))));
  if (!header) throw new DatasetError('no header row with a "Subject" column', { file });
  const col = columnIndex(
    header,
    {
      subject: ["Subject"],
      filename: ["Filename"],
      onset: ["Onset"],
      apex: ["Apex"],
      offset: ["Offset"],
      au: ["AU", "Action Units"],
      emotion: ["emotion", "Estimated Emotion"],
    },
    file,
    ["subject", "filename", "onset", "apex", "offset", "emotion"],
  );
  const warnings: string[] = [];
  const rows: ParsedRow[] = [];
  for (const r of table) {
    if (r.row <= header.row) continue;
    const w = (field: string) => ({ file, row: r.row, field });
    const parsed = await guardSample(opts.skipBad, warnings, () => {
      const c = r.cells;
      const p = parseLabelRow(r, col, file, textCell(c[col.subject] ?? null, w("Subject")), {
        fields: FIELDS,
        emotionField: "emotion",
        emotions: CASME3_EMOTIONS,
        extraEmotions: opts.extraEmotions,
      });
      return Promise.resolve(p);
    });
    if (parsed) rows.push(parsed);
  }
  const fixes = opts.fixes === "meb" ? CASME3_MEB_FIXES : opts.fixes;
  if (fixes) applyFixes(rows, fixes, warnings, file);
  return { rows, warnings };
}

/**
 * Loads CAS(ME)^3 part A micro-expression samples.
 *
 * @param root the folder holding the subject folders (`spNO.1`, ...).
 * @returns samples (`subject` = `casme3/spNO.1`, `id` = `spNO.1/b/166`), warnings and the label file.
 * @throws {DatasetError} naming the file, row and field, unless `skipBad`.
 *
 * @example
 * ```ts ignore
 * const { samples } = await loadCasme3("/data/casme3/part_A/data/part_A", { labelFile: "/data/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx" });
 * ```
 */
export async function loadCasme3(root: string, opts: Casme3Options = {}): Promise<LoadResult> {
  const labelFile = await findLabelFile(
    opts.labelFile,
    [root, dirname(root)],
    /^cas\(me\)(3|\^3).*part.?a.*\.(xlsx|csv)$/i,
    "CAS(ME)^3 part A label sheet",
  );
  const { rows, warnings } = await readCasme3Labels(labelFile, opts);
  try {
    await Deno.stat(root);
  } catch {
    throw new DatasetError("CAS(ME)^3 root folder not found", { file: root });
  }
  const seen = new Map<string, number>();
  const clipCount = new Map<string, number>();
  for (const r of rows) {
    const k = `${r.subjectDir}/${r.filename}`;
    clipCount.set(k, (clipCount.get(k) ?? 0) + 1);
  }
  const multi = [...clipCount.values()].filter((n) => n > 1).length;
  if (multi > 0) {
    warnings.push(
      `${labelFile}: ${multi} clips hold several MEs; samples are keyed by (Subject, Filename, Onset)`,
    );
  }
  const samples: SampleRef[] = [];
  for (const r of rows) {
    let id = `${r.subjectDir}/${r.filename}/${r.onset}`;
    if (seen.has(id)) {
      warnings.push(
        `${labelFile} row ${r.source.row}: (Subject, Filename, Onset) repeats row ${
          seen.get(id)
        }; id gets "@r${r.source.row}"`,
      );
      id = `${id}@r${r.source.row}`;
    } else seen.set(id, r.source.row);
    const s = await guardSample(opts.skipBad, warnings, () =>
      resolveClip(r, {
        ...opts,
        dataset: "casme3",
        subject: r.subjectDir,
        id,
        dir: join(root, r.subjectDir, r.filename, opts.frames ?? "color"),
        fields: FIELDS,
      }));
    if (!s) continue;
    for (const n of s.notes) {
      if (n.startsWith("apex missing")) {
        warnings.push(`${labelFile} row ${r.source.row}: ${n}`);
      }
    }
    samples.push(s);
  }
  warnFrameGaps(samples, warnings, labelFile);
  return { samples, warnings, labelFile };
}
