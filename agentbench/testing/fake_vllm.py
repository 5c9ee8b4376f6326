"""A stand-in for ``python -m vllm.entrypoints.openai.api_server`` on machines without a GPU.

It takes the flags agentbench's launcher passes (unknown ones are rejected the way vLLM's
argparse rejects them), prints startup lines in vLLM 0.24.0's log format (so the startup-log
parser and the phase display see what they see on a GPU), starts a child process standing in for
vLLM's engine core in the same process group, and serves the real wire: ``GET /health``,
``GET /v1/models``, ``POST /v1/chat/completions`` (through :class:`OpenAITestServer`, answering
with gold solutions via the ``X-Agentbench-Scenario`` header by default) and, with
``VLLM_SERVER_DEV_MODE=1`` like vLLM, ``POST /sleep``, ``POST /wake_up`` and ``GET /is_sleeping``. A request
with a literal ``structured_outputs.regex`` (forced gold decoding) gets that text, through the
``--tool-call-parser`` it was started with (hermes, llama3_json, mistral) when the request has tools.

Its misbehaviour is chosen through the environment (pass it with ``--vllm-env``)::

    FAKE_VLLM_FAIL=oom|arch|never-healthy   crash at startup like vLLM does, or never answer /health 200
    FAKE_VLLM_DIE_AFTER=N                   exit abruptly on the (N+1)-th chat request
    FAKE_VLLM_STARTUP_S=0.2                 time spent "loading" before listening
    FAKE_VLLM_SLEEP_S / FAKE_VLLM_WAKE_S    time /sleep and /wake_up take
    FAKE_VLLM_IGNORE_TERM=1                 ignore SIGTERM (agentbench must SIGKILL the group)
    FAKE_VLLM_RESPONDER=package.module:factory   another responder (default: reference_responder)

Run through agentbench: ``--vllm-command "python -m agentbench.testing.fake_vllm"``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from aiohttp import web

from agentbench.serving.forced import regex_literal
from agentbench.testing._server import OpenAITestServer
from agentbench.testing._types import ChatRequest, Reply, Responder, ToolCallReply

__all__ = ["command", "main"]

_ENGINE = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *a: (time.sleep(0.3), sys.exit(0)))\n"  # a slow, orderly exit
    "while True: time.sleep(1)\n"
)


def _log(message: str, where: str = "gpu_model_runner.py:5256", engine: bool = True) -> None:
    """One line in vLLM's format: ``(EngineCore_DP0 pid=N) INFO MM-DD HH:MM:SS [file:line] message``."""
    prefix = f"(EngineCore_DP0 pid={os.getpid()}) " if engine else f"(APIServer pid={os.getpid()}) "
    print(f"{prefix}INFO {time.strftime('%m-%d %H:%M:%S')} [{where}] {message}", flush=True)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fake_vllm")
    for flag in ("--model", "--served-model-name", "--dtype", "--tool-call-parser", "--chat-template",
                 "--reasoning-parser", "--quantization", "--load-format"):
        parser.add_argument(flag)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-model-len", type=int, default=8192)
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    for flag in ("--enable-auto-tool-choice", "--enable-sleep-mode", "--enforce-eager"):
        parser.add_argument(flag, action="store_true")
    # Accepted and ignored (nothing here caches): the fidelity scripts turn vLLM's prefix caching off.
    parser.add_argument("--enable-prefix-caching", action=argparse.BooleanOptionalAction, default=True)
    return parser.parse_args(argv)  # unknown flags: "error: unrecognized arguments", exit 2, like vLLM


