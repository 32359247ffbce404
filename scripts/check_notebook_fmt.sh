#!/usr/bin/env bash
# Checks (or with --fix, applies) `deno fmt` formatting of the notebooks: code cells as TypeScript and
# markdown cells, with the project's fmt options.
# Why not `deno fmt --check`: in deno 2.9.6 it reports .ipynb files as "not formatted" even when `deno fmt`
# leaves them byte-identical (seen with a fresh DENO_DIR; a warm incremental cache hides it). So .ipynb is
# excluded from the fmt config, and this script formats a copy and compares bytes.
source "$(dirname "$0")/env.sh"
cd "$ROOT"
fix=0
[ "${1:-}" = "--fix" ] && fix=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# the project's fmt options without its excludes (which skip *.ipynb)
"$DENO" eval 'const c = JSON.parse(Deno.readTextFileSync("deno.json")).fmt ?? {}; delete c.exclude;
  console.log(JSON.stringify({ fmt: c }))' >"$tmp/deno.json"
fail=0
for nb in notebooks/*.ipynb tests/notebooks/*.ipynb; do
  [ -f "$nb" ] || continue
  copy="$tmp/$(echo "$nb" | tr / _)"
  cp "$nb" "$copy"
  "$DENO" fmt -q --config "$tmp/deno.json" "$copy" || fail=1
  if ! cmp -s "$nb" "$copy"; then
    if [ "$fix" = 1 ]; then
      cp "$copy" "$nb"
      echo "formatted: $nb"
    else
      echo "not formatted: $nb (run: bash scripts/check_notebook_fmt.sh --fix)"
      fail=1
    fi
  fi
done
[ "$fail" = 0 ] && echo "notebooks formatted"
exit "$fail"
