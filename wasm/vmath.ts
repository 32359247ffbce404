// Four-lane float32 math shared by the AssemblyScript kernels (wasm/selective_scan.ts, wasm/layers.ts).

const LOG2E: f32 = 1.4426950408889634;
const LN2_HI: f32 = 0.693145751953125; // ln 2 split so k·LN2_HI is exact for |k| < 2^11
const LN2_LO: f32 = 1.428606765330187e-6;
const SQRT2: f32 = 1.4142135623730951;

/** eˣ on four lanes: x = k·ln2 + r, |r| ≤ ln2/2, degree-7 Taylor polynomial (truncation error ≈ 5e-9
 * relative, below float32 rounding), 2^k from the exponent bits. x is clamped to [−87.3, 88]: below −87.3 the
 * result is ≈ 1.2e-38 instead of a smaller number or 0 (a decay factor that small is 0 for every purpose here).
 * NaN stays NaN. */
export function vexp(x: v128): v128 {
  x = f32x4.max(f32x4.min(x, f32x4.splat(88.0)), f32x4.splat(-87.3));
  const k = f32x4.nearest(f32x4.mul(x, f32x4.splat(LOG2E)));
  const r = f32x4.sub(f32x4.sub(x, f32x4.mul(k, f32x4.splat(LN2_HI))), f32x4.mul(k, f32x4.splat(LN2_LO)));
  let p = f32x4.add(f32x4.splat(1.0 / 720.0), f32x4.mul(r, f32x4.splat(1.0 / 5040.0)));
  p = f32x4.add(f32x4.splat(1.0 / 120.0), f32x4.mul(r, p));
  p = f32x4.add(f32x4.splat(1.0 / 24.0), f32x4.mul(r, p));
  p = f32x4.add(f32x4.splat(1.0 / 6.0), f32x4.mul(r, p));
  p = f32x4.add(f32x4.splat(0.5), f32x4.mul(r, p));
  p = f32x4.add(f32x4.splat(1.0), f32x4.mul(r, p));
  p = f32x4.add(f32x4.splat(1.0), f32x4.mul(r, p));
  const scale = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(k), i32x4.splat(127)), 23);
  return f32x4.mul(p, scale);
}

/** ln y on four lanes for finite y > 0: y = m·2^e with m in [√½, √2), ln m = 2·atanh(s), s = (m − 1)/(m + 1),
 * |s| ≤ 0.172, series to s⁹ (relative error ≤ 3e-9 before rounding). */
export function vlog(y: v128): v128 {
  let e = i32x4.sub(i32x4.shr_u(y, 23), i32x4.splat(127));
  let m = v128.or(v128.and(y, i32x4.splat(0x007fffff)), i32x4.splat(0x3f800000));
  const big = f32x4.gt(m, f32x4.splat(SQRT2));
  m = v128.bitselect(f32x4.mul(m, f32x4.splat(0.5)), m, big);
  e = i32x4.sub(e, big); // big lanes are −1 (all bits set): e + 1
  const s = f32x4.div(f32x4.sub(m, f32x4.splat(1.0)), f32x4.add(m, f32x4.splat(1.0)));
  const s2 = f32x4.mul(s, s);
  let p = f32x4.add(f32x4.splat(1.0 / 7.0), f32x4.mul(s2, f32x4.splat(1.0 / 9.0)));
  p = f32x4.add(f32x4.splat(1.0 / 5.0), f32x4.mul(s2, p));
  p = f32x4.add(f32x4.splat(1.0 / 3.0), f32x4.mul(s2, p));
  p = f32x4.add(f32x4.splat(1.0), f32x4.mul(s2, p));
  const lnm = f32x4.mul(f32x4.mul(f32x4.splat(2.0), s), p);
  const ef = f32x4.convert_i32x4_s(e);
  return f32x4.add(f32x4.add(f32x4.mul(ef, f32x4.splat(LN2_HI)), lnm), f32x4.mul(ef, f32x4.splat(LN2_LO)));
}

/** softplus(x) = ln(1 + eˣ), x itself above 20 (PyTorch's threshold). ln(1 + e) is corrected for the rounding
 * of 1 + e (w = 1 + e, ln w · e/(w − 1)); below e = 1e-4 the series e(1 − e/2) is used. */
export function vsoftplus(x: v128): v128 {
  const e = vexp(f32x4.min(x, f32x4.splat(20.0)));
  const w = f32x4.add(f32x4.splat(1.0), e);
  const small = f32x4.lt(e, f32x4.splat(1e-4));
  const wm1 = v128.bitselect(f32x4.splat(1.0), f32x4.sub(w, f32x4.splat(1.0)), small);
  const l1p = f32x4.mul(vlog(w), f32x4.div(e, wm1));
  const series = f32x4.mul(e, f32x4.sub(f32x4.splat(1.0), f32x4.mul(e, f32x4.splat(0.5))));
  const sp = v128.bitselect(series, l1p, small);
  return v128.bitselect(x, sp, f32x4.gt(x, f32x4.splat(20.0)));
}

/** σ(x) = 1/(1 + e⁻ˣ) on four lanes. */
export function vsigmoid(x: v128): v128 {
  return f32x4.div(f32x4.splat(1.0), f32x4.add(f32x4.splat(1.0), vexp(f32x4.neg(x))));
}

export function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) +
    (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}
