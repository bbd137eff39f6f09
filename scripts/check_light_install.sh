#!/usr/bin/env bash
# Light-install check (issue 17.3): build the wheel, install it WITHOUT extras into a fresh
# virtual environment outside the repository, and prove that the core works there:
# `rstar --version`, the import, a scripted-model search, and `rstar eval` on the SVAMP set
# that ships inside the package. Also checks that no extra's package was pulled in.
#
#   bash scripts/check_light_install.sh          # uses $PYTHON or python3
#
# pip uses whatever index is configured (pip.conf / PIP_* variables), as scripts/setup.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/rstar-light.XXXXXX")
trap 'rm -rf "$work"' EXIT

# pip's output is shown only when it fails (index warnings would drown the result)
quiet() { "$@" >"$work/pip.log" 2>&1 || { cat "$work/pip.log"; return 1; }; }

echo "[light] building the wheel"
quiet $PY -m pip wheel --no-deps -w "$work/dist" .
wheel=$(ls "$work"/dist/langchain_rstar-*.whl)
echo "[light] $(basename "$wheel"): $(du -k "$wheel" | cut -f1) KiB"
$PY -m venv "$work/venv"
quiet "$work/venv/bin/python" -m pip install "$wheel"
echo "[light] installed without extras: $("$work/venv/bin/python" -m pip list 2>/dev/null \
  | tail -n +3 | wc -l) packages"

cd "$work"   # away from the checkout: only the installed package can be imported
"$work/venv/bin/rstar" --version
"$work/venv/bin/rstar" eval --help | grep -q "hf:<dataset id>"
"$work/venv/bin/python" - <<'PY'
import importlib.util

import langchain_rstar
from langchain_rstar import RStarChain, RStarConfig
from langchain_rstar.testing import APPLES_QUESTION, apples_llm

assert "site-packages" in langchain_rstar.__file__, langchain_rstar.__file__
for extra in ("math_verify", "langchain_community", "vllm", "torch", "transformers",
              "langchain_openai", "matplotlib", "datasets"):
    assert importlib.util.find_spec(extra) is None, f"{extra} installed without its extra"
result = RStarChain(generator=apples_llm(), config=RStarConfig(num_rollouts=4)).invoke(
    APPLES_QUESTION
)
assert result.answer == "10", result.answer
print("[light] import + scripted solve ok:", langchain_rstar.__file__, "answer", result.answer)
PY
"$work/venv/bin/rstar" eval --scripted --dataset svamp --method cot --limit 2 \
  --out "$work/svamp.jsonl" --no-progress
test "$(wc -l < "$work/svamp.jsonl")" -eq 2
"$work/venv/bin/rstar" report "$work/svamp.jsonl" >/dev/null
echo "[light] rstar eval on the shipped svamp set ok"
