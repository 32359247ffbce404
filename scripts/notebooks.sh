#!/usr/bin/env bash
# The README's main command: sets up the notebook environment and runs every notebook headless.
#
#   scripts/notebooks.sh                 # all notebooks/NN_*.ipynb
#   scripts/notebooks.sh notebooks/02_scan_directions.ipynb   # a subset
#   scripts/notebooks.sh --setup-only    # environment only
#   scripts/notebooks.sh --lab [ARGS]    # environment, then JupyterLab on notebooks/ (extra ARGS go to jupyter lab)
#
# 1. deno (scripts/env.sh) and a project-local Python virtualenv .venv with pinned Jupyter tools
#    (nbclient 0.11 for the output-race fix, nbconvert, JupyterLab, and plotly, which brings the
#    jupyterlab-plotly renderer);
# 2. the Deno kernelspec, installed with --force into .cache/xdg-data/jupyter (XDG_DATA_HOME / JUPYTER_PATH),
#    so it always points at this deno and never touches ~/.local (Jupyter config and runtime files also stay
#    in .cache/);
# 3. executes each notebook top to bottom (scripts/run_notebooks.py: no lost outputs) into out/notebooks/
#    (<name>.ipynb executed, <name>.html export drawing the plotly figures offline);
# 4. checks every cell tagged `figure` produced a plotly figure and no cell raised;
# 5. type-checks the notebook code (exported to out/notebooks/typecheck/*.ts, then deno check);
# 6. browser tests: headless Chromium opens the HTML exports (every plotly output drawn) and the first
#    executed notebook in JupyterLab (drawn by jupyterlab-plotly), checks the DOM, saves screenshots
#    (installs Debian's chromium with apt-get when missing and allowed).
# Safe to re-run. Exit status 1 if any step fails (later steps still run).
set -uo pipefail
source "$(dirname "$0")/env.sh"
set +e
cd "$ROOT"

SETUP_ONLY=0
LAB=0
LAB_ARGS=()
NOTEBOOKS=()
for a in "$@"; do
  if [ "$LAB" = 1 ]; then LAB_ARGS+=("$a"); continue; fi
  case "$a" in
    --setup-only) SETUP_ONLY=1 ;;
    --lab) LAB=1 ;;
    *) NOTEBOOKS+=("$a") ;;
  esac
