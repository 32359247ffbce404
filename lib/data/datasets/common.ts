/**
 * Helpers shared by the dataset loaders: reading label tables (xlsx or csv), typed cell parsing that names
 * the file, row and field on failure, listing numbered frames in a clip folder, apex rules, and the
 * `skipBad` policy (turn a per-sample {@link DatasetError} into a warning and skip the sample).
 *
 * Row numbers are 1-based sheet rows, as a spreadsheet program shows them (the header is usually row 1).
 *
 * @module
 */

import { join } from "node:path";
import { DatasetError, type SampleRef } from "../types.ts";

/** One cell value after reading a label table: text, a number, or empty. */
export type Cell = string | number | null;

/** A label table row: its 1-based sheet row number and its cells (column 0 first). */
export interface TableRow {
  row: number;
  cells: Cell[];
}

/** Options every loader accepts. */
export interface LoaderOptions {
  /**
   * Turn per-sample problems (missing frame or clip folder, unknown emotion, bad numbers) into warnings and
   * skip the sample, instead of throwing a {@link DatasetError}. Missing label files still throw.
   * @default false
   */
  skipBad?: boolean;
  /** Extra emotion spellings (normalised, lower case) to accept besides the dataset's own vocabulary. */
  extraEmotions?: string[];
  /** List every frame of the clip from onset to offset into `SampleRef.frames`. @default true */
  listFrames?: boolean;
}

/** What a loader returns: the samples in label-file order, warnings (skipped rows, applied quirks). */
export interface LoadResult {
  samples: SampleRef[];
  /** Human-readable, one line each: skipped samples with the reason, quirks applied (e.g. missing apex). */
  warnings: string[];
  /** The label file read (or the folder for folder-labelled datasets). */
  labelFile: string;
}

/** Image file extensions the frame lister accepts (lower case, no dot). */
export const FRAME_EXTENSIONS: readonly string[] = ["jpg", "jpeg", "png", "bmp"];

/** Converts an exceljs cell value (number, string, rich text, formula result, date, hyperlink) to a Cell. */
function excelCell(v: unknown): Cell {
  if (v === null || v === undefined) return null;
  if (typeof v === "number") return v;
  if (typeof v === "string") return v.trim() === "" ? null : v;
  if (typeof v === "boolean") return v ? "true" : "false";
  if (v instanceof Date) return v.toISOString();
  if (typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (Array.isArray(o.richText)) {
      return excelCell((o.richText as { text: string }[]).map((r) => r.text).join(""));
    }
    if ("result" in o) return excelCell(o.result);
    if ("text" in o) return excelCell(o.text);
    if ("error" in o) return String(o.error);
  }
  return String(v);
}

/** Parses CSV text (RFC 4180 quotes, `,` separator, CRLF or LF) into rows of trimmed strings. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(field.trim());
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field.trim());
      rows.push(row);
      row = [];
      field = "";
    } else field += c;
  }
  if (field !== "" || row.length > 0) {
    row.push(field.trim());
    rows.push(row);
  }
  // Strip a UTF-8 byte-order mark.
  if (rows.length > 0 && rows[0].length > 0) rows[0][0] = rows[0][0].replace(/^\uFEFF/, "");
  return rows;
}

/**
 * Reads the first worksheet of an `.xlsx` file, or a `.csv` file, into rows of cells. Empty rows are kept
 * out; row numbers stay those of the sheet (1-based). CSV fields that parse as finite numbers become numbers.
 *
 * @throws {DatasetError} naming the file when it is missing, unreadable, or an unsupported format (`.xls`:
 * convert it to `.xlsx` or `.csv` first).
 */
