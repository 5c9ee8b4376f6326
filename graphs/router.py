"""Router / specialists: each user turn goes to one specialist agent, chosen by rules or by a model.

```python
coder = tool_loop(code_model, code_tools, system="You write code.")
writer = tool_loop(chat_model, [], system="You write prose.")
graph = router_graph(rules_router([(r"(?i)\\b(code|python|bug)\\b", "coder")], default="writer"),
                     {"coder": coder, "writer": writer})
state = await graph.ainvoke({"messages": [HumanMessage("Fix this Python bug")]})
state["events"]  # [{"kind": "route", "route": "coder", "reason": "matched ...", "router": "rules"}]
```

The graph is ``route -> <specialist> -> END``. The ``route`` node decides (a ``RouterFn``) and
records a ``route`` event; the chosen specialist (any compiled graph with the tool loop's state)
then runs on the whole conversation, and its new messages and outcome become the turn's. The
decision is made again on every invocation, so consecutive turns may go to different specialists.
"""

from __future__ import annotations

import inspect
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer, Command

from .state import ArchState, added_messages, inner_config, last_user_text, text_of, usage_of


@dataclass(frozen=True)
class Route:
    """A routing decision: the specialist's name and why.

    ``usage`` is the cost of the decision when a model made it (see ``state.usage_of``);
    ``router`` says what decided (``rules``, ``llm`` or ``custom``) for the route event.
    """

    name: str
    reason: str
    usage: dict[str, Any] | None = None
    router: str = "custom"


#: Chooses a route from the conversation so far (the last message is the user's new turn).
RouterFn = Callable[[Sequence[BaseMessage]], "Route | Awaitable[Route]"]


def rules_router(rules: Sequence[tuple[str, str]], default: str) -> RouterFn:
    """Route by regular expressions over the last user message; the first match wins.

    ``rules`` are ``(pattern, route)`` pairs tried in order with ``re.search`` (case-sensitive
    unless the pattern says ``(?i)``); no match routes to ``default``.
    """
    compiled = [(re.compile(pattern), pattern, name) for pattern, name in rules]

    def route(messages: Sequence[BaseMessage]) -> Route:
        text = last_user_text(messages)
        for regex, pattern, name in compiled:
            if regex.search(text):
                return Route(name, f"matched {pattern!r}", router="rules")
        return Route(default, "no rule matched: default", router="rules")

    return route


ROUTER_PROMPT = """You are a router. Choose the one assistant best suited to handle the user's message.

Assistants:
{routes}

Answer with exactly one assistant name from the list above and nothing else."""

_THINKING = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL)
_FENCE = re.compile(r"^```[\w-]*\s*|\s*```$")
_JSON_KEYS = ("route", "name", "assistant", "choice", "answer", "destination")


def _json_choice(text: str) -> str | None:
    """The route a JSON answer names (``{"route": "coder"}``, ``"coder"``), or None."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in _JSON_KEYS:
            if isinstance(value.get(key), str):
                return str(value[key])
    return None


def parse_route(answer: str, names: Sequence[str]) -> str | None:
    """The route name a model's answer gives, or None when it names none of ``names``.

    Tolerates what small models do: reasoning in ``<think>`` tags, code fences, JSON, quotes,
    case, and a name inside a sentence (the earliest-mentioned known name wins; at one position
    the longest name, so ``code_review`` beats ``code``).
    """
    text = _FENCE.sub("", _THINKING.sub("", answer).strip()).strip()
    by_key = {n.casefold(): n for n in names}
    chosen = _json_choice(text)
    if chosen is not None and chosen.strip().casefold() in by_key:
        return by_key[chosen.strip().casefold()]
    if text.strip(" \t\n\"'`.").casefold() in by_key:
        return by_key[text.strip(" \t\n\"'`.").casefold()]
    hits: list[tuple[int, int, str]] = []
    for name in names:
        # Word-like boundaries: "coder" must not be found inside "decoder" or "coder_v2".
        found = re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text, re.IGNORECASE)
        if found:
            hits.append((found.start(), -len(name), name))
    return min(hits)[2] if hits else None


def llm_router(model: BaseChatModel, routes: Mapping[str, str], default: str) -> RouterFn:
    """Route by asking ``model`` (one call) which of ``routes`` (name -> description) fits best.

    An answer naming no known route goes to ``default``, with the answer quoted in the reason.
    The call's token usage and latency are returned in ``Route.usage``.
    """
    if not routes:
        raise ValueError("llm_router needs at least one route")
    listing = "\n".join(f"- {name}: {description}" for name, description in routes.items())
    system = SystemMessage(ROUTER_PROMPT.format(routes=listing))

    async def route(messages: Sequence[BaseMessage]) -> Route:
        start = time.perf_counter()
        reply = await model.ainvoke([system, HumanMessage(last_user_text(messages))])
        usage = usage_of([reply], latency_s=time.perf_counter() - start)
        said = text_of(reply).strip()
        name = parse_route(said, list(routes))
        if name is None:
            return Route(default, f"the model named no known route ({said[:200]!r}): default", usage, "llm")
        return Route(name, f"the model answered {said[:200]!r}", usage, "llm")

    return route


async def _decide(router: RouterFn, messages: Sequence[BaseMessage]) -> Route:
    decision = router(messages)
    return await decision if inspect.isawaitable(decision) else decision


def router_graph(router: RouterFn, specialists: Mapping[str, CompiledStateGraph[Any, Any, Any, Any]], *,
                 checkpointer: Checkpointer = None, name: str = "router") -> CompiledStateGraph[Any, Any, Any, Any]:
    """Build ``route -> specialist`` over ``ArchState``: each invocation (user turn) is routed anew.

    ``specialists`` maps route names to compiled graphs with the tool loop's state (``tool_loop``
    results). A route name the specialists lack goes to the first specialist, and the event's
    reason says so. The specialist runs inside its node with the architecture's config (minus any
    ``LoopBinding``, which would replace every specialist's model).
    """
    if not specialists:
        raise ValueError("router_graph needs at least one specialist")
    if "route" in specialists:
        raise ValueError("a specialist cannot be named 'route' (the routing node's name)")
    names = list(specialists)

    async def route(state: ArchState) -> Command[str]:
        decision = await _decide(router, state["messages"])
        target, reason = decision.name, decision.reason
        if target not in specialists:
            target, reason = names[0], f"unknown route {decision.name!r} ({reason}): first specialist"
        event: dict[str, Any] = {"kind": "route", "route": target, "reason": reason, "router": decision.router}
        if decision.usage is not None:  # rules cost nothing; the runner reads usage only when present
            event["usage"] = decision.usage
        return Command(goto=target, update={"events": [event]})

    graph = StateGraph(ArchState)
    graph.add_node("route", route, destinations=tuple(names))
    for specialist_name, specialist in specialists.items():
        graph.add_node(specialist_name, _run_specialist(specialist))
        graph.add_edge(specialist_name, END)
    graph.add_edge(START, "route")
    return graph.compile(checkpointer=checkpointer, name=name)


def _run_specialist(specialist: CompiledStateGraph[Any, Any, Any, Any]) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def run(state: ArchState, config: RunnableConfig) -> dict[str, Any]:
        result = await specialist.ainvoke({"messages": state["messages"]}, inner_config(config))
        return {"messages": added_messages(state["messages"], result["messages"]),
                "outcome": result.get("outcome", "completed")}

    return run


__all__ = ["ROUTER_PROMPT", "Route", "RouterFn", "llm_router", "parse_route", "router_graph", "rules_router"]
