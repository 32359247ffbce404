#!/usr/bin/env bash
# Runs merba's WebGPU checks and benchmarks on a lent GPU machine, from what scripts/device_prepare.sh put in
# .dev/ and .gl/ (run it there through the device tool, carry [".dev", ".gl"]). Writes $OUT/log.txt and, for
# the LOSO step, $OUT/results.json, $OUT/summary.md and $OUT/loso.tgz.
#
#   bash scripts/device_run.sh [local]
#
# Steps (STEPS, default "info tests throughput programs loso scanbench"): adapter info; the WebGPU test
# bundles; the training-throughput bench on webgpu at batch 32 (the baseline bundles tp_old_* first, when
# prepared) and at TP_BIG (default 256); the per-program GPU times of a training step at PT_BATCH (default
# "32,256"); a full synthetic LOSO on webgpu with JOBS shard processes (default 14) and EPOCHS (60) under a
# LOSO_TIMEOUT (s, default 220); the selective-scan bench. One device command may run 600 s and a session has
# 900 s in all: run STEPS="info tests throughput programs" (≈ 6–8 min) first, then, if time is left,
# STEPS="loso scanbench" with a smaller LOSO_TIMEOUT. `local` skips the loader set-up (for a dry run here on llvmpipe).
set -uo pipefail
R="$(pwd)"
OUT="${OUT:-/tmp/merba-device-out}"
mkdir -p "$OUT"
STEPS="${STEPS:-info tests throughput programs loso scanbench}"
TP_BIG="${TP_BIG:-256}"
PT_BATCH="${PT_BATCH:-32,256}"
EPOCHS="${EPOCHS:-60}"
JOBS="${JOBS:-14}"
LOSO_TIMEOUT="${LOSO_TIMEOUT:-220}"
export NO_COLOR=1 DENO_NO_UPDATE_CHECK=1 DENO_DIR=/tmp/merba-denodir
[ -x .dev/deno ] || { xz -d -T0 -c .dev/deno.xz >.dev/deno && chmod +x .dev/deno; }
D="$R/.dev/deno"
for f in .dev/*.bundle.js.xz; do xz -d -k -f "$f"; done
# bundles resolve fixture and data paths from their own location
cp .dev/ops.bundle.js tests/ops/
cp .dev/scan.bundle.js tests/fixtures/selective_scan/
cp .dev/cli.bundle.js lib/train/
cp .dev/tp.bundle.js .dev/pt.bundle.js .dev/ssb.bundle.js bench/
for f in .dev/tp_old_*.bundle.js; do [ -f "$f" ] && cp "$f" bench/; done
if [ "${1:-}" != local ]; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  export DENO_WEBGPU_BACKEND="${DENO_WEBGPU_BACKEND:-vulkan}"
fi
NOISE='^    at \|__dirname\|Initialization of backend wasm\|^Hi, looks\|^====\|the wasm backend did not start\|^$'
has() { [[ " $STEPS " == *" $1 "* ]]; }
s() { echo "=== $* ($(date -u +%T))"; }
{
  if has info; then
    s info
    nvidia-smi -L 2>&1
    nproc
    if ! "$D" run --no-config .dev/webgpu_info.ts && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
      export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
      export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
      "$D" run --no-config .dev/webgpu_info.ts
    fi
  fi
  if has tests; then
    s tests: selective scan golden on webgpu
    timeout 120 "$D" test --no-config -A tests/fixtures/selective_scan/scan.bundle.js 2>&1 | grep -E "\.\.\. |^ok|FAIL|rror"
    s tests: webgpu modules "(one failure expected: the wasm-backend test, since tfjs's wasm backend cannot start from a bundle)"
    timeout 180 "$D" test --no-config -A tests/ops/ops.bundle.js 2>&1 | grep -E "\.\.\. |^ok|FAIL|rror"
  fi
  if has throughput; then
    for f in bench/tp_old_*.bundle.js bench/tp.bundle.js; do
      [ -f "$f" ] || continue
      s "throughput $(basename "$f" .bundle.js), batch 32"
      timeout 120 "$D" run --no-config -A "$f" --backends webgpu --epochs-proj 60 2>&1 | grep -v "$NOISE"
    done
    s "throughput tp, batch $TP_BIG"
    timeout 120 "$D" run --no-config -A bench/tp.bundle.js --backends webgpu --batch "$TP_BIG" --samples "$((TP_BIG * 4))" \
      --rounds 1 --epochs-proj 60 2>&1 | grep -v "$NOISE"
  fi
  if has programs; then
    s "per-program GPU times, batch $PT_BATCH"
    timeout 150 "$D" run --no-config -A bench/pt.bundle.js --batch "$PT_BATCH" --steps 2 --top 30 2>&1 | grep -v "$NOISE"
  fi
  if has loso; then
    s "loso webgpu, $JOBS processes, $EPOCHS epochs"
    rm -rf /tmp/merba-loso
    (cd /tmp && time timeout "$LOSO_TIMEOUT" "$D" run -A "$R/lib/train/cli.bundle.js" train --dataset synthetic \
      --protocol synthetic-5class --config merba-tiny --epochs "$EPOCHS" --lr 1e-2 --backend webgpu --jobs "$JOBS" \
      --out /tmp/merba-loso) 2>&1 | grep -v "$NOISE" | tail -25
    pkill -f cli.bundle.js
    cp /tmp/merba-loso/results.json /tmp/merba-loso/summary.md "$OUT/" 2>/dev/null
    tar czf "$OUT/loso.tgz" -C /tmp merba-loso 2>/dev/null
  fi
  if has scanbench; then
    s scan bench
    timeout 120 "$D" run --no-config -A bench/ssb.bundle.js --no-torch 2>&1 | grep "^|\|median"
  fi
  s done
} 2>&1 | tee "$OUT/log.txt"
exit 0
