"""The ``calculator`` tool: exact arithmetic on a whitelisted expression language, never ``eval``.

This module's one job is the tool itself: the registered ``calculator`` function and the client
of the time-limited worker process that computes for it. The language and its static checks live
in :mod:`agentbench.tools._calc_parse`, the evaluator and result formatting in
:mod:`agentbench.tools._calc_eval`; their public names are re-exported here.

Safety comes in three layers:

1. **Static checks in the caller's process** (:func:`parse_expression`): length, ``ast.parse``
   failures of any kind (including hostile nesting), node count and depth, a whitelist of node
   types, names and functions, literal sizes, and exact folding of plain-integer sub-expressions
   so that power towers (``9**9**9**9``) and huge factorials are refused without computing them.
2. **Size checks while evaluating** (:class:`~agentbench.tools._calc_eval._Evaluator`): SymPy
   objects are built by hand, bottom up; before every power or factorial the operands are
   measured, and every intermediate number is capped at :data:`MAX_RESULT_DIGITS` digits.
3. **A time limit and a memory limit**: evaluation runs in a persistent worker subprocess
   (:mod:`agentbench.tools._calc_worker`, its own process group, about 2 GiB of address space)
   that is killed when it overruns and restarted on the next call.

No string from the model is ever converted by SymPy's parser (``sympify`` calls ``eval``).

Complex results are returned, not refused: ``sqrt(-1)`` gives exact ``"I"``, ``value`` null and a
note. Division by zero and infinite or undefined results (``log(0)``) are errors.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import selectors
import signal
import subprocess
import threading
import time
from typing import Any

from pydantic import BaseModel, Field

from agentbench.childproc import python_module_argv
from agentbench.errors import ToolError

from ._calc_eval import evaluate
from ._calc_parse import (
    MAX_DEPTH,
    MAX_EXACT_CHARS,
    MAX_EXPONENT,
    MAX_EXPRESSION_CHARS,
    MAX_FACTORIAL,
    MAX_LITERAL_DIGITS,
    MAX_LITERAL_EXPONENT,
    MAX_NODES,
    MAX_RESULT_DIGITS,
    MAX_ROUND_DIGITS,
    literal_value,
    parse_expression,
)
from .registry import ToolContext, register_tool

# Public names; the language, its limits and the evaluator are re-exported from _calc_parse and
# _calc_eval so that they stay importable from here.
__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MAX_DEPTH",
    "MAX_EXACT_CHARS",
    "MAX_EXPONENT",
    "MAX_EXPRESSION_CHARS",
    "MAX_FACTORIAL",
    "MAX_LITERAL_DIGITS",
    "MAX_LITERAL_EXPONENT",
    "MAX_NODES",
    "MAX_RESULT_DIGITS",
    "MAX_ROUND_DIGITS",
    "WORKER_COMMAND",
    "WORKER_START_TIMEOUT_S",
    "CalculatorArgs",
    "calculator",
    "evaluate",
    "literal_value",
    "parse_expression",
    "shutdown_worker",
    "worker_pid",
]

DEFAULT_TIMEOUT_S = 2.0
#: Starting the worker imports SymPy (about a second); that is not counted in the time limit.
WORKER_START_TIMEOUT_S = 60.0


class CalculatorArgs(BaseModel):
    expression: str = Field(
        description="One arithmetic expression in Python-like syntax, without variables or "
        "units, e.g. '67.50 * 15 / 100', 'sqrt(2) / 2', 'log(1000, 10)', '(1 + 0.05)**10'."
    )


# --------------------------------------------------------------------------- worker process

#: The worker program (:mod:`agentbench.tools._calc_worker`); see there for the protocol.
WORKER_COMMAND = tuple(python_module_argv("agentbench.tools._calc_worker"))
_CRASHED = "the calculation crashed (probably out of memory); try a smaller expression"


class _Worker:
    """Client of one lazily started evaluation subprocess per process, shared by all threads.

    Calls are serialised. A plain subprocess, not multiprocessing: ``spawn`` re-imports the
    parent's ``__main__`` (fails for ``python -`` and unguarded scripts) and ``fork`` is unsafe in
    a multi-threaded caller. The worker runs in its own process group, so a timeout kills the
    whole group.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._pending = bytearray()  # bytes read from the worker after the last full line

    def evaluate(self, expression: str, timeout: float) -> dict[str, Any]:
        """Evaluate in the worker; kill it and raise ``ToolError`` when ``timeout`` passes."""
        request = (json.dumps({"expression": expression}) + "\n").encode()
        with self._lock:
            proc = self._running()
            try:
                self._write(proc, request)
                line = self._read_line(proc, timeout)
                reply = None if line is None else json.loads(line)
            except (OSError, EOFError, ValueError):  # dead worker or garbled reply
                self._stop()
                raise ToolError(_CRASHED) from None
            except BaseException:  # e.g. Ctrl-C: a late reply must never answer the next call
                self._stop()
                raise
            if line is None:
                self._stop()  # the next call starts a fresh worker
                raise ToolError(f"calculation timed out after {timeout} s")
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), dict):
            error = reply.get("error") if isinstance(reply, dict) else None
            raise ToolError(str(error or "the calculator's worker sent an invalid reply"))
        return dict(reply["ok"])

    def pid(self) -> int | None:
        """The worker's process id, or ``None`` when none is running."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def stop(self) -> None:
        """Stop the worker if it runs (it restarts lazily on the next call)."""
        with self._lock:
            self._stop()

    def forget_after_fork(self) -> None:
        """In a forked child: drop the parent's worker without stopping it; the child starts its own."""
        self._lock = threading.Lock()
        proc, self._proc, self._pending = self._proc, None, bytearray()
        if proc is not None:
            _close_pipes(proc)

    def _running(self) -> subprocess.Popen[bytes]:
        """The live worker, started (and waited for) if needed."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._stop()
        try:
            self._proc = subprocess.Popen(
                WORKER_COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, start_new_session=True, bufsize=0,
                # the current directory is kept off the worker's sys.path (python_module_argv),
                # so a local ./resource.py or a source checkout cannot shadow what it imports

            )
            line = self._read_line(self._proc, WORKER_START_TIMEOUT_S)
            ready = line is not None and json.loads(line) == {"ready": True}
        except (OSError, EOFError, ValueError):
            ready = False
        except BaseException:
            self._stop()
            raise
        if not ready or self._proc is None:
            self._stop()
            raise ToolError("the calculator's worker process could not start")
        return self._proc

    @staticmethod
    def _write(proc: subprocess.Popen[bytes], data: bytes) -> None:
        """Write all of ``data`` to the worker's stdin (small: the pipe buffer never fills)."""
        assert proc.stdin is not None
        view = memoryview(data)
        while view:
            view = view[os.write(proc.stdin.fileno(), view):]

    def _read_line(self, proc: subprocess.Popen[bytes], timeout: float) -> bytes | None:
        """The worker's next line, ``None`` if none is complete within ``timeout`` seconds;
        ``EOFError`` if the worker closed its stdout (it died)."""
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._pending:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    return None
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise EOFError("the calculator's worker closed its output")
                self._pending += chunk
        end = self._pending.index(b"\n")
        line = bytes(self._pending[:end])
        del self._pending[: end + 1]
        return line

    def _stop(self) -> None:
        """Kill the worker's process group and reap the worker (caller holds the lock)."""
        proc, self._proc, self._pending = self._proc, None, bytearray()
        if proc is None:
            return
        if proc.returncode is None:  # not reaped yet, so its pid still names its process group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        _close_pipes(proc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)


