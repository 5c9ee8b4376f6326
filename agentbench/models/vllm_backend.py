"""The backend of ``backend: vllm`` entries: agentbench launches (or attaches to) a vLLM server.

``start`` launches the entry's server and waits until it is healthy; ``stop`` tears it down. When
the entry (or ``--base-url``) gives a ``base_url``, the backend only attaches. Inside a run the
switcher of :func:`agentbench.serving.switching.serving_session` owns the servers (restart or
sleep mode); otherwise the backend owns one server itself.

Server death: a scenario in flight when the server dies fails on the connection and is stored as
``endpoint_error``; once the server process is known to have exited, every later scenario of the
model is stored as ``endpoint_error`` ("server exited") without calling it.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel

from agentbench.errors import EndpointError
from agentbench.models.backends import OpenAIBackend
from agentbench.models.registry import ModelSpec
from agentbench.scenario.schema import Scenario
from agentbench.serving.launch import LaunchOptions, serve_spec, served_model_name
from agentbench.serving.server import VLLMServer
from agentbench.serving.switching import ModelSwitcher, active_switcher

__all__ = ["VLLMBackend"]

_NOT_STARTED = "http://127.0.0.1:1/v1"  # placeholder until start() knows the server's address


class VLLMBackend(OpenAIBackend):
    """A vLLM server for the entry, spoken to like any OpenAI-compatible endpoint."""

    def __init__(self, spec: ModelSpec, options: LaunchOptions | None = None,
                 switcher: ModelSwitcher | None = None) -> None:
        serve_spec(spec)  # a clear error for a malformed entry or an unknown variant, now
        self.entry = spec
        self.attached = spec.base_url is not None
        super().__init__(spec.model_copy(update={"base_url": spec.base_url or _NOT_STARTED,
                                                 "model_name": served_model_name(spec)}))
        self.options = options
        self.switcher = switcher if switcher is not None else active_switcher.get()
        self.server: VLLMServer | None = None
        self._own_server = False

    async def start(self) -> None:
        if not self.attached:
            if self.switcher is not None:
                self.server = await self.switcher.acquire(self.entry)
            else:
                self.server, self._own_server = VLLMServer(self.entry, self.options), True
                await self.server.start()
            self.spec = self.spec.model_copy(update={"base_url": self.server.base_url})
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        server, self.server = self.server, None
        if server is None:
            return
        if self._own_server:
            await server.stop()
        elif self.switcher is not None:
            await self.switcher.release(self.entry)

    def _check_alive(self) -> None:
        """Fail fast, as an endpoint error, once the server process is gone."""
        server = self.server
        if server is not None and not server.running and not self.attached:
            raise EndpointError(f"server exited: the vLLM server for {self.entry.key!r} is gone (exit code "
                                f"{server.returncode}); log: {server.log_path}")

    def chat_model(self, scenario: Scenario | None, repeat: int = 0) -> BaseChatModel:
        self._check_alive()
        return super().chat_model(scenario, repeat)

    def worker_spec(self) -> ModelSpec:
        """An ``openai`` entry attached to the running server: workers never start a second one."""
        return self.spec.model_copy(update={"backend": "openai", "serve": None})

    def describe(self) -> dict[str, Any]:
        data = self.entry.model_dump(exclude_none=True, exclude={"api_key_env"})
        data["attached"] = self.attached
        if self.attached:
            data["base_url"] = self.entry.base_url
        elif self.server is not None:
            data["server"] = self.server.describe()
        return data
