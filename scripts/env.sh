# Sourced by the project scripts: makes `deno` available (a pinned copy from npm in .tools/ unless
# MERBA_DENO or a deno 2.9.x on PATH is used) and installs the npm dependencies pinned in deno.json.
# Safe to re-run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DENO_VERSION=2.9.6
if [ -n "${MERBA_DENO:-}" ]; then
  DENO="$MERBA_DENO"
elif command -v deno >/dev/null 2>&1 && deno --version | head -1 | grep -q "deno 2\.9\."; then
  DENO="$(command -v deno)"
else
  if [ ! -x "$ROOT/.tools/node_modules/.bin/deno" ]; then
    echo "installing deno@$DENO_VERSION from npm into .tools/ ..." >&2
    (cd "$ROOT" && mkdir -p .tools && npm install --prefix .tools --no-audit --no-fund --loglevel=error "deno@$DENO_VERSION" >&2)
  fi
  DENO="$ROOT/.tools/node_modules/.bin/deno"
fi
export DENO
export PATH="$(dirname "$DENO"):$PATH"
export NO_COLOR=1
(cd "$ROOT" && "$DENO" install --quiet >/dev/null 2>&1 || "$DENO" install)
