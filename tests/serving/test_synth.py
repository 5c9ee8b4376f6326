"""Synthetic models: the real config, a local tokenizer transformers loads, the family's tool format and the
tokens vLLM's parsers look up (tool parsers' __init__ in vllm/tool_parsers, the qwen3 reasoning parser)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from agentbench.cli.app import main
from agentbench.errors import ConfigError
from agentbench.models.registry import ModelSpec, load_registry
from agentbench.serving.synth import FAMILIES, cached_synthetic_model, load_model_config, write_synthetic_model

transformers = pytest.importorskip("transformers")

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}},
                   "required": ["city"]}}}]
CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "call_0123456789", "type": "function",
                                                         "function": {"name": "get_weather",
                                                                      "arguments": {"city": "Paris"}}}]},
    {"role": "tool", "tool_call_id": "call_0123456789", "name": "get_weather", "content": "sunny, 21 C"},
]
# What each native family's template must render, and the tokens vLLM's parsers need as single tokens
# (hermes: <tool_call> </tool_call>; llama3_json: <|python_tag|>; mistral: [TOOL_CALLS]; qwen3: <think> </think>).
NATIVE = {
    "qwen3-8b": ('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
                 ["<tool_call>", "</tool_call>", "<think>", "</think>"]),
    "qwen25-7b": ('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
                  ["<tool_call>", "</tool_call>"]),
    "llama31-8b": ('{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|>', ["<|python_tag|>"]),
    "mistral-7b": ('[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "123456789"}]',
                   ["[TOOL_CALLS]"]),
}


def spec(key: str) -> ModelSpec:
    return load_registry()[key]


def synth(key: str, tmp_path: Path) -> tuple[Path, Any]:
    out = write_synthetic_model(spec(key), tmp_path / key)
    return out, transformers.AutoTokenizer.from_pretrained(str(out))


@pytest.mark.parametrize("key", sorted(NATIVE))
def test_native_families_render_their_tool_format(key: str, tmp_path: Path) -> None:
    _, tokenizer = synth(key, tmp_path)
    expected, parser_tokens = NATIVE[key]
    text = tokenizer.apply_chat_template(CONVERSATION, tools=TOOLS, tokenize=False, add_generation_prompt=True)
    assert expected in text
    assert '"description": "Current weather in a city."' in text  # the tool schema reaches the prompt
    vocab = tokenizer.get_vocab()
    for token in parser_tokens:
        assert token in vocab, token
        assert tokenizer.encode(token, add_special_tokens=False) == [vocab[token]]  # one token, matched whole


def test_qwen3_thinking_switch_closes_an_empty_think_block(tmp_path: Path) -> None:
    _, tokenizer = synth("qwen3-8b", tmp_path)
    off = tokenizer.apply_chat_template(CONVERSATION[:2], tokenize=False, add_generation_prompt=True,
                                        enable_thinking=False)
    on = tokenizer.apply_chat_template(CONVERSATION[:2], tokenize=False, add_generation_prompt=True)
    assert off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n") and on.endswith("<|im_start|>assistant\n")


@pytest.mark.parametrize("key", sorted(k for k, v in load_registry().items() if v.backend == "vllm"))
def test_every_entry_has_a_loadable_synthetic_model(key: str, tmp_path: Path) -> None:
    out, tokenizer = synth(key, tmp_path)
    real = load_model_config(spec(key).serve.config)  # type: ignore[union-attr]
    written = json.loads((out / "config.json").read_text())
    ids = ("bos_token_id", "eos_token_id", "pad_token_id")
    assert {k: v for k, v in written.items() if k not in ids} == {k: v for k, v in real.items() if k not in ids}
    family = FAMILIES[spec(key).serve.family]  # type: ignore[union-attr,index]
    vocab = tokenizer.get_vocab()
    assert written["eos_token_id"] == vocab[family.eos] == tokenizer.eos_token_id
    generation = json.loads((out / "generation_config.json").read_text())
    stops = generation["eos_token_id"] if isinstance(generation["eos_token_id"], list) else [generation["eos_token_id"]]
    assert {tokenizer.convert_ids_to_tokens(i) for i in stops} == {family.eos, *family.stop}
    assert len(vocab) < real["vocab_size"]
    messages: list[dict[str, Any]] = [m for m in CONVERSATION[:2] if key != "gemma2-9b" or m["role"] != "system"]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert "Weather in Paris?" in text
    assert tokenizer.decode(tokenizer.encode("Weather in Paris?", add_special_tokens=False)) == "Weather in Paris?"


def test_gemma_refuses_a_system_message_like_the_real_template(tmp_path: Path) -> None:
    _, tokenizer = synth("gemma2-9b", tmp_path)
    with pytest.raises(Exception, match="System role not supported"):
        tokenizer.apply_chat_template(CONVERSATION[:2], tokenize=False)


def test_entries_without_a_family_or_serve_section_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="only vllm entries"):
        write_synthetic_model(spec("reference"), tmp_path)
    odd = spec("qwen3-8b").model_copy(deep=True)
    odd.serve.family = "klingon"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match=r"family 'klingon' has no synthetic tokenizer; known families: chatml"):
        write_synthetic_model(odd, tmp_path)
    odd.serve.family, odd.serve.config = "qwen3", "qwen9"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="unknown model config 'qwen9'"):
        write_synthetic_model(odd, tmp_path)


def test_models_synth_command_writes_the_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["models", "synth", "llama31-8b", "--out", str(tmp_path / "m")])
    assert code == 0 and "--load-format dummy" in capsys.readouterr().out
    marker = json.loads((tmp_path / "m" / "agentbench-synthetic.json").read_text())
    assert marker["hf_id"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert {p.name for p in (tmp_path / "m").iterdir()} >= {"config.json", "tokenizer.json", "tokenizer_config.json",
                                                           "generation_config.json"}


def test_the_cached_folder_depends_only_on_content_and_is_written_whole(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AGENTBENCH_SYNTHETIC_DIR", str(tmp_path / "cache"))
    first = cached_synthetic_model(spec("llama31-8b"))
    assert first.parent == tmp_path / "cache" and first.name.startswith("llama31-8b-")
    assert cached_synthetic_model(spec("llama31-8b")) == first  # same content, same path (vLLM's compile cache)
    other = cached_synthetic_model(spec("qwen3-8b"))
    assert other != first and other.parent == first.parent
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted([first.name, other.name])  # no staging left
    assert json.loads((first / "agentbench-synthetic.json").read_text())["key"] == "llama31-8b"


def test_concurrent_starts_end_with_one_complete_folder(tmp_path: Path) -> None:
    with ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(lambda _: cached_synthetic_model(spec("llama31-8b"), tmp_path), range(4)))
    assert len(set(paths)) == 1 and [p.name for p in tmp_path.iterdir()] == [paths[0].name]
    assert {f.name for f in paths[0].iterdir()} >= {"config.json", "tokenizer.json", "agentbench-synthetic.json"}


def test_a_foreign_folder_at_the_cached_path_is_refused_by_name(tmp_path: Path) -> None:
    path = cached_synthetic_model(spec("llama31-8b"), tmp_path)
    for f in path.iterdir():
        f.unlink()
    (path / "weights.bin").write_bytes(b"not ours")
    with pytest.raises(ConfigError, match=rf"{path} exists but is not one agentbench wrote"):
        cached_synthetic_model(spec("llama31-8b"), tmp_path)
    assert (path / "weights.bin").read_bytes() == b"not ours"  # nothing of the user's is touched
