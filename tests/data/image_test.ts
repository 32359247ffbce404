import { assertEquals, assertRejects, assertThrows, ok } from "../_assert.ts";
import { crop, resizeArea, resizeBilinear, toGray } from "../../lib/data/image.ts";
import { decodeImage, encodePng, readImage } from "../../lib/data/image_io.ts";
import { DatasetError } from "../../lib/data/types.ts";
import jpeg from "jpeg-js";

const gray = { width: 4, height: 2, data: Uint8Array.from([0, 10, 20, 30, 40, 50, 60, 255]) };

Deno.test("toGray uses BT.601 weights", () => {
  const g = toGray({ width: 2, height: 1, data: Uint8Array.from([255, 0, 0, 0, 0, 255]) });
  assertEquals(Array.from(g.data), [76, 29]);
});

Deno.test("PNG round trip, gray and RGB", () => {
  const back = decodeImage(encodePng(gray), "x.png");
  assertEquals(back.width, 4);
  assertEquals(Array.from(toGray(back).data), Array.from(gray.data));
  const rgb = { width: 1, height: 2, data: Uint8Array.from([1, 2, 3, 250, 251, 252]) };
  assertEquals(Array.from(decodeImage(encodePng(rgb), "y.png").data), Array.from(rgb.data));
});

Deno.test("BMP 24-bit bottom-up with row padding decodes", () => {
  // 1x2 image: bottom row stored first; rows padded to 4 bytes.
  const w = 1, h = 2, row = 4, off = 54;
  const b = new Uint8Array(off + row * h);
  const dv = new DataView(b.buffer);
  b[0] = 0x42;
  b[1] = 0x4d;
  dv.setUint32(10, off, true);
  dv.setUint32(14, 40, true);
  dv.setInt32(18, w, true);
  dv.setInt32(22, h, true);
  dv.setUint16(28, 24, true);
  b.set([30, 20, 10], off); // bottom pixel BGR -> rgb(10,20,30)
  b.set([3, 2, 1], off + row); // top pixel -> rgb(1,2,3)
  assertEquals(Array.from(decodeImage(b, "s.bmp").data), [1, 2, 3, 10, 20, 30]);
});

Deno.test("JPEG decodes to the right size and near the encoded values", () => {
  const w = 16, h = 8;
  const rgba = new Uint8Array(w * h * 4).fill(128);
  const enc = jpeg.encode({ width: w, height: h, data: rgba }, 95);
  const img = decodeImage(new Uint8Array(enc.data), "f.jpg");
  assertEquals([img.width, img.height], [w, h]);
  ok(Math.abs(img.data[0] - 128) <= 2);
});

Deno.test("bad image bytes and missing files name the file", async () => {
  assertThrows(() => decodeImage(new Uint8Array([1, 2, 3]), "bad.jpg"), DatasetError, "bad.jpg");
  await assertRejects(
    () => readImage("/nonexistent/img46.jpg"),
    DatasetError,
    "img46.jpg: image file not found",
  );
});

Deno.test("resize and crop", () => {
  const a = resizeArea(gray, 2, 1);
  assertEquals(Array.from(a.data), [(0 + 10 + 40 + 50) / 4, (20 + 30 + 60 + 255) / 4]);
  const b = resizeBilinear({ width: 2, height: 1, data: Float32Array.from([0, 10]) }, 4, 1);
  assertEquals(Array.from(b.data), [0, 2.5, 7.5, 10]);
  assertEquals(Array.from(crop(gray, 3, 1, 2, 1).data), [255, 255]);
  assertThrows(
    () => resizeArea({ width: 2, height: 2, data: new Uint8Array(3) }, 1, 1),
    TypeError,
    "data length 3",
  );
});

Deno.test("resizeArea: no NaN where the last cell's end rounds past the edge; a constant image stays constant", () => {
  // sizes found to round past the edge before the clamp (e.g. 31, 62, 117, 234 -> 28; 29 -> 14; 227 -> 112)
  for (
    const [src, dst] of [[31, 28], [62, 28], [117, 28], [234, 28], [29, 14], [227, 112], [80, 28], [160, 28]]
  ) {
    const img = { width: src, height: src, data: new Float32Array(src * src).fill(3) };
    const out = resizeArea(img, dst, dst).data;
    assertEquals(out.every((v) => Math.abs(v - 3) < 1e-5), true, `${src} -> ${dst}`);
  }
});

Deno.test("decodeImage refuses a low-bit PNG instead of decoding garbage", async () => {
  const { encode } = await import("fast-png");
  // 8x2 1-bit grayscale: one packed byte per row
  const png = encode({
    width: 8,
    height: 2,
    depth: 1,
    channels: 1,
    data: new Uint8Array([0b10101010, 0b01010101]),
  });
  assertThrows(
    () => decodeImage(png, "mask.png"),
    DatasetError,
    "1-bit grayscale PNG is not supported",
  );
});
