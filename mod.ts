/**
 * merba: MERba (arXiv 2506.14468) for micro-expression recognition on tfjs + WebGPU, in Deno.
 *
 * Re-exports only; each symbol is documented where it is defined.
 *
 * @module
 */

/** Picks webgpu when an adapter exists, else cpu; explicit override by option or MERBA_BACKEND. */
export { backendInfo, hasWebGPU, initBackend } from "./lib/backend.ts";
export type { BackendInfo, BackendName } from "./lib/backend.ts";
