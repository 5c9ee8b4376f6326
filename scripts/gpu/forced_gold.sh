#!/usr/bin/env bash
# Forced gold decoding on the H200 (docs/serving.md, "Proving the pipeline with forced gold decoding"): the smoke
# suite's gold solutions replayed through real vLLM servers of synthetic models (real architecture, random
# weights), each reply forced with a structured-output regex in the family's tool-call text, parsed by the
# server's own tool parser and graded by agentbench's graders. A correct pipeline scores full marks.
#   Run through the wrapper (it installs vLLM and agentbench and sets PYTHONPATH, PYTHONSAFEPATH and
#   AGENTBENCH_VLLM_ENV):  bash scripts/gpu/run-on-gpu.sh scripts/gpu/forced_gold.sh
#   or, already set up:     OUT=/some/dir bash scripts/gpu/forced_gold.sh
# Steps (FORCED_STEPS, space-separated, run in that order; each server start is 30-120 s; default: the first four):
#   llama31-8b-llama3_json     native, vLLM llama3_json parser
#   qwen3-8b-hermes-reasoning  native, hermes parser + qwen3 reasoning parser, thinking off (the regex applies
#                              only once the prompt's </think> has ended the reasoning)
#   qwen25-7b-hermes           native, hermes parser
#   llama31-8b-prompt          --tool-protocol prompt (tools in the prompt, calls parsed by agentbench)
#   mistral-7b-mistral         native, vLLM mistral parser (HF tokenizer mode)
#   phi35-mini-prompt          a model whose entry is prompt-based (no vLLM parser), with its own chat template
# Each step has its own time limit and a failing step never stops the others. Writes under $OUT: steps.jsonl
# (name, exit code, seconds), each step's console log, run-NAME.json (agentbench run --json), report-NAME/
# (agentbench's report), summary.json (pass counts per step), server-errors.txt (error lines of the vLLM logs)
# and results/ (the stored runs: plans, transcripts, server logs).
# FORCED_EAGER=1 (default) serves the entries with --enforce-eager and max_model_len 8192 through a models file
# (same template, parsers and flags otherwise): no torch.compile or CUDA graphs, so four starts fit the budget.
set -uo pipefail
OUT=${OUT:-/tmp/forced-gold}
mkdir -p "$OUT"
BUDGET_S=${BUDGET_S:-500}  # stop starting new steps past this
STEP_S=${STEP_S:-170}      # one step's limit: server start, 8 scenarios, stop and memory release
export AGENTBENCH_VLLM_ENV=${AGENTBENCH_VLLM_ENV:-"PYTHONPATH=/tmp/site VLLM_USE_FLASHINFER_SAMPLER=0"}
export AGENTBENCH_RESULTS_DIR="$OUT/results"

STEP_DIR="$OUT" STEP_MIN_LEFT_S=40
source "$(dirname "$0")/steps.sh"

# Model-written code runs in bubblewrap; on a lent machine without working user namespaces, run it unsandboxed
# (the code is the scenarios' own gold solutions, and the machine is discarded after the session).
SANDBOX=()
if ! bwrap --ro-bind / / --dev /dev true > /dev/null 2>&1; then SANDBOX=(--unsafe-no-sandbox); fi
echo "{\"step\": \"sandbox\", \"flags\": \"${SANDBOX[*]:-}\"}" | tee -a "$OUT/steps.jsonl"

MODELS=()
if [[ ${FORCED_EAGER:-1} == 1 ]]; then
  python3 - "$OUT/models.yaml" <<'EOF' > "$OUT/models-file.log" 2>&1 && MODELS=(--models-file "$OUT/models.yaml")
import sys

import yaml

from agentbench.models.registry import load_registry

registry = load_registry()
entries = {}
for key in ("llama31-8b", "qwen3-8b", "qwen25-7b", "mistral-7b", "phi35-mini"):
    entry = registry[key].model_dump(exclude_none=True, exclude={"key"})
    entry["serve"]["extra_args"] = [*entry["serve"].get("extra_args", []), "--enforce-eager"]
    entry["serve"]["max_model_len"] = 8192
    entries[key] = entry
with open(sys.argv[1], "w", encoding="utf-8") as handle:
    yaml.safe_dump(entries, handle, sort_keys=False)
print("models file:", sys.argv[1], sorted(entries))
EOF
fi

forced() {  # forced NAME MODEL [EXTRA...]: the smoke suite, forced, on one synthetic model
  local name=$1 model=$2; shift 2
  step "$name" "$STEP_S" bash -c "python3 -m agentbench run --suite smoke --models $model --synthetic --force-gold \
    --concurrency 4 ${MODELS[*]:-} ${SANDBOX[*]:-} --report-dir '$OUT/report-$name' --json $* \
    > '$OUT/run-$name.json'; echo \"exit \$?\""
}

step nvidia-smi-before 20 nvidia-smi
for name in ${FORCED_STEPS:-llama31-8b-llama3_json qwen3-8b-hermes-reasoning qwen25-7b-hermes llama31-8b-prompt}; do
  case $name in
    llama31-8b-llama3_json) forced "$name" llama31-8b ;;
    qwen3-8b-hermes-reasoning) forced "$name" qwen3-8b --thinking off ;;
    qwen25-7b-hermes) forced "$name" qwen25-7b ;;
    llama31-8b-prompt) forced "$name" llama31-8b --tool-protocol prompt ;;
    mistral-7b-mistral) forced "$name" mistral-7b ;;
    phi35-mini-prompt) forced "$name" phi35-mini ;;
    *) echo "{\"step\": \"$name\", \"skipped\": \"unknown step\"}" | tee -a "$OUT/steps.jsonl" ;;
  esac
done
step nvidia-smi-after 20 nvidia-smi

python3 - "$OUT" <<'EOF' > "$OUT/summary.json" 2> "$OUT/summary.err"
import json
import pathlib
import sys

out = pathlib.Path(sys.argv[1])
summary = {}
for path in sorted(out.glob("run-*.json")):
    name = path.stem.removeprefix("run-")
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        summary[name] = {"error": f"no JSON: {exc}"}
        continue
    failed = [{"scenario": r["scenario"], "outcome": r["outcome"], "error": r["error"],
               "failed_grades": [g["name"] for g in r["failed_grades"]]}
              for r in data["results"] if not r["passed"]]
    summary[name] = {"run_id": data["run_id"], "runs": len(data["results"]),
                     "passed": sum(r["passed"] for r in data["results"]),
                     "mean_score": {m: s["mean_score"] for m, s in data["summary"].items()}, "failed": failed}
json.dump(summary, sys.stdout, indent=2)
EOF
cat "$OUT/summary.json"
grep -h -iE "error|exception|traceback" "$OUT"/results/runs/*/servers/*.log 2> /dev/null | sort | uniq -c | sort -rn \
  | head -n 200 > "$OUT/server-errors.txt" || true
echo "done in ${SECONDS}s"; ls -la "$OUT"
