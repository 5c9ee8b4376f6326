"""Forced gold decoding: each family's text read back by its parser's own rules, the literal regex (Python's
``re`` and, when installed, xgrammar), the request a forced model sends, the Qwen3 prompt that ends the
reasoning, and whole suites through the fake vLLM over HTTP at full marks."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from serving_helpers import TOY_SERVE

from agentbench.cli.app import main
from agentbench.errors import ConfigError
from agentbench.models.backends import make_backend
from agentbench.models.forced_gold import FORCED_GOLD_NOTE, ForcedGoldChatOpenAI, force_gold_spec
from agentbench.models.prompt_tools import parse_text, tools_prompt
from agentbench.models.registry import ModelSpec, adhoc_openai_model, load_registry, resolve_model
from agentbench.models.script import ScriptedCall, ScriptStep, ScriptTurn, gold_script
from agentbench.scenario.loader import ScenarioLibrary
from agentbench.serving.forced import (
    FORMATS,
    forced_script,
    literal_regex,
    regex_literal,
    step_text,
    token_budget,
)
from agentbench.testing.fake_vllm import command

# ---------------------------------------------------------------------------
# The parsers' own rules, copied from vLLM 0.24.0 (vllm/tool_parsers/*.py of the 0.24.0 wheel)
# ---------------------------------------------------------------------------

# vllm/tool_parsers/hermes_tool_parser.py (0.24.0), Hermes2ProToolParser.tool_call_regex
HERMES_TOOL_CALL_REGEX = re.compile(r"<tool_call>(.*?)</tool_call>|<tool_call>(.*)", re.DOTALL)
# vllm/tool_parsers/llama_tool_parser.py (0.24.0), Llama3JsonToolParser.tool_call_start_regex
LLAMA_TOOL_CALL_START_REGEX = re.compile(r"\{")
# vllm/tool_parsers/mistral_tool_parser.py (0.24.0), MistralToolParser.bot_token and tool_call_regex
MISTRAL_BOT_TOKEN = "[TOOL_CALLS]"
MISTRAL_TOOL_CALL_REGEX = re.compile(r"\[{.*}\]", re.DOTALL)


def hermes_extract(text: str) -> tuple[list[tuple[str, dict[str, Any]]], str | None]:
    """Hermes2ProToolParser.extract_tool_calls: every block's JSON, ``name`` and ``arguments``; content before."""
    if "<tool_call>" not in text:
        return [], text
    calls = [json.loads(a if a else b) for a, b in HERMES_TOOL_CALL_REGEX.findall(text)]
    content = text[: text.find("<tool_call>")]
    return [(c["name"], c["arguments"]) for c in calls], content or None


def llama_extract(text: str) -> tuple[list[tuple[str, dict[str, Any]]], str | None]:
    """Llama3JsonToolParser.extract_tool_calls: every top-level JSON object, ``arguments`` or ``parameters``."""
    if not ("<|python_tag|>" in text or "{" in text):
        return [], text
    end, calls, decoder = -1, [], json.JSONDecoder()
    try:
        for match in LLAMA_TOOL_CALL_START_REGEX.finditer(text):
            if match.start() <= end:
                continue
            obj, length = decoder.raw_decode(text[match.start():])
            end = match.start() + length
            calls.append((obj["name"], obj["arguments"] if "arguments" in obj else obj["parameters"]))
    except (KeyError, ValueError):  # the parser logs it and returns the whole text as content
        return [], text
    return (calls, None) if calls else ([], text)


def mistral_extract(text: str) -> tuple[list[tuple[str, dict[str, Any]]], str | None]:
    """MistralToolParser.extract_tool_calls for a pre-v11 (no ``[ARGS]``) HF vocabulary."""
    if MISTRAL_BOT_TOKEN not in text:
        return [], text
    content, *raw = text.split(MISTRAL_BOT_TOKEN)
    assert len(raw) == 1, "only one BOT token"
    calls, _ = json.JSONDecoder().raw_decode(raw[0].strip())
    assert MISTRAL_TOOL_CALL_REGEX.search(raw[0])  # the parser's fallback pattern matches the same text
    return [(c["name"], c.get("arguments", {})) for c in calls], content if content.strip() else None


