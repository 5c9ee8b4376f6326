"""Switching the GPU between two (fake) vLLM servers: cold restart and sleep/wake."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from serving_helpers import alive, fake_options, toy_spec

import agentbench.telemetry.nvml as nvml
from agentbench.serving.server import GIB, ServerError, group_pids
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


def _utilization(server: Any) -> str:
    args = server.describe()["settings"]["args"]
    return str(args[args.index("--gpu-memory-utilization") + 1])


@pytest.mark.slow  # two server starts
async def test_members_acquired_together_share_the_gpu(tmp_path: Path) -> None:
    a, b = toy_spec("a"), toy_spec("b")  # entries asking for 0.9 each, like the shipped ones
    switcher = ModelSwitcher("restart", fake_options(), log_dir=tmp_path, together=2)
    try:
        first, second = await switcher.acquire(a), await switcher.acquire(b)  # an architecture's two members
        assert first.running and second.running
        assert _utilization(first) == _utilization(second) == "0.45"
    finally:
        await switcher.close()


async def test_a_member_that_cannot_fit_is_refused_before_it_is_spawned(tmp_path: Path) -> None:
    """Restart mode without ``together``: both entries ask for 0.9, and vLLM would refuse the second."""
    switcher = ModelSwitcher("restart", fake_options(), log_dir=tmp_path)
    try:
        first = await switcher.acquire(toy_spec("a"))
        with pytest.raises(ServerError) as refused:
            await switcher.acquire(toy_spec("b"))
        message = str(refused.value)
        assert "cannot start b (gpu_memory_utilization 0.9) beside a (0.9)" in message
        assert "1.80 of the GPU" in message and "--gpu-memory-utilization 0.45" in message
        assert list(switcher.servers) == ["a"] and first.running and not (tmp_path / "b.log").exists()
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


class GvisorGpu:
    """pynvml as it answers on the project's H200 under gVisor (docs/measurements.md, "GPU"): device totals,
    and NO per-process memory. What is in use is a floor plus, for every live fake vLLM server this test
    process started, its ``--gpu-memory-utilization`` share of the total (2 GiB while it sleeps, as measured),
    given back ``lag_s`` after its process is gone (the H200 took about a second). The fixture polls it, as the
    GPU would account for a server whether or not agentbench reads NVML at the time."""

    def __init__(self, total_gib: float = 140.0, floor_gib: float = 0.5, lag_s: float = 0.3) -> None:
        self.total, self.floor, self.lag_s = int(total_gib * GIB), int(floor_gib * GIB), lag_s
        self.held: dict[int, int] = {}  # server pid -> bytes it holds (kept after its exit, until the lag passes)
        self.gone: dict[int, float] = {}  # server pid -> when it was first seen gone
        self.lock = threading.Lock()

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:
        if index != 0:
            raise RuntimeError("NVML_ERROR_INVALID_ARGUMENT")
        return "gpu0"

    def nvmlDeviceGetComputeRunningProcesses(self, _handle: Any) -> list[Any]:
        return []  # gVisor: no per-process list

    def nvmlDeviceGetMemoryInfo(self, _handle: Any) -> Any:
        live = self._servers()
        with self.lock:
            now = time.monotonic()
            for pid in list(self.held):
                if pid not in live and now - self.gone.setdefault(pid, now) >= self.lag_s:
                    del self.held[pid]
            self.held.update(live)
            used = self.floor + sum(self.held.values())
        return SimpleNamespace(used=used, total=self.total, free=self.total - used)

    def _servers(self) -> dict[int, int]:
        """Live children of this process started with --gpu-memory-utilization: what each holds now."""
        servers: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                argv = (entry / "cmdline").read_bytes().decode().split("\0")
            except OSError:
                continue
            state, ppid = stat[stat.rfind(")") + 2:].split()[:2]
            if state == "Z" or int(ppid) != os.getpid() or "--gpu-memory-utilization" not in argv:
                continue
            share = float(argv[argv.index("--gpu-memory-utilization") + 1])
            asleep = "--enable-sleep-mode" in argv and _asleep(int(argv[argv.index("--port") + 1]))
            servers[int(entry.name)] = 2 * GIB if asleep else int(share * self.total)
        return servers


def _asleep(port: int) -> bool:
    try:
        return bool(httpx.get(f"http://127.0.0.1:{port}/is_sleeping", timeout=2).json()["is_sleeping"])
    except (httpx.HTTPError, ValueError, KeyError):
        return False  # still starting: it holds its share already


@pytest.fixture
def gpu(monkeypatch: pytest.MonkeyPatch) -> Iterator[GvisorGpu]:
    stand_in = GvisorGpu()
    monkeypatch.setattr(nvml, "_state", {"module": stand_in, "reason": None})
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.1):
            stand_in.nvmlDeviceGetMemoryInfo("gpu0")

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    yield stand_in
    done.set()
    poller.join()


def _stops(switcher: ModelSwitcher) -> dict[str, dict[str, Any]]:
    return {s["key"]: s["stop"] for s in switcher.to_dict()["servers"] if "stop" in s}


@pytest.mark.slow  # three server starts
async def test_restart_frees_both_members_while_the_other_is_still_up(tmp_path: Path, gpu: GvisorGpu) -> None:
    """Members a and b are both up; when c needs the GPU each one's memory is judged with the other still
    there (the pre-start level of a, taken before b started, is no longer the target)."""
    a, b, c = (toy_spec(k, gpu_memory_utilization=0.45) for k in "abc")
    switcher = ModelSwitcher("restart", fake_options(), log_dir=tmp_path, memory_timeout_s=3.0)
    try:
        await switcher.acquire(a)
        await switcher.acquire(b)
        assert gpu.nvmlDeviceGetMemoryInfo("gpu0").used == int(0.5 * GIB) + 2 * int(0.45 * gpu.total)
        await switcher.release(a)
        await switcher.release(b)
        await switcher.acquire(c)  # stops b, then a
        switch = switcher.records[-1]
        assert switch.from_models == ["a", "b"] and switch.memory_released is True
        stops = _stops(switcher)
        assert stops["a"]["memory_released"] is True and stops["b"]["memory_released"] is True
        assert max(stops["a"]["memory_release_s"], stops["b"]["memory_release_s"]) < 2.0
    finally:
        await switcher.close()
    assert _stops(switcher)["c"]["memory_released"] is True


@pytest.mark.slow  # two server starts
async def test_sleep_mode_close_confirms_every_server(tmp_path: Path, gpu: GvisorGpu) -> None:
    """Two resident servers, the first one awake again at the end: each stop is judged by what that server held
    (its share, or 2 GiB asleep), not by the level before its start."""
    a, b = toy_spec("a"), toy_spec("b")
    switcher = ModelSwitcher("sleep", fake_options(), log_dir=tmp_path, expected_models=2, memory_timeout_s=3.0)
    try:
        await switcher.switch_to(a)
        await switcher.switch_to(b)  # a sleeps
        await switcher.switch_to(a)  # b sleeps, a wakes
    finally:
        await switcher.close()
    stops = _stops(switcher)
    assert {k: v["memory_released"] for k, v in stops.items()} == {"a": True, "b": True}, stops
    assert gpu.nvmlDeviceGetMemoryInfo("gpu0").used == int(0.5 * GIB)
    held = {s["key"]: s["gpu_memory_held_gib"] for s in switcher.to_dict()["servers"]}
    assert held == {"a": pytest.approx(0.45 * gpu.total / GIB, abs=0.01), "b": 2.0}  # a awake, b asleep


async def test_a_server_that_keeps_its_memory_is_reported(tmp_path: Path, gpu: GvisorGpu) -> None:
    """The check can fail: memory that does not come back (here: the stand-in never gives it back) stops the
    switch with an error naming the levels, instead of starting the next model on a full GPU."""
    gpu.lag_s = 3600.0
    switcher = ModelSwitcher("restart", fake_options(), log_dir=tmp_path, memory_timeout_s=1.0)
    try:
        await switcher.acquire(toy_spec("a"))
        await switcher.release(toy_spec("a"))
        with pytest.raises(ServerError, match="GPU memory of a was not released") as failure:
            await switcher.acquire(toy_spec("b"))
        assert "expected at most" in str(failure.value) and "this server held" in str(failure.value)
        assert "b" not in switcher.servers and not (tmp_path / "b.log").exists()
    finally:
        await switcher.close()
