"""Prompt-based tool calling, for models the server cannot parse tool calls for.

Native tool calling needs a server-side parser (vLLM's ``--tool-call-parser``); DeepSeek-Coder-V2-Lite,
OLMo-2, Yi-1.5, Phi-3.5 and Gemma-2 have none. For them (and for any model, to compare) the tools
are described in the prompt and the calls are parsed from the reply's text here, so the rest of
agentbench (the tool loop, transcripts, graders) sees ordinary LangChain tool calls.

The protocol (documented for users in docs/tool-protocols.md) is the Hermes/Qwen one:

- The system message gets the tool list: one JSON object per tool (``name``, ``description``,
  ``parameters`` = the JSON schema of the arguments) inside ``<tools></tools>``. No ``tools`` field
  is sent to the server.
- A call is a JSON object ``{"name": ..., "arguments": {...}}`` inside ``<tool_call></tool_call>``;
  several blocks in one reply are several calls; a reply without a block is the final answer.
- Results go back as a *user* message (models without tool support may reject role ``tool``), one
  ``<tool_response name="NAME">...</tool_response>`` block per call, in call order. The model's earlier
  replies go back as the text it wrote.
- ``<think>...</think>`` in a reply is reasoning: taken out of the answer and kept beside it, in
  one place only (:func:`take_reasoning`, which also keeps the text exactly as the model wrote it);
  the call parser then reads what is left.

Malformed blocks (bad JSON, not an object, no name, arguments not an object, no closing tag) become
``AIMessage.invalid_tool_calls`` carrying the block's raw text, exactly like a native call whose
arguments did not parse, so the tool loop answers them with an error and graders count them.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    convert_to_messages,
)
from langchain_core.messages.tool import InvalidToolCall, ToolCall, invalid_tool_call, tool_call
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.utils.function_calling import convert_to_openai_tool

__all__ = [
    "RAW_TEXT_KEY",
    "REASONING_KEY",
    "ParsedReply",
    "PromptToolRunnable",
    "parse_reply",
    "parse_text",
    "render_messages",
    "render_tool_results",
    "reply_text",
    "split_reasoning",
    "take_reasoning",
    "tools_prompt",
    "with_prompt_tools",
]

#: ``additional_kwargs`` key holding the reply's text exactly as the model wrote it.
RAW_TEXT_KEY = "agentbench_raw_text"
#: ``additional_kwargs`` key holding reasoning text (what ``runner.transcript.reasoning_of`` reads).
REASONING_KEY = "reasoning_content"

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n?(?P<body>.*?)\n?```$", re.DOTALL)
_NAME = re.compile(r'"name"\s*:\s*"(?P<name>[^"\\]{1,200})"')

_INSTRUCTIONS = """\
# Tools

You can call the tools (functions) listed below inside <tools></tools> tags: one JSON object per tool, \
with its name, what it does, and the JSON schema of its arguments ("parameters").
<tools>
{tools}
</tools>

To call a tool, write a JSON object with the tool's name and its arguments inside <tool_call></tool_call> tags:
<tool_call>
{{"name": "<tool name>", "arguments": {{<the arguments, a JSON object>}}}}
</tool_call>
You may call several tools in one reply: write one <tool_call> block per call. The results come back in \
the next user message, one <tool_response name="<tool name>"> block per call, in the order of your calls. \
When you have what you need, reply with your final answer as plain text, without any <tool_call> block."""


def _new_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content or [])


def tools_prompt(tools: Sequence[Any]) -> str:
    """The tool instructions added to the system message: every tool's name, description and
    argument schema, and the answer format. ``tools`` are BaseTools, OpenAI tool dicts or anything
    ``convert_to_openai_tool`` accepts."""
    lines = []
    for item in tools:
        function = convert_to_openai_tool(item)["function"]
        spec = {"name": function["name"], "description": function.get("description", ""),
                "parameters": function.get("parameters", {"type": "object", "properties": {}})}
        lines.append(json.dumps(spec, ensure_ascii=False))
    return _INSTRUCTIONS.format(tools="\n".join(lines))


# ---------------------------------------------------------------------------
# Parsing replies
# ---------------------------------------------------------------------------


@dataclass
class ParsedReply:
    """A reply's text taken apart: the answer, the reasoning, and the calls (valid and not)."""

    content: str
    reasoning: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    invalid_tool_calls: list[InvalidToolCall] = field(default_factory=list)


