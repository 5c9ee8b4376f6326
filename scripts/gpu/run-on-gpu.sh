#!/usr/bin/env bash
# The working call on the GPU machine:  bash scripts/gpu/run-on-gpu.sh SCRIPT [ARGS...]
# Installs vLLM and agentbench (setup.sh), sets the environment agentbench runs in, runs SCRIPT with OUT set,
# then packs everything SCRIPT wrote under $OUT into $OUT/results.tgz (the device tool brings back at most
# 8 files per call, so one archive it is) beside SCRIPT's console output.
set -uo pipefail
OUT=${OUT:?the device tool sets OUT}
here=$(cd "$(dirname "$0")" && pwd)
work="$OUT/work"; mkdir -p "$work"
bash "$here/setup.sh" > "$work/setup.log" 2>&1 || { cat "$work/setup.log"; exit 3; }
export PYTHONPATH=/tmp/absite:/tmp/site
# python3 -m would put the checkout first on sys.path, shadowing the installed package (tools/ and graphs/
# only exist inside it as agentbench.tools and agentbench.graphs).
export PYTHONSAFEPATH=1
export AGENTBENCH_VLLM_ENV=${AGENTBENCH_VLLM_ENV:-"PYTHONPATH=/tmp/site VLLM_USE_FLASHINFER_SAMPLER=0"}
export VLLM_USE_FLASHINFER_SAMPLER=0
OUT="$work" bash "$@" > "$work/console.log" 2>&1
rc=$?
tail -n 40 "$work/console.log"
tar czf "$OUT/results.tgz" -C "$work" . && rm -rf "$work"
echo "script exit $rc; results in results.tgz"
exit $rc
