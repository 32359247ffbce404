import assert from "node:assert/strict";
import {
  centeredGradientInto,
  medianInPlace,
  resizeLinearInto,
  warpCubic3Into,
} from "../../lib/data/tvl1_ops.ts";

function lcg(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 16807) % 2147483647) / 2147483647;
}

/** Brute-force k×k median with replicated borders. */
function medianRef(img: Float32Array, w: number, h: number, k: number): Float32Array {
  const r = (k - 1) / 2;
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const vals: number[] = [];
      for (let dy = -r; dy <= r; dy++) {
        for (let dx = -r; dx <= r; dx++) {
          const yy = Math.min(h - 1, Math.max(0, y + dy));
          const xx = Math.min(w - 1, Math.max(0, x + dx));
          vals.push(img[yy * w + xx]);
        }
      }
      vals.sort((a, b) => a - b);
      out[y * w + x] = vals[(vals.length - 1) / 2];
    }
  }
  return out;
}

Deno.test("medianInPlace: exact 5x5 and 3x3 medians with replicated borders (random, ties, tiny images)", () => {
  const rnd = lcg(7);
  for (const [w, h] of [[23, 17], [2, 2], [5, 1], [1, 6]]) {
    for (const kind of ["random", "ties"]) {
      const img = new Float32Array(w * h).map(() =>
        kind === "random" ? rnd() * 2 - 1 : Math.floor(rnd() * 3)
      );
      for (const k of [3, 5]) {
        const got = img.slice();
        medianInPlace(got, w, h, k, new Float32Array(w * h));
        assert.deepEqual(got, medianRef(img, w, h, k), `${w}x${h} ${kind} k=${k}`);
      }
    }
  }
  assert.throws(() => medianInPlace(new Float32Array(4), 2, 2, 7, new Float32Array(4)), RangeError);
});

Deno.test("resizeLinearInto: OpenCV INTER_LINEAR coordinates with clamped borders", () => {
  // A ramp f(x) = x resized 10 -> 8 with scale 1.25: sx = (dx + 0.5) * 1.25 - 0.5 clamped to [0, 9].
  const w = 10, h = 1;
  const src = new Float32Array(w).map((_, x) => x);
  const dst = new Float32Array(8);
  resizeLinearInto(src, w, h, dst, 8, 1, 1.25, 1);
  const expected = Array.from({ length: 8 }, (_, dx) => Math.min(9, Math.max(0, (dx + 0.5) * 1.25 - 0.5)));
  for (let i = 0; i < 8; i++) {
    assert.ok(Math.abs(dst[i] - expected[i]) < 1e-6, `dx=${i}: ${dst[i]} vs ${expected[i]}`);
  }
  // Upsampling a constant stays constant.
  const up = new Float32Array(25);
  resizeLinearInto(new Float32Array(9).fill(3.5), 3, 3, up, 5, 5, 3 / 5, 3 / 5);
  assert.ok(up.every((x) => x === 3.5));
});

Deno.test("warpCubic3Into: zero flow is the identity, integer flow a shift with 0 outside", () => {
  const w = 9, h = 7;
  const rnd = lcg(3);
  const a = new Float32Array(w * h).map(() => rnd() * 255);
  const b = a.map((x) => x * 2);
  const c = a.map((x) => -x);
  const out = [new Float32Array(w * h), new Float32Array(w * h), new Float32Array(w * h)] as const;
  const zero = new Float32Array(w * h);
  warpCubic3Into(a, b, c, w, h, zero, zero, ...out);
  assert.deepEqual(out[0], a);
  assert.deepEqual(out[1], b);
  assert.deepEqual(out[2], c);
  // u = +1: out(y, x) = a(y, x + 1), and 0 on the last column (constant border).
  warpCubic3Into(a, b, c, w, h, new Float32Array(w * h).fill(1), zero, ...out);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const want = x + 1 < w ? a[y * w + x + 1] : 0;
      assert.ok(Math.abs(out[0][y * w + x] - want) < 1e-4, `(${x}, ${y})`);
    }
  }
  // A fractional flow against the Keys kernel written out (a = -0.75, OpenCV's INTER_CUBIC):
  // W(s) = (a+2)|s|^3 - (a+3)|s|^2 + 1 for |s| <= 1, a|s|^3 - 5a|s|^2 + 8a|s| - 4a for 1 < |s| < 2.
  const A = -0.75;
  const W = (s: number) => {
    s = Math.abs(s);
    return s <= 1
      ? (A + 2) * s ** 3 - (A + 3) * s ** 2 + 1
      : s < 2
      ? A * s ** 3 - 5 * A * s ** 2 + 8 * A * s - 4 * A
      : 0;
  };
  const fu = new Float32Array(w * h).map(() => rnd() * 4 - 2);
  const fv = new Float32Array(w * h).map(() => rnd() * 4 - 2);
  warpCubic3Into(a, b, c, w, h, fu, fv, ...out);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const X = x + fu[y * w + x], Y = y + fv[y * w + x];
      let want = 0;
      for (let yy = Math.floor(Y) - 1; yy <= Math.floor(Y) + 2; yy++) {
        for (let xx = Math.floor(X) - 1; xx <= Math.floor(X) + 2; xx++) {
          if (xx >= 0 && xx < w && yy >= 0 && yy < h) want += W(X - xx) * W(Y - yy) * a[yy * w + xx];
        }
      }
      // float32 output of values up to ~300: rounding error <= 2e-5.
      assert.ok(Math.abs(out[0][y * w + x] - want) < 1e-4, `(${x}, ${y}): ${out[0][y * w + x]} vs ${want}`);
    }
  }
});

Deno.test("centeredGradientInto: central inside, half one-sided on the border", () => {
  const w = 5, h = 4;
  const f = new Float32Array(w * h).map((_, i) => (i % w) ** 2 + 10 * Math.floor(i / w));
  const dx = new Float32Array(w * h), dy = new Float32Array(w * h);
  centeredGradientInto(f, w, h, dx, dy);
  // x^2: interior (f[x+1] - f[x-1]) / 2 = 2x; x = 0: (1 - 0) / 2; x = 4: (16 - 9) / 2.
  assert.deepEqual(Array.from(dx.subarray(0, w)), [0.5, 2, 4, 6, 3.5]);
  // 10y: interior 10, border rows 5.
  assert.deepEqual(Array.from({ length: h }, (_, y) => dy[y * w + 2]), [5, 10, 10, 5]);
});
