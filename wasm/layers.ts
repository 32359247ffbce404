// AssemblyScript source of the WebAssembly SIMD layer kernels used by the fused layers on the tfjs `cpu` backend
// (lib/layers/layer_simd.ts). Build: `bash scripts/build_wasm.sh` (writes lib/layers/layer_simd_wasm.ts).
//
// Same maths as the JavaScript kernels of lib/layers/fused.ts, in float32 with 128-bit SIMD. Every pointer is a
// byte offset into this module's memory chosen by the caller, 16-byte aligned, with 16 bytes of slack after each
// region: element-wise kernels run over ⌈n/4⌉·4 elements and may read and write up to 3 floats past the end.
// Channel counts given as `c`, `co` or `d` must be multiples of 4 (the caller checks; other sizes use the
// JavaScript kernels). Outputs that accumulate are zeroed here first.

import { hsum, vexp } from "./vmath";

const GELU_K: f32 = 0.7978845608028654; // √(2/π)
const GELU_A: f32 = 0.044715;

/** σ(x) on four lanes. */
function sigmoid4(v: v128): v128 {
  const one = f32x4.splat(1.0);
  return f32x4.div(one, f32x4.add(one, vexp(f32x4.neg(v))));
}

/** tanh(√(2/π)·(x + 0.044715·x³)) on four lanes, as 1 − 2/(e^{2u} + 1). */
function geluTanh4(v: v128): v128 {
  const one = f32x4.splat(1.0);
  const inner = f32x4.add(v, f32x4.mul(f32x4.splat(GELU_A), f32x4.mul(v, f32x4.mul(v, v))));
  const e = vexp(f32x4.mul(f32x4.splat(2.0 * GELU_K), inner));
  return f32x4.sub(one, f32x4.div(f32x4.splat(2.0), f32x4.add(e, one)));
}

/** y = x·σ(x). */
export function siluForward(x: usize, n: i32, y: usize): void {
  const end = <usize> n << 2;
  for (let o: usize = 0; o < end; o += 16) {
    const v = v128.load(x + o);
    v128.store(y + o, f32x4.mul(v, sigmoid4(v)));
  }
}

/** dx = g·σ·(1 + x·(1 − σ)), σ recomputed from x (the same bits as the forward's). */
export function siluBackward(x: usize, g: usize, n: i32, dx: usize): void {
  const one = f32x4.splat(1.0);
  const end = <usize> n << 2;
  for (let o: usize = 0; o < end; o += 16) {
    const v = v128.load(x + o);
    const si = sigmoid4(v);
    const inner = f32x4.add(one, f32x4.mul(v, f32x4.sub(one, si)));
    v128.store(dx + o, f32x4.mul(f32x4.mul(v128.load(g + o), si), inner));
  }
}

/** GELU (tanh approximation): y = ½·x·(1 + t), t = tanh(√(2/π)·(x + 0.044715·x³)). */
export function geluForward(x: usize, n: i32, y: usize): void {
  const one = f32x4.splat(1.0);
  const half = f32x4.splat(0.5);
  const end = <usize> n << 2;
  for (let o: usize = 0; o < end; o += 16) {
    const v = v128.load(x + o);
    v128.store(y + o, f32x4.mul(f32x4.mul(half, v), f32x4.add(one, geluTanh4(v))));
  }
}

/** dx = g·(½·(1 + t) + ½·x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²)), t recomputed from x. */
export function geluBackward(x: usize, g: usize, n: i32, dx: usize): void {
  const one = f32x4.splat(1.0);
  const half = f32x4.splat(0.5);
  const k = f32x4.splat(GELU_K);
  const a3 = f32x4.splat(3.0 * GELU_A);
  const end = <usize> n << 2;
  for (let o: usize = 0; o < end; o += 16) {
    const v = v128.load(x + o);
    const ti = geluTanh4(v);
    const left = f32x4.mul(half, f32x4.add(one, ti));
    const sech2 = f32x4.sub(one, f32x4.mul(ti, ti));
    const dinner = f32x4.mul(k, f32x4.add(one, f32x4.mul(a3, f32x4.mul(v, v))));
    const right = f32x4.mul(f32x4.mul(f32x4.mul(half, v), sech2), dinner);
    v128.store(dx + o, f32x4.mul(v128.load(g + o), f32x4.add(left, right)));
  }
}

