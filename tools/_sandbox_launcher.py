"""Sets resource limits on itself, then replaces itself with the target program.

Run inside the sandbox as ``python -I -S -c <this file's text> CPU AS NPROC FSIZE NOFILE -- ARGV...``
(:mod:`agentbench.tools.sandbox` passes the source text, since the agentbench checkout is not
visible inside the sandbox). The limits are set here, in the child, rather than with
``preexec_fn`` in the parent: ``preexec_fn`` is unsafe in a multi-threaded parent.

Standard library only, and only modules that ``-I -S`` start-up loads anyway, so this costs
little more than a bare interpreter start.
"""

from __future__ import annotations

import os
import resource
import sys

#: The order of the limit arguments on the command line.
LIMITS = (
    resource.RLIMIT_CPU,
    resource.RLIMIT_AS,
    resource.RLIMIT_NPROC,
    resource.RLIMIT_FSIZE,
    resource.RLIMIT_NOFILE,
)


def _lower(which: int, value: int) -> None:
    """Set soft and hard limit of ``which`` to ``value`` (never above the inherited hard limit)."""
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def main(args: list[str]) -> int:
    """Apply the limits in ``args`` and exec the target; 127 if the arguments or the exec fail."""
    try:
        split = args.index("--")
        values = [int(v) for v in args[:split]]
        target = args[split + 1 :]
        if len(values) != len(LIMITS) or not target:
            raise ValueError("expected CPU AS NPROC FSIZE NOFILE -- ARGV...")
    except ValueError as exc:
        sys.stderr.write(f"sandbox launcher: bad arguments: {exc}\n")
        return 127
    for which, value in zip(LIMITS, values):
        _lower(which, value)
    _lower(resource.RLIMIT_CORE, 0)  # a crash must not write a core file into the workspace
    try:
        os.execv(target[0], target)
    except OSError as exc:
        sys.stderr.write(f"sandbox launcher: cannot run {target[0]}: {exc.strerror}\n")
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
