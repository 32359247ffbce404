/**
 * CASME II loader (Inst. of Psychology, CAS; 26 subjects, 255 label rows, 200 fps).
 *
 * Layouts read (frame numbers are absolute indices into the original clip, taken from the file name):
 * - raw: `CASME2_RAW_selected/sub01/EP02_01f/img46.jpg`
 * - cropped: `Cropped/sub01/EP02_01f/reg_img46.jpg` (also `CASME2-RAW_crop/sub01/EP02_01f/*.jpg`)
 *
 * Label file `CASME2-coding-20140508.xlsx` / `CASME2-coding-20190701.xlsx` (or the same sheet saved as CSV),
 * header on row 1: `Subject | Filename | (empty) | OnsetFrame | ApexFrame | OffsetFrame | (empty) |
 * Action Units | Estimated Emotion | Objective Classes`. Columns are found by header name, so the spacer
 * columns and pandas' `Unnamed: 2` do not matter. `Subject` is an integer (`1` -> folder `sub01`).
 * `ApexFrame` may be `/` (missing): the apex rule fills it in (middle frame by default) and says so in the
 * sample's notes and the warnings.
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

/** CASME II `Estimated Emotion` vocabulary (lower case). */
export const CASME2_EMOTIONS: readonly string[] = [
  "happiness",
  "disgust",
  "repression",
  "surprise",
  "others",
  "fear",
  "sadness",
];

/**
 * Label corrections published by MEB (Varanka et al., `tvaranka/meb`, `meb/datasets/datasets.py`, class
 * `Casme2`, commit 0607d7d): one wrong offset and 21 missing apexes replaced by flow-estimated frames.
 * MEB indexes pandas rows from 0 under a header on sheet row 1, so sheet row = MEB index + 2.
 * The indices refer to the sheet MEB reads (its dataset config names the file `CASME2-coding-updated.xlsx`;
 * other releases may number rows differently): check the notes and warnings on the affected samples before
 * relying on them. Off by default (`fixes: "meb"` turns them on).
 */
export const CASME2_MEB_FIXES: readonly LabelFix[] = [
  { row: 62, field: "offset", value: 91, source: "MEB: offset mistake in file" },
  ...([
    [29, 279],
    [35, 68],
    [43, 77],
    [45, 81],
    [51, 166],
    [53, 100],
    [60, 78],
    [117, 187],
    [118, 89],
    [126, 80],
    [136, 88],
    [147, 134],
    [155, 231],
    [168, 53],
    [170, 329],
    [177, 111],
    [202, 91],
    [203, 103],
    [234, 98],
    [237, 153],
    [238, 98],
  ] as const).map(([i, v]): LabelFix => ({
    row: i + 2,
    field: "apex",
    value: v,
    source: "MEB: missing apex estimated from optical flow",
    forMissing: true,
  })),
];

/** Options for {@link loadCasme2}. */
export interface Casme2Options extends LoaderOptions, ApexOptions {
  /**
   * Label file (`.xlsx` or `.csv`). Default: the newest `CASME2-coding*.xlsx|csv` in `root`, then in its
   * parent.
   */
  labelFile?: string;
  /**
   * Which frame tree under `root` to use when `root` does not itself hold `subXX` folders:
   * `raw` = `CASME2_RAW_selected`, `cropped` = `Cropped` (or `CASME2-RAW_crop`). @default "raw"
   */
  layout?: "raw" | "cropped";
  /** Label corrections: `"meb"` = {@link CASME2_MEB_FIXES}, or your own list. @default none */
  fixes?: "meb" | readonly LabelFix[];
  /** Dataset name written into samples (the synthetic dataset reuses this loader). @default "casme2" */
  dataset?: string;
  /** Emotion vocabulary to accept. @default CASME2_EMOTIONS */
  emotions?: readonly string[];
}

const FIELDS = { onset: "OnsetFrame", apex: "ApexFrame", offset: "OffsetFrame" };

/** `1` / `"1"` / `"sub01"` / `"01"` -> `"sub01"`. */
export function casme2SubjectDir(v: string | number, where: { file: string; row: number }): string {
  const s = String(v).trim();
  const m = /^(?:sub)?0*(\d+)$/i.exec(s);
  if (!m) {
    throw new DatasetError(`expected a subject number such as 1 or sub01, got "${s}"`, {
      ...where,
      field: "Subject",
    });
  }
  return `sub${m[1].padStart(2, "0")}`;
}

