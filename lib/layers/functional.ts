/**
 * Small stateless tensor functions shared by the layers (channels-last throughout).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** `x·W (+ b)` over the last axis: `x [..., in]`, `kernel [in, out]` (tfjs layout), `bias [out]`. */
export function linear(x: tf.Tensor, kernel: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  const inDim = x.shape[x.rank - 1];
  const lead = x.shape.slice(0, -1);
  const y = tf.matMul(x.reshape([-1, inDim]), kernel as tf.Tensor2D);
  const out = bias ? tf.add(y, bias) : y;
  return out.reshape([...lead, kernel.shape[1] as number]);
}

/** SiLU: `x·σ(x)`. */
export function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}

/** GELU, exact form `x·Φ(x) = ½·x·(1 + erf(x/√2))` (PyTorch `nn.GELU()` default). */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.add(0.5, tf.mul(0.5, tf.erf(tf.mul(x, Math.SQRT1_2)))));
}

/** LayerNorm over the last axis: `(x − μ)/√(σ² + ε)·γ + β`. */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps = 1e-5): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gamma), beta);
}

/**
 * Depthwise 1-D convolution along the token axis, non-causal `same` padding (⌊(k−1)/2⌋ zeros left, the rest
 * right, PyTorch `padding='same'` and tfjs `'same'` agree), cross-correlation, no bias.
 *
 * @param x `[b, l, c]`
 * @param kernel `[1, k, c, 1]` (tfjs depthwise layout; PyTorch `(c, 1, k)` transposed)
 * @returns `[b, l, c]`
 */
export function depthwiseConv1d(x: tf.Tensor, kernel: tf.Tensor): tf.Tensor3D {
  const [b, l, c] = x.shape;
  const y = tf.depthwiseConv2d(x.reshape([b, 1, l, c]) as tf.Tensor4D, kernel as tf.Tensor4D, 1, "same");
  return y.reshape([b, l, c]);
}
