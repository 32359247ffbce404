/**
 * Image kernels behind {@link opticalFlowTVL1}: bilinear pyramid resizing, bicubic warping, centred
 * gradients and the 5×5 median filter. All work in place on preallocated `Float32Array`s, row-major
 * `index = y * width + x`, so that the solver allocates nothing per iteration.
 *
 * Each kernel states the OpenCV 4.6 operation whose semantics it follows (border rule, coordinates), because
 * the solver is checked against OpenCV's `DualTVL1OpticalFlow`.
 *
 * @module
 */

/**
 * Bilinear resize `src [sh, sw] -> dst [dh, dw]` with OpenCV `INTER_LINEAR` coordinates:
 * `sx = (dx + 0.5) * scaleX - 0.5`, and indices clamped to the image (replicate border).
 *
 * `scaleX`/`scaleY` are source pixels per destination pixel. OpenCV uses `1 / fx` when a scale factor is
 * given (pyramid construction) and `sw / dw` when a size is given (flow upsampling); callers pass which.
 * No antialiasing (as OpenCV's `INTER_LINEAR`).
 */
export function resizeLinearInto(
  src: Float32Array,
  sw: number,
  sh: number,
  dst: Float32Array,
  dw: number,
  dh: number,
  scaleX: number,
  scaleY: number,
): void {
  for (let dy = 0; dy < dh; dy++) {
    const fyRaw = (dy + 0.5) * scaleY - 0.5;
    let y0 = Math.floor(fyRaw);
    let wy = fyRaw - y0;
    if (y0 < 0) {
      y0 = 0;
      wy = 0;
    }
    if (y0 >= sh - 1) {
      y0 = sh - 1;
      wy = 0;
    }
    const y1 = y0 + 1 < sh ? y0 + 1 : y0;
    const r0 = y0 * sw;
    const r1 = y1 * sw;
    const o = dy * dw;
    for (let dx = 0; dx < dw; dx++) {
      const fxRaw = (dx + 0.5) * scaleX - 0.5;
      let x0 = Math.floor(fxRaw);
      let wx = fxRaw - x0;
      if (x0 < 0) {
        x0 = 0;
        wx = 0;
      }
      if (x0 >= sw - 1) {
        x0 = sw - 1;
        wx = 0;
      }
      const x1 = x0 + 1 < sw ? x0 + 1 : x0;
      const top = src[r0 + x0] * (1 - wx) + src[r0 + x1] * wx;
      const bot = src[r1 + x0] * (1 - wx) + src[r1 + x1] * wx;
      dst[o + dx] = top * (1 - wy) + bot * wy;
    }
  }
}

/**
 * Centred differences `dx = (f[x+1] - f[x-1]) / 2`, `dy = (f[y+1] - f[y-1]) / 2`; at the border the missing
 * neighbour is replaced by the pixel itself, giving half a one-sided difference (OpenCV TV-L1's
 * `centeredGradient`). Requires `w, h >= 2`.
 */
export function centeredGradientInto(
  src: Float32Array,
  w: number,
  h: number,
  dx: Float32Array,
  dy: Float32Array,
): void {
  for (let y = 0; y < h; y++) {
    const r = y * w;
    const up = (y > 0 ? y - 1 : 0) * w;
    const down = (y < h - 1 ? y + 1 : h - 1) * w;
    for (let x = 0; x < w; x++) {
      const xl = x > 0 ? x - 1 : 0;
      const xr = x < w - 1 ? x + 1 : w - 1;
      dx[r + x] = 0.5 * (src[r + xr] - src[r + xl]);
      dy[r + x] = 0.5 * (src[down + x] - src[up + x]);
    }
  }
}

/** Keys cubic convolution weight parameter used by OpenCV's `INTER_CUBIC`. */
const CUBIC_A = -0.75;

/**
 * Warps three images by the flow with bicubic interpolation (OpenCV `remap(..., INTER_CUBIC)` with its
 * default `BORDER_CONSTANT` 0): `out(y, x) = img(y + v(y, x), x + u(y, x))` for `img` in `(a, b, c)`.
 *
 * Cubic weights (Keys, a = −0.75) for fraction t:
 * `w0 = a(t+1)³ − 5a(t+1)² + 8a(t+1) − 4a`, `w1 = (a+2)t³ − (a+3)t² + 1`, `w2 = w1(1−t)`, `w3 = 1 − w0 − w1 − w2`.
 *
 * Note: OpenCV rounds the sampling position to 1/32 px (`INTER_TAB_SIZE`) before looking up the weights; this
 * kernel uses the exact position.
 */
