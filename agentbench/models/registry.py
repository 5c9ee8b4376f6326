"""The model registry: named model entries, built in (``models.yaml``) or from the user's file.

An entry names its backend and the settings that backend needs. A user's file
(``--models-file`` or ``AGENTBENCH_MODELS_FILE``) adds entries or overrides built-in ones whole.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agentbench.errors import ConfigError
from agentbench.models.architectures import Architecture, resolve_members
from agentbench.scenario.problems import validation_problems
from agentbench.scenario.yaml_source import parse_yaml

ENV_MODELS_FILE = "AGENTBENCH_MODELS_FILE"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Sampling(_Strict):
    """Sampling settings sent with every request; pinned so runs are comparable and repeatable."""

    temperature: float = Field(default=0.0, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=1024, ge=1)
    seed: int | None = 0


class FaultSettings(_Strict):
    """Fault injection of a ``reference`` model: probability per scenario run, and seed."""

    rate: float = Field(default=0.5, ge=0, le=1)
    seed: int = 0


ToolProtocol = Literal["native", "prompt"]


class Variant(_Strict):
    """A quantized (or otherwise alternative) checkpoint of the same model, chosen as ``KEY@NAME``."""

    hf_id: str = Field(min_length=1, description="Hugging Face repository of the variant")
    quantization: str | None = Field(default=None, description="vLLM --quantization value (awq, gptq, fp8, ...); "
                                     "None lets vLLM read it from the checkpoint's config")
    weight_gib: float | None = Field(default=None, gt=0, description="weights in GiB when known (else estimated)")
    weight_bits: Literal[4, 8] | None = Field(default=None, description="bits per weight of the quantized layers "
                                               "(AWQ/GPTQ-Int4: 4, FP8/GPTQ-Int8: 8); the memory estimate reads it")
    confirmed: bool = Field(default=False, description="the repository name was confirmed to exist "
                            "(docs/models.md says how); false: not confirmed")
    description: str = ""


class ServeSpec(_Strict):
    """How agentbench serves a model with vLLM (``backend: vllm``): the checkpoint, its facts and the
    server flags. Flags and parser names are checked against the pinned vLLM (see docs/models.md)."""

    hf_id: str = Field(min_length=1, description="Hugging Face repository (or a local directory)")
    license: str = ""
    params_b: float = Field(gt=0, description="total parameters, billions")
    active_params_b: float | None = Field(default=None, gt=0, description="active parameters per token (MoE)")
    native_context: int = Field(gt=0, description="context length the checkpoint supports as published")
    dtype: str = "bfloat16"
    family: str | None = Field(default=None, description="chat-format family (qwen3, qwen25, llama3, mistral, "
                               "deepseek, olmo2, chatml, phi3, gemma2): the tokenizer and chat template "
                               "`models synth` builds")
    recommended_sampling: dict[str, float] = Field(
        default_factory=dict, description="the publisher's sampling recommendation (generation_config.json or "
        "model card): temperature, top_p, top_k, min_p, repetition_penalty; for reference, runs use `sampling`")
    config: str = Field(min_length=1, description="architecture config (agentbench/data/model_configs/NAME.json): "
                        "the memory estimate and `models synth` read it")
    tool_parser: str | None = Field(default=None, description="vLLM --tool-call-parser (None: prompt-based tools)")
    chat_template: str | None = Field(default=None, description="--chat-template: a template shipped with "
                                      "agentbench (agentbench/data/chat_templates/NAME) or a path")
    reasoning_parser: str | None = Field(default=None, description="vLLM --reasoning-parser")
    max_model_len: int = Field(gt=0, description="recommended --max-model-len for one 80 GB H100")
    gpu_memory_utilization: float = Field(default=0.90, gt=0, le=1)
    extra_args: list[str] = Field(default_factory=list, description="more vllm serve arguments, verbatim")
    variants: dict[str, Variant] = Field(default_factory=dict, description="quantized variants: KEY@NAME")


class ModelSpec(_Strict):
    """One registry entry."""

    key: str = ""
    backend: Literal["reference", "openai", "architecture", "vllm"]
    description: str = ""
    # openai: any OpenAI-compatible server (vLLM, SGLang, Ollama, llama.cpp, a hosted API)
    base_url: str | None = None
    model_name: str | None = None
    api_key_env: str | None = Field(default=None, description="environment variable with the API key")
    timeout_s: float = Field(default=300.0, gt=0)
    max_retries: int = Field(default=1, ge=0)
    stream: bool = Field(default=False, description="stream replies (records time to first token per call)")
    gpu_memory_gib: float | None = Field(
        default=None, gt=0, description="GPU memory the model needs when served (measured or estimated); "
        "summed over an architecture's members in reports")
    sampling: Sampling = Field(default_factory=Sampling)
    tool_protocol: ToolProtocol = Field(
        default="native", description="native: the server's tool calling (tools in the request, tool_calls in the "
        "reply); prompt: tools described in the prompt and calls parsed from the reply's text")
    chat_template_kwargs: dict[str, Any] | None = Field(
        default=None, description="sent with every request, e.g. {enable_thinking: false} for Qwen3")
    force_gold: Literal["hermes", "llama3_json", "mistral", "prompt"] | None = Field(
        default=None, description="forced gold decoding (docs/serving.md): every request forces the scenario's gold "
        "reply as text in this format with a structured-output regex; measures the serving pipeline, not the model. "
        "Set by --force-gold from the entry's tool parser")
    # vllm: agentbench launches the server (or attaches with --base-url)
    serve: ServeSpec | None = None
    # reference
    faults: FaultSettings | None = None
    # architecture: other entries composed (see agentbench/models/architectures.py)
    architecture: Architecture | None = None
    members: dict[str, ModelSpec] = Field(default_factory=dict, description="resolved member entries")

    @model_validator(mode="after")
    def _architecture_fits(self) -> ModelSpec:
        if (self.backend == "architecture") != (self.architecture is not None):
            raise ValueError("'architecture' is required with backend 'architecture' and only there")
        if (self.backend == "vllm") != (self.serve is not None):
            raise ValueError("'serve' is required with backend 'vllm' and only there")
        return self


def _read_entries(text: str, source: str) -> dict[str, ModelSpec]:
    doc, problems = parse_yaml(text, source)
    if problems or doc is None:
        raise ConfigError("invalid model registry:\n" + "\n".join(str(p) for p in problems))
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{source}: a model registry maps model keys to entries")
    entries: dict[str, ModelSpec] = {}
    for key, body in doc.data.items():
        if not isinstance(body, dict):
            raise ConfigError(f"{doc.problem((key,), 'a model entry is a mapping (backend: ..., ...)')}")
        try:
            entries[str(key)] = ModelSpec.model_validate({**body, "key": str(key)})
        except ValidationError as exc:
            lines = [str(p) for p in validation_problems(exc, doc, ModelSpec, (key,))]
            raise ConfigError("invalid model registry:\n" + "\n".join(lines)) from None
    return entries


def load_registry(models_file: Path | None = None) -> dict[str, ModelSpec]:
    """Built-in entries, then the user's file (argument, else ``AGENTBENCH_MODELS_FILE``)."""
    builtin = resources.files("agentbench.models").joinpath("models.yaml").read_text("utf-8")
    registry = _read_entries(builtin, "<builtin models.yaml>")
    user = models_file or (Path(os.environ[ENV_MODELS_FILE]) if os.environ.get(ENV_MODELS_FILE) else None)
    if user is not None:
        try:
            text = user.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read models file {user}: {exc}") from None
        registry.update(_read_entries(text, str(user)))
    return registry


