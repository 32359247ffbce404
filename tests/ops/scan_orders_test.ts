import * as tf from "@tensorflow/tfjs";
import { deepStrictEqual, throws } from "node:assert/strict";
import {
  ALL_SCAN_ORDERS,
  invertPermutation,
  parseScanOrder,
  permuteTokens,
  resolveScanSet,
  SCAN_SETS,
  scanOrderLabel,
  scanPermutation,
  unpermutePairs,
  unpermuteTokens,
} from "../../lib/ops/scan_orders.ts";

Deno.test("scanPermutation: the 8 orders on a 2x3 grid (raster index r·3 + c)", () => {
  const expected: Record<string, number[]> = {
    "row++": [0, 1, 2, 3, 4, 5],
    "row+-": [3, 4, 5, 0, 1, 2],
    "row-+": [2, 1, 0, 5, 4, 3],
    "row--": [5, 4, 3, 2, 1, 0],
    "col++": [0, 3, 1, 4, 2, 5],
    "col+-": [3, 0, 4, 1, 5, 2],
    "col-+": [2, 5, 1, 4, 0, 3],
    "col--": [5, 2, 4, 1, 3, 0],
  };
  deepStrictEqual(ALL_SCAN_ORDERS.length, 8);
  for (const o of ALL_SCAN_ORDERS) {
    const label = scanOrderLabel(o);
    deepStrictEqual(Array.from(scanPermutation(o, 2, 3)), expected[label], label);
    deepStrictEqual(parseScanOrder(label), o);
    const p = scanPermutation(o, 2, 3);
    const inv = invertPermutation(p);
    for (let t = 0; t < 6; t++) deepStrictEqual(inv[p[t]], t);
  }
});

Deno.test("scan sets: named sets, custom lists, errors", () => {
  deepStrictEqual(resolveScanSet("bilateral3").map(scanOrderLabel), ["row++", "col++", "col+-"]);
  deepStrictEqual(resolveScanSet("vmamba4").map(scanOrderLabel), ["row++", "row--", "col++", "col--"]);
  deepStrictEqual(resolveScanSet("axes2").map(scanOrderLabel), ["row++", "col++"]);
  deepStrictEqual(resolveScanSet("raster").map(scanOrderLabel), ["row++"]);
  deepStrictEqual(resolveScanSet(["col-+", { major: "row", h: 1, v: -1 }]).map(scanOrderLabel), [
    "col-+",
    "row+-",
  ]);
  deepStrictEqual(Object.keys(SCAN_SETS).sort(), ["axes2", "bilateral3", "raster", "vmamba4"]);
  throws(
    () => resolveScanSet("diagonal" as never),
    (e: Error) => e instanceof RangeError && /bilateral3/.test(e.message),
  );
  throws(() => resolveScanSet([]), RangeError);
  throws(() => resolveScanSet(["row++", "row++"]), RangeError);
  throws(() => parseScanOrder("zig"), RangeError);
});

Deno.test("permuteTokens / unpermuteTokens / unpermutePairs are inverse and differentiable", async () => {
  await tf.setBackend("cpu");
  const orders = resolveScanSet("vmamba4");
  const x = tf.randomNormal([2, 12, 3], 0, 1, "float32", 1);
  const p = permuteTokens(x, orders, 3, 4);
  deepStrictEqual(p.shape, [8, 12, 3]);
  // block k holds x[:, π_k, :]
  const pv = (await p.array()) as number[][][];
  const xv = (await x.array()) as number[][][];
  const perm = scanPermutation(orders[3], 3, 4);
  deepStrictEqual(pv[3 * 2 + 1][5], xv[1][perm[5]]);
  const back = unpermuteTokens(p, orders, 3, 4);
  deepStrictEqual(back.shape, [4, 2, 12, 3]);
  const bv = (await back.array()) as number[][][][];
  for (let k = 0; k < 4; k++) deepStrictEqual(bv[k], xv);
  // pairs: a[t, s] = 100·π[t] + π[s] maps to out[p, q] = 100·p + q
  const l = 12;
  const o = orders[2];
  const pm = scanPermutation(o, 3, 4);
  const a = tf.tensor(Array.from({ length: l * l }, (_, i) => 100 * pm[Math.floor(i / l)] + pm[i % l]), [
    1,
    l,
    l,
  ]);
  const out = await unpermutePairs(a, [o], 3, 4).data();
  for (let i = 0; i < l * l; i++) deepStrictEqual(out[i], 100 * Math.floor(i / l) + (i % l));
  const g = tf.grad((t: tf.Tensor) => tf.sum(unpermuteTokens(permuteTokens(t, orders, 3, 4), orders, 3, 4)))(
    x,
  );
  deepStrictEqual(Array.from(await g.data()).every((v) => v === 4), true);
  throws(() => permuteTokens(tf.zeros([2, 11, 3]), orders, 3, 4), TypeError);
  tf.dispose([x, p, back, a, g]);
});
