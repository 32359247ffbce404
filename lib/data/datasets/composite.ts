/**
 * MEGC2019 composite (CD) loader: 442 samples, 68 subjects from SMIC-HS + CASME II + SAMM, 3 classes.
 *
 * Built **from the official list**, not by re-mapping the label files (5 CASME II label-file samples are not
 * in the list, and some list labels differ from the label-file emotions). Accepted list formats:
 * - `combined_3class_gt.csv`: no header, 4 columns `dataset,subject,filename,label` (label 0 = negative,
 *   1 = positive, 2 = surprise), e.g. `casme2,sub01,EP02_01f,1` · `smic,s01,s01_ne_01,0` · `samm,6,006_1_2,0`;
 * - HTNet's `combined_3_class2_for_optical_flow.csv`: header `dataset,sub,filename_o,label,...` (extra columns
 *   ignored; SAMM subjects zero-padded).
 *
 * Subjects are normalised to the folder spellings (`s01` -> `s1`, `6` -> `006`) and prefixed with the
 * dataset (`smic/s1`, `samm/006`, `casme2/sub01`): 68 LOSO folds. Each sample keeps the label-file emotion;
 * where it disagrees with the list label under the MEGC mapping, the list wins (`emotion` becomes the list's
 * class name) and a warning and note say so.
 *
 * @module
 */

import { DatasetError, type SampleRef } from "../types.ts";
import { megcClassOf } from "../protocols.ts";
import {
  casme2FramesRoot,
  type Casme2Options,
  casme2SubjectDir,
  readCasme2Labels,
  resolveCasme2Rows,
} from "./casme2.ts";
import { readSammLabels, resolveSammRows, sammFramesRoot, type SammOptions, sammSubjectDir } from "./samm.ts";
import { loadSmic, smicCanonical, type SmicOptions } from "./smic.ts";
import {
  columnIndex,
  findLabelFile,
  guardSample,
  intCell,
  type LoaderOptions,
  type LoadResult,
  type ParsedRow,
  readTable,
  textCell,
} from "./common.ts";
import { dirname } from "node:path";

/** MEGC2019 class names by list label (0, 1, 2). */
export const MEGC_CLASSES: readonly string[] = ["negative", "positive", "surprise"];

/** Where each part of the composite lives, with that loader's options. */
export interface CompositeParts {
  casme2?: Casme2Options & { root: string };
  samm?: SammOptions & { root: string };
  smic?: SmicOptions & { root: string };
}

/** One row of the composite list after parsing. */
export interface CompositeListRow {
  dataset: "casme2" | "samm" | "smic";
  /** Folder spelling: `sub01`, `006`, `s1`. */
  subject: string;
  /** Folder spelling: `EP02_01f`, `006_1_2`, `s1_ne_01`. */
  filename: string;
  /** 0 negative, 1 positive, 2 surprise. */
  label: number;
  row: number;
}

function partName(v: string, where: { file: string; row: number }): CompositeListRow["dataset"] {
  const k = v.toLowerCase().replace(/[^a-z0-9]/g, "");
  if (k === "casme2" || k === "casmeii") return "casme2";
  if (k === "samm") return "samm";
  if (k === "smic" || k === "smichs") return "smic";
  throw new DatasetError(`unknown dataset "${v}" (expected casme2, samm or smic)`, {
    ...where,
    field: "dataset",
  });
}

/**
 * Parses the composite list (headerless official CSV or HTNet's headered copy).
 * @throws {DatasetError} naming the list file, row and field, unless `skipBad` (then the row is skipped with
 * a warning).
 */
