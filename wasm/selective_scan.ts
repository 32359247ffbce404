// AssemblyScript source of the WebAssembly SIMD selective-scan kernels used by the tfjs `cpu` backend
// (lib/ops/selective_scan_simd.ts). Build: `bash scripts/build_wasm.sh` (writes lib/ops/selective_scan_simd_wasm.ts).
//
// Same recurrence and backward as lib/ops/selective_scan_cpu.ts (merba-model.md §2), in float32 with 128-bit
// SIMD over the state dimension n (n must be a multiple of 4): per (batch, channel) lane
//   Δ[t] = softplus(delta[t] + bias),  h[t] = exp(Δ[t]·A) ⊙ h[t−1] + Δ[t]·B[:,t]·u[t],
//   out[t] = (C[:,t]·h[t] + D·u[t]) · silu(z[t]).
// Element-wise transcendental work (softplus, sigmoid, silu) is done four time steps at a time in a pre-pass.
// Every pointer is a byte offset into this module's memory, chosen by the caller; 0 means "absent".
// Inputs read by the pre-pass may be read up to 3 floats past their end: the caller leaves 16 bytes of slack.

import { hsum, vexp, vsigmoid, vsoftplus } from "./vmath";

/** Copies batch bi of a [b, n, l] float array to dst as [l, n]. */
function transposeBatch(src: usize, bi: i32, n: i32, l: i32, dst: usize): void {
  const base = src + (<usize> (bi * n * l) << 2);
  for (let k = 0; k < n; k++) {
    const row = base + (<usize> (k * l) << 2);
    for (let t = 0; t < l; t++) {
      store<f32>(dst + (<usize> (t * n + k) << 2), load<f32>(row + (<usize> t << 2)));
    }
  }
}

/** Pre-pass of one lane, four steps at a time: dt[t] = softplus?(delta[t] + bias); when sigOut ≠ 0 also
 * σ(delta[t] + bias); when z ≠ 0, zOut[t] = silu(z[t]) (forward) or σ(z[t]) (backward, zSigmoid = true). */
function prepass(
  l: i32,
  delta: usize,
  bias: f32,
  softplus: bool,
  dt: usize,
  sigOut: usize,
  z: usize,
  zOut: usize,
  zSigmoid: bool,
): void {
  const vb = f32x4.splat(bias);
  for (let t = 0; t < l; t += 4) {
    const off = <usize> t << 2;
    const x = f32x4.add(v128.load(delta + off), vb);
    if (softplus) {
      v128.store(dt + off, vsoftplus(x));
      if (sigOut) v128.store(sigOut + off, vsigmoid(x));
    } else v128.store(dt + off, x);
    if (z) {
      const zv = v128.load(z + off);
      const sz = vsigmoid(zv);
      v128.store(zOut + off, zSigmoid ? sz : f32x4.mul(zv, sz));
    }
  }
}

/** Bytes of scratch {@link scanForward} needs. */
export function forwardScratchBytes(l: i32, n: i32): i32 {
  const lp = (l + 3) & ~3;
  return (2 * l * n + n + 2 * lp) * 4;
}