def prompt_extract(text: str) -> tuple[list[tuple[str, dict[str, Any]]], str | None]:
    """agentbench's own prompt-tools parser (the client reads this format)."""
    parsed = parse_text(text)
    assert not parsed.invalid_tool_calls, parsed.invalid_tool_calls
    return [(c["name"], c["args"]) for c in parsed.tool_calls], parsed.content or None


EXTRACT = {"hermes": hermes_extract, "llama3_json": llama_extract, "mistral": mistral_extract,
           "prompt": prompt_extract}


def every_gold_step(library: ScenarioLibrary) -> list[ScriptStep]:
    return [step for s in library.scenarios.values() for turn in gold_script(s) for step in turn.steps]


# ---------------------------------------------------------------------------
# Rendering per family
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_gold_step_reads_back_through_the_family_parser(fmt: str, library: ScenarioLibrary) -> None:
    steps = every_gold_step(library)
    assert sum(1 for s in steps if len(s.calls) > 1) >= 1  # parallel steps are covered
    for step in steps:
        text = step_text(step, fmt)
        calls, content = EXTRACT[fmt](text)
        if step.calls:
            assert calls == [(c.name, dict(c.args)) for c in step.calls], text
            assert content is None, text  # nothing but the calls: no stray content reaches the transcript
        else:
            assert calls == [] and content == step.answer


def test_the_exact_family_texts() -> None:
    step = ScriptStep(calls=(ScriptedCall("calculator", {"expression": "4.80 / 0.75"}), ScriptedCall("f", {})))
    assert step_text(step, "hermes") == ('<tool_call>\n{"name": "calculator", "arguments": {"expression": '
                                         '"4.80 / 0.75"}}\n</tool_call>\n<tool_call>\n{"name": "f", "arguments": {}}'
                                         "\n</tool_call>")
    assert step_text(step, "llama3_json") == ('{"name": "calculator", "parameters": {"expression": "4.80 / 0.75"}}; '
                                              '{"name": "f", "parameters": {}}')
    assert step_text(step, "mistral") == ('[TOOL_CALLS] [{"name": "calculator", "arguments": {"expression": '
                                          '"4.80 / 0.75"}}, {"name": "f", "arguments": {}}]')
    assert step_text(step, "prompt") == step_text(step, "hermes")
    assert step_text(ScriptStep(answer="It is 12."), "mistral") == "It is 12."
    with pytest.raises(ValueError, match="unknown forced format 'xml'"):
        step_text(step, "xml")


def test_one_call_formats_get_one_call_per_reply() -> None:
    calls = (ScriptedCall("a", {"x": 1}), ScriptedCall("b", {"y": 2}))
    script = [ScriptTurn((ScriptStep(calls=calls), ScriptStep(answer="done")))]
    split = forced_script(script, "llama3_json")
    assert [[c.name for c in s.calls] for s in split[0].steps] == [["a"], ["b"], []]
    assert split[0].steps[-1].answer == "done"
    assert forced_script(script, "hermes") == script


# ---------------------------------------------------------------------------
# The literal regex
# ---------------------------------------------------------------------------

AWKWARD = ['a"b\\c', "{}[]()|?*+.^$/", "tab\tnew\nline\rret", "\x00\x01\x0bb\x1f\x7f\x9f", "é — € 中 😀 \u2028",
           "1.2 kg for $7.20?", ""]


def xgrammar_accepts() -> Any:
    """xgrammar's own matcher (vLLM's default structured-output backend), when it is installed."""
    xgrammar = pytest.importorskip("xgrammar")
    testing = pytest.importorskip("xgrammar.testing")

    def accepts(regex: str, text: str) -> bool:
        return bool(testing._is_grammar_accept_string(xgrammar.Grammar.from_regex(regex), text))

    return accepts