class FakeVLLM(OpenAITestServer):
    """The OpenAI test server plus vLLM's health semantics and sleep-mode routes."""

    def __init__(self, responder: Responder, *, sleep_routes: bool, healthy: bool, **kwargs: object) -> None:
        super().__init__(responder, **kwargs)  # type: ignore[arg-type]
        self.sleep_routes = sleep_routes
        self.healthy = healthy
        self.sleeping = False

    def _add_routes(self, app: web.Application) -> None:
        if self.sleep_routes:
            app.router.add_post("/sleep", self._sleep)
            app.router.add_post("/wake_up", self._wake)
            app.router.add_get("/is_sleeping", self._is_sleeping)

    async def _handle_health(self, _request: web.Request) -> web.Response:
        return web.Response(status=200 if self.healthy else 503)

    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        if self.sleeping:
            return web.json_response({"error": {"message": "the engine is sleeping", "code": 503}}, status=503)
        return await super()._handle_chat(request)

    async def _sleep(self, request: web.Request) -> web.Response:
        await asyncio.sleep(float(os.environ.get("FAKE_VLLM_SLEEP_S", "0.05")))
        self.sleeping = True
        _log(f"It took {0.05:.6f} seconds to fall asleep (level {request.query.get('level', '1')}).", "gpu_worker.py:1")
        return web.Response(status=200)

    async def _wake(self, _request: web.Request) -> web.Response:
        await asyncio.sleep(float(os.environ.get("FAKE_VLLM_WAKE_S", "0.05")))
        self.sleeping = False
        return web.Response(status=200)

    async def _is_sleeping(self, _request: web.Request) -> web.Response:
        return web.json_response({"is_sleeping": self.sleeping})


def _parsed_calls(text: str, tool_parser: str | None) -> tuple[list[ToolCallReply], str] | None:
    """(calls, content before them) as vLLM 0.24.0's tool parser reads ``text``; None: no calls (content)."""
    calls: list[dict[str, object]] = []
    try:
        if tool_parser == "hermes" and "<tool_call>" in text:  # hermes_tool_parser.py
            calls = [json.loads(a or b) for a, b in re.findall(r"<tool_call>(.*?)</tool_call>|<tool_call>(.*)", text,
                                                                re.DOTALL)]
            calls = [{"name": c["name"], "arguments": c["arguments"]} for c in calls]
            before = text[: text.find("<tool_call>")]
        elif tool_parser == "llama3_json" and "{" in text:  # llama_tool_parser.py: every top-level JSON object
            end, decoder = -1, json.JSONDecoder()
            for match in re.finditer(r"\{", text):
                if match.start() > end:
                    obj, length = decoder.raw_decode(text[match.start():])
                    end = match.start() + length
                    calls.append({"name": obj["name"], "arguments": obj["arguments"] if "arguments" in obj
                                  else obj["parameters"]})
            before = ""
        elif tool_parser == "mistral" and "[TOOL_CALLS]" in text:  # mistral_tool_parser.py, pre-v11 vocabulary
            before, _, rest = text.partition("[TOOL_CALLS]")
            calls = [{"name": c["name"], "arguments": c.get("arguments", {})}
                     for c in json.JSONDecoder().raw_decode(rest.strip())[0]]
    except (ValueError, KeyError, TypeError):
        return None  # vLLM logs the error and returns the text as content
    if not calls:
        return None
    return [ToolCallReply(str(c["name"]), json.dumps(c["arguments"], ensure_ascii=False)) for c in calls], before


def _forced_reply(request: ChatRequest, tool_parser: str | None) -> Reply | None:
    """A request with ``structured_outputs.regex``: the model can only write what the regex matches. The fake
    honours literal regexes (what forced gold decoding sends, :mod:`agentbench.serving.forced`): the reply is
    that text, through the server's tool parser when the request has tools (``tool_choice`` auto), as vLLM does."""
    constraint = request.body.get("structured_outputs")
    if not isinstance(constraint, dict) or "regex" not in constraint:
        return None
    try:
        text = regex_literal(str(constraint["regex"]))
    except ValueError as exc:
        return Reply(status=400, error_message=f"fake_vllm honours literal regexes only: {exc}")
    parsed = _parsed_calls(text, tool_parser) if request.tools else None
    if parsed is None:
        return Reply(content=text)
    calls, before = parsed
    return Reply(content=before, tool_calls=calls)


