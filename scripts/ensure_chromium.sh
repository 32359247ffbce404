#!/usr/bin/env bash
# Installs Debian's chromium with apt-get when no `chromium` is on PATH, MERBA_CHROMIUM is unset, and this
# runs as root with apt-get available; otherwise does nothing. Used by scripts/notebooks.sh (browser tests)
# and .ci/run (before the tests, so that the exportFigure test runs instead of being skipped on a fresh
# machine). Never fails: callers report a missing browser themselves.
if ! command -v chromium >/dev/null 2>&1 && [ -z "${MERBA_CHROMIUM:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian chromium (browser tests) ..." >&2
    apt-get install -y -q -o DPkg::Lock::Timeout=600 chromium >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q -o DPkg::Lock::Timeout=600 chromium >/dev/null 2>&1; }
  fi
fi
exit 0