done
if [ ${#NOTEBOOKS[@]} -eq 0 ]; then NOTEBOOKS=(notebooks/[0-9][0-9]_*.ipynb); fi
OUT="$ROOT/out/notebooks"
fail=0
step() { echo "[notebooks] $*"; }

# --- 1. Python tools -------------------------------------------------------------------------------
REQS=("nbclient==0.11.*" "nbconvert==7.17.*" "nbformat==5.*" "jupyterlab==4.6.*" "plotly==7.1.*")
STAMP=".venv/.merba-notebooks-$(echo "${REQS[*]}" | md5sum | cut -c1-12)"
if [ ! -f "$STAMP" ]; then
  step "creating .venv with ${REQS[*]} ..."
  python3 -m venv .venv || { echo "[notebooks] python3 -m venv failed (Debian: apt-get install python3-venv)"; exit 1; }
  # --retries 1: where the default index is unreachable, fall through to configured mirrors quickly.
  .venv/bin/pip install --quiet --retries "${PIP_RETRIES:-1}" "${REQS[@]}" || {
    echo "[notebooks] pip install failed"
    exit 1
  }
  touch "$STAMP"
fi
PY="$ROOT/.venv/bin/python"

# --- 2. Deno kernelspec (project-local) --------------------------------------------------------------
export XDG_DATA_HOME="$ROOT/.cache/xdg-data"
export JUPYTER_PATH="$XDG_DATA_HOME/jupyter"
export JUPYTER_RUNTIME_DIR="$ROOT/.cache/jupyter-runtime"
export JUPYTER_CONFIG_DIR="$ROOT/.cache/jupyter-config" # JupyterLab settings and workspaces stay in the project
export JUPYTER_PLATFORM_DIRS=1
mkdir -p "$JUPYTER_PATH" "$JUPYTER_RUNTIME_DIR" "$JUPYTER_CONFIG_DIR"
"$DENO" jupyter --install --force --name deno --display "Deno" >/dev/null || {
  echo "[notebooks] deno jupyter --install failed"
  exit 1
}
step "kernel: $("$PY" -m jupyter kernelspec list 2>/dev/null | grep -E '^\s+deno ' | sed 's/^ *//')"
if [ "$LAB" = 1 ]; then
  step "starting JupyterLab on notebooks/ (kernel: Deno)"
  ROOT_FLAG=()
  [ "$(id -u)" = 0 ] && ROOT_FLAG=(--allow-root)
  exec "$ROOT/.venv/bin/jupyter" lab --notebook-dir="$ROOT/notebooks" "${ROOT_FLAG[@]}" "${LAB_ARGS[@]}"
fi
if [ "$SETUP_ONLY" = 1 ]; then
  step "environment ready. Open the notebooks with:"
  echo "  XDG_DATA_HOME=$XDG_DATA_HOME JUPYTER_PATH=$JUPYTER_PATH .venv/bin/jupyter lab notebooks/"
  exit 0
fi

# --- 3. execute -----------------------------------------------------------------------------------
mkdir -p "$OUT"
PLOTLY_JS=$("$DENO" eval 'import { plotlyJsPath } from "./lib/viz/plotly.ts"; console.log(plotlyJsPath())')
step "executing ${#NOTEBOOKS[@]} notebook(s) -> out/notebooks/"
"$PY" scripts/run_notebooks.py --out "$OUT" --plotly-js "$PLOTLY_JS" "${NOTEBOOKS[@]}" || fail=1

EXECUTED=()
HTML=()
for nb in "${NOTEBOOKS[@]}"; do
  name=$(basename "$nb" .ipynb)
  [ -f "$OUT/$name.ipynb" ] && EXECUTED+=("$OUT/$name.ipynb")
  [ -f "$OUT/$name.html" ] && HTML+=("$OUT/$name.html")
done

# --- 4. expected figures --------------------------------------------------------------------------
step "checking figures"
if [ ${#EXECUTED[@]} -gt 0 ]; then "$PY" scripts/check_notebooks.py figures "${EXECUTED[@]}" || fail=1; else fail=1; fi

# --- 5. type-check the notebook code --------------------------------------------------------------
step "type-checking notebook code"
rm -rf "$OUT/typecheck"
"$PY" scripts/check_notebooks.py scripts --out "$OUT/typecheck" "${NOTEBOOKS[@]}" &&
  "$DENO" check "$OUT"/typecheck/*.ts || fail=1

# --- 6. browser test ------------------------------------------------------------------------------
bash "$ROOT/scripts/ensure_chromium.sh"
step "browser test: HTML exports"
if [ ${#HTML[@]} -gt 0 ]; then "$DENO" run -A scripts/browser_test.ts "${HTML[@]}" || fail=1; else fail=1; fi

# The first executed notebook opened in JupyterLab (untrusted, as CI output is): jupyterlab-plotly must draw it.
if [ ${#EXECUTED[@]} -gt 0 ]; then
  step "browser test: JupyterLab"
  PORT=$((20000 + RANDOM % 20000))
  TOKEN="merba-$RANDOM$RANDOM"
  ROOT_FLAG=()
  [ "$(id -u)" = 0 ] && ROOT_FLAG=(--allow-root)
  "$ROOT/.venv/bin/jupyter" lab --no-browser "${ROOT_FLAG[@]}" --port="$PORT" --ServerApp.port_retries=0 \
    --IdentityProvider.token="$TOKEN" --ServerApp.root_dir="$OUT" >"$OUT/jupyterlab.log" 2>&1 &
  LAB_PID=$!
  up=0
  for _ in $(seq 1 90); do
    if "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
      "http://127.0.0.1:$PORT/api/status?token=$TOKEN" >/dev/null 2>&1; then up=1; break; fi
    kill -0 "$LAB_PID" 2>/dev/null || break
    sleep 1
  done
  if [ "$up" = 1 ]; then
    "$DENO" run -A scripts/browser_test.ts --lab "http://127.0.0.1:$PORT/lab/tree/" --token "$TOKEN" "${EXECUTED[0]}" || fail=1
  else
    echo "[notebooks] JupyterLab did not start (see out/notebooks/jupyterlab.log)"
    fail=1
  fi
  kill "$LAB_PID" 2>/dev/null
  wait "$LAB_PID" 2>/dev/null
fi

if [ "$fail" = 0 ]; then step "all notebook checks passed"; else step "FAILED (see above)"; fi
exit "$fail"