export async function readTable(path: string): Promise<TableRow[]> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new DatasetError("label file not found", { file: path });
    throw new DatasetError(`cannot read label file: ${(e as Error).message}`, { file: path });
  }
  const lower = path.toLowerCase();
  const out: TableRow[] = [];
  if (lower.endsWith(".csv")) {
    const rows = parseCsv(new TextDecoder().decode(bytes));
    rows.forEach((r, i) => {
      const cells: Cell[] = r.map((s) => {
        if (s === "") return null;
        const n = Number(s);
        return Number.isFinite(n) && /^[-+]?[\d.]+(e[-+]?\d+)?$/i.test(s) ? n : s;
      });
      if (cells.some((c) => c !== null)) out.push({ row: i + 1, cells });
    });
    return out;
  }
  if (lower.endsWith(".xls")) {
    throw new DatasetError("legacy .xls is not supported: save the sheet as .xlsx or .csv", { file: path });
  }
  // xlsx is a zip: check the signature so a mislabelled file gives a clear message.
  if (!(bytes[0] === 0x50 && bytes[1] === 0x4b)) {
    throw new DatasetError("not an .xlsx file (expected a zip container) or .csv", { file: path });
  }
  // exceljs is large: load it only when an .xlsx is actually read.
  const { default: ExcelJS } = await import("exceljs");
  const wb = new ExcelJS.Workbook();
  try {
    // exceljs types want a Node Buffer; it accepts any ArrayBuffer-backed bytes.
    await wb.xlsx.load(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as never);
  } catch (e) {
    throw new DatasetError(`cannot parse xlsx: ${(e as Error).message}`, { file: path });
  }
  const ws = wb.worksheets[0];
  if (!ws) throw new DatasetError("workbook has no worksheet", { file: path });
  ws.eachRow({ includeEmpty: false }, (r, rowNumber) => {
    // exceljs row.values is 1-based (index 0 unused).
    const vals = (r.values as unknown[]).slice(1);
    const cells = Array.from(vals, (v) => excelCell(v));
    if (cells.some((c) => c !== null)) out.push({ row: rowNumber, cells });
  });
  return out;
}

/** Lower-cases and trims a header name and collapses inner whitespace, for tolerant column lookup. */
export function normaliseHeader(s: Cell): string {
  return s === null ? "" : String(s).trim().toLowerCase().replace(/\s+/g, " ");
}

/**
 * Maps required column names to their indices in a header row (case and whitespace tolerant).
 * @throws {DatasetError} naming the file, header row and the missing column.
 */
export function columnIndex(
  header: TableRow,
  names: Record<string, string[]>,
  file: string,
  required: string[] = Object.keys(names),
): Record<string, number> {
  const norm = header.cells.map(normaliseHeader);
  const out: Record<string, number> = {};
  for (const [key, aliases] of Object.entries(names)) {
    const idx = norm.findIndex((h) => aliases.some((a) => normaliseHeader(a) === h));
    if (idx >= 0) out[key] = idx;
    else if (required.includes(key)) {
      throw new DatasetError(
        `missing column "${aliases[0]}" in the header (found: ${
          header.cells.filter((c) => c !== null).join(", ")
        })`,
        { file, row: header.row, field: aliases[0] },
      );
    }
  }
  return out;
}

/** Where a cell sits, for error messages. */
export interface CellWhere {
  file: string;
  row: number;
  field: string;
}

/**
 * Parses a non-negative integer cell (numbers, or text such as `"46"`).
 * @throws {DatasetError} naming file, row and field when empty, fractional, negative or not a number.
 */
export function intCell(v: Cell, where: CellWhere): number {
  const n = typeof v === "number" ? v : v === null ? NaN : /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 0) {
    throw new DatasetError(
      `expected a non-negative integer, got ${v === null ? "an empty cell" : `"${v}"`}`,
      where,
    );
  }
  return n;
}

/**
 * Parses a required text cell (numbers are converted to their decimal text).
 * @throws {DatasetError} naming file, row and field when empty.
 */
export function textCell(v: Cell, where: CellWhere): string {
  if (v === null || String(v).trim() === "") {
    throw new DatasetError("expected text, got an empty cell", where);
  }
  return String(v).trim();
}

