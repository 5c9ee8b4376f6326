"""The server lifecycle against the fake vLLM (started through the real launcher), and the startup-log parser."""

from __future__ import annotations

import time
from pathlib import Path

import openai
import pytest
from serving_helpers import alive, fake_options, toy_spec

from agentbench.serving import server as server_module
from agentbench.serving.launch import LaunchOptions
from agentbench.serving.server import ServerError, ServerStartError, VLLMServer, group_pids
from agentbench.serving.startup_log import StartupLog, diagnose

# Log lines built from vLLM 0.24.0's own format strings (copied verbatim from its source) with the
# prefix its logger adds.
_PREFIX = "(EngineCore_DP0 pid=4242) INFO 11-26 20:01:02 [x.py:1] "
VLLM_FORMATS: list[tuple[str, tuple[object, ...]]] = [
    ("Resolved architecture: %s", ("LlamaForCausalLM",)),  # config/model.py
    ("Starting to load model %s...", ("/tmp/synth",)),  # v1/worker/gpu_model_runner.py
    ("Loading weights took %.2f seconds", (2.5,)),  # model_executor/model_loader/default_loader.py
    ("Model loading took %s GiB memory and %.6f seconds", ("14.99", 3.412345)),  # v1/worker/gpu_model_runner.py
    ("torch.compile took %.2f s in total", (21.4321,)),  # compilation/monitor.py
    ("Available KV cache memory: %s GiB", ("102.5",)),  # v1/worker/gpu_worker.py
    ("GPU KV cache size: %s tokens", (f"{839648:,}",)),  # v1/core/kv_cache_utils.py
    ("Maximum concurrency for %s tokens per request: %.2fx", (f"{8192:,}", 102.496)),  # same file
    ("Graph capturing finished in %.0f secs, took %.2f GiB", (9.4, 0.55)),  # v1/worker/gpu_model_runner.py
    ("init engine (profile, create kv cache, warmup model) took %.2f s (compilation: %.2f s)", (38.17, 21.43)),
    ("Starting vLLM server on %s", ("http://0.0.0.0:8000",)),  # entrypoints/openai/api_server.py
]
VLLM_LINES = [template % args for template, args in VLLM_FORMATS]


def test_startup_log_figures_from_vllm_format_strings() -> None:
    log = StartupLog()
    phases = [log.feed(_PREFIX + line) for line in VLLM_LINES]
    assert log.feed(_PREFIX + "Some unrelated line") is None
    f = log.figures
    assert f.architecture == "LlamaForCausalLM"
    assert (f.weights_read_s, f.weights_gib, f.weights_load_s) == (2.5, 14.99, 3.412345)
    assert f.torch_compile_s == 21.43 and f.available_kv_cache_gib == 102.5
    assert f.kv_cache_tokens == 839648 and f.max_concurrency_tokens == 8192 and f.max_concurrency == 102.5
    assert (f.graph_capture_s, f.graph_capture_gib) == (9.0, 0.55) and f.init_engine_s == 38.17
    assert all(phases) and phases[3] == "weights loaded: 14.99 GiB in 3.412345 s"
    assert phases[-1] == "HTTP server starting on http://0.0.0.0:8000"


def test_init_engine_line_without_compilation_and_colour_codes() -> None:
    log = StartupLog()
    template = "init engine (profile, create kv cache, warmup model) took %.2f s"  # v1/engine/core.py
    log.feed("\x1b[32mINFO\x1b[0m " + template % (12.5,))
    assert log.figures.init_engine_s == 12.5


@pytest.mark.parametrize(("text", "cause"), [
    ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\nRuntimeError: Engine core "
     "initialization failed. See root cause above.", "out of GPU memory"),
    ("ValueError: Free memory on device cuda:0 (10.0/139.8 GiB) on startup is less than desired GPU memory "
     "utilization (0.9, 125.8 GiB).", "not enough free GPU memory"),
    ("ValueError: To serve at least one request with the model's max seq len (131072), (16.0 GiB KV cache is "
     "needed, which is larger than the available KV cache memory (2.1 GiB).", "KV cache"),
    ("ValueError: Model architectures ['FooForCausalLM'] are not supported for now.", "architecture"),
    ("api_server.py: error: unrecognized arguments: --bogus", "command-line flag"),
    ("ModuleNotFoundError: No module named 'vllm'", "cannot be imported"),
    ("RuntimeError: Engine core initialization failed. See root cause above.", "failed to initialise"),
    ("something nobody anticipated", "exited while starting"),
])
def test_diagnose_names_the_cause(text: str, cause: str) -> None:
    assert cause in diagnose(text).cause


