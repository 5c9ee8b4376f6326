"""A scenario worker process: runs the scenario runs it is sent and streams their results back.

Started by ``agentbench.runner.workers`` as ``python -m agentbench.runner.worker_main``, so the
parent's main script is never re-imported (multiprocessing's spawn would). Protocol, JSON lines:
the first stdin line is the job (model spec, run id, scenario folders, tool options, concurrency);
every further line is one item ``{"scenario_id", "repeat"}``. Each finished run is printed as one
``ScenarioResult`` line. End of stdin: finish what is in flight, then exit.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

from agentbench.models.backends import Backend, make_backend
from agentbench.models.registry import ModelSpec
from agentbench.runner.execute import failed_result, run_scenario
from agentbench.scenario.loader import ScenarioLibrary, load_library


def _exit_when_orphaned() -> None:
    """Exit if the parent dies: results are only stored by the parent, so they would be lost."""
    parent = os.getppid()
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


async def _lines() -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=2**26)
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def _serve(job: dict[str, Any], library: ScenarioLibrary, backend: Backend,
                 reader: asyncio.StreamReader, results: TextIO) -> None:
    gate = asyncio.Semaphore(int(job["concurrency"]))
    tasks: set[asyncio.Task[None]] = set()

    async def one(item: dict[str, Any]) -> None:
        scenario = library.get(item["scenario_id"])
        try:
            async with gate:
                result = await run_scenario(scenario, backend, run_id=job["run_id"], repeat=int(item["repeat"]),
                                            tool_options=job["tool_options"])
        except BaseException:  # every item gets an answer, or the parent would wait for it forever
            result = failed_result(scenario, job["model_spec"]["key"], job["run_id"], int(item["repeat"]),
                                   traceback.format_exc(limit=20))
        results.write(result.model_dump_json() + "\n")
        results.flush()

    while line := await reader.readline():
        task = asyncio.create_task(one(json.loads(line)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)


async def _main(results: TextIO) -> None:
    reader = await _lines()
    job = json.loads(await reader.readline())
    library = load_library([Path(p) for p in job["scenarios_dirs"]])
    backend = make_backend(ModelSpec.model_validate(job["model_spec"]))
    await backend.start()
    try:
        await _serve(job, library, backend, reader, results)
    finally:
        await backend.stop()


def main() -> None:
    """Entry point of the worker process."""
    threading.Thread(target=_exit_when_orphaned, daemon=True).start()
    # Everything imported so far lives as long as the process: keep the collector from
    # rescanning it on every generation-2 pass.
    gc.freeze()
    # Results go to a private copy of stdout; fd 1 now points at stderr, so a stray print in
    # some library cannot corrupt the protocol.
    results = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    asyncio.run(_main(results))


if __name__ == "__main__":
    main()
