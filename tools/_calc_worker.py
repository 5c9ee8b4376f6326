"""The calculator's evaluation worker, run as ``python -m agentbench.tools._calc_worker``.

:mod:`agentbench.tools.calculator` starts it as a plain subprocess in its own session (so its own
process group), which the parent kills as a whole when a calculation overruns. Unlike
multiprocessing's ``spawn``, this never re-imports the parent's ``__main__`` script.

Protocol, JSON lines: once set up, the worker writes ``{"ready": true}``. For each request line
``{"expression": "..."}`` it writes exactly one reply line, ``{"ok": {...}}`` (the tool's result)
or ``{"error": "message"}``, and flushes. End of input: exit 0.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import threading
import time
from typing import IO, Any

from agentbench.errors import ToolError

from ._calc_eval import evaluate  # also re-exported by agentbench.tools.calculator

#: Address-space limit: a memory bomb fails with MemoryError here instead of exhausting the machine.
ADDRESS_SPACE_LIMIT = 2 * 1024**3
#: How often the worker checks that its parent is still alive.
PARENT_CHECK_S = 1.0


def _lower_limit(which: int, value: int) -> None:
    """Set resource ``which`` (soft and hard) to ``value``, or to the hard limit if that is lower."""
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def _protocol_stream() -> IO[bytes]:
    """A private copy of stdout for replies; fd 1 is then pointed at stderr (DEVNULL), so a stray
    ``print`` in library code cannot corrupt the protocol."""
    stream = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    return stream


def _exit_with_parent() -> None:
    """Exit if the parent dies during a long calculation (when idle, EOF on stdin does it)."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_S)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="calc-parent-watch", daemon=True).start()


def _line(message: dict[str, Any]) -> bytes:
    """``message`` as one JSON line (strict JSON: no NaN or infinity)."""
    return (json.dumps(message, allow_nan=False) + "\n").encode()


def reply_to(request: bytes) -> bytes:
    """The reply line for one request line; never raises for a bad request or a failed evaluation."""
    try:
        expression = json.loads(request)["expression"]
        return _line({"ok": evaluate(expression)})
    except ToolError as exc:
        return _line({"error": str(exc)})
    except MemoryError:
        return _line({"error": "the calculation ran out of memory; try a smaller expression"})
    except Exception as exc:  # SymPy refusing an odd value is an answer, not a crash
        message = f"could not evaluate the expression: {type(exc).__name__}: {exc}"
        return _line({"error": message[:500]})


def main() -> int:
    """Set up (signals, limits), announce readiness, then answer requests until end of input."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the parent
    _lower_limit(resource.RLIMIT_AS, ADDRESS_SPACE_LIMIT)
    _lower_limit(resource.RLIMIT_CORE, 0)
    out = _protocol_stream()
    _exit_with_parent()
    out.write(_line({"ready": True}))
    out.flush()
    for request in sys.stdin.buffer:
        out.write(reply_to(request))
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