/** LayerNorm over rows of c channels: y = (x − μ)·rstd·γ + β; keeps μ [n] and rstd [n]. */
export function layerNormForward(
  x: usize,
  gamma: usize,
  beta: usize,
  n: i32,
  c: i32,
  eps: f32,
  mean: usize,
  rstd: usize,
  y: usize,
): void {
  const c4 = <usize> c << 2;
  const inv = <f32> 1.0 / <f32> c;
  for (let r = 0; r < n; r++) {
    const o = <usize> r * c4;
    let s = f32x4.splat(0);
    for (let j: usize = 0; j < c4; j += 16) s = f32x4.add(s, v128.load(x + o + j));
    const mu = hsum(s) * inv;
    const m = f32x4.splat(mu);
    let q = f32x4.splat(0);
    for (let j: usize = 0; j < c4; j += 16) {
      const d = f32x4.sub(v128.load(x + o + j), m);
      q = f32x4.add(q, f32x4.mul(d, d));
    }
    const rs: f32 = <f32> 1.0 / Mathf.sqrt(hsum(q) / <f32> c + eps);
    store<f32>(mean + (<usize> r << 2), mu);
    store<f32>(rstd + (<usize> r << 2), rs);
    const vrs = f32x4.splat(rs);
    for (let j: usize = 0; j < c4; j += 16) {
      const h = f32x4.mul(f32x4.sub(v128.load(x + o + j), m), vrs);
      v128.store(y + o + j, f32x4.add(f32x4.mul(h, v128.load(gamma + j)), v128.load(beta + j)));
    }
  }
}

/** LayerNorm backward (xhat = (x − μ)·rstd recomputed, the same bits as the forward's):
 * dx = rstd·(g·γ − mean(g·γ) − xhat·mean(g·γ·xhat)); dγ = Σ g·xhat, dβ = Σ g. */
export function layerNormBackward(
  x: usize,
  g: usize,
  gamma: usize,
  mean: usize,
  rstd: usize,
  n: i32,
  c: i32,
  dx: usize,
  dgamma: usize,
  dbeta: usize,
): void {
  const c4 = <usize> c << 2;
  memory.fill(dgamma, 0, c4);
  memory.fill(dbeta, 0, c4);
  const invc: f32 = <f32> 1.0 / <f32> c;
  for (let r = 0; r < n; r++) {
    const o = <usize> r * c4;
    const m = f32x4.splat(load<f32>(mean + (<usize> r << 2)));
    const vrs = f32x4.splat(load<f32>(rstd + (<usize> r << 2)));
    let s1 = f32x4.splat(0);
    let s2 = f32x4.splat(0);
    for (let j: usize = 0; j < c4; j += 16) {
      const gy = v128.load(g + o + j);
      const h = f32x4.mul(f32x4.sub(v128.load(x + o + j), m), vrs);
      const dh = f32x4.mul(gy, v128.load(gamma + j));
      s1 = f32x4.add(s1, dh);
      s2 = f32x4.add(s2, f32x4.mul(dh, h));
      v128.store(dgamma + j, f32x4.add(v128.load(dgamma + j), f32x4.mul(gy, h)));
      v128.store(dbeta + j, f32x4.add(v128.load(dbeta + j), gy));
    }
    const m1 = f32x4.splat(hsum(s1) * invc);
    const m2 = f32x4.splat(hsum(s2) * invc);
    for (let j: usize = 0; j < c4; j += 16) {
      const h = f32x4.mul(f32x4.sub(v128.load(x + o + j), m), vrs);
      const dh = f32x4.mul(v128.load(g + o + j), v128.load(gamma + j));
      const t = f32x4.sub(f32x4.sub(dh, m1), f32x4.mul(h, m2));
      v128.store(dx + o + j, f32x4.mul(vrs, t));
    }
  }
}