/** A frame on disk: its number (parsed from the file name) and path. */
export interface FrameFile {
  frame: number;
  path: string;
}

/**
 * Lists the numbered image frames of a clip folder, sorted by frame number. The number is the last run of
 * digits in the file stem, so `img46.jpg`, `reg_img46.jpg`, `006_05562.jpg` (5-digit padding), `006_5562.jpg`
 * (4-digit copies), `image0012345.bmp` and `175.jpg` all work.
 *
 * @throws {DatasetError} naming the folder (and the label row that asked for it) when the folder is missing,
 * holds no frames, or two files carry the same frame number.
 */
export async function listFrames(
  dir: string,
  where: { file?: string; row?: number } = {},
): Promise<FrameFile[]> {
  const out: FrameFile[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile && !e.isSymlink) continue;
      const m = /^(.*?)(\d+)\.([A-Za-z]+)$/.exec(e.name);
      if (!m || !FRAME_EXTENSIONS.includes(m[3].toLowerCase())) continue;
      out.push({ frame: Number(m[2]), path: join(dir, e.name) });
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new DatasetError(`clip folder not found: ${dir}`, { ...where, field: "Filename" });
    }
    throw new DatasetError(`cannot list clip folder ${dir}: ${(e as Error).message}`, where);
  }
  if (out.length === 0) throw new DatasetError(`no image frames in ${dir}`, { ...where, field: "Filename" });
  out.sort((a, b) => a.frame - b.frame);
  for (let i = 1; i < out.length; i++) {
    if (out[i].frame === out[i - 1].frame) {
      throw new DatasetError(
        `two files for frame ${out[i].frame} in ${dir}: ${out[i - 1].path}, ${out[i].path}`,
        { ...where, field: "Filename" },
      );
    }
  }
  return out;
}

/**
 * Returns the path of frame `frame` among `frames`.
 * @throws {DatasetError} naming the folder, row and field when that frame is not on disk.
 */
export function framePath(frames: FrameFile[], frame: number, dir: string, where: CellWhere): string {
  const f = frames.find((x) => x.frame === frame);
  if (!f) {
    const lo = frames[0].frame;
    const hi = frames[frames.length - 1].frame;
    throw new DatasetError(`frame ${frame} not found in ${dir} (frames on disk: ${lo}..${hi})`, where);
  }
  return f.path;
}

/** Context handed to an apex rule callback. */
export interface ApexContext {
  /** Frames from onset to offset inclusive, sorted. */
  frames: FrameFile[];
  onset: number;
  offset: number;
  dataset: string;
  id: string;
}

/**
 * How to choose an apex frame when the label file has none:
 * - `"middle"`: the frame on disk nearest to `onset + floor((offset - onset) / 2)` (MEB's rule);
 * - `"max-flow"`: the frame whose flow from onset is strongest (MEAN's rule); needs a scorer, see
 *   {@link maxFlowApex};
 * - a function returning the apex frame number.
 */
export type ApexRule = "middle" | "max-flow" | ((ctx: ApexContext) => number | Promise<number>);

/**
 * Scores how much motion there is between the onset frame and a later frame (bigger = more motion).
 * Used by the `"max-flow"` apex rule; see `flowMagnitudeScorer` in `lib/data/preprocess.ts`.
 */
export type FrameScorer = (onsetPath: string, framePath: string) => number | Promise<number>;

/** The middle-frame rule: nearest frame on disk to `onset + floor((offset - onset) / 2)`. */
export function middleApex(frames: FrameFile[], onset: number, offset: number): number {
  const target = onset + Math.floor((offset - onset) / 2);
  let best = frames[0].frame;
  for (const f of frames) if (Math.abs(f.frame - target) < Math.abs(best - target)) best = f.frame;
  return best;
}

/**
 * The max-flow rule: scores every frame after onset (every `stride`-th, plus the last) against the onset
 * frame and returns the best frame number (first one on ties).
 */
