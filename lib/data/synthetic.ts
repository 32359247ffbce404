/**
 * The embedded synthetic micro-expression dataset: a deterministic (seeded) generator of onset/apex/offset
 * face frames with subtle, localised, action-unit-like motion, written as a CASME II-like tree that the
 * CASME II loader reads.
 *
 * What varies (see {@link SYNTHETIC_DEFAULTS} for the amounts):
 * - subjects: parametric faces (geometry ±6 %, skin tone, lighting gradient, texture) and faces built from
 *   the public-domain NASA astronaut portrait (scale, stretch, mirror, tone, gamma, lighting);
 * - per subject: sensor-noise level and expressivity;
 * - per sample: intensity of the expression (peak displacement about 1–3.6 px), optional AUs of the class,
 *   one-sided expressions, a weak unrelated AU (co-activation noise), the neutral head pose of the clip and a
 *   small head motion between onset and apex (translation, rotation, scale: not class-informative), a global
 *   brightness change, and independent sensor noise in every frame.
 *
 * Classes: 5 fine classes (anger, disgust, sadness, happiness, surprise) under the 3 MEGC coarse classes
 * (negative, positive, surprise); recipes in `synthetic_aus.ts`.
 *
 * Motion model (frame pixels; `P` = head pose, a similarity about the frame centre; `d` = AU displacement
 * field on the neutral face; `F` = neutral face intensity):
 *
 *   onset(p) = g₀ · F(P₀⁻¹ p) + n₀,    apex(p) = g₁ · F(q) + n₁ with q + d(q) = P₁⁻¹ p
 *
 * so a face point `q` seen at `P₀ q` in the onset frame is at `P₁ (q + d(q))` in the apex frame; the
 * ground-truth flow (OpenCV convention, on the onset grid) is `flow(p) = P₁(q + d(q)) − p` with
 * `q = P₀⁻¹ p`. The offset frame is the onset frame again (the face back to neutral; the same bytes, which
 * git stores once).
 *
 * @module
 */
import { join } from "node:path";
import { readGray, writePng } from "./image_io.ts";
import { type ClassHierarchy, DatasetError, type Flow, type GrayImage } from "./types.ts";
import { rngFor } from "./synthetic_random.ts";
import {
  anchorsFromLandmarks68,
  astronautFace,
  type FaceAnchors,
  type FaceModel,
  parametricFace,
  type Point,
  randomAstronautParams,
  randomFaceParams,
} from "./synthetic_face.ts";
import {
  type ActiveAu,
  formatAus,
  motionField,
  sampleAus,
  SYNTHETIC_CLASSES,
  SYNTHETIC_RECIPES,
} from "./synthetic_aus.ts";
import { type CodingRow, encodeCasme2Coding } from "./synthetic_coding.ts";
import { PROTOCOLS } from "./protocols.ts";
import { loadCasme2 } from "./datasets/casme2.ts";
import { preprocessDataset } from "./preprocess.ts";
import { loadFlowDataset, saveFlowDataset } from "./cache.ts";
import { canonicalLandmarks } from "./faces.ts";
import type { FlowDataset, SampleRef } from "./types.ts";

export { SYNTHETIC_CLASSES } from "./synthetic_aus.ts";

/** Options of the generator; every field has a default in {@link SYNTHETIC_DEFAULTS}. */
export interface SyntheticOptions {
  /** Seed of every random stream. */
  seed: number;
  /** Frame size in pixels (square). */
  size: number;
  /** Number of subjects (`sub01` ...). */
  subjects: number;
  /** How many of them are astronaut-based (spread evenly among the subjects). */
  astronautSubjects: number;
  /** Between-subject face size factor range and face-centre shift std (px on a 96-px frame). */
  faceVariation: { scale: readonly [number, number]; shift: number };
  /** Per subject and fine class: `[min, max]` samples (inclusive). */
  counts: Readonly<Record<string, readonly [number, number]>>;
  /** Range of the expression intensity: peak displacement in px of the class's main AUs. */
  intensity: readonly [number, number];
  /** Range of a subject's expressivity factor (multiplies the intensity). */
  expressivity: readonly [number, number];
  /** Probability of one extra unrelated AU, and its relative weight range. */
  coActivation: number;
  coActivationWeight: readonly [number, number];
  /** Probability of a one-sided expression. */
  asymmetry: number;
  /** Neutral head pose of each clip relative to the subject's face: std of translation (px), rotation (deg), scale. */
  poseJitter: { translation: number; rotationDeg: number; scale: number };
  /** Head motion between onset and apex: std of translation (px), rotation (deg), scale. */
  headMotion: { translation: number; rotationDeg: number; scale: number };
  /** Range of the per-subject sensor-noise std (grey levels, per frame, independent). */
  noise: readonly [number, number];
  /** Std of the apex/onset global brightness ratio minus 1. */
  gainJitter: number;
  /** Folder (under the output root) holding `subXX/EPxx_yyf/imgN.png`. */
  rawDir: string;
  /** Name of the coding sheet (must match the CASME II loader's `CASME2-coding*.xlsx`). */
  codingFile: string;
}

