#!/usr/bin/env bash
# One-command set-up of the mmreplk stack into the current Python environment.
#
#   bash tools/install.sh            # install what is missing (idempotent)
#   bash tools/install.sh --check    # only report whether the stack is complete (exit 0/1)
#
# Installs: torch (kept if present, else torch==2.13.0), mmengine 0.10.7, mmcv 2.1.0 built
# from source WITH compiled ops, mmsegmentation 1.2.2, mmdet 3.3.0 (+ their undeclared
# imports ftfy/regex), Triton where the platform has it, pytest (+ xdist, hypothesis), mmreplk (editable) and the
# optional packages of the ONNX, mim and mmdeploy tests (onnx, onnxruntime, onnxslim,
# openmim, mmdeploy and what they import).
set -euo pipefail

PY=${PYTHON:-python}
command -v "$PY" >/dev/null 2>&1 || PY=python3
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TORCH_DEFAULT="torch==2.13.0"
MMENGINE="mmengine==0.10.7"
MMCV_VERSION="2.1.0"
MMSEG="mmsegmentation==1.2.2"
MMDET="mmdet==3.3.0"
TRITON="triton==3.6.0"   # the device machines run Triton 3.6; keep the same API here

# shellcheck source=tools/install_lib.sh
source "$ROOT/tools/install_lib.sh"

if [ "${1:-}" = "--check" ]; then
  if stack_complete; then say "stack complete"; exit 0; fi
  for k in "${!HAVE[@]}"; do say "  $k: ${HAVE[$k]}"; done
  exit 1
fi

START=$(date +%s)
"$PY" -c 'import sys; assert sys.version_info >= (3, 8)' || fail "Python >= 3.8 is required ($PY)."
"$PY" -m pip --version >/dev/null 2>&1 || fail "pip is not available for $PY."

if stack_complete; then
  if [ "${HAVE[mim]:-None}" = None ] || [ "${HAVE[mmdeploy]:-None}" = None ] \
     || [ "${HAVE[onnxscript]:-None}" = None ]; then
    say "the stack is complete; installing the optional packages (mim, mmdeploy, onnxscript)"
    install_optional
  fi
  say "everything is installed (torch ${HAVE[torch]}, mmcv ${HAVE[mmcv]} with ops, mmseg ${HAVE[mmseg]}, mmdet ${HAVE[mmdet]})."
  exit 0
fi

# 1. torch: keep whatever build the user has (CUDA builds must survive).
if [ "${HAVE[torch]:-None}" = None ]; then
  say "installing $TORCH_DEFAULT"
  pip_install "$TORCH_DEFAULT"
else
  say "keeping the installed torch ${HAVE[torch]}"
fi

# 2. An mmcv >= 2.2 cannot be used by mmseg 1.2.2 / mmdet 3.3.0: refuse rather than replace silently.
if [ "${HAVE[mmcv]:-None}" != None ] && [ "${HAVE[mmcv]}" != "$MMCV_VERSION" ]; then
  if "$PY" -c "import sys; v=tuple(int(x) for x in '${HAVE[mmcv]}'.split('.')[:2]); sys.exit(0 if v >= (2, 2) else 1)"; then
    fail "mmcv ${HAVE[mmcv]} is installed, but mmsegmentation 1.2.2 and mmdet 3.3.0 refuse mmcv >= 2.2.0. Remove it first (pip uninstall -y mmcv mmcv-lite) and run this script again; it will build mmcv $MMCV_VERSION with ops."
  fi
fi

# 3. Build tools. setuptools >= 81 has no pkg_resources, which mmcv's setup.py needs.
say "installing build tools (setuptools>=77,<81, wheel, ninja, numpy)"
pip_install -q "setuptools>=77,<81" wheel ninja numpy
"$PY" -c "import pkg_resources" 2>/dev/null \
  || fail "setuptools in this environment has no pkg_resources (setuptools >= 81?); mmcv's build needs it. Run: $PY -m pip install 'setuptools>=77,<81'"

