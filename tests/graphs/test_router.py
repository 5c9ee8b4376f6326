"""Router / specialists: rules and model routing, per turn, with the decision and its cost recorded."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool

from agentbench.graphs import BINDING_KEY, LoopBinding, recursion_limit, tool_loop
from agentbench.graphs.router import Route, llm_router, parse_route, router_graph, rules_router
from agentbench.testing import ScriptedChatModel


@tool
def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


def call(name: str, args: dict, ident: str) -> dict:
    return {"name": name, "args": args, "id": ident, "type": "tool_call"}


def specialists(coder: ScriptedChatModel, writer: ScriptedChatModel) -> dict:
    return {"coder": tool_loop(coder, [add], system="You write code."),
            "writer": tool_loop(writer, [], system="You write prose.")}


async def turn(graph, history: list[BaseMessage], text: str) -> dict:
    return await graph.ainvoke({"messages": [*history, HumanMessage(text)]}, {"recursion_limit": recursion_limit(5)})


CODE_RULES = [(r"(?i)\b(python|code|bug)\b", "coder"), (r"\bpoem\b", "writer")]


async def test_rules_route_each_turn_to_its_specialist() -> None:
    coder = ScriptedChatModel(replies=[AIMessage("", tool_calls=[call("add", {"a": 1, "b": 2}, "c1")]),
                                       AIMessage("Fixed: 3")])
    writer = ScriptedChatModel(replies=[AIMessage("Roses are red.")])
    graph = router_graph(rules_router(CODE_RULES, default="writer"), specialists(coder, writer))

    first = await turn(graph, [], "Fix this Python bug")
    assert first["events"] == [{"kind": "route", "route": "coder", "router": "rules",
                                "reason": "matched '(?i)\\\\b(python|code|bug)\\\\b'"}]
    assert [type(m).__name__ for m in first["messages"]] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert first["messages"][2].content == "3" and first["outcome"] == "completed"
    assert writer.received == []  # only the chosen specialist ran

    second = await turn(graph, first["messages"], "Now a poem, please")
    assert [e["route"] for e in second["events"]] == ["writer"]  # events are per turn
    assert "poem" in second["events"][0]["reason"]
    assert [m.content for m in second["messages"][4:]] == ["Now a poem, please", "Roses are red."]
    assert second["outcome"] == "completed"
    # The writer saw its own system prompt and the whole conversation, the coder's turn included.
    seen = writer.received[0]
    assert isinstance(seen[0], SystemMessage) and seen[0].content == "You write prose."
    assert [m.content for m in seen[1:3]] == ["Fix this Python bug", ""]
    assert len(coder.received) == 2  # the coder was not called again


async def test_rules_are_case_sensitive_unless_the_pattern_says_otherwise_and_default_applies() -> None:
    route = rules_router([(r"\bPoem\b", "writer")], default="coder")
    assert route([HumanMessage("a poem")]) == Route("coder", "no rule matched: default", router="rules")
    assert route([HumanMessage("a Poem")]).name == "writer"
    # Only the last user message counts, not earlier turns or replies.
    assert route([HumanMessage("a Poem"), AIMessage("Poem"), HumanMessage("thanks")]).name == "coder"


async def test_unknown_route_from_a_custom_router_goes_to_the_first_specialist() -> None:
    async def confused(messages: list[BaseMessage]) -> Route:
        return Route("painter", "likes art")

    coder = ScriptedChatModel(replies=[AIMessage("code")])
    graph = router_graph(confused, specialists(coder, ScriptedChatModel()))
    state = await turn(graph, [], "draw")
    assert state["events"] == [{"kind": "route", "route": "coder", "router": "custom",
                                "reason": "unknown route 'painter' (likes art): first specialist"}]
    assert state["messages"][-1].content == "code"


async def test_specialist_step_limit_is_the_turn_outcome() -> None:
    looping = ScriptedChatModel(replies=[AIMessage("", tool_calls=[call("add", {"a": i, "b": 1}, f"c{i}")])
                                         for i in range(3)])
    graph = router_graph(rules_router([], default="loop"), {"loop": tool_loop(looping, [add], max_steps=2)})
    state = await turn(graph, [], "go")
    assert state["outcome"] == "step_limit"
    assert isinstance(state["messages"][-1], ToolMessage)


ROUTES = {"coder": "writes and fixes code", "writer": "writes prose and poems", "code_review": "reviews code"}


@pytest.mark.parametrize(("answer", "route", "reason"), [
    ("coder", "coder", "the model answered 'coder'"),
    ("  Writer.\n", "writer", "the model answered 'Writer.'"),
    ("I would send this to the coder assistant, not the writer.", "coder", "the model answered"),
    ('{"route": "writer"}', "writer", "the model answered"),
    ('```json\n{"route": "code_review"}\n```', "code_review", "the model answered"),
    ("<think>maybe writer? no</think>coder", "coder", "the model answered"),
    ("banana", "writer", "the model named no known route ('banana'): default"),
    ("", "writer", "the model named no known route (''): default"),
])
async def test_llm_router_parses_the_answer(answer: str, route: str, reason: str) -> None:
    usage = {"input_tokens": 50, "output_tokens": 3, "total_tokens": 53}
    router_model = ScriptedChatModel(replies=[AIMessage(answer, usage_metadata=usage)])
    chosen = ScriptedChatModel(replies=[AIMessage(f"{route} here")])
    graph = router_graph(llm_router(router_model, ROUTES, default="writer"),
                         {name: tool_loop(chosen if name == route else ScriptedChatModel()) for name in ROUTES})
    state = await turn(graph, [], "Please fix my sort function")
    [event] = state["events"]
    assert event["route"] == route and event["router"] == "llm" and event["reason"].startswith(reason)
    assert event["usage"]["model_calls"] == 1
    assert (event["usage"]["input_tokens"], event["usage"]["output_tokens"]) == (50, 3)
    assert event["usage"]["latency_s"] >= 0
    assert [m.content for m in state["messages"]] == ["Please fix my sort function", f"{route} here"]
    # One call: the routes with their descriptions, then the user's message.
    [prompt] = router_model.received
    assert "- coder: writes and fixes code" in prompt[0].content and "- writer: writes prose" in prompt[0].content
    assert prompt[1].content == "Please fix my sort function"


@pytest.mark.parametrize(("answer", "expected"), [
    ("code_review", "code_review"),
    ("the code_review one", "code_review"),  # at one position the longer name wins
    ("writer or coder", "writer"),  # the earliest mention wins
    ("CODER", "coder"),
    ("decoder", None),  # names are matched as words
    ('"coder"', "coder"),
    ('{"choice": "Writer"}', "writer"),
])
def test_parse_route(answer: str, expected: str | None) -> None:
    assert parse_route(answer, list(ROUTES)) == expected


async def test_a_loop_binding_given_to_the_router_does_not_replace_the_specialists_models() -> None:
    intruder = ScriptedChatModel(replies=[AIMessage("intruder")])
    coder = ScriptedChatModel(replies=[AIMessage("coder")])
    graph = router_graph(rules_router([], default="coder"), specialists(coder, ScriptedChatModel()))
    config: dict = {"recursion_limit": 20, "configurable": {BINDING_KEY: LoopBinding.of(intruder, [])}}
    state = await graph.ainvoke({"messages": [HumanMessage("hi")]}, config)
    assert state["messages"][-1].content == "coder" and intruder.received == []