export async function maxFlowApex(ctx: ApexContext, score: FrameScorer, stride = 1): Promise<number> {
  const onsetFrame = ctx.frames.find((f) => f.frame === ctx.onset) ?? ctx.frames[0];
  const cands = ctx.frames.filter((f, i) =>
    f.frame > onsetFrame.frame && (i % stride === 0 || i === ctx.frames.length - 1)
  );
  if (cands.length === 0) return onsetFrame.frame;
  let best = cands[0].frame;
  let bestScore = -Infinity;
  for (const f of cands) {
    const s = await score(onsetFrame.path, f.path);
    if (s > bestScore) {
      bestScore = s;
      best = f.frame;
    }
  }
  return best;
}

/** Options for resolving an apex with {@link resolveApex}. */
export interface ApexOptions {
  /** @default "middle" */
  apexRule?: ApexRule;
  /** Needed by `apexRule: "max-flow"`. */
  apexScorer?: FrameScorer;
  /** Score every n-th frame for `"max-flow"`. @default 1 */
  apexStride?: number;
}

/** Applies the configured apex rule to a clip; returns the apex frame number and a note saying how. */
export async function resolveApex(
  ctx: ApexContext,
  opts: ApexOptions,
  where: { file?: string; row?: number } = {},
): Promise<{ apex: number; how: string }> {
  const rule = opts.apexRule ?? "middle";
  if (rule === "middle") return { apex: middleApex(ctx.frames, ctx.onset, ctx.offset), how: "middle frame" };
  if (rule === "max-flow") {
    if (!opts.apexScorer) {
      throw new TypeError(
        'apexRule "max-flow" needs an apexScorer (see flowMagnitudeScorer in preprocess.ts)',
      );
    }
    return { apex: await maxFlowApex(ctx, opts.apexScorer, opts.apexStride ?? 1), how: "max-flow frame" };
  }
  if (typeof rule === "function") {
    const apex = await rule(ctx);
    if (!ctx.frames.some((f) => f.frame === apex)) {
      throw new DatasetError(`apex rule returned frame ${apex}, which is not a frame of clip ${ctx.id}`, {
        ...where,
        field: "apex",
      });
    }
    return { apex, how: "custom apex rule" };
  }
  throw new RangeError(`apexRule must be "middle", "max-flow" or a function, got ${String(rule)}`);
}

/**
 * Runs one sample's work; a {@link DatasetError} either propagates (default) or, with `skipBad`, becomes a
 * warning and the sample is skipped (returns undefined). Other errors always propagate.
 */
export async function guardSample<T>(
  skipBad: boolean | undefined,
  warnings: string[],
  work: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await work();
  } catch (e) {
    if (skipBad && e instanceof DatasetError) {
      warnings.push(`skipped: ${e.message}`);
      return undefined;
    }
    throw e;
  }
}

/** Returns true when `path` exists (file or folder). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Finds a label file: `explicit` when given, else the first file in `dirs` whose name matches `pattern`.
 * @throws {DatasetError} saying where it looked and what name it expected.
 */
