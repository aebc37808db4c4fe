"""Run an async step over many items with bounded concurrency, checkpointing every result.

The runner knows nothing about agents: it takes items (dicts), a key function and an async
`process(item) -> ItemResult`, and guarantees that every item ends as exactly one checkpoint line,
"ok" (with its outputs and drops) or "failed" (with a reason). Items already "ok" in the
checkpoint are skipped, so rerunning resumes; "failed" ones are tried again.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from orca_math.engine.checkpoint import CheckpointFile
from orca_math.engine.gc_tuning import tuned_gc
from orca_math.engine.reasons import failure_group, failure_label, failure_status
from orca_math.models.errors import BadRequestError, ModelError, scrub, scrub_exception
from orca_math.records import Failure, Usage


@dataclass
class ItemResult:
    """What processing one item produced: rows for the next stage, rows dropped on purpose, tokens."""

    outputs: list[dict[str, Any]] = field(default_factory=list)
    drops: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)


class ItemFailedError(Exception):
    """Raise from `process` to record a failure with a clear reason (and the raw reply, if any)."""

    def __init__(self, reason: str, *, raw_reply: str | None = None, attempts: int = 1, usage: Usage | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw_reply = raw_reply
        self.attempts = attempts
        self.usage = usage or Usage()


class RunStopped(RuntimeError):
    """The run stopped before finishing (breaker open, budget reached, bad key). Finished work is kept."""


class ProgressHook(Protocol):
    def advance(self, n: int = 1) -> None: ...


@dataclass
class StageStats:
    """Counts for one stage run: how many items went in, were skipped as already done, and ended how."""

    name: str
    inputs: int = 0
    skipped: int = 0
    ok: int = 0
    failed: int = 0
    seconds: float = 0.0


#: A step whose first this-many items all fail the same way stops (a 400 for every request, say).
SAME_FAILURE_STOP = 20


class _SameFailureStop:
    """Watches a step's first items: when the first `limit` all failed alike, every other item would too."""

    def __init__(self, name: str, limit: int | None) -> None:
        self.name = name
        self.limit = limit
        self.watching = bool(limit)
        self.group: tuple[str, ...] | None = None
        self.label = ""
        self.count = 0

    def observe(self, failure: dict[str, Any] | None) -> str | None:
        """Note one finished item (its failure row, None when it succeeded); returns why to stop, or None."""
        if not self.watching:
            return None
        group = failure_group(failure) if failure is not None else None
        if group is None or (self.group is not None and group != self.group):
            self.watching = False  # a success, or two different failures: nothing systematic
            return None
        if self.group is None:
            self.group, self.label = group, failure_label(failure)  # type: ignore[arg-type]
        self.count += 1
        if self.count < (self.limit or 0):
            return None
        self.watching = False
        return (f"the first {self.count} items of {self.name} all failed the same way ({self.label}); stopped before "
                "spending more on it: fix the cause and run the same command again (failed items are retried)")


def is_fatal(exc: BaseException) -> bool:
    """Errors that will fail every item alike: stop the run instead of recording each as a failure."""
    if getattr(exc, "stops_run", False) or type(exc).__name__ in ("CircuitOpenError", "BudgetExceededError"):
        return True
    return isinstance(exc, ModelError) and not exc.retryable and not isinstance(exc, BadRequestError) and type(exc).__name__ != "RetriesExhaustedError"


