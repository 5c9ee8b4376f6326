"""Reading a vLLM server's startup log: the figures it reports, its phases, and why it failed.

The patterns follow vLLM 0.24.0's own format strings (``vllm/v1/worker/gpu_model_runner.py``,
``vllm/v1/core/kv_cache_utils.py``, ``vllm/compilation/monitor.py``, ``vllm/v1/engine/core.py``);
lines carry a prefix such as ``(EngineCore_DP0 pid=42) INFO 11-26 20:01:02 [file.py:123]`` that
the patterns ignore.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Diagnosis", "StartupFigures", "StartupLog", "diagnose"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_NUM = r"(-?[\d.]+)"
_INT = r"([\d,]+)"


@dataclass
class StartupFigures:
    """What a vLLM server reported while starting (``None``: not seen in the log)."""

    weights_gib: float | None = None  # "Model loading took X GiB memory and Y seconds"
    weights_load_s: float | None = None
    weights_read_s: float | None = None  # "Loading weights took X seconds" (reading the files)
    available_kv_cache_gib: float | None = None  # "Available KV cache memory: X GiB"
    kv_cache_tokens: int | None = None  # "GPU KV cache size: N tokens"
    max_concurrency: float | None = None  # "Maximum concurrency for L tokens per request: Kx"
    max_concurrency_tokens: int | None = None  # the L in that line (the max model length)
    torch_compile_s: float | None = None  # "torch.compile took X s in total"
    graph_capture_s: float | None = None  # "Graph capturing finished in X secs, took Y GiB"
    graph_capture_gib: float | None = None
    init_engine_s: float | None = None  # "init engine (profile, create kv cache, warmup model) took X s"
    architecture: str | None = None  # "Resolved architecture: X"
    ready_s: float | None = None  # measured by agentbench: launch -> first healthy /health
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The figures seen (``None`` ones left out)."""
        return {k: v for k, v in asdict(self).items() if v not in (None, {})}


def _f(text: str) -> float:
    return float(text.replace(",", ""))


def _i(text: str) -> int:
    return int(text.replace(",", ""))


def _set(figures: StartupFigures, **values: Any) -> None:
    for name, value in values.items():
        setattr(figures, name, value)


# (pattern, setter, phase text). A setter stores the match's figures; the phase text is what a
# user watching the startup sees ({0}, {1} are the groups).
_RULES: list[tuple[re.Pattern[str], Any, str]] = [
    (re.compile(r"Resolved architecture: (\S+)"), lambda f, m: setattr(f, "architecture", m[1]),
     "architecture {0}"),
    (re.compile(r"Starting to load model (.+?)\.\.\."), None, "loading weights"),
    (re.compile(r"Loading weights took " + _NUM + r" seconds"), lambda f, m: setattr(f, "weights_read_s", _f(m[1])),
     "weights read in {0} s"),
    (re.compile(r"Model loading took " + _NUM + r" GiB(?: memory)? and " + _NUM + r" seconds"),
     lambda f, m: _set(f, weights_gib=_f(m[1]), weights_load_s=_f(m[2])),
     "weights loaded: {0} GiB in {1} s"),
    (re.compile(r"torch\.compile took " + _NUM + r" s in total"), lambda f, m: setattr(f, "torch_compile_s", _f(m[1])),
     "torch.compile done in {0} s"),
    (re.compile(r"Available KV cache memory: " + _NUM + r" GiB"),
     lambda f, m: setattr(f, "available_kv_cache_gib", _f(m[1])), "KV cache memory {0} GiB"),
    (re.compile(r"GPU KV cache size: " + _INT + r" tokens"), lambda f, m: setattr(f, "kv_cache_tokens", _i(m[1])),
     "KV cache {0} tokens"),
    (re.compile(r"Maximum concurrency for " + _INT + r" tokens per request: " + _NUM + r"x"),
     lambda f, m: _set(f, max_concurrency_tokens=_i(m[1]), max_concurrency=_f(m[2])),
     "max concurrency {1}x at {0} tokens"),
    (re.compile(r"Graph capturing finished in " + _NUM + r" secs?, took " + _NUM + r" GiB"),
     lambda f, m: _set(f, graph_capture_s=_f(m[1]), graph_capture_gib=_f(m[2])),
     "CUDA graphs captured in {0} s ({1} GiB)"),
    (re.compile(r"init engine \(profile, create kv cache, warmup model\) took " + _NUM + r" s(?:econds)?"),
     lambda f, m: setattr(f, "init_engine_s", _f(m[1])), "engine initialised in {0} s"),
    (re.compile(r"Starting vLLM (?:API )?server on (\S+)"), None, "HTTP server starting on {0}"),
    (re.compile(r"Application startup complete"), None, "HTTP server up"),
]