/** Forward scan: out [b, d, l] and, when last ≠ 0, the last state [b, d, n]. */
export function scanForward(
  b: i32,
  d: i32,
  l: i32,
  n: i32,
  u: usize,
  delta: usize,
  A: usize,
  B: usize,
  C: usize,
  D: usize,
  z: usize,
  bias: usize,
  softplus: bool,
  out: usize,
  last: usize,
  scratch: usize,
): void {
  const lp = (l + 3) & ~3;
  const ln4 = <usize> (l * n) << 2;
  const Bt = scratch;
  const Ct = Bt + ln4;
  const h = Ct + ln4;
  const dt = h + (<usize> n << 2);
  const gz = dt + (<usize> lp << 2);
  const n4 = <usize> n << 2;
  for (let bi = 0; bi < b; bi++) {
    transposeBatch(B, bi, n, l, Bt);
    transposeBatch(C, bi, n, l, Ct);
    for (let di = 0; di < d; di++) {
      const lane = <usize> ((bi * d + di) * l) << 2;
      const aRow = A + (<usize> (di * n) << 2);
      memory.fill(h, 0, n4);
      prepass(
        l,
        delta + lane,
        bias ? load<f32>(bias + (<usize> di << 2)) : 0,
        softplus,
        dt,
        0,
        z ? z + lane : 0,
        gz,
        false,
      );
      const dD: f32 = D ? load<f32>(D + (<usize> di << 2)) : 0;
      for (let t = 0; t < l; t++) {
        const t4 = <usize> t << 2;
        const dtt = load<f32>(dt + t4);
        const ut = load<f32>(u + lane + t4);
        const vdt = f32x4.splat(dtt);
        const vdtu = f32x4.splat(dtt * ut);
        const o = <usize> (t * n) << 2;
        let acc = f32x4.splat(0);
        for (let j: usize = 0; j < n4; j += 16) {
          const a = vexp(f32x4.mul(vdt, v128.load(aRow + j)));
          const hk = f32x4.add(f32x4.mul(a, v128.load(h + j)), f32x4.mul(vdtu, v128.load(Bt + o + j)));
          v128.store(h + j, hk);
          acc = f32x4.add(acc, f32x4.mul(v128.load(Ct + o + j), hk));
        }
        let res = hsum(acc) + dD * ut;
        if (z) res *= load<f32>(gz + t4);
        store<f32>(out + lane + t4, res);
      }
      if (last) memory.copy(last + (<usize> ((bi * d + di) * n) << 2), h, n4);
    }
  }
}

/** Bytes of scratch {@link scanBackward} needs. */
export function backwardScratchBytes(l: i32, n: i32): i32 {
  const lp = (l + 3) & ~3;
  return (4 * l * n + (l + 1) * n + l * n + 3 * lp + 2 * n) * 4;
}

/** Backward scan (recomputes the states per lane). Gradient outputs are fully written (zeroed first);
 * pointers of absent inputs (D, z, bias, gLast) and their gradients are 0. */
