"""Forced gold decoding: a gold step as the exact text a model family writes, and a regex that forces it.

A synthetic model (random weights) writes noise. With vLLM's structured outputs (request body
``structured_outputs: {"regex": ...}``) the server can only sample tokens whose text keeps matching
the regex; a regex that matches exactly one string makes any model write that string. Forcing the
text a family's *tool parser* reads (with ``tool_choice`` left ``auto``) sends a scenario's gold
solution through the real chat template, detokenizer and parser, so a correct pipeline scores the
gold's full marks (docs/serving.md, "Proving the pipeline with forced gold decoding").

One job here: gold step -> family text -> regex. Formats (checked against vLLM 0.24.0's parsers):

- ``hermes`` (``--tool-call-parser hermes``: Qwen2.5, Qwen3): ``<tool_call>\\n{"name": ..., "arguments":
  {...}}\\n</tool_call>`` per call, joined by ``\\n`` (hermes_tool_parser.py reads every
  ``<tool_call>(.*?)</tool_call>`` block as JSON with ``name`` and ``arguments``).
- ``llama3_json`` (Llama 3.1): ``{"name": ..., "parameters": {...}}`` (llama_tool_parser.py decodes every
  top-level JSON object and takes ``arguments`` or ``parameters``; calls are joined by ``; ``). No
  ``<|python_tag|>`` prefix: it is a special token, which structured outputs do not emit. Llama 3.1's
  chat template refuses an assistant message with several calls, so the script gives it one call per
  reply (:func:`forced_script`).
- ``mistral`` (HF tokenizer mode, pre-v11 vocabulary): ``[TOOL_CALLS] [{"name": ..., "arguments": {...}},
  ...]`` (mistral_tool_parser.py splits on ``[TOOL_CALLS]`` and JSON-decodes the array), as
  agentbench's synthetic Mistral template renders earlier calls.
- ``prompt`` (``tool_protocol: prompt``, :mod:`agentbench.models.prompt_tools`): the same blocks as
  hermes, parsed by agentbench instead of the server.

A final answer is the gold answer text itself, in every format.

The regex is a literal: every character stands for itself, regex metacharacters are escaped with a
backslash and control characters written ``\\uXXXX``. That subset means the same in xgrammar (vLLM's
default structured-output backend) and Python's ``re``; ``re.escape`` is not it (it escapes spaces
and other characters xgrammar warns about), and xgrammar's ``\\x`` escape reads more than two hex
digits, so ``\\x0b`` followed by ``b`` would be a different character.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from agentbench.models.script import ScriptedCall, ScriptStep, ScriptTurn, call_steps

__all__ = [
    "FORMATS",
    "ONE_CALL_FORMATS",
    "ForcedText",
    "forced_script",
    "forced_text",
    "literal_regex",
    "regex_literal",
    "step_text",
    "token_budget",
]

#: Forced formats: what each writes (see the module docstring).
FORMATS: dict[str, str] = {
    "hermes": "vLLM hermes parser: <tool_call> JSON blocks",
    "llama3_json": "vLLM llama3_json parser: {\"name\", \"parameters\"} JSON, one call per reply",
    "mistral": "vLLM mistral parser (HF tokenizer): [TOOL_CALLS] and a JSON array",
    "prompt": "agentbench prompt-based tools: <tool_call> JSON blocks parsed by the client",
}

#: Formats whose chat template renders only one call per assistant message (parallel gold steps are split).
ONE_CALL_FORMATS = frozenset({"llama3_json"})

_META = frozenset("\\.^$|?*+()[]{}/")
_NAMED_CONTROLS = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
_UNESCAPE = {"n": "\n", "t": "\t", "r": "\r"}
_HEX = frozenset("0123456789abcdefABCDEF")

# Tokens per reply beyond the text: the end-of-sequence token and slack. Every token of a byte-level BPE
# (Llama 3, Qwen, agentbench's synthetic tokenizers) or a byte-fallback SentencePiece (Mistral) covers at
# least one byte, so the text never needs more tokens than it has UTF-8 bytes.
_BUDGET_SLACK = 16


def _arguments(call: ScriptedCall) -> str:
    """The call's arguments as JSON text (ASCII only: any tokenizer spells it byte by byte)."""
    return call.raw_args if call.raw_args is not None else json.dumps(call.args)


