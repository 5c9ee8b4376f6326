"""SIGTERM as an interruption: `timeout`, a batch scheduler or `kill` stops a run or a bench the way Ctrl-C
does, so the finished part is stored before the process exits (Python's default SIGTERM action ends the
process at once: a bench cut by `timeout` after four of five points stored none of them).

Inside ``asyncio.run`` Ctrl-C does not raise where the interpreter happens to be: asyncio's runner cancels
the main task, so every coroutine unwinds at an ``await`` and its ``finally`` blocks run. SIGTERM takes
the same path there (the runner's own SIGINT handler is called), so it never lands between two lines of a
store's write; the runner then raises a plain KeyboardInterrupt, which :func:`as_terminated` names as
what it was. Outside an event loop SIGTERM raises :class:`Terminated` at once, as Ctrl-C raises there."""

from __future__ import annotations

import asyncio
import functools
import signal
import threading
from types import FrameType, TracebackType

__all__ = ["EXIT_INTERRUPTED", "EXIT_TERMINATED", "SigtermInterrupts", "Terminated", "as_terminated", "interruption"]

EXIT_INTERRUPTED = 130  # 128 + SIGINT: Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process that SIGTERM ended


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM. A KeyboardInterrupt, so every path that keeps the finished
    part of its work on Ctrl-C does so here too."""


class SigtermInterrupts:
    """Within the ``with`` block SIGTERM raises :class:`Terminated` in the main thread, and ``received``
    tells afterwards whether it came (typer reports any KeyboardInterrupt as exit 130; the caller turns
    that into 143). Only a default (SIG_DFL) handler is replaced, only from the main thread, and it is
    restored on leaving, so a program that embeds the CLI keeps its own handling."""

    def __init__(self) -> None:
        self.installed = False
        self.received = False

    def _interrupt(self, signum: int, frame: FrameType | None) -> None:
        if self.received:  # one is enough: a second must not cut short the unwinding the first began
            return
        self.received = True
        on_sigint = signal.getsignal(signal.SIGINT)
        if callable(on_sigint) and _is_asyncio_runner(on_sigint):
            on_sigint(signal.SIGINT, frame)  # cancels the main task, as Ctrl-C does
            return
        raise Terminated(signal.Signals(signum).name)

    def __enter__(self) -> SigtermInterrupts:
        global _latest
        _latest = self
        self.installed = (threading.current_thread() is threading.main_thread()
                          and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)
        if self.installed:
            signal.signal(signal.SIGTERM, self._interrupt)
        return self

    def __exit__(self, _type: type[BaseException] | None, _exc: BaseException | None,
                 _tb: TracebackType | None) -> None:
        if self.installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


_latest: SigtermInterrupts | None = None  # the block entered last: whether SIGTERM came is its `received`


def _is_asyncio_runner(handler: object) -> bool:
    """Whether ``handler`` is the SIGINT handler ``asyncio.run`` installs (it cancels the main task; Python
    3.11+: 3.10's asyncio.run installs none, and SIGTERM raises there as Ctrl-C does)."""
    runner = getattr(asyncio, "Runner", None)
    return (runner is not None and isinstance(handler, functools.partial)
            and isinstance(getattr(handler.func, "__self__", None), runner))


def as_terminated(exc: BaseException) -> BaseException:
    """``exc``, or :class:`Terminated` when it is the KeyboardInterrupt that asyncio's runner raised after
    SIGTERM cancelled its task (so callers tell SIGTERM from Ctrl-C by type alone)."""
    if _latest is not None and _latest.received and type(exc) is KeyboardInterrupt:
        return Terminated(signal.Signals.SIGTERM.name)
    return exc


def interruption(exc: BaseException) -> tuple[str, int]:
    """What a KeyboardInterrupt that ended a command was, for its message, and the exit code to report:
    ``("terminated (SIGTERM)", 143)`` or ``("interrupted", 130)``."""
    if isinstance(as_terminated(exc), Terminated):
        return "terminated (SIGTERM)", EXIT_TERMINATED
    return "interrupted", EXIT_INTERRUPTED
