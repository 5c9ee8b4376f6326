"""ChatOpenAI, hardened for evaluating models that make mistakes.

langchain-openai (non-streaming) builds the AIMessage straight from the response; when a model
sends tool-call arguments that are valid JSON but not an object (``[1, 2]``, ``"x"``), building the
message raises a pydantic ValidationError and the whole run crashes. A model's malformed call is
an outcome to grade, so here such calls are taken out before the message is built and added back
as ``invalid_tool_calls`` with their raw text, exactly as unparseable JSON is.
"""

from __future__ import annotations

import json
from typing import Any

import openai
from langchain_core.outputs import ChatResult
from langchain_openai import ChatOpenAI


def _not_an_object(arguments: Any) -> bool:
    try:
        return not isinstance(json.loads(arguments), dict)
    except (TypeError, ValueError):
        return False  # unparseable JSON: langchain-openai already makes it an invalid call


class ToolSafeChatOpenAI(ChatOpenAI):
    """``ChatOpenAI`` whose non-streaming responses never crash on non-object tool arguments."""

    def _create_chat_result(self, response: dict[Any, Any] | openai.BaseModel,
                            generation_info: dict[Any, Any] | None = None) -> ChatResult:
        data = response if isinstance(response, dict) else response.model_dump(warnings=False)
        set_aside: dict[int, list[dict[str, Any]]] = {}
        for index, choice in enumerate(data.get("choices") or []):
            message = choice.get("message") or {}
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
        return result