export async function readCompositeList(
  file: string,
  opts: Pick<LoaderOptions, "skipBad"> = {},
): Promise<{ rows: CompositeListRow[]; warnings: string[] }> {
  const table = await readTable(file);
  if (table.length === 0) throw new DatasetError("composite list is empty", { file });
  const first = table[0];
  const headered = typeof first.cells[3] !== "number";
  if (headered && first.cells.filter((c) => c !== null && String(c).trim() !== "").length < 4) {
    throw new DatasetError(
      `expected 4 columns dataset,subject,filename,label (headerless, label 0/1/2) or a header row naming ` +
        `them; row 1 has ${first.cells.filter((c) => c !== null && String(c).trim() !== "").length}`,
      { file, row: first.row },
    );
  }
  let col = { dataset: 0, subject: 1, filename: 2, label: 3 };
  if (headered) {
    col = columnIndex(first, {
      dataset: ["dataset"],
      subject: ["sub", "subject"],
      filename: ["filename_o", "filename"],
      label: ["label"],
    }, file) as typeof col;
  }
  const warnings: string[] = [];
  const rows: CompositeListRow[] = [];
  const seen = new Map<string, { row: number; label: number }>();
  for (const r of headered ? table.slice(1) : table) {
    const w = (field: string) => ({ file, row: r.row, field });
    const parsed = await guardSample(opts.skipBad, warnings, () => {
      const dataset = partName(textCell(r.cells[col.dataset] ?? null, w("dataset")), { file, row: r.row });
      const subRaw = textCell(r.cells[col.subject] ?? null, w("subject"));
      const fileRaw = textCell(r.cells[col.filename] ?? null, w("filename"));
      const label = intCell(r.cells[col.label] ?? null, w("label"));
      if (label > 2) throw new DatasetError(`label ${label} is not 0, 1 or 2`, w("label"));
      const subject = dataset === "casme2"
        ? casme2SubjectDir(subRaw, { file, row: r.row })
        : dataset === "samm"
        ? sammSubjectDir(subRaw, { file, row: r.row })
        : smicCanonical(subRaw);
      const filename = dataset === "smic" ? smicCanonical(fileRaw) : fileRaw;
      return Promise.resolve({ dataset, subject, filename, label, row: r.row });
    });
    if (!parsed) continue;
    const key = `${parsed.dataset}/${parsed.subject}/${parsed.filename}`;
    const first = seen.get(key);
    if (first) {
      if (first.label !== parsed.label) {
        const e = new DatasetError(
          `${key} is listed again with label ${parsed.label} (row ${first.row} says ${first.label})`,
          { file, row: r.row, field: "label" },
        );
        if (!opts.skipBad) throw e;
        warnings.push(`skipped: ${e.message}`);
        continue;
      }
      warnings.push(`${file} row ${r.row}: duplicate of row ${first.row} (${key}, same label); skipped`);
      continue;
    }
    seen.set(key, { row: r.row, label: parsed.label });
    rows.push(parsed);
  }
  return { rows, warnings };
}

/**
 * Loads the MEGC2019 composite from its list and the three datasets' trees.
 *
 * @param listFile `combined_3class_gt.csv` (or HTNet's headered copy).
 * @param parts roots and options of the parts the list uses (a list row whose part is missing is an error).
 * @returns samples in list order, warnings (label disagreements, skipped rows, apex rules), and the list file.
 * @throws {DatasetError} naming the list file and row (or the part's label file and row) for a sample that is
 * not found or broken, unless `skipBad`.
 *
 * @example
 * ```ts ignore
 * const { samples } = await loadComposite("/data/combined_3class_gt.csv", {
 *   casme2: { root: "/data/CASME2", layout: "cropped" },
 *   samm: { root: "/data/SAMM" },
 *   smic: { root: "/data/SMIC/HS" },
 * });
 * ```
 */
