#!/usr/bin/env bash
# Bench fidelity on the H200 (issue 6): `vllm bench serve` and `agentbench bench` one right after the other
# against ONE server and workload (synthetic Llama-3.1-8B, dummy weights, random 1024 in / 128 out,
# ignore_eos, seed 0, prefix caching off, a discarded warm-up first) at concurrency 1, 8 and 64; a second
# round in the other order when time is left; the bench report; then the GPU test of `agentbench bench KEY`
# (tests/gpu/test_bench_gpu.py: agentbench serves its own server, memory vs context, NVML telemetry).
#
#   usage (repository root, on the GPU machine; .gpu/ carried for setup.sh):  OUT=/some/dir bash scripts/gpu/bench_fidelity.sh
#   Also works under scripts/gpu/run-on-gpu.sh.  About 8-9 minutes; it stops starting steps after BUDGET_S.
#
# Everything ends up in ONE file, $OUT/bench.tgz (the device returns at most 8 files): steps.jsonl (one line
# per step: name, exit code, seconds, or why skipped), every step's log, serve.json (agentbench's startup
# figures), vllm-rN/*.json and ours-rN/*.json (round N), fidelity-rN/fidelity.{md,json}, report/, and
# pytest/ (the GPU test's stored bench result) with junit-bench.xml.
# A failing step never stops the others; the exit code is round 1's fidelity check (0 pass, 1 fail, 3 no server).
set -uo pipefail
: "${OUT:?set OUT to the output folder}"
W="$OUT/bench"
mkdir -p "$W/results" "$W/servers"
BUDGET_S=${BUDGET_S:-540}
NAME=llama31-8b
# agentbench runs from the installed package (PYTHONSAFEPATH: the checkout must not shadow it); the vLLM
# server and `vllm bench serve` get vLLM's own site only (their openai pin differs from langchain-openai's).
export PYTHONPATH=/tmp/absite:/tmp/site PYTHONSAFEPATH=1 VLLM_USE_FLASHINFER_SAMPLER=0
export AGENTBENCH_VLLM_ENV=${AGENTBENCH_VLLM_ENV:-"PYTHONPATH=/tmp/site VLLM_USE_FLASHINFER_SAMPLER=0"}
export AGENTBENCH_RESULTS_DIR="$W/results"
VLLM_PY=(env PYTHONPATH=/tmp/site VLLM_USE_FLASHINFER_SAMPLER=0 python3)
AB=(python3 -m agentbench)

STEP_DIR="$W" STEP_MIN_LEFT_S=20
source "$(dirname "$0")/steps.sh"

pack() {  # the one archive, whatever happened (the synthetic model folder is left out: it is regenerated)
  tar czf "$OUT/bench.tgz" -C "$OUT" --exclude='bench/servers/synthetic-*' bench && echo "packed $OUT/bench.tgz"
}
SERVER_PID=""
stop_server() {  # the server runs in its own process group (agentbench serve starts it so): stop the group
  [[ -n "$SERVER_PID" ]] || return 0
  kill -TERM -- "-$SERVER_PID" 2>/dev/null
  for _ in $(seq 1 60); do kill -0 -- "-$SERVER_PID" 2>/dev/null || break; sleep 0.5; done
  kill -KILL -- "-$SERVER_PID" 2>/dev/null
  SERVER_PID=""
}
trap 'stop_server; pack' EXIT

# setup.sh is idempotent for vLLM and always reinstalls agentbench's wheel (.gpu/abdeps) so a warm machine
# never runs a stale agentbench.
step setup 150 bash scripts/gpu/setup.sh
step nvidia-smi-before 15 nvidia-smi
step versions 60 python3 -c "import agentbench, vllm; print('agentbench', agentbench.__version__, 'vllm', vllm.__version__)"

# 1. One server: agentbench serve --detach (its startup figures land in serve.json). Fallback if that fails:
#    the same synthetic model started with vLLM directly (so the fidelity comparison still runs).
BASE="" MODEL_DIR=""
# Prefix caching off: both clients send the same prompts (same tokenizer and seed), so whichever runs second
# would hit the cache and read a lower TTFT (seen on the H200: 21.5 ms against 52.2 ms at c=1).
if step serve 200 bash -c "${AB[*]} serve $NAME --synthetic --max-model-len 8192 --gpu-memory-utilization 0.85 \
     --vllm-arg=--no-enable-prefix-caching --port 0 --detach --json --health-timeout 180 \
     --log '$W/servers/$NAME.log' > '$W/serve.json'"; then
  read -r BASE MODEL_DIR SERVER_PID < <(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); \
print(d['base_url'], d['settings']['model'], d['pid'])" "$W/serve.json")
fi
if [[ -z "$BASE" ]]; then
  echo "agentbench serve did not give a server; starting vLLM directly"
  MODEL_DIR="$W/servers/synthetic-raw"
  step synth 60 "${AB[@]}" models synth "$NAME" --out "$MODEL_DIR"
  PORT=8011
  setsid "${VLLM_PY[@]}" -m vllm.entrypoints.openai.api_server --model "$MODEL_DIR" --served-model-name "$NAME" \
    --load-format dummy --max-model-len 8192 --gpu-memory-utilization 0.85 --port "$PORT" --no-enable-prefix-caching \
    > "$W/servers/raw-vllm.log" 2>&1 &
  SERVER_PID=$!
  step wait-health 200 bash -c "until curl -sf http://127.0.0.1:$PORT/health > /dev/null; do \
    kill -0 $SERVER_PID 2>/dev/null || { echo 'server exited'; tail -30 '$W/servers/raw-vllm.log'; exit 3; }; \
    sleep 1; done" && BASE="http://127.0.0.1:$PORT/v1"