/** Softmax of one row of n scores in place (row padded to ⌈n/4⌉·4 floats in `tmp`). */
function softmaxRow(row: usize, n: i32, tmp: usize): void {
  let m: f32 = -Infinity;
  for (let j = 0; j < n; j++) m = max(m, load<f32>(row + (<usize> j << 2)));
  const np = (n + 3) & ~3;
  const vm = f32x4.splat(m);
  memory.copy(tmp, row, <usize> n << 2);
  let sum: f32 = 0;
  for (let j = 0; j < np; j += 4) {
    const e = vexp(f32x4.sub(v128.load(tmp + (<usize> j << 2)), vm));
    v128.store(tmp + (<usize> j << 2), e);
  }
  for (let j = 0; j < n; j++) sum += load<f32>(tmp + (<usize> j << 2));
  const inv: f32 = <f32> 1.0 / sum;
  for (let j = 0; j < n; j++) store<f32>(row + (<usize> j << 2), load<f32>(tmp + (<usize> j << 2)) * inv);
}

/** Scaled dot-product attention for nb independent heads: q, k, v, o [nb, n, d], p [nb, n, n]
 * (probabilities kept for the backward). tmp: ⌈n/4⌉·4 floats. */
export function attentionForward(
  q: usize,
  k: usize,
  v: usize,
  nb: i32,
  n: i32,
  d: i32,
  scale: f32,
  p: usize,
  o: usize,
  tmp: usize,
): void {
  const d4 = <usize> d << 2;
  const nd4 = <usize> n * d4;
  const n4 = <usize> n << 2;
  const vs = f32x4.splat(scale);
  memory.fill(o, 0, <usize> nb * nd4);
  for (let s = 0; s < nb; s++) {
    const base = <usize> s * nd4;
    for (let i = 0; i < n; i++) {
      const qi = q + base + <usize> i * d4;
      const row = p + (<usize> (s * n + i)) * n4;
      for (let j = 0; j < n; j++) {
        const kj = k + base + <usize> j * d4;
        let acc = f32x4.splat(0);
        for (let c: usize = 0; c < d4; c += 16) {
          acc = f32x4.add(acc, f32x4.mul(v128.load(qi + c), v128.load(kj + c)));
        }
        store<f32>(row + (<usize> j << 2), hsum(f32x4.mul(acc, vs)));
      }
      softmaxRow(row, n, tmp);
      const oi = o + base + <usize> i * d4;
      for (let j = 0; j < n; j++) {
        const pij = f32x4.splat(load<f32>(row + (<usize> j << 2)));
        const vj = v + base + <usize> j * d4;
        for (let c: usize = 0; c < d4; c += 16) {
          v128.store(oi + c, f32x4.add(v128.load(oi + c), f32x4.mul(pij, v128.load(vj + c))));
        }
      }
    }
  }
}

/** Attention backward: dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P))·scale, dQ = dS·K, dK = dSᵀ·Q.
 * tmp: n floats. */