@pytest.mark.parametrize("text", [*AWKWARD, "".join(chr(i) for i in range(0xA0))])
def test_literal_regex_matches_exactly_its_text(text: str) -> None:
    regex = literal_regex(text)
    assert re.fullmatch(regex, text)
    assert not re.fullmatch(regex, text + "x") and not re.fullmatch(regex, "x" + text)
    if text:
        assert not re.fullmatch(regex, text[:-1])
    assert regex_literal(regex) == text


@pytest.mark.parametrize("text", AWKWARD)
def test_literal_regex_is_xgrammar_regex(text: str) -> None:
    accepts = xgrammar_accepts()
    regex = literal_regex(text)
    assert accepts(regex, text)
    assert not accepts(regex, text + "x")


def test_gold_steps_compile_in_xgrammar(library: ScenarioLibrary) -> None:
    accepts = xgrammar_accepts()
    for step in every_gold_step(library)[:60]:
        text = step_text(step, "hermes")
        assert accepts(literal_regex(text), text), text


def test_regex_literal_refuses_what_is_not_a_literal() -> None:
    with pytest.raises(ValueError, match=r"unescaped '\(' at position 1"):
        regex_literal("a(b|c)")
    with pytest.raises(ValueError, match=r"escape '\\\\d' at position 0"):
        regex_literal(r"\d+")


def test_token_budget_fits_one_token_per_byte() -> None:
    for text in AWKWARD:
        assert token_budget(text) > len(text.encode("utf-8"))


# ---------------------------------------------------------------------------
# Entries: which format, what is refused, how runs are labelled
# ---------------------------------------------------------------------------


def test_force_gold_spec_picks_the_parser_format_and_labels_the_entry() -> None:
    registry = load_registry()
    found = {key: force_gold_spec(resolve_model(key, registry)) for key in
             ("qwen3-8b", "qwen25-7b", "llama31-8b", "mistral-7b", "olmo2-13b", "llama31-8b@awq")}
    assert {k: s.force_gold for k, s in found.items()} == {
        "qwen3-8b": "hermes", "qwen25-7b": "hermes", "llama31-8b": "llama3_json", "mistral-7b": "mistral",
        "olmo2-13b": "prompt", "llama31-8b@awq": "llama3_json"}
    assert all(FORCED_GOLD_NOTE in s.description for s in found.values())
    prompt = force_gold_spec(adhoc_openai_model("http://h/v1", "m").model_copy(update={"tool_protocol": "prompt"}))
    assert prompt.force_gold == "prompt"


def test_force_gold_refusals_name_the_entry_and_the_way_out() -> None:
    registry = load_registry()
    with pytest.raises(ConfigError, match="'reference' is a reference model"):
        force_gold_spec(registry["reference"])
    with pytest.raises(ConfigError, match=r"'m' does not say which tool-call text.*--tool-protocol prompt"):
        force_gold_spec(adhoc_openai_model("http://h/v1", "m"))
    thinking = registry["qwen3-8b"].model_copy(update={"chat_template_kwargs": {"enable_thinking": True}})
    with pytest.raises(ConfigError, match=r"reasoning parser 'qwen3' with thinking on.*--thinking off"):
        force_gold_spec(thinking)
    olmo = force_gold_spec(registry["olmo2-13b"]).model_copy(update={"tool_protocol": "native"})
    with pytest.raises(ConfigError, match="force_gold 'prompt' needs tool_protocol prompt"):
        make_backend(olmo).chat_model(None)  # nothing to force for an app either, but the pair fails first


def test_cli_refuses_force_gold_on_a_reference_model(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["scenario", "tip_calculation", "--model", "reference", "--force-gold"])
    assert code == 1
    assert "--force-gold: model 'reference' is a reference model" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# The request a forced model sends
# ---------------------------------------------------------------------------


def forced_model(library: ScenarioLibrary, scenario: str, **update: Any) -> ForcedGoldChatOpenAI:
    spec = ModelSpec.model_validate({"key": "toy", "backend": "openai", "base_url": "http://127.0.0.1:1/v1",
                                     "model_name": "toy", "force_gold": "hermes", **update})
    model = make_backend(spec).chat_model(library.get(scenario))
    assert isinstance(model, ForcedGoldChatOpenAI)
    return model


