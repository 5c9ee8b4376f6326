"""``agentbench models list|show|synth`` and ``agentbench tools list|show``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from agentbench.cli import common
from agentbench.cli.common import out
from agentbench.models.registry import ModelSpec, resolve_model
from agentbench.report.tables import Table
from agentbench.serving.memory import GPUS, MemoryEstimate, estimate_memory, weight_bytes
from agentbench.tools import all_tool_specs, tool_spec

models_app = typer.Typer(help="The model registry.", no_args_is_help=True)
tools_app = typer.Typer(help="The tools scenarios can use.", no_args_is_help=True)


@models_app.command("list")
def list_models(json_output: common.JsonOption = False, models_file: common.ModelsFileOption = None) -> None:
    """List the registered models (built-in plus --models-file)."""
    entries = common.registry(models_file)
    if json_output:
        common.print_json({k: v.model_dump(exclude_none=True) for k, v in sorted(entries.items())})
        return
    table = Table("Models", ["key", "backend", "model", "description"])
    table.rows = [[k, v.backend, v.model_name or "-", v.description] for k, v in sorted(entries.items())]
    common.print_table(table)
    served = {k: v for k, v in sorted(entries.items()) if v.serve is not None}
    if served:
        common.print_table(_vllm_table(served))


def _vllm_table(entries: dict[str, ModelSpec]) -> Table:
    table = Table("vLLM models (weights: bf16 estimate; KEY@VARIANT for quantized checkpoints)",
                  ["key", "params B", "context", "max_model_len", "tools", "reasoning", "weights GiB", "variants"])
    for key, spec in entries.items():
        serve = spec.serve
        assert serve is not None
        tools = "prompt" if spec.tool_protocol == "prompt" or not serve.tool_parser else serve.tool_parser
        params = f"{serve.params_b:g}" + (f" ({serve.active_params_b:g} act.)" if serve.active_params_b else "")
        table.rows.append([key, params, f"{serve.native_context:,}", f"{serve.max_model_len:,}", tools,
                           serve.reasoning_parser or "-", f"{weight_bytes(spec) / 2**30:.1f}",
                           ", ".join(sorted(serve.variants)) or "-"])
    return table


GpuOption = Annotated[str | None, typer.Option("--gpu", help=f"GPU for the memory estimate: {', '.join(GPUS)} "
                                                "(default h100-80gb).", show_default=False)]
GpuMemoryOption = Annotated[float | None, typer.Option("--gpu-memory-gib", help="Total GPU memory in GiB "
                                                       "(any GPU; overrides --gpu's).", show_default=False)]
MaxModelLenOption = Annotated[int | None, typer.Option("--max-model-len", help="Context length to estimate for "
                                                       "(default: the entry's).", show_default=False)]
UtilOption = Annotated[float | None, typer.Option("--gpu-memory-utilization", help="vLLM's share of GPU memory "
                                                  "(default: the entry's).", show_default=False)]


@models_app.command("show")
def show_model(key: Annotated[str, typer.Argument(help="Model key (KEY@VARIANT for a quantized variant).")],
               json_output: common.JsonOption = False, models_file: common.ModelsFileOption = None,
               gpu: GpuOption = None, gpu_memory_gib: GpuMemoryOption = None, max_model_len: MaxModelLenOption = None,
               gpu_memory_utilization: UtilOption = None) -> None:
    """Show one registry entry with every setting; for vLLM entries also the GPU memory estimate."""
    spec = resolve_model(key, common.registry(models_file))
    data = spec.model_dump(exclude_none=True)
    estimate = None
    if spec.serve is not None:
        estimate = estimate_memory(spec, gpu=gpu, gpu_memory_gib=gpu_memory_gib, max_model_len=max_model_len,
                                   gpu_memory_utilization=gpu_memory_utilization)
        data["memory_estimate"] = estimate.as_dict()
    if json_output:
        common.print_json(data)
        return
    data.pop("memory_estimate", None)
    table = Table(f"Model {key}", ["setting", "value"])
    table.rows = [[k, json.dumps(v) if not isinstance(v, str) else v] for k, v in data.items()]
    common.print_table(table)
    if estimate is not None:
        common.print_table(_estimate_table(estimate))


def _estimate_table(e: MemoryEstimate) -> Table:
    table = Table(f"Memory estimate: {e.gpu} ({e.total_gib:.1f} GiB), gpu_memory_utilization "
                  f"{e.gpu_memory_utilization:g}, max_model_len {e.max_model_len:,} (docs/models.md)",
                  ["quantity", "value"])
    table.rows = [
        ["requested (total x utilization)", f"{e.requested_gib:.2f} GiB"],
        ["weights", f"{e.weights_gib:.2f} GiB"],
        [f"peak activation ({e.max_num_batched_tokens} batched tokens, {e.max_num_seqs} seqs)",
         f"{e.activation_gib:.2f} GiB"],
        ["non-torch + CUDA graphs", f"{e.non_torch_gib + e.cudagraph_gib:.2f} GiB"],
        ["KV cache", f"{e.kv_cache_gib:.2f} GiB"],
        ["KV bytes per token", f"{e.kv_bytes_per_token:,} ({e.kv_bytes_per_token / 1024:g} KiB)"],
        ["GPU KV cache size", f"{e.kv_tokens:,} tokens"],
        [f"maximum concurrency for {e.max_model_len:,} tokens per request", f"{e.max_concurrency:.2f}x"],
    ]
    if e.kv_cache_gib <= 0:
        table.rows.append(["fits", "NO: weights and overheads exceed the requested memory"])
    elif not e.fits:
        table.rows.append(["fits", "NO: one request of max_model_len does not fit; lower --max-model-len"])
    return table


@models_app.command("synth")
def synth_model(key: Annotated[str, typer.Argument(help="vLLM model key.")],
                out_dir: Annotated[Path, typer.Option("--out", help="Directory to write (created).")],
                models_file: common.ModelsFileOption = None) -> None:
    """Write a synthetic model (real config, small local tokenizer with the family's chat template, no weights)
    that vLLM serves with --load-format dummy."""
    from agentbench.serving.synth import write_synthetic_model

    spec = resolve_model(key, common.registry(models_file))
    path = write_synthetic_model(spec, out_dir)
    out.print(f"wrote {path}: serve it with `vllm serve {path} --load-format dummy --served-model-name {spec.key}`",
              markup=False)


@tools_app.command("list")
def list_tools(json_output: common.JsonOption = False) -> None:
    """List every tool with its OpenAI function schema (--json) or a one-line summary."""
    specs = all_tool_specs()
    if json_output:
        common.print_json([s.openai_schema() for s in specs])
        return
    table = Table("Tools", ["name", "group", "arguments", "description"])
    for spec in specs:
        props = spec.openai_schema()["function"]["parameters"].get("properties", {})
        table.rows.append([spec.name, spec.group, ", ".join(props), spec.description.splitlines()[0]])
    common.print_table(table)


@tools_app.command("show")
def show_tool(name: Annotated[str, typer.Argument(help="Tool name.")]) -> None:
    """Print one tool's full description and OpenAI schema."""
    spec = tool_spec(name)
    out.print(f"[bold]{spec.name}[/bold] ({spec.group})\n")
    out.print(spec.description, markup=False)
    common.print_json(spec.openai_schema())
