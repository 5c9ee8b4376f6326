"""In-process chat models that need no server: the base class, and the ``reference`` models.

``ReferenceChatModel`` replays a scenario's script (gold, or gold with an injected fault) through
the real graph and tools. It chooses its reply from the conversation, so one instance serves any
number of turns and concurrent runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from pydantic import ConfigDict

from agentbench.models.script import ScriptStep, ScriptTurn, call_id, step_at


class OfflineChatModel(BaseChatModel):
    """Base of in-process chat models: tools are accepted (the reply is scripted anyway)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        """Return the model itself: a scripted reply does not depend on the tool schemas."""
        return self

    def reply(self, messages: list[BaseMessage]) -> AIMessage:
        """The next reply for this conversation."""
        raise NotImplementedError

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.reply(messages))])

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None,
                         **kwargs: Any) -> ChatResult:
        # Answer inline: the base class would hop to a thread for nothing.
        return ChatResult(generations=[ChatGeneration(message=self.reply(messages))])


def message_roles(messages: Sequence[BaseMessage]) -> list[str]:
    """Each message's role as :func:`conversation_position` counts them ("user", "ai", or its type)."""
    return ["user" if isinstance(m, HumanMessage) else "ai" if isinstance(m, AIMessage) else m.type
            for m in messages]


def conversation_position(roles: Sequence[str]) -> tuple[int, int]:
    """(user turn index, model replies since the last user message) for a list of roles."""
    turn, step = -1, 0
    for role in roles:
        if role in ("user", "human"):
            turn, step = turn + 1, 0
        elif role in ("assistant", "ai"):
            step += 1
    return max(turn, 0), step


def step_message(step: ScriptStep, turn: int, index: int) -> AIMessage:
    """A scripted step as the AIMessage a real model would return."""
    meta: dict[str, Any] = {"injected_fault": step.fault} if step.fault else {}
    calls, invalid = [], []
    for k, call in enumerate(step.calls):
        ident = call_id(turn, index, k)
        if call.raw_args is not None:
            invalid.append({"name": call.name, "args": call.raw_args, "id": ident,
                            "error": "malformed JSON", "type": "invalid_tool_call"})
        else:
            calls.append({"name": call.name, "args": dict(call.args), "id": ident, "type": "tool_call"})
    return AIMessage(content="" if step.calls else step.answer, tool_calls=calls,
                     invalid_tool_calls=invalid, response_metadata=meta)


class ReferenceChatModel(OfflineChatModel):
    """Replays a script of replies (a scenario's gold solution, possibly with one fault)."""

    script: list[ScriptTurn]
    label: str = "reference"

    @property
    def _llm_type(self) -> str:
        return "agentbench-reference"

    def reply(self, messages: list[BaseMessage]) -> AIMessage:
        turn, step = conversation_position(message_roles(messages))
        return step_message(step_at(self.script, turn, step), turn, step)


__all__ = ["OfflineChatModel", "ReferenceChatModel", "conversation_position", "message_roles", "step_message"]