export function warpCubic3Into(
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  w: number,
  h: number,
  u: Float32Array,
  v: Float32Array,
  outA: Float32Array,
  outB: Float32Array,
  outC: Float32Array,
): void {
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const X = x + u[i];
      const Y = y + v[i];
      let ix = Math.floor(X);
      let iy = Math.floor(Y);
      const tx = X - ix;
      const ty = Y - iy;
      if (!(ix + 3 > 0 && ix - 1 < w && iy + 3 > 0 && iy - 1 < h)) {
        // Entirely outside (or NaN): the constant border value.
        outA[i] = 0;
        outB[i] = 0;
        outC[i] = 0;
        continue;
      }
      // Weights for taps at offsets -1, 0, 1, 2.
      const tx1 = tx + 1;
      const wx0 = ((CUBIC_A * tx1 - 5 * CUBIC_A) * tx1 + 8 * CUBIC_A) * tx1 - 4 * CUBIC_A;
      const wx1 = ((CUBIC_A + 2) * tx - (CUBIC_A + 3)) * tx * tx + 1;
      const ux = 1 - tx;
      const wx2 = ((CUBIC_A + 2) * ux - (CUBIC_A + 3)) * ux * ux + 1;
      const wx3 = 1 - wx0 - wx1 - wx2;
      const ty1 = ty + 1;
      const wy0 = ((CUBIC_A * ty1 - 5 * CUBIC_A) * ty1 + 8 * CUBIC_A) * ty1 - 4 * CUBIC_A;
      const wy1 = ((CUBIC_A + 2) * ty - (CUBIC_A + 3)) * ty * ty + 1;
      const uy = 1 - ty;
      const wy2 = ((CUBIC_A + 2) * uy - (CUBIC_A + 3)) * uy * uy + 1;
      const wy3 = 1 - wy0 - wy1 - wy2;
      ix -= 1;
      iy -= 1;
      let sa = 0;
      let sb = 0;
      let sc = 0;
      if (ix >= 0 && ix + 3 < w && iy >= 0 && iy + 3 < h) {
        // Fast path: the 4×4 neighbourhood is inside the image.
        let r = iy * w + ix;
        for (let k = 0; k < 4; k++, r += w) {
          const wy = k === 0 ? wy0 : k === 1 ? wy1 : k === 2 ? wy2 : wy3;
          sa += wy * (wx0 * a[r] + wx1 * a[r + 1] + wx2 * a[r + 2] + wx3 * a[r + 3]);
          sb += wy * (wx0 * b[r] + wx1 * b[r + 1] + wx2 * b[r + 2] + wx3 * b[r + 3]);
          sc += wy * (wx0 * c[r] + wx1 * c[r + 1] + wx2 * c[r + 2] + wx3 * c[r + 3]);
        }
      } else {
        // Border: taps outside the image read 0.
        for (let k = 0; k < 4; k++) {
          const yy = iy + k;
          if (yy < 0 || yy >= h) continue;
          const wy = k === 0 ? wy0 : k === 1 ? wy1 : k === 2 ? wy2 : wy3;
          const r = yy * w;
          for (let j = 0; j < 4; j++) {
            const xx = ix + j;
            if (xx < 0 || xx >= w) continue;
            const wgt = wy * (j === 0 ? wx0 : j === 1 ? wx1 : j === 2 ? wx2 : wx3);
            sa += wgt * a[r + xx];
            sb += wgt * b[r + xx];
            sc += wgt * c[r + xx];
          }
        }
      }
      outA[i] = sa;
      outB[i] = sb;
      outC[i] = sc;
    }
  }
}

/**
 * 5×5 median filter with replicated borders (OpenCV `medianBlur(src, dst, 5)` on `CV_32F`), in place through
 * the scratch buffer `tmp` (same size as `img`).
 *
 * Each 5×5 window is five vertically sorted columns (a column's sort is shared by the five windows that
 * contain it). The median of the previous window is the guess `m`: counting the values below and equal to `m`
 * in each sorted column gives the rank of `m` among the 25; if it is not the 13th, the answer is the k-th
 * value below (or above) `m`, found by merging the sorted column prefixes (suffixes) from `m` outwards, where k
 * is the rank difference, usually 1–3 on smooth flow. The result is exact.
 */
