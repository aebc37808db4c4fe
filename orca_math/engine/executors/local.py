"""The default executor: asyncio workers in this process (the contract is in `orca_math.engine.executors.base`)."""

from __future__ import annotations

import asyncio
from typing import Any

from orca_math.engine.executors.base import Executor, Outcome, StepTask
from orca_math.engine.parking import ItemPool


class LocalExecutor(Executor):
    """asyncio workers in this process: `task.concurrency` items in flight, pulled from the lazy input.

    Workers pull straight from the iterator: asyncio runs one worker at a time, so no queue (and
    no future per item) is needed to share it, and memory holds only the items in flight. An
    item whose call only waits (a retry's back-off, a Retry-After, a hung request) parks, and
    another worker takes its place meanwhile (see `orca_math.engine.parking`), up to
    `max_parked_factor` times `task.concurrency` extra items. (Under issue #21's fault mix about
    eight items per slot wait at any time; hung requests among them are bounded by the adaptive
    limit's `max_hung`, the rest hold no connection.)
    """

    name = "local"
    processes_here = True

    def __init__(self, *, max_parked_factor: int = 16) -> None:
        self.max_parked_factor = max_parked_factor

    async def run(self, task: StepTask) -> None:
        def next_item() -> dict[str, Any] | None:
            return None if task.stopped() else next(task.items, None)

        async def worker() -> None:
            pool.enter()
            retired = False
            try:
                while (item := next_item()) is not None:
                    try:
                        outcome: Outcome = await task.process(item)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        outcome = exc
                    if not task.record(item, outcome):
                        return
                    if pool.retire():  # it was started for a parked item that works again
                        retired = True
                        return
            finally:
                if not retired:
                    pool.leave()

        workers: set[asyncio.Task[None]] = set()
        pool = ItemPool(task.concurrency, lambda: workers.add(asyncio.create_task(worker())),
                        max_extra=self.max_parked_factor * task.concurrency)
        pool.start(task.concurrency)
        try:
            while workers:  # the pool may start workers while others run
                done, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
                workers.difference_update(done)
                for finished in done:
                    finished.result()
        finally:
            for worker_task in workers:
                worker_task.cancel()


__all__ = ["LocalExecutor"]
