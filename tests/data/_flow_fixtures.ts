/** Loads the golden optical-flow fixtures (tests/fixtures/optical_flow, copied from OpenCV 4.6 runs). */
import type { Flow, GrayImage } from "../../lib/data/types.ts";

/** One golden case: frames, ground truth and OpenCV's TV-L1 / Farneback results. */
export interface FlowCase {
  name: string;
  prev: GrayImage;
  next: GrayImage;
  groundTruth: { flow: Flow; strain: Float32Array };
  tvl1: { flow: Flow; strain: Float32Array; epeInterior: number; epeAll: number };
  farneback: { flow: Flow; strain: Float32Array; epeInterior: number; epeAll: number };
  tolerance: { strain: { atol: number; rtol: number }; farnebackPortMaxAbs: number };
}

/** Case names, smallest first. */
export const FLOW_CASES = ["translate_64", "noisy_warp_64", "warp_128"] as const;

type Tensor = { shape: number[]; dtype: string; data: number[] };

function splitFlow(t: Tensor): Flow {
  const [h, w, c] = t.shape;
  if (c !== 2) throw new Error(`flow fixture: expected shape [h, w, 2], got ${t.shape}`);
  const u = new Float32Array(w * h);
  const v = new Float32Array(w * h);
  for (let i = 0; i < w * h; i++) {
    u[i] = t.data[2 * i];
    v[i] = t.data[2 * i + 1];
  }
  return { width: w, height: h, u, v };
}

const cache = new Map<string, FlowCase>();

/** Reads and parses one case (cached). */
export async function loadFlowCase(name: string): Promise<FlowCase> {
  const hit = cache.get(name);
  if (hit) return hit;
  const url = new URL(`../fixtures/optical_flow/${name}.json`, import.meta.url);
  // deno-lint-ignore no-explicit-any
  const d: any = JSON.parse(await Deno.readTextFile(url));
  const { width, height } = d.size;
  const img = (t: Tensor): GrayImage => ({ width, height, data: Uint8Array.from(t.data) });
  const method = (m: string) => ({
    flow: splitFlow(d[m].flow),
    strain: Float32Array.from(d[m].strain.data),
    epeInterior: d[m].epe_mean_interior as number,
    epeAll: d[m].epe_mean_all as number,
  });
  const tol = d.provenance.tolerance;
  const c: FlowCase = {
    name,
    prev: img(d.prev),
    next: img(d.next),
    groundTruth: {
      flow: splitFlow(d.ground_truth.flow),
      strain: Float32Array.from(d.ground_truth.strain.data),
    },
    tvl1: method("tvl1"),
    farneback: method("farneback"),
    tolerance: {
      strain: { atol: tol.strain_from_given_flow.atol, rtol: tol.strain_from_given_flow.rtol },
      farnebackPortMaxAbs: 1e-4,
    },
  };
  cache.set(name, c);
  return c;
}

/**
 * Mean endpoint error `mean √((u − u_gt)² + (v − v_gt)²)` over pixels at least `margin` px from every edge
 * (the fixtures' "interior" uses 8; margin 0 = all pixels).
 */
export function epe(a: Flow, b: Flow, margin = 8): number {
  let s = 0;
  let n = 0;
  for (let y = margin; y < a.height - margin; y++) {
    for (let x = margin; x < a.width - margin; x++) {
      const i = y * a.width + x;
      s += Math.hypot(a.u[i] - b.u[i], a.v[i] - b.v[i]);
      n++;
    }
  }
  return s / n;
}
