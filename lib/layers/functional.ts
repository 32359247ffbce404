/**
 * Small stateless tensor functions shared by the layers (channels-last throughout). They route to the fused
 * kernels of `fused.ts` (typed-array loops on the cpu backend, tf ops elsewhere).
 *
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import { fusedDepthwiseConv1d, fusedGelu, fusedLayerNorm, fusedLinear, fusedSilu } from "./fused.ts";

/** `x·W (+ b)` over the last axis: `x [..., in]`, `kernel [in, out]` (tfjs layout), `bias [out]`. */
export function linear(x: tf.Tensor, kernel: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  return fusedLinear(x, kernel, bias);
}

/** SiLU: `x·σ(x)`. */
export function silu(x: tf.Tensor): tf.Tensor {
  return fusedSilu(x);
}

/** GELU, tanh approximation `½·x·(1 + tanh(√(2/π)(x + 0.044715·x³)))` (PyTorch `GELU(approximate="tanh")`). */
export function gelu(x: tf.Tensor): tf.Tensor {
  return fusedGelu(x);
}

/** LayerNorm over the last axis: `(x − μ)/√(σ² + ε)·γ + β`. */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps = 1e-5): tf.Tensor {
  return fusedLayerNorm(x, gamma, beta, eps);
}

/**
 * Depthwise 1-D convolution along the token axis, non-causal `same` padding (⌊(k−1)/2⌋ zeros left, the rest
 * right, as PyTorch `padding='same'` and tfjs `'same'`), cross-correlation, no bias.
 *
 * @param x `[b, l, c]`
 * @param kernel `[1, k, c, 1]` (tfjs depthwise layout; PyTorch `(c, 1, k)` transposed)
 * @returns `[b, l, c]`
 */
export function depthwiseConv1d(x: tf.Tensor, kernel: tf.Tensor): tf.Tensor3D {
  return fusedDepthwiseConv1d(x, kernel);
}