fi
if [[ -z "$BASE" ]]; then
  echo "no server: nothing to bench"; exit 3
fi
ROOT=${BASE%/v1}
echo "server $BASE (pid $SERVER_PID), model folder $MODEL_DIR"
curl -s "$ROOT/metrics" > "$W/metrics-before.txt"

# Warm-up, discarded: the first batched requests JIT-compile Triton kernels (the synthetic model's
# generation_config asks for top-k/top-p sampling, whose kernel compiled in the middle of vLLM's c=8 run on
# the H200 and tripled its TTFT). Every batch size the runs below use is exercised once first.
step warmup 90 "${VLLM_PY[@]}" -m vllm.entrypoints.cli.main bench serve --backend openai \
  --base-url "$ROOT" --endpoint /v1/completions --model "$NAME" --tokenizer "$MODEL_DIR" \
  --dataset-name random --random-input-len 1024 --random-output-len 128 --num-prompts 128 \
  --max-concurrency 64 --ignore-eos --seed 1
# 2. Fidelity: vLLM's client, then ours, same server, same prompts (same tokenizer, seed and lengths).
#    Round 1 is the check; round 2 (only when time is left) runs the pairs again in the other order, so an
#    order effect (the second client finding a warmer server) would show as a change between the rounds.
vllm_run() {  # vllm_run ROUND C N
  mkdir -p "$W/vllm-r$1"
  step "vllm-r$1-c$2" 120 "${VLLM_PY[@]}" -m vllm.entrypoints.cli.main bench serve --backend openai \
    --base-url "$ROOT" --endpoint /v1/completions --model "$NAME" --tokenizer "$MODEL_DIR" \
    --dataset-name random --random-input-len 1024 --random-output-len 128 --num-prompts "$3" \
    --max-concurrency "$2" --num-warmups "$2" --ignore-eos --seed 0 --save-result --result-dir "$W/vllm-r$1" \
    --result-filename "vllm-c$2.json"
}
ours_run() {  # ours_run ROUND C N
  mkdir -p "$W/ours-r$1"
  step "ours-r$1-c$2" 120 bash -c "${AB[*]} bench --base-url '$BASE' --model-name $NAME --tokenizer '$MODEL_DIR' \
    --concurrency $2 --num-prompts $3 --input-len 1024 --output-len 128 --seed 0 --num-warmups $2 ${OURS_FLAGS:-} \
    --json > '$W/ours-r$1/c$2.json'"
}
fidelity_round() {  # fidelity_round ROUND: compare the round's two folders
  step "fidelity-r$1" 60 python3 -m agentbench.bench.fidelity --vllm-dir "$W/vllm-r$1" --ours-dir "$W/ours-r$1" \
    --out "$W/fidelity-r$1"
}
# FIDELITY_PAIRS: "C N" pairs separated by ';' (concurrency, prompts); both clients warm up with one batch of C
# first (vllm's --num-warmups, agentbench's --num-warmups). OURS_FLAGS: more agentbench bench options, e.g.
# --no-server-metrics (no /metrics scraping during the run) to test the telemetry's effect on the server.
IFS=';' read -r -a PAIRS <<< "${FIDELITY_PAIRS:-1 16;8 32;64 256}"
for pair in "${PAIRS[@]}"; do
  read -r c n <<< "$pair"; vllm_run 1 "$c" "$n"; ours_run 1 "$c" "$n"
done
fidelity_round 1
FIDELITY=$?
cat "$W/fidelity-r1/fidelity.md" 2>/dev/null
# Round 2 only if the GPU test below (about 150 s) still fits after it (about 170 s).
if (( BUDGET_S - SECONDS >= ${ROUND2_NEEDS_S:-330} )); then
  for pair in "${PAIRS[@]}"; do
    read -r c n <<< "$pair"; ours_run 2 "$c" "$n"; vllm_run 2 "$c" "$n"
  done
  fidelity_round 2
  cat "$W/fidelity-r2/fidelity.md" 2>/dev/null
else
  echo "{\"step\": \"round-2\", \"skipped\": \"$((BUDGET_S - SECONDS))s left\"}" | tee -a "$W/steps.jsonl"
fi
curl -s "$ROOT/metrics" > "$W/metrics-after.txt"
step report 60 "${AB[@]}" bench --report "$W/report"
stop_server
sleep 5  # the driver frees a killed server's memory a moment after its processes are gone

# 3. The GPU test of `agentbench bench KEY`: agentbench serves a synthetic 8B itself (the compile cache is warm
#    by now), benches c=1 and 8 and memory vs context (1K, 4K, 8K) with NVML telemetry and /metrics, and stops it
#    (memory released). Its stored result lands under $W/pytest.
step gpu-test-bench 200 python3 -m pytest -q -p no:cacheprovider -m gpu tests/gpu/test_bench_gpu.py -s \
  --basetemp "$W/pytest" --junitxml "$W/junit-bench.xml"
step nvidia-smi-after 15 nvidia-smi
echo "done in ${SECONDS}s"
exit $FIDELITY
