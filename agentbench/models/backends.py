"""Backends turn a registry entry into LangChain chat models, one per scenario run.

A backend is one class plus one line in ``BACKENDS``. ``start``/``stop`` bracket a model's whole
share of a run (the vLLM backend launches and tears down its server there); ``chat_model`` is
called once per scenario run.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool

from agentbench.errors import ConfigError
from agentbench.graphs import BINDING_KEY, LoopBinding, tool_loop
from agentbench.models.faults import noisy_script
from agentbench.models.forced_gold import ForcedGoldChatOpenAI, forced_gold_fields
from agentbench.models.offline import ReferenceChatModel
from agentbench.models.openai_chat import ToolSafeChatOpenAI
from agentbench.models.registry import ModelSpec
from agentbench.models.script import gold_script
from agentbench.scenario.schema import Scenario

#: Chat-format families (``serve.family``) whose chat template rejects the system role (the server
#: answers HTTP 400): in prompt mode their system text, tool list included, opens the first user message.
NO_SYSTEM_ROLE_FAMILIES = frozenset({"gemma2"})

#: Request headers that tell a server (or a proxy's logs) which scenario a request belongs to.
SCENARIO_HEADER = "X-Agentbench-Scenario"
REPEAT_HEADER = "X-Agentbench-Repeat"


@dataclass(frozen=True)
class Agent:
    """What one scenario run executes: a compiled graph and the ``configurable`` values its
    invocations need (for the shared tool loop: the run's model and tools)."""

    graph: Any
    configurable: dict[str, Any] = field(default_factory=dict)


@functools.lru_cache(maxsize=256)
def shared_tool_loop(system: str | None, max_steps: int) -> Any:
    """One compiled tool loop per (system prompt, step limit), shared by concurrent runs: each
    invocation binds its own model and tools (compiling a StateGraph costs milliseconds)."""
    return tool_loop(None, system=system, max_steps=max_steps)


class Backend:
    """Base backend: no lifecycle; subclasses build chat models."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    async def start(self) -> None:
        """Make the model ready (e.g. launch its server). Called once before its scenarios."""

    async def stop(self) -> None:
        """Release what ``start`` took. Called once after its scenarios, even on failure."""

    def chat_model(self, scenario: Scenario | None, repeat: int = 0) -> BaseChatModel:
        """A chat model for one run of ``scenario`` (``None``: outside any scenario, e.g. an app)."""
        raise NotImplementedError

    def agent(self, tools: Sequence[BaseTool], *, system: str | None, max_steps: int,
              scenario: Scenario | None = None, repeat: int = 0, checkpointer: Any = None) -> Agent:
        """The agent for one run: by default the tool loop around ``chat_model``. Without a
        checkpointer the compiled loop is shared and binds this run's model and tools per call."""
        model = self.chat_model(scenario, repeat)
        if checkpointer is not None:
            return Agent(tool_loop(model, tools, system=system, max_steps=max_steps, checkpointer=checkpointer))
        return Agent(shared_tool_loop(system, max_steps), {BINDING_KEY: LoopBinding.of(model, tools)})

    def worker_spec(self) -> ModelSpec:
        """The entry worker processes build their own backend from, once ``start`` has run.

        A backend that owns a resource (a vLLM server it launched) returns an entry that only
        attaches to it, so workers never start a second copy.
        """
        return self.spec

    def describe(self) -> dict[str, Any]:
        """What to store about this model with the run (settings that affect results)."""
        return self.spec.model_dump(exclude_none=True)


class ReferenceBackend(Backend):
    """Scripted gold solutions, optionally with seeded faults (``faults`` in the entry)."""

    def chat_model(self, scenario: Scenario | None, repeat: int = 0) -> BaseChatModel:
        if scenario is None:
            raise ConfigError(f"{self.spec.key!r} replays scenarios' gold solutions; it cannot serve an app")
        faults = self.spec.faults
        if faults is None:
            script = gold_script(scenario)
        else:
            script, _ = noisy_script(scenario, faults.seed, faults.rate, repeat)
        return ReferenceChatModel(script=script, label=self.spec.key)


class OpenAIBackend(Backend):
    """Any OpenAI-compatible chat-completions server, through langchain-openai's ChatOpenAI.

    Requests are non-streaming unless the entry sets ``stream: true`` (which records time to
    first token per call): vLLM's non-streaming tool-call parsing is the more robust path, and a
    streamed reply costs the client several times more CPU per call. Serving latency (TTFT,
    TPOT) is measured by ``agentbench bench`` with a dedicated streaming client.

    The entry's ``tool_protocol`` picks native tool calling or tools described in the prompt
    (docs/tool-protocols.md); its ``chat_template_kwargs`` go in every request body. Subclasses
    (the vLLM backend) inherit both.
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        if not spec.base_url or not spec.model_name:
            raise ConfigError(f"model {spec.key!r}: the openai backend needs base_url and model_name")
        self.api_key = "EMPTY"
        self._http: Any = None
        if spec.api_key_env:
            if not os.environ.get(spec.api_key_env):
                raise ConfigError(f"model {spec.key!r}: environment variable {spec.api_key_env} is not set")
            self.api_key = os.environ[spec.api_key_env]

    async def start(self) -> None:
        # One connection pool per session, opened in the running event loop: langchain-openai's
        # default client is cached process-wide, and a second asyncio.run() would reuse
        # connections bound to a closed loop ("Event loop is closed").
        self._http = openai.DefaultAsyncHttpxClient(timeout=self.spec.timeout_s)

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def chat_model(self, scenario: Scenario | None, repeat: int = 0) -> BaseChatModel:
        sampling = self.spec.sampling
        headers = {SCENARIO_HEADER: scenario.id, REPEAT_HEADER: str(repeat)} if scenario else {}
        # Forced gold decoding (agentbench.models.forced_gold): the same client, forcing each gold reply's text.
        forced = forced_gold_fields(self.spec, scenario) if self.spec.force_gold else {}
        chat_class = ForcedGoldChatOpenAI if forced else ToolSafeChatOpenAI
        return chat_class(
            http_async_client=self._http,
            model=self.spec.model_name or "",
            base_url=self.spec.base_url,
            api_key=self.api_key,  # type: ignore[arg-type]
            # Both are inferred otherwise; vLLM speaks chat completions, and usage must stream.
            use_responses_api=False,
            stream_usage=True,
            streaming=self.spec.stream,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_tokens,  # type: ignore[call-arg]
            seed=sampling.seed,
            timeout=self.spec.timeout_s,
            max_retries=self.spec.max_retries,
            default_headers=headers,
            extra_body=self.extra_body(),
            tool_protocol=self.spec.tool_protocol,
            system_role=self.system_role(),
            **forced,
        )

    def system_role(self) -> bool:
        """Whether the model's chat template accepts a system message (from the entry's family)."""
        serve = self.spec.serve
        return not (serve is not None and serve.family in NO_SYSTEM_ROLE_FAMILIES)

    def extra_body(self) -> dict[str, Any] | None:
        """Fields beyond the OpenAI API sent with every request: the entry's ``chat_template_kwargs``
        (vLLM and SGLang pass them to the chat template, e.g. ``{"enable_thinking": false}``)."""
        if not self.spec.chat_template_kwargs:
            return None
        return {"chat_template_kwargs": dict(self.spec.chat_template_kwargs)}

    def describe(self) -> dict[str, Any]:
        return self.spec.model_dump(exclude_none=True, exclude={"api_key_env"})


BACKENDS: dict[str, Callable[[ModelSpec], Backend]] = {
    "reference": ReferenceBackend,
    "openai": OpenAIBackend,
}


def make_backend(spec: ModelSpec) -> Backend:
    """The backend for a registry entry."""
    if spec.backend == "architecture" and "architecture" not in BACKENDS:
        from agentbench.models.arch_backend import ArchitectureBackend  # composes the other backends

        BACKENDS["architecture"] = ArchitectureBackend
    if spec.backend == "vllm" and "vllm" not in BACKENDS:
        from agentbench.models.vllm_backend import VLLMBackend  # launches vLLM servers (agentbench.serving)

        BACKENDS["vllm"] = VLLMBackend
    try:
        factory = BACKENDS[spec.backend]
    except KeyError:
        raise ConfigError(f"model {spec.key!r}: unknown backend {spec.backend!r}") from None
    return factory(spec)