def _close_pipes(proc: subprocess.Popen[bytes]) -> None:
    """Close this process's ends of the worker's pipes."""
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


_WORKER = _Worker()
atexit.register(_WORKER.stop)
os.register_at_fork(after_in_child=_WORKER.forget_after_fork)


def shutdown_worker() -> None:
    """Stop the evaluation worker now (tests and shutdown code; it restarts when next needed)."""
    _WORKER.stop()


def worker_pid() -> int | None:
    """Process id of the running evaluation worker, if any."""
    return _WORKER.pid()


def _timeout(ctx: ToolContext) -> float:
    """The run's time limit for one calculation (``ctx.options["calculator_timeout_s"]``)."""
    value = ctx.options.get("calculator_timeout_s", DEFAULT_TIMEOUT_S)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        return DEFAULT_TIMEOUT_S
    return float(value)


# --------------------------------------------------------------------------- the tool

_DESCRIPTION = """Evaluate an arithmetic expression exactly and return the result.
Use this for any calculation instead of doing arithmetic in your head: percentages, tips, prices,
unit conversions, powers, roots, logarithms, trigonometry. Write one expression in Python-like
syntax: numbers, + - * / // % ** and parentheses. Decimals are exact (0.1 + 0.2 is exactly 3/10).
'%' is modulo, not percent: 15% of 67.50 is 67.50 * 15 / 100. Use ** for powers, not ^.
Constants: pi, e, tau. Functions: sqrt, cbrt, exp, ln, log(x) (natural) or log(x, base), log10,
log2, sin, cos, tan, asin, acos, atan, atan2(y, x), sinh, cosh, tanh, asinh, acosh, atanh
(angles in radians; convert with radians(deg) and degrees(rad)), abs, round(x, ndigits) (half away
from zero), floor, ceil, factorial, gcd, lcm, min, max, hypot. No variables, units or text.
Returns JSON: "exact" (exact form, e.g. "81/8" or "sqrt(2)/2"), "numeric" (15 significant digits,
e.g. "10.125") and "value" (a number, or null if the result is complex).
Example: {"expression": "67.50 * 0.15"} returns
{"exact": "81/8", "numeric": "10.125", "value": 10.125}"""


@register_tool("calculator", CalculatorArgs, _DESCRIPTION, group="math")
def calculator(ctx: ToolContext, args: CalculatorArgs) -> dict[str, Any]:
    """Evaluate ``args.expression``: checked here, then computed in the time-limited worker."""
    parse_expression(args.expression)  # hostile input is refused here, without the worker
    return _WORKER.evaluate(args.expression, _timeout(ctx))
