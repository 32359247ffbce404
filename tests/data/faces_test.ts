import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { readImage } from "../../lib/data/image_io.ts";
import { toGray } from "../../lib/data/image.ts";
import {
  cropFace,
  detectFace,
  detectFaces,
  eyeCentres,
  eyeCrop,
  fivePoints,
  toCropCoords,
} from "../../lib/data/faces.ts";
import { ASTRONAUT_LANDMARKS_68 } from "../../lib/data/synthetic_face.ts";

const ASTRONAUT = new URL("../../data/astronaut.png", import.meta.url).pathname;
// face-api keeps wasm/timer state between calls; the models are loaded once for the whole file.
const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "detectFace: one face with 68 landmarks on the astronaut portrait; backend restored",
  ...opts,
  fn: async () => {
    const rgb = await readImage(ASTRONAUT);
    await tf.setBackend("cpu");
    const faces = await detectFaces(rgb);
    assert.equal(tf.getBackend(), "cpu", "the caller's backend is restored");
    assert.equal(faces.length, 1);
    const f = faces[0];
    assert.ok(f.score > 0.9, `score ${f.score}`);
    assert.equal(f.landmarks.length, 68);
    // The box is around the face (the face is in the upper middle of the 512x512 photo).
    assert.ok(f.box.x > 150 && f.box.x + f.box.width < 300 && f.box.y > 40 && f.box.y + f.box.height < 200);
    const [le, re] = eyeCentres(f.landmarks);
    const mouth = f.landmarks[62];
    const nose = f.landmarks[30];
    assert.ok(le.x < re.x, "image-left eye first");
    assert.ok(
      le.y < nose.y && re.y < nose.y && nose.y < mouth.y && mouth.y < f.landmarks[8].y,
      "eyes > nose > mouth > chin",
    );
    assert.ok(f.landmarks[19].y < le.y && f.landmarks[24].y < re.y, "brows above eyes");
    // Agrees with the landmarks recorded for the synthetic generator (same model, wasm backend) to 1.5 px:
    // the recorded values are rounded to 0.1 px; 1.5 px leaves room for backend float differences.
    let worst = 0;
    f.landmarks.forEach((p, i) => {
      worst = Math.max(
        worst,
        Math.hypot(p.x - ASTRONAUT_LANDMARKS_68[i][0], p.y - ASTRONAUT_LANDMARKS_68[i][1]),
      );
    });
    assert.ok(worst < 1.5, `max landmark deviation ${worst.toFixed(2)} px`);
    // No face in a flat grey image.
    const blank = { width: 128, height: 128, data: new Uint8Array(128 * 128 * 3).fill(128) };
    assert.equal(await detectFace(blank), null);
  },
});

Deno.test({
  name: "detectFaces: bad input is rejected before the model runs",
  ...opts,
  fn: async () => {
    await assert.rejects(() => detectFaces({ width: 4, height: 4, data: new Uint8Array(5) }), TypeError);
    await assert.rejects(() => detectFaces({ width: 0, height: 4, data: new Uint8Array(0) }), RangeError);
  },
});

Deno.test("eyeCrop / cropFace: eyes land on the eye line, level and iod-scaled", async () => {
  const rgb = await readImage(ASTRONAUT);
  const pts = ASTRONAUT_LANDMARKS_68.map(([x, y]) => ({ x, y }));
  const size = 96;
  const crop = eyeCrop(pts, size);
  const inCrop = toCropCoords(pts, crop);
  const [le, re] = eyeCentres(inCrop);
  // Eye midpoint at (size/2 - 0.5, 0.375 size - 0.5); eyes level; iod = size / 2.8.
  assert.ok(Math.abs((le.x + re.x) / 2 - (size / 2 - 0.5)) < 1e-9);
  assert.ok(Math.abs((le.y + re.y) / 2 - (0.375 * size - 0.5)) < 1e-9);
  assert.ok(Math.abs(le.y - re.y) < 1e-9);
  assert.ok(Math.abs(re.x - le.x - size / 2.8) < 1e-9);
  // Round trip: crop coords -> image coords.
  const back = inCrop.map((p) => ({
    x: crop.origin.x + p.x * crop.ex.x + p.y * crop.ey.x,
    y: crop.origin.y + p.x * crop.ex.y + p.y * crop.ey.y,
  }));
  back.forEach((p, i) => assert.ok(Math.hypot(p.x - pts[i].x, p.y - pts[i].y) < 1e-9));
  // The cropped pixels are the image's: sample at the left eye centre vs. bilinear lookup in the photo.
  const gray = toGray(rgb);
  const img = cropFace(gray, crop);
  assert.equal(img.data.length, size * size);
  const c = Math.round(le.x);
  const r = Math.round(le.y);
  const sx = crop.origin.x + c * crop.ex.x + r * crop.ey.x;
  const sy = crop.origin.y + c * crop.ex.y + r * crop.ey.y;
  const x0 = Math.floor(sx);
  const y0 = Math.floor(sy);
  const g = (x: number, y: number) => gray.data[y * gray.width + x];
  const fx = sx - x0;
  const fy = sy - y0;
  const want = (g(x0, y0) * (1 - fx) + g(x0 + 1, y0) * fx) * (1 - fy) +
    (g(x0, y0 + 1) * (1 - fx) + g(x0 + 1, y0 + 1) * fx) * fy;
  assert.ok(Math.abs(img.data[r * size + c] - want) < 1e-3);
  // Without rotation the crop axes are the image axes.
  const flat = eyeCrop(pts, size, { rotate: false });
  assert.equal(flat.ex.y, 0);
  assert.equal(Math.abs(flat.ey.x), 0);
  assert.throws(() => eyeCrop(pts.slice(0, 10), size), RangeError);
  assert.throws(() => eyeCrop(pts, 0), RangeError);
});

Deno.test("fivePoints: MTCNN order from 68 landmarks", () => {
  const pts = ASTRONAUT_LANDMARKS_68.map(([x, y]) => ({ x, y }));
  const [le, re, nose, ml, mr] = fivePoints(pts);
  assert.ok(le.x < re.x && ml.x < mr.x);
  assert.ok(le.y < nose.y && nose.y < ml.y);
  assert.deepEqual(nose, pts[30]);
  assert.deepEqual(ml, pts[48]);
});