function median5InPlace(img: Float32Array, w: number, h: number, tmp: Float32Array): void {
  const cols = scratchCols(w + 4);
  const below = COUNT_BELOW, equal = COUNT_EQUAL, ptr = MERGE_PTR;
  for (let y = 0; y < h; y++) {
    // Sorted 5-tall columns for x = -2 .. w + 1 (replicate border), column cx at cols[5cx .. 5cx + 4].
    const r0 = clampRow(y - 2, h) * w;
    const r1 = clampRow(y - 1, h) * w;
    const r2 = y * w;
    const r3 = clampRow(y + 1, h) * w;
    const r4 = clampRow(y + 2, h) * w;
    for (let cx = 0; cx < w + 4; cx++) {
      const x = cx < 2 ? 0 : cx - 2 >= w ? w - 1 : cx - 2;
      let a0 = img[r0 + x], a1 = img[r1 + x], a2 = img[r2 + x], a3 = img[r3 + x], a4 = img[r4 + x], t;
      // Optimal 9-comparator sorting network for 5 values.
      if (a0 > a1) (t = a0, a0 = a1, a1 = t);
      if (a3 > a4) (t = a3, a3 = a4, a4 = t);
      if (a2 > a4) (t = a2, a2 = a4, a4 = t);
      if (a2 > a3) (t = a2, a2 = a3, a3 = t);
      if (a0 > a3) (t = a0, a0 = a3, a3 = t);
      if (a0 > a2) (t = a0, a0 = a2, a2 = t);
      if (a1 > a4) (t = a1, a1 = a4, a4 = t);
      if (a1 > a3) (t = a1, a1 = a3, a3 = t);
      if (a1 > a2) (t = a1, a1 = a2, a2 = t);
      const o = cx * 5;
      cols[o] = a0;
      cols[o + 1] = a1;
      cols[o + 2] = a2;
      cols[o + 3] = a3;
      cols[o + 4] = a4;
    }
    // First guess: the median of the first window's centre column.
    let m = cols[12];
    for (let x = 0; x < w; x++) {
      // The window of output x is columns cx = x .. x + 4: column j at cols[5x + 5j .. 5x + 5j + 4].
      const base = x * 5;
      let nBelow = 0;
      for (let j = 0; j < 5; j++) {
        const o = base + 5 * j;
        const l = +(cols[o] < m) + +(cols[o + 1] < m) + +(cols[o + 2] < m) + +(cols[o + 3] < m) +
          +(cols[o + 4] < m);
        below[j] = l;
        nBelow += l;
      }
      let nEqual = 0;
      if (nBelow <= 12) {
        for (let j = 0; j < 5; j++) {
          const o = base + 5 * j;
          const e = +(cols[o] === m) + +(cols[o + 1] === m) + +(cols[o + 2] === m) + +(cols[o + 3] === m) +
            +(cols[o + 4] === m);
          equal[j] = e;
          nEqual += e;
        }
      }
      if (nBelow > 12) {
        // The median is the (nBelow − 12)-th largest value below m: merge the columns' prefixes downwards.
        for (let j = 0; j < 5; j++) ptr[j] = below[j] - 1;
        for (let k = nBelow - 12; k > 0; k--) {
          let best = -Infinity, bj = 0;
          for (let j = 0; j < 5; j++) {
            if (ptr[j] >= 0) {
              const c = cols[base + 5 * j + ptr[j]];
              if (c > best) (best = c, bj = j);
            }
          }
          ptr[bj]--;
          m = best;
        }
      } else if (nBelow + nEqual <= 12) {
        // The (13 − nBelow − nEqual)-th smallest value above m: merge the columns' suffixes upwards.
        for (let j = 0; j < 5; j++) ptr[j] = below[j] + equal[j];
        for (let k = 13 - nBelow - nEqual; k > 0; k--) {
          let best = Infinity, bj = 0;
          for (let j = 0; j < 5; j++) {
            if (ptr[j] <= 4) {
              const c = cols[base + 5 * j + ptr[j]];
              if (c < best) (best = c, bj = j);
            }
          }
          ptr[bj]++;
          m = best;
        }
      }
      tmp[y * w + x] = m;
    }
  }
  img.set(tmp.subarray(0, w * h));
}

const WIN = new Float32Array(9);
const COUNT_BELOW = new Int32Array(5);
const COUNT_EQUAL = new Int32Array(5);
const MERGE_PTR = new Int32Array(5);
let COLS = new Float32Array(0);

function scratchCols(n: number): Float32Array {
  if (COLS.length < n * 5) COLS = new Float32Array(n * 5);
  return COLS;
}

function clampRow(y: number, h: number): number {
  return y < 0 ? 0 : y >= h ? h - 1 : y;
}

/** The (k+1)-th smallest of `a[0..n)`, by Hoare/Wirth selection (reorders `a`). */
function selectK(a: Float32Array, n: number, k: number): number {
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const pivot = a[k];
    let i = lo;
    let j = hi;
    do {
      while (a[i] < pivot) i++;
      while (pivot < a[j]) j--;
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    } while (i <= j);
    if (j < k) lo = i;
    if (k < i) hi = j;
  }
  return a[k];
}

/**
 * k×k median filter (k = 3 or 5) with replicated borders, in place through `tmp` (OpenCV `medianBlur` on
 * `CV_32F`, which supports exactly these sizes).
 *
 * @throws {RangeError} for another k.
 */
export function medianInPlace(img: Float32Array, w: number, h: number, k: number, tmp: Float32Array): void {
  if (k === 5) return median5InPlace(img, w, h, tmp);
  if (k !== 3) throw new RangeError(`medianInPlace: kernel size must be 3 or 5, got ${k}`);
  const win = WIN;
  for (let y = 0; y < h; y++) {
    const r0 = clampRow(y - 1, h) * w, r1 = y * w, r2 = clampRow(y + 1, h) * w;
    for (let x = 0; x < w; x++) {
      const xl = x > 0 ? x - 1 : 0, xr = x < w - 1 ? x + 1 : w - 1;
      win[0] = img[r0 + xl], win[1] = img[r0 + x], win[2] = img[r0 + xr];
      win[3] = img[r1 + xl], win[4] = img[r1 + x], win[5] = img[r1 + xr];
      win[6] = img[r2 + xl], win[7] = img[r2 + x], win[8] = img[r2 + xr];
      tmp[r1 + x] = selectK(win, 9, 4);
    }
  }
  img.set(tmp.subarray(0, w * h));
}
