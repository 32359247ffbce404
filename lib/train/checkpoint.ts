/**
 * Training checkpoints that are never half-written: each good epoch goes into its own folder
 * (`epoch-0003/`), and only when that folder is complete does `latest.json` (written to a temporary file and
 * renamed, an atomic replace on POSIX) point at it; older epoch folders are removed afterwards. A crash or a
 * diverged step therefore always leaves the last good checkpoint loadable.
 *
 * The model itself is saved by a caller-supplied function (normally `saveMerba` from `lib/models`), so this
 * module knows nothing about the model's format.
 *
 * Layout:
 * ```
 * <dir>/latest.json          {"epoch": 3, "path": "epoch-0003", "savedAt": "..."}
 * <dir>/epoch-0003/model/    whatever saveModel wrote
 * <dir>/epoch-0003/state.json {"epoch": 3, "history": [...], "meta": {...}}
 * ```
 *
 * @module
 */
import { join } from "node:path";
import type { EpochLog } from "./trainer.ts";

/** Pointer file contents. */
export interface LatestPointer {
  /** Epoch of the checkpoint. */
  epoch: number;
  /** Folder name relative to the checkpoint directory. */
  path: string;
  /** ISO time of the save. */
  savedAt: string;
}

/** Training state stored next to the weights. */
export interface CheckpointState {
  /** Epochs completed. */
  epoch: number;
  /** Their logs. */
  history: EpochLog[];
  /** Free-form metadata (config, seed, fold). */
  meta: Record<string, unknown>;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Writes a text file atomically (temporary file in the same folder, then rename).
 *
 * @param path destination.
 * @param text contents.
 */
export async function writeTextAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}-${Math.random().toString(36).slice(2)}`;
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, path);
}

/**
 * Saves one checkpoint and moves `latest.json` to it; removes older epoch folders.
 *
 * @param dir the checkpoint directory (created if missing).
 * @param epoch epochs completed (>= 0).
 * @param saveModel writes the model into the folder it is given.
 * @param state history and metadata.
 * @returns the folder written.
 */
export async function saveCheckpoint(
  dir: string,
  epoch: number,
  saveModel: (dir: string) => Promise<void>,
  state: { history: EpochLog[]; meta?: Record<string, unknown> },
): Promise<string> {
  if (!(Number.isInteger(epoch) && epoch >= 0)) {
    throw new RangeError(`saveCheckpoint: epoch = ${epoch}, expected >= 0`);
  }
  await Deno.mkdir(dir, { recursive: true });
  const name = `epoch-${String(epoch).padStart(4, "0")}`;
  const folder = join(dir, name);
  if (await exists(folder)) await Deno.remove(folder, { recursive: true });
  await Deno.mkdir(join(folder, "model"), { recursive: true });
  await saveModel(join(folder, "model"));
  const s: CheckpointState = { epoch, history: state.history, meta: state.meta ?? {} };
  await Deno.writeTextFile(join(folder, "state.json"), JSON.stringify(s));
  const pointer: LatestPointer = { epoch, path: name, savedAt: new Date().toISOString() };
  await writeTextAtomic(join(dir, "latest.json"), JSON.stringify(pointer));
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory && /^epoch-\d+$/.test(e.name) && e.name !== name) {
      await Deno.remove(join(dir, e.name), { recursive: true });
    }
  }
  return folder;
}

function parseJsonFile<T>(path: string, text: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`loadLatestCheckpoint: ${path} is not valid JSON (${(e as Error).message})`);
  }
}

/**
 * Reads the latest complete checkpoint of a directory.
 *
 * @param dir the checkpoint directory.
 * @param loadModel reads a model back from a folder written by the matching `saveModel`.
 * @returns the model, the training state and the folder, or null when the directory has no checkpoint.
 * @throws {Error} when `latest.json` points to a folder that is missing or incomplete, or a file is not valid
 * JSON (naming it).
 */
export async function loadLatestCheckpoint<M>(
  dir: string,
  loadModel: (dir: string) => Promise<M>,
): Promise<{ model: M; state: CheckpointState; folder: string } | null> {
  const p = join(dir, "latest.json");
  if (!(await exists(p))) return null;
  const pointer = parseJsonFile<LatestPointer>(p, await Deno.readTextFile(p));
  const folder = join(dir, pointer.path);
  const statePath = join(folder, "state.json");
  if (!(await exists(statePath))) {
    throw new Error(`loadLatestCheckpoint: ${p} points to ${folder}, which has no state.json`);
  }
  const state = parseJsonFile<CheckpointState>(statePath, await Deno.readTextFile(statePath));
  const model = await loadModel(join(folder, "model"));
  return { model, state, folder };
}

/**
 * The `checkpoint` hook for `trainModel`: saves after every good epoch into `dir`.
 *
 * @param dir checkpoint directory.
 * @param saveModel writes the model (e.g. `(d) => saveMerba(model, d)`).
 * @param meta stored in every state.json.
 */
export function checkpointHook(
  dir: string,
  saveModel: (dir: string) => Promise<void>,
  meta: Record<string, unknown> = {},
): (epoch: number, history: EpochLog[]) => Promise<string> {
  return (epoch, history) => saveCheckpoint(dir, epoch, saveModel, { history, meta });
}