async def test_start_health_chat_stop_leaves_no_process(tmp_path: Path) -> None:
    phases: list[str] = []
    server = VLLMServer(toy_spec(), fake_options(), log_dir=tmp_path, on_phase=phases.append)
    async with server:
        pids = group_pids(server.pid or 0)
        assert len(pids) >= 2  # the API server and its engine child
        assert server.running and server.base_url.startswith("http://127.0.0.1:")
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="x")
        models = await client.models.list()
        assert [m.id for m in models.data] == ["toy"]
        await client.close()
        figures = server.startup
        assert figures.weights_gib == 14.99 and figures.kv_cache_tokens == 839648
        assert figures.ready_s is not None and figures.ready_s > 0
        assert any(p.startswith("KV cache 839,648 tokens") for p in phases) and phases[-1].startswith("ready on")
    report = server.last_stop
    assert report is not None and report.group_exited and report.signal == "SIGTERM"
    assert report.memory_released is None and "NVML" in report.memory_note  # no GPU here
    assert not alive(pids) and not group_pids(pids.pop())
    described = server.describe()
    assert described["startup"]["kv_cache_tokens"] == 839648 and described["stop"]["group_exited"]
    assert "--served-model-name" in described["settings"]["args"]
    assert (tmp_path / "toy.log").read_text().count("GPU KV cache size") == 1


@pytest.mark.parametrize(("setting", "cause"), [
    (("FAKE_VLLM_FAIL=oom",), "out of GPU memory"),
    (("FAKE_VLLM_FAIL=arch",), "architecture is not supported"),
])
async def test_startup_crash_is_an_error_naming_the_cause(tmp_path: Path, setting: tuple[str, ...],
                                                          cause: str) -> None:
    server = VLLMServer(toy_spec(), fake_options(*setting), log_dir=tmp_path)
    with pytest.raises(ServerStartError) as failure:
        await server.start()
    message = str(failure.value)
    assert cause in failure.value.cause and "exited with code 1" in message
    assert "hint:" in message and str(tmp_path / "toy.log") in message and "--- last lines" in message
    assert not server.running and server.last_stop is not None and server.last_stop.group_exited


async def test_unknown_flag_is_reported_as_a_rejected_flag(tmp_path: Path) -> None:
    server = VLLMServer(toy_spec(), fake_options(extra_args=("--no-such-flag",)), log_dir=tmp_path)
    with pytest.raises(ServerStartError) as failure:
        await server.start()
    assert "rejected a command-line flag" in failure.value.cause
    assert "--no-such-flag" in failure.value.log_tail


async def test_health_timeout_stops_the_server(tmp_path: Path) -> None:
    server = VLLMServer(toy_spec(), fake_options("FAKE_VLLM_FAIL=never-healthy"), log_dir=tmp_path,
                        health_timeout_s=2.5)
    with pytest.raises(ServerStartError, match=r"did not become healthy within 2\.5 s") as failure:
        await server.start()
    assert "last phase seen" in failure.value.cause
    assert server.last_stop is not None and server.last_stop.group_exited and not server.running


async def test_a_server_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    server = VLLMServer(toy_spec(), fake_options("FAKE_VLLM_IGNORE_TERM=1"), log_dir=tmp_path, stop_grace_s=0.5)
    await server.start()
    pids = group_pids(server.pid or 0)
    report = await server.stop()
    assert report is not None and report.signal == "SIGKILL" and report.group_exited
    assert not alive(pids)
    assert await server.stop() is None  # stopping twice is harmless


async def test_default_command_without_vllm_fails_before_spawning(tmp_path: Path) -> None:
    server = VLLMServer(toy_spec(), LaunchOptions(), log_dir=tmp_path)
    start = time.monotonic()
    with pytest.raises(ServerError, match="cannot start a vLLM server here: vLLM is not installed"):
        await server.start()
    assert time.monotonic() - start < 1.0
    assert not (tmp_path / "toy.log").exists() and server.pid is None


