#!/usr/bin/env bash
# The GPU check of the Triton depthwise conv: the key numbers first (fixed-config fp32 and
# bf16 kernels at RepLKNet-31B's upernet-ade20k-512 shapes, batch 2 and 16, with the static
# bound beside each), then the autotuned paths, the training step, ncu metrics and the
# cuda tests while time remains. Steps and budgets: mmreplk/ops/gpu_check.py.
#
#   bash tools/gpu_check.sh [REPORT.md]
#
# Report: REPORT.md, else $OUT/gpu_report.md when OUT is set, else work_dirs/gpu_report.md.
# Needs python3 with torch (+ triton); no pytest, network, mmseg or mmdet. The whole check
# is stopped after GPU_CHECK_BUDGET_S seconds (default 480), keeping the rows written so
# far. Without a CUDA device it reports "no CUDA device" and exits 0.
set -u
cd "$(dirname "$0")/.." || exit 1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
BUDGET_S=${GPU_CHECK_BUDGET_S:-480}
if [ $# -ge 1 ]; then
    REPORT=$1
elif [ -n "${OUT:-}" ]; then
    REPORT=$OUT/gpu_report.md
else
    REPORT=work_dirs/gpu_report.md
fi
mkdir -p "$(dirname "$REPORT")" || exit 1
timeout -s INT -k 15 "$BUDGET_S" "$PY" -m mmreplk.ops.gpu_check --report "$REPORT"
RC=$?
if [ "$RC" = 124 ]; then
    printf '\nstopped after the %s s budget of the whole check\n' "$BUDGET_S" | tee -a "$REPORT"
fi
echo "report: $REPORT"
exit "$RC"
