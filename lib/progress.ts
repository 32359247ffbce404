/**
 * A small text progress bar with rate and ETA for command-line tools, written to stderr.
 *
 * On a terminal it redraws one line (`\r`); otherwise (CI logs, pipes) it prints a line at every 10% so logs
 * stay short.
 *
 * `[#########...........]  45/250  18.0%  3.1/s  elapsed 14s  ETA 1m06s  sub03/EP01_2`
 *
 * @module
 */

/** Formats milliseconds as `850ms`, `14s`, `1m06s` or `2h03m`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "?";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** Steps per second as `12/s` or `3.1/s`; slow rates (under 0.1/s, such as LOSO folds) per minute or hour. */
function formatRate(perSecond: number): string {
  if (perSecond === 0 || perSecond >= 0.1) {
    return `${perSecond >= 10 ? perSecond.toFixed(0) : perSecond.toFixed(1)}/s`;
  }
  return perSecond * 60 >= 0.1 ? `${(perSecond * 60).toFixed(1)}/min` : `${(perSecond * 3600).toFixed(1)}/h`;
}

/**
 * Renders one progress line (pure; no I/O).
 *
 * ETA = elapsed / (done − skipped) · (total − done), i.e. the mean rate so far; `skipped` steps (work found
 * already done, such as resumed folds) count as done but not towards the rate.
 *
 * @example
 * ```ts
 * import { renderProgress } from "./progress.ts";
 * import assert from "node:assert/strict";
 * assert.equal(
 *   renderProgress(1, 4, 2000, { width: 8 }),
 *   "[##......]  1/4  25.0%  0.5/s  elapsed 2s  ETA 6s",
 * );
 * ```
 */
export function renderProgress(
  done: number,
  total: number,
  elapsedMs: number,
  { width = 30, label = "", detail = "", skipped = 0 }: {
    width?: number;
    label?: string;
    detail?: string;
    skipped?: number;
  } = {},
): string {
  const frac = total > 0 ? Math.min(1, Math.max(0, done / total)) : 1;
  const filled = Math.round(frac * width);
  const bar = `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
  const worked = Math.max(0, done - skipped);
  const rate = elapsedMs > 0 ? worked / (elapsedMs / 1000) : 0;
  const eta = worked > 0 ? (elapsedMs / worked) * (total - done) : NaN;
  const parts = [
    label,
    bar,
    `${String(done).padStart(String(total).length)}/${total}`,
    `${(frac * 100).toFixed(1)}%`,
    formatRate(rate),
    `elapsed ${formatDuration(elapsedMs)}`,
    done >= total ? "done" : `ETA ${formatDuration(eta)}`,
    detail,
  ].filter((p) => p !== "");
  return parts.join("  ");
}

/** Where the bar writes: anything with a sync write (Deno.stderr by default). */
export interface ProgressSink {
  writeSync(p: Uint8Array): number;
  isTerminal?(): boolean;
}

/** Options for {@link ProgressBar}. */
export interface ProgressBarOptions {
  /** Text before the bar. */
  label?: string;
  /** Bar width in characters. @default 30 */
  width?: number;
  /** @default Deno.stderr */
  sink?: ProgressSink;
  /** Minimum milliseconds between terminal redraws. @default 100 */
  minIntervalMs?: number;
  /** Clock (tests inject one). @default performance.now */
  now?: () => number;
}

/**
 * A progress bar over `total` steps.
 *
 * @example
 * ```ts ignore
 * const bar = new ProgressBar(samples.length, { label: "flow" });
 * for (const s of samples) { await work(s); bar.tick(1, s.id); }
 * bar.finish();
 * ```
 */
export class ProgressBar {
  readonly total: number;
  private done = 0;
  private skipped = 0;
  private readonly start: number;
  private lastDraw = -Infinity;
  private lastDecile = -1;
  private readonly opts: Required<Omit<ProgressBarOptions, "sink">> & { sink: ProgressSink };
  private readonly tty: boolean;
  private finished = false;
  private lastDetail = "";

  constructor(total: number, opts: ProgressBarOptions = {}) {
    if (!Number.isInteger(total) || total < 0) {
      throw new RangeError(`ProgressBar: total ${total} is not a count`);
    }
    this.total = total;
    this.opts = {
      label: opts.label ?? "",
      width: opts.width ?? 30,
      sink: opts.sink ?? Deno.stderr,
      minIntervalMs: opts.minIntervalMs ?? 100,
      now: opts.now ?? (() => performance.now()),
    };
    this.tty = this.opts.sink.isTerminal?.() ?? false;
    this.start = this.opts.now();
  }

  private write(s: string): void {
    this.opts.sink.writeSync(new TextEncoder().encode(s));
  }

  /** Sets the number of finished steps and redraws (rate-limited); `detail` is shown at the end. */
  update(done: number, detail = ""): void {
    this.done = Math.min(done, this.total);
    this.lastDetail = detail;
    const t = this.opts.now();
    const line = () =>
      renderProgress(this.done, this.total, t - this.start, {
        width: this.opts.width,
        label: this.opts.label,
        detail,
        skipped: this.skipped,
      });
    if (this.tty) {
      if (t - this.lastDraw >= this.opts.minIntervalMs || this.done === this.total) {
        this.write(`\r\x1b[2K${line()}`);
        this.lastDraw = t;
      }
    } else {
      const decile = this.total > 0 ? Math.floor((10 * this.done) / this.total) : 10;
      if (decile > this.lastDecile) {
        this.write(`${line()}\n`);
        this.lastDecile = decile;
      }
    }
  }

  /** Adds `n` finished steps. */
  tick(n = 1, detail = ""): void {
    this.update(this.done + n, detail);
  }

  /** True when the bar redraws one line of a terminal (`\r`), false when it prints a line per 10 %. */
  get terminal(): boolean {
    return this.tty;
  }

  /**
   * Prints `line` above the bar: on a terminal the bar's line is cleared, the text written on it and the bar
   * drawn again below; elsewhere the text is written as a line of its own.
   */
  log(line: string): void {
    if (!this.tty || this.finished) {
      this.write(`${line}\n`);
      return;
    }
    this.write(`\r\x1b[2K${line}\n`);
    this.lastDraw = -Infinity;
    this.update(this.done, this.lastDetail);
  }

  /**
   * Adds `n` steps that were already done (resumed work): they fill the bar but do not count towards the
   * rate, so the ETA stays that of the work still to do.
   */
  skip(n: number, detail = ""): void {
    this.skipped += Math.max(0, Math.min(n, this.total - this.done));
    this.update(this.done + n, detail);
  }

  /** Draws the final state and ends the line. Safe to call twice. */
  finish(detail = ""): void {
    if (this.finished) return;
    this.finished = true;
    const t = this.opts.now();
    const line = renderProgress(this.done, this.total, t - this.start, {
      width: this.opts.width,
      label: this.opts.label,
      detail,
      skipped: this.skipped,
    });
    if (this.tty) this.write(`\r\x1b[2K${line}\n`);
    else if (this.lastDecile < 10 || detail) this.write(`${line}\n`);
  }
}