ARCH_PREFIX = "arch:"


def resolve_model(key: str, registry: dict[str, ModelSpec]) -> ModelSpec:
    """The entry ``key`` (``arch:NAME`` insists on an architecture), with an architecture's
    members resolved; ``ConfigError`` listing the known keys otherwise."""
    name = key.removeprefix(ARCH_PREFIX)
    if VARIANT_SEP in name and not key.startswith(ARCH_PREFIX):
        return _with_variant(name, registry)
    if name in registry:
        spec = registry[name]
        if key.startswith(ARCH_PREFIX) and spec.backend != "architecture":
            raise ConfigError(f"{key!r}: {name!r} is a {spec.backend} model, not an architecture")
        return resolve_members(spec, registry) if spec.backend == "architecture" else spec
    raise ConfigError(f"unknown model {key!r}; known models: {', '.join(sorted(registry))} "
                      "(add your own with --models-file, or use --base-url/--model-name)")


VARIANT_SEP = "@"


def _with_variant(key: str, registry: dict[str, ModelSpec]) -> ModelSpec:
    """``KEY@VARIANT``: the vllm entry KEY with the variant's checkpoint as ``serve.hf_id``. The variant stays in
    ``serve.variants``: the launcher adds its ``--quantization`` (see ``variant_of``)."""
    base_key, variant_name = key.split(VARIANT_SEP, 1)
    base = resolve_model(base_key, registry)
    if base.serve is None:
        raise ConfigError(f"{key!r}: {base_key!r} is a {base.backend} model; only vllm entries have variants")
    variant = base.serve.variants.get(variant_name)
    if variant is None:
        known = ", ".join(f"{base_key}@{v}" for v in sorted(base.serve.variants)) or "none"
        raise ConfigError(f"unknown variant {variant_name!r} of {base_key!r}; known variants: {known}")
    serve = base.serve.model_copy(update={"hf_id": variant.hf_id})
    return base.model_copy(update={"key": key, "model_name": key, "serve": serve,
                                   "description": variant.description or f"{base.description} ({variant_name})"})


def variant_of(spec: ModelSpec) -> Variant | None:
    """The variant a ``KEY@VARIANT`` entry serves (None for a plain key or a non-vllm entry)."""
    _, at, name = spec.key.partition(VARIANT_SEP)
    if not at or spec.serve is None:
        return None
    return spec.serve.variants.get(name)


def adhoc_openai_model(base_url: str, model_name: str, key: str | None = None) -> ModelSpec:
    """An entry for an OpenAI-compatible endpoint given on the command line."""
    return ModelSpec(key=key or model_name, backend="openai", base_url=base_url, model_name=model_name,
                     description=f"{model_name} at {base_url}")


