"""GPU memory estimate for serving a registry entry with vLLM: weights, KV cache, KV tokens, concurrency.

It follows vLLM 0.24's accounting (``vllm/v1/worker/gpu_worker.py`` ``determine_available_memory`` and
``vllm/v1/core/kv_cache_utils.py``)::

    requested    = ceil(total GPU memory x gpu_memory_utilization)
    KV cache     = requested - weights - peak activation - non-torch memory - CUDA graph estimate
    num_blocks   = KV cache // (block_size x KV bytes per token of one layer group)
    concurrency  = num_blocks / blocks one request of max_model_len needs      ("Maximum concurrency" line)
    KV tokens    = int(concurrency x max_model_len)                            ("GPU KV cache size" line)

Weights and KV bytes follow from the architecture config; the overheads are modelled with the explicit
constants below, calibrated on one measurement (docs/models.md, "Memory model"): recalibrate by changing them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from agentbench.errors import ConfigError
from agentbench.models.registry import ModelSpec, variant_of
from agentbench.serving.synth import load_model_config

__all__ = ["GPUS", "MemoryEstimate", "estimate_memory", "gpu_total_bytes", "kv_bytes_per_token", "weight_bytes"]

GiB = 1 << 30
MiB = 1 << 20

# Total memory as the driver reports it (nvidia-smi "MiB" total). h200: measured on the project's H200; the
# others are the totals these boards commonly report. Unknown boards: --gpu-memory-gib N.
GPUS: dict[str, int] = {
    "h200": 143771 * MiB,
    "h100-80gb": 81559 * MiB,
    "h100-nvl": 95830 * MiB,
    "a100-80gb": 81920 * MiB,
    "a100-40gb": 40960 * MiB,
    "l40s": 46068 * MiB,
    "l4": 23034 * MiB,
    "a10g": 23028 * MiB,
    "rtx4090": 24564 * MiB,
}

# ---- Constants of the overhead model (calibrated: docs/models.md "Memory model") ----
# vLLM's KV block size (tokens per block) for standard attention.
BLOCK_SIZE = 16
# vLLM's scheduler defaults for its OpenAI server (engine/arg_utils.py): >= 70 GiB boards other than A100
# get 8192 batched tokens and 1024 sequences, the rest 2048 and 256. The profile run uses both.
BIG_GPU_BATCHED_TOKENS, BIG_GPU_MAX_SEQS = 8192, 1024
SMALL_GPU_BATCHED_TOKENS, SMALL_GPU_MAX_SEQS = 2048, 256
# Peak activation of the profile forward pass, per batched token: live tensors at the MLP, in units of the
# activation dtype: gate+up output (2 x intermediate) + activation output (intermediate) + 4 hidden-size
# buffers (residual, normed input, attention output, MLP output).
ACT_INTERMEDIATE_FACTOR = 3
ACT_HIDDEN_FACTOR = 4
# The profile sampler run computes float32 logits for max_num_seqs rows.
SAMPLER_BYTES_PER_LOGIT = 4
# Memory outside torch's allocator that appears during start-up (cuBLAS workspaces, NCCL buffers).
NON_TORCH_GIB = 0.25
# vLLM >= 0.21 subtracts its CUDA graph memory estimate (VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=1).
# Calibrated so llama31-8b at 8192 / 0.85 on the H200 gives the measured 839,648 KV tokens.
CUDAGRAPH_GIB = 0.24
# Quantized checkpoints: effective bits per weight of the quantized layers, scales and zero points included
# (group size 128: a 16-bit scale and a 4-bit zero per 128 weights add ~0.16 bit; 0.25 rounds up for
# unquantized norms and biases). Embeddings and the LM head stay 16-bit.
EFFECTIVE_BITS = {4: 4.25, 8: 8.125}

_DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "half": 2, "float32": 4, "float": 4}


@dataclass(frozen=True)
class MemoryEstimate:
    """One estimate: inputs, every term of the budget (GiB) and the result, as vLLM would log it."""

    key: str
    gpu: str
    total_gib: float
    gpu_memory_utilization: float
    max_model_len: int
    requested_gib: float
    weights_gib: float
    activation_gib: float
    non_torch_gib: float
    cudagraph_gib: float
    kv_cache_gib: float
    kv_bytes_per_token: int
    kv_tokens: int
    max_concurrency: float
    max_num_batched_tokens: int
    max_num_seqs: int

    @property
    def fits(self) -> bool:
        """Whether one request of max_model_len fits (vLLM refuses to start otherwise)."""
        return self.max_concurrency >= 1

    def as_dict(self) -> dict[str, Any]:
        """Every field plus ``fits``, for JSON output."""
        return {**asdict(self), "fits": self.fits}


def _dtype_bytes(dtype: str, config: dict[str, Any]) -> int:
    name = (config.get("torch_dtype") or config.get("dtype") or "bfloat16") if dtype == "auto" else dtype
    if name not in _DTYPE_BYTES:
        raise ConfigError(f"unknown dtype {name!r}; known: {', '.join(_DTYPE_BYTES)}, auto")
    return _DTYPE_BYTES[name]


def _need(config: dict[str, Any], field: str, source: str) -> Any:
    if config.get(field) is None:
        raise ConfigError(f"model config {source!r}: missing {field!r} (needed for the memory estimate)")
    return config[field]


def _attention_layers(config: dict[str, Any], source: str) -> list[int | None]:
    """Per layer, its sliding window (None: full attention). Gemma 2 alternates sliding and full layers."""
    layers = int(_need(config, "num_hidden_layers", source))
    window = config.get("sliding_window")
    if "layer_types" in config:
        return [window if t == "sliding_attention" else None for t in config["layer_types"]]
    if config.get("model_type") == "gemma2" and window:
        return [window if i % 2 == 0 else None for i in range(layers)]
    return [None] * layers


def kv_bytes_per_token(config: dict[str, Any], kv_dtype_bytes: int = 2, source: str = "config") -> int:
    """KV cache bytes one token takes over all layers, as vLLM stores it: K and V per KV head for standard
    and grouped-query attention; for MLA (DeepSeek-V2) one latent of kv_lora_rank + qk_rope_head_dim."""
    layers = int(_need(config, "num_hidden_layers", source))
    if config.get("kv_lora_rank"):
        return layers * (int(config["kv_lora_rank"]) + int(_need(config, "qk_rope_head_dim", source))) * kv_dtype_bytes
    heads = int(_need(config, "num_attention_heads", source))
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or int(_need(config, "hidden_size", source)) // heads)
    return 2 * layers * kv_heads * head_dim * kv_dtype_bytes


def _embedding_params(config: dict[str, Any], source: str) -> int:
    tables = 1 if config.get("tie_word_embeddings") else 2
    return tables * int(_need(config, "vocab_size", source)) * int(_need(config, "hidden_size", source))


def weight_bytes(spec: ModelSpec, config: dict[str, Any] | None = None) -> int:
    """Weight bytes of the entry's checkpoint: params x dtype bytes, or for a ``KEY@VARIANT`` entry the variant's
    ``weight_gib`` when known, else its quantized layers at EFFECTIVE_BITS and 16-bit embeddings."""
    serve = _serve(spec)
    config = config if config is not None else load_model_config(serve.config)
    params = serve.params_b * 1e9
    variant = variant_of(spec)
    if variant is not None and variant.weight_gib is not None:
        return int(variant.weight_gib * GiB)
    if variant is not None and variant.weight_bits is not None:
        embeddings = _embedding_params(config, serve.config)
        return int(embeddings * 2 + (params - embeddings) * EFFECTIVE_BITS[variant.weight_bits] / 8)
    return int(params * _dtype_bytes(serve.dtype, config))


def _serve(spec: ModelSpec) -> Any:
    if spec.serve is None:
        raise ConfigError(f"model {spec.key!r}: memory estimates need a vllm entry (with a 'serve' section)")
    return spec.serve


def gpu_total_bytes(gpu: str | None, gpu_memory_gib: float | None) -> tuple[str, int]:
    """The GPU's name and total bytes: ``--gpu-memory-gib`` wins, else a known GPU name."""
    if gpu_memory_gib is not None:
        if gpu_memory_gib <= 0:
            raise ConfigError(f"--gpu-memory-gib must be positive, got {gpu_memory_gib}")
        return (gpu or f"{gpu_memory_gib:g} GiB"), int(gpu_memory_gib * GiB)
    name = (gpu or "h100-80gb").lower()
    if name not in GPUS:
        raise ConfigError(f"unknown GPU {name!r}; known: {', '.join(GPUS)} (or give --gpu-memory-gib N)")
    return name, GPUS[name]