class _FakeDevice:
    """NVML cannot run without a GPU: a device whose memory falls back to the baseline after some reads."""

    def __init__(self, readings: list[int]) -> None:
        self.readings = readings

    def memory_used(self) -> int:
        return self.readings.pop(0) if len(self.readings) > 1 else self.readings[0]

    def process_memory(self) -> dict[int, int]:
        return {}


@pytest.mark.parametrize(("readings", "released"), [([80, 80, 60, 20, 10], True), ([80], False)])
def test_memory_release_waits_for_the_baseline(monkeypatch: pytest.MonkeyPatch, readings: list[int],
                                               released: bool) -> None:
    """A server whose share is unknown (it never became healthy), alone on the GPU: back to the pre-start level."""
    gib = server_module.GIB
    device = _FakeDevice([r * gib for r in readings])
    monkeypatch.setattr(server_module, "open_device", lambda _index=0: device)
    server = VLLMServer(toy_spec(), memory_timeout_s=1.0, memory_tolerance_gib=1.0)
    server._baseline = 10 * gib
    ok, seconds, note = server._confirm_memory_released()
    assert ok is released
    assert (seconds is not None) == released and (note == "") == released
    if not released:
        assert "still 80.00 GiB, expected at most 11.00 GiB (baseline 10.00 GiB" in note


@pytest.mark.parametrize(("readings", "released"), [([100, 100, 80, 41], True), ([100, 100, 70], False)])
def test_memory_release_is_judged_by_what_the_server_held(monkeypatch: pytest.MonkeyPatch, readings: list[int],
                                                          released: bool) -> None:
    """Another server started after this one holds 40 GiB: the target is the level before the stop (100 GiB)
    less the 60 GiB this server held, not the 0 GiB in use before this server started."""
    gib = server_module.GIB
    monkeypatch.setattr(server_module, "open_device", lambda _index=0: _FakeDevice([r * gib for r in readings]))
    server = VLLMServer(toy_spec(), memory_timeout_s=1.0, memory_tolerance_gib=1.0)
    server._baseline, server._held = 0, 60 * gib
    ok, _, note = server._confirm_memory_released(100 * gib)
    assert ok is released
    if not released:
        assert "expected at most 41.00 GiB (100.00 GiB before the stop less the 60.00 GiB this server held" in note


def test_an_exited_server_beside_others_is_not_judged(monkeypatch: pytest.MonkeyPatch) -> None:
    """A crashed server (no level before the stop) while another server of ours is up: its pre-start level says
    nothing, so the check says so instead of waiting for a level that cannot come back."""
    monkeypatch.setattr(server_module, "open_device", lambda _index=0: _FakeDevice([70 * server_module.GIB]))
    crashed, other = VLLMServer(toy_spec("crashed")), VLLMServer(toy_spec("other"))
    crashed._baseline, crashed._held = 0, 30 * server_module.GIB
    monkeypatch.setattr(server_module, "_live", {other})
    ok, seconds, note = crashed._confirm_memory_released(None)
    assert ok is None and seconds is None and "other share the GPU" in note


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vllm-0.24.0"


@pytest.mark.parametrize(("name", "expected"), [
    ("llama-serve.log", {"weights_gib": 15.0, "kv_cache_tokens": 841520, "max_concurrency_tokens": 8192,
                         "max_concurrency": 102.72, "graph_capture_s": 4.0, "init_engine_s": 28.75}),
    ("qwen3-serve.log", {"weights_gib": 15.27, "kv_cache_tokens": 796432, "max_concurrency_tokens": 32768,
                         "torch_compile_s": 4.73, "architecture": "Qwen3ForCausalLM"}),
])
def test_startup_log_of_a_real_h200_run(name: str, expected: dict[str, object]) -> None:
    log = StartupLog()
    for line in (FIXTURES / name).read_text("utf-8", "replace").splitlines():
        log.feed(line)
    figures = log.figures.to_dict()
    assert {k: figures.get(k) for k in expected} == expected
    assert log.phases[-1] == "HTTP server up"


