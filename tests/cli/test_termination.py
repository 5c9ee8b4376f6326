"""SIGTERM stops a bench or a run the way Ctrl-C does: what finished is stored, the exit code says so.
The bench and the run are real `python -m agentbench` processes, terminated mid-way by a real signal."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentbench.bench.results import list_bench_results
from agentbench.cli.termination import EXIT_TERMINATED, SigtermInterrupts, Terminated, as_terminated
from agentbench.testing import reference_responder
from agentbench.testing.openai_server import OpenAITestServer, Reply


def _wait_for(child: subprocess.Popen, check, timeout_s: float = 60.0) -> None:
    """Wait until `check()` holds while the child still runs; a child that exited early fails with its stderr."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if child.poll() is not None:
            _, stderr = child.communicate()
            raise AssertionError(f"the child exited ({child.returncode}) before it got that far:\n{stderr}")
        assert time.monotonic() < deadline, "the child never got that far"
        time.sleep(0.05)


def test_a_terminated_bench_stores_the_points_it_finished(tmp_path: Path) -> None:
    seen: list[int] = []

    def respond(_request) -> Reply:
        seen.append(1)
        return Reply(content="y" * 24, completion_tokens=6)

    # Eight points of 4 requests each, no warm-ups: a test request + 4 per point. SIGTERM once two points
    # are done, while the rest would still take seconds (0.1 s before each first byte).
    with OpenAITestServer(respond, model_names=["m"], delay_s=0.1) as server:
        child = subprocess.Popen(
            [sys.executable, "-m", "agentbench", "bench", "--base-url", server.base_url, "--model-name", "m",
             "--endpoint", "/v1/chat/completions", "--concurrency", ",".join(["1"] * 8), "--num-prompts", "4",
             "--num-warmups", "0", "--input-len", "16", "--output-len", "6", "--no-server-metrics",
             "--results-dir", str(tmp_path), "--json"],
            # cwd: from the checkout's root `-m agentbench` would import the source tree, which lacks the
            # subpackages (tools/, graphs/) that only the installed package maps into agentbench.
            env={**os.environ, "NO_COLOR": "1"}, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        _wait_for(child, lambda: len(seen) >= 2 * 5 + 1)
        child.send_signal(signal.SIGTERM)
        stdout, stderr = child.communicate(timeout=60)
    assert child.returncode == EXIT_TERMINATED, stderr
    assert "the finished part is stored" in " ".join(stderr.split())
    [stored] = list_bench_results(tmp_path, "m")
    printed = json.loads(stdout)  # --json: stdout (`--json > file`) gets the stored part, not nothing
    assert printed["points"] == stored["points"] and printed["incomplete"] == stored["incomplete"]
    assert stored["incomplete"] == "Terminated: SIGTERM"
    assert 2 <= len(stored["points"]) < 8  # the kill landed mid-sweep and kept what was done
    assert all(p["metrics"]["completed"] == 4 for p in stored["points"] if "metrics" in p)


def test_a_terminated_run_keeps_its_results_and_says_how_to_resume(tmp_path: Path, library) -> None:
    results = tmp_path / "results"
    with OpenAITestServer(reference_responder(library), model_names=["reference"], delay_s=0.1) as server:
        child = subprocess.Popen(
            [sys.executable, "-m", "agentbench", "run", "--base-url", server.base_url, "--model-name", "reference",
             "--no-report"], env={**os.environ, "AGENTBENCH_RESULTS_DIR": str(results), "NO_COLOR": "1"},
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

        def stored() -> list[str]:
            files = list((results / "runs").glob("*/results.jsonl"))
            return files[0].read_text().splitlines() if files else []

        _wait_for(child, lambda: len(stored()) >= 2)
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=60)
    assert child.returncode == EXIT_TERMINATED, stderr
    assert "terminated (SIGTERM); stored results are kept. Resume with: agentbench run --resume" in " ".join(
        stderr.split())
    kept = stored()
    assert 2 <= len(kept) < len(library.scenarios)
    assert all(json.loads(line)["scenario_id"] for line in kept)  # every stored line is whole


def test_the_handler_is_installed_only_over_the_default_and_restored() -> None:
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    with SigtermInterrupts() as guard:
        assert guard.installed and not guard.received
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs between bytecodes; it must raise before this returns
            raise AssertionError("SIGTERM did not raise")
        except Terminated as exc:
            assert str(exc) == "SIGTERM" and isinstance(exc, KeyboardInterrupt)
    assert guard.received
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

    def mine(*_a) -> None:
        pass

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        with SigtermInterrupts() as guard:
            assert not guard.installed and signal.getsignal(signal.SIGTERM) is mine  # an embedding program's own
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_inside_asyncio_run_sigterm_cancels_the_main_task_at_an_await_as_ctrl_c_does() -> None:
    written: list[int] = []
    events: list[str] = []

    async def work() -> None:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)  # a second one must not cut the unwinding short
            for i in range(200_000):  # a synchronous stretch (a store's write): never split by the signal
                written.append(i)
            await asyncio.sleep(5)
            events.append("slept")
        except asyncio.CancelledError:
            events.append("cancelled")
            raise
        finally:
            events.append("finally")

    with SigtermInterrupts() as guard, pytest.raises(KeyboardInterrupt) as caught:
        asyncio.run(work())
    assert guard.received and len(written) == 200_000 and events == ["cancelled", "finally"]
    assert type(caught.value) is KeyboardInterrupt  # asyncio's runner raised it, after the task unwound
    assert isinstance(as_terminated(caught.value), Terminated)  # and it is told apart from Ctrl-C


def test_ctrl_c_stays_ctrl_c() -> None:
    with SigtermInterrupts() as guard:
        pass
    assert not guard.received and type(as_terminated(KeyboardInterrupt())) is KeyboardInterrupt
