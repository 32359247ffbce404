import assert from "node:assert/strict";
import { CANONICAL_LANDMARKS_68, canonicalLandmarks } from "../../lib/data/faces.ts";
import { defaultFaceRegions, faceRegions, labelWindows, REGION_NAMES } from "../../lib/data/regions.ts";

function centroid(mask: Uint8Array, w: number): { x: number; y: number; n: number } {
  let x = 0;
  let y = 0;
  let n = 0;
  mask.forEach((m, i) => {
    if (m) {
      x += i % w;
      y += Math.floor(i / w);
      n++;
    }
  });
  return { x: x / n, y: y / n, n };
}

Deno.test("faceRegions: canonical layout has every region, in anatomical order top to bottom", () => {
  for (const size of [28, 112]) {
    const r = defaultFaceRegions(size);
    const c = Object.fromEntries(REGION_NAMES.map((n) => [n, centroid(r.masks[n], size)]));
    for (const n of REGION_NAMES) assert.ok(c[n].n > 0, `${n} empty at size ${size}`);
    assert.ok(c.brows.y < c.eyes.y, "brows above eyes");
    assert.ok(c.eyes.y < c.nose.y, "eyes above nose");
    assert.ok(c.nose.y < c.mouth.y, "nose above mouth");
    assert.ok(c.mouth.y < c.chin.y, "mouth above chin");
    assert.ok(c.eyes.y < c.cheeks.y && c.cheeks.y < c.chin.y, "cheeks between eyes and chin");
    // Symmetric regions are centred near the face midline (eye midpoint at x = size/2 - 0.5).
    for (const n of ["brows", "eyes", "mouth", "nose", "chin"] as const) {
      assert.ok(Math.abs(c[n].x - (size / 2 - 0.5)) < 0.08 * size, `${n} centred: ${c[n].x} at size ${size}`);
    }
  }
});

Deno.test("faceRegions: labels follow the priority order and agree with the masks", () => {
  const r = defaultFaceRegions(56);
  let labelled = 0;
  for (let i = 0; i < r.labels.length; i++) {
    const inside = REGION_NAMES.map((n, k) => (r.masks[n][i] ? k : -1)).filter((k) => k >= 0);
    if (inside.length === 0) assert.equal(r.labels[i], -1);
    else {
      assert.equal(r.labels[i], Math.min(...inside));
      labelled++;
    }
  }
  // The face covers a good part of an eye-aligned crop but not the whole of it.
  assert.ok(labelled > 0.35 * r.labels.length && labelled < 0.9 * r.labels.length, `labelled ${labelled}`);
  // Landmark-level checks: the pixel of each eye centre is "eyes", of the lip centre "mouth", of the tip "nose".
  const pts = canonicalLandmarks(56);
  const at = (p: { x: number; y: number }) => r.names[r.labels[Math.round(p.y) * 56 + Math.round(p.x)]];
  assert.equal(at(pts[37]), "eyes");
  assert.equal(at(pts[44]), "eyes");
  assert.equal(at(pts[62]), "mouth");
  assert.equal(at(pts[30]), "nose");
  assert.equal(at(pts[19]), "brows");
});

Deno.test("faceRegions: landmarks in other coordinates and non-square inputs", () => {
  // Shift the canonical face right by 10 px in a 40x30 input: the mouth moves with it.
  const pts = canonicalLandmarks(28).map((p) => ({ x: p.x + 10, y: p.y }));
  const r = faceRegions(pts, { width: 40, height: 30 });
  assert.equal(r.labels.length, 40 * 30);
  const m = centroid(r.masks.mouth, 40);
  const base = centroid(defaultFaceRegions(28).masks.mouth, 28);
  assert.ok(Math.abs(m.x - (base.x + 10)) < 0.5, `mouth x ${m.x} vs ${base.x + 10}`);
});

Deno.test("faceRegions: bad input gives clear errors", () => {
  assert.throws(() => faceRegions(canonicalLandmarks(28).slice(0, 5), 28), RangeError);
  assert.throws(() => faceRegions(canonicalLandmarks(28), 0), RangeError);
  assert.equal(CANONICAL_LANDMARKS_68.length, 68);
});

Deno.test("labelWindows: dominant region per window of a grid", () => {
  const r = defaultFaceRegions(28);
  const w = labelWindows(r, [7, 7]); // 4x4-pixel windows
  assert.equal(w.labels.length, 49);
  // The window holding the lip centre is "mouth"; the top-left corner is outside the face.
  const pts = canonicalLandmarks(28);
  const win = (p: { x: number; y: number }) => Math.floor((p.y + 0.5) / 4) * 7 + Math.floor((p.x + 0.5) / 4);
  assert.equal(w.labels[win(pts[62])], "mouth");
  assert.equal(w.labels[0], "other");
  for (const c of w.cover) {
    const total = Object.values(c).reduce((a, b) => a + b, 0);
    assert.ok(total <= 1 + 1e-9);
  }
  // A 1x1 grid covers everything: the biggest region wins (cheeks).
  const one = labelWindows(r, [1, 1]);
  assert.equal(one.labels[0], "cheeks");
  assert.throws(() => labelWindows(r, [0, 2]), RangeError);
});