class StartupLog:
    """Feed it the log's lines as they appear; it keeps the figures and returns phase lines."""

    def __init__(self) -> None:
        self.figures = StartupFigures()
        self.phases: list[str] = []

    def feed(self, line: str) -> str | None:
        """Parse one log line; return a phase description when the line marks one."""
        line = _ANSI.sub("", line)
        for pattern, setter, phase in _RULES:
            match = pattern.search(line)
            if match is None:
                continue
            if setter is not None:
                setter(self.figures, match)
            text = phase.format(*match.groups())
            self.phases.append(text)
            return text
        return None


@dataclass(frozen=True)
class Diagnosis:
    """Why a server failed to start: a short cause, a hint, and the log line that showed it."""

    cause: str
    hint: str
    evidence: str = ""


# Most specific first: vLLM logs a generic "Engine core initialization failed" after the real cause.
_SIGNATURES: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"Free memory on device .* is less than desired GPU memory utilization"),
     "not enough free GPU memory for --gpu-memory-utilization (another process holds GPU memory)",
     "stop the other process (nvidia-smi shows it) or lower --gpu-memory-utilization"),
    (re.compile(r"No available memory for the cache blocks|is larger than the available KV cache memory"),
     "out of GPU memory for the KV cache at this --max-model-len",
     "lower --max-model-len or raise --gpu-memory-utilization (see `agentbench models` for estimates)"),
    (re.compile(r"CUDA out of memory|OutOfMemoryError|not enough GPU memory|out of memory", re.IGNORECASE),
     "out of GPU memory",
     "lower --gpu-memory-utilization/--max-model-len, use a quantized variant, or free the GPU"),
    (re.compile(r"Model architectures? \[?.*\]? (?:are|is) not supported|is not supported in-tree anymore"),
     "the model's architecture is not supported by this vLLM",
     "check config.json's 'architectures' against vLLM's supported models, or upgrade vLLM"),
    (re.compile(r"error: (?:unrecognized arguments|argument [^:]+: invalid|the following arguments)"),
     "vLLM rejected a command-line flag",
     "check the entry's serve.extra_args and the overrides against `vllm serve --help` of this vLLM"),
    (re.compile(r"No module named '?vllm"),
     "vLLM cannot be imported by the server command",
     "install vLLM, or give --vllm-command / --vllm-env PYTHONPATH=... where it is installed"),
    (re.compile(r"Address already in use"),
     "the port is already in use", "pick another --port (or stop whatever listens there)"),
    (re.compile(r"is not a valid model identifier|does not appear to have a file named|Repository Not Found|"
                r"Can't load the configuration|not a local folder and is not a valid model"),
     "the model checkpoint could not be found or read",
     "check the entry's hf_id (a local directory or a Hugging Face repository you can reach), or use --synthetic"),
    (re.compile(r"Invalid tool[_ ]call[_ ]parser|tool call parser .* not|Invalid reasoning parser|"
                r"reasoning parser .* not", re.IGNORECASE),
     "unknown tool or reasoning parser", "check tool_parser/reasoning_parser against this vLLM's parser names"),
    (re.compile(r"RuntimeError: No CUDA GPUs are available|Failed to infer device type|NVIDIA driver"),
     "no usable GPU for vLLM", "run on a machine with an NVIDIA GPU and driver (nvidia-smi must work)"),
    (re.compile(r"Engine core initialization failed"),
     "the vLLM engine failed to initialise", "read the log above that line for the root cause"),
]


def diagnose(log_text: str) -> Diagnosis:
    """The most specific known failure found in ``log_text`` (a generic one when none matches)."""
    lines = _ANSI.sub("", log_text).splitlines()
    for pattern, cause, hint in _SIGNATURES:
        for line in lines:
            if pattern.search(line):
                return Diagnosis(cause, hint, line.strip()[:400])
    return Diagnosis("the server exited while starting", "read the log tail below")
