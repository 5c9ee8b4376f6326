#!/usr/bin/env bash
# Download, where PyPI is reachable, what agentbench needs on the offline H200 machine beyond its image and
# vLLM's own dependencies (fetch-wheels.sh): LangGraph, langchain-openai and theirs, for CPython 3.12, plus a
# wheel of agentbench itself built from this checkout.   usage: fetch-agentbench-wheels.sh DEST  (e.g. .gpu)
# Result: DEST/abdeps/*.whl (~12 MB). Re-run it after changing the code (it rebuilds the agentbench wheel).
set -euo pipefail
dest=${1:?usage: fetch-agentbench-wheels.sh DEST}
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/../.." && pwd)
mkdir -p "$dest/abdeps" "$dest/.abdl"
plat=(--only-binary=:all: --python-version 3.12 --implementation cp)
for p in manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_28_x86_64 any; do plat+=(--platform "$p"); done
python3 -m pip download -q "${plat[@]}" -d "$dest/.abdl" "langgraph>=1.0,<2" "langchain-core>=1.0,<2" "langchain-openai>=1.0,<2"
# The image (see the device tool's KINDS.md) and vLLM's pinned dependencies already hold the rest; openai is
# kept because langchain-openai wants a newer one than vLLM pins (agentbench's site comes first on its path).
keep='^(httpx2|httpcore2|jsonpatch|jsonpointer|langchain_|langgraph|langsmith|openai|orjson|ormsgpack|requests_toolbelt|tenacity|truststore|uuid_utils|websockets|zstandard)'
rm -f "$dest"/abdeps/*.whl
for w in "$dest"/.abdl/*.whl; do basename "$w" | grep -Eq "$keep" && cp "$w" "$dest/abdeps/"; done
python3 -m pip wheel -q --no-deps -w "$dest/abdeps" "$root"
rm -rf "$dest/.abdl"
ls "$dest/abdeps" && du -sh "$dest/abdeps"