/**
 * Defaults: 14 subjects (3 astronaut-based), 80×80 frames, 188 samples. Tuned (BENCHMARKS.md, "Synthetic
 * dataset") so that the expressions are recoverable from TV-L1 flow (a small CNN reaches UF1 ≈ 0.92 in LOSO)
 * while face placement and pose vary enough between subjects and clips that a linear read-out of the flow
 * pixels stays well below (logistic regression ≈ 0.79). The first version (intensity 0.6–1.8 px, noise σ
 * 0.8–2, onset→apex head motion 0.7 px) was noise-limited: no model reached 0.85 on it.
 */
export const SYNTHETIC_DEFAULTS: Readonly<SyntheticOptions> = Object.freeze<SyntheticOptions>({
  seed: 2026,
  size: 80,
  subjects: 14,
  astronautSubjects: 3,
  faceVariation: { scale: [0.72, 1.28], shift: 8 },
  counts: {
    anger: [2, 3],
    disgust: [3, 4],
    sadness: [2, 3],
    happiness: [2, 3],
    surprise: [2, 3],
  },
  intensity: [1.2, 3.0],
  expressivity: [0.8, 1.2],
  coActivation: 0.15,
  coActivationWeight: [0.25, 0.5],
  asymmetry: 0.1,
  poseJitter: { translation: 3.5, rotationDeg: 4, scale: 0.05 },
  headMotion: { translation: 0.2, rotationDeg: 0.2, scale: 0.002 },
  noise: [0.4, 1.0],
  gainJitter: 0.01,
  rawDir: "CASME2_RAW_selected",
  codingFile: "CASME2-coding-synthetic.xlsx",
});

/** A similarity transform about the frame centre: `P(q) = c + s·R(θ)·(q − c) + t`. */
export interface Pose {
  tx: number;
  ty: number;
  /** Rotation, radians. */
  angle: number;
  scale: number;
}

/** One synthetic subject. */
export interface SyntheticSubject {
  /** Folder name `subXX`. */
  id: string;
  /** Subject number written in the coding sheet. */
  number: number;
  kind: FaceModel["kind"];
  face: FaceModel;
  /** Sensor-noise std, grey levels. */
  noise: number;
  expressivity: number;
}

/** One planned sample: labels, AUs, frame numbers and the poses of its frames. */
export interface SyntheticSample {
  subject: string;
  subjectNumber: number;
  /** Clip folder `EPxx_yyf`. */
  filename: string;
  emotion: string;
  fine: number;
  coarse: number;
  aus: ActiveAu[];
  /** CASME II-style AU string (`1+2+L5`). */
  actionUnits: string;
  objectiveClass: number;
  onsetFrame: number;
  apexFrame: number;
  offsetFrame: number;
  onsetPose: Pose;
  apexPose: Pose;
  /** Global brightness ratio apex/onset. */
  apexGain: number;
}

/** The full plan of a dataset (everything but the pixels). */
export interface SyntheticPlan {
  options: SyntheticOptions;
  classes: ClassHierarchy;
  subjects: SyntheticSubject[];
  samples: SyntheticSample[];
}

/** `data/` of this package (astronaut image, prebuilt synthetic tree). */
export const DATA_DIR: string = new URL("../../data/", import.meta.url).pathname;

/** Path of the shipped astronaut portrait. */
export const ASTRONAUT_PATH: string = join(DATA_DIR, "astronaut.png");

/** Path of the prebuilt synthetic dataset tree. */
export const SYNTHETIC_DIR: string = join(DATA_DIR, "synthetic");

