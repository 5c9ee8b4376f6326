#!/usr/bin/env bash
# Switching two synthetic 8B models on one GPU: agentbench's sleep/wake switch against raw sleep+wake POSTs,
# and a cold restart (stop, memory released, fresh start). Run through run-on-gpu.sh; ~4-7 minutes.
set -uo pipefail
OUT=${OUT:?}; export AGENTBENCH_GPU_OUT="$OUT"
timeout --kill-after=20 "${LIMIT_S:-540}" python3 -m pytest -q -p no:cacheprovider -m gpu tests/gpu/test_serving_gpu.py \
  -k switch_sleep_wake -s > "$OUT/switching.log" 2>&1
echo "switching test exit $?"; tail -n 30 "$OUT/switching.log"