export async function loadComposite(
  listFile: string,
  parts: CompositeParts,
  opts: LoaderOptions = {},
): Promise<LoadResult> {
  const { rows, warnings } = await readCompositeList(listFile, opts);
  const used = new Set(rows.map((r) => r.dataset));

  // Parse each part's labels leniently: rows the list does not use must not stop the composite. A list row
  // whose label row was bad is reported below as missing, pointing at those warnings.
  const partRows = new Map<string, ParsedRow>();
  const partDirs: Record<string, string> = {};
  const partWarnings: Record<string, string[]> = { casme2: [], samm: [], smic: [] };
  if (used.has("casme2")) {
    const p = need(parts.casme2, "casme2", listFile);
    const labelFile = await findLabelFile(
      p.labelFile,
      [p.root, dirname(p.root)],
      /^CASME2[-_ ]?coding.*\.(xlsx|csv)$/i,
      "CASME II coding sheet",
    );
    const res = await readCasme2Labels(labelFile, { ...p, skipBad: true });
    partWarnings.casme2.push(...res.warnings);
    for (const r of res.rows) partRows.set(`casme2/${r.subjectDir}/${r.filename}`, r);
    partDirs.casme2 = await casme2FramesRoot(p.root, p.layout ?? "raw");
  }
  if (used.has("samm")) {
    const p = need(parts.samm, "samm", listFile);
    const labelFile = await findLabelFile(
      p.labelFile,
      [p.root, dirname(p.root)],
      /^SAMM.*FACS.*\.(xlsx|csv)$/i,
      "SAMM FACS code sheet",
    );
    const res = await readSammLabels(labelFile, { ...p, skipBad: true });
    partWarnings.samm.push(...res.warnings);
    for (const r of res.rows) partRows.set(`samm/${r.subjectDir}/${r.filename}`, r);
    partDirs.samm = await sammFramesRoot(p.root);
  }
  const smicSamples = new Map<string, SampleRef>();
  if (used.has("smic")) {
    const p = need(parts.smic, "smic", listFile);
    const res = await loadSmic(p.root, { ...p, skipBad: true });
    partWarnings.smic.push(...res.warnings);
    for (const s of res.samples) smicSamples.set(`smic/${s.subject.slice(5)}/${s.id}`, s);
  }
  for (const [k, ws] of Object.entries(partWarnings)) for (const w of ws) warnings.push(`[${k}] ${w}`);

  const samples: SampleRef[] = [];
  for (const lr of rows) {
    const key = `${lr.dataset}/${lr.subject}/${lr.filename}`;
    const s = await guardSample(opts.skipBad, warnings, async () => {
      let sample: SampleRef | undefined;
      if (lr.dataset === "smic") {
        sample = smicSamples.get(key);
      } else {
        const pr = partRows.get(key);
        if (pr) {
          const resolve = lr.dataset === "casme2" ? resolveCasme2Rows : resolveSammRows;
          const partOpts = (lr.dataset === "casme2" ? parts.casme2 : parts.samm)!;
          const got = await resolve([pr], partDirs[lr.dataset], { ...partOpts, skipBad: false }, []);
          sample = got[0];
        }
      }
      if (!sample) {
        throw new DatasetError(
          `${key} is not among the loadable ${lr.dataset} samples (missing from its label file or tree, ` +
            `or skipped as bad: see the [${lr.dataset}] warnings)`,
          { file: listFile, row: lr.row, field: "filename" },
        );
      }
      const cls = MEGC_CLASSES[lr.label];
      const mapped = megcClassOf(lr.dataset, sample.emotion);
      const out: SampleRef = {
        ...sample,
        notes: [...sample.notes, `composite list ${listFile} row ${lr.row}`],
      };
      if (mapped !== cls) {
        const msg =
          `label-file emotion "${sample.emotion}" maps to ${mapped ?? "nothing"} but the list says ` +
          `${cls}; the list label is used`;
        out.notes.push(msg);
        out.emotion = cls;
        warnings.push(`${listFile} row ${lr.row} (${key}): ${msg}`);
      }
      return out;
    });
    if (s) samples.push(s);
  }
  return { samples, warnings, labelFile: listFile };
}

function need<T>(p: T | undefined, name: string, listFile: string): T {
  if (!p) {
    throw new DatasetError(`the list uses ${name} but parts.${name} (its root) was not given`, {
      file: listFile,
    });
  }
  return p;
}
