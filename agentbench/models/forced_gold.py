"""Forced gold decoding on the client: each request carries a regex that forces the gold step's text.

``agentbench run/scenario ... --force-gold`` (docs/serving.md, "Proving the pipeline with forced gold
decoding") replays every scenario's gold solution through a real server: for each model call the
chat model works out which gold step the conversation is at (as the ``reference`` models do, from
the conversation itself), renders that step in the text the model family writes
(:mod:`agentbench.serving.forced`), and sends it as ``structured_outputs.regex`` with the real
request (tools, ``tool_choice`` auto, the server's chat template). The server's own parser turns
the text into tool calls or content, and the normal graders grade the run: a correct serving
pipeline scores the gold's full marks, whatever the weights. It measures the serving pipeline,
not the model, and every such run says so (model description, the run's selection line).

- :func:`force_gold_spec`: the command line's ``--force-gold`` applied to a registry entry.
- :class:`ForcedGoldChatOpenAI`: the chat model the openai and vllm backends build for such an entry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool
from pydantic import ConfigDict

from agentbench.errors import ConfigError
from agentbench.models.offline import conversation_position, message_roles
from agentbench.models.openai_chat import ToolSafeChatOpenAI
from agentbench.models.prompt_tools import PromptToolRunnable, as_messages
from agentbench.models.registry import ModelSpec
from agentbench.models.script import ScriptTurn, gold_script, step_at
from agentbench.scenario.schema import Scenario
from agentbench.serving.forced import FORMATS, ForcedText, forced_script, forced_text

__all__ = [
    "FORCED_GOLD_NOTE",
    "PARSER_FORMATS",
    "ForcedGoldChatOpenAI",
    "force_gold_spec",
    "forced_format",
    "forced_gold_fields",
]

#: How runs in this mode are labelled (model description, the run's selection).
FORCED_GOLD_NOTE = "forced gold decoding: measures the serving pipeline, not the model"

#: vLLM ``--tool-call-parser`` names -> the forced format whose text that parser reads.
PARSER_FORMATS = {"hermes": "hermes", "llama3_json": "llama3_json", "mistral": "mistral"}

# The kwarg that carries a position computed before prompt rendering down to the request payload.
_POSITION_KWARG = "agentbench_forced_position"


def _thinking_on(spec: ModelSpec) -> bool:
    return bool((spec.chat_template_kwargs or {}).get("enable_thinking", True))


def force_gold_spec(spec: ModelSpec) -> ModelSpec:
    """``spec`` in forced gold mode: ``force_gold`` set to the format its parser reads, and labelled.

    Allowed on any vllm entry (synthetic or real weights: the run says it measures the pipeline) and on
    openai entries that name their format (``force_gold: hermes`` in the entry) or use prompt tools.
    ``ConfigError`` (naming the entry) for the rest, and for a reasoning model with thinking on: vLLM
    applies structured outputs only after the reasoning ends (``enable_in_reasoning`` is off), and
    random weights never end it.
    """
    if spec.backend not in ("vllm", "openai"):
        raise ConfigError(f"--force-gold: model {spec.key!r} is a {spec.backend} model; forced gold decoding "
                          "drives a server (backend vllm or openai)")
    fmt: str | None = spec.force_gold
    if fmt is None:
        parser = spec.serve.tool_parser if spec.serve is not None else None
        if parser is not None and parser not in PARSER_FORMATS:
            raise ConfigError(f"--force-gold: model {spec.key!r} uses tool parser {parser!r}; forced gold decoding "
                              f"knows {', '.join(PARSER_FORMATS)} (or use --tool-protocol prompt)")
        if parser is None and spec.serve is None and spec.tool_protocol != "prompt":
            raise ConfigError(f"--force-gold: model {spec.key!r} does not say which tool-call text its server "
                              f"parses; set force_gold ({', '.join(PARSER_FORMATS)}) in its entry, or use "
                              "--tool-protocol prompt")
        fmt = PARSER_FORMATS[parser] if parser is not None else "prompt"
    if spec.serve is not None and spec.serve.reasoning_parser and _thinking_on(spec):
        raise ConfigError(f"--force-gold: model {spec.key!r} has reasoning parser {spec.serve.reasoning_parser!r} "
                          "with thinking on; vLLM applies structured outputs only after the reasoning ends, so "
                          "use --thinking off")
    description = f"{spec.description} [{FORCED_GOLD_NOTE}]" if spec.description else f"[{FORCED_GOLD_NOTE}]"
    forced = spec.model_copy(update={"force_gold": fmt, "description": description})
    forced_format(forced)  # an impossible protocol/format pair fails now, not in the first scenario
    return forced


def forced_format(spec: ModelSpec) -> str:
    """The format a forced entry's replies are written in: ``prompt`` under prompt-based tools, else
    the entry's ``force_gold``."""
    if spec.force_gold is None:
        raise ConfigError(f"model {spec.key!r} is not in forced gold mode")
    if spec.tool_protocol == "prompt":
        return "prompt"
    if spec.force_gold == "prompt":
        raise ConfigError(f"model {spec.key!r}: force_gold 'prompt' needs tool_protocol prompt (its server parses "
                          "no tool calls)")
    return spec.force_gold


