"""The tool loop (ReAct): model -> tools -> model, as a hand-built LangGraph ``StateGraph``.

Differences from ``langgraph.prebuilt`` that matter for evaluation and for production agents:

- Calls whose arguments did not parse (``AIMessage.invalid_tool_calls``) are routed to the tools
  node like any call and answered with an error the model can read; ``tools_condition`` would end
  the graph silently. The message is rewritten so the broken arguments are never sent back to the
  server (vLLM answers HTTP 400 to every later turn otherwise); the original call is kept in the
  message's ``response_metadata`` for the transcript.
- A ``ToolError`` (or LangChain ``ToolException``) raised inside a tool, invalid arguments, and
  unknown tool names all return to the model as error results; any other exception is a bug and
  propagates.
- ``max_steps`` bounds the model calls in one user turn; reaching it ends the turn with
  ``outcome == "step_limit"`` (pending calls are answered "not executed", so the history stays
  valid for the next turn) instead of raising ``GraphRecursionError``.
- Each model call's wall time (and time to first output, when streaming), and each tool call's
  latency and status, are recorded in the messages' ``response_metadata["agentbench"]``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import add_ai_message_chunks
from langchain_core.messages.utils import message_chunk_to_message
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool, ToolException
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer
from pydantic import ValidationError
from typing_extensions import TypedDict

from agentbench.errors import ToolError

#: Key under ``response_metadata`` where the loop records its measurements.
META = "agentbench"
Outcome = Literal["running", "completed", "step_limit"]


class ToolLoopState(TypedDict, total=False):
    """Graph state: the conversation and how the current turn ended."""

    messages: Annotated[list[AnyMessage], add_messages]
    outcome: Outcome


def steps_in_turn(messages: Sequence[BaseMessage]) -> int:
    """Model calls made since the last user message."""
    count = 0
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            break
        count += isinstance(message, AIMessage)
    return count


def recursion_limit(max_steps: int) -> int:
    """A LangGraph recursion limit that never cuts a turn shorter than ``max_steps``."""
    return 2 * max_steps + 8


def _sanitize_calls(message: AIMessage) -> AIMessage:
    """Move unparseable calls into ordinary calls with empty arguments (see module docstring)."""
    calls: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    for call in message.tool_calls:
        call_id = call.get("id") or f"call_{uuid.uuid4().hex[:12]}"
        if isinstance(call.get("args"), dict):
            calls.append({**call, "id": call_id})
        else:  # JSON that parsed to a list or a scalar is as unusable as broken JSON
            invalid.append({"name": call["name"], "args": json.dumps(call.get("args")),
                            "id": call_id, "error": "arguments are not a JSON object"})
    for unparsed in message.invalid_tool_calls:
        invalid.append({**dict(unparsed), "id": unparsed.get("id") or f"call_{uuid.uuid4().hex[:12]}"})
    if not invalid and len(calls) == len(message.tool_calls) and all(
        c["id"] == o.get("id") for c, o in zip(calls, message.tool_calls)
    ):
        return message
    for bad in invalid:
        calls.append({"name": bad.get("name") or "invalid_tool_call", "args": {},
                      "id": bad["id"], "type": "tool_call"})
    meta = {**message.response_metadata, "invalid_tool_calls": invalid}
    return message.model_copy(update={"tool_calls": calls, "invalid_tool_calls": [],
                                      "response_metadata": meta})


def _strict_calls(merged: Any, message: BaseMessage) -> BaseMessage:
    """Re-parse streamed tool-call arguments strictly.

    When merging streamed chunks, LangChain parses arguments with a *partial* JSON parser, so a
    generation cut off mid-arguments (``{"expression": "1+``) becomes a valid call. The raw text
    is still in the chunks: a call whose text is not complete JSON is marked invalid here.
    """
    chunks = getattr(merged, "tool_call_chunks", None)
    if not chunks or not isinstance(message, AIMessage):
        return message
    raw = {c.get("id"): c.get("args") or "" for c in chunks if c.get("id")}
    calls: list[Any] = []
    invalid: list[Any] = list(message.invalid_tool_calls)
    for call in message.tool_calls:
        text = raw.get(call.get("id"))
        if text is None or not text.strip():
            calls.append(call)
            continue
        try:
            json.loads(text)
            calls.append(call)
        except ValueError as exc:
            invalid.append({"name": call["name"], "args": text, "id": call.get("id"),
                            "error": f"incomplete JSON: {exc}", "type": "invalid_tool_call"})
    if len(calls) == len(message.tool_calls):
        return message
    return message.model_copy(update={"tool_calls": calls, "invalid_tool_calls": invalid})


def _chunk_has_output(chunk: BaseMessage) -> bool:
    return bool(chunk.content) or bool(getattr(chunk, "tool_call_chunks", None)) or bool(
        chunk.additional_kwargs.get("reasoning_content") or chunk.additional_kwargs.get("reasoning")
    )


async def _call_model(model: Runnable[Any, Any], messages: list[BaseMessage], config: RunnableConfig,
                      stream: bool) -> AIMessage:
    """Call the model and record its wall time (and, when streaming, time to first output)."""
    start = time.perf_counter()
    first: float | None = None
    if stream:
        chunks: list[Any] = []
        async for chunk in model.astream(messages, config):
            if first is None and _chunk_has_output(chunk):
                first = time.perf_counter()
            chunks.append(chunk)
        if not chunks:
            raise RuntimeError("the model returned an empty stream")
        # One merge at the end: merging chunk by chunk re-parses the tool-call JSON every time.
        merged = chunks[0] if len(chunks) == 1 else add_ai_message_chunks(chunks[0], *chunks[1:])
        message = _strict_calls(merged, message_chunk_to_message(merged))
        # A model that parses its reply's text (prompt-based tools) does so once the stream is whole.
        finish = getattr(model, "finish_stream", None)
        if callable(finish) and isinstance(message, AIMessage):
            message = finish(message)
    else:
        message = await model.ainvoke(messages, config)
    if not isinstance(message, AIMessage):
        raise TypeError(f"the model returned {type(message).__name__}, not an AIMessage")
    end = time.perf_counter()
    timing = {"latency_s": end - start, "ttft_s": None if first is None else first - start}
    meta = {**message.response_metadata, META: {**message.response_metadata.get(META, {}), **timing}}
    return message.model_copy(update={"response_metadata": meta})


def _error_result(call: dict[str, Any], text: str, status: str, latency: float = 0.0) -> ToolMessage:
    return ToolMessage(content=f"Error: {text}", tool_call_id=call["id"], name=call["name"],
                       status="error", response_metadata={META: {"status": status, "latency_s": latency}})


async def _run_call(call: dict[str, Any], tools: dict[str, BaseTool], config: RunnableConfig,
                    invalid: dict[str, dict[str, Any]]) -> ToolMessage:
    """Execute one tool call; every failure the model caused becomes an error result."""
    if call["id"] in invalid:
        bad = invalid[call["id"]]
        return _error_result(call, f"the arguments of this call are not a valid JSON object "
                                   f"({bad.get('error') or 'parse error'}); raw arguments: "
                                   f"{str(bad.get('args'))[:500]!r}. Call the tool again with "
                                   f"a JSON object.", "malformed")
    tool = tools.get(call["name"])
    if tool is None:
        names = ", ".join(sorted(tools)) or "none"
        return _error_result(call, f"unknown tool {call['name']!r}; available tools: {names}",
                             "unknown_tool")
    start = time.perf_counter()
    try:
        # Invoked with the tool call itself, a tool answers with a ToolMessage that keeps its
        # artifact (a delegate tool's worker transcript and cost, for instance).
        output = await tool.ainvoke({**call, "type": "tool_call"}, config)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}"
                             for e in exc.errors())
        return _error_result(call, f"invalid arguments for {call['name']}: {problems}",
                             "invalid_args", time.perf_counter() - start)
    except (ToolError, ToolException) as exc:
        return _error_result(call, str(exc), "tool_error", time.perf_counter() - start)
    latency = time.perf_counter() - start
    artifact = output.artifact if isinstance(output, ToolMessage) else None
    content = output.content if isinstance(output, ToolMessage) else output
    if not isinstance(content, str):
        content = json.dumps(content, default=str)
    return ToolMessage(content=content, tool_call_id=call["id"], name=call["name"], artifact=artifact,
                       response_metadata={META: {"status": "ok", "latency_s": latency}})


#: ``config["configurable"]`` key under which one invocation may supply its own ``LoopBinding``.
BINDING_KEY = "agentbench_loop_binding"
_SCHEMAS: dict[tuple[str, str, type], dict[str, Any]] = {}


def _tool_schema(tool: BaseTool) -> BaseTool | dict[str, Any]:
    """The OpenAI schema of a tool, converted once per (name, description, argument model)."""
    schema = tool.args_schema
    if not isinstance(schema, type):
        return tool
    key = (tool.name, tool.description, schema)
    if key not in _SCHEMAS:
        _SCHEMAS[key] = convert_to_openai_tool(tool)
    return _SCHEMAS[key]


@dataclass(frozen=True)
class LoopBinding:
    """The model (with its tools bound) and the tools one invocation of a tool loop uses."""

    model: Runnable[Any, Any]
    tools: dict[str, BaseTool]
    stream: bool

    @classmethod
    def of(cls, model: BaseChatModel | Runnable[Any, Any], tools: Sequence[BaseTool],
           stream: bool | None = None) -> LoopBinding:
        """Bind ``tools`` to ``model``; ``stream`` defaults to the model's own ``streaming``."""
        bound = model
        if tools and isinstance(model, BaseChatModel):
            bound = model.bind_tools([_tool_schema(t) for t in tools])
        streamed = bool(getattr(model, "streaming", False)) if stream is None else stream
        return cls(bound, {t.name: t for t in tools}, streamed)


def tool_loop(
    model: BaseChatModel | Runnable[Any, Any] | None,
    tools: Sequence[BaseTool] = (),
    *,
    system: str | None = None,
    max_steps: int = 10,
    checkpointer: Checkpointer = None,
    name: str = "tool_loop",
    stream: bool | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Build the compiled tool-loop graph for any LangChain chat model and tools.

    Invoke it with ``{"messages": [HumanMessage(...)]}`` and
    ``config={"recursion_limit": recursion_limit(max_steps)}`` (plus a ``thread_id`` when a
    checkpointer keeps the conversation between turns). The result's ``outcome`` says how the
    turn ended: ``completed`` (a final answer) or ``step_limit``. ``stream`` (default: the
    model's own ``streaming`` setting) streams each call, recording its time to first output.

    One compiled graph can serve many concurrent conversations with different models or tools:
    build it with ``model=None`` and pass ``LoopBinding.of(model, tools)`` per invocation as
    ``config["configurable"][BINDING_KEY]`` (compiling a graph costs milliseconds; binding, not).
    """
    if max_steps < 1:
        raise ValueError("max_steps must be at least 1")
    default = LoopBinding.of(model, tools, stream) if model is not None else None
    prefix: list[BaseMessage] = [SystemMessage(content=system)] if system else []

    def binding(config: RunnableConfig) -> LoopBinding:
        chosen = (config.get("configurable") or {}).get(BINDING_KEY) or default
        if chosen is None:
            raise ValueError(f"this tool loop was built without a model: pass a LoopBinding as "
                             f"config['configurable'][{BINDING_KEY!r}]")
        return chosen

    async def call_model(state: ToolLoopState, config: RunnableConfig) -> dict[str, Any]:
        bound = binding(config)
        response = await _call_model(bound.model, [*prefix, *state["messages"]], config, bound.stream)
        response = _sanitize_calls(response)
        return {"messages": [response], "outcome": "running" if response.tool_calls else "completed"}

    async def call_tools(state: ToolLoopState, config: RunnableConfig) -> dict[str, Any]:
        last = state["messages"][-1]
        assert isinstance(last, AIMessage)
        tools = binding(config).tools
        invalid = {c["id"]: c for c in last.response_metadata.get("invalid_tool_calls", [])}
        return {"messages": [await _run_call(dict(call), tools, config, invalid) for call in last.tool_calls]}

    def stop_at_limit(state: ToolLoopState) -> dict[str, Any]:
        last = state["messages"][-1]
        assert isinstance(last, AIMessage)
        note = f"not executed: the step limit ({max_steps} model calls per turn) was reached"
        return {"messages": [_error_result(dict(c), note, "step_limit") for c in last.tool_calls],
                "outcome": "step_limit"}

    def route(state: ToolLoopState) -> str:
        last = state["messages"][-1]
        if not isinstance(last, AIMessage) or not last.tool_calls:
            return END
        return "step_limit" if steps_in_turn(state["messages"]) >= max_steps else "tools"

    graph = StateGraph(ToolLoopState)
    graph.add_node("model", call_model)
    graph.add_node("tools", call_tools)
    graph.add_node("step_limit", stop_at_limit)
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", route, ["tools", "step_limit", END])
    graph.add_edge("tools", "model")
    graph.add_edge("step_limit", END)
    return graph.compile(checkpointer=checkpointer, name=name)
