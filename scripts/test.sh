#!/usr/bin/env bash
# Runs the test suite (installs deno from npm on first use). Extra arguments go to `deno test`,
# e.g. scripts/test.sh --filter selective.
# Ends with a plain "N passed, N failed" line.
source "$(dirname "$0")/env.sh"
cd "$ROOT"
mkdir -p out
set +e
"$DENO" test -A --no-check=remote "$@" tests/ 2>&1 | tee out/test.log
status=${PIPESTATUS[0]}
set -e
summary=$(grep -E '^(ok|FAILED) \| [0-9]+ passed' out/test.log | tail -1)
passed=$(sed -E 's/^(ok|FAILED) \| ([0-9]+) passed.*/\2/' <<<"$summary")
failed=$(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$summary")
echo "${passed:-0} passed, ${failed:-0} failed" | tee out/test-summary.txt
exit "$status"