def forced_gold_fields(spec: ModelSpec, scenario: Scenario | None) -> dict[str, Any]:
    """The fields of a :class:`ForcedGoldChatOpenAI` for one run of ``scenario``."""
    fmt = forced_format(spec)
    if scenario is None:
        raise ConfigError(f"model {spec.key!r} is in forced gold mode: it replays scenarios' gold solutions and "
                          "cannot serve an app")
    return {"forced_format": fmt, "forced_script": forced_script(gold_script(scenario), fmt)}


class ForcedGoldChatOpenAI(ToolSafeChatOpenAI):
    """``ToolSafeChatOpenAI`` whose every request forces the gold step's text (see the module docstring).

    The step comes from the conversation (user turns so far, replies since the last one), so one
    instance serves any number of turns. In prompt mode it is computed from the conversation before
    the prompt rendering turns tool results into user messages.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    forced_format: str
    """One of :data:`agentbench.serving.forced.FORMATS`."""
    forced_script: list[ScriptTurn]
    """The scenario's gold solution as replies (one call per reply for one-call formats)."""

    def forced_for(self, messages: Sequence[BaseMessage]) -> ForcedText:
        """The forced reply for a conversation."""
        return self.forced_at(conversation_position(message_roles(messages)))

    def forced_at(self, position: tuple[int, int]) -> ForcedText:
        """The forced reply at (user turn, reply index)."""
        if self.forced_format not in FORMATS:
            raise ConfigError(f"unknown forced format {self.forced_format!r}; known: {', '.join(FORMATS)}")
        return forced_text(step_at(self.forced_script, *position), self.forced_format)

    def bind_tools(self, tools: Sequence[dict[str, Any] | type | Any | BaseTool], **kwargs: Any
                   ) -> Runnable[LanguageModelInput, AIMessage]:
        """Native mode: ChatOpenAI's own. Prompt mode: the prompt-tools runnable, which here passes the
        position of the conversation as it was before rendering."""
        if self.tool_protocol == "prompt":
            return _ForcedPromptRunnable(self, tools, system_role=self.system_role)
        return super().bind_tools(tools, **kwargs)

    def _get_request_payload(self, input_: LanguageModelInput, *, stop: list[str] | None = None,
                             **kwargs: Any) -> dict[str, Any]:
        position = kwargs.pop(_POSITION_KWARG, None)
        payload = super()._get_request_payload(input_, stop=stop, **kwargs)
        forced = (self.forced_at((int(position[0]), int(position[1]))) if position is not None
                  else self.forced_for(self._convert_input(input_).to_messages()))
        payload["extra_body"] = {**(payload.get("extra_body") or {}),
                                 "structured_outputs": forced.structured_outputs()}
        # The forced text must fit: raise the entry's limit when it is smaller (the regex ends the reply anyway).
        key = "max_completion_tokens" if "max_completion_tokens" in payload else "max_tokens"
        payload[key] = max(int(payload.get(key) or 0), forced.max_tokens)
        return payload


class _ForcedPromptRunnable(PromptToolRunnable):
    """Prompt-based tools for a forced model: the gold position is read from the conversation as the
    tool loop holds it (tool results are still tool messages), then the prompt is rendered."""

    def _position(self, value: LanguageModelInput) -> tuple[int, int]:
        return conversation_position(message_roles(as_messages(value)))

    def invoke(self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any) -> AIMessage:
        return super().invoke(input, config, **{_POSITION_KWARG: self._position(input), **kwargs})

    async def ainvoke(self, input: LanguageModelInput, config: RunnableConfig | None = None,
                      **kwargs: Any) -> AIMessage:
        return await super().ainvoke(input, config, **{_POSITION_KWARG: self._position(input), **kwargs})

    def stream(self, input: LanguageModelInput, config: RunnableConfig | None = None,
               **kwargs: Any) -> Iterator[AIMessage]:
        yield from super().stream(input, config, **{_POSITION_KWARG: self._position(input), **kwargs})

    async def astream(self, input: LanguageModelInput, config: RunnableConfig | None = None,
                      **kwargs: Any) -> AsyncIterator[AIMessage]:
        async for chunk in super().astream(input, config, **{_POSITION_KWARG: self._position(input), **kwargs}):
            yield chunk