export function attentionBackward(
  q: usize,
  k: usize,
  v: usize,
  p: usize,
  g: usize,
  nb: i32,
  n: i32,
  d: i32,
  scale: f32,
  dq: usize,
  dk: usize,
  dv: usize,
  tmp: usize,
): void {
  const d4 = <usize> d << 2;
  const nd4 = <usize> n * d4;
  const n4 = <usize> n << 2;
  const total = <usize> nb * nd4;
  memory.fill(dq, 0, total);
  memory.fill(dk, 0, total);
  memory.fill(dv, 0, total);
  for (let s = 0; s < nb; s++) {
    const base = <usize> s * nd4;
    for (let i = 0; i < n; i++) {
      const row = p + (<usize> (s * n + i)) * n4;
      const gi = g + base + <usize> i * d4;
      let dot: f32 = 0;
      for (let j = 0; j < n; j++) {
        const vj = v + base + <usize> j * d4;
        const dvj = dv + base + <usize> j * d4;
        const pij = load<f32>(row + (<usize> j << 2));
        const vp = f32x4.splat(pij);
        let acc = f32x4.splat(0);
        for (let c: usize = 0; c < d4; c += 16) {
          const gv = v128.load(gi + c);
          acc = f32x4.add(acc, f32x4.mul(gv, v128.load(vj + c)));
          v128.store(dvj + c, f32x4.add(v128.load(dvj + c), f32x4.mul(vp, gv)));
        }
        const dp = hsum(acc);
        store<f32>(tmp + (<usize> j << 2), dp);
        dot += dp * pij;
      }
      const qi = q + base + <usize> i * d4;
      const dqi = dq + base + <usize> i * d4;
      for (let j = 0; j < n; j++) {
        const dsj: f32 = load<f32>(row + (<usize> j << 2)) * (load<f32>(tmp + (<usize> j << 2)) - dot) *
          scale;
        if (dsj == 0) continue;
        const vds = f32x4.splat(dsj);
        const kj = k + base + <usize> j * d4;
        const dkj = dk + base + <usize> j * d4;
        for (let c: usize = 0; c < d4; c += 16) {
          v128.store(dqi + c, f32x4.add(v128.load(dqi + c), f32x4.mul(vds, v128.load(kj + c))));
          v128.store(dkj + c, f32x4.add(v128.load(dkj + c), f32x4.mul(vds, v128.load(qi + c))));
        }
      }
    }
  }
}

/** Depthwise 1-D cross-correlation along tokens, 'same' padding with `left` zeros on the left:
 * x, y [b, l, c], w [k, c]. */
export function dwConv1dForward(
  x: usize,
  w: usize,
  b: i32,
  l: i32,
  c: i32,
  k: i32,
  left: i32,
  y: usize,
): void {
  const c4 = <usize> c << 2;
  memory.fill(y, 0, <usize> (b * l) * c4);
  for (let s = 0; s < b; s++) {
    const base = <usize> (s * l) * c4;
    for (let t = 0; t < l; t++) {
      const yo = y + base + <usize> t * c4;
      for (let j = 0; j < k; j++) {
        const src = t + j - left;
        if (src < 0 || src >= l) continue;
        const xo = x + base + <usize> src * c4;
        const wo = w + <usize> j * c4;
        for (let ch: usize = 0; ch < c4; ch += 16) {
          v128.store(
            yo + ch,
            f32x4.add(v128.load(yo + ch), f32x4.mul(v128.load(wo + ch), v128.load(xo + ch))),
          );
        }
      }
    }
  }
}

/** Backward of {@link dwConv1dForward}: dx [b, l, c], dw [k, c]. */
export function dwConv1dBackward(
  x: usize,
  w: usize,
  g: usize,
  b: i32,
  l: i32,
  c: i32,
  k: i32,
  left: i32,
  dx: usize,
  dw: usize,
): void {
  const c4 = <usize> c << 2;
  memory.fill(dx, 0, <usize> (b * l) * c4);
  memory.fill(dw, 0, <usize> k * c4);
  for (let s = 0; s < b; s++) {
    const base = <usize> (s * l) * c4;
    for (let t = 0; t < l; t++) {
      const go = g + base + <usize> t * c4;
      for (let j = 0; j < k; j++) {
        const src = t + j - left;
        if (src < 0 || src >= l) continue;
        const xo = base + <usize> src * c4;
        const wo = <usize> j * c4;
        for (let ch: usize = 0; ch < c4; ch += 16) {
          const gy = v128.load(go + ch);
          v128.store(dx + xo + ch, f32x4.add(v128.load(dx + xo + ch), f32x4.mul(v128.load(w + wo + ch), gy)));
          v128.store(dw + wo + ch, f32x4.add(v128.load(dw + wo + ch), f32x4.mul(v128.load(x + xo + ch), gy)));
        }
      }
    }
  }
}