/** Merges options over the defaults and validates them. @throws {RangeError} naming the bad option. */
export function resolveSyntheticOptions(opts: Partial<SyntheticOptions> = {}): SyntheticOptions {
  const o: SyntheticOptions = { ...SYNTHETIC_DEFAULTS, ...opts };
  const bad = (name: string, want: string, got: unknown) =>
    new RangeError(`synthetic option ${name}: expected ${want}, got ${JSON.stringify(got)}`);
  if (!Number.isInteger(o.seed)) throw bad("seed", "an integer", o.seed);
  if (!Number.isInteger(o.size) || o.size < 32 || o.size > 1024) {
    throw bad("size", "an integer in 32..1024", o.size);
  }
  if (!Number.isInteger(o.subjects) || o.subjects < 1 || o.subjects > 99) {
    throw bad("subjects", "an integer in 1..99", o.subjects);
  }
  if (!Number.isInteger(o.astronautSubjects) || o.astronautSubjects < 0 || o.astronautSubjects > o.subjects) {
    throw bad("astronautSubjects", `an integer in 0..${o.subjects}`, o.astronautSubjects);
  }
  for (const [k, v] of Object.entries(o.counts)) {
    if (!(k in SYNTHETIC_RECIPES)) {
      throw bad(`counts.${k}`, `a class among ${Object.keys(SYNTHETIC_RECIPES).join(", ")}`, k);
    }
    if (!Number.isInteger(v[0]) || !Number.isInteger(v[1]) || v[0] < 0 || v[1] < v[0]) {
      throw bad(`counts.${k}`, "[min, max] integers with 0 <= min <= max", v);
    }
  }
  for (const k of ["intensity", "expressivity", "noise", "coActivationWeight"] as const) {
    const [lo, hi] = o[k];
    if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo >= 0 && hi >= lo)) {
      throw bad(k, "[lo, hi] with 0 <= lo <= hi", o[k]);
    }
  }
  for (const k of ["coActivation", "asymmetry"] as const) {
    if (!(o[k] >= 0 && o[k] <= 1)) throw bad(k, "a probability in [0, 1]", o[k]);
  }
  return o;
}

const pad2 = (n: number) => String(n).padStart(2, "0");
const DEG = Math.PI / 180;

function applyPose(P: Pose, c: number, q: Point, out: Point): void {
  const cos = Math.cos(P.angle) * P.scale;
  const sin = Math.sin(P.angle) * P.scale;
  const dx = q.x - c;
  const dy = q.y - c;
  out.x = c + cos * dx - sin * dy + P.tx;
  out.y = c + sin * dx + cos * dy + P.ty;
}

function invertPose(P: Pose, c: number, p: Point, out: Point): void {
  const cos = Math.cos(P.angle) / P.scale;
  const sin = Math.sin(P.angle) / P.scale;
  const dx = p.x - c - P.tx;
  const dy = p.y - c - P.ty;
  out.x = c + cos * dx + sin * dy;
  out.y = c - sin * dx + cos * dy;
}

/**
 * Plans a dataset: subjects (faces, noise, expressivity) and samples (labels, AUs, frame numbers, poses).
 * Deterministic in `options.seed`; every subject and sample has its own random stream.
 *
 * @param photo the astronaut portrait as grayscale; read from `data/astronaut.png` when omitted.
 */