def _responder(tool_parser: str | None = None) -> Responder:
    spec = os.environ.get("FAKE_VLLM_RESPONDER", "agentbench.testing.reference:reference_responder")
    limit = int(os.environ.get("FAKE_VLLM_DIE_AFTER", "-1"))
    loaded: list[Responder] = []
    served = 0

    async def respond(request: ChatRequest) -> Reply:
        nonlocal served
        served += 1
        if 0 <= limit < served:
            print(f"fake_vllm: dying on request {served} (FAKE_VLLM_DIE_AFTER={limit})", flush=True)
            os._exit(70)  # like a crashed engine taking the API server down: no reply, connection reset
        forced = _forced_reply(request, tool_parser)
        if forced is not None:
            return forced
        if not loaded:  # loaded on first use: the reference responder imports LangChain (seconds)
            from agentbench.testing.openai_server import _load_responder

            loaded.append(await asyncio.to_thread(_load_responder, spec))
        reply = loaded[0](request)
        return await reply if asyncio.iscoroutine(reply) else reply  # type: ignore[return-value]

    return respond


def _startup(args: argparse.Namespace, fail: str) -> None:
    _log(f"Resolved architecture: {'UnknownForCausalLM' if fail == 'arch' else 'LlamaForCausalLM'}",
         "model.py:598", engine=False)
    if fail == "arch":
        print("ValueError: Model architectures ['UnknownForCausalLM'] are not supported for now. "
              "Supported architectures: dict_keys(['LlamaForCausalLM'])", flush=True)
        sys.exit(1)
    _log(f"Starting to load model {args.model}...", "gpu_model_runner.py:5161")
    time.sleep(float(os.environ.get("FAKE_VLLM_STARTUP_S", "0.2")))
    if fail == "oom":
        print("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 224.00 MiB. GPU 0 has a total "
              "capacity of 139.81 GiB of which 17.06 MiB is free.", flush=True)
        print("RuntimeError: Engine core initialization failed. See root cause above. "
              "Failed core proc(s): {'EngineCore_DP0': 1}", flush=True)
        sys.exit(1)
    _log("Model loading took 14.99 GiB memory and 3.412345 seconds")
    _log("torch.compile took 21.43 s in total", "monitor.py:44")
    _log("Available KV cache memory: 102.5 GiB", "gpu_worker.py:509")
    tokens = 839648 * args.max_model_len // 8192
    _log(f"GPU KV cache size: {tokens:,} tokens", "kv_cache_utils.py:2146")
    _log(f"Maximum concurrency for {args.max_model_len:,} tokens per request: {tokens / args.max_model_len:.2f}x",
         "kv_cache_utils.py:2148")
    _log("Graph capturing finished in 9 secs, took 0.55 GiB", "gpu_model_runner.py:6657")
    _log("init engine (profile, create kv cache, warmup model) took 38.17 s (compilation: 21.43 s)", "core.py:338")


async def _serve(args: argparse.Namespace, fail: str) -> None:
    server = FakeVLLM(_responder(args.tool_call_parser), host=args.host, port=args.port,
                      model_names=(args.served_model_name or args.model or "fake",),
                      sleep_routes=os.environ.get("VLLM_SERVER_DEV_MODE") == "1",
                      healthy=fail != "never-healthy", record_requests=False)
    await server.astart()
    _log(f"Starting vLLM server on http://{args.host}:{server.port}", "api_server.py:581", engine=False)
    print("INFO:     Application startup complete.", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        if os.environ.get("FAKE_VLLM_IGNORE_TERM") == "1" and sig == signal.SIGTERM:
            loop.add_signal_handler(sig, lambda: print("fake_vllm: ignoring SIGTERM", flush=True))
        else:
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.astop()


def command() -> str:
    """The shell-quoted ``--vllm-command`` that runs this fake with this Python (installed package,
    not a source checkout's folder: see :mod:`agentbench.childproc`)."""
    import shlex

    from agentbench.childproc import python_module_argv

    return shlex.join(python_module_argv("agentbench.testing.fake_vllm"))


def main(argv: Sequence[str] | None = None) -> None:
    """Start the fake server (and its engine child) and serve until SIGTERM/SIGINT."""
    args = _parse(argv)
    fail = os.environ.get("FAKE_VLLM_FAIL", "")
    engine = subprocess.Popen([sys.executable, "-c", _ENGINE])  # same process group, like EngineCore
    try:
        _startup(args, fail)
        asyncio.run(_serve(args, fail))
    finally:
        engine.terminate()  # a clean exit takes the engine along; a crash (os._exit) leaves it to agentbench


if __name__ == "__main__":
    main()
