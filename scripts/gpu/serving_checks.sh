#!/usr/bin/env bash
# Serving checks on the H200, through agentbench's own CLI and GPU tests (about 6-7 minutes, 8 at most).
#   Needs: vLLM's wheel parts in /tmp/vx and .gpu/deps (see install-on-gpu.sh); agentbench installed and
#   importable with python3 (the lead's wrapper: PYTHONPATH=/tmp/absite:/tmp/site).
#   usage: OUT=/some/dir bash scripts/gpu/serving_checks.sh
# Writes under $OUT: steps.jsonl (one line per step: name, exit code, seconds), each step's log, the
# server logs, serve-once.json (startup figures, stop report, memory release), switch-*.json
# (sleep/wake vs raw POSTs vs cold restart) and scenario.json. A failing step never stops the others.
set -uo pipefail
OUT=${OUT:-/tmp/serving-checks}
mkdir -p "$OUT"
BUDGET_S=${BUDGET_S:-470}  # stop starting new steps past this (the whole run must end within 8 minutes)
# The vLLM server process gets its own environment; agentbench keeps its PYTHONPATH.
export AGENTBENCH_VLLM_ENV=${AGENTBENCH_VLLM_ENV:-"PYTHONPATH=/tmp/site VLLM_USE_FLASHINFER_SAMPLER=0"}
export AGENTBENCH_GPU_OUT="$OUT" AGENTBENCH_RESULTS_DIR="$OUT/results"

STEP_DIR="$OUT" STEP_MIN_LEFT_S=30
source "$(dirname "$0")/steps.sh"

step install 120 bash scripts/gpu/install-on-gpu.sh .gpu/deps
step nvidia-smi-before 20 nvidia-smi

# 1. agentbench serve: a synthetic Llama-3.1-8B, start -> health -> figures -> stop -> memory released.
step serve-once 240 bash -c "python3 -m agentbench serve llama31-8b --synthetic --max-model-len 8192 \
  --gpu-memory-utilization 0.85 --port 0 --once --json --log '$OUT/serve-llama.log' > '$OUT/serve-once.json'"

# 2. Switching two synthetic 8B models: sleep/wake (agentbench) vs raw sleep+wake POSTs, and a cold restart.
step switching 300 python3 -m pytest -q -p no:cacheprovider -m gpu tests/gpu/test_serving_gpu.py \
  -k switch_sleep_wake -s

# 3. A scenario with --model: the server is started for the run and stopped after (random weights: the
#    grade is meaningless, the lifecycle is the point).
step scenario 150 bash -c "python3 -m agentbench scenario multi_step_arithmetic --model llama31-8b --synthetic \
  --json > '$OUT/scenario.json'; echo \"exit \$?\""

step nvidia-smi-after 20 nvidia-smi
cp -r "$AGENTBENCH_RESULTS_DIR"/runs/*/serving.json "$OUT/" 2> /dev/null || true
echo "done in ${SECONDS}s"; ls -la "$OUT"