export async function findLabelFile(
  explicit: string | undefined,
  dirs: string[],
  pattern: RegExp,
  what: string,
): Promise<string> {
  if (explicit) return explicit;
  for (const d of dirs) {
    try {
      const names: string[] = [];
      for await (const e of Deno.readDir(d)) if (e.isFile && pattern.test(e.name)) names.push(e.name);
      names.sort();
      if (names.length > 0) return join(d, names[names.length - 1]);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  throw new DatasetError(
    `no ${what} found in ${dirs.join(", ")} (expected a name matching ${pattern}); pass labelFile`,
    { file: dirs[0] },
  );
}

/**
 * Clip frames between onset and offset inclusive (`SampleRef.frames`), or undefined when not asked for.
 */
export function clipFrames(frames: FrameFile[], onset: number, offset: number, list: boolean | undefined) {
  if (list === false) return undefined;
  return frames.filter((f) => f.frame >= onset && f.frame <= offset).map((f) => f.path);
}

/** Column names used in error messages for the three frame fields. */
export interface FrameFields {
  onset: string;
  apex: string;
  offset: string;
}

/**
 * Checks `onset <= apex <= offset`.
 * @throws {DatasetError} naming the row and the field that is out of order.
 */
export function checkOrder(
  onset: number,
  apex: number,
  offset: number,
  where: { file: string; row?: number },
  fields: FrameFields,
): void {
  if (offset < onset) {
    throw new DatasetError(`offset ${offset} is before onset ${onset}`, { ...where, field: fields.offset });
  }
  if (apex < onset || apex > offset) {
    // some published sheets have such rows: say how to go on
    const hint = where.row !== undefined
      ? '; correct the cell, pass fixes (MEB\'s published corrections: fixes: "meb" / --fixes meb, for ' +
        "CASME II, SAMM and CAS(ME)^3), or skip the row with skipBad / --skip-bad"
      : "";
    throw new DatasetError(`apex ${apex} is outside onset..offset ${onset}..${offset}${hint}`, {
      ...where,
      field: fields.apex,
    });
  }
}

/**
 * A correction to one label-sheet cell: the 1-based sheet row, the field and the new frame number.
 * Used for published fixes (MEB) and for users' own.
 */
export interface LabelFix {
  row: number;
  field: "onset" | "apex" | "offset";
  value: number;
  /** Where the fix comes from. */
  source?: string;
  /**
   * The fix fills a cell that is missing in the sheet it was made for (MEB's estimated apexes): a value
   * present there means this sheet is another version, and {@link applyFixes} says so in a warning.
   */
  forMissing?: boolean;
}

/** How {@link parseLabelRow} reads one sheet: the sheet's names for the fields and the emotion vocabulary. */
export interface LabelRowSpec {
  /** Header names of the frame columns (used in error messages). */
  fields: { onset: string; apex: string; offset: string };
  /** Header name of the emotion column (used in error messages). */
  emotionField: string;
  /** Accepted emotions (lower case) and the caller's extra ones. */
  emotions: readonly string[];
  extraEmotions?: readonly string[];
  /** Spellings mapped onto the vocabulary (`{ other: "others" }`). */
  aliases?: Record<string, string>;
}

/**
 * Parses the clip, frame, emotion and AU cells of one CASME-style label row (CASME II, SAMM, CAS(ME)^3);
 * `subjectDir` is the caller's, since each sheet names subjects its own way.
 *
 * @param col column index of `filename`, `onset`, `apex`, `offset`, `emotion` and, optionally, `au`.
 * @throws {DatasetError} naming the file, row and field of the first bad cell.
 */
export function parseLabelRow(
  r: TableRow,
  col: Record<string, number>,
  file: string,
  subjectDir: string,
  spec: LabelRowSpec,
): ParsedRow {
  const c = r.cells;
  const w = (field: string): CellWhere => ({ file, row: r.row, field });
  const p: ParsedRow = {
    subjectDir,
    filename: textCell(c[col.filename] ?? null, w("Filename")),
    onset: intCell(c[col.onset] ?? null, w(spec.fields.onset)),
    apex: apexCell(c[col.apex] ?? null, w(spec.fields.apex)),
    offset: intCell(c[col.offset] ?? null, w(spec.fields.offset)),
    emotion: checkEmotion(
      textCell(c[col.emotion] ?? null, w(spec.emotionField)),
      spec.emotions,
      spec.extraEmotions,
      w(spec.emotionField),
      spec.aliases,
    ),
    source: { file, row: r.row },
    notes: [],
  };
  if (col.au !== undefined && c[col.au] !== null && c[col.au] !== undefined) {
    p.actionUnits = String(c[col.au]).trim();
  }
  return p;
}

/** A label row after parsing, before its frames are looked up on disk. */
export interface ParsedRow {
  /** Folder name of the subject on disk (`sub01`, `006`, `spNO.1`). */
  subjectDir: string;
  /** Folder name of the clip (`EP02_01f`). */
  filename: string;
  onset: number;
  /** null when the sheet has none (`/`, empty). */
  apex: number | null;
  offset: number;
  emotion: string;
  actionUnits?: string;
  source: { file: string; row: number };
  notes: string[];
}

/**
 * Records a parsed label row's clip (subject folder + filename) in `seen` (key → first row).
 * @throws {DatasetError} naming the row, field `field` and the row that listed the clip first when it is
 * listed again: a repeated row would count one sample twice in the class counts and in LOSO.
 */
export function checkUniqueClip(seen: Map<string, number>, r: ParsedRow, file: string, field: string): void {
  const key = `${r.subjectDir}/${r.filename}`;
  const first = seen.get(key);
  if (first !== undefined) {
    throw new DatasetError(
      `clip ${key} is listed again (first on row ${first}); each subject + filename must appear once`,
      { file, row: r.source.row, field },
    );
  }
  seen.set(key, r.source.row);
}

/**
 * Applies fixes to parsed rows (matched by sheet row), noting each change on the row and in `warnings`; also
 * warns when a fix for a missing cell meets a present value, or changes nothing.
 */
export function applyFixes(
  rows: ParsedRow[],
  fixes: readonly LabelFix[],
  warnings: string[],
  file: string,
): void {
  const byRow = new Map(rows.map((r) => [r.source.row, r]));
  for (const f of fixes) {
    const r = byRow.get(f.row);
    if (!r) {
      warnings.push(`${file}: fix for row ${f.row} (${f.field} -> ${f.value}) not applied: no such data row`);
      continue;
    }
    const old = r[f.field];
    if (f.forMissing && old !== null) {
      warnings.push(
        `${file} row ${f.row} (${r.subjectDir}/${r.filename}): the fix fills a missing ${f.field} but the sheet ` +
          `has ${old}; this sheet's version (or its row numbering) may differ from the one the fix was made for`,
      );
    } else if (old === f.value) {
      warnings.push(
        `${file} row ${f.row} (${r.subjectDir}/${r.filename}): the sheet already has ${f.field} ${old}; the fix ` +
          "changes nothing (an already corrected sheet?)",
      );
    }
    r[f.field] = f.value;
    const msg = `${f.field} ${old === null ? "(missing)" : old} -> ${f.value}${
      f.source ? ` (${f.source})` : ""
    }`;
    r.notes.push(msg);
    warnings.push(`${file} row ${f.row} (${r.subjectDir}/${r.filename}): ${msg}`);
  }
}

/**
 * One warning for all `samples` whose clip folder lacks frames between onset and offset (noted on each sample
 * by {@link resolveClip}): harmless for merba's onset/apex flow input (trees that keep only key frames have
 * such gaps everywhere), but the clip's frame list is shorter than the annotation says.
 */
export function warnFrameGaps(samples: readonly SampleRef[], warnings: string[], file: string): void {
  const gaps = samples.filter((s) => s.notes.some((n) => n.startsWith("frames missing")));
  if (gaps.length === 0) return;
  const first = gaps[0];
  warnings.push(
    `${file}: ${gaps.length} of ${samples.length} clips lack frames between onset and offset (first: row ` +
      `${first.source.row ?? "?"}, ${first.id}: ${
        first.notes.find((n) => n.startsWith("frames missing"))
      }); ` +
      "the flow input needs only onset and apex, but SampleRef.frames lists only the frames on disk",
  );
}

/** What {@link resolveClip} needs besides the parsed row. */
export interface ClipOptions extends ApexOptions {
  dataset: string;
  /** Prefix-free subject id for the fold key (`sub01`). */
  subject: string;
  id: string;
  dir: string;
  fields: FrameFields;
  listFrames?: boolean;
}

/**
 * Looks a parsed row's frames up on disk and builds its {@link SampleRef}: onset/apex/offset paths, the clip's
 * frames, and the apex rule when the sheet has no apex (noted on the sample).
 *
 * @throws {DatasetError} naming the label file, row and field for a missing folder or frame or bad order.
 */
export async function resolveClip(r: ParsedRow, o: ClipOptions): Promise<SampleRef> {
  const where = r.source;
  // Order first: a reversed onset/offset is a sheet error, not a missing frame.
  checkOrder(r.onset, r.apex ?? r.onset, r.offset, where, o.fields);
  const frames = await listFrames(o.dir, where);
  const onsetPath = framePath(frames, r.onset, o.dir, { ...where, field: o.fields.onset });
  const offsetPath = framePath(frames, r.offset, o.dir, { ...where, field: o.fields.offset });
  const notes = [...r.notes];
  let apex = r.apex;
  if (apex === null) {
    const ctx: ApexContext = {
      frames: frames.filter((f) => f.frame >= r.onset && f.frame <= r.offset),
      onset: r.onset,
      offset: r.offset,
      dataset: o.dataset,
      id: o.id,
    };
    const { apex: a, how } = await resolveApex(ctx, o, where);
    apex = a;
    notes.push(`apex missing in label file; ${how} ${a} used`);
  }
  checkOrder(r.onset, apex, r.offset, where, o.fields);
  const apexPath = framePath(frames, apex, o.dir, { ...where, field: o.fields.apex });
  const s: SampleRef = {
    dataset: o.dataset,
    subject: `${o.dataset}/${o.subject}`,
    id: o.id,
    emotion: r.emotion,
    onsetFrame: r.onset,
    apexFrame: apex,
    offsetFrame: r.offset,
    onsetPath,
    apexPath,
    offsetPath,
    source: { file: r.source.file, row: r.source.row },
    notes,
  };
  // a gap inside the clip is not an error for the two-frame (onset, apex) input, but the clip is shorter
  const inClip = new Set(frames.filter((f) => f.frame >= r.onset && f.frame <= r.offset).map((f) => f.frame));
  if (inClip.size !== r.offset - r.onset + 1) {
    const gaps: number[] = [];
    for (let f = r.onset; f <= r.offset && gaps.length < 6; f++) if (!inClip.has(f)) gaps.push(f);
    const n = r.offset - r.onset + 1 - inClip.size;
    notes.push(
      `frames missing between onset and offset: ${n} (${gaps.slice(0, 5).join(", ")}${n > 5 ? ", …" : ""})`,
    );
  }
  const clip = clipFrames(frames, r.onset, r.offset, o.listFrames);
  if (clip) s.frames = clip;
  if (r.actionUnits !== undefined) s.actionUnits = r.actionUnits;
  return s;
}

/**
 * Normalises an emotion label (trim, lower case) and checks it against the dataset's vocabulary.
 * @throws {DatasetError} naming file, row and field for an unknown label, listing the known ones.
 */
export function checkEmotion(
  raw: string,
  vocabulary: readonly string[],
  extra: readonly string[] | undefined,
  where: CellWhere,
  aliases: Record<string, string> = {},
): string {
  const e0 = raw.trim().toLowerCase().replace(/\s+/g, " ");
  const e = aliases[e0] ?? e0;
  if (vocabulary.includes(e) || (extra ?? []).includes(e)) return e;
  throw new DatasetError(
    `unknown emotion "${raw}" (known: ${
      [...vocabulary, ...(extra ?? [])].join(", ")
    }; pass extraEmotions to accept more)`,
    where,
  );
}

/** Reads an apex cell: a frame number, or null for `/`, `-`, empty (the CASME II / SAMM "missing" marks). */
export function apexCell(v: Cell, where: CellWhere): number | null {
  if (v === null) return null;
  if (typeof v === "string" && /^\s*(\/|-|n\/?a)?\s*$/i.test(v)) return null;
  return intCell(v, where);
}
