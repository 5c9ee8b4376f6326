"""ChatOpenAI, hardened for evaluating models that make mistakes, and for what vLLM adds.

- langchain-openai (non-streaming) builds the AIMessage straight from the response; when a model
  sends tool-call arguments that are valid JSON but not an object (``[1, 2]``, ``"x"``), building the
  message raises a pydantic ValidationError and the whole run crashes. A model's malformed call is
  an outcome to grade, so here such calls are taken out before the message is built and added back
  as ``invalid_tool_calls`` with their raw text, exactly as unparseable JSON is.
- vLLM sends a reasoning model's thinking in ``message.reasoning`` (older versions:
  ``reasoning_content``) and in stream deltas; ChatOpenAI drops it. Here it is kept, in
  ``additional_kwargs["reasoning_content"]`` of messages and chunks alike.
- ``tool_protocol="prompt"``: ``bind_tools`` describes the tools in the prompt instead of sending
  them, and parses calls from the reply's text (:mod:`agentbench.models.prompt_tools`). Every reply's
  ``<think>`` block is split off by ``prompt_tools.take_reasoning`` alone, which keeps the raw text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Literal

import openai
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_openai import ChatOpenAI

from agentbench.models.prompt_tools import REASONING_KEY, take_reasoning, with_prompt_tools

__all__ = ["ToolSafeChatOpenAI", "server_reasoning"]


def _not_an_object(arguments: Any) -> bool:
    try:
        return not isinstance(json.loads(arguments), dict)
    except (TypeError, ValueError):
        return False  # unparseable JSON: langchain-openai already makes it an invalid call


def server_reasoning(message: dict[str, Any] | None) -> str | None:
    """The reasoning text of a response message or stream delta: vLLM's ``reasoning`` field, or the
    ``reasoning_content`` field older vLLM versions (and some other servers) use."""
    if not message:
        return None
    value = message.get("reasoning") or message.get("reasoning_content")
    return value if isinstance(value, str) and value else None


class ToolSafeChatOpenAI(ChatOpenAI):
    """``ChatOpenAI`` that never crashes on non-object tool arguments, keeps the server's reasoning
    text, and can call tools through the prompt (``tool_protocol="prompt"``)."""

    tool_protocol: Literal["native", "prompt"] = "native"
    """native: tools in the request, calls from the server's parser; prompt: see prompt_tools."""
    system_role: bool = True
    """False folds the system message into the first user message (prompt mode, templates without
    a system role such as Gemma-2's)."""

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        response_format: Any = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Native mode: ChatOpenAI's own. Prompt mode: the tools go in the prompt (``tool_choice``
        and the other request options do not apply there: nothing about tools is sent)."""
        if self.tool_protocol == "prompt":
            return with_prompt_tools(self, tools, system_role=self.system_role)
        return super().bind_tools(tools, tool_choice=tool_choice, strict=strict,
                                  parallel_tool_calls=parallel_tool_calls, response_format=response_format,
                                  **kwargs)

    def finish_stream(self, message: AIMessage) -> AIMessage:
        """A streamed reply, merged (the tool loop calls this): in prompt mode its ``<think>`` block is
        moved to the reasoning, as for a reply that was not streamed. With tools bound, the runnable
        ``bind_tools`` returned does this and parses the calls too."""
        if self.tool_protocol != "prompt" or not isinstance(message.content, str):
            return message
        return take_reasoning(message)

    def _create_chat_result(self, response: dict[Any, Any] | openai.BaseModel,
                            generation_info: dict[Any, Any] | None = None) -> ChatResult:
        data = response if isinstance(response, dict) else response.model_dump(warnings=False)
        set_aside: dict[int, list[dict[str, Any]]] = {}
        reasoning: dict[int, str] = {}
        for index, choice in enumerate(data.get("choices") or []):
            message = choice.get("message") or {}
            if text := server_reasoning(message):
                reasoning[index] = text
            calls = message.get("tool_calls") or []
            bad = [c for c in calls if _not_an_object((c.get("function") or {}).get("arguments"))]
            if bad:
                set_aside[index] = bad
                message["tool_calls"] = [c for c in calls if c not in bad] or None
        result = super()._create_chat_result(data, generation_info)
        for index, bad in set_aside.items():
            ai = result.generations[index].message
            ai.invalid_tool_calls = [*getattr(ai, "invalid_tool_calls", []), *(  # type: ignore[attr-defined]
                {"type": "invalid_tool_call", "name": c["function"].get("name"), "id": c.get("id"),
                 "args": c["function"].get("arguments"), "error": "arguments are not a JSON object"}
                for c in bad)]
        for index, generation in enumerate(result.generations):
            message = generation.message
            if text := reasoning.get(index):
                message.additional_kwargs[REASONING_KEY] = text
            if self.tool_protocol == "prompt" and isinstance(message, AIMessage) and isinstance(message.content, str):
                # A prompt-mode model without a server-side reasoning parser thinks in its text; the
                # raw text is kept, so the prompt-tools parser (tools bound) reads it, not a re-split.
                split = take_reasoning(message)
                message.content, message.additional_kwargs = split.content, split.additional_kwargs
        return result

    def _convert_chunk_to_generation_chunk(self, chunk: dict[Any, Any], default_chunk_class: type,
                                           base_generation_info: dict[Any, Any] | None
                                           ) -> ChatGenerationChunk | None:
        generation = super()._convert_chunk_to_generation_chunk(chunk, default_chunk_class, base_generation_info)
        choices = chunk.get("choices") or []
        if generation is not None and choices:
            text = server_reasoning(choices[0].get("delta"))
            if text:
                # Strings in additional_kwargs concatenate when chunks merge: the pieces add up.
                generation.message.additional_kwargs[REASONING_KEY] = text
        return generation