export function scanBackward(
  b: i32,
  d: i32,
  l: i32,
  n: i32,
  u: usize,
  delta: usize,
  A: usize,
  B: usize,
  C: usize,
  D: usize,
  z: usize,
  bias: usize,
  softplus: bool,
  G: usize,
  gLast: usize,
  du: usize,
  ddelta: usize,
  dA: usize,
  dB: usize,
  dC: usize,
  dD: usize,
  dz: usize,
  dbias: usize,
  scratch: usize,
): void {
  const lp = (l + 3) & ~3;
  const ln4 = <usize> (l * n) << 2;
  const n4 = <usize> n << 2;
  const Bt = scratch;
  const Ct = Bt + ln4;
  const dBt = Ct + ln4;
  const dCt = dBt + ln4;
  const hs = dCt + ln4; // [l + 1, n]; row 0 = h[−1] = 0
  const decay = hs + ln4 + n4;
  const dts = decay + ln4;
  const sig = dts + (<usize> lp << 2);
  const sz = sig + (<usize> lp << 2);
  const mu = sz + (<usize> lp << 2);
  const dArow = mu + n4;
  memory.fill(dA, 0, <usize> (d * n) << 2);
  if (dD) memory.fill(dD, 0, <usize> d << 2);
  if (dbias) memory.fill(dbias, 0, <usize> d << 2);
  memory.fill(hs, 0, n4);
  for (let bi = 0; bi < b; bi++) {
    transposeBatch(B, bi, n, l, Bt);
    transposeBatch(C, bi, n, l, Ct);
    memory.fill(dBt, 0, ln4);
    memory.fill(dCt, 0, ln4);
    for (let di = 0; di < d; di++) {
      const lane = <usize> ((bi * d + di) * l) << 2;
      const d4 = <usize> di << 2;
      const aRow = A + (<usize> (di * n) << 2);
      const Dd: f32 = D ? load<f32>(D + d4) : 0;
      memory.fill(dArow, 0, n4);
      prepass(
        l,
        delta + lane,
        bias ? load<f32>(bias + d4) : 0,
        softplus,
        dts,
        softplus ? sig : 0,
        z ? z + lane : 0,
        sz,
        true,
      );
      // forward again, keeping ā and h per step
      for (let t = 0; t < l; t++) {
        const t4 = <usize> t << 2;
        const dtt = load<f32>(dts + t4);
        const vdt = f32x4.splat(dtt);
        const vdtu = f32x4.splat(dtt * load<f32>(u + lane + t4));
        const o = <usize> (t * n) << 2;
        for (let j: usize = 0; j < n4; j += 16) {
          const a = vexp(f32x4.mul(vdt, v128.load(aRow + j)));
          v128.store(decay + o + j, a);
          v128.store(
            hs + o + n4 + j,
            f32x4.add(f32x4.mul(a, v128.load(hs + o + j)), f32x4.mul(vdtu, v128.load(Bt + o + j))),
          );
        }
      }
      // reverse: λ[t] = g[t]·C[t] + μ[t], μ[t−1] = ā[t] ⊙ λ[t], from μ = G_last
      if (gLast) memory.copy(mu, gLast + (<usize> ((bi * d + di) * n) << 2), n4);
      else memory.fill(mu, 0, n4);
      let dDd: f32 = 0;
      let dbiasd: f32 = 0;
      for (let t = l - 1; t >= 0; t--) {
        const t4 = <usize> t << 2;
        const o = <usize> (t * n) << 2;
        const ut = load<f32>(u + lane + t4);
        const dtt = load<f32>(dts + t4);
        let gt = load<f32>(G + lane + t4);
        if (z) {
          let yacc = f32x4.splat(0);
          for (let j: usize = 0; j < n4; j += 16) {
            yacc = f32x4.add(yacc, f32x4.mul(v128.load(Ct + o + j), v128.load(hs + o + n4 + j)));
          }
          const zt = load<f32>(z + lane + t4);
          const s = load<f32>(sz + t4);
          store<f32>(dz + lane + t4, gt * (hsum(yacc) + Dd * ut) * s * (1 + zt * (1 - s)));
          gt *= zt * s;
        }
        dDd += gt * ut;
        const vg = f32x4.splat(gt);
        const vu = f32x4.splat(ut);
        const vdt = f32x4.splat(dtt);
        const vdtu = f32x4.splat(dtt * ut);
        let accDelta = f32x4.splat(0);
        let accDu = f32x4.splat(0);
        for (let j: usize = 0; j < n4; j += 16) {
          const lk = f32x4.add(v128.load(mu + j), f32x4.mul(vg, v128.load(Ct + o + j)));
          const ak = v128.load(decay + o + j);
          v128.store(mu + j, f32x4.mul(ak, lk));
          v128.store(
            dCt + o + j,
            f32x4.add(v128.load(dCt + o + j), f32x4.mul(vg, v128.load(hs + o + n4 + j))),
          );
          const daa = f32x4.mul(f32x4.mul(lk, v128.load(hs + o + j)), ak);
          const lb = f32x4.mul(lk, v128.load(Bt + o + j));
          accDelta = f32x4.add(accDelta, f32x4.add(f32x4.mul(daa, v128.load(aRow + j)), f32x4.mul(lb, vu)));
          v128.store(dArow + j, f32x4.add(v128.load(dArow + j), f32x4.mul(daa, vdt)));
          v128.store(dBt + o + j, f32x4.add(v128.load(dBt + o + j), f32x4.mul(lk, vdtu)));
          accDu = f32x4.add(accDu, lb);
        }
        store<f32>(du + lane + t4, gt * Dd + hsum(accDu) * dtt);
        let dDelta = hsum(accDelta);
        if (softplus) dDelta *= load<f32>(sig + t4);
        store<f32>(ddelta + lane + t4, dDelta);
        dbiasd += dDelta;
      }
      if (dD) store<f32>(dD + d4, load<f32>(dD + d4) + dDd);
      if (dbias) store<f32>(dbias + d4, load<f32>(dbias + d4) + dbiasd);
      for (let j: usize = 0; j < n4; j += 16) {
        const p = dA + (<usize> (di * n) << 2) + j;
        v128.store(p, f32x4.add(v128.load(p), v128.load(dArow + j)));
      }
    }
    const base = <usize> (bi * n * l) << 2;
    for (let k = 0; k < n; k++) {
      for (let t = 0; t < l; t++) {
        const src = <usize> (t * n + k) << 2;
        const dst = base + (<usize> (k * l + t) << 2);
        store<f32>(dB + dst, load<f32>(dBt + src));
        store<f32>(dC + dst, load<f32>(dCt + src));
      }
    }
  }
}

/** First free byte after the module's static data; the caller places its buffers from here. */
export function heapBase(): usize {
  return __heap_base;
}
