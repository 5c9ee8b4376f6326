#!/usr/bin/env bash
# Bench fidelity on the GPU (issue 6): `vllm bench serve` and `agentbench bench` against ONE server and workload
# (synthetic Llama-3.1-8B, dummy weights, random 1024 in / 128 out, ignore_eos, seed 0, prefix caching off), by
# default in pairs of runs one right after the other (ABBA order), then the bench report.
#
#   usage (repository root, on the GPU machine; .gpu/ carried for setup.sh):  OUT=/some/dir bash scripts/gpu/bench_fidelity.sh
#   Also works under scripts/gpu/run-on-gpu.sh (BUDGET_S=540 fits one 10-minute call with the default PLAN); it
#   stops starting blocks after BUDGET_S.
#
# PLAN is a ';'-separated list of blocks, each ONE process (a `vllm bench serve` process spends 30-35 s importing
# vLLM on this machine, so repeats share one):
#   pair C:N C:N ...   vLLM's client and ours one right after the other, per item, in one process
#                      (scripts/gpu/paired_fidelity.py): the k-th pair at C runs vLLM first when k is odd, ours
#                      first when k is even (ABBA), into vllm/ and ours-trust/ (ours with --trust-env, as vLLM's)
#   vllm C:N C:N ...   vLLM's own benchmark entry point once per run (scripts/gpu/vllm_bench_repeat.py), into vllm/
#   ours C C ...       agentbench bench --concurrency C,C,... (its default prompts: 4 x C, at least 16), into ours/
#   ours-nm C ...      the same with --no-server-metrics (no /metrics scrape during the run), into ours-nm/
#   ours-quiet C ...   --no-server-metrics and NVML sampled only at the ends of the run, into ours-quiet/
#   ours-trust C ...   --trust-env: aiohttp's proxy/netrc lookups on every request, as vLLM's client, into ours-trust/
# Every run at C warms up with one batch of C first (both clients' --num-warmups), and the N of vLLM's runs must
# be agentbench's default for C (16 at 1, 32 at 8, 256 at 64) so both send the same prompts (a pair sends N on
# both sides, so any N works there).
# Everything ends up in ONE file, $OUT/bench.tgz (the device returns at most 8 files): steps.jsonl (one line
# per step: name, exit code, seconds, or why skipped), every step's log, serve.json (agentbench's startup
# figures), metrics-scrape-idle.txt (ten timed GETs of /metrics on the idle server), the result folders above,
# fidelity-trust/ (vllm/ against ours-trust/: means over the repeats, every run kept), fidelity/ and the other
# variants' comparisons, and report/. The exit code is the check's: fidelity-trust/ when the PLAN has a pair
# or an ours-trust block (both write ours-trust/), else fidelity/ (0 pass; 1 fail, unequal repeats, a cut run,
# or the check did not run; 2 a bad PLAN, before anything starts; 3 no server).
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

