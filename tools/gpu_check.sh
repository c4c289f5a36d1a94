#!/usr/bin/env bash
# The GPU check of the fast depthwise conv, in one run of under 6 minutes on one H100/H200:
# environment, the `cuda` tests (Triton paths against float64 F.conv2d), the benchmark (fp32
# and bf16: RepLKNet-31B's stage shapes at 224 and 512, then its training step, which reuses
# the Triton binaries compiled before it), and one markdown report with all of it.
#
#   bash tools/gpu_check.sh [REPORT.md]
#
# Report: REPORT.md, else $OUT/gpu_report.md when OUT is set, else work_dirs/gpu_report.md.
# Needs torch (+ triton for the Triton kernels); no network, no mmseg/mmdet; mmengine and
# mmcv (lite is enough) only for the training-step line, which says so when they are
# missing. Each step has a time budget (seconds, env GPU_CHECK_{TEST,SHAPES,E2E}_S); a step
# that runs out of time is interrupted and reported as such. Without a CUDA device the CUDA
# steps are skipped with a message (the tests are still collected, to check the imports).
set -u
cd "$(dirname "$0")/.." || exit 1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python}
TEST_S=${GPU_CHECK_TEST_S:-120}
SHAPES_S=${GPU_CHECK_SHAPES_S:-130}
E2E_S=${GPU_CHECK_E2E_S:-90}
if [ $# -ge 1 ]; then
    REPORT=$1
elif [ -n "${OUT:-}" ]; then
    REPORT=$OUT/gpu_report.md
else
    REPORT=work_dirs/gpu_report.md
fi
mkdir -p "$(dirname "$REPORT")" || exit 1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
BENCH=tools/analysis_tools/benchmark_dwconv.py

say() { printf '%s\n' "$*" | tee -a "$REPORT"; }
# run NAME BUDGET CMD...: run CMD (output to the terminal and $TMP/NAME.log) within BUDGET
# seconds (SIGINT at the end, so pytest and python still print what they have); sets RC.
run() {
    local name=$1 budget=$2 start=$SECONDS
    shift 2
    echo "+ $*"
    timeout -s INT -k 20 "$budget" "$@" 2>&1 | tee "$TMP/$name.log"
    RC=${PIPESTATUS[0]}
    local note="exit $RC"
    [ "$RC" = 124 ] && note="stopped after its ${budget} s budget"
    printf '%s: %s, %d s\n' "$name" "$note" $((SECONDS - start)) >> "$TMP/steps"
}
# log NAME: the step's output as a fenced block of the report
log() { { echo '```'; cat "$TMP/$1.log"; echo '```'; } >> "$REPORT"; }

: > "$REPORT"
say "# GPU check of the fast depthwise conv ($(date -u '+%Y-%m-%d %H:%M UTC'))"
say ""
say "## Environment"
say ""
run env 60 "$PY" - <<'EOF'
import importlib
import platform

import torch

cuda = torch.cuda.is_available()
print('GPU:', f'{torch.cuda.get_device_name(0)}, '
      f'{torch.cuda.get_device_properties(0).multi_processor_count} SMs, '
      f'{torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB' if cuda
      else 'none (torch.cuda.is_available() is False): the CUDA steps are skipped')
print(f'python {platform.python_version()}, torch {torch.__version__}, CUDA '
      f'{torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}')
for name in ('triton', 'mmengine', 'mmcv'):
    try:
        print(f'{name} {importlib.import_module(name).__version__}')
    except ImportError as err:
        print(f'{name}: not importable ({err})')
print(f'TF32 in convolutions: {torch.backends.cudnn.allow_tf32}')
EOF
log env
if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv \
        > "$TMP/smi.log" 2>&1 && log smi
fi
HAS_CUDA=$("$PY" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null)

say ""
say "## CUDA tests (tests/test_dwconv_cuda.py, float64 reference)"
say ""
run tests "$TEST_S" "$PY" -m pytest -p no:cacheprovider --noconftest -m cuda \
    --durations=8 tests/test_dwconv_cuda.py
log tests

say ""
say "## Benchmark"
say ""
if [ "$HAS_CUDA" = 1 ]; then
    run shapes "$SHAPES_S" "$PY" "$BENCH" --device cuda --dtype fp32 bf16 \
        --shapes 31b-224 31b-512 --e2e off --markdown "$TMP/shapes.md"
    if [ -s "$TMP/shapes.md" ]; then
        cat "$TMP/shapes.md" >> "$REPORT"
    else
        log shapes
    fi
    run e2e "$E2E_S" "$PY" "$BENCH" --device cuda --e2e only
    log e2e
else
    say "skipped: no CUDA device here (torch.cuda.is_available() is False)."
    echo "benchmark: skipped (no CUDA device)" >> "$TMP/steps"
fi

say ""
say "## Steps"
say ""
{ echo '```'; cat "$TMP/steps"; echo "total: $SECONDS s"; echo '```'; } >> "$REPORT"
echo
cat "$TMP/steps"
echo "total: $SECONDS s; report: $REPORT"