/** Conv 3×3, one pixel of zero padding, stride `st`, no bias: x [b, h, w, ci], kernel [3, 3, ci, co] (co a
 * multiple of 4), y [b, ho, wo, co]. */
export function conv3x3Forward(
  x: usize,
  kern: usize,
  b: i32,
  h: i32,
  w: i32,
  ci: i32,
  co: i32,
  st: i32,
  ho: i32,
  wo: i32,
  y: usize,
): void {
  const co4 = <usize> co << 2;
  memory.fill(y, 0, <usize> (b * ho * wo) * co4);
  for (let s = 0; s < b; s++) {
    for (let oy = 0; oy < ho; oy++) {
      for (let ox = 0; ox < wo; ox++) {
        const yo = y + <usize> ((s * ho + oy) * wo + ox) * co4;
        for (let ky = 0; ky < 3; ky++) {
          const iy = oy * st + ky - 1;
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < 3; kx++) {
            const ix = ox * st + kx - 1;
            if (ix < 0 || ix >= w) continue;
            const xo = x + (<usize> (((s * h + iy) * w + ix) * ci) << 2);
            const ko = kern + <usize> ((ky * 3 + kx) * ci) * co4;
            for (let c = 0; c < ci; c++) {
              const xv = f32x4.splat(load<f32>(xo + (<usize> c << 2)));
              const kc = ko + <usize> c * co4;
              for (let o: usize = 0; o < co4; o += 16) {
                v128.store(yo + o, f32x4.add(v128.load(yo + o), f32x4.mul(xv, v128.load(kc + o))));
              }
            }
          }
        }
      }
    }
  }
}

/** Backward of {@link conv3x3Forward}: dx [b, h, w, ci], dk [3, 3, ci, co]. */
export function conv3x3Backward(
  x: usize,
  kern: usize,
  g: usize,
  b: i32,
  h: i32,
  w: i32,
  ci: i32,
  co: i32,
  st: i32,
  ho: i32,
  wo: i32,
  dx: usize,
  dk: usize,
): void {
  const co4 = <usize> co << 2;
  memory.fill(dx, 0, <usize> (b * h * w * ci) << 2);
  memory.fill(dk, 0, <usize> (9 * ci) * co4);
  for (let s = 0; s < b; s++) {
    for (let oy = 0; oy < ho; oy++) {
      for (let ox = 0; ox < wo; ox++) {
        const go = g + <usize> ((s * ho + oy) * wo + ox) * co4;
        for (let ky = 0; ky < 3; ky++) {
          const iy = oy * st + ky - 1;
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < 3; kx++) {
            const ix = ox * st + kx - 1;
            if (ix < 0 || ix >= w) continue;
            const xoff = <usize> (((s * h + iy) * w + ix) * ci) << 2;
            const ko = <usize> ((ky * 3 + kx) * ci) * co4;
            for (let c = 0; c < ci; c++) {
              const kc = ko + <usize> c * co4;
              const xv = f32x4.splat(load<f32>(x + xoff + (<usize> c << 2)));
              let acc = f32x4.splat(0);
              for (let o: usize = 0; o < co4; o += 16) {
                const gy = v128.load(go + o);
                acc = f32x4.add(acc, f32x4.mul(gy, v128.load(kern + kc + o)));
                v128.store(dk + kc + o, f32x4.add(v128.load(dk + kc + o), f32x4.mul(xv, gy)));
              }
              const at = dx + xoff + (<usize> c << 2);
              store<f32>(at, load<f32>(at) + hsum(acc));
            }
          }
        }
      }
    }
  }
}