export async function planSyntheticDataset(
  opts: Partial<SyntheticOptions> = {},
  photo?: GrayImage,
): Promise<SyntheticPlan> {
  const o = resolveSyntheticOptions(opts);
  if (o.astronautSubjects > 0 && !photo) photo = await readGray(ASTRONAUT_PATH);
  const astroAt = new Set<number>();
  for (let k = 0; k < o.astronautSubjects; k++) {
    astroAt.add(Math.floor((k + 0.5) * o.subjects / o.astronautSubjects));
  }
  const subjects: SyntheticSubject[] = [];
  const samples: SyntheticSample[] = [];
  const fineNames = SYNTHETIC_CLASSES.fine;
  for (let s = 0; s < o.subjects; s++) {
    const id = `sub${pad2(s + 1)}`;
    const rng = rngFor(o.seed, "subject", id);
    const face = astroAt.has(s)
      ? astronautFace(photo!, randomAstronautParams(rng, o.size, o.faceVariation), rng)
      : parametricFace(randomFaceParams(rng, o.size, o.faceVariation), rng);
    const subject: SyntheticSubject = {
      id,
      number: s + 1,
      kind: face.kind,
      face,
      noise: rng.uniform(o.noise[0], o.noise[1]),
      expressivity: rng.uniform(o.expressivity[0], o.expressivity[1]),
    };
    subjects.push(subject);
    // Sample list of this subject: class counts, then one stream per sample.
    const crng = rngFor(o.seed, "counts", id);
    const emotions: string[] = [];
    for (const name of fineNames) {
      const [lo, hi] = o.counts[name] ?? [0, 0];
      const k = crng.int(lo, hi);
      for (let i = 0; i < k; i++) emotions.push(name);
    }
    const perEpisode = new Map<number, number>();
    const subjectSamples: SyntheticSample[] = [];
    emotions.forEach((emotion, i) => {
      const r = rngFor(o.seed, "sample", id, i);
      const ep = r.int(1, 19);
      const k = (perEpisode.get(ep) ?? 0) + 1;
      perEpisode.set(ep, k);
      const aus = sampleAus(r, emotion, subject.expressivity, o);
      const onsetFrame = r.int(10, 250);
      const apexFrame = onsetFrame + r.int(8, 40);
      const offsetFrame = apexFrame + r.int(10, 45);
      const onsetPose: Pose = {
        tx: r.normal(0, o.poseJitter.translation),
        ty: r.normal(0, o.poseJitter.translation),
        angle: r.normal(0, o.poseJitter.rotationDeg) * DEG,
        scale: 1 + r.normal(0, o.poseJitter.scale),
      };
      const apexPose: Pose = {
        tx: onsetPose.tx + r.normal(0, o.headMotion.translation),
        ty: onsetPose.ty + r.normal(0, o.headMotion.translation),
        angle: onsetPose.angle + r.normal(0, o.headMotion.rotationDeg) * DEG,
        scale: onsetPose.scale * (1 + r.normal(0, o.headMotion.scale)),
      };
      const fine = fineNames.indexOf(emotion);
      subjectSamples.push({
        subject: id,
        subjectNumber: s + 1,
        filename: `EP${pad2(ep)}_${pad2(k)}f`,
        emotion,
        fine,
        coarse: SYNTHETIC_CLASSES.fineToCoarse[fine],
        aus,
        actionUnits: formatAus(aus),
        objectiveClass: SYNTHETIC_RECIPES[emotion].objectiveClass,
        onsetFrame,
        apexFrame,
        offsetFrame,
        onsetPose,
        apexPose,
        apexGain: 1 + r.normal(0, o.gainJitter),
      });
    });
    subjectSamples.sort((a, b) => (a.filename < b.filename ? -1 : a.filename > b.filename ? 1 : 0));
    samples.push(...subjectSamples);
  }
  return { options: o, classes: SYNTHETIC_CLASSES, subjects, samples };
}

/** Rendered frames of one sample and its ground-truth flow (onset grid, OpenCV convention). */
export interface RenderedSample {
  onset: GrayImage & { data: Uint8Array };
  apex: GrayImage & { data: Uint8Array };
  /** Ground-truth displacement onset -> apex (head motion + AU motion), px. */
  flow: Flow;
  /** The AU part only (no head motion), on the same grid. */
  auFlow: Flow;
}

/**
 * Renders the onset and apex frames of a planned sample (8-bit grayscale, `size`×`size`) and the
 * ground-truth flow between them. Deterministic: the sensor noise comes from the sample's own stream.
 */
