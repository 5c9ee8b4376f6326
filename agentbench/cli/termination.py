"""SIGTERM as an interruption: `timeout`, a batch scheduler or `kill` stops a run or a bench the way Ctrl-C
does, so the finished part is stored before the process exits (Python's default SIGTERM action ends the
process at once: a bench cut by `timeout` after four of five points stored none of them)."""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType

__all__ = ["EXIT_TERMINATED", "SigtermInterrupts", "Terminated"]

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

    def _raise(self, signum: int, _frame: FrameType | None) -> None:
        self.received = True
        raise Terminated(signal.Signals(signum).name)

    def __enter__(self) -> SigtermInterrupts:
        self.installed = (threading.current_thread() is threading.main_thread()
                          and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)
        if self.installed:
            signal.signal(signal.SIGTERM, self._raise)
        return self

    def __exit__(self, _type: type[BaseException] | None, _exc: BaseException | None,
                 _tb: TracebackType | None) -> None:
        if self.installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
