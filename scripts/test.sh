#!/usr/bin/env bash
# Runs the test suite (installs deno from npm on first use). Extra arguments go to `deno test`,
# e.g. scripts/test.sh --filter selective.
# Ends with a plain "N passed, N failed" line.
#
# Known flake: once in a few runs the deno process has aborted at exit, after every test passed and the
# summary was printed ("corrupted size vs. prev_size in fastbins", glibc's heap check, SIGABRT; origin not
# found yet, see README "Known limits"). When that happens — killed by a signal AND a complete summary with 0
# failed — the suite is run once more and the second run decides; the abort is reported, never hidden.
source "$(dirname "$0")/env.sh"
cd "$ROOT"
mkdir -p out

run_suite() {
  set +e
  "$DENO" test -A --no-check=remote "$@" tests/ 2>&1 | tee out/test.log
  status=${PIPESTATUS[0]}
  set -e
  summary=$(grep -E '^(ok|FAILED) \| [0-9]+ passed' out/test.log | tail -1)
}

run_suite "$@"
if [ "$status" -ge 128 ] && grep -qE '^ok \| [0-9]+ passed \| 0 failed' <<<"$summary"; then
  echo "scripts/test.sh: WARNING: deno exited with status $status (killed by signal $((status - 128))) AFTER all tests passed ($summary); running the suite once more" >&2
  cp out/test.log out/test-aborted.log
  run_suite "$@"
fi
passed=$(sed -E 's/^(ok|FAILED) \| ([0-9]+) passed.*/\2/' <<<"$summary")
failed=$(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$summary")
echo "${passed:-0} passed, ${failed:-0} failed" | tee out/test-summary.txt
exit "$status"
