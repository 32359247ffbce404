/**
 * A terminal progress bar with rate and ETA for the command line. On a TTY it redraws one line with `\r`; in a
 * log file (Slurm, Kubernetes) it prints a plain line at most every `minIntervalMs`, so logs stay readable.
 *
 * @module
 */

/** Options of {@link ProgressBar}. */
export interface ProgressOptions {
  /** Label printed before the bar. */
  label?: string;
  /** Bar width in characters. @default 28 */
  width?: number;
  /** Where to write. @default Deno.stderr */
  out?: { writeSync(p: Uint8Array): number; isTerminal?(): boolean };
  /** Minimum time between two log lines when not on a terminal. @default 10000 */
  minIntervalMs?: number;
  /** Clock in ms (for tests). @default performance.now */
  now?: () => number;
}

/**
 * Formats seconds as `h:mm:ss` or `m:ss`.
 *
 * @example
 * ```ts
 * import { formatDuration } from "./progress.ts";
 * if (formatDuration(3725) !== "1:02:05") throw new Error();
 * ```
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/**
 * Progress over a known number of units (steps, folds).
 *
 * @example
 * ```ts
 * import { ProgressBar } from "./progress.ts";
 * const lines: string[] = [];
 * const out = { writeSync: (p: Uint8Array) => (lines.push(new TextDecoder().decode(p)), p.length), isTerminal: () => false };
 * let t = 0;
 * const bar = new ProgressBar(4, { label: "fold 1", out, minIntervalMs: 0, now: () => t });
 * t = 2000; bar.update(2, "loss 0.5");
 * if (!lines[0].includes("2/4") || !lines[0].includes("ETA 0:02")) throw new Error(lines[0]);
 * ```
 */
export class ProgressBar {
  private readonly start: number;
  private lastPrint = -Infinity;
  private readonly o: Required<ProgressOptions>;
  private readonly tty: boolean;
  private readonly enc = new TextEncoder();

  /**
   * @param total number of units (>= 1).
   * @param options label, width, output stream.
   */
  constructor(readonly total: number, options: ProgressOptions = {}) {
    this.o = {
      label: "",
      width: 28,
      out: Deno.stderr,
      minIntervalMs: 10000,
      now: () => performance.now(),
      ...options,
    };
    this.tty = this.o.out.isTerminal?.() ?? false;
    this.start = this.o.now();
  }

  /** Text of the bar at `done` units (without line control). */
  render(done: number, extra = ""): string {
    const frac = Math.min(1, Math.max(0, done / this.total));
    const fill = Math.round(frac * this.o.width);
    const elapsed = (this.o.now() - this.start) / 1000;
    const rate = done > 0 ? done / elapsed : 0;
    const eta = done > 0 ? (this.total - done) / rate : NaN;
    return `${this.o.label ? this.o.label + " " : ""}[${"#".repeat(fill)}${
      ".".repeat(this.o.width - fill)
    }] ` +
      `${done}/${this.total} ${formatDuration(elapsed)} ETA ${formatDuration(eta)}${
        extra ? " " + extra : ""
      }`;
  }

  /**
   * Reports progress: redraws on a terminal, or prints a line when enough time has passed (and at the end).
   *
   * @param done units finished.
   * @param extra text appended (e.g. the current loss).
   */
  update(done: number, extra = ""): void {
    const t = this.o.now();
    const last = done >= this.total;
    if (this.tty) {
      this.o.out.writeSync(this.enc.encode(`\r${this.render(done, extra)}\x1b[K${last ? "\n" : ""}`));
    } else if (last || t - this.lastPrint >= this.o.minIntervalMs) {
      this.o.out.writeSync(this.enc.encode(this.render(done, extra) + "\n"));
      this.lastPrint = t;
    }
  }
}