/** Linear layer y = x·W (+ b): x [n, i], W [i, o], b [o] (0: none), y [n, o]. Any o: sixteen columns per pass
 * with the accumulators in registers, then four, then the last o mod 4 one at a time. */
export function linearForward(x: usize, w: usize, bias: usize, n: i32, i: i32, o: i32, y: usize): void {
  const o4 = <usize> o << 2;
  const o16 = <usize> (o & ~15) << 2;
  const ov = <usize> (o & ~3) << 2;
  for (let r = 0; r < n; r++) {
    const yr = y + <usize> r * o4;
    const xr = x + (<usize> (r * i) << 2);
    let c: usize = 0;
    for (; c < o16; c += 64) {
      let a0 = bias ? v128.load(bias + c) : f32x4.splat(0);
      let a1 = bias ? v128.load(bias + c + 16) : f32x4.splat(0);
      let a2 = bias ? v128.load(bias + c + 32) : f32x4.splat(0);
      let a3 = bias ? v128.load(bias + c + 48) : f32x4.splat(0);
      for (let k = 0; k < i; k++) {
        const xv = f32x4.splat(load<f32>(xr + (<usize> k << 2)));
        const wk = w + <usize> k * o4 + c;
        a0 = f32x4.add(a0, f32x4.mul(xv, v128.load(wk)));
        a1 = f32x4.add(a1, f32x4.mul(xv, v128.load(wk + 16)));
        a2 = f32x4.add(a2, f32x4.mul(xv, v128.load(wk + 32)));
        a3 = f32x4.add(a3, f32x4.mul(xv, v128.load(wk + 48)));
      }
      v128.store(yr + c, a0);
      v128.store(yr + c + 16, a1);
      v128.store(yr + c + 32, a2);
      v128.store(yr + c + 48, a3);
    }
    for (; c < ov; c += 16) {
      let a = bias ? v128.load(bias + c) : f32x4.splat(0);
      for (let k = 0; k < i; k++) {
        a = f32x4.add(
          a,
          f32x4.mul(f32x4.splat(load<f32>(xr + (<usize> k << 2))), v128.load(w + <usize> k * o4 + c)),
        );
      }
      v128.store(yr + c, a);
    }
    for (; c < o4; c += 4) {
      let a: f32 = bias ? load<f32>(bias + c) : 0;
      for (let k = 0; k < i; k++) a += load<f32>(xr + (<usize> k << 2)) * load<f32>(w + <usize> k * o4 + c);
      store<f32>(yr + c, a);
    }
  }
}

/** Backward of {@link linearForward}: dx = g·Wᵀ [n, i], dW = xᵀ·g [i, o], db = Σ_rows g [o] (0: not wanted).
 * `wt` is scratch for Wᵀ [o, i] (used when i is a multiple of 4: dx rows are then {@link linearForward} of
 * g by Wᵀ). dW and db accumulate four rows per pass. */
