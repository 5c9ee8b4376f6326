"""A scripted chat model for tests: replays given AI messages in order, tool calls included.

```python
model = ScriptedChatModel(replies=[
    AIMessage("", tool_calls=[{"name": "calculator", "args": {"expression": "2+2"}, "id": "c1"}]),
    AIMessage("", invalid_tool_calls=[{"name": "calculator", "args": '{"expr', "id": "c2",
                                        "error": "bad JSON"}]),
    AIMessage("The answer is 4."),
])
graph = tool_loop(model, tools)
```
Every call's input messages are kept in ``model.received`` so tests can assert what the model saw.
After the last reply it raises ``IndexError`` (a test asked for more than it scripted).
"""

from __future__ import annotations

from langchain_core.messages import AIMessage, BaseMessage
from pydantic import Field, PrivateAttr

from agentbench.models.offline import OfflineChatModel


class ScriptedChatModel(OfflineChatModel):
    """Replays ``replies`` one per call, recording what each call received."""

    replies: list[AIMessage] = Field(default_factory=list)
    _next: int = PrivateAttr(default=0)
    _received: list[list[BaseMessage]] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "agentbench-scripted"

    @property
    def received(self) -> list[list[BaseMessage]]:
        """The messages of every call so far, in order."""
        return self._received

    def reply(self, messages: list[BaseMessage]) -> AIMessage:
        self._received.append(list(messages))
        if self._next >= len(self.replies):
            raise IndexError(f"ScriptedChatModel has only {len(self.replies)} replies")
        message = self.replies[self._next]
        self._next += 1
        return message.model_copy()

    def __repr__(self) -> str:
        return f"ScriptedChatModel(replies={len(self.replies)}, used={self._next})"
