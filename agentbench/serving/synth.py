"""Synthetic models: a directory vLLM serves with ``--load-format dummy`` (real architecture, random weights).

The directory holds the entry's real ``config.json`` (token ids remapped to the local tokenizer), a small
byte-level BPE tokenizer trained here with the ``tokenizers`` package on text shipped with agentbench, whose
``tokenizer_config.json`` carries the family's chat template and special tokens (so vLLM's tool and reasoning
parsers for the family find their tokens), and a ``generation_config.json``. Its vocabulary is smaller than the
config's: vLLM accepts that, and the random weights' output is noise anyway. See docs/models.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from agentbench.errors import ConfigError
from agentbench.models.registry import ModelSpec

__all__ = ["FAMILIES", "Family", "cached_synthetic_model", "load_model_config", "synthetic_cache_root",
           "write_synthetic_model"]

# Trained vocabulary size before the special tokens; small keeps `models synth` well under a second.
BPE_VOCAB_SIZE = 4000
MARKER_FILE = "agentbench-synthetic.json"


@dataclass(frozen=True)
class Family:
    """A chat-format family: its template (agentbench/data/chat_templates/NAME) and tokens.

    ``control`` tokens are special (skipped when decoding, as in the real tokenizers); ``markup`` tokens are
    added but not special (e.g. Qwen's ``<tool_call>`` and ``<think>``, which the parsers must see as text).
    """

    template: str
    control: tuple[str, ...]
    markup: tuple[str, ...] = ()
    bos: str | None = None
    eos: str = ""
    pad: str | None = None
    unk: str | None = None
    stop: tuple[str, ...] = field(default=())  # generation_config eos ids besides eos

    def tokens(self) -> list[str]:
        """Every added token, control tokens first."""
        return [*self.control, *self.markup]


_QWEN_CONTROL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
_HERMES = ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>")

FAMILIES: dict[str, Family] = {
    "qwen3": Family("qwen3_hermes.jinja", _QWEN_CONTROL, (*_HERMES, "<think>", "</think>"),
                    eos="<|im_end|>", pad="<|endoftext|>", stop=("<|endoftext|>",)),
    "qwen25": Family("qwen25_hermes.jinja", _QWEN_CONTROL, _HERMES, eos="<|im_end|>", pad="<|endoftext|>",
                     stop=("<|endoftext|>",)),
    "llama3": Family("tool_chat_template_llama3.1_json.jinja",
                     ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                      "<|eot_id|>", "<|eom_id|>", "<|python_tag|>", "<|finetune_right_pad_id|>"),
                     bos="<|begin_of_text|>", eos="<|eot_id|>", stop=("<|end_of_text|>", "<|eom_id|>")),
    "mistral": Family("mistral_tools.jinja",
                      ("<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]",
                       "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]"),
                      bos="<s>", eos="</s>", unk="<unk>"),
    "deepseek": Family("deepseek_coder_v2.jinja", ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
                       bos="<｜begin▁of▁sentence｜>", eos="<｜end▁of▁sentence｜>", pad="<｜end▁of▁sentence｜>"),
    "olmo2": Family("olmo2.jinja", ("<|endoftext|>", "<|pad|>"), bos="<|endoftext|>", eos="<|endoftext|>",
                    pad="<|pad|>"),
    "chatml": Family("chatml.jinja", ("<unk>", "<|startoftext|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"),
                     bos="<|startoftext|>", eos="<|im_end|>", pad="<unk>", unk="<unk>", stop=("<|endoftext|>",)),
    "phi3": Family("phi3.jinja", ("<unk>", "<s>", "</s>", "<|endoftext|>", "<|system|>", "<|user|>",
                                  "<|assistant|>", "<|end|>"),
                   bos="<s>", eos="<|endoftext|>", pad="<|endoftext|>", unk="<unk>", stop=("<|end|>",)),
    "gemma2": Family("gemma2.jinja", ("<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"),
                     bos="<bos>", eos="<eos>", pad="<pad>", unk="<unk>", stop=("<end_of_turn>",)),
}


def _data_text(folder: str, name: str) -> str:
    return resources.files("agentbench.data").joinpath(folder).joinpath(name).read_text("utf-8")


def load_model_config(name: str) -> dict[str, Any]:
    """The architecture config ``agentbench/data/model_configs/NAME.json`` (a real ``config.json``)."""
    try:
        return dict(json.loads(_data_text("model_configs", f"{name}.json")))
    except FileNotFoundError:
        known = sorted(p.name.removesuffix(".json") for p in resources.files("agentbench.data")
                       .joinpath("model_configs").iterdir() if p.name.endswith(".json"))
        raise ConfigError(f"unknown model config {name!r} (agentbench/data/model_configs/); "
                          f"known: {', '.join(known)}") from None


def _training_text() -> list[str]:
    """Text the BPE learns from: agentbench's own HTTP reference pages and the chat templates (tool-call
    JSON, role markup), so the vocabulary covers the prose and the JSON the scenarios exchange."""
    root = resources.files("agentbench.data")
    texts = [p.read_text("utf-8") for p in sorted(root.joinpath("search").joinpath("originals").iterdir(), key=str)
             if p.name.endswith(".md")]
    texts += [p.read_text("utf-8") for p in sorted(root.joinpath("chat_templates").iterdir(), key=str)
              if p.name.endswith(".jinja")]
    return texts


def _train_tokenizer(family: Family) -> Any:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token=family.unk))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=BPE_VOCAB_SIZE + len(family.tokens()), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=list(family.control))
    tokenizer.train_from_iterator(_training_text(), trainer=trainer)
    # The trainer put the control tokens in the vocabulary; registering them (special) and the markup
    # tokens (not special) as added tokens makes them match whole, before the pre-tokenizer splits them.
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in family.control])
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in family.markup])
    return tokenizer


def _token_id(tokenizer: Any, token: str | None) -> int | None:
    return None if token is None else int(tokenizer.token_to_id(token))


def write_synthetic_model(spec: ModelSpec, out_dir: Path) -> Path:
    """Write the synthetic model of vllm entry ``spec`` into ``out_dir`` (created; files replaced) and return
    the directory, for ``vllm serve DIR --load-format dummy``."""
    if spec.serve is None:
        raise ConfigError(f"model {spec.key!r}: only vllm entries (with a 'serve' section) have a synthetic model")
    family_name = spec.serve.family
    if family_name not in FAMILIES:
        raise ConfigError(f"model {spec.key!r}: serve.family {family_name!r} has no synthetic tokenizer; "
                          f"known families: {', '.join(sorted(FAMILIES))}")
    family = FAMILIES[family_name]
    config = load_model_config(spec.serve.config)
    tokenizer = _train_tokenizer(family)
    ids = {"bos_token_id": _token_id(tokenizer, family.bos), "eos_token_id": _token_id(tokenizer, family.eos),
           "pad_token_id": _token_id(tokenizer, family.pad)}
    stop_ids = [ids["eos_token_id"], *(_token_id(tokenizer, t) for t in family.stop)]

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config.update(ids)  # the real architecture, with token ids the local tokenizer knows
    _write_json(out_dir / "config.json", config)
    tokenizer.save(str(out_dir / "tokenizer.json"))
    _write_json(out_dir / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": family.bos, "eos_token": family.eos, "pad_token": family.pad, "unk_token": family.unk,
        "add_bos_token": False, "add_eos_token": False, "clean_up_tokenization_spaces": False,
        "model_max_length": int(config.get("max_position_embeddings", spec.serve.native_context)),
        "chat_template": _data_text("chat_templates", family.template),
    })
    generation: dict[str, Any] = {k: v for k, v in ids.items() if v is not None}
    generation["eos_token_id"] = stop_ids if len(stop_ids) > 1 else stop_ids[0]
    if spec.serve.recommended_sampling:
        generation.update({"do_sample": True, **spec.serve.recommended_sampling})
    _write_json(out_dir / "generation_config.json", generation)
    _write_json(out_dir / MARKER_FILE, {
        "key": spec.key, "hf_id": spec.serve.hf_id, "config": spec.serve.config, "family": family_name,
        "chat_template": family.template, "vocab_size": tokenizer.get_vocab_size(),
        "note": "real architecture, no weights: serve with --load-format dummy; output text is random",
    })
    return out_dir


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def synthetic_cache_root() -> Path:
    """Where :func:`cached_synthetic_model` keeps its folders: ``$AGENTBENCH_SYNTHETIC_DIR``, else
    ``$XDG_CACHE_HOME/agentbench/synthetic`` (``~/.cache/agentbench/synthetic``)."""
    if folder := os.environ.get("AGENTBENCH_SYNTHETIC_DIR"):
        return Path(folder)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "agentbench" / "synthetic"


def _digest(folder: Path) -> str:
    """A hash of the folder's file names and contents (the writer is deterministic)."""
    h = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def cached_synthetic_model(spec: ModelSpec, root: Path | None = None) -> Path:
    """The synthetic model of ``spec`` at a path that depends only on its content: ``ROOT/KEY-HASH``.

    vLLM 0.24.0's torch.compile cache key includes the model path, so a new folder per start compiled
    afresh every time (21-37 s of each start on the H200); the same content now always lands at the same
    path. The folder is written whole into a temporary sibling and renamed into place, so a server never
    sees a half-written folder and two starts at once both end with the same complete one."""
    root = Path(root) if root is not None else synthetic_cache_root()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.key}-", dir=root))
    try:
        write_synthetic_model(spec, staging)
        final = root / f"{spec.key}-{_digest(staging)}"
        try:
            staging.rename(final)
        except OSError:  # already there: written by an earlier start (or one running now)
            if not (final / MARKER_FILE).is_file():
                raise ConfigError(f"synthetic model folder {final} exists but is not one agentbench wrote "
                                  f"(no {MARKER_FILE}); remove it") from None
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)
