"""The memory estimate: KV bytes from real configs, vLLM's accounting, the H200 calibration point, the CLI."""

from __future__ import annotations

import json

import pytest

from agentbench.cli.app import main
from agentbench.errors import ConfigError
from agentbench.models.registry import load_registry, resolve_model
from agentbench.serving.memory import GPUS, GiB, estimate_memory, kv_bytes_per_token, weight_bytes
from agentbench.serving.synth import load_model_config

# Measured (docs/models.md): vLLM 0.24.0 on an H200, Llama-3.1-8B architecture, dummy weights,
# --max-model-len 8192 --gpu-memory-utilization 0.85 logged "GPU KV cache size: 839,648 tokens".
MEASURED_H200_LLAMA_KV_TOKENS = 839_648


def test_llama_on_the_h200_lands_near_the_measured_kv_cache() -> None:
    e = estimate_memory(load_registry()["llama31-8b"], gpu="h200", max_model_len=8192, gpu_memory_utilization=0.85)
    assert abs(e.kv_tokens - MEASURED_H200_LLAMA_KV_TOKENS) / MEASURED_H200_LLAMA_KV_TOKENS < 0.10
    # vLLM's "Maximum concurrency" is the KV tokens over max_model_len.
    assert e.max_concurrency == pytest.approx(e.kv_tokens / 8192, rel=1e-6)


@pytest.mark.parametrize(("config", "expected"), [
    ("llama31-8b", 2 * 32 * 8 * 128 * 2),    # GQA: K and V, 8 KV heads of 128
    ("qwen25-7b", 2 * 28 * 4 * 128 * 2),     # head_dim from hidden_size / heads (3584 / 28)
    ("olmo2-13b", 2 * 40 * 40 * 128 * 2),    # full multi-head attention
    ("phi35-mini", 2 * 32 * 32 * 96 * 2),
    ("deepseek-lite", 27 * (512 + 64) * 2),  # MLA: one latent (kv_lora_rank + qk_rope_head_dim) per layer
])
def test_kv_bytes_per_token_follow_the_architecture(config: str, expected: int) -> None:
    assert kv_bytes_per_token(load_model_config(config)) == expected


def test_fp8_kv_cache_halves_the_bytes() -> None:
    config = load_model_config("qwen3-8b")
    assert kv_bytes_per_token(config, kv_dtype_bytes=1) * 2 == kv_bytes_per_token(config)


def test_quantized_variants_weigh_less_and_a_known_size_wins() -> None:
    registry = load_registry()
    bf16 = weight_bytes(registry["qwen3-8b"])
    assert bf16 == pytest.approx(8.19e9 * 2)
    awq = weight_bytes(resolve_model("qwen3-8b@awq", registry))
    fp8 = weight_bytes(resolve_model("qwen3-8b@fp8", registry))
    assert awq < fp8 < bf16 and 0.25 < awq / bf16 < 0.45
    spec = resolve_model("qwen3-8b@awq", registry)
    assert spec.serve is not None
    spec.serve.variants["awq"] = spec.serve.variants["awq"].model_copy(update={"weight_gib": 5.5})
    assert weight_bytes(spec) == int(5.5 * GiB)


def test_more_memory_or_a_shorter_context_changes_what_fits() -> None:
    spec = load_registry()["qwen3-14b"]
    h100 = estimate_memory(spec)
    h200 = estimate_memory(spec, gpu="h200")
    assert h100.gpu == "h100-80gb" and h100.max_model_len == 32768 and h100.fits
    assert h200.kv_tokens > 2 * h100.kv_tokens
    short = estimate_memory(spec, max_model_len=4096)
    assert short.max_concurrency > 7 * h100.max_concurrency  # same pool, requests 8x smaller
    small = estimate_memory(spec, gpu_memory_gib=24)
    assert small.gpu == "24 GiB" and small.kv_cache_gib == 0 and not small.fits


def test_sliding_window_layers_hold_fewer_tokens_per_request() -> None:
    # Gemma 2 alternates 4096-token sliding-window layers with full ones: at 32K context a request needs
    # far fewer blocks than 42 full layers would, so more requests fit than the plain per-token formula says.
    spec = load_registry()["gemma2-9b"]
    e = estimate_memory(spec, gpu="h200", max_model_len=32768)
    plain = e.kv_cache_gib * GiB / e.kv_bytes_per_token / 32768
    assert e.max_concurrency > 1.3 * plain


def test_bad_inputs_name_what_is_wrong() -> None:
    spec = load_registry()["llama31-8b"]
    with pytest.raises(ConfigError, match="unknown GPU 'tpu'; known: " + ", ".join(GPUS)):
        estimate_memory(spec, gpu="tpu")
    with pytest.raises(ConfigError, match="gpu_memory_utilization must be in"):
        estimate_memory(spec, gpu_memory_utilization=1.5)
    with pytest.raises(ConfigError, match="memory estimates need a vllm entry"):
        estimate_memory(load_registry()["reference"])


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_models_show_prints_the_estimate(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "models", "show", "llama31-8b", "--json", "--gpu", "h200", "--max-model-len", "8192",
                       "--gpu-memory-utilization", "0.85")
    data = json.loads(out)
    assert code == 0 and data["serve"]["tool_parser"] == "llama3_json"
    assert data["memory_estimate"]["kv_tokens"] == estimate_memory(
        load_registry()["llama31-8b"], gpu="h200", max_model_len=8192, gpu_memory_utilization=0.85).kv_tokens
    code, out, _ = cli(capsys, "models", "show", "qwen3-8b@awq", "--gpu-memory-gib", "48")
    assert code == 0 and "Qwen/Qwen3-8B-AWQ" in out and "GPU KV cache size" in out and "48 GiB" in out
    code, _, err = cli(capsys, "models", "show", "qwen3-8b", "--gpu", "tpu")
    assert code == 1 and "unknown GPU 'tpu'" in err


def test_models_list_shows_the_vllm_entries(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "models", "list")
    assert code == 0 and "vLLM models" in out
    row = next(line for line in out.splitlines() if "deepseek-lite" in line and "163,840" in line)
    assert "prompt" in row and "29.3" in row  # 15.71e9 bf16 params = 29.3 GiB