export function renderSyntheticSample(plan: SyntheticPlan, sample: SyntheticSample): RenderedSample {
  const o = plan.options;
  const n = o.size;
  const c = (n - 1) / 2;
  const subject = plan.subjects.find((s) => s.id === sample.subject);
  if (!subject) throw new RangeError(`renderSyntheticSample: unknown subject "${sample.subject}"`);
  const field = motionField(subject.face.anchors, sample.aus);
  const F = subject.face.intensity;
  const noise = rngFor(o.seed, "noise", sample.subject, sample.filename);
  const onset = new Uint8Array(n * n);
  const apex = new Uint8Array(n * n);
  const u = new Float32Array(n * n);
  const v = new Float32Array(n * n);
  const au = new Float32Array(n * n);
  const av = new Float32Array(n * n);
  const p: Point = { x: 0, y: 0 };
  const r: Point = { x: 0, y: 0 };
  const d: Point = { x: 0, y: 0 };
  const q: Point = { x: 0, y: 0 };
  const quant = (val: number) => Math.min(255, Math.max(0, Math.round(val)));
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const i = y * n + x;
      p.x = x;
      p.y = y;
      // Onset: F at P0^-1 p; ground-truth flow from the same face point.
      invertPose(sample.onsetPose, c, p, r);
      onset[i] = quant(F(r.x, r.y) + noise.normal(0, subject.noise));
      field.displacement(r.x, r.y, d);
      au[i] = d.x;
      av[i] = d.y;
      q.x = r.x + d.x;
      q.y = r.y + d.y;
      applyPose(sample.apexPose, c, q, q);
      u[i] = q.x - x;
      v[i] = q.y - y;
      // Apex: solve q + d(q) = P1^-1 p by fixed-point iteration (d is smooth and ~1 px, so 3 steps reach
      // well below 1e-3 px).
      invertPose(sample.apexPose, c, p, r);
      q.x = r.x;
      q.y = r.y;
      for (let it = 0; it < 3; it++) {
        field.displacement(q.x, q.y, d);
        q.x = r.x - d.x;
        q.y = r.y - d.y;
      }
      apex[i] = quant(F(q.x, q.y) * sample.apexGain + noise.normal(0, subject.noise));
    }
  }
  return {
    onset: { width: n, height: n, data: onset },
    apex: { width: n, height: n, data: apex },
    flow: { width: n, height: n, u, v },
    auFlow: { width: n, height: n, u: au, v: av },
  };
}

/** What {@link generateSyntheticDataset} wrote. */
export interface SyntheticSummary {
  root: string;
  codingFile: string;
  metaFile: string;
  subjects: number;
  samples: number;
  /** Samples per fine class. */
  perClass: Record<string, number>;
  files: number;
  bytes: number;
}

/**
 * Generates the synthetic dataset into `outDir` as a CASME II-like tree:
 *
 * ```
 * outDir/CASME2-coding-synthetic.xlsx         CASME II columns, incl. the two empty spacer columns
 * outDir/CASME2_RAW_selected/subXX/EPxx_yyf/imgN.png   onset, apex and offset frames (8-bit grayscale)
 * outDir/synthetic_meta.json                  options, classes, subjects and per-sample AUs and poses
 * ```
 *
 * Read it back with `loadCasme2(outDir, { dataset: "synthetic", emotions: SYNTHETIC_CLASSES.fine })`.
 * Output is byte-identical for the same options. Existing files are overwritten; frames that an earlier run
 * recorded in `outDir/synthetic_meta.json` and this plan does not write are deleted (so a regenerated tree
 * holds no stale clips); any other file is kept.
 *
 * @param onProgress called after each sample with (done, total).
 * @example
 * ```ts ignore
 * const summary = await generateSyntheticDataset("out/synth", { subjects: 4, seed: 1 });
 * ```
 */
