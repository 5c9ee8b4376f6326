"""The vLLM registry entries: names checked against the pinned vLLM's snapshot, KEY@VARIANT resolution."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from agentbench.errors import ConfigError
from agentbench.models.registry import ModelSpec, load_registry, resolve_model, variant_of
from agentbench.serving.synth import FAMILIES, load_model_config

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = json.loads(resources.files("agentbench.data").joinpath("vllm").joinpath("names-0.24.0.json")
                      .read_text("utf-8"))
EXPECTED = {"qwen3-8b", "qwen3-14b", "deepseek-lite", "llama31-8b", "mistral-7b", "olmo2-13b", "yi15-9b",
            "phi35-mini", "qwen25-7b", "qwen25-14b", "gemma2-9b"}


def vllm_entries() -> dict[str, ModelSpec]:
    return {k: v for k, v in load_registry().items() if v.backend == "vllm"}


def flags_of(args: list[str]) -> list[str]:
    return [a.split("=", 1)[0] for a in args if a.startswith("-")]


def test_every_candidate_model_has_an_entry() -> None:
    assert set(vllm_entries()) >= EXPECTED


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_entry_names_exist_in_the_pinned_vllm(key: str) -> None:
    spec = vllm_entries()[key]
    serve = spec.serve
    assert serve is not None and spec.model_name == key
    if serve.tool_parser is not None:
        assert serve.tool_parser in SNAPSHOT["tool_parsers"], serve.tool_parser
    assert (spec.tool_protocol == "prompt") == (serve.tool_parser is None)
    if serve.reasoning_parser is not None:
        assert serve.reasoning_parser in SNAPSHOT["reasoning_parsers"], serve.reasoning_parser
    unknown = [f for f in flags_of(serve.extra_args) if f not in SNAPSHOT["serve_flags"]]
    assert not unknown, f"{key}: flags not in vLLM {SNAPSHOT['vllm_version']}: {unknown}"
    assert serve.family in FAMILIES
    config = load_model_config(serve.config)
    assert config["max_position_embeddings"] >= serve.max_model_len
    if serve.chat_template:
        assert resources.files("agentbench.data").joinpath("chat_templates").joinpath(serve.chat_template).is_file()
    for name, variant in serve.variants.items():
        assert variant.hf_id != serve.hf_id and variant.weight_bits in (4, 8), f"{key}@{name}"


def test_the_flags_agentbench_passes_exist_in_the_pinned_vllm() -> None:
    launch = pytest.importorskip("agentbench.serving.launch")
    options = launch.LaunchOptions(synthetic=True, sleep_mode=True, enforce_eager=True)
    seen: set[str] = set()
    for key in ("llama31-8b", "qwen3-8b", "qwen25-7b@awq", "olmo2-13b"):
        spec = resolve_model(key, load_registry())
        seen.update(flags_of(launch.vllm_args(spec, options, model="/tmp/m", port=8000)))
    unknown = sorted(seen - set(SNAPSHOT["serve_flags"]))
    assert not unknown, f"agentbench passes flags vLLM {SNAPSHOT['vllm_version']} lacks: {unknown}"
    assert {"--tool-call-parser", "--reasoning-parser", "--chat-template", "--load-format"} <= seen


def test_a_variant_key_serves_the_variant_checkpoint() -> None:
    registry = load_registry()
    spec = resolve_model("qwen3-8b@awq", registry)
    assert spec.serve is not None
    assert (spec.key, spec.model_name, spec.serve.hf_id) == ("qwen3-8b@awq", "qwen3-8b@awq", "Qwen/Qwen3-8B-AWQ")
    assert variant_of(spec) is spec.serve.variants["awq"]
    assert spec.chat_template_kwargs == {"enable_thinking": False}  # the base entry's settings carry over
    assert registry["qwen3-8b"].serve.hf_id == "Qwen/Qwen3-8B"  # type: ignore[union-attr]  # untouched
    assert variant_of(registry["qwen3-8b"]) is None


@pytest.mark.parametrize(("key", "message"), [
    ("qwen3-8b@gguf", "unknown variant 'gguf' of 'qwen3-8b'; known variants: qwen3-8b@awq, qwen3-8b@fp8"),
    ("olmo2-13b@awq", "known variants: none"),
    ("reference@awq", "'reference' is a reference model; only vllm entries have variants"),
    ("nope@awq", "unknown model 'nope'"),
])
def test_bad_variant_keys_say_what_is_known(key: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_model(key, load_registry())
    assert message in str(info.value)


def _fake_vllm(root: Path) -> Path:
    """A tree in vLLM 0.24's layout with two parsers of each kind and a few flags."""
    files = {
        "vllm/_version.py": "__version__ = version = '9.9.9'\n",
        "vllm/tool_parsers/__init__.py": "_TOOL_PARSERS_TO_REGISTER = {'hermes': ('a', 'A'), 'zeta': ('b', 'B')}\n",
        "vllm/reasoning/__init__.py": "_REASONING_PARSERS_TO_REGISTER = {'qwen3': ('a', 'A'), 'r1': ('b', 'B')}\n",
        "vllm/engine/arg_utils.py": (
            "import argparse\nfrom dataclasses import dataclass\n@dataclass\nclass EngineArgs:\n"
            "    enforce_eager: bool = False\n    max_model_len: int | None = None\n"
            "def add(g, kw):\n    g.add_argument('--max-model-len', **kw['max_model_len'])\n"
            "    g.add_argument('--enforce-eager', **kw['enforce_eager'])\n"
            "    g.add_argument('--quantization', '-q', **kw['quantization'])\n"
            "    g.add_argument('--sleepy', action=argparse.BooleanOptionalAction)\n"),
        "vllm/entrypoints/openai/cli_args.py": (
            "class BaseFrontendArgs:\n    enable_auto_tool_choice: bool = False\n"
            "    tool_call_parser: str | None = None\n"
            "class FrontendArgs(BaseFrontendArgs):\n    port: int = 8000\n"
            "def make_arg_parser(p):\n    p.add_argument('--headless', action='store_true')\n"),
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_names_script_reads_vllms_registries_and_flags(tmp_path: Path) -> None:
    out = tmp_path / "names.json"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "vllm_names.py"), str(_fake_vllm(tmp_path / "src")),
                           "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    names = json.loads(out.read_text())
    assert names["vllm_version"] == "9.9.9"
    assert names["tool_parsers"] == ["hermes", "zeta"] and names["reasoning_parsers"] == ["qwen3", "r1"]
    assert names["serve_flags"] == sorted([
        "--max-model-len", "--enforce-eager", "--no-enforce-eager", "--quantization", "-q", "--sleepy",
        "--no-sleepy", "--headless", "--enable-auto-tool-choice", "--no-enable-auto-tool-choice",
        "--tool-call-parser", "--port"])


def test_the_names_script_refuses_something_that_is_not_vllm(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "vllm_names.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "neither a wheel nor a folder holding vllm/" in done.stderr