def test_native_request_carries_the_regex_the_tools_and_a_budget(library: ScenarioLibrary) -> None:
    model = forced_model(library, "unit_price_comparison", sampling={"max_tokens": 8})
    bound = model.bind_tools([{"type": "function", "function": {"name": "calculator", "parameters": {}}}])
    messages = [SystemMessage("s"), HumanMessage("Which cereal is the better deal?")]
    payload = model._get_request_payload(messages, **bound.kwargs)  # type: ignore[attr-defined]
    text = regex_literal(payload["extra_body"]["structured_outputs"]["regex"])
    assert text.count("<tool_call>") == 2 and '"4.80 / 0.75"' in text  # the parallel gold step, hermes
    assert payload["tools"][0]["function"]["name"] == "calculator" and "tool_choice" not in payload
    assert payload["max_completion_tokens"] == token_budget(text)  # raised from the entry's 8
    calls = AIMessage("", tool_calls=[{"name": "calculator", "args": {}, "id": "1"},
                                      {"name": "calculator", "args": {}, "id": "2"}])
    later = [*messages, calls, ToolMessage("6.4", tool_call_id="1"), ToolMessage("6", tool_call_id="2")]
    payload = model._get_request_payload(later)
    answer = regex_literal(payload["extra_body"]["structured_outputs"]["regex"])
    assert answer.startswith("The 750 g box costs $6.40 per kg")


def test_the_entrys_extra_body_and_larger_limits_are_kept(library: ScenarioLibrary) -> None:
    model = forced_model(library, "tip_calculation", chat_template_kwargs={"enable_thinking": False},
                         sampling={"max_tokens": 5000})
    payload = model._get_request_payload([HumanMessage("hi")])
    assert payload["extra_body"]["chat_template_kwargs"] == {"enable_thinking": False}
    assert payload["max_completion_tokens"] == 5000


def test_prompt_mode_reads_the_position_before_rendering(library: ScenarioLibrary,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    model = forced_model(library, "unit_price_comparison", tool_protocol="prompt")
    sent: list[str] = []

    def capture(self: ForcedGoldChatOpenAI, messages: Any, stop: Any = None, run_manager: Any = None,
                **kwargs: Any) -> Any:
        payload = self._get_request_payload(messages, stop=stop, **kwargs)
        sent.append(regex_literal(payload["extra_body"]["structured_outputs"]["regex"]))
        raise RuntimeError("captured")

    monkeypatch.setattr(ForcedGoldChatOpenAI, "_generate", capture)
    runnable = model.bind_tools([{"type": "function", "function": {"name": "calculator", "parameters": {}}}])
    calls = AIMessage("", tool_calls=[{"name": "calculator", "args": {}, "id": "1"},
                                      {"name": "calculator", "args": {}, "id": "2"}])
    conversation = [HumanMessage("Which cereal?"), calls, ToolMessage("6.4", tool_call_id="1", name="calculator"),
                    ToolMessage("6", tool_call_id="2", name="calculator")]
    # Rendered, the tool results are a user message: counted from the rendered prompt this would be turn 2.
    assert sum(isinstance(m, HumanMessage) for m in runnable.render(conversation)) == 2  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="captured"):
        runnable.invoke(conversation)
    assert sent and sent[0].startswith("The 750 g box costs $6.40 per kg")
    assert "calculator" in tools_prompt([{"type": "function", "function": {"name": "calculator"}}])


# ---------------------------------------------------------------------------
# Qwen3: the generation prompt ends the reasoning, so vLLM applies the regex from the first token
# ---------------------------------------------------------------------------


