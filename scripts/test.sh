#!/usr/bin/env bash
# Runs the test suite (installs deno from npm on first use). Extra arguments go to `deno test`,
# e.g. scripts/test.sh --filter selective.
# Ends with a plain "N passed, N failed" line.
#
# Known flake (pre-existing): in a fraction of runs the deno process aborts at exit, after every test passed
# and the summary was printed ("corrupted size vs. prev_size in fastbins", glibc's heap check, SIGABRT; origin
# not found yet, see README "Known limits"). When that happens — killed by a signal AND a complete summary with
# 0 failed — the suite is run again, at most 3 attempts in all, and the last run decides; every abort is
# reported on stderr and its log kept as out/test-aborted-N.log, never hidden.
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
attempt=1
while [ "$status" -ge 128 ] && [ "$attempt" -lt 3 ] && grep -qE '^ok \| [0-9]+ passed \| 0 failed' <<<"$summary"; do
  echo "scripts/test.sh: WARNING: deno exited with status $status (killed by signal $((status - 128))) AFTER all tests passed ($summary); running the suite again (attempt $((attempt + 1)) of 3)" >&2
  cp out/test.log "out/test-aborted-$attempt.log"
  attempt=$((attempt + 1))
  run_suite "$@"
done
passed=$(sed -E 's/^(ok|FAILED) \| ([0-9]+) passed.*/\2/' <<<"$summary")
failed=$(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$summary")
echo "${passed:-0} passed, ${failed:-0} failed" | tee out/test-summary.txt
exit "$status"
