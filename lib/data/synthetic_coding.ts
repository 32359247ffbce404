/**
 * Writes a CASME II-style coding sheet (`.xlsx`) for the synthetic dataset, with CASME II's real column
 * layout including the two empty spacer columns:
 *
 * `Subject | Filename | (empty) | OnsetFrame | ApexFrame | OffsetFrame | (empty) | Action Units |
 * Estimated Emotion | Objective Classes`
 *
 * The file is byte-identical for identical rows: the workbook's creation/modification dates are fixed and
 * the zip entries' DOS timestamps are overwritten with a fixed date after exceljs has packed them.
 *
 * @module
 */
import ExcelJS from "exceljs";

/** One row of the coding sheet. */
export interface CodingRow {
  /** Subject number (`1` -> folder `sub01`). */
  subject: number;
  /** Clip folder name (`EP02_01f`). */
  filename: string;
  onsetFrame: number;
  apexFrame: number;
  offsetFrame: number;
  /** Action units as CASME II writes them (`1+2+L5`). */
  actionUnits: string;
  emotion: string;
  objectiveClass: number;
}

/** Header of CASME II's coding sheet (`null` = the empty spacer columns). */
export const CASME2_CODING_HEADER: readonly (string | null)[] = [
  "Subject",
  "Filename",
  null,
  "OnsetFrame",
  "ApexFrame",
  "OffsetFrame",
  null,
  "Action Units",
  "Estimated Emotion",
  "Objective Classes",
];

/** 2020-01-01 00:00 in MS-DOS date/time fields (the value every zip entry gets). */
const DOS_DATE = ((2020 - 1980) << 9) | (1 << 5) | 1;
const DOS_TIME = 0;

/**
 * Overwrites the modification time/date of every entry in a zip archive (local headers and the central
 * directory), walking the central directory from the end-of-central-directory record. Timestamps are not
 * covered by the CRCs, so the archive stays valid.
 *
 * @throws {Error} when the bytes are not a (non-zip64) zip archive.
 */
export function normaliseZipDates(zip: Uint8Array): void {
  const dv = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 65535); i--) {
    if (dv.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error("normaliseZipDates: no end-of-central-directory record (not a zip)");
  const count = dv.getUint16(eocd + 10, true);
  let p = dv.getUint32(eocd + 16, true);
  for (let k = 0; k < count; k++) {
    if (dv.getUint32(p, true) !== 0x02014b50) throw new Error(`normaliseZipDates: bad central entry ${k}`);
    dv.setUint16(p + 12, DOS_TIME, true);
    dv.setUint16(p + 14, DOS_DATE, true);
    const local = dv.getUint32(p + 42, true);
    if (dv.getUint32(local, true) !== 0x04034b50) throw new Error(`normaliseZipDates: bad local header ${k}`);
    dv.setUint16(local + 10, DOS_TIME, true);
    dv.setUint16(local + 12, DOS_DATE, true);
    p += 46 + dv.getUint16(p + 28, true) + dv.getUint16(p + 30, true) + dv.getUint16(p + 32, true);
  }
}

/**
 * Encodes the coding sheet as `.xlsx` bytes (first worksheet `Sheet1`, header on row 1).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeCasme2Coding } from "./synthetic_coding.ts";
 * const rows = [{ subject: 1, filename: "EP01_01f", onsetFrame: 10, apexFrame: 20, offsetFrame: 30,
 *   actionUnits: "12", emotion: "happiness", objectiveClass: 1 }];
 * const a = await encodeCasme2Coding(rows);
 * assert.deepEqual(a, await encodeCasme2Coding(rows));
 * ```
 */
export async function encodeCasme2Coding(rows: readonly CodingRow[]): Promise<Uint8Array> {
  const wb = new ExcelJS.Workbook();
  const fixed = new Date(Date.UTC(2020, 0, 1));
  wb.creator = "merba synthetic";
  wb.lastModifiedBy = "merba synthetic";
  wb.created = fixed;
  wb.modified = fixed;
  const ws = wb.addWorksheet("Sheet1");
  ws.addRow([...CASME2_CODING_HEADER]);
  for (const r of rows) {
    ws.addRow([
      r.subject,
      r.filename,
      null,
      r.onsetFrame,
      r.apexFrame,
      r.offsetFrame,
      null,
      r.actionUnits,
      r.emotion,
      r.objectiveClass,
    ]);
  }
  const bytes = new Uint8Array(await wb.xlsx.writeBuffer());
  normaliseZipDates(bytes);
  return bytes;
}