# The default: the acceptance check in pairs (see pair above), c=1, 8 and 64 four times each, interleaved.
# Blocks of runs minutes apart compared the server's drift instead of the clients: in one H200 call the mean
# TTFT at c=1 read 52, 49, 44 and 35 ms in four consecutive blocks, on both clients. About 510 s with the
# server start.
DEFAULT_PLAN="pair 1:16 8:32 64:256 1:16 8:32 64:256 1:16 8:32 64:256 1:16 8:32 64:256"
# The PLAN is checked before anything starts (exit 2 and why): a typo must not cost a server start.
KINDS=() ITEMS=()
IFS=';' read -r -a BLOCKS <<< "${PLAN:-$DEFAULT_PLAN}"
for block in "${BLOCKS[@]}"; do
  read -r -a words <<< "$block"
  (( ${#words[@]} )) || continue  # an empty block ("a;;b", a trailing ';')
  kind=${words[0]} items=("${words[@]:1}")
  (( ${#items[@]} )) || { echo "PLAN block '$block' has no runs"; exit 2; }
  for item in "${items[@]}"; do
    case $kind in
      pair)
        [[ $item =~ ^([0-9]+):([0-9]+)$ ]] || { echo "PLAN: pair runs are C:N, got '$item'"; exit 2; }
        c=$((10#${BASH_REMATCH[1]})) n=$((10#${BASH_REMATCH[2]}))
        (( c >= 1 && c <= 256 && n >= 1 )) || { echo "PLAN: pair run '$item' needs C in 1..256 and N >= 1"; exit 2; } ;;
      vllm)
        [[ $item =~ ^([0-9]+):([0-9]+)$ ]] || { echo "PLAN: vllm runs are C:N, got '$item'"; exit 2; }
        c=$((10#${BASH_REMATCH[1]})) n=$((10#${BASH_REMATCH[2]}))
        want=$(( 4 * c > 16 ? 4 * c : 16 ))  # agentbench's default prompts for C: both sides send the same ones
        (( c >= 1 && n == want )) || { echo "PLAN: vllm run '$item' must be C:$want for C=$c (agentbench sends 4 x C, at least 16)"; exit 2; } ;;
      ours|ours-nm|ours-quiet|ours-trust)
        [[ $item =~ ^[0-9]+$ ]] && (( 10#$item >= 1 && 10#$item <= 256 )) || { echo "PLAN: $kind takes concurrencies 1..256, got '$item'"; exit 2; } ;;
      *) echo "unknown PLAN block '$kind' (pair, vllm, ours, ours-nm, ours-quiet, ours-trust)"; exit 2 ;;
    esac
  done
  KINDS+=("$kind")
  if [[ $kind == vllm || $kind == pair ]]; then ITEMS+=("${items[*]}"); else ITEMS+=("$(IFS=,; echo "${items[*]}")"); fi
done
(( ${#KINDS[@]} )) || { echo "PLAN has no blocks"; exit 2; }

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

# Ten timed scrapes of /metrics on the idle server: what one scrape costs vLLM's API process (the one that
# streams the tokens), beside the figure agentbench's sampler records under load (mean_metrics_scrape_ms).
for _ in $(seq 1 10); do curl -s -o /dev/null -w '%{time_total} %{size_download}\n' "$ROOT/metrics"; done \
  > "$W/metrics-scrape-idle.txt"

# ENDPOINT: /v1/completions (vllm bench serve's default, the check's) or /v1/chat/completions.
ENDPOINT=${ENDPOINT:-/v1/completions}
BACKEND=openai; [[ $ENDPOINT == */chat/completions ]] && BACKEND=openai-chat
DISCARD="--discard 64:128"  # the first vLLM block warms the server up (Triton JIT of the sampling kernels) first
# vLLM's options for the workload, shared by vllm and pair blocks (a pair block gives ours the same ones)
VLLM_WORKLOAD=(--backend "$BACKEND" --base-url "$ROOT" --endpoint "$ENDPOINT" --model "$NAME" --tokenizer "$MODEL_DIR"
  --dataset-name random --random-input-len 1024 --random-output-len 128 --ignore-eos --seed 0 --result-dir "$W/vllm")
for i in "${!KINDS[@]}"; do
  kind=${KINDS[$i]} rest=${ITEMS[$i]}
  case $kind in
    vllm)
      mkdir -p "$W/vllm"
      # shellcheck disable=SC2086  # DISCARD is two words or none
      step "b$i-vllm" 240 "${VLLM_PY[@]}" scripts/gpu/vllm_bench_repeat.py --runs "$rest" --prefix "b$i" $DISCARD -- \
        "${VLLM_WORKLOAD[@]}"
      DISCARD="" ;;
    pair)
      mkdir -p "$W/vllm" "$W/ours-trust"
      # vLLM's site first (its openai pin), agentbench's after it (agentbench itself and nothing vLLM has)
      # shellcheck disable=SC2086  # DISCARD is two words or none
      step "b$i-pair" 420 env PYTHONPATH=/tmp/site:/tmp/absite VLLM_USE_FLASHINFER_SAMPLER=0 python3 \
        scripts/gpu/paired_fidelity.py --pairs "$rest" --prefix "b$i" --ours-dir "$W/ours-trust" \
        --log "$W/pairs.jsonl" $DISCARD -- "${VLLM_WORKLOAD[@]}"
      DISCARD="" ;;
    ours|ours-nm|ours-quiet|ours-trust)
      flags=""
      [[ $kind == ours-trust ]] && flags="--trust-env"
      [[ $kind == ours-nm ]] && flags="--no-server-metrics"
      [[ $kind == ours-quiet ]] && flags="--no-server-metrics --telemetry-interval 3600"
      mkdir -p "$W/$kind"
      step "b$i-$kind" 200 bash -c "${AB[*]} bench --base-url '$BASE' --model-name $NAME --tokenizer '$MODEL_DIR' \
        --endpoint $ENDPOINT --concurrency $rest --input-len 1024 --output-len 128 --seed 0 $flags --json > '$W/$kind/b$i.json'" ;;
  esac
done
# The check (the exit code): ours-trust/ when the PLAN wrote it (pair or ours-trust blocks), else ours/; the
# others are compared at the concurrencies they ran, with whatever repeats they have.
CHECK=ours; [[ -d "$W/ours-trust" ]] && CHECK=ours-trust
FIDELITY=1
for kind in ours ours-nm ours-quiet ours-trust; do
  [[ -d "$W/$kind" ]] || continue
  out="$W/fidelity${kind#ours}"
  subset=""; [[ $kind != "$CHECK" ]] && subset="--ignore-vllm-only --allow-unbalanced"
  step "fidelity${kind#ours}" 60 python3 -m agentbench.bench.fidelity --vllm-dir "$W/vllm" --ours-dir "$W/$kind" \
    --out "$out" $subset
  rc=$?
  # 0 pass; anything else (a fail, or the step timed out or was skipped) is 1, as documented
  [[ $kind == "$CHECK" ]] && { (( rc == 0 )) && FIDELITY=0 || FIDELITY=1; }
  cat "$out/fidelity.md" 2>/dev/null
done
curl -s "$ROOT/metrics" > "$W/metrics-after.txt"
step report 60 "${AB[@]}" bench --report "$W/report"
stop_server
step nvidia-smi-after 15 nvidia-smi
echo "done in ${SECONDS}s"
exit $FIDELITY
