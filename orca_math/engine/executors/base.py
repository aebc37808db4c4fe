"""Where a step's items run: the executor. The runner decides what to run and records every outcome.

An executor takes a `StepTask` — the pending items (a lazy iterator), how to process one, and a
`record` callback — and runs them. It never writes checkpoints: the runner's `record` does, so
resume, failure rows, early stops and budgets are written once and hold for every executor.

* `orca_math.engine.executors.local.LocalExecutor` (the default): asyncio workers in this
  process, many calls in flight.
* `orca_math.engine.executors.ray.RayExecutor`: the same items over a Ray actor pool, for more
  than one process or machine; it rebuilds the stage in each worker from `StepTask.remote`, with
  the Ray-free pieces of `orca_math.engine.executors.remote` (the worker, error packing) and
  `orca_math.engine.executors.ledgers` (the shared budget and rate caps).

Executors are chosen by name through `orca_math.engine.executors.registry` (``--executor``,
``executor="ray"``), which other packages extend with entry points.

A subclass implements `run(task)`; it must hand every item it takes to `task.record` exactly once
(with the `ItemResult` or the exception), stop taking new items when `record` returns False or
`task.stopped()` is true, and return once every taken item is recorded.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from orca_math.engine.items import ItemResult

Outcome = ItemResult | BaseException


@dataclass
class RemoteStage:
    """What a remote worker needs to rebuild a stage: the unbound stage and how to build its client.

    Attributes:
        stage: the stage; it pickles as its configuration (no client, agents or `runtime`
            objects), and the worker binds its copy, which loads them there (`Stage.load`).
        model: the stage's model: a `orca_math.models.ModelRef` (spec and load options), which the
            worker builds its client from, or a client the caller passed (shipped only if it pickles,
            see `orca_math.engine.executors.remote.pack_model`); None for a stage that calls none.
        engine: the `EngineConfig` to build the worker's managed client with.
        cache_path: the response cache file shared by every worker, or None.
        check_output: the job's check of each output (declared dataset columns), or None; it
            raises `ItemFailedError` to fail the item, and must be applied where the stage runs.
        budget_usd: what is left of the job's budget when the step starts (earlier runs' spending
            taken off), or None without a budget: remote workers share it.
        spent_before_usd: what earlier runs of the job spent (for the budget's messages).
    """

    stage: Any
    model: Any
    engine: Any
    cache_path: str | None = None
    check_output: Any = None
    budget_usd: float | None = None
    spent_before_usd: float = 0.0


@dataclass
class StepTask:
    """One step's work, as the runner hands it to an executor.

    Attributes:
        name: the step (stage) name, for messages.
        items: the items still to do, pulled lazily.
        key: an item's checkpoint key.
        process: processes one item in this process (local executors).
        record: records one item's outcome; returns False when the run must stop.
        stopped: true once the run must stop (a fatal error, an early stop).
        concurrency: items in flight at once (per worker, for remote executors).
        remote: how remote workers rebuild the stage, or None when it cannot leave this process.
    """

    name: str
    items: Iterator[dict[str, Any]]
    key: Callable[[dict[str, Any]], str]
    process: Callable[[dict[str, Any]], Awaitable[ItemResult]]
    record: Callable[[dict[str, Any], Outcome], bool]
    stopped: Callable[[], bool]
    concurrency: int
    remote: RemoteStage | None = None


class Executor(ABC):
    """Runs a step's items; see the module docstring for the contract a subclass keeps."""

    #: A short name for manifests and logs ("local", "ray").
    name: str = ""
    #: Whether the steps' model calls run in this process. An executor whose workers build their own
    #: clients says False, and the driver then binds `orca_math.models.worker_loaded` stand-ins
    #: instead of loading ``vllm:`` / ``hf:`` checkpoints it would never call.
    loads_models_here: bool = True
    #: Whether items are processed by `StepTask.process` in this process. Batch mode needs it: its
    #: deferred calls are collected and sent to the provider by this process.
    processes_here: bool = False

    @abstractmethod
    async def run(self, task: StepTask) -> None:
        """Process the task's items, handing each outcome to `task.record`."""

    def describe(self) -> dict[str, Any]:
        """Key-free settings for the run's manifest (never part of the run key)."""
        return {"executor": self.name}

    async def close(self) -> None:  # noqa: B027 -- optional hook
        """Release what the executor started (worker pools, clusters it started itself)."""


__all__ = ["Executor", "Outcome", "RemoteStage", "StepTask"]
