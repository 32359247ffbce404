/**
 * Shared plumbing of merba's layers: seeded weight creation, sublayers, stable weight names.
 *
 * tfjs's `Layer` tracks only its own weights and names variables with process-unique suffixes; merba's
 * composite layers need (1) the weights of their sublayers, (2) names that are the same in every process
 * (`stage0.block1.mixer.in_proj.kernel`) for checkpoints and weight-decay groups, and (3) initial values that
 * depend only on a seed and the weight's path, not on creation order or backend. {@link MerbaLayer} provides
 * the three.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { initialValues, type InitSpec } from "./init.ts";

/** Constructor arguments of tfjs's `Layer` (tfjs 4.22 does not export `LayerArgs`). */
export type LayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;

/** tfjs layer variable type (not exported by name from tfjs 4.22). */
export type LayerVariable = ReturnType<tf.layers.Layer["addWeight"]>;

/** Arguments every merba layer accepts on top of tfjs's. */
export interface MerbaLayerArgs extends LayerArgs {
  /** Seed of this layer's initial weights (combined with each weight's name). @default 0 */
  seed?: number;
}

/** A weight with its stable, process-independent name. */
export interface NamedWeight {
  name: string;
  variable: LayerVariable;
  /** false for weight-decay-free parameters (A_log, D, norms, biases, embeddings, merge logits). */
  decay: boolean;
}

/** 32-bit FNV-1a of `text` mixed with `seed`: per-weight seeds that depend only on seed and path. */
export function hashSeed(seed: number, text: string): number {
  let h = (0x811c9dc5 ^ (seed >>> 0)) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  h ^= Math.imul(seed >>> 16 | 0, 0x85ebca6b) >>> 0;
  return h >>> 0;
}

/**
 * Base class of merba's layers: `param()` creates a seeded weight with a stable name, `track()` registers a
 * sublayer (its weights then appear in this layer's `trainableWeights`, `namedWeights()` and `dispose()`).
 */
export abstract class MerbaLayer extends tf.layers.Layer {
  /** Seed of this layer's weights. */
  readonly seed: number;
  private readonly own: NamedWeight[] = [];
  private readonly subs: { name: string; layer: MerbaLayer }[] = [];

  constructor(args: MerbaLayerArgs = {}) {
    super(args);
    this.seed = args.seed ?? 0;
  }

  /**
   * Creates a weight initialised from `init` with the seed `hashSeed(this.seed, name)`.
   *
   * @param decay whether AdamW weight decay applies (false for A_log, D, norms, biases, embeddings).
   */
  protected param(
    name: string,
    shape: number[],
    init: InitSpec,
    opts: { trainable?: boolean; decay?: boolean } = {},
  ): LayerVariable {
    const seed = hashSeed(this.seed, name);
    const v = this.addWeight(
      name,
      shape,
      "float32",
      tf.initializers.zeros(),
      undefined,
      opts.trainable ?? true,
    );
    const value = tf.tensor(initialValues(init, shape, seed), shape, "float32");
    v.write(value);
    value.dispose();
    this.own.push({ name, variable: v, decay: opts.decay ?? true });
    return v;
  }

  /** Registers `layer` as a sublayer named `name` (its weights are reported as `name.<weight>`). */
  protected track<L extends MerbaLayer>(name: string, layer: L): L {
    this.subs.push({ name, layer });
    return layer;
  }

  /** The sublayers, in registration order. */
  get sublayers(): MerbaLayer[] {
    return this.subs.map((s) => s.layer);
  }

  /** Own and sublayer weights with stable dotted names, prefixed with `prefix`. */
  namedWeights(prefix = ""): NamedWeight[] {
    const p = prefix === "" ? "" : `${prefix}.`;
    const out = this.own.map((w) => ({ ...w, name: p + w.name }));
    for (const s of this.subs) out.push(...s.layer.namedWeights(p + s.name));
    return out;
  }

  override get trainableWeights(): LayerVariable[] {
    if (!this.trainable) return [];
    return this.namedWeights().map((w) => w.variable).filter((v) => v.trainable);
  }

  override set trainableWeights(_w: LayerVariable[]) {
    // Weights are owned by param()/track(); tfjs's setter is not used.
  }

  override get nonTrainableWeights(): LayerVariable[] {
    const all = this.namedWeights().map((w) => w.variable);
    return this.trainable ? all.filter((v) => !v.trainable) : all;
  }

  override set nonTrainableWeights(_w: LayerVariable[]) {
    // see trainableWeights
  }

  /** Number of scalar parameters (trainable and not) of this layer and its sublayers. */
  paramCount(trainableOnly = false): number {
    return this.namedWeights()
      .filter((w) => !trainableOnly || w.variable.trainable)
      .reduce((s, w) => s + (w.variable.shape as number[]).reduce((a, b) => a * b, 1), 0);
  }

  /** Builds this layer (once) for `inputShape` and marks it built. */
  ensureBuilt(inputShape: (number | null)[] | (number | null)[][]): void {
    if (!this.built) {
      this.build(inputShape as tf.Shape);
      this.built = true;
    }
  }

  /** Disposes every weight of this layer and its sublayers. Idempotent. */
  override disposeWeights(): number {
    let n = 0;
    for (const w of this.namedWeights()) {
      try {
        w.variable.dispose();
        n++;
      } catch {
        // already disposed
      }
    }
    return n;
  }

  /** Disposes the weights (tfjs's ref counting is bypassed: merba layers are not shared between models). */
  override dispose(): tf.serialization.ConfigDict & {
    refCountAfterDispose: number;
    numDisposedVariables: number;
  } {
    const numDisposedVariables = this.disposeWeights();
    return { refCountAfterDispose: 0, numDisposedVariables } as never;
  }
}

/** The single tensor of a tfjs `call` input. */
export function oneTensor(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  if (Array.isArray(inputs)) {
    if (inputs.length !== 1) throw new TypeError(`expected one input tensor, got ${inputs.length}`);
    return inputs[0];
  }
  return inputs;
}
