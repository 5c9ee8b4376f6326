"""Build the production agent from the best configuration of a stored run, and ask it something.

    python examples/build_agent_from_run.py [--results-dir DIR] [--run-id ID] [--question TEXT]

It reads the run (default: the latest), ranks the configurations that can serve an application
(the reference models replay scenarios and cannot) by pass rate, then mean score, then fewest
model calls per run, and builds the winner with ``build_agent``: the same graph, model settings
and tools the testbed evaluated, with in-memory conversation memory.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from agentbench import ModelSpec, ResultStore, build_agent, load_library, summarize
from agentbench.graphs import recursion_limit
from agentbench.store import results_dir


def best_configuration(store: ResultStore, run_id: str) -> tuple[ModelSpec, list[str]]:
    """The best buildable model entry of the run and the tools its scenarios used."""
    plan = store.plan(run_id)
    stats = summarize(store.results(run_id), plan.models).overall
    specs = {key: ModelSpec.model_validate(plan.model_specs[key]) for key in stats}
    buildable = [k for k, spec in specs.items() if spec.backend != "reference"
                 and all(m.backend != "reference" for m in spec.members.values())]
    if not buildable:
        raise SystemExit(f"run {run_id} evaluated no model that can serve an app (only reference models)")
    best = max(buildable, key=lambda k: (stats[k].pass_rate, stats[k].mean_score, -(stats[k].mean("steps") or 0)))
    library = load_library([Path(p) for p in plan.scenarios_dirs])
    tools = sorted({t for sid in plan.scenario_ids for t in library.get(sid).tools})
    print(f"best of run {run_id}: {best} (pass rate {stats[best].pass_rate:.0%}, "
          f"mean score {stats[best].mean_score:.2f}); tools: {', '.join(tools) or 'none'}")
    return specs[best], tools


async def ask(agent: object, question: str) -> str:
    config = {"configurable": {"thread_id": "example"}, "recursion_limit": recursion_limit(10)}
    state = await agent.ainvoke({"messages": [("user", question)]}, config)  # type: ignore[attr-defined]
    return str(state["messages"][-1].content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", type=Path, default=None)
    parser.add_argument("--run-id", default=None)
    parser.add_argument("--question", default="What is 15% of 67.50?")
    args = parser.parse_args()
    store = ResultStore(results_dir(args.results_dir))
    spec, tools = best_configuration(store, args.run_id or store.latest_run_id())
    with tempfile.TemporaryDirectory(prefix="agent-workspace-") as workspace:
        agent = build_agent(spec, tools, workspace=workspace, checkpointer="memory")
        print("answer:", asyncio.run(ask(agent, args.question)))


if __name__ == "__main__":
    main()
