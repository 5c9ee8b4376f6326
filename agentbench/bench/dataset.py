"""Synthetic prompts of set input and output lengths.

With the served model's tokenizer (``--tokenizer PATH``) the prompts are built exactly as
``vllm bench serve --dataset-name random`` builds them (vLLM 0.24.0 ``RandomDataset``): per-request
lengths and vocabulary offsets from ``numpy.random.default_rng(seed)``, token ids
``allowed[(offset + i + arange(len)) % len(allowed)]`` (special ids excluded), decoded to text and
re-encoded until the token count matches. The same seed and tokenizer give the same prompts as vLLM.

Without a tokenizer (a bare ``--base-url``), the documented text fallback: each prompt is
``input_len`` words from a fixed list of common English words starting at a seeded offset (about
one token per word with BPE tokenizers; the true count comes back in ``usage.prompt_tokens`` and
is what the metrics use), and every request pins ``min_tokens = max_tokens = output_len`` so the
output lengths match whatever the model would have said.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

from agentbench.bench.client import BenchRequest

__all__ = ["FALLBACK_WORDS", "load_tokenizer", "random_requests", "text_requests", "tokenizer_requests"]

FALLBACK_WORDS = (
    "the", "of", "and", "to", "in", "is", "you", "that", "it", "he", "was", "for", "on", "are", "as", "with",
    "his", "they", "at", "be", "this", "have", "from", "or", "one", "had", "by", "word", "but", "not", "what",
    "all", "were", "we", "when", "your", "can", "said", "there", "use", "an", "each", "which", "she", "do",
    "how", "their", "if", "will", "up", "other", "about", "out", "many", "then", "them", "these", "so", "some",
    "her", "would", "make", "like", "him", "into", "time", "has", "look", "two", "more", "write", "go", "see",
    "number", "no", "way", "could", "people", "my", "than", "first", "water", "been", "call", "who", "oil",
    "its", "now", "find", "long", "down", "day", "did", "get", "come", "made", "may", "part",
)


def load_tokenizer(path: str | Path) -> Any:
    """The Hugging Face tokenizer in ``path`` (a model directory), as vLLM loads it."""
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:  # pragma: no cover - transformers ships with vLLM
        raise RuntimeError("--tokenizer needs the transformers package (pip install transformers)") from exc
    try:
        return AutoTokenizer.from_pretrained(str(path))
    except Exception as exc:
        raise ValueError(f"cannot load a tokenizer from {path}: {exc}") from exc


def _lengths(rng_integers: Any, n: int, input_len: int, output_len: int, range_ratio: float,
             num_special: int) -> tuple[list[int], list[int]]:
    if not 0.0 <= range_ratio < 1.0:
        raise ValueError(f"range_ratio must be within [0, 1), got {range_ratio}")
    real = max(0, input_len - num_special)
    in_lo, in_hi = math.floor(real * (1 - range_ratio)), math.ceil(real * (1 + range_ratio))
    out_lo = max(math.floor(output_len * (1 - range_ratio)), 1)
    out_hi = max(math.ceil(output_len * (1 + range_ratio)), 1)
    return list(rng_integers(in_lo, in_hi + 1, n)), list(rng_integers(out_lo, out_hi + 1, n))


def tokenizer_requests(tokenizer: Any, n: int, input_len: int, output_len: int, *, range_ratio: float = 0.0,
                       seed: int = 0) -> list[BenchRequest]:
    """vLLM's random dataset (no prefix) with ``tokenizer``; needs numpy."""
    import numpy as np

    rng = np.random.default_rng(seed)
    num_special = int(tokenizer.num_special_tokens_to_add())
    in_lens, out_lens = _lengths(lambda lo, hi, size: rng.integers(lo, hi, size=size), n, input_len, output_len,
                                 range_ratio, num_special)
    offsets = rng.integers(0, tokenizer.vocab_size, size=n)
    all_tokens = np.arange(tokenizer.vocab_size)
    # The same expression as vLLM, so the (set-ordered) allowed ids come out in the same order.
    allowed = np.array(list(set(all_tokens) - set(tokenizer.all_special_ids)))
    requests = []
    for i in range(n):
        target = int(in_lens[i])
        seq = allowed[(int(offsets[i]) + i + np.arange(target)) % len(allowed)].tolist()
        prompt, seq = _decode_to_length(tokenizer, seq, target, rng)
        requests.append(BenchRequest(prompt=prompt, prompt_len=len(seq), output_len=int(out_lens[i])))
    return requests


def _decode_to_length(tokenizer: Any, seq: list[int], target: int, rng: Any, retries: int = 10) -> tuple[str, list]:
    """vLLM's ``gen_prompt_decode_to_target_len``: decode, re-encode, pad or cut, up to 10 times."""
    while True:
        prompt = tokenizer.decode(seq)
        seq = tokenizer.encode(prompt, add_special_tokens=False)
        if retries <= 0 or len(seq) == target:
            return prompt, seq
        if len(seq) < target:
            seq.extend(rng.integers(0, tokenizer.vocab_size, size=target - len(seq)).tolist())
        else:
            seq = seq[:target]
        retries -= 1


def text_requests(n: int, input_len: int, output_len: int, *, range_ratio: float = 0.0,
                  seed: int = 0) -> list[BenchRequest]:
    """The text fallback: word prompts, output pinned with ``min_tokens``/``max_tokens``."""
    if input_len < 1 or output_len < 1:
        raise ValueError(f"input and output lengths must be at least 1, got {input_len} and {output_len}")
    rng = random.Random(seed)
    in_lens, out_lens = _lengths(lambda lo, hi, size: [rng.randrange(lo, hi) for _ in range(size)], n, input_len,
                                 output_len, range_ratio, 0)
    requests = []
    for i in range(n):
        start = rng.randrange(len(FALLBACK_WORDS))
        words = [FALLBACK_WORDS[(start + i + k) % len(FALLBACK_WORDS)] for k in range(max(in_lens[i], 1))]
        requests.append(BenchRequest(prompt=" ".join(words), prompt_len=len(words), output_len=out_lens[i],
                                     extra_body={"min_tokens": out_lens[i]}))
    return requests


def random_requests(n: int, input_len: int, output_len: int, *, tokenizer: Any = None, range_ratio: float = 0.0,
                    seed: int = 0) -> list[BenchRequest]:
    """``n`` synthetic requests: vLLM's random dataset with a tokenizer, the text fallback without."""
    if n < 1:
        raise ValueError(f"need at least one prompt, got {n}")
    if tokenizer is None:
        return text_requests(n, input_len, output_len, range_ratio=range_ratio, seed=seed)
    return tokenizer_requests(tokenizer, n, input_len, output_len, range_ratio=range_ratio, seed=seed)
