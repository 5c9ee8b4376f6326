#!/usr/bin/env bash
# The `gpu` tests on the GPU machine, through run-on-gpu.sh (which installs vLLM and agentbench and sets
# PYTHONPATH, PYTHONSAFEPATH and AGENTBENCH_VLLM_ENV):
#   bash scripts/gpu/run-on-gpu.sh scripts/gpu/gpu_tests.sh [PYTEST ARGS...]   (default: tests/gpu/test_serving_gpu.py)
# Times on the H200 (2026-12-04; server starts there take 76-161 s): in tests/gpu/test_serving_gpu.py the start/stop
# test about 2.5 minutes, the sleep/wake switch of two resident 8B models about 6.5, the eager restart switch about
# 3; tests/gpu/test_bench_gpu.py about 2.5. One device call runs 10 minutes at most, so split them, e.g.
#   ... gpu_tests.sh tests/gpu/test_serving_gpu.py -k "not restart_switch"
#   ... gpu_tests.sh tests/gpu/test_bench_gpu.py tests/gpu/test_serving_gpu.py -k "bench_key or restart_switch"
# Writes under $OUT: pytest.log, junit.xml, and (through AGENTBENCH_GPU_OUT) the tests' JSON summaries and server
# logs. LIMIT_S (default 560) bounds the whole run.
set -uo pipefail
OUT=${OUT:?}; export AGENTBENCH_GPU_OUT="$OUT"
(( $# )) || set -- tests/gpu/test_serving_gpu.py
nvidia-smi > "$OUT/nvidia-smi-before.txt" 2>&1
timeout --kill-after=20 "${LIMIT_S:-560}" python3 -m pytest -q -p no:cacheprovider -m gpu -s -rA \
  --junitxml "$OUT/junit.xml" --basetemp "$OUT/pytest" "$@" > "$OUT/pytest.log" 2>&1
rc=$?
nvidia-smi > "$OUT/nvidia-smi-after.txt" 2>&1
echo "gpu tests exit $rc"; grep -E "passed|failed|error|PASSED|FAILED|ERROR" "$OUT/pytest.log" | tail -n 20
exit $rc