_KILLED_PARENT = """
import asyncio, sys, time
sys.path.insert(0, sys.argv[1])
from serving_helpers import fake_options, toy_spec
from agentbench.serving.server import VLLMServer

async def main():
    server = VLLMServer(toy_spec(), fake_options(), log_dir=__import__("pathlib").Path(sys.argv[2]))
    await server.start()
    print(server.pid, flush=True)
    time.sleep(600)  # SIGKILLed by the test before it wakes

asyncio.run(main())
"""


def test_a_sigkilled_agentbench_leaves_no_server_behind(tmp_path: Path) -> None:
    """SIGKILL skips atexit; the parent-death signal must still take the server (and its engine) down."""
    import signal
    import subprocess
    import sys

    helpers = str(Path(__file__).parent)
    parent = subprocess.Popen([sys.executable, "-c", _KILLED_PARENT, helpers, str(tmp_path)], cwd=tmp_path,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        server_pid = int(parent.stdout.readline())
        group = group_pids(server_pid)
        assert server_pid in group and len(group) >= 2  # the API server and its engine child, alive
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
    deadline = time.monotonic() + 20
    while alive(group) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive(group) == set(), "the vLLM server outlived agentbench"


async def test_a_taken_port_is_refused_before_spawning(tmp_path: Path) -> None:
    """With --port on a port another server holds, its /health would answer for ours: refuse at once."""
    first = VLLMServer(toy_spec("first"), fake_options(), log_dir=tmp_path)
    async with first:
        port = first.plan.port if first.plan else 0
        second = VLLMServer(toy_spec("second"), fake_options(port=port), log_dir=tmp_path)
        with pytest.raises(ServerStartError, match=f"port {port} on 127.0.0.1 is already in use") as failure:
            await second.start()
        assert failure.value.cause == "the port is already in use" and "--port" in failure.value.hint
        assert second.pid is None and not (tmp_path / "second.log").exists()


async def test_another_server_answering_on_our_port_is_not_ours(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """If the port check is beaten (something binds between the check and our bind), /v1/models tells: it must
    list our served name, and our process must still be running."""
    first = VLLMServer(toy_spec("first"), fake_options(), log_dir=tmp_path)
    async with first:
        port = first.plan.port if first.plan else 0
        monkeypatch.setattr(server_module, "port_in_use", lambda _host, _port: False)
        second = VLLMServer(toy_spec("second"), fake_options(port=port), log_dir=tmp_path)
        with pytest.raises(ServerStartError, match=f"another server answers on port {port}") as failure:
            await second.start()
        assert "it serves first, not 'second'" in str(failure.value)
        assert not second.running and second.last_stop is not None and second.last_stop.group_exited
        assert first.running  # the other server is left alone


def test_port_in_use_sees_a_listener_not_a_closed_connection() -> None:
    import socket

    with socket.socket() as listener:  # bound the way vLLM 0.24.0 binds (api_server.create_server_socket)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # a second vLLM could bind it as well
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert server_module.port_in_use("127.0.0.1", port)
        with socket.create_connection(("127.0.0.1", port)):
            accepted, _ = listener.accept()
            accepted.close()  # the server side closes first: its port is left in TIME_WAIT, like a stopped server's
    assert not server_module.port_in_use("127.0.0.1", port)  # vLLM binds with SO_REUSEADDR: it can start here


async def test_synthetic_starts_serve_the_same_folder_from_the_cache(tmp_path: Path, monkeypatch) -> None:
    # vLLM keys its torch.compile cache by the model path: every start of the same synthetic model must
    # serve the same folder, whatever its log folder (it used to be a new one beside each log).
    from agentbench.models.registry import load_registry

    monkeypatch.setenv("AGENTBENCH_SYNTHETIC_DIR", str(tmp_path / "cache"))
    served = []
    for run in ("a", "b"):
        server = VLLMServer(load_registry()["llama31-8b"], fake_options(synthetic=True), log_dir=tmp_path / run)
        async with server:
            assert server.plan is not None
            served.append(server.plan.settings["model"])
    assert served[0] == served[1] and Path(served[0]).parent == tmp_path / "cache"
    assert (Path(served[0]) / "config.json").is_file() and not list((tmp_path / "a").glob("synthetic-*"))