export async function generateSyntheticDataset(
  outDir: string,
  opts: Partial<SyntheticOptions> = {},
  onProgress?: (done: number, total: number) => void,
): Promise<SyntheticSummary> {
  const plan = await planSyntheticDataset(opts);
  const o = plan.options;
  const raw = join(outDir, o.rawDir);
  await removeStaleFrames(outDir, plan);
  let files = 0;
  let bytes = 0;
  const perClass: Record<string, number> = Object.fromEntries(plan.classes.fine.map((f) => [f, 0]));
  const rows: CodingRow[] = [];
  for (const [k, s] of plan.samples.entries()) {
    const dir = join(raw, s.subject, s.filename);
    await Deno.mkdir(dir, { recursive: true });
    const img = renderSyntheticSample(plan, s);
    for (
      const [frame, im] of [[s.onsetFrame, img.onset], [s.apexFrame, img.apex], [
        s.offsetFrame,
        img.onset,
      ]] as const
    ) {
      const path = join(dir, `img${frame}.png`);
      await writePng(path, im);
      files++;
      bytes += (await Deno.stat(path)).size;
    }
    perClass[s.emotion]++;
    rows.push({
      subject: s.subjectNumber,
      filename: s.filename,
      onsetFrame: s.onsetFrame,
      apexFrame: s.apexFrame,
      offsetFrame: s.offsetFrame,
      actionUnits: s.actionUnits,
      emotion: s.emotion,
      objectiveClass: s.objectiveClass,
    });
    onProgress?.(k + 1, plan.samples.length);
  }
  const codingFile = join(outDir, o.codingFile);
  const coding = await encodeCasme2Coding(rows);
  await Deno.writeFile(codingFile, coding);
  bytes += coding.length;
  const metaFile = join(outDir, "synthetic_meta.json");
  const meta = {
    generator: "merba synthetic micro-expressions (lib/data/synthetic.ts)",
    note: "Synthetic faces and synthetic motion; not real micro-expressions.",
    options: o,
    classes: plan.classes,
    subjects: plan.subjects.map((s) => ({
      id: s.id,
      kind: s.kind,
      noise: round(s.noise, 3),
      expressivity: round(s.expressivity, 3),
      anchors: roundDeep(s.face.anchors),
    })),
    samples: plan.samples.map((s) => ({
      subject: s.subject,
      filename: s.filename,
      emotion: s.emotion,
      coarse: plan.classes.coarse[s.coarse],
      actionUnits: s.actionUnits,
      aus: s.aus.map((a) => ({ au: a.au, side: a.side, amplitude: round(a.amplitude, 3) })),
      onsetFrame: s.onsetFrame,
      apexFrame: s.apexFrame,
      offsetFrame: s.offsetFrame,
      headMotion: {
        tx: round(s.apexPose.tx - s.onsetPose.tx, 3),
        ty: round(s.apexPose.ty - s.onsetPose.ty, 3),
        angleDeg: round((s.apexPose.angle - s.onsetPose.angle) / DEG, 3),
        scale: round(s.apexPose.scale / s.onsetPose.scale, 5),
      },
      apexGain: round(s.apexGain, 4),
    })),
  };
  const metaText = JSON.stringify(meta, null, 1) + "\n";
  await Deno.writeTextFile(metaFile, metaText);
  bytes += metaText.length;
  return {
    root: outDir,
    codingFile,
    metaFile,
    subjects: plan.subjects.length,
    samples: plan.samples.length,
    perClass,
    files: files + 2,
    bytes,
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function roundDeep<T>(v: T): T {
  if (typeof v === "number") return round(v, 2) as T;
  if (Array.isArray(v)) return v.map(roundDeep) as T;
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, roundDeep(x)])) as T;
  }
  return v;
}

// ---------------------------------------------------------------------------------------------------------
// Protocols, flow cache and the shipped default

/** File name of the shipped flow dataset inside the synthetic tree. */
export const SYNTHETIC_FLOW_FILE = "flow_tvl1_28.mflow";

/** Loads the samples of a synthetic tree with the CASME II loader. */
export async function loadSyntheticSamples(root: string = SYNTHETIC_DIR): Promise<SampleRef[]> {
  const { samples } = await loadCasme2(root, {
    dataset: "synthetic",
    emotions: SYNTHETIC_CLASSES.fine,
    listFrames: false,
  });
  return samples;
}

/** Anchor points used to place the 68-point layout on a synthetic face (pairs flattened, image-left first). */
function anchorList(a: FaceAnchors): Point[] {
  return [
    ...a.eyeCentre,
    ...a.browInner,
    ...a.browMid,
    ...a.browOuter,
    ...a.lipCorner,
    ...a.noseWing,
    a.noseBridge,
    a.noseTip,
    a.upperLip,
    a.lowerLip,
    a.chin,
  ];
}

/** Least-squares affine map sending `from[i]` to `to[i]` (x' = a·x + b·y + c, y' = d·x + e·y + f). */
function fitAffine(from: readonly Point[], to: readonly Point[]): (p: Point) => Point {
  // normal equations M·[a b c] = r for x, and the same M for y
  const M = [[0, 0, 0], [0, 0, 0], [0, 0, 0]];
  const rx = [0, 0, 0];
  const ry = [0, 0, 0];
  from.forEach((p, i) => {
    const v = [p.x, p.y, 1];
    for (let r = 0; r < 3; r++) {
      for (let c = 0; c < 3; c++) M[r][c] += v[r] * v[c];
      rx[r] += v[r] * to[i].x;
      ry[r] += v[r] * to[i].y;
    }
  });
  const solve = (b: number[]) => {
    const A = M.map((row, r) => [...row, b[r]]);
    for (let c = 0; c < 3; c++) {
      let piv = c;
      for (let r = c + 1; r < 3; r++) if (Math.abs(A[r][c]) > Math.abs(A[piv][c])) piv = r;
      [A[c], A[piv]] = [A[piv], A[c]];
      for (let r = 0; r < 3; r++) {
        if (r === c) continue;
        const f = A[r][c] / A[c][c];
        for (let k = c; k < 4; k++) A[r][k] -= f * A[c][k];
      }
    }
    return [A[0][3] / A[0][0], A[1][3] / A[1][1], A[2][3] / A[2][2]];
  };
  const [a, b, c] = solve(rx);
  const [d, e, f] = solve(ry);
  return (p) => ({ x: a * p.x + b * p.y + c, y: d * p.x + e * p.y + f });
}