def split_reasoning(text: str) -> tuple[str | None, str]:
    """``(reasoning, rest)``: a leading ``<think>...</think>`` block taken out of ``text``.

    A ``</think>`` without an opening tag counts too (templates that open the block in the prompt);
    an unclosed ``<think>`` makes the whole rest reasoning (a reply cut off while thinking).
    """
    close = text.find(THINK_CLOSE)
    if close != -1:
        head = text[:close].strip()
        head = head.removeprefix(THINK_OPEN)
        return head.strip() or None, text[close + len(THINK_CLOSE):]
    stripped = text.lstrip()
    if stripped.startswith(THINK_OPEN):
        return stripped[len(THINK_OPEN):].strip() or None, ""
    return None, text


def _invalid(body: str, error: str, name: str | None = None) -> InvalidToolCall:
    if name is None:  # recover the name from broken JSON, so transcripts say what was attempted
        found = _NAME.search(body)
        name = found.group("name") if found else None
    return invalid_tool_call(name=name, args=body.strip(), id=_new_id(), error=error)


def _parse_block(body: str) -> ToolCall | InvalidToolCall:
    """One ``<tool_call>`` block's text as a call, or as an invalid call saying what is wrong."""
    text = body.strip()
    fenced = _FENCE.match(text)  # a JSON code fence inside the tags is tolerated
    if fenced:
        text = fenced.group("body").strip()
    try:
        data = json.loads(text)
    except ValueError as exc:
        return _invalid(body, f"the <tool_call> block is not valid JSON: {exc}")
    if not isinstance(data, dict):
        return _invalid(body, 'a tool call is a JSON object {"name": ..., "arguments": {...}}, '
                        f"not a JSON {type(data).__name__}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        return _invalid(body, 'the tool call has no "name" (a non-empty string)', name=None)
    arguments = data.get("arguments", data.get("parameters", {}))
    if not isinstance(arguments, dict):
        return _invalid(body, "arguments are not a JSON object", name=name)
    return tool_call(name=name, args=arguments, id=_new_id())


def parse_text(text: str) -> ParsedReply:
    """Take a reply's text apart (see the module docstring for the rules)."""
    reasoning, rest = split_reasoning(text)
    parsed = _parse_calls(rest)
    parsed.reasoning = reasoning
    return parsed


def _parse_calls(rest: str) -> ParsedReply:
    """The ``<tool_call>`` blocks of a reply's text with its reasoning already taken out."""
    parsed = ParsedReply(content="")
    visible: list[str] = []
    pos = 0
    while True:
        start = rest.find(CALL_OPEN, pos)
        if start == -1:
            visible.append(rest[pos:])
            break
        visible.append(rest[pos:start])
        body_start = start + len(CALL_OPEN)
        end = rest.find(CALL_CLOSE, body_start)
        if end == -1:
            parsed.invalid_tool_calls.append(_invalid(rest[body_start:], "unterminated <tool_call> block "
                                                                         "(no </tool_call>)"))
            break
        call = _parse_block(rest[body_start:end])
        if call.get("type") == "invalid_tool_call":
            parsed.invalid_tool_calls.append(call)  # type: ignore[arg-type]
        else:
            parsed.tool_calls.append(call)  # type: ignore[arg-type]
        pos = end + len(CALL_CLOSE)
    parsed.content = "".join(visible).strip()
    return parsed


def take_reasoning(message: AIMessage) -> AIMessage:
    """``message`` with its leading ``<think>`` block moved from ``content`` to
    ``additional_kwargs["reasoning_content"]`` (after any reasoning the server sent), and its text
    exactly as the model wrote it kept in ``additional_kwargs[RAW_TEXT_KEY]``.

    The one place a prompt-mode reply's reasoning is split off: the chat model calls it on every reply
    (tools bound or not), :func:`parse_reply` on what it gets; a reply already split is returned as
    it is, so the answer is never split twice (an answer that mentions ``</think>`` stays whole)."""
    if RAW_TEXT_KEY in message.additional_kwargs:
        return message
    raw = _text(message.content)
    thought, rest = split_reasoning(raw)
    kwargs = {**message.additional_kwargs, RAW_TEXT_KEY: raw}
    server = kwargs.get(REASONING_KEY) or kwargs.get("reasoning")
    reasoning = "\n\n".join(r for r in (server if isinstance(server, str) else None, thought) if r)
    if reasoning:
        kwargs[REASONING_KEY] = reasoning
    content = rest.strip() if isinstance(message.content, str) or thought is not None else message.content
    return message.model_copy(update={"content": content, "additional_kwargs": kwargs})


def parse_reply(message: AIMessage) -> AIMessage:
    """``message`` with its text parsed: reasoning split off by :func:`take_reasoning` (the raw text
    kept), then calls in ``tool_calls``/``invalid_tool_calls`` and the answer in ``content``. Parsing
    twice changes nothing."""
    split = take_reasoning(message)
    if split is message and CALL_OPEN not in _text(message.content):
        return message  # parsed before (or split by the chat model, and no call in it)
    parsed = _parse_calls(_text(split.content))
    return split.model_copy(update={
        "content": parsed.content,
        "tool_calls": [*split.tool_calls, *parsed.tool_calls],
        "invalid_tool_calls": [*split.invalid_tool_calls, *parsed.invalid_tool_calls],
    })


# ---------------------------------------------------------------------------
# Rendering the conversation for the model
# ---------------------------------------------------------------------------


def reply_text(message: AIMessage) -> str:
    """What the model wrote in an earlier reply, reasoning left out: its raw text when it was parsed
    here, else its content followed by its calls written in the protocol's format."""
    raw = message.additional_kwargs.get(RAW_TEXT_KEY)
    if isinstance(raw, str):
        return split_reasoning(raw)[1].strip()
    parts = [_text(message.content).strip()]
    for call in message.tool_calls:
        parts.append(f"{CALL_OPEN}\n{json.dumps({'name': call['name'], 'arguments': call['args']})}\n{CALL_CLOSE}")
    for bad in message.invalid_tool_calls:
        parts.append(f"{CALL_OPEN}\n{bad.get('args') or ''}\n{CALL_CLOSE}")
    return "\n".join(p for p in parts if p)


def render_tool_results(results: Sequence[ToolMessage]) -> str:
    """Tool results as the text of one user message: a ``<tool_response>`` block per result."""
    blocks = []
    for result in results:
        name = json.dumps(result.name or "unknown")
        blocks.append(f"<tool_response name={name}>\n{_text(result.content)}\n</tool_response>")
    return "\n".join(blocks)


def _fold_system(messages: list[BaseMessage]) -> list[BaseMessage]:
    """System text moved to the front of the first user message (templates without a system role)."""
    system = "\n\n".join(_text(m.content) for m in messages if isinstance(m, SystemMessage))
    rest = [m for m in messages if not isinstance(m, SystemMessage)]
    if not system:
        return rest
    for index, message in enumerate(rest):
        if isinstance(message, HumanMessage):
            rest[index] = HumanMessage(content=f"{system}\n\n{_text(message.content)}")
            return rest
    return [HumanMessage(content=system), *rest]


def render_messages(messages: Sequence[BaseMessage], tools_text: str, *, system_role: bool = True) -> list[BaseMessage]:
    """The conversation as a model without tool support can read it.

    The tool instructions join the first system message (or open one); tool results become user
    messages; earlier replies become their text; consecutive user messages are merged, because some
    chat templates insist that user and assistant alternate. ``system_role=False`` folds the system
    text into the first user message (Gemma-2's template rejects the system role).
    """
    out: list[BaseMessage] = []
    pending: list[ToolMessage] = []

    def add_user(text: str) -> None:
        if out and isinstance(out[-1], HumanMessage):
            out[-1] = HumanMessage(content=f"{_text(out[-1].content)}\n\n{text}")
        else:
            out.append(HumanMessage(content=text))

    def flush() -> None:
        if pending:
            add_user(render_tool_results(pending))
            pending.clear()

    has_system = False
    for message in messages:
        if isinstance(message, ToolMessage):
            pending.append(message)
            continue
        flush()
        if isinstance(message, SystemMessage) and not has_system:
            has_system = True
            text = _text(message.content).strip()
            out.append(SystemMessage(content=f"{text}\n\n{tools_text}" if text else tools_text))
        elif isinstance(message, AIMessage):
            out.append(AIMessage(content=reply_text(message)))
        elif isinstance(message, HumanMessage):
            add_user(_text(message.content))
        else:
            out.append(message)
    flush()
    if not has_system:
        out.insert(0, SystemMessage(content=tools_text))
    return out if system_role else _fold_system(out)


# ---------------------------------------------------------------------------
# The runnable that bind_tools returns in prompt mode
# ---------------------------------------------------------------------------


def as_messages(value: LanguageModelInput) -> list[BaseMessage]:
    """A runnable's input (a prompt value, a string, or message-likes) as a list of messages."""
    if isinstance(value, PromptValue):
        return value.to_messages()
    if isinstance(value, str):
        return [HumanMessage(content=value)]
    return convert_to_messages(value)


class PromptToolRunnable(Runnable[LanguageModelInput, AIMessage]):
    """A chat model with tools described in its prompt: what ``bind_tools`` returns in prompt mode.

    ``invoke``/``ainvoke`` return parsed replies. ``stream``/``astream`` yield the model's chunks as
    they arrive (the raw text, so time to first token stays measurable); pass the merged message to
    :meth:`finish_stream` to parse it (the tool loop does).
    """

    def __init__(self, model: BaseChatModel, tools: Sequence[Any], *, system_role: bool = True) -> None:
        self.model = model
        self.tools_text = tools_prompt(tools)
        self.system_role = system_role

    def render(self, value: LanguageModelInput) -> list[BaseMessage]:
        """The messages actually sent to the model for ``value``."""
        return render_messages(as_messages(value), self.tools_text, system_role=self.system_role)

    def finish_stream(self, message: AIMessage) -> AIMessage:
        """A streamed reply, merged, parsed like an invoked one."""
        return parse_reply(message)

    def invoke(self, input: LanguageModelInput, config: RunnableConfig | None = None, **kwargs: Any) -> AIMessage:
        reply = self.model.invoke(self.render(input), config, **kwargs)
        return parse_reply(_ai(reply))

    async def ainvoke(self, input: LanguageModelInput, config: RunnableConfig | None = None,
                      **kwargs: Any) -> AIMessage:
        reply = await self.model.ainvoke(self.render(input), config, **kwargs)
        return parse_reply(_ai(reply))

    def stream(self, input: LanguageModelInput, config: RunnableConfig | None = None,
               **kwargs: Any) -> Iterator[AIMessage]:
        yield from self.model.stream(self.render(input), config, **kwargs)

    async def astream(self, input: LanguageModelInput, config: RunnableConfig | None = None,
                      **kwargs: Any) -> AsyncIterator[AIMessage]:
        async for chunk in self.model.astream(self.render(input), config, **kwargs):
            yield chunk


def _ai(message: Any) -> AIMessage:
    if not isinstance(message, AIMessage):
        raise TypeError(f"the model returned {type(message).__name__}, not an AIMessage")
    return message


def with_prompt_tools(model: BaseChatModel, tools: Sequence[Any], *, system_role: bool = True) -> PromptToolRunnable:
    """``model`` with ``tools`` described in the prompt and its calls parsed from the reply's text."""
    return PromptToolRunnable(model, tools, system_role=system_role)
