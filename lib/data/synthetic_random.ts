/**
 * Seeded pseudo-random streams for the synthetic dataset generator.
 *
 * Every subject and every sample draws from its own stream, keyed by `(seed, ...keys)`, so changing the
 * number of samples of one subject does not change any other subject's faces or motion, and the same
 * seed always gives byte-identical output.
 *
 * Generator: mulberry32 (32-bit state, period 2^32), seeded by a 32-bit FNV-1a hash of the key string.
 * Normal deviates: Box–Muller.
 *
 * @module
 */

/** A deterministic random stream. */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number;
  /** Normal with the given mean and standard deviation. */
  normal(mean?: number, std?: number): number;
  /** Integer uniform in [lo, hi] (both inclusive). */
  int(lo: number, hi: number): number;
  /** True with probability `p`. */
  chance(p: number): boolean;
  /** One element of `items`, uniformly. */
  pick<T>(items: readonly T[]): T;
}

/** 32-bit FNV-1a hash of a string. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * Creates the stream for `(seed, ...keys)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rngFor } from "./synthetic_random.ts";
 * const a = rngFor(7, "sub01", 3);
 * const b = rngFor(7, "sub01", 3);
 * assert.equal(a.next(), b.next());
 * ```
 */
export function rngFor(seed: number, ...keys: (string | number)[]): Rng {
  let state = hash32([seed, ...keys].join("/"));
  const next = (): number => {
    // mulberry32
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  let spare: number | null = null;
  const rng: Rng = {
    next,
    uniform: (lo, hi) => lo + (hi - lo) * next(),
    normal: (mean = 0, std = 1) => {
      if (spare !== null) {
        const z = spare;
        spare = null;
        return mean + std * z;
      }
      // Box–Muller: two independent N(0, 1) from two uniforms; 1 - u avoids log(0).
      const u = 1 - next();
      const v = next();
      const r = Math.sqrt(-2 * Math.log(u));
      spare = r * Math.sin(2 * Math.PI * v);
      return mean + std * r * Math.cos(2 * Math.PI * v);
    },
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    chance: (p) => next() < p,
    pick: (items) => items[Math.floor(next() * items.length)],
  };
  return rng;
}