def _hermes_block(call: ScriptedCall) -> str:
    return f'<tool_call>\n{{"name": {json.dumps(call.name)}, "arguments": {_arguments(call)}}}\n</tool_call>'


def _calls_text(calls: Sequence[ScriptedCall], fmt: str) -> str:
    if fmt in ("hermes", "prompt"):
        return "\n".join(_hermes_block(c) for c in calls)
    if fmt == "llama3_json":
        return "; ".join(f'{{"name": {json.dumps(c.name)}, "parameters": {_arguments(c)}}}' for c in calls)
    if fmt == "mistral":
        items = ", ".join(f'{{"name": {json.dumps(c.name)}, "arguments": {_arguments(c)}}}' for c in calls)
        return f"[TOOL_CALLS] [{items}]"
    raise ValueError(f"unknown forced format {fmt!r}; known: {', '.join(FORMATS)}")


def step_text(step: ScriptStep, fmt: str) -> str:
    """The exact text a model of format ``fmt`` writes for ``step``: its calls, or its final answer."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown forced format {fmt!r}; known: {', '.join(FORMATS)}")
    return _calls_text(step.calls, fmt) if step.calls else step.answer


def literal_regex(text: str) -> str:
    """A regex matching exactly ``text``, in the subset xgrammar and Python's ``re`` read alike."""
    out = []
    for ch in text:
        if ch in _META:
            out.append("\\" + ch)
        elif ch in _NAMED_CONTROLS:
            out.append(_NAMED_CONTROLS[ch])
        elif ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def regex_literal(regex: str) -> str:
    """The one string a :func:`literal_regex` regex matches (its inverse).

    ``ValueError`` (naming the position) for anything else: an unescaped metacharacter, or an escape
    that :func:`literal_regex` does not write.
    """
    out, i = [], 0
    while i < len(regex):
        ch = regex[i]
        if ch != "\\":
            if ch in _META:
                raise ValueError(f"not a literal regex: unescaped {ch!r} at position {i} of {regex[:80]!r}")
            out.append(ch)
            i += 1
            continue
        nxt = regex[i + 1: i + 2]
        if nxt in _META:
            out.append(nxt)
            i += 2
        elif nxt in _UNESCAPE:
            out.append(_UNESCAPE[nxt])
            i += 2
        elif nxt == "u" and len(regex) >= i + 6 and set(regex[i + 2: i + 6]) <= _HEX:
            out.append(chr(int(regex[i + 2: i + 6], 16)))
            i += 6
        else:
            raise ValueError(f"not a literal regex: escape {regex[i:i + 2]!r} at position {i} of {regex[:80]!r}")
    return "".join(out)


def token_budget(text: str) -> int:
    """A ``max_tokens`` that always fits ``text`` (one token per UTF-8 byte at worst, plus slack)."""
    return len(text.encode("utf-8")) + _BUDGET_SLACK


def forced_script(script: Sequence[ScriptTurn], fmt: str) -> list[ScriptTurn]:
    """``script`` as format ``fmt`` can replay it: for one-call formats (Llama 3.1), a reply carrying
    several calls becomes one reply per call, in order."""
    if fmt not in ONE_CALL_FORMATS:
        return list(script)
    turns = []
    for turn in script:
        steps: list[ScriptStep] = []
        for step in turn.steps:
            steps += call_steps(list(step.calls), parallel=False) if len(step.calls) > 1 else [step]
        turns.append(ScriptTurn(tuple(steps)))
    return turns


class ForcedText:
    """What one forced reply sends: the text, its regex and a token budget that fits it."""

    __slots__ = ("max_tokens", "regex", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.regex = literal_regex(text)
        self.max_tokens = token_budget(text)

    def structured_outputs(self) -> dict[str, str]:
        """The request body's ``structured_outputs`` value."""
        return {"regex": self.regex}

    def __repr__(self) -> str:
        return f"ForcedText({self.text!r})"


def forced_text(step: ScriptStep, fmt: str) -> ForcedText:
    """The forced reply for ``step`` in format ``fmt``."""
    return ForcedText(step_text(step, fmt))
