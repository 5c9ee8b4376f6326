#!/usr/bin/env bash
# Probe run on the H200: capture what vLLM 0.24.0 really prints and serves, so agentbench's log parser,
# memory estimate, /metrics scraper and bench client are tested against real output.
# Needs: the five wheel parts in /tmp/vx, .gpu/deps, and synthetic model dirs in .gpu/synth/{llama,qwen3}
# (config.json + a locally trained tokenizer). Writes everything under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/probe-out}; mkdir -p "$OUT"
bash scripts/gpu/install-on-gpu.sh .gpu/deps > "$OUT/install.log" 2>&1 || { cat "$OUT/install.log"; exit 3; }
export PYTHONPATH=/tmp/site VLLM_USE_FLASHINFER_SAMPLER=0
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
python3 - > "$OUT/nvml.json" 2>&1 <<'PY'
import json, pynvml
pynvml.nvmlInit(); h = pynvml.nvmlDeviceGetHandleByIndex(0); r = {}
def t(k, f):
    try: r[k] = f()
    except Exception as e: r[k] = f"ERR {type(e).__name__}: {e}"
t("name", lambda: pynvml.nvmlDeviceGetName(h))
t("mem", lambda: vars(pynvml.nvmlDeviceGetMemoryInfo(h)) if hasattr(pynvml.nvmlDeviceGetMemoryInfo(h), "__dict__") else str(pynvml.nvmlDeviceGetMemoryInfo(h)))
t("power_mw", lambda: pynvml.nvmlDeviceGetPowerUsage(h))
t("energy_mj", lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(h))
t("gpm_supported", lambda: pynvml.nvmlGpmQueryDeviceSupport(h).isSupportedDevice)
t("procs", lambda: [str(p.pid) for p in pynvml.nvmlDeviceGetComputeRunningProcesses(h)])
t("clock_sm", lambda: pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM))
t("throttle", lambda: pynvml.nvmlDeviceGetCurrentClocksEventReasons(h))
print(json.dumps(r, default=str, indent=1))
PY
wait_health() {  # $1 pid, $2 timeout
  local t0=$SECONDS
  until curl -sf localhost:8000/health > /dev/null; do
    kill -0 "$1" 2> /dev/null || { echo "server exited"; return 1; }
    (( SECONDS - t0 > $2 )) && { echo "health timeout"; return 1; }
    sleep 0.5
  done
  echo "healthy after $((SECONDS - t0)) s"
}
stop() { kill -TERM -- -"$1" 2> /dev/null; for _ in $(seq 60); do kill -0 "$1" 2> /dev/null || break; sleep 0.5; done
         kill -KILL -- -"$1" 2> /dev/null; sleep 2; nvidia-smi --query-gpu=memory.used --format=csv > "$OUT/$2-mem-after-stop.csv"; }

# 1. Llama-3.1-8B architecture, the settings of the shared recipe: startup log, /metrics, bench serve c=8.
setsid python3 -m vllm.entrypoints.openai.api_server --model .gpu/synth/llama --load-format dummy \
  --served-model-name llama --port 8000 --max-model-len 8192 --gpu-memory-utilization 0.85 \
  > "$OUT/llama-serve.log" 2>&1 &
pid=$!
if wait_health $pid 300 > "$OUT/llama-health.txt"; then
  curl -s localhost:8000/metrics > "$OUT/llama-metrics-idle.txt"
  curl -s localhost:8000/v1/chat/completions -H 'content-type: application/json' \
    -d '{"model":"llama","messages":[{"role":"user","content":"hi"}],"max_tokens":8}' > "$OUT/llama-chat.json"
  timeout 120 python3 -m vllm.entrypoints.cli.main bench serve --backend openai-chat --model llama \
    --tokenizer .gpu/synth/llama --endpoint /v1/chat/completions --base-url http://localhost:8000 \
    --dataset-name random --random-input-len 1024 --random-output-len 128 --num-prompts 32 \
    --max-concurrency 8 --ignore-eos --save-result --result-dir "$OUT" --result-filename bench-c8.json \
    > "$OUT/llama-bench.log" 2>&1
  curl -s localhost:8000/metrics > "$OUT/llama-metrics-after.txt"
  nvidia-smi --query-compute-apps=pid,used_memory --format=csv > "$OUT/llama-apps.csv"
fi
stop $pid llama

# 2. Qwen3-8B architecture with hermes + qwen3 reasoning parser and sleep mode: a forced tool-call text
#    through the real parser, then sleep/wake timings.
VLLM_SERVER_DEV_MODE=1 setsid python3 -m vllm.entrypoints.openai.api_server --model .gpu/synth/qwen3 \
  --load-format dummy --served-model-name qwen3 --port 8000 --max-model-len 32768 \
  --gpu-memory-utilization 0.9 --enable-auto-tool-choice --tool-call-parser hermes \
  --reasoning-parser qwen3 --enable-sleep-mode > "$OUT/qwen3-serve.log" 2>&1 &
pid=$!
if wait_health $pid 300 > "$OUT/qwen3-health.txt"; then
  curl -s localhost:8000/v1/chat/completions -H 'content-type: application/json' -d @- > "$OUT/qwen3-toolcall.json" <<'JSON'
{"model":"qwen3","messages":[{"role":"user","content":"weather in Paris?"}],"max_tokens":64,
 "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],
 "tool_choice":"auto","chat_template_kwargs":{"enable_thinking":false},
 "structured_outputs":{"regex":"<think>\nok\n</think>\n\n<tool_call>\n\\{\"name\": \"get_weather\", \"arguments\": \\{\"city\": \"Paris\"\\}\\}\n</tool_call>"}}
JSON
  python3 - > "$OUT/qwen3-sleep-wake.json" <<'PY'
import json, subprocess, time, urllib.request
def post(path):
    t = time.perf_counter(); urllib.request.urlopen(urllib.request.Request("http://localhost:8000" + path, method="POST"), timeout=120).read()
    return time.perf_counter() - t
rows = []
for i in range(3):
    sleep_s = post("/sleep?level=1")
    asleep = urllib.request.urlopen("http://localhost:8000/is_sleeping").read().decode()
    mem = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
    wake_s = post("/wake_up")
    rows.append({"sleep_s": sleep_s, "wake_s": wake_s, "is_sleeping": asleep, "mem_asleep": mem})
print(json.dumps(rows, indent=1))
PY
  curl -s localhost:8000/metrics > "$OUT/qwen3-metrics.txt"
fi
stop $pid qwen3
ls -la "$OUT"
