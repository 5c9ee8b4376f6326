#!/usr/bin/env bash
# Run ON the GPU machine from the repository root (after scripts/gpu/install-on-gpu.sh), with $OUT set.
# Serves a synthetic Llama-3.1-8B (dummy weights; max-model-len 8192, gpu-mem-util 0.85) and, against the
# same server and workload (random 1024 in / 128 out, ignore_eos), runs `vllm bench serve` and
# `agentbench bench` one right after the other at concurrency 1, 8 and 64 (16, 32, 256 prompts); then a
# memory-vs-context pass and a telemetry check. Writes $OUT/fidelity.{json,md} (pass: within 5 %),
# $OUT/vllm/*.json, $OUT/ours/*.json, $OUT/context.json, $OUT/telemetry_check.json and the server log.
# Budget: ~90 s server start + ~3-4 min of load.
set -uo pipefail
: "${OUT:?set OUT to the output folder}"
PORT=${PORT:-8011}
AB_PY="/tmp/absite:/tmp/site"   # agentbench (and its deps) + vLLM's site
MODEL_DIR=/tmp/llama31-8b-synth
NAME=llama31-8b
mkdir -p "$OUT/vllm" "$OUT/ours" "$OUT/results"

PYTHONPATH=$AB_PY python3 -m agentbench models synth "$NAME" --out "$MODEL_DIR" || exit 3
PYTHONPATH=/tmp/site VLLM_USE_FLASHINFER_SAMPLER=0 python3 -m vllm.entrypoints.openai.api_server \
  --model "$MODEL_DIR" --served-model-name "$NAME" --load-format dummy --max-model-len 8192 \
  --gpu-memory-utilization 0.85 --port "$PORT" > "$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null' EXIT
for _ in $(seq 1 240); do
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break
  kill -0 $SERVER 2>/dev/null || { echo "server exited"; tail -50 "$OUT/server.log"; exit 3; }
  sleep 1
done
curl -sf "http://127.0.0.1:$PORT/health" >/dev/null || { echo "server not healthy"; exit 3; }

for pair in "1 16" "8 32" "64 256"; do
  set -- $pair
  c=$1; n=$2
  PYTHONPATH=/tmp/site VLLM_USE_FLASHINFER_SAMPLER=0 timeout 120 python3 -m vllm.entrypoints.cli.main bench serve \
    --backend openai --base-url "http://127.0.0.1:$PORT" --endpoint /v1/completions --model "$NAME" \
    --tokenizer "$MODEL_DIR" --dataset-name random --random-input-len 1024 --random-output-len 128 \
    --num-prompts "$n" --max-concurrency "$c" --ignore-eos --seed 0 \
    --save-result --result-dir "$OUT/vllm" --result-filename "vllm-c$c.json" > "$OUT/vllm/c$c.log" 2>&1 \
    || echo "vllm bench serve c=$c failed (see $OUT/vllm/c$c.log)"
  PYTHONPATH=$AB_PY timeout 120 python3 -m agentbench bench --base-url "http://127.0.0.1:$PORT/v1" \
    --model-name "$NAME" --tokenizer "$MODEL_DIR" --concurrency "$c" --num-prompts "$n" --input-len 1024 \
    --output-len 128 --seed 0 --results-dir "$OUT/results" --json > "$OUT/ours/c$c.json" 2> "$OUT/ours/c$c.err" \
    || echo "agentbench bench c=$c failed (see $OUT/ours/c$c.err)"
done
PYTHONPATH=$AB_PY python3 -m agentbench.bench.fidelity --vllm-dir "$OUT/vllm" --ours-dir "$OUT/ours" --out "$OUT"
FIDELITY=$?

# Memory vs context length (1K..8K fit max-model-len 8192) with telemetry, then the telemetry check.
PYTHONPATH=$AB_PY timeout 150 python3 -m agentbench bench --base-url "http://127.0.0.1:$PORT/v1" --model-name "$NAME" \
  --tokenizer "$MODEL_DIR" --concurrency 4 --num-prompts 16 --context --max-model-len 8192 \
  --results-dir "$OUT/results" --json > "$OUT/context.json" 2> "$OUT/context.err"
PYTHONPATH=$AB_PY python3 - "$OUT/context.json" > "$OUT/telemetry_check.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
tel = r["points"][0].get("telemetry", {})
s = tel.get("summary", {})
check = {"gpu_available": r["gpu_available"], "samples": len(tel.get("samples", [])),
         "energy_j": s.get("energy_j"), "peak_memory_gb": s.get("peak_memory_gb"),
         "peak_kv_cache_usage": s.get("peak_kv_cache_usage"), "context": r["context"]}
check["passed"] = bool(check["gpu_available"] and check["samples"] > 0 and (check["energy_j"] or 0) > 0)
print(json.dumps(check, indent=1))
PY
cat "$OUT/telemetry_check.json"
exit $FIDELITY
