/**
 * Selective-scan kernels for the tfjs `webgpu` backend (WGSL). Until they are registered, the op routes
 * webgpu calls through the tfjs-ops reference.
 *
 * @module
 */
export {};