pip_install -q "$MMENGINE"

# 4. mmcv with compiled ops, built from the source package.
if [ "${HAVE[mmcv]:-None}" != "$MMCV_VERSION" ] || [ "${HAVE[mmcv_ops]:-None}" != ok ]; then
  if [ -n "${CXX:-}" ]; then HAVE_CXX=$(command -v "$CXX" || true)
  else HAVE_CXX=$(command -v c++ || command -v g++ || true); fi
  [ -n "$HAVE_CXX" ] \
    || fail "no C++ compiler found (${CXX:-c++/g++}): mmcv's ops must be compiled. Install one (e.g. apt-get install g++) and run again."
  "$PY" -c "import sysconfig, os, sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')) else 1)" \
    || fail "the Python development headers (Python.h) are missing: install python3-dev and run again."
  if [ "${HAVE[mmcv]:-None}" != None ]; then
    say "mmcv ${HAVE[mmcv]} is installed without usable compiled ops; replacing it"
    "$PY" -m pip uninstall -y -q mmcv mmcv-lite mmcv-full >/dev/null 2>&1 || true
  fi
  if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() and torch.version.cuda else 1)" 2>/dev/null \
     && command -v nvcc >/dev/null 2>&1; then
    export FORCE_CUDA=1; say "CUDA torch and nvcc found: building mmcv's CUDA ops too"
  fi
  say "building mmcv $MMCV_VERSION with compiled ops from source: about 15 minutes on 2 cores (a minute if pip's cache holds the wheel)"
  say "(pip keeps the built wheel in its cache, so later installs are quick)"
  export MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc 2>/dev/null || echo 2)}
  ( while sleep 60; do say "... still building mmcv ($(( ($(date +%s) - START) / 60 )) min elapsed)"; done ) &
  TICKER=$!
  trap 'kill $TICKER 2>/dev/null || true' EXIT
  pip_install -q --no-build-isolation "mmcv==$MMCV_VERSION"
  kill $TICKER 2>/dev/null || true
fi
"$PY" - <<'PYEOF' || fail "mmcv was installed but its compiled ops (mmcv._ext) do not load: the build produced an ops-less mmcv. Reinstall with: pip uninstall -y mmcv && MMCV_WITH_OPS=1 pip install --no-build-isolation --no-cache-dir mmcv==2.1.0"
import mmcv.ops
from mmcv.utils import ext_loader
ext_loader.load_ext('_ext', ['nms', 'roi_align_forward'])
PYEOF
say "mmcv $MMCV_VERSION with compiled ops: ok"

# 5. The downstream toolboxes and their undeclared imports.
pip_install -q "$MMSEG" "$MMDET" ftfy regex pytest pytest-xdist hypothesis

# 6. Triton, where the platform has wheels (Linux x86_64 / aarch64).
if "$PY" -c "import triton" 2>/dev/null; then
  say "keeping the installed Triton"
elif [ "$(uname -s)" = Linux ]; then
  "$PY" -m pip install -q --disable-pip-version-check "$TRITON" 2>/dev/null \
    || say "Triton is not available for this platform: the CPU / stock PyTorch paths will be used"
fi

# 7. The plugin itself, editable, without touching the pinned stack.
pip_install -q --no-build-isolation --no-deps -e "$ROOT"

# 8. The optional extras (see install_optional above).
install_optional

stack_complete || { for k in "${!HAVE[@]}"; do say "  $k: ${HAVE[$k]}"; done; fail "the stack is incomplete after installing (see above)."; }
"$PY" -c "import mmcv.ops, mmseg, mmdet, mmreplk" || fail "import mmcv.ops, mmseg, mmdet, mmreplk failed"
say "done in $(( $(date +%s) - START )) s: torch ${HAVE[torch]}, mmengine ${HAVE[mmengine]}, mmcv ${HAVE[mmcv]} (ops), mmseg ${HAVE[mmseg]}, mmdet ${HAVE[mmdet]}"
