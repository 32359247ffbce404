/**
 * Small seeded random numbers for training (shuffling, augmentation, inner validation splits), so that a run
 * is reproducible from its seed independently of tfjs's global RNG.
 *
 * @module
 */

/** A seeded generator of floats in [0, 1). */
export interface Rng {
  /** Next float in [0, 1). */
  next(): number;
  /** Integer in [0, n). */
  int(n: number): number;
}

/**
 * Mulberry32 (Tommy Ettinger's 32-bit generator): fast, 2^32 period, good enough for shuffling and
 * augmentation draws. Not cryptographic.
 *
 * @param seed any integer (taken modulo 2^32).
 * @returns a generator; the same seed gives the same sequence.
 *
 * @example
 * ```ts
 * import { mulberry32 } from "./random.ts";
 * const a = mulberry32(7), b = mulberry32(7);
 * if (a.next() !== b.next()) throw new Error("not reproducible");
 * ```
 */
export function mulberry32(seed: number): Rng {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n) };
}

/**
 * Derives an independent 32-bit seed from a base seed and a string key (FNV-1a of the key mixed with the
 * seed), e.g. one seed per LOSO fold that does not depend on which shard runs the fold.
 *
 * @param seed base seed.
 * @param key e.g. the fold's subject key.
 */
export function deriveSeed(seed: number, key: string): number {
  let h = (0x811c9dc5 ^ (seed >>> 0)) >>> 0;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * Fisher–Yates shuffle in place.
 *
 * @param a the array to permute.
 * @param rng the generator.
 * @returns `a`.
 */
export function shuffleInPlace<T>(a: T[], rng: Rng): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
