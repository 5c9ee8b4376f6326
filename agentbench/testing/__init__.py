"""Public test helpers: a scripted chat model and a local OpenAI-compatible test server.

``ScriptedChatModel`` needs nothing extra. The server (``OpenAITestServer`` and friends) needs
the ``testing`` extra (aiohttp) and is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from agentbench.testing.scripted import ScriptedChatModel

_SERVER_NAMES = {
    "ChatRequest", "OpenAITestServer", "Reply", "Responder", "ToolCallReply",
    "echo_responder", "scripted_responder",
}

__all__ = ["ScriptedChatModel", "prompt_reference_responder", "reference_responder", *sorted(_SERVER_NAMES)]


def __getattr__(name: str) -> Any:
    if name in _SERVER_NAMES:
        return getattr(importlib.import_module("agentbench.testing.openai_server"), name)
    if name in ("reference_responder", "prompt_reference_responder"):
        return getattr(importlib.import_module("agentbench.testing.reference"), name)
    raise AttributeError(f"module 'agentbench.testing' has no attribute {name!r}")
