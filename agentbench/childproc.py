"""Starting agentbench's own helper processes (scenario workers, the calculator's worker).

``python -m agentbench.x`` puts the current directory first on ``sys.path``; run from a source
checkout, that imports the checkout's ``agentbench/`` folder, which lacks ``agentbench.tools``
and ``agentbench.graphs`` (they are mapped in at install time), instead of the installed package.
``PYTHONSAFEPATH``/``-P`` fix this only on Python >= 3.11, so the child drops the current
directory from ``sys.path`` itself before importing anything, and keeps its working directory.
"""

from __future__ import annotations

import sys

_BOOTSTRAP = (
    "import runpy, sys; "
    "sys.path[:] = [p for p in sys.path if p not in ('', '.')]; "
    "runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
)


def python_module_argv(module: str) -> list[str]:
    """The command that runs ``module`` as ``__main__`` in a fresh interpreter, safely."""
    return [sys.executable, "-c", _BOOTSTRAP.format(module=module)]
