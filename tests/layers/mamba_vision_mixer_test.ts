import * as tf from "@tensorflow/tfjs";
import { deepStrictEqual, deepStrictEqual as assertEquals, ok, throws } from "node:assert/strict";
import { assertClose, gpu } from "../_util.ts";
import { type MambaVisionMixer, mambaVisionMixer } from "../../lib/layers/mamba_vision_mixer.ts";
import { loadTorchStateDict, type TorchStateDict } from "../../lib/models/torch_import.ts";

interface Tol {
  atol: number;
  rtol: number;
}
interface GoldenTensor {
  shape: number[];
  data: number[];
}
interface Golden {
  case: string;
  config: { d_model: number; d_state: number; d_conv: number; expand: number };
  weights: TorchStateDict;
  input: { x: GoldenTensor };
  expected: { out: GoldenTensor; out_single_bias: GoldenTensor };
  intermediates: Record<string, GoldenTensor>;
  provenance: { tolerance: { per_tensor: Record<string, Tol> } };
}

const CASES = ["block_c32_l49", "block_c48_l25", "defaults_c16_l20"];
const load = (name: string): Golden =>
  JSON.parse(Deno.readTextFileSync(new URL(`../fixtures/mixer/${name}.json`, import.meta.url)));

/** `[b, l, c]` row-major → `[b, c, l]` (the fixture's PyTorch layout). */
function toBcl(a: Float32Array | Int32Array | Uint8Array, b: number, l: number, c: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < b; i++) {
    for (let t = 0; t < l; t++) {
      for (let j = 0; j < c; j++) {
        out[(i * c + j) * l + t] = a[(i * l + t) * c + j];
      }
    }
  }
  return out;
}

function build(g: Golden, dtBias: "mambavision" | "mamba"): MambaVisionMixer {
  const m = mambaVisionMixer({
    dModel: g.config.d_model,
    dState: g.config.d_state,
    dConv: g.config.d_conv,
    expand: g.config.expand,
    dtBias,
  });
  m.ensureBuilt(g.input.x.shape);
  loadTorchStateDict(m, g.weights);
  return m;
}

async function checkCase(name: string) {
  const g = load(name);
  const tol = g.provenance.tolerance.per_tensor;
  const x = tf.tensor(g.input.x.data, g.input.x.shape);
  const [b, l] = g.input.x.shape;
  for (const dtBias of ["mambavision", "mamba"] as const) {
    const m = build(g, dtBias);
    const tr = m.forwardTrace(x);
    const expected = dtBias === "mambavision" ? g.expected.out : g.expected.out_single_bias;
    assertEquals(tr.out.shape, expected.shape);
    assertClose(await tr.out.data(), expected.data, {
      ...(dtBias === "mambavision" ? tol.out : tol.out_single_bias),
      what: `${name} ${dtBias} out`,
    });
    const ti = tol.intermediates;
    const gr = tr.groups[0];
    if (dtBias === "mambavision") {
      const h = m.branch;
      assertClose(toBcl(await tr.xz.data(), b, l, 2 * h), g.intermediates.xz.data, {
        ...ti,
        what: `${name} xz`,
      });
      assertClose(toBcl(await tr.zConv.data(), b, l, h), g.intermediates.z_conv.data, {
        ...ti,
        what: `${name} z_conv`,
      });
      assertClose(await gr.u.data(), g.intermediates.x_conv.data, { ...ti, what: `${name} x_conv` });
      assertClose(await gr.delta.data(), g.intermediates.dt.data, { ...ti, what: `${name} dt` });
      assertClose(await gr.B.data(), g.intermediates.B.data, { ...ti, what: `${name} B` });
      assertClose(await gr.C.data(), g.intermediates.C.data, { ...ti, what: `${name} C` });
      assertClose(await gr.y.data(), g.intermediates.y_scan.data, { ...ti, what: `${name} y_scan` });
    } else {
      assertClose(await gr.y.data(), g.intermediates.y_scan_single_bias.data, {
        ...ti,
        what: `${name} y_scan_single_bias`,
      });
      // negative check: the single-bias forward is far from MambaVision's output
      const diff = tf.max(tf.abs(tf.sub(tr.out, tf.tensor(g.expected.out.data, g.expected.out.shape))));
      const d = (await diff.data())[0];
      if (d < 0.1) {
        throw new Error(`${name}: dtBias "mamba" output should differ from MambaVision's (max |diff| ${d})`);
      }
    }
    tf.dispose(tr as unknown as tf.TensorContainer);
    m.dispose();
  }
  x.dispose();
}

