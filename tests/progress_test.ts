import assert from "node:assert/strict";
import { formatDuration, ProgressBar, renderProgress } from "../lib/progress.ts";

Deno.test("formatDuration and renderProgress", () => {
  assert.deepEqual([850, 14_000, 66_000, 7_380_000, -1, NaN].map(formatDuration), [
    "850ms",
    "14s",
    "1m06s",
    "2h03m",
    "?",
    "?",
  ]);
  // 45 of 250 in 14 s: rate 3.2/s, ETA = 14/45 * 205 s = 63.8 s.
  assert.equal(
    renderProgress(45, 250, 14_000, { width: 20, label: "flow", detail: "sub03/EP01_2" }),
    "flow  [####................]   45/250  18.0%  3.2/s  elapsed 14s  ETA 1m04s  sub03/EP01_2",
  );
  assert.match(
    renderProgress(250, 250, 60_000, { width: 4 }),
    /^\[####\] {2}250\/250 {2}100\.0% {2}4\.2\/s {2}elapsed 1m00s {2}done$/,
  );
  assert.match(renderProgress(0, 10, 0, { width: 4 }), /0\.0\/s {2}elapsed 0ms {2}ETA \?$/);
  // slow steps (LOSO folds): 68 folds in 50 min is 1.4/min; 3 in 5 h 0.6/h
  assert.match(renderProgress(68, 100, 3_000_000, { width: 4 }), / 1\.4\/min {2}elapsed 50m00s/);
  assert.match(renderProgress(3, 10, 18_000_000, { width: 4 }), / 0\.6\/h {2}elapsed 5h00m/);
  assert.match(renderProgress(0, 0, 5, { width: 2 }), /^\[##\] {2}0\/0 {2}100\.0%/);
});

function sink(tty: boolean) {
  const out: string[] = [];
  return {
    out,
    writeSync: (b: Uint8Array) => (out.push(new TextDecoder().decode(b)), b.length),
    isTerminal: () => tty,
  };
}

Deno.test("ProgressBar: one line per 10% off a terminal, rate-limited redraws on one", () => {
  let t = 0;
  const log = sink(false);
  const bar = new ProgressBar(20, { sink: log, now: () => t, width: 10 });
  for (let i = 0; i < 20; i++) {
    t += 100;
    bar.tick(1, `s${i}`);
  }
  bar.finish();
  assert.equal(log.out.length, 11); // first tick (decile 0), then deciles 1..10; finish adds nothing
  assert.ok(log.out.every((l) => l.endsWith("\n")));
  assert.match(log.out[10], /20\/20 {2}100\.0% {2}10\/s {2}elapsed 2s {2}done {2}s19/);

  const tty = sink(true);
  t = 0;
  const bar2 = new ProgressBar(100, { sink: tty, now: () => t, minIntervalMs: 100 });
  for (let i = 0; i < 100; i++) {
    t += 10;
    bar2.tick();
  }
  bar2.finish();
  bar2.finish();
  assert.ok(tty.out.length <= 12 && tty.out.length >= 10, `${tty.out.length} redraws`);
  assert.ok(tty.out.every((l) => l.startsWith("\r\x1b[2K")));
  assert.ok(tty.out[tty.out.length - 1].endsWith("\n"));
  assert.throws(() => new ProgressBar(-1), RangeError);
});

Deno.test("ProgressBar.skip: resumed work fills the bar but not the rate, so the ETA is the remaining work's", () => {
  // 30 of 100 done before the run (resumed), then 10 in 20 s: rate 0.5/s, ETA = 20/10 · 60 = 120 s.
  assert.equal(
    renderProgress(40, 100, 20_000, { width: 10, skipped: 30 }),
    "[####......]   40/100  40.0%  0.5/s  elapsed 20s  ETA 2m00s",
  );
  let t = 0;
  const log = sink(false);
  const bar = new ProgressBar(10, { sink: log, now: () => t, width: 10 });
  bar.skip(4, "resumed");
  t += 4_000;
  bar.tick(2, "trained");
  // 6 of 10 after 4 s, 2 of them trained: 0.5/s, ETA 4 / 2 · 4 = 8 s (not 4 / 6 · 4 ≈ 3 s)
  assert.match(log.out[log.out.length - 1], /6\/10 {2}60\.0% {2}0\.5\/s {2}elapsed 4s {2}ETA 8s {2}trained/);
  bar.skip(100);
  assert.match(log.out[log.out.length - 1], /10\/10 {2}100\.0% {2}0\.5\/s .*done/);
});

Deno.test("ProgressBar.log: on a terminal the text replaces the bar's line and the bar is drawn again below", () => {
  let t = 0;
  const tty = sink(true);
  const bar = new ProgressBar(4, { sink: tty, now: () => t, width: 4 });
  assert.equal(bar.terminal, true);
  t = 1000;
  bar.tick(1, "fold 0");
  tty.out.length = 0;
  bar.log("fold 0: accuracy 1.000");
  assert.equal(tty.out[0], "\r\x1b[2Kfold 0: accuracy 1.000\n");
  // redrawn at once, with the same detail
  assert.ok(tty.out[1].startsWith("\r\x1b[2K[#...]  1/4"), tty.out[1]);
  assert.ok(tty.out[1].endsWith("  fold 0"), tty.out[1]);
  const log = sink(false);
  const plain = new ProgressBar(4, { sink: log });
  assert.equal(plain.terminal, false);
  plain.log("a line");
  assert.deepEqual(log.out, ["a line\n"]);
});
