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
 * Each 5×5 window is taken as five vertically sorted columns (a column's sort is shared by the five windows
 * that contain it); sorting the ranks across columns then rules out 12 of the 25 values, and the median is
 * the 7th smallest of the remaining 13 (Hoare's selection). The result is exact.
 */
function median5InPlace(img: Float32Array, w: number, h: number, tmp: Float32Array): void {
  const cols = scratchCols(w + 4);
  const win = WIN;
  const grid = GRID;
  for (let y = 0; y < h; y++) {
    // Sorted 5-tall columns for x = -2 .. w + 1 (replicate border).
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
    for (let x = 0; x < w; x++) {
      // The window of output x is the sorted columns cx = x .. x+4, i.e. cols[5x .. 5x+24] with column j,
      // rank i at 5x + 5j + i. Sort each rank across the five columns (columns stay sorted: rows-then-columns
      // sorting keeps both orders). Then the element at (rank i, column j) has at least (i+1)(j+1) values <= it
      // and (5-i)(5-j) values >= it, so the 6 with (5-i)(5-j) >= 14 lie at or below the median, the 6 with
      // (i+1)(j+1) >= 14 at or above it, and dropping both leaves the median as the 7th of the 13 others.
      const base = x * 5;
      for (let i = 0; i < 5; i++) {
        let a0 = cols[base + i],
          a1 = cols[base + 5 + i],
          a2 = cols[base + 10 + i],
          a3 = cols[base + 15 + i],
          a4 = cols[base + 20 + i],
          t;
        if (a0 > a1) (t = a0, a0 = a1, a1 = t);
        if (a3 > a4) (t = a3, a3 = a4, a4 = t);
        if (a2 > a4) (t = a2, a2 = a4, a4 = t);
        if (a2 > a3) (t = a2, a2 = a3, a3 = t);
        if (a0 > a3) (t = a0, a0 = a3, a3 = t);
        if (a0 > a2) (t = a0, a0 = a2, a2 = t);
        if (a1 > a4) (t = a1, a1 = a4, a4 = t);
        if (a1 > a3) (t = a1, a1 = a3, a3 = t);
        if (a1 > a2) (t = a1, a1 = a2, a2 = t);
        const o = i * 5;
        grid[o] = a0;
        grid[o + 1] = a1;
        grid[o + 2] = a2;
        grid[o + 3] = a3;
        grid[o + 4] = a4;
      }
      for (let k = 0; k < 13; k++) win[k] = grid[MEDIAN25_CANDIDATES[k]];
      tmp[y * w + x] = selectK(win, 13, 6);
    }
  }
  img.set(tmp.subarray(0, w * h));
}

const WIN = new Float32Array(25);
const GRID = new Float32Array(25);
/** Positions `5 * rank + column` of the 13 median candidates of a rank- and column-sorted 5×5 grid. */
const MEDIAN25_CANDIDATES = [3, 4, 7, 8, 9, 11, 12, 13, 15, 16, 17, 20, 21];
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