/**
 * The 68 face landmarks of a planned synthetic sample, in the pixel coordinates of its flow input (the onset
 * frame area-resized to `size`×`size`, as `computeSyntheticFlowDataset` does). The synthetic faces vary in
 * size, position and pose (`faceVariation`, `poseJitter`), so one fixed layout does not fit them: the canonical
 * 68-point layout is moved by the affine map that best sends its anchors (eyes, brows, nose, lips, chin) onto
 * this subject's, then by the sample's onset pose. For per-sample facial regions:
 * `faceRegions(syntheticLandmarks(plan, sample, 28), 28)`.
 *
 * @throws {RangeError} for an unknown subject or a bad size.
 */
export function syntheticLandmarks(plan: SyntheticPlan, sample: SyntheticSample, size: number): Point[] {
  if (!Number.isInteger(size) || size <= 0) {
    throw new RangeError(`syntheticLandmarks: size must be a positive integer, got ${size}`);
  }
  const subject = plan.subjects.find((s) => s.id === sample.subject);
  if (!subject) throw new RangeError(`syntheticLandmarks: unknown subject "${sample.subject}"`);
  const n = plan.options.size;
  const canon = canonicalLandmarks(n);
  const toFace = fitAffine(anchorList(anchorsFromLandmarks68(canon)), anchorList(subject.face.anchors));
  const c = (n - 1) / 2;
  const k = size / n;
  return canon.map((p) => {
    const q = toFace(p);
    applyPose(sample.onsetPose, c, q, q);
    // pixel centres: x_in = (x + 0.5)·size/n − 0.5 under an area resize
    return { x: (q.x + 0.5) * k - 0.5, y: (q.y + 0.5) * k - 0.5 };
  });
}

/**
 * {@link syntheticLandmarks} of every sample of a generated synthetic tree (default: the shipped one), keyed by
 * sample id (`sub01/EP02_01f`, as in the flow dataset's `ids`). Re-plans the tree from its
 * `synthetic_meta.json` (deterministic; no pixels rendered).
 */
export async function loadSyntheticLandmarks(
  size: number,
  root: string = SYNTHETIC_DIR,
): Promise<Map<string, Point[]>> {
  const metaPath = join(root, "synthetic_meta.json");
  let meta: { options?: Partial<SyntheticOptions> };
  try {
    meta = JSON.parse(await Deno.readTextFile(metaPath));
  } catch (e) {
    throw new DatasetError(`cannot read the synthetic tree's plan (${(e as Error).message})`, {
      file: metaPath,
    });
  }
  const plan = await planSyntheticDataset(meta.options ?? {});
  return new Map(plan.samples.map((s) => [`${s.subject}/${s.filename}`, syntheticLandmarks(plan, s, size)]));
}

/**
 * Computes the flow dataset of a synthetic tree with the standard preprocessing (`preprocessDataset`,
 * protocol `synthetic-5class`): TV-L1 flow (OpenCV defaults) from onset to apex on the full grayscale frames
 * (no face crop: the faces vary in size, position and pose by design, see {@link syntheticLandmarks}), then `flowToInput` to `size`×`size`×3 (u, v,
 * strain, each min-max normalised to [0, 1], area resize). Fine = 5 emotions, coarse = 3 classes.
 *
 * @returns `x: [n, size, size, 3]`, in the coding sheet's order.
 */
