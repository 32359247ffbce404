/**
 * Command line: (re)generates the synthetic micro-expression dataset and its 28×28×3 TV-L1 flow file.
 *
 * ```
 * deno task synth                         # rebuilds data/synthetic (default seed and options)
 * deno task synth --out out/synth --seed 7 --subjects 20
 * deno task synth --no-flow               # frames and coding sheet only
 * ```
 *
 * Output is byte-identical for the same options. Options: `--out DIR` (default `data/synthetic`),
 * `--seed N`, `--subjects N`, `--astronaut N` (astronaut-based subjects), `--size PX`, `--no-flow`, and
 * `--options JSON` for any other {@link SyntheticOptions} field (difficulty knobs), e.g.
 * `--options '{"intensity":[1,2.5],"headMotion":{"translation":0.3,"rotationDeg":0.3,"scale":0.003}}'`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ProgressBar } from "../progress.ts";
import {
  generateSyntheticDataset,
  SYNTHETIC_DIR,
  type SyntheticOptions,
  writeSyntheticFlowDataset,
} from "./synthetic.ts";

/** Parses the command line and runs the generator (and the flow step unless `--no-flow`). */
export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: "string" },
      seed: { type: "string" },
      subjects: { type: "string" },
      astronaut: { type: "string" },
      size: { type: "string" },
      options: { type: "string" },
      "no-flow": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(
      "usage: deno task synth [--out DIR] [--seed N] [--subjects N] [--astronaut N] [--size PX] " +
        "[--options JSON] [--no-flow]",
    );
    return;
  }
  const int = (name: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n)) throw new RangeError(`--${name}: expected an integer, got "${v}"`);
    return n;
  };
  let opts: Partial<SyntheticOptions> = {};
  if (values.options !== undefined) {
    try {
      opts = JSON.parse(values.options);
    } catch (e) {
      throw new RangeError(
        `--options: expected a JSON object of SyntheticOptions fields: ${(e as Error).message}`,
      );
    }
    if (opts === null || typeof opts !== "object" || Array.isArray(opts)) {
      throw new RangeError("--options: expected a JSON object of SyntheticOptions fields");
    }
  }
  const seed = int("seed", values.seed);
  if (seed !== undefined) opts.seed = seed;
  const subjects = int("subjects", values.subjects);
  if (subjects !== undefined) opts.subjects = subjects;
  const astronaut = int("astronaut", values.astronaut);
  if (astronaut !== undefined) opts.astronautSubjects = astronaut;
  const size = int("size", values.size);
  if (size !== undefined) opts.size = size;
  const out = values.out ?? SYNTHETIC_DIR;

  let bar: ProgressBar | undefined;
  const summary = await generateSyntheticDataset(out, opts, (done, total) => {
    bar ??= new ProgressBar(total, { label: "frames" });
    bar.update(done);
  });
  console.log(
    `wrote ${summary.samples} samples of ${summary.subjects} subjects to ${summary.root} ` +
      `(${summary.files} files, ${(summary.bytes / 1e6).toFixed(2)} MB); per class: ${
        JSON.stringify(summary.perClass)
      }`,
  );
  if (!values["no-flow"]) {
    let fbar: ProgressBar | undefined;
    const { path, dataset } = await writeSyntheticFlowDataset(out, (done, total) => {
      fbar ??= new ProgressBar(total, { label: "TV-L1 flow" });
      fbar.update(done);
    });
    console.log(`wrote ${path}: [${dataset.n}, ${dataset.height}, ${dataset.width}, 3]`);
  }
}

if (import.meta.main) await main(Deno.args);