for (const backend of ["cpu", "webgpu"] as const) {
  Deno.test({
    name: `mixer matches MambaVision golden (both dt-bias behaviours, intermediates) on ${backend}`,
    ignore: backend === "webgpu" && !gpu,
    async fn() {
      await tf.setBackend(backend);
      for (const c of CASES) await checkCase(c);
    },
  });
}

Deno.test("mixer rejects bad arguments with named errors", async () => {
  await tf.setBackend("cpu");
  throws(
    () => mambaVisionMixer({ dModel: 0 }),
    (e: Error) => e instanceof RangeError && e.message.includes("dModel"),
  );
  throws(
    () => mambaVisionMixer({ dModel: 8, dtBias: "x" as never }),
    (e: Error) => e instanceof RangeError && e.message.includes("dtBias"),
  );
  throws(
    () => mambaVisionMixer({ dModel: 8, scanOrders: "bilateral3" }),
    (e: Error) => e instanceof RangeError && e.message.includes("grid"),
  );
  const m = mambaVisionMixer({ dModel: 8, dState: 4, dConv: 3, expand: 1 });
  throws(
    () => m.apply(tf.zeros([2, 5, 7])),
    (e: Error) => e instanceof TypeError && e.message.includes("[batch, length, 8]"),
  );
});

Deno.test({
  name:
    "multi-scan mixer on webgpu: the fused way back + merge (gather-sum) equals the unfused path bit for bit",
  ignore: !gpu,
  async fn() {
    await tf.setBackend("webgpu");
    for (const merge of ["mean", "sum"] as const) {
      const m = mambaVisionMixer({
        dModel: 8,
        dState: 4,
        dConv: 3,
        expand: 1,
        scanOrders: "bilateral3",
        grid: [5, 5],
        merge,
      });
      const x = tf.randomNormal([3, 25, 8], 0, 1, "float32", 5);
      const w = tf.randomNormal([3, 25, 8], 0, 1, "float32", 6);
      // apply() takes the gather-sum; forwardTrace() keeps every order, so it takes the unfused ops
      const fused = m.apply(x) as tf.Tensor;
      const traced = tf.tidy(() => m.forwardTrace(x).out);
      assertEquals(await fused.data(), await traced.data(), `${merge}: output`);
      const loss = (f: (t: tf.Tensor) => tf.Tensor) => (t: tf.Tensor) => tf.sum(tf.mul(f(t), w));
      const gf = tf.grad(loss((t) => m.apply(t) as tf.Tensor))(x);
      const gt = tf.grad(loss((t) => m.forwardTrace(t).out))(x);
      assertEquals(await gf.data(), await gt.data(), `${merge}: gradient`);
      tf.dispose([x, w, fused, traced, gf, gt]);
      m.dispose();
    }
    await tf.setBackend("cpu");
  },
});

Deno.test("loadTorchStateDict checks every tensor before writing any", async () => {
  await tf.setBackend("cpu");
  const m = mambaVisionMixer({ dModel: 16, dState: 8, dConv: 3, expand: 1 });
  m.apply(tf.zeros([1, 4, 16]));
  const ones = (shape: number[]) => ({
    shape,
    data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(1),
  });
  const dict: TorchStateDict = {
    "in_proj.weight": ones([16, 16]),
    "conv1d_x.weight": ones([8, 1, 3]),
    "conv1d_z.weight": ones([8, 1, 3]),
    "x_proj.weight": ones([17, 8]),
    "dt_proj.weight": ones([8, 1]),
    "dt_proj.bias": ones([8]),
    "A_log": ones([8, 8]),
    "D": ones([8]),
    "out_proj.weight": ones([16, 16]),
  };
  const snapshot = async () => {
    const out: number[] = [];
    for (const w of m.namedWeights("m")) out.push(...await w.variable.read().data());
    return out;
  };
  const before = await snapshot();
  const { D: _d, ...missingD } = dict;
  throws(() => loadTorchStateDict(m, missingD), /missing "D"/);
  deepStrictEqual(await snapshot(), before, "nothing written when a later key is missing");
  const nan = { ...dict, "A_log": { shape: [8, 8], data: new Float32Array(64).fill(NaN) } };
  throws(() => loadTorchStateDict(m, nan), /"A_log" value 0 is NaN, not a finite number/);
  deepStrictEqual(await snapshot(), before);
  loadTorchStateDict(m, dict);
  ok((await snapshot()).some((v, i) => v !== before[i]));
  m.dispose();
});
