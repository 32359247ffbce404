/**
 * WebGPU reports a failed pipeline, bind group or dispatch as an "uncaptured error" event on the device, not as
 * an exception: tfjs-backend-webgpu does not listen, so a kernel that fails validation leaves its output
 * unwritten and the computation goes on with stale numbers (see `webgpu_addn.ts` for the case that hit merba).
 * {@link watchWebGPUErrors} listens on a device, prints each distinct message once, and keeps a count that
 * `trainModel` checks after every epoch ({@link WebGPUValidationError}).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** An error WebGPU reported on a watched device since the process started. */
export interface WebGPUErrorRecord {
  /** The error's message (first line kept short in the console, whole here). */
  message: string;
  /** `performance.now()` when it arrived. */
  at: number;
}

const records: WebGPUErrorRecord[] = [];
const printed = new Set<string>();
const watched = new WeakSet<object>();

/** Thrown by `trainModel` when WebGPU reported errors during an epoch: some kernel's results are wrong. */
export class WebGPUValidationError extends Error {
  constructor(message: string, readonly errors: readonly WebGPUErrorRecord[]) {
    super(message);
    this.name = "WebGPUValidationError";
  }
}

/**
 * Starts recording the uncaptured errors of `device` (idempotent per device). Each distinct message is printed
 * once with `console.error`.
 */
export function watchWebGPUErrors(device: EventTarget): void {
  if (watched.has(device)) return;
  watched.add(device);
  device.addEventListener("uncapturederror", (e: Event) => {
    const err = (e as Event & { error?: { message?: string } }).error;
    const message = String(err?.message ?? err ?? "unknown WebGPU error").trim();
    records.push({ message, at: performance.now() });
    if (!printed.has(message)) {
      printed.add(message);
      console.error(
        `merba: WebGPU reported an error; the kernel it concerns produced no result, so values computed from it ` +
          `are wrong:\n  ${message.split("\n").slice(0, 4).join("\n  ")}`,
      );
    }
  });
}

/** Watches the device of tfjs's active backend when that backend is webgpu (no-op otherwise). */
export function watchActiveWebGPUDevice(): void {
  if (tf.getBackend() !== "webgpu") return;
  const device = (tf.backend() as unknown as { device?: EventTarget }).device;
  if (device) watchWebGPUErrors(device);
}

/** How many WebGPU errors the watched devices have reported so far (a mark for {@link webgpuErrorsSince}). */
export function webgpuErrorCount(): number {
  return records.length;
}

/** The errors reported after the mark `since` (a value of {@link webgpuErrorCount}). */
export function webgpuErrorsSince(since: number): readonly WebGPUErrorRecord[] {
  return records.slice(since);
}

/** Records an error as if a device had reported it (tests). */
export function recordWebGPUError(message: string): void {
  records.push({ message, at: performance.now() });
}
