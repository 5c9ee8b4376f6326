#!/usr/bin/env bash
# What the content-addressed synthetic path saves on the H200: two `agentbench serve --synthetic --once` starts of
# the same model, back to back, each a fresh vLLM process. The first may compile (torch.compile, CUDA graphs);
# the second serves the same folder (~/.cache/agentbench/synthetic/KEY-HASH), so vLLM's compile cache, keyed by
# the model path, can be reused. Compare start-1.json and start-2.json (torch_compile_s, ready seconds).
#   usage (through run-on-gpu.sh):  bash scripts/gpu/run-on-gpu.sh scripts/gpu/compile_cache.sh [KEY]
# Writes under $OUT/compile-cache: steps.jsonl, start-N.json, start-N.log (the server log), cache-lines.txt
# (vLLM's lines about its compile cache, from both logs).
set -uo pipefail
: "${OUT:?set OUT to the output folder}"
KEY=${1:-llama31-8b}
W="$OUT/compile-cache"; mkdir -p "$W"
BUDGET_S=${BUDGET_S:-400} STEP_DIR="$W"
source "$(dirname "$0")/steps.sh"
for n in 1 2; do
  step "start-$n" 220 bash -c "python3 -m agentbench serve '$KEY' --synthetic --max-model-len 8192 \
    --gpu-memory-utilization 0.85 --port 0 --once --json --log '$W/start-$n.log' > '$W/start-$n.json'"
done
grep -hiE "compile|cache dir|graph captur" "$W"/start-*.log > "$W/cache-lines.txt" 2> /dev/null || true
python3 - "$W" <<'PY'
import json, sys, pathlib
w = pathlib.Path(sys.argv[1])
for n in (1, 2):
    p = w / f"start-{n}.json"
    try:
        d = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        print(f"start-{n}: no result ({e})"); continue
    flat = {k: v for k, v in d.items() if not isinstance(v, (dict, list))}
    figs = d.get("startup") or d.get("figures") or {}
    print(f"start-{n}:", json.dumps(flat)[:600], json.dumps(figs)[:600])
PY
