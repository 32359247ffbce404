/**
 * Dumps the raw TV-L1 flow (onset → apex, full frame, OpenCV defaults) of a synthetic tree, for the
 * learnability check `bench/synthetic_learnability.py` (scikit-learn / PyTorch references outside the library).
 *
 *   deno run -A bench/dump_raw_flow.ts [--root data/synthetic] [--out out/raw-flow]
 *
 * Writes `<out>/flows.f32` (float32, `[n, 2, H, W]`: u then v per sample) and `<out>/flows.json` (n, W, H, fine
 * and coarse labels, subjects, ids), in the order of the `synthetic-5class` protocol.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { applyProtocol } from "../lib/data/protocols.ts";
import { readGray } from "../lib/data/image_io.ts";
import { opticalFlowTVL1 } from "../lib/data/optical_flow.ts";
import { loadSyntheticSamples, SYNTHETIC_DIR } from "../lib/data/synthetic.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    root: { type: "string", default: SYNTHETIC_DIR },
    out: { type: "string", default: "out/raw-flow" },
  },
});
const pr = applyProtocol(await loadSyntheticSamples(values.root), "synthetic-5class");
const n = pr.samples.length;
let w = 0, h = 0;
const parts: Float32Array[] = [];
for (const s of pr.samples) {
  const f = opticalFlowTVL1(await readGray(s.onsetPath), await readGray(s.apexPath));
  [w, h] = [f.width, f.height];
  const buf = new Float32Array(2 * w * h);
  buf.set(f.u, 0);
  buf.set(f.v, w * h);
  parts.push(buf);
}
const all = new Float32Array(n * 2 * w * h);
parts.forEach((p, i) => all.set(p, i * 2 * w * h));
await Deno.mkdir(values.out!, { recursive: true });
await Deno.writeFile(join(values.out!, "flows.f32"), new Uint8Array(all.buffer));
await Deno.writeTextFile(
  join(values.out!, "flows.json"),
  JSON.stringify({
    n,
    W: w,
    H: h,
    fine: [...pr.fine],
    coarse: [...pr.coarse],
    subjects: pr.samples.map((s) => s.subject),
    ids: pr.samples.map((s) => s.id),
  }),
);
console.log(`wrote ${n} flows of ${w}x${h} to ${values.out}`);