/** Resolves the folder that holds the `subXX` folders. */
async function framesRoot(root: string, layout: "raw" | "cropped"): Promise<string> {
  try {
    for await (const e of Deno.readDir(root)) if (e.isDirectory && /^sub\d+$/i.test(e.name)) return root;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new DatasetError("CASME II root folder not found", { file: root });
    }
    throw e;
  }
  const cands = layout === "raw"
    ? ["CASME2_RAW_selected", "CASME2-RAW_selected", "CASME2_RAW"]
    : ["Cropped", "CASME2-RAW_crop", "CASME2_RAW_crop"];
  for (const c of cands) if (await exists(join(root, c))) return join(root, c);
  throw new DatasetError(
    `no subXX folders in ${root} and none of ${cands.join(", ")} below it (layout "${layout}")`,
    { file: root },
  );
}

/**
 * Parses a CASME II label sheet into rows (no disk access for frames). Rows with bad cells throw, or with
 * `skipBad` become warnings.
 *
 * @throws {DatasetError} naming the file, row and field.
 */
export async function readCasme2Labels(
  file: string,
  opts: Pick<Casme2Options, "skipBad" | "extraEmotions" | "emotions" | "fixes"> = {},
): Promise<{ rows: ParsedRow[]; warnings: string[] }> {
  const table = await readTable(file);
  const header = table.find((r) => r.cells.some((c) => /^\s*subject\s*$/i.test(String(c ?? ""))));
  if (!header) throw new DatasetError('no header row with a "Subject" column', { file });
  const col = columnIndex(
    header,
    {
      subject: ["Subject"],
      filename: ["Filename"],
      onset: ["OnsetFrame", "Onset Frame", "Onset"],
      apex: ["ApexFrame", "Apex Frame", "Apex"],
      offset: ["OffsetFrame", "Offset Frame", "Offset"],
      au: ["Action Units", "AU"],
      emotion: ["Estimated Emotion", "Emotion"],
    },
    file,
    ["subject", "filename", "onset", "apex", "offset", "emotion"],
  );
  const warnings: string[] = [];
  const rows: ParsedRow[] = [];
  const seen = new Map<string, number>();
  for (const r of table) {
    if (r.row <= header.row) continue;
    const w = (field: string) => ({ file, row: r.row, field });
    const parsed = await guardSample(opts.skipBad, warnings, () => {
      const c = r.cells;
      const subjectDir = casme2SubjectDir(textCell(c[col.subject] ?? null, w("Subject")), {
        file,
        row: r.row,
      });
      const p = parseLabelRow(r, col, file, subjectDir, {
        fields: FIELDS,
        emotionField: "Estimated Emotion",
        emotions: opts.emotions ?? CASME2_EMOTIONS,
        extraEmotions: opts.extraEmotions,
      });
      checkUniqueClip(seen, p, file, "Filename");
      return Promise.resolve(p);
    });
    if (parsed) rows.push(parsed);
  }
  const fixes = opts.fixes === "meb" ? CASME2_MEB_FIXES : opts.fixes;
  if (fixes) applyFixes(rows, fixes, warnings, file);
  return { rows, warnings };
}

/**
 * Loads CASME II samples: parses the coding sheet and looks up every row's onset, apex and offset frames.
 *
 * @param root the folder holding `subXX` folders, or its parent holding `CASME2_RAW_selected` / `Cropped`.
 * @returns samples in sheet order (`subject` = `casme2/sub01`, `id` = `sub01/EP02_01f`), warnings (skipped
 * rows, missing apexes filled in, fixes applied) and the label file used.
 * @throws {DatasetError} naming the file, row and field of the first bad row, unless `skipBad`.
 *
 * @example
 * ```ts ignore
 * const { samples, warnings } = await loadCasme2("/data/CASME2", { layout: "cropped" });
 * ```
 */
export async function loadCasme2(root: string, opts: Casme2Options = {}): Promise<LoadResult> {
  const labelFile = await findLabelFile(
    opts.labelFile,
    [root, dirname(root)],
    /^CASME2[-_ ]?coding.*\.(xlsx|csv)$/i,
    "CASME II coding sheet",
  );
  const { rows, warnings } = await readCasme2Labels(labelFile, opts);
  const dir = await framesRoot(root, opts.layout ?? "raw");
  const samples = await resolveCasme2Rows(rows, dir, opts, warnings);
  return { samples, warnings, labelFile };
}

/** Looks parsed CASME II rows up on disk under `dir` (the folder holding `subXX`). */
export async function resolveCasme2Rows(
  rows: ParsedRow[],
  dir: string,
  opts: Casme2Options,
  warnings: string[],
): Promise<SampleRef[]> {
  const dataset = opts.dataset ?? "casme2";
  const samples: SampleRef[] = [];
  for (const r of rows) {
    const s = await guardSample(opts.skipBad, warnings, () =>
      resolveClip(r, {
        ...opts,
        dataset,
        subject: r.subjectDir,
        id: `${r.subjectDir}/${r.filename}`,
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

/** Finds the CASME II frame folder for a root (exported for the composite loader). */
export function casme2FramesRoot(root: string, layout: "raw" | "cropped" = "raw"): Promise<string> {
  return framesRoot(root, layout);
}
