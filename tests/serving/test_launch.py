"""The vllm serve argument list per entry, the server command and its environment."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from serving_helpers import toy_spec

from agentbench.errors import ConfigError
from agentbench.models.registry import ModelSpec, load_registry, resolve_model
from agentbench.serving.launch import (
    ENV_VLLM_COMMAND,
    ENV_VLLM_ENV,
    LaunchOptions,
    chat_template_path,
    plan_launch,
    resolve_vllm_command,
    resolve_vllm_env,
    vllm_args,
)


def _flag(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_native_entry_gets_its_parser_template_and_reasoning_flags(tmp_path: Path) -> None:
    template = tmp_path / "t.jinja"
    template.write_text("{{ messages }}")
    spec = toy_spec(chat_template=str(template), reasoning_parser="qwen3", extra_args=["--seed", "7"])
    args = vllm_args(spec, LaunchOptions(), model="org/toy-8b", port=8123)
    assert args[:2] == ["--model", "org/toy-8b"]
    assert _flag(args, "--served-model-name") == "toy"
    assert _flag(args, "--port") == "8123" and _flag(args, "--dtype") == "bfloat16"
    assert _flag(args, "--max-model-len") == "8192" and _flag(args, "--gpu-memory-utilization") == "0.9"
    assert "--enable-auto-tool-choice" in args and _flag(args, "--tool-call-parser") == "hermes"
    assert _flag(args, "--chat-template") == str(template.resolve())
    assert _flag(args, "--reasoning-parser") == "qwen3"
    assert args[-2:] == ["--seed", "7"]
    for absent in ("--load-format", "--enable-sleep-mode", "--quantization", "--enforce-eager"):
        assert absent not in args


def test_overrides_synthetic_sleep_and_extra_args_apply() -> None:
    options = LaunchOptions(gpu_memory_utilization=0.42, max_model_len=4096, synthetic=True, sleep_mode=True,
                            enforce_eager=True, extra_args=("--seed", "9"))
    args = vllm_args(toy_spec(extra_args=["--seed", "7"]), options, model="/tmp/synth", port=1)
    assert _flag(args, "--gpu-memory-utilization") == "0.42" and _flag(args, "--max-model-len") == "4096"
    assert _flag(args, "--load-format") == "dummy"
    assert "--enable-sleep-mode" in args and "--enforce-eager" in args
    assert args[-4:] == ["--seed", "7", "--seed", "9"]  # the command line comes last, so it wins


def test_prompt_protocol_entry_gets_no_tool_parser() -> None:
    spec = ModelSpec.model_validate({**toy_spec().model_dump(), "tool_protocol": "prompt"})
    args = vllm_args(spec, LaunchOptions(), model="m", port=1)
    assert "--enable-auto-tool-choice" not in args and "--tool-call-parser" not in args


def test_variant_serves_its_checkpoint_with_its_quantization() -> None:
    base = toy_spec(variants={"awq": {"hf_id": "org/toy-8b-awq", "quantization": "awq"}})
    spec = base.model_copy(update={"key": "toy@awq"})
    plan = plan_launch(spec, LaunchOptions(), port=9)
    assert plan.model == "org/toy-8b-awq" and _flag(plan.argv, "--quantization") == "awq"
    with pytest.raises(ConfigError, match="no variant 'gptq'"):
        plan_launch(base.model_copy(update={"key": "toy@gptq"}), LaunchOptions(), port=9)


def test_registry_variant_keys_launch_the_variant() -> None:
    registry = load_registry()
    vllm_keys = [k for k, s in registry.items() if s.serve is not None and s.serve.variants]
    if not vllm_keys:
        pytest.skip("the built-in registry has no vllm entry with variants yet")
    key = vllm_keys[0]
    name, variant = next(iter(registry[key].serve.variants.items()))  # type: ignore[union-attr]
    plan = plan_launch(resolve_model(f"{key}@{name}", registry), LaunchOptions(), port=9)
    assert plan.model == variant.hf_id
    assert ("--quantization" in plan.argv) == (variant.quantization is not None)


def test_sleep_mode_sets_the_dev_mode_environment() -> None:
    plan = plan_launch(toy_spec(), LaunchOptions(sleep_mode=True, vllm_env=("A=1",)), port=9)
    assert plan.env == {"A": "1", "VLLM_SERVER_DEV_MODE": "1"}
    assert plan.base_url == "http://127.0.0.1:9/v1"
    assert plan.settings["env"] == ["A", "VLLM_SERVER_DEV_MODE"]  # names only are stored


def test_shipped_chat_template_resolves_to_its_installed_path() -> None:
    from importlib import resources

    folder = resources.files("agentbench.data").joinpath("chat_templates")
    shipped = sorted(p.name for p in folder.iterdir() if p.name.endswith(".jinja")) if folder.is_dir() else []
    if not shipped:
        pytest.skip("no chat templates shipped yet")
    path = Path(chat_template_path(shipped[0]))
    assert path.is_file() and path.name == shipped[0]
    with pytest.raises(ConfigError, match=r"no-such\.jinja"):
        chat_template_path("no-such.jinja")


def test_vllm_command_option_then_environment_then_default() -> None:
    assert resolve_vllm_command("python3 -m 'vllm x'", {ENV_VLLM_COMMAND: "other"}) == ["python3", "-m", "vllm x"]
    assert resolve_vllm_command(None, {ENV_VLLM_COMMAND: "vllm serve"}) == ["vllm", "serve"]
    assert resolve_vllm_command(None, {}) == [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    with pytest.raises(ConfigError, match="--vllm-command"):
        resolve_vllm_command("python3 'unclosed", {})


def test_vllm_env_merges_environment_and_options() -> None:
    environ = {ENV_VLLM_ENV: "PYTHONPATH=/opt/site VLLM_USE_FLASHINFER_SAMPLER=0"}
    env = resolve_vllm_env(["VLLM_USE_FLASHINFER_SAMPLER=1", "EMPTY="], environ)
    assert env == {"PYTHONPATH": "/opt/site", "VLLM_USE_FLASHINFER_SAMPLER": "1", "EMPTY": ""}
    with pytest.raises(ConfigError, match=r"--vllm-env.*'NOEQUALS'"):
        resolve_vllm_env(["NOEQUALS"], {})
    with pytest.raises(ConfigError, match=ENV_VLLM_ENV):
        resolve_vllm_env([], {ENV_VLLM_ENV: "1BAD=x"})


@pytest.mark.parametrize(("field", "value", "message"), [
    ("port", 70000, "--port"), ("gpu_memory_utilization", 1.5, "--gpu-memory-utilization"),
    ("max_model_len", 0, "--max-model-len")])
def test_bad_options_name_the_option(field: str, value: float, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LaunchOptions(**{field: value})  # type: ignore[arg-type]


def test_only_vllm_entries_are_served() -> None:
    spec = ModelSpec(key="ref", backend="reference")
    with pytest.raises(ConfigError, match="only backend 'vllm'"):
        plan_launch(spec, LaunchOptions(), port=9)