export async function computeSyntheticFlowDataset(
  root: string = SYNTHETIC_DIR,
  opts: { size?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<FlowDataset> {
  const samples = await loadSyntheticSamples(root);
  return await preprocessDataset(samples, {
    protocol: "synthetic-5class",
    size: opts.size ?? 28,
    name: "synthetic",
    onProgress: (p) => opts.onProgress?.(p.done, p.total),
  });
}

/** Options of {@link loadSyntheticDefault}. */
export interface LoadSyntheticOptions {
  /**
   * `synthetic-5class` (default): fine = 5 emotions, coarse = 3 classes. `synthetic-3class`: the 3 coarse
   * classes as a single level (fine = coarse).
   */
  protocol?: "synthetic-5class" | "synthetic-3class";
  /** Tree to read (default: the shipped `data/synthetic`). */
  root?: string;
  /** Recompute the flow even when the shipped file exists. @default false */
  recompute?: boolean;
}

/**
 * The embedded default dataset as a {@link FlowDataset}: reads the shipped, preprocessed
 * `data/synthetic/flow_tvl1_28.mflow` (28×28×3 TV-L1 flow inputs), or computes it from the frames when the file
 * is absent (or `recompute` is set).
 *
 * @returns `x: [n, 28, 28, 3]` (u, v, strain, each in [0, 1]); subjects `synthetic/subXX`.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadSyntheticDefault } from "./synthetic.ts";
 * const ds = await loadSyntheticDefault({ protocol: "synthetic-3class" });
 * assert.deepEqual(ds.classes.fine, ["negative", "positive", "surprise"]);
 * assert.equal(ds.x.length, ds.n * 28 * 28 * 3);
 * ```
 */
export async function loadSyntheticDefault(opts: LoadSyntheticOptions = {}): Promise<FlowDataset> {
  const root = opts.root ?? SYNTHETIC_DIR;
  const protocol = opts.protocol ?? "synthetic-5class";
  if (protocol !== "synthetic-5class" && protocol !== "synthetic-3class") {
    throw new RangeError(
      `loadSyntheticDefault: protocol must be "synthetic-5class" or "synthetic-3class", got "${protocol}"`,
    );
  }
  const file = join(root, SYNTHETIC_FLOW_FILE);
  let ds = !opts.recompute && await fileExists(file)
    ? await loadFlowDataset(file)
    : await computeSyntheticFlowDataset(root);
  if (protocol === "synthetic-3class") {
    ds = {
      ...ds,
      protocol,
      fine: Int32Array.from(ds.coarse),
      classes: PROTOCOLS["synthetic-3class"].classes,
    };
  }
  return ds;
}

/** Writes the flow dataset of a synthetic tree next to its frames (`<root>/flow_tvl1_28.mflow`). */
export async function writeSyntheticFlowDataset(
  root: string = SYNTHETIC_DIR,
  onProgress?: (done: number, total: number) => void,
): Promise<{ path: string; dataset: FlowDataset }> {
  const dataset = await computeSyntheticFlowDataset(root, { onProgress });
  const path = join(root, SYNTHETIC_FLOW_FILE);
  await saveFlowDataset(dataset, path);
  return { path, dataset };
}

/** Frame paths (relative to the output folder) of the samples of a plan or of an earlier run's meta. */
function framePaths(
  rawDir: string,
  samples: readonly {
    subject: string;
    filename: string;
    onsetFrame: number;
    apexFrame: number;
    offsetFrame: number;
  }[],
): Set<string> {
  const out = new Set<string>();
  for (const s of samples) {
    for (const f of [s.onsetFrame, s.apexFrame, s.offsetFrame]) {
      out.add(join(rawDir, s.subject, s.filename, `img${f}.png`));
    }
  }
  return out;
}

/**
 * Deletes the frames an earlier generation recorded in `outDir/synthetic_meta.json` that `plan` will not
 * write (and their folders once empty). Nothing is deleted without that meta file.
 */
async function removeStaleFrames(outDir: string, plan: SyntheticPlan): Promise<void> {
  const metaFile = join(outDir, "synthetic_meta.json");
  if (!await fileExists(metaFile)) return;
  let old: { options?: { rawDir?: string }; samples?: Parameters<typeof framePaths>[1] };
  try {
    old = JSON.parse(await Deno.readTextFile(metaFile));
  } catch (e) {
    throw new DatasetError(`cannot read the earlier generation's meta: ${(e as Error).message}`, {
      file: metaFile,
    });
  }
  if (!Array.isArray(old.samples)) return;
  const keep = framePaths(plan.options.rawDir, plan.samples);
  const stale = [...framePaths(old.options?.rawDir ?? plan.options.rawDir, old.samples)].filter((p) =>
    !keep.has(p)
  );
  for (const rel of stale) {
    try {
      await Deno.remove(join(outDir, rel));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    try {
      await Deno.remove(join(outDir, rel, "..")); // the clip folder, only if now empty
    } catch {
      // not empty (or already gone): keep it
    }
  }
}

async function fileExists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}
