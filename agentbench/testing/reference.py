"""The reference policy over HTTP: a responder for ``OpenAITestServer`` that replays gold solutions.

The scenario comes from the ``X-Agentbench-Scenario`` request header, which agentbench's openai
backend sends with every request; the reply is chosen from the conversation exactly as the
in-process ``reference`` model chooses it, so both paths must grade identically.

Run it as a server of its own::

    python -m agentbench.testing.openai_server --responder agentbench.testing.reference:reference_responder \\
        --model-name reference
"""

from __future__ import annotations

from agentbench.models.backends import SCENARIO_HEADER
from agentbench.models.offline import conversation_position
from agentbench.models.script import ScriptTurn, call_id, gold_script, step_at
from agentbench.scenario.loader import ScenarioLibrary, load_library
from agentbench.testing.openai_server import ChatRequest, Reply, Responder, ToolCallReply


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