async def run_items(
    name: str,
    items: Iterable[dict[str, Any]],
    process: Callable[[dict[str, Any]], Awaitable[ItemResult]],
    checkpoint: CheckpointFile,
    *,
    key: Callable[[dict[str, Any]], str] = lambda item: item["id"],
    concurrency: int = 8,
    progress: ProgressHook | None = None,
    tune_gc: bool = True,
    stop_after_same_failures: int | None = SAME_FAILURE_STOP,
) -> StageStats:
    """Process every item not yet done, `concurrency` at a time, appending one line per item.

    With `tune_gc` (the default) the garbage collector is tuned for the run's duration (see
    `orca_math.engine.gc_tuning`): at hundreds of calls in flight it otherwise takes a fifth of the CPU.

    When the first `stop_after_same_failures` items processed all fail the same way (same error
    class and status, or the same agent reason), the step stops with `RunStopped`: their failure
    rows are kept, and a rerun retries them. None never stops early.

    Raises:
        RunStopped: a fatal error (see `is_fatal`); items in flight are not recorded and will be
            retried when the run is resumed.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    stats = StageStats(name)
    started = time.perf_counter()
    statuses = checkpoint.statuses()
    pending = iter(items)
    stop: list[BaseException] = []
    same_failure = _SameFailureStop(name, stop_after_same_failures)

    def next_item() -> dict[str, Any] | None:
        """The next item still to do, counting skips; None when the input is exhausted or the run stops.

        Workers pull straight from the (lazy) input: asyncio runs one worker at a time, so no queue
        (and no future per item) is needed to share it, and memory holds only the items in flight.
        """
        while not stop:
            item = next(pending, None)
            if item is None:
                return None
            stats.inputs += 1
            if statuses.get(key(item)) == "ok":
                stats.skipped += 1
                if progress is not None:
                    progress.advance()
                continue
            return item
        return None

    async def worker() -> None:
        while (item := next_item()) is not None:
            item_key = key(item)
            try:
                result = await process(item)
            except Exception as exc:
                if is_fatal(exc):
                    stop.append(exc)
                    return
                # Failed items spent tokens too: keep them, so funnels and budgets count every call.
                usage = getattr(exc, "usage", None)
                failure = _failure(name, item_key, item, exc)
                if failure.status is None:
                    failure.status = failure_status(exc)
                row = failure.to_row()
                checkpoint.append(
                    {
                        "key": item_key,
                        "status": "failed",
                        "failure": row,
                        "usage": usage.to_row() if isinstance(usage, Usage) else Usage().to_row(),
                    }
                )
                stats.failed += 1
                why = same_failure.observe(row)
                if why is not None:
                    stop.append(RunStopped(why))
            else:
                checkpoint.append(
                    {"key": item_key, "status": "ok", "outputs": result.outputs, "drops": result.drops, "usage": result.usage.to_row()}
                )
                stats.ok += 1
                same_failure.observe(None)
            if progress is not None:
                progress.advance()

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    try:
        with tuned_gc(tune_gc):
            await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        checkpoint.close()
        stats.seconds = time.perf_counter() - started
    if stop:
        raise RunStopped(scrub(str(stop[0]))) from scrub_exception(stop[0])
    return stats


def records_in_order(checkpoint: CheckpointFile, keys: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Each key's last checkpoint record, in `keys` order.

    Raises:
        RuntimeError: a key has no record (cannot happen after a finished `run_items`; never hidden).
    """
    latest = {record["key"]: record for record in checkpoint.latest()}
    for key in keys:
        record = latest.get(key)
        if record is None:
            raise RuntimeError(f"item {key} has no checkpoint record in {checkpoint.path}")
        yield record


def results_in_order(checkpoint: CheckpointFile, keys: Iterable[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """For one-output-per-item steps: the output of each "ok" key and the failure row of each failed one."""
    outputs, failures = [], []
    for record in records_in_order(checkpoint, keys):
        if record["status"] == "ok":
            outputs.append(record["outputs"][0])
        else:
            failures.append(Failure.model_validate(record["failure"]).to_row())
    return outputs, failures


def _failure(stage: str, item_key: str, item: dict[str, Any], exc: BaseException) -> Failure:
    """The failure row of an item. Its texts are scrubbed of secrets: any error may quote a server's echo."""
    if isinstance(exc, ItemFailedError):
        return Failure(id=item_key, stage=stage, reason=scrub(exc.reason), error_type="ItemFailedError", attempts=exc.attempts,
                       raw_reply=_scrubbed(exc.raw_reply), input=item)
    attempts = getattr(exc, "attempts", 1)
    raw = getattr(exc, "raw_reply", None)
    reason = str(exc) or type(exc).__name__
    if not isinstance(exc, ModelError | ValueError):
        reason = f"{type(exc).__name__}: {reason} ({traceback.format_exception_only(exc)[-1].strip()})"
    return Failure(id=item_key, stage=stage, reason=scrub(reason), error_type=type(exc).__name__, attempts=int(attempts),
                   raw_reply=_scrubbed(raw), input=item)


def _scrubbed(text: str | None) -> str | None:
    return scrub(text) if isinstance(text, str) else text