def _activation_bytes(config: dict[str, Any], act_bytes: int, batched_tokens: int, max_seqs: int) -> int:
    hidden = int(config["hidden_size"])
    intermediate = int(config.get("intermediate_size") or 4 * hidden)
    if config.get("moe_intermediate_size") and config.get("num_experts_per_tok"):
        routed = int(config["moe_intermediate_size"]) * (int(config["num_experts_per_tok"])
                                                         + int(config.get("n_shared_experts") or 0))
        intermediate = max(intermediate, routed)
    forward = batched_tokens * (ACT_INTERMEDIATE_FACTOR * intermediate + ACT_HIDDEN_FACTOR * hidden) * act_bytes
    sampler = min(max_seqs, batched_tokens) * int(config["vocab_size"]) * SAMPLER_BYTES_PER_LOGIT
    return forward + sampler


def _blocks_per_request(windows: list[int | None], max_model_len: int, batched_tokens: int) -> tuple[int, int]:
    """(blocks one request needs over all layer groups, layers per group), as vLLM's hybrid allocator counts
    them: a sliding-window group keeps at most window - 1 + max_num_batched_tokens tokens (plus one block)."""
    full = sum(1 for w in windows if w is None)
    sliding = [w for w in windows if w is not None]
    if not sliding:
        return math.ceil(max_model_len / BLOCK_SIZE), len(windows)
    per_group = math.gcd(full, len(sliding)) if full else len(sliding)
    blocks = (full // per_group) * math.ceil(max_model_len / BLOCK_SIZE)
    for _ in range(len(sliding) // per_group):
        kept = min(min(sliding) - 1 + batched_tokens, max_model_len)
        blocks += math.ceil(kept / BLOCK_SIZE) + 1
    return blocks, per_group


def estimate_memory(spec: ModelSpec, *, gpu: str | None = None, gpu_memory_gib: float | None = None,
                    max_model_len: int | None = None, gpu_memory_utilization: float | None = None,
                    kv_cache_dtype_bytes: int | None = None) -> MemoryEstimate:
    """The memory estimate of serving vllm entry ``spec`` on ``gpu`` (default h100-80gb) with the entry's
    max_model_len and gpu_memory_utilization unless given."""
    serve = _serve(spec)
    config = load_model_config(serve.config)
    gpu_name, total = gpu_total_bytes(gpu, gpu_memory_gib)
    util = serve.gpu_memory_utilization if gpu_memory_utilization is None else gpu_memory_utilization
    if not 0 < util <= 1:
        raise ConfigError(f"gpu_memory_utilization must be in (0, 1], got {util}")
    length = max_model_len or serve.max_model_len
    if length <= 0:
        raise ConfigError(f"max_model_len must be positive, got {length}")
    big = total >= 70 * GiB and not gpu_name.startswith("a100")
    batched_tokens = BIG_GPU_BATCHED_TOKENS if big else SMALL_GPU_BATCHED_TOKENS
    max_seqs = BIG_GPU_MAX_SEQS if big else SMALL_GPU_MAX_SEQS
    act_bytes = _dtype_bytes(serve.dtype, config)
    kv_elem = kv_cache_dtype_bytes or act_bytes

    requested = math.ceil(total * util)
    weights = weight_bytes(spec, config)
    activation = _activation_bytes(config, act_bytes, batched_tokens, max_seqs)
    overhead = int((NON_TORCH_GIB + CUDAGRAPH_GIB) * GiB)
    kv_cache = max(requested - weights - activation - overhead, 0)

    windows = _attention_layers(config, serve.config)
    per_token = kv_bytes_per_token(config, kv_elem, serve.config)
    per_layer_token = per_token // len(windows)
    blocks_per_request, layers_per_group = _blocks_per_request(windows, length, batched_tokens)
    num_blocks = kv_cache // (BLOCK_SIZE * per_layer_token * layers_per_group)
    concurrency = num_blocks / blocks_per_request
    return MemoryEstimate(
        key=spec.key, gpu=gpu_name, total_gib=total / GiB, gpu_memory_utilization=util, max_model_len=length,
        requested_gib=requested / GiB, weights_gib=weights / GiB, activation_gib=activation / GiB,
        non_torch_gib=NON_TORCH_GIB, cudagraph_gib=CUDAGRAPH_GIB, kv_cache_gib=kv_cache / GiB,
        kv_bytes_per_token=per_token, kv_tokens=int(concurrency * length), max_concurrency=concurrency,
        max_num_batched_tokens=batched_tokens, max_num_seqs=max_seqs)
