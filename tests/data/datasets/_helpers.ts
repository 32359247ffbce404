/** Shared helpers for the dataset loader tests: fixture paths and scratch copies for broken variants. */
import { cp } from "node:fs/promises";
import { join } from "node:path";
import assert from "node:assert/strict";
import { DatasetError } from "../../../lib/data/types.ts";

/** The committed look-alike trees (tests/fixtures/datasets). */
export const FIX: string = new URL("../../fixtures/datasets/", import.meta.url).pathname;

/** Copies a fixture folder into a fresh temporary folder and returns the copy's path. */
export async function scratchCopy(name: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const tmp = await Deno.makeTempDir({ prefix: "merba_ds_" });
  const dir = join(tmp, name);
  await cp(join(FIX, name), dir, { recursive: true });
  return { dir, cleanup: () => Deno.remove(tmp, { recursive: true }) };
}

/** Asserts that `p` rejects with a DatasetError whose file/row/field match and whose message matches `re`. */
export async function rejectsDataset(
  p: Promise<unknown>,
  want: { file?: RegExp; row?: number; field?: string; message: RegExp },
): Promise<DatasetError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof DatasetError, `expected a DatasetError, got ${err}`);
  const e = err as DatasetError;
  assert.match(e.message, want.message);
  if (want.file) assert.match(e.file ?? "", want.file, `file of: ${e.message}`);
  if (want.row !== undefined) assert.equal(e.row, want.row, `row of: ${e.message}`);
  if (want.field !== undefined) assert.equal(e.field, want.field, `field of: ${e.message}`);
  return e;
}
