/**
 * Image files: PNG (fast-png), JPEG (jpeg-js) and BMP (own decoder: uncompressed 8/24/32-bit, as SMIC ships)
 * decoded to {@link RgbImage}; PNG encoding for the synthetic dataset and figures.
 *
 * @module
 */
import { decode as decodePngFile, encode as encodePngFile } from "fast-png";
import jpeg from "jpeg-js";
import { DatasetError, type GrayImage, type RgbImage } from "./types.ts";
import { toGray } from "./image.ts";

function decodeBmp(bytes: Uint8Array, name: string): RgbImage {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 54) throw new DatasetError("BMP file too short for its header", { file: name });
  const offset = dv.getUint32(10, true);
  const width = dv.getInt32(18, true);
  const rawHeight = dv.getInt32(22, true);
  const bpp = dv.getUint16(28, true);
  const compression = dv.getUint32(30, true);
  if (compression !== 0 && compression !== 3) {
    throw new DatasetError(`BMP compression ${compression} not supported (expected 0 = uncompressed)`, {
      file: name,
    });
  }
  if (![8, 24, 32].includes(bpp)) {
    throw new DatasetError(`BMP with ${bpp} bits per pixel not supported (expected 8, 24 or 32)`, {
      file: name,
    });
  }
  const height = Math.abs(rawHeight);
  const bottomUp = rawHeight > 0;
  const rowBytes = Math.ceil((width * bpp) / 32) * 4;
  const palette: number[][] = [];
  if (bpp === 8) {
    const headerSize = dv.getUint32(14, true);
    const colours = dv.getUint32(46, true) || 256;
    for (let i = 0; i < colours; i++) {
      const p = 14 + headerSize + 4 * i;
      palette.push([bytes[p + 2], bytes[p + 1], bytes[p]]);
    }
  }
  if (offset + rowBytes * height > bytes.length) {
    throw new DatasetError(`BMP pixel data truncated (${width}x${height}, ${bpp} bpp)`, { file: name });
  }
  const out = new Uint8Array(width * height * 3);
  for (let r = 0; r < height; r++) {
    const srcRow = offset + (bottomUp ? height - 1 - r : r) * rowBytes;
    for (let c = 0; c < width; c++) {
      const o = 3 * (r * width + c);
      if (bpp === 8) {
        const p = palette[bytes[srcRow + c]] ?? [0, 0, 0];
        out[o] = p[0];
        out[o + 1] = p[1];
        out[o + 2] = p[2];
      } else {
        const s = srcRow + c * (bpp / 8);
        out[o] = bytes[s + 2];
        out[o + 1] = bytes[s + 1];
        out[o + 2] = bytes[s];
      }
    }
  }
  return { width, height, data: out };
}

/**
 * Decodes PNG, JPEG or BMP bytes (sniffed from the signature, not the name) to RGB.
 * Grayscale and alpha are converted; 16-bit PNG is scaled to 8 bits.
 *
 * @param name the file name, used in error messages only.
 * @throws {DatasetError} naming the file for unknown formats or corrupt data.
 */
export function decodeImage(bytes: Uint8Array, name: string): RgbImage {
  try {
    if (bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) {
      const png = decodePngFile(bytes);
      const { width, height, channels } = png;
      const src = png.data;
      if (png.depth < 8) {
        // fast-png leaves 1/2/4-bit samples packed: reading them as bytes would give a garbage image
        const kind = png.palette ? "palette" : "grayscale";
        throw new DatasetError(
          `${png.depth}-bit ${kind} PNG is not supported (save it with 8 bits per sample)`,
          {
            file: name,
          },
        );
      }
      const scale = png.depth === 16 ? 1 / 257 : 1;
      const out = new Uint8Array(width * height * 3);
      if (png.palette) {
        for (let i = 0; i < width * height; i++) {
          const p = png.palette[src[i]];
          out[3 * i] = p[0];
          out[3 * i + 1] = p[1];
          out[3 * i + 2] = p[2];
        }
      } else {
        for (let i = 0; i < width * height; i++) {
          if (channels <= 2) {
            const g = Math.round(src[i * channels] * scale);
            out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = g;
          } else {
            for (let k = 0; k < 3; k++) out[3 * i + k] = Math.round(src[i * channels + k] * scale);
          }
        }
      }
      return { width, height, data: out };
    }
    if (bytes[0] === 0xff && bytes[1] === 0xd8) {
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 1024 });
      const out = new Uint8Array(img.width * img.height * 3);
      for (let i = 0; i < img.width * img.height; i++) {
        out[3 * i] = img.data[4 * i];
        out[3 * i + 1] = img.data[4 * i + 1];
        out[3 * i + 2] = img.data[4 * i + 2];
      }
      return { width: img.width, height: img.height, data: out };
    }
    if (bytes[0] === 0x42 && bytes[1] === 0x4d) return decodeBmp(bytes, name);
  } catch (e) {
    if (e instanceof DatasetError) throw e;
    throw new DatasetError(`cannot decode image: ${(e as Error).message}`, { file: name });
  }
  throw new DatasetError("unknown image format (expected PNG, JPEG or BMP)", { file: name });
}

/**
 * Reads and decodes an image file to RGB.
 * @throws {DatasetError} naming the path when the file is missing or cannot be decoded.
 */
export async function readImage(path: string): Promise<RgbImage> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new DatasetError("image file not found", { file: path });
    throw new DatasetError(`cannot read image: ${(e as Error).message}`, { file: path });
  }
  return decodeImage(bytes, path);
}

/** Reads an image file as 8-bit grayscale (BT.601 luma). */
export async function readGray(path: string): Promise<GrayImage & { data: Uint8Array }> {
  return toGray(await readImage(path)) as GrayImage & { data: Uint8Array };
}

function isRgb(img: GrayImage | RgbImage): img is RgbImage {
  return img.data.length === img.width * img.height * 3;
}

/**
 * Encodes a grayscale (values clamped and rounded to 0..255) or RGB image as an 8-bit PNG.
 */
export function encodePng(img: GrayImage | RgbImage): Uint8Array {
  const rgb = isRgb(img);
  const n = img.width * img.height;
  if (!rgb && img.data.length !== n) {
    throw new TypeError(
      `encodePng: data length ${img.data.length} is neither w*h nor w*h*3 for ${img.width}x${img.height}`,
    );
  }
  const data = new Uint8Array(rgb ? 3 * n : n);
  for (let i = 0; i < data.length; i++) data[i] = Math.min(255, Math.max(0, Math.round(img.data[i])));
  return encodePngFile({ width: img.width, height: img.height, data, channels: rgb ? 3 : 1, depth: 8 });
}

/** Writes {@link encodePng}'s output to `path`. */
export async function writePng(path: string, img: GrayImage | RgbImage): Promise<void> {
  await Deno.writeFile(path, encodePng(img));
}
