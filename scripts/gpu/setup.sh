#!/usr/bin/env bash
# Run ON the GPU machine first in every working call: installs vLLM into /tmp/site (install-on-gpu.sh) and
# agentbench with its extra wheels into /tmp/absite (both idempotent), then prints what to export.
# agentbench runs with PYTHONPATH=/tmp/absite:/tmp/site; the vLLM servers it starts get PYTHONPATH=/tmp/site
# through AGENTBENCH_VLLM_ENV (their openai pin differs from langchain-openai's).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/install-on-gpu.sh" "${1:-.gpu/deps}"
# Always (re)install: the agentbench wheel changes between calls on a machine that stayed warm.
python3 -m pip install -q --upgrade --no-index --no-deps --no-compile --no-cache-dir --target /tmp/absite \
  "${2:-.gpu/abdeps}"/*.whl
PYTHONPATH=/tmp/absite:/tmp/site python3 -c "import agentbench, langgraph, openai; print('agentbench', agentbench.__version__, 'openai', openai.__version__)"
