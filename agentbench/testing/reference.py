"""The reference policy over HTTP: responders for ``OpenAITestServer`` that replay gold solutions.

The scenario comes from the ``X-Agentbench-Scenario`` request header, which agentbench's openai
backend sends with every request; the reply is chosen from the conversation exactly as the
in-process ``reference`` model chooses it, so both paths must grade identically.

``reference_responder`` answers with native tool calls; ``prompt_reference_responder`` answers as a
model without tool support would under prompt-based tool calling: calls written as
``<tool_call>`` blocks in the text (optionally after a ``<think>`` block, and optionally with the
seeded faults of ``reference-noisy``).

Run one as a server of its own::

    python -m agentbench.testing.openai_server --responder agentbench.testing.reference:reference_responder \\
        --model-name reference
"""

from __future__ import annotations

import json
import re

from agentbench.models.backends import REPEAT_HEADER, SCENARIO_HEADER
from agentbench.models.faults import noisy_script
from agentbench.models.offline import conversation_position
from agentbench.models.registry import FaultSettings
from agentbench.models.script import ScriptedCall, ScriptTurn, call_id, gold_script, step_at
from agentbench.scenario.loader import ScenarioLibrary, load_library
from agentbench.testing._wire import _message_text
from agentbench.testing.openai_server import ChatRequest, Reply, Responder, ToolCallReply

__all__ = ["prompt_reference_responder", "reference_responder"]

_TOOL_RESPONSE = re.compile(r"<tool_response\b[^>]*>.*?</tool_response>", re.DOTALL)


def reference_responder(library: ScenarioLibrary | None = None) -> Responder:
    """A responder replaying gold solutions of ``library`` (default: built-in + user scenarios)."""
    scenarios = library or load_library()
    scripts: dict[str, list[ScriptTurn]] = {}

    def respond(request: ChatRequest) -> Reply:
        scenario_id = request.headers.get(SCENARIO_HEADER.lower())
        if not scenario_id:
            return Reply(status=400, error_message=f"missing {SCENARIO_HEADER} header")
        if scenario_id not in scripts:
            scripts[scenario_id] = gold_script(scenarios.get(scenario_id))
        turn, step = conversation_position([m.get("role", "") for m in request.messages])
        reply = step_at(scripts[scenario_id], turn, step)
        calls = [ToolCallReply(c.name, c.arguments_text, call_id(turn, step, k)) for k, c in enumerate(reply.calls)]
        return Reply(content="" if calls else reply.answer, tool_calls=calls)

    return respond


def _prompt_role(message: dict[str, object]) -> str:
    """A rendered message's role in the original conversation: a user message holding only tool
    results stands for tool messages, not for a new user turn."""
    role = str(message.get("role", ""))
    if role == "user" and not _TOOL_RESPONSE.sub("", _message_text(message)).strip():
        return "tool"
    return role


def _call_block(call: ScriptedCall) -> str:
    arguments = call.raw_args if call.raw_args is not None else json.dumps(call.args)
    return f'<tool_call>\n{{"name": {json.dumps(call.name)}, "arguments": {arguments}}}\n</tool_call>'


def prompt_reference_responder(library: ScenarioLibrary | None = None, *, faults: FaultSettings | None = None,
                               think: bool = False) -> Responder:
    """A responder replaying gold solutions through prompt-based tool calling.

    Calls are written as ``<tool_call>`` blocks in the reply's text (no ``tool_calls`` field), tool
    results are read back from user messages, and a request that carries ``tools`` gets HTTP 400
    (prompt mode must not send them). ``faults`` injects ``reference-noisy``'s seeded faults (malformed
    JSON comes out as a broken block); ``think`` opens every reply with a ``<think>`` block.
    """
    scenarios = library or load_library()

    def respond(request: ChatRequest) -> Reply:
        if request.tools is not None:
            return Reply(status=400, error_message="prompt-based tool calling must not send `tools`")
        scenario_id = request.headers.get(SCENARIO_HEADER.lower())
        if not scenario_id:
            return Reply(status=400, error_message=f"missing {SCENARIO_HEADER} header")
        scenario = scenarios.get(scenario_id)
        if faults is None:
            script = gold_script(scenario)
        else:
            repeat = int(request.headers.get(REPEAT_HEADER.lower(), "0"))
            script, _ = noisy_script(scenario, faults.seed, faults.rate, repeat)
        turn, step = conversation_position([_prompt_role(m) for m in request.messages])
        reply = step_at(script, turn, step)
        text = "\n".join(_call_block(c) for c in reply.calls) if reply.calls else reply.answer
        if think:
            text = f"<think>Turn {turn + 1}, step {step + 1}: deciding what to do.</think>\n\n{text}"
        return Reply(content=text)

    return respond
