/**
 * Seeded, backend-independent initial values (a JS PRNG, not tfjs's random ops), so that a model built from
 * the same seed has bit-identical weights on cpu, wasm and webgpu.
 *
 * @module
 */

/** How a weight is initialised. */
export type InitSpec =
  | { kind: "zeros" }
  | { kind: "ones" }
  | { kind: "constant"; value: number }
  | { kind: "uniform"; limit: number }
  /** Normal(0, std) truncated at ±2·std (timm's `trunc_normal_`, MambaVision's Linear init). */
  | { kind: "truncNormal"; std: number }
  /** Rows `log(1..n)` (Mamba/MambaVision `A_log`): shape `[d, n]`. */
  | { kind: "aLog" }
  /**
   * Inverse softplus of `dt = exp(U[log dtMin, log dtMax])` clamped to `≥ floor` (Mamba's dt bias), so that
   * `softplus(bias) = dt`.
   */
  | { kind: "dtBias"; dtMin: number; dtMax: number; floor: number };

/**
 * Initialisation of linear (and the mixer's depthwise conv) kernels:
 * - `"lecun"`: truncated normal (±2σ) with σ = 1/√fan_in (LeCun normal): unit-scale activations at any width;
 * - `"truncNormal"`: truncated normal with σ = 0.02 (timm / MambaVision `_init_weights`), tuned for widths of
 *   hundreds of channels: at merba-tiny's 16–32 channels it makes every residual branch nearly silent;
 * - `"torch"`: PyTorch's `nn.Linear`/`nn.Conv1d` default, U(±1/√fan_in) (kaiming_uniform with a = √5).
 */
export type LinearInit = "lecun" | "truncNormal" | "torch";

/** Throws a RangeError naming `where` unless `kind` is a {@link LinearInit}. */
export function checkLinearInit(kind: unknown, where: string): asserts kind is LinearInit {
  if (kind !== "lecun" && kind !== "truncNormal" && kind !== "torch") {
    throw new RangeError(
      `${where}: linearInit must be "lecun", "truncNormal" or "torch", got ${String(kind)}`,
    );
  }
}

/** The {@link InitSpec} of a kernel with fan-in `fanIn` under `kind` (see {@link LinearInit}). */
export function linearInitSpec(kind: LinearInit, fanIn: number): InitSpec {
  switch (kind) {
    case "lecun":
      return { kind: "truncNormal", std: 1 / Math.sqrt(fanIn) };
    case "truncNormal":
      return { kind: "truncNormal", std: 0.02 };
    case "torch":
      return { kind: "uniform", limit: 1 / Math.sqrt(fanIn) };
    default:
      checkLinearInit(kind, "linearInitSpec");
      throw new Error("unreachable");
  }
}

/** mulberry32: small, fast, good enough for initialisation. Returns a function giving U[0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normal(rand: () => number): number {
  // Box–Muller; 1 − u avoids log(0).
  const u = 1 - rand();
  const v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/**
 * Fills a weight of `shape` according to `spec` from the PRNG seeded with `seed`.
 *
 * @throws {RangeError} on an `aLog` spec for a shape that is not rank 2.
 */
export function initialValues(spec: InitSpec, shape: number[], seed: number): Float32Array {
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  const rand = mulberry32(seed);
  switch (spec.kind) {
    case "zeros":
      break;
    case "ones":
      out.fill(1);
      break;
    case "constant":
      out.fill(spec.value);
      break;
    case "uniform":
      for (let i = 0; i < size; i++) out[i] = (2 * rand() - 1) * spec.limit;
      break;
    case "truncNormal":
      for (let i = 0; i < size; i++) {
        let z = normal(rand);
        while (Math.abs(z) > 2) z = normal(rand);
        out[i] = z * spec.std;
      }
      break;
    case "aLog": {
      if (shape.length !== 2) throw new RangeError(`aLog init needs a [d, n] shape, got [${shape}]`);
      const [d, n] = shape;
      for (let i = 0; i < d; i++) for (let j = 0; j < n; j++) out[i * n + j] = Math.log(j + 1);
      break;
    }
    case "dtBias": {
      const lo = Math.log(spec.dtMin);
      const hi = Math.log(spec.dtMax);
      for (let i = 0; i < size; i++) {
        const dt = Math.max(Math.exp(lo + rand() * (hi - lo)), spec.floor);
        // softplus⁻¹(dt) = dt + log(−expm1(−dt))
        out[i] = dt + Math.log(-Math.expm1(-dt));
      }
      break;
    }
  }
  return out;
}