export function linearBackward(
  x: usize,
  w: usize,
  g: usize,
  n: i32,
  i: i32,
  o: i32,
  dx: usize,
  dw: usize,
  db: usize,
  wt: usize,
): void {
  const o4 = <usize> o << 2;
  const ov = <usize> (o & ~3) << 2;
  const i4 = <usize> i << 2;
  // dx
  if ((i & 3) == 0) {
    for (let k = 0; k < i; k++) {
      for (let c = 0; c < o; c++) {
        store<f32>(wt + (<usize> (c * i + k) << 2), load<f32>(w + (<usize> (k * o + c) << 2)));
      }
    }
    linearForward(g, wt, 0, n, o, i, dx);
  } else {
    for (let r = 0; r < n; r++) {
      const gr = g + <usize> r * o4;
      const dxr = dx + <usize> r * i4;
      for (let k = 0; k < i; k++) {
        const wk = w + <usize> k * o4;
        let acc = f32x4.splat(0);
        let c: usize = 0;
        for (; c < ov; c += 16) acc = f32x4.add(acc, f32x4.mul(v128.load(gr + c), v128.load(wk + c)));
        let tail: f32 = 0;
        for (; c < o4; c += 4) tail += load<f32>(gr + c) * load<f32>(wk + c);
        store<f32>(dxr + (<usize> k << 2), hsum(acc) + tail);
      }
    }
  }
  // dW, db
  memory.fill(dw, 0, <usize> i * o4);
  if (db) memory.fill(db, 0, o4);
  let r = 0;
  for (; r + 4 <= n; r += 4) {
    const g0 = g + <usize> r * o4;
    const g1 = g0 + o4;
    const g2 = g1 + o4;
    const g3 = g2 + o4;
    const x0 = x + <usize> r * i4;
    const x1 = x0 + i4;
    const x2 = x1 + i4;
    const x3 = x2 + i4;
    if (db) {
      let c: usize = 0;
      for (; c < ov; c += 16) {
        const s = f32x4.add(
          f32x4.add(v128.load(g0 + c), v128.load(g1 + c)),
          f32x4.add(v128.load(g2 + c), v128.load(g3 + c)),
        );
        v128.store(db + c, f32x4.add(v128.load(db + c), s));
      }
      for (; c < o4; c += 4) {
        store<f32>(
          db + c,
          load<f32>(db + c) +
            ((load<f32>(g0 + c) + load<f32>(g1 + c)) + (load<f32>(g2 + c) + load<f32>(g3 + c))),
        );
      }
    }
    for (let k = 0; k < i; k++) {
      const kk = <usize> k << 2;
      const s0 = load<f32>(x0 + kk);
      const s1 = load<f32>(x1 + kk);
      const s2 = load<f32>(x2 + kk);
      const s3 = load<f32>(x3 + kk);
      const v0 = f32x4.splat(s0);
      const v1 = f32x4.splat(s1);
      const v2 = f32x4.splat(s2);
      const v3 = f32x4.splat(s3);
      const dwk = dw + <usize> k * o4;
      let c: usize = 0;
      for (; c < ov; c += 16) {
        const t = f32x4.add(
          f32x4.add(f32x4.mul(v0, v128.load(g0 + c)), f32x4.mul(v1, v128.load(g1 + c))),
          f32x4.add(f32x4.mul(v2, v128.load(g2 + c)), f32x4.mul(v3, v128.load(g3 + c))),
        );
        v128.store(dwk + c, f32x4.add(v128.load(dwk + c), t));
      }
      for (; c < o4; c += 4) {
        const t = (s0 * load<f32>(g0 + c) + s1 * load<f32>(g1 + c)) +
          (s2 * load<f32>(g2 + c) + s3 * load<f32>(g3 + c));
        store<f32>(dwk + c, load<f32>(dwk + c) + t);
      }
    }
  }
  for (; r < n; r++) {
    const gr = g + <usize> r * o4;
    const xr = x + <usize> r * i4;
    if (db) {
      let c: usize = 0;
      for (; c < ov; c += 16) v128.store(db + c, f32x4.add(v128.load(db + c), v128.load(gr + c)));
      for (; c < o4; c += 4) store<f32>(db + c, load<f32>(db + c) + load<f32>(gr + c));
    }
    for (let k = 0; k < i; k++) {
      const xs = load<f32>(xr + (<usize> k << 2));
      const xv = f32x4.splat(xs);
      const dwk = dw + <usize> k * o4;
      let c: usize = 0;
      for (; c < ov; c += 16) {
        v128.store(dwk + c, f32x4.add(v128.load(dwk + c), f32x4.mul(xv, v128.load(gr + c))));
      }
      for (; c < o4; c += 4) store<f32>(dwk + c, load<f32>(dwk + c) + xs * load<f32>(gr + c));
    }
  }
}

/** First byte after this module's static data: the caller's regions start here. */
export function heapBase(): usize {
  return __heap_base;
}
