/**
 * Data types shared by the data pipeline (flow, loaders, cache, synthetic data) and the trainer.
 *
 * Layouts: images are row-major, `index = y * width + x`; flow and model inputs are channels-last
 * (tfjs) `[n, h, w, 3]` with channels (u, v, strain).
 *
 * @module
 */

/** A grayscale image, row-major, one value per pixel (0..255 for Uint8Array; any range for Float32Array). */
export interface GrayImage {
  width: number;
  height: number;
  data: Uint8Array | Float32Array;
}

/** An RGB image, row-major, interleaved `r, g, b` bytes (3 per pixel). */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/**
 * Dense optical flow in pixels on the grid of the first frame (OpenCV convention):
 * `u` is the displacement along +x (right), `v` along +y (down), so `prev(y, x) ≈ next(y + v, x + u)`.
 */
export interface Flow {
  width: number;
  height: number;
  u: Float32Array;
  v: Float32Array;
}

/**
 * A two-level label hierarchy for the dual-granularity head: fine (native) classes, coarse classes, and for
 * every fine class the index of its coarse parent. A single-level protocol has `fine === coarse` and the
 * identity map.
 */
export interface ClassHierarchy {
  fine: string[];
  coarse: string[];
  /** `fineToCoarse[i]` = index into `coarse` of fine class `i`. */
  fineToCoarse: number[];
}

/** Where a label came from, for error messages and audits. */
export interface SampleSource {
  /** Label file (or folder, for folder-labelled datasets). */
  file: string;
  /** 1-based row in the label sheet as a spreadsheet shows it, when the label came from a sheet. */
  row?: number;
}

/** One labelled micro-expression sample on disk (onset and apex frames plus metadata). */
export interface SampleRef {
  /** Source dataset: `casme2`, `samm`, `smic`, `casme3`, `synthetic`, ... */
  dataset: string;
  /** LOSO fold key, dataset-prefixed: `casme2/sub01`, `samm/006`, `smic/s1`. */
  subject: string;
  /** Unique within the dataset (for CAS(ME)^3 it includes the onset frame, since file names repeat). */
  id: string;
  /** Native emotion label, normalised to lower case (`happiness`, `others`, ...). */
  emotion: string;
  onsetFrame: number;
  apexFrame: number;
  offsetFrame?: number;
  onsetPath: string;
  apexPath: string;
  offsetPath?: string;
  /** All frame paths of the clip in temporal order, when the loader listed them. */
  frames?: string[];
  /** Action units as written in the label file, when present. */
  actionUnits?: string;
  source: SampleSource;
  /** Quirks applied while loading (e.g. "apex '/' replaced by middle frame 52"). */
  notes: string[];
}

/**
 * A preprocessed dataset held in memory: one flow tensor per sample, labels at both levels, and the
 * subject/dataset of every sample for LOSO folds and per-dataset metrics.
 */
export interface FlowDataset {
  name: string;
  /** Protocol name (e.g. `casme2-5class`, `megc2019-3class`, `synthetic-3class`). */
  protocol: string;
  n: number;
  height: number;
  width: number;
  /** `[n, height, width, 3]` channels-last: u, v, optical strain (normalised as the preprocessing says). */
  x: Float32Array;
  /** Fine class index per sample, into `classes.fine`. */
  fine: Int32Array;
  /** Coarse class index per sample, into `classes.coarse`. */
  coarse: Int32Array;
  classes: ClassHierarchy;
  /** LOSO fold key per sample (dataset-prefixed). */
  subjects: string[];
  /** Source dataset per sample (for per-dataset metrics on composites). */
  datasets: string[];
  /** Sample id per sample. */
  ids: string[];
  /** Free-form preprocessing description (method, size, normalisation) for results files. */
  preprocessing?: Record<string, unknown>;
}

/**
 * Bad or missing data on disk. The message names the file, the row and field when known, and what was
 * expected; the fields repeat them for programs.
 */
export class DatasetError extends Error {
  override name = "DatasetError";
  file?: string;
  row?: number;
  field?: string;
  constructor(message: string, where: { file?: string; row?: number; field?: string } = {}) {
    const loc = [
      where.file,
      where.row !== undefined ? `row ${where.row}` : undefined,
      where.field ? `field "${where.field}"` : undefined,
    ].filter((s) => s !== undefined).join(", ");
    super(loc ? `${loc}: ${message}` : message);
    this.file = where.file;
    this.row = where.row;
    this.field = where.field;
  }
}
