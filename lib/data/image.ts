/**
 * Small image utilities on {@link GrayImage} / {@link RgbImage}: grayscale conversion, crops and resizing.
 *
 * @module
 */
import type { GrayImage, RgbImage } from "./types.ts";

function checkImage(
  img: { width: number; height: number; data: ArrayLike<number> },
  channels: number,
  what: string,
) {
  if (!Number.isInteger(img.width) || !Number.isInteger(img.height) || img.width <= 0 || img.height <= 0) {
    throw new RangeError(
      `${what}: width and height must be positive integers, got ${img.width}x${img.height}`,
    );
  }
  if (img.data.length !== img.width * img.height * channels) {
    throw new TypeError(
      `${what}: data length ${img.data.length} != width*height*${channels} = ${
        img.width * img.height * channels
      }`,
    );
  }
}

/** ITU-R BT.601 luma (`0.299 R + 0.587 G + 0.114 B`, as OpenCV's `COLOR_RGB2GRAY`), rounded to uint8. */
export function toGray(rgb: RgbImage): GrayImage {
  checkImage(rgb, 3, "toGray");
  const n = rgb.width * rgb.height;
  const out = new Uint8Array(n);
  const d = rgb.data;
  for (let i = 0; i < n; i++) {
    out[i] = Math.round(0.299 * d[3 * i] + 0.587 * d[3 * i + 1] + 0.114 * d[3 * i + 2]);
  }
  return { width: rgb.width, height: rgb.height, data: out };
}

/** The same image as Float32Array values (no scaling). */
export function toFloat(img: GrayImage): GrayImage & { data: Float32Array } {
  checkImage(img, 1, "toFloat");
  return { width: img.width, height: img.height, data: Float32Array.from(img.data) };
}

/**
 * Crops `[x, x + w) × [y, y + h)`; parts outside the image are filled by clamping to the border
 * (replicate), so a crop near the edge keeps its size.
 */
export function crop(img: GrayImage, x: number, y: number, w: number, h: number): GrayImage {
  checkImage(img, 1, "crop");
  if (!(w > 0 && h > 0) || !Number.isInteger(w) || !Number.isInteger(h)) {
    throw new RangeError(`crop: size must be positive integers, got ${w}x${h}`);
  }
  x = Math.round(x);
  y = Math.round(y);
  const out = img.data instanceof Float32Array ? new Float32Array(w * h) : new Uint8Array(w * h);
  for (let r = 0; r < h; r++) {
    const sy = Math.min(img.height - 1, Math.max(0, y + r));
    for (let c = 0; c < w; c++) {
      const sx = Math.min(img.width - 1, Math.max(0, x + c));
      out[r * w + c] = img.data[sy * img.width + sx];
    }
  }
  return { width: w, height: h, data: out };
}

/**
 * Bilinear resize with pixel-centre alignment (OpenCV `INTER_LINEAR`: source coordinate
 * `(dst + 0.5) * scale - 0.5`, clamped). Output is Float32Array.
 */
export function resizeBilinear(
  img: GrayImage,
  width: number,
  height: number,
): GrayImage & { data: Float32Array } {
  checkImage(img, 1, "resizeBilinear");
  if (!(width > 0 && height > 0)) throw new RangeError(`resizeBilinear: bad size ${width}x${height}`);
  const out = new Float32Array(width * height);
  const sx = img.width / width;
  const sy = img.height / height;
  const src = img.data;
  for (let r = 0; r < height; r++) {
    let fy = (r + 0.5) * sy - 0.5;
    fy = Math.min(Math.max(fy, 0), img.height - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, img.height - 1);
    const wy = fy - y0;
    for (let c = 0; c < width; c++) {
      let fx = (c + 0.5) * sx - 0.5;
      fx = Math.min(Math.max(fx, 0), img.width - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, img.width - 1);
      const wx = fx - x0;
      const top = src[y0 * img.width + x0] * (1 - wx) + src[y0 * img.width + x1] * wx;
      const bot = src[y1 * img.width + x0] * (1 - wx) + src[y1 * img.width + x1] * wx;
      out[r * width + c] = top * (1 - wy) + bot * wy;
    }
  }
  return { width, height, data: out };
}

/**
 * Area-averaging resize (OpenCV `INTER_AREA` for shrinking): each output pixel is the mean of the source
 * area it covers, with fractional weights at the edges. For enlarging it falls back to bilinear.
 * Output is Float32Array.
 */
export function resizeArea(
  img: GrayImage,
  width: number,
  height: number,
): GrayImage & { data: Float32Array } {
  checkImage(img, 1, "resizeArea");
  if (!(width > 0 && height > 0)) throw new RangeError(`resizeArea: bad size ${width}x${height}`);
  if (width > img.width || height > img.height) return resizeBilinear(img, width, height);
  const sx = img.width / width;
  const sy = img.height / height;
  const out = new Float32Array(width * height);
  const src = img.data;
  for (let r = 0; r < height; r++) {
    const y0 = r * sy;
    // clamped: r·sy + sy can round past the image edge, and a row beyond it would read undefined (NaN)
    const y1 = Math.min(y0 + sy, img.height);
    for (let c = 0; c < width; c++) {
      const x0 = c * sx;
      const x1 = Math.min(x0 + sx, img.width);
      let acc = 0;
      let wsum = 0;
      for (let yy = Math.floor(y0); yy < Math.ceil(y1); yy++) {
        const wy = Math.min(yy + 1, y1) - Math.max(yy, y0);
        if (wy <= 0) continue;
        for (let xx = Math.floor(x0); xx < Math.ceil(x1); xx++) {
          const wx = Math.min(xx + 1, x1) - Math.max(xx, x0);
          if (wx <= 0) continue;
          acc += src[yy * img.width + xx] * wx * wy;
          wsum += wx * wy;
        }
      }
      out[r * width + c] = acc / wsum;
    }
  }
  return { width, height, data: out };
}
