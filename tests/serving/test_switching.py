"""Switching the GPU between two (fake) vLLM servers: cold restart and sleep/wake."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from serving_helpers import alive, fake_options, toy_spec

from agentbench.serving.server import group_pids
from agentbench.serving.switching import ModelSwitcher, active_switcher, serving_session


def _sleeping(base_url: str) -> bool:
    return bool(httpx.get(base_url.removesuffix("/v1") + "/is_sleeping").json()["is_sleeping"])


@pytest.mark.slow  # two server starts
async def test_restart_stops_the_idle_server_before_starting_the_next(tmp_path: Path) -> None:
    a, b = toy_spec("a"), toy_spec("b")
    record = tmp_path / "serving.json"
    switcher = ModelSwitcher("restart", fake_options(), log_dir=tmp_path, record_path=record)
    first = await switcher.acquire(a)
    pids_a = group_pids(first.pid or 0)
    await switcher.release(a)
    assert first.running  # a released server stays up until the GPU is needed
    second = await switcher.acquire(b)
    assert not first.running and not alive(pids_a) and second.running
    await switcher.release(b)
    await switcher.close()
    assert not second.running
    switches = json.loads(record.read_text())["switches"]
    assert [(s["to_model"], s["how"]) for s in switches] == [("a", "cold start"), ("b", "cold start")]
    assert switches[1]["from_models"] == ["a"] and switches[1]["stop_s"] > 0 and switches[1]["start_s"] > 0
    assert switches[1]["total_s"] >= switches[1]["stop_s"] + switches[1]["start_s"] - 0.01
    servers = json.loads(record.read_text())["servers"]
    assert {s["key"] for s in servers} == {"a", "b"} and all(s["stop"]["group_exited"] for s in servers)


@pytest.mark.slow  # two server starts
async def test_sleep_mode_keeps_both_resident_and_wakes_on_switch(tmp_path: Path) -> None:
    a, b = toy_spec("a"), toy_spec("b")
    switcher = ModelSwitcher("sleep", fake_options(), log_dir=tmp_path, expected_models=2)
    try:
        server_a = await switcher.switch_to(a)
        server_b = await switcher.switch_to(b)  # a goes to sleep, b starts cold
        assert server_a.running and _sleeping(server_a.base_url) and not _sleeping(server_b.base_url)
        again = await switcher.switch_to(a)  # b sleeps, a wakes
        assert again is server_a and not _sleeping(server_a.base_url) and _sleeping(server_b.base_url)
        args = server_a.describe()["settings"]["args"]
        assert "--enable-sleep-mode" in args and args[args.index("--gpu-memory-utilization") + 1] == "0.45"
        hows = [(r.to_model, r.how) for r in switcher.records]
        assert hows == [("a", "cold start"), ("b", "cold start"), ("a", "wake")]
        wake = switcher.records[-1]
        assert wake.wake_s is not None and wake.sleep_s is not None and wake.start_s is None
        assert wake.total_s >= wake.wake_s + wake.sleep_s - 0.01
    finally:
        await switcher.close()
    assert not server_a.running and not server_b.running


@pytest.mark.slow  # two server starts
async def test_members_acquired_together_are_both_served(tmp_path: Path) -> None:
    a, b = toy_spec("a"), toy_spec("b")
    switcher = ModelSwitcher("restart", fake_options(), log_dir=tmp_path)
    try:
        first, second = await switcher.acquire(a), await switcher.acquire(b)  # an architecture's two members
        assert first.running and second.running
    finally:
        await switcher.close()


def test_serving_session_sets_the_active_switcher_and_stops_servers(tmp_path: Path) -> None:
    import asyncio

    switcher = ModelSwitcher("restart", fake_options(), log_dir=tmp_path)
    with serving_session(switcher):
        assert active_switcher.get() is switcher
        server = asyncio.run(switcher.acquire(toy_spec("a")))
        assert server.running
    assert active_switcher.get() is None and not server.running
