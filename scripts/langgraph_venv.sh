#!/usr/bin/env bash
# A separate virtual environment with the LangGraph CLI and API server (`langgraph dev`),
# for the LangGraph Server smoke test (tests/unit_tests/test_langgraph_server.py).
#
# Why separate: langgraph-api pins protobuf < 7 while the main environment's vLLM stack
# has protobuf 7; installing it there would downgrade a package the engine uses. The
# server loads graphs/rstar.py from the checkout (PYTHONPATH), so this environment holds
# only langgraph-cli[inmem] and the package's core dependencies (read from pyproject.toml).
# Created once and reused; delete the folder to rebuild it.
#
#   bash scripts/langgraph_venv.sh        # -> ${RSTAR_LANGGRAPH_VENV:-~/.cache/langchain-rstar/langgraph-venv}
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${RSTAR_LANGGRAPH_VENV:-$HOME/.cache/langchain-rstar/langgraph-venv}

if [ -x "$VENV/bin/langgraph" ] && "$VENV/bin/python" -c "import langgraph_api, langchain_core, langgraph" 2>/dev/null; then
  echo "[langgraph-venv] ready: $VENV"
  exit 0
fi
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
$PY -m venv "$VENV"
deps=$($PY - <<'PY'
import re
try:
    import tomllib
except ImportError:  # Python 3.10: the [project] dependencies list, read directly
    text = open("pyproject.toml").read()
    block = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1)
    print("\n".join(re.findall(r'"([^"]+)"', block)))
else:
    with open("pyproject.toml", "rb") as fh:
        print("\n".join(tomllib.load(fh)["project"]["dependencies"]))
PY
)
mapfile -t deps_array <<<"$deps"
echo "[langgraph-venv] installing langgraph-cli[inmem] into $VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "langgraph-cli[inmem]" "${deps_array[@]}"
echo "[langgraph-venv] ready: $VENV"