def test_qwen3_synthetic_prompt_ends_reasoning_when_thinking_is_off(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from agentbench.serving.synth import write_synthetic_model

    write_synthetic_model(load_registry()["qwen3-8b"], tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path))
    think, end = tokenizer.convert_tokens_to_ids("<think>"), tokenizer.convert_tokens_to_ids("</think>")

    def reasoning_ended(ids: list[int]) -> bool:
        # vllm/parser/engine/parser_engine.py (0.24.0), ParserEngine.is_reasoning_end: the last </think> or
        # <think> id of the prompt decides (vLLM passes the prompt ids; structured outputs start once it is True).
        for token in reversed(ids):
            if token == end:
                return True
            if token == think:
                return False
        return False

    chat = [{"role": "system", "content": "s"}, {"role": "user", "content": "What is 15% of 80?"}]
    tools = [{"type": "function", "function": {"name": "calculator", "parameters": {"type": "object"}}}]
    off = tokenizer.apply_chat_template(chat, tools=tools, add_generation_prompt=True, tokenize=False,
                                        enable_thinking=False)
    on = tokenizer.apply_chat_template(chat, tools=tools, add_generation_prompt=True, tokenize=False)
    assert off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")  # as Qwen3's own template writes it
    assert reasoning_ended(tokenizer(off)["input_ids"]) and not reasoning_ended(tokenizer(on)["input_ids"])


# ---------------------------------------------------------------------------
# End to end through the fake vLLM over HTTP
# ---------------------------------------------------------------------------

# The fake's own responder echoes the user: only the forced regex can make a run pass.
ECHO = "FAKE_VLLM_RESPONDER=agentbench.testing.openai_server:echo_responder"


def run_suite(capsys: pytest.CaptureFixture[str], tmp_path: Path, suite: str, parser: str, *extra: str,
              stream: bool = False) -> dict[str, Any]:
    models = tmp_path / "models.yaml"
    entry = {"backend": "vllm", "stream": stream, "serve": {**TOY_SERVE, "tool_parser": parser}}
    models.write_text(yaml.safe_dump({"toy": entry}))
    code = main(["run", "--suite", suite, "--models", "toy", "--models-file", str(models), "--vllm-command",
                 command(), "--vllm-env", ECHO, "--no-report", "--json", *extra])
    out = capsys.readouterr().out
    data: dict[str, Any] = json.loads(out)
    data["exit_code"] = code
    return data


def full_marks(data: dict[str, Any]) -> None:
    failed = [(r["scenario"], r["outcome"], r["error"], r["failed_grades"]) for r in data["results"]
              if not r["passed"] or r["score"] < 1]
    assert not failed, failed
    assert data["exit_code"] == 0


@pytest.mark.slow  # the whole library (64 scenarios) over HTTP, about 15 s here
def test_full_suite_scores_full_marks_forced_through_the_hermes_parser(capsys, results_dir: Path,
                                                                       tmp_path: Path, library) -> None:
    data = run_suite(capsys, tmp_path, "full", "hermes", "--force-gold")
    assert len(data["results"]) == len(library.suite("full"))
    full_marks(data)
    plan = json.loads((results_dir / "runs" / data["run_id"] / "plan.json").read_text())
    assert plan["model_specs"]["toy"]["force_gold"] == "hermes"
    assert plan["selection"] == f"suite full; {FORCED_GOLD_NOTE}"


@pytest.mark.slow
@pytest.mark.parametrize(("parser", "extra"), [("llama3_json", ()), ("mistral", ()),
                                               ("llama3_json", ("--tool-protocol", "prompt"))])
def test_smoke_suite_scores_full_marks_in_every_format(capsys, results_dir: Path, tmp_path: Path, parser: str,
                                                       extra: tuple[str, ...]) -> None:
    full_marks(run_suite(capsys, tmp_path, "smoke", parser, "--force-gold", *extra))


@pytest.mark.slow
def test_streamed_replies_score_full_marks(capsys, results_dir: Path, tmp_path: Path) -> None:
    data = run_suite(capsys, tmp_path, "smoke", "hermes", "--force-gold", stream=True)
    full_marks(data)
    stored = (results_dir / "runs" / data["run_id"] / "results.jsonl").read_text()
    assert re.search(r'"ttft_s": ?0\.\d', stored)  # the calls were streamed (time to first output recorded)


@pytest.mark.slow
def test_without_force_gold_the_same_server_fails(capsys, results_dir: Path, tmp_path: Path) -> None:
    data = run_suite(capsys, tmp_path, "smoke", "hermes")
    assert not any(r["passed"] for r in data["results"])  # the echo responder answers nothing right
