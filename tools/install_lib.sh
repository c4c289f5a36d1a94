# Functions of tools/install.sh (sourced by it): messages, pip with a clear network error,
# the status probe (tools/install_probe.py) and the optional packages of the test suite.
# Expects PY (the Python to install into) and ROOT (the checkout) to be set.

say()  { printf '[install] %s\n' "$*"; }
fail() { printf '[install] ERROR: %s\n' "$*" >&2; exit 1; }

pip_install() {
  # pip with a clear message when the package index cannot be reached.
  local log rc; log=$(mktemp)
  set +e
  "$PY" -m pip install --disable-pip-version-check "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -ne 0 ]; then
    if grep -qiE 'NewConnectionError|name resolution|Network is unreachable|ConnectTimeout|No matching distribution found|Could not find a version' "$log"; then
      rm -f "$log"
      fail "pip could not fetch '$*' from the package index (no network, or the index does not serve it). Connect to the internet / set PIP_INDEX_URL and run again."
    fi
    rm -f "$log"
    fail "pip install $* failed (exit $rc); see the output above."
  fi
  rm -f "$log"
}

# ---- status probe: one line per component, its version / 'ok', or None ----
probe() {
  (cd / && MMREPLK_ROOT="$ROOT" "$PY" "$ROOT/tools/install_probe.py")
}

declare -A HAVE
read_probe() {
  HAVE=()
  while IFS='=' read -r k v; do HAVE[$k]=$v; done < <(probe 2>/dev/null)
}

stack_complete() {
  read_probe
  [ "${HAVE[torch]:-None}" != None ] && [ "${HAVE[mmengine]:-None}" = 0.10.7 ] \
    && [ "${HAVE[mmcv]:-None}" = "$MMCV_VERSION" ] && [ "${HAVE[mmcv_ops]:-None}" = ok ] \
    && [ "${HAVE[mmseg]:-None}" = 1.2.2 ] && [ "${HAVE[mmdet]:-None}" = 3.3.0 ] \
    && [ "${HAVE[ftfy]:-None}" != None ] && [ "${HAVE[pytest]:-None}" != None ] \
    && [ "${HAVE[xdist]:-None}" != None ] && [ "${HAVE[hypothesis]:-None}" != None ] \
    && [ "${HAVE[mmreplk]:-None}" = ok ]
}

# Step 8: the optional packages the test suite uses when present (ONNX export, mim,
# mmdeploy); without them their tests are skipped, and a failure to install them does not
# stop the set-up. openmim and mmdeploy go in without their declared dependencies, which
# would downgrade the environment (openmim's opendatalab / openxlab pin an old setuptools
# and requests; mmdeploy 1.3.1 pins protobuf <= 3.20.2, older than onnx needs), plus exactly
# the packages they import: MIM_IMPORTS for `import mim`, `mim download` and `mim search`,
# DEPLOY_IMPORTS for mmdeploy's torch2onnx. Also run on a complete stack that lacks them.
install_optional() {
  ONNX_PACKAGES=("onnx>=1.16" "onnxruntime>=1.18" "onnxslim>=0.1.40" "onnxscript>=0.5")
  MIM_IMPORTS=(requests rich click colorama tabulate pandas model-index)
  DEPLOY_IMPORTS=(aenum)  # and onnx; the rest of what it imports comes with mmseg / mmdet
  { "$PY" -m pip install -q --disable-pip-version-check "${ONNX_PACKAGES[@]}" "${MIM_IMPORTS[@]}" \
    && "$PY" -m pip install -q --disable-pip-version-check --no-deps "openmim==0.3.9"; } \
    || say "onnx / onnxruntime / openmim could not be installed: the ONNX and mim tests will be skipped"
  { "$PY" -m pip install -q --disable-pip-version-check "${DEPLOY_IMPORTS[@]}" \
    && "$PY" -m pip install -q --disable-pip-version-check --no-deps "mmdeploy==1.3.1"; } \
    || say "mmdeploy 1.3.1 could not be installed (no wheel for this platform, or no network): the mmdeploy test will be skipped"
}
