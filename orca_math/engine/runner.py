"""Run a step over many items, checkpointing every outcome: the one runner every workload uses.

The runner knows nothing about agents: it takes items (dicts), a key function and an async
`process(item) -> ItemResult`, and guarantees that every item ends as exactly one checkpoint line,
"ok" (with its outputs and drops) or "failed" (with a reason, and the rows it still passes on when
its `ItemFailedError` carries `outputs`). Items already "ok" in the
checkpoint are skipped, so rerunning resumes; "failed" ones are tried again. *Where* items run is
the executor's business (`orca_math.engine.executors`); everything written is written here.

In batch mode a model call can be deferred (`CallDeferred`): the item is not recorded, the
`calls` object sends the waiting requests as a batch and waits for them (`settle`), and the
runner offers the deferred items again, until none is left.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from orca_math.engine.checkpoint import CheckpointFile
from orca_math.engine.executors import Executor, LocalExecutor, Outcome, RemoteStage, StepTask
from orca_math.engine.gc_tuning import tuned_gc
from orca_math.engine.items import CallDeferred, ItemFailedError, ItemResult, RunStopped
from orca_math.engine.reasons import failure_group, failure_label, failure_status
from orca_math.errors import ConfigError
from orca_math.models.errors import ModelError, scrub, scrub_exception
from orca_math.records import Failure, Usage

logger = logging.getLogger(__name__)


class ProgressHook(Protocol):
    def advance(self, n: int = 1) -> None: ...


class DeferredCalls(Protocol):
    """The batch-mode side of the runner: sends deferred calls and waits for their replies."""

    def pending(self) -> int:
        """Calls deferred and not yet sent."""

    async def settle(self) -> None:
        """Send every deferred call and wait until their replies can be served (or raise to pause the run)."""


@dataclass
class StageStats:
    """Counts for one step run: how many items went in, were skipped as already done, and ended how."""

    name: str
    inputs: int = 0
    skipped: int = 0
    ok: int = 0
    failed: int = 0
    deferred_passes: int = 0
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
    """Errors that will fail every item alike (their class says `stops_run`): stop the run instead."""
    return bool(getattr(exc, "stops_run", False))


ItemSource = Iterable[dict[str, Any]] | Callable[[], Iterable[dict[str, Any]]]


async def run_items(
    name: str,
    items: ItemSource,
    process: Callable[[dict[str, Any]], Awaitable[ItemResult]],
    checkpoint: CheckpointFile,
    *,
    key: Callable[[dict[str, Any]], str] = lambda item: item["id"],
    concurrency: int = 8,
    progress: ProgressHook | None = None,
    tune_gc: bool = True,
    stop_after_same_failures: int | None = SAME_FAILURE_STOP,
    executor: Executor | None = None,
    remote: RemoteStage | None = None,
    calls: DeferredCalls | None = None,
    redo: Collection[str] = (),
) -> StageStats:
    """Process every item not yet done, `concurrency` at a time, appending one line per item.

    Args:
        name: the step's name (failure rows and messages).
        items: the items, or a function returning a fresh pass over them (needed to offer
            deferred items again without holding them in memory).
        process: processes one item (in this process; remote executors use `remote`).
        checkpoint: the step's checkpoint file.
        key: an item's checkpoint key.
        concurrency: items in flight at once (per worker for remote executors).
        progress: advanced once per item, skipped ones included.
        tune_gc: tune the garbage collector for the run's duration (see `orca_math.engine.gc_tuning`):
            at hundreds of calls in flight it otherwise takes a fifth of the CPU.
        stop_after_same_failures: when the first this-many items processed all fail the same way
            (same error class and status, or the same agent reason), stop with `RunStopped`: their
            failure rows are kept, and a rerun retries them. None never stops early.
        executor: where items run (default: `LocalExecutor`).
        remote: how remote workers rebuild the step (for executors that need it).
        calls: the batch-mode sender of deferred calls; None when calls are made online.
        redo: keys whose "ok" results no longer hold (a `needs_whole_input` step that decides
            differently now that more of its input is there): they are processed again, and
            their new line supersedes the old one.

    Checkpoint lines whose keys are not among `items` (an earlier step dropped the row on
    resume, or a line was copied in) are moved aside (`CheckpointFile.set_aside`) once every
    item has been seen, so no reader outputs them.

    Raises:
        RunStopped: a fatal error (see `is_fatal`) or an early stop; items in flight are not
            recorded and will be retried when the run is resumed.
    """
    if concurrency < 1:
        raise ConfigError("concurrency must be at least 1")
    stats = StageStats(name)
    started = time.perf_counter()
    statuses = checkpoint.statuses()
    for item_key in redo:
        if statuses.get(item_key) == "ok":
            statuses[item_key] = "redo"
    unseen = set(statuses)  # keys recorded earlier and not (yet) among this run's items
    seen_all: list[bool] = []
    stop: list[BaseException] = []
    same_failure = _SameFailureStop(name, stop_after_same_failures)
    deferred: set[str] = set()
    deferred_items: dict[str, dict[str, Any]] = {}  # only when `items` cannot be read twice
    rereadable = callable(items) or isinstance(items, list | tuple)

    def passes() -> Iterable[dict[str, Any]]:
        return items() if callable(items) else items  # type: ignore[operator]

    def first_pass() -> Iterator[dict[str, Any]]:
        for item in passes():
            stats.inputs += 1
            item_key = key(item)
            unseen.discard(item_key)
            if statuses.get(item_key) == "ok":
                stats.skipped += 1
                if progress is not None:
                    progress.advance()
                continue
            yield item
        seen_all.append(True)

    def deferred_pass(waiting: set[str]) -> Iterator[dict[str, Any]]:
        if not rereadable:
            yield from (deferred_items.pop(k) for k in list(waiting) if k in deferred_items)
            return
        for item in passes():
            if key(item) in waiting:
                yield item

    def record(item: dict[str, Any], outcome: Outcome) -> bool:
        item_key = key(item)
        if isinstance(outcome, CallDeferred):
            deferred.add(item_key)
            if not rereadable:
                deferred_items[item_key] = item
            return not stop
        deferred.discard(item_key)
        if isinstance(outcome, BaseException):
            if is_fatal(outcome):
                stop.append(outcome)
                return False
            row = _record_failure(checkpoint, name, item_key, item, outcome)
            stats.failed += 1
            why = same_failure.observe(row)
            if why is not None:
                stop.append(RunStopped(why))
        else:
            checkpoint.append({"key": item_key, "status": "ok", "outputs": outcome.outputs, "drops": outcome.drops,
                               "usage": outcome.usage.to_row()})
            stats.ok += 1
            same_failure.observe(None)
        if progress is not None:
            progress.advance()
        return not stop

    def task(source: Iterator[dict[str, Any]]) -> StepTask:
        return StepTask(name=name, items=source, key=key, process=process, record=record, stopped=lambda: bool(stop),
                        concurrency=concurrency, remote=remote)

    executor = executor or LocalExecutor()
    try:
        with tuned_gc(tune_gc):
            await executor.run(task(first_pass()))
            while deferred and not stop:
                if calls is None:
                    raise RuntimeError(f"{name}: {len(deferred)} item(s) deferred a call, but the run makes calls online")
                await calls.settle()
                stats.deferred_passes += 1
                waiting = set(deferred)
                await executor.run(task(deferred_pass(waiting)))
    finally:
        checkpoint.close()
        stats.seconds = time.perf_counter() - started
    if stop:
        raise RunStopped(scrub(str(stop[0]))) from scrub_exception(stop[0])
    if seen_all and unseen:
        _set_aside_stale(checkpoint, name, unseen)
    return stats


def _set_aside_stale(checkpoint: CheckpointFile, name: str, keys: set[str]) -> None:
    """Move aside the lines of keys that are no longer inputs: their rows must not be output again."""
    moved = checkpoint.set_aside(keys)
    if moved:
        logger.info("%s: %d recorded item(s) are no longer among its inputs (an earlier step decided differently, or "
                    "a line was copied in); their %d line(s) moved to %s", name, len(keys), moved, checkpoint.stale_path)


def _record_failure(checkpoint: CheckpointFile, name: str, item_key: str, item: dict[str, Any],
                    exc: BaseException) -> dict[str, Any]:
    """Append the failure line of an item and return its failure row; failed items spent tokens too."""
    usage = getattr(exc, "usage", None)
    failure = _failure(name, item_key, item, exc)
    if failure.status is None:
        failure.status = failure_status(exc)
    row = failure.to_row()
    record = {"key": item_key, "status": "failed", "failure": row,
              "usage": usage.to_row() if isinstance(usage, Usage) else Usage().to_row()}
    outputs = getattr(exc, "outputs", None)
    if isinstance(exc, ItemFailedError) and outputs:  # a failure that still passes rows on (see ItemFailedError)
        record["outputs"] = outputs
    checkpoint.append(record)
    return row


def records_in_order(checkpoint: CheckpointFile, keys: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Each key's last checkpoint record, in `keys` order.

    Raises:
        RuntimeError: a key has no record (cannot happen after a finished `run_items`; never hidden).
    """
    for key, record in checkpoint.in_key_order(keys):
        if record is None:
            raise RuntimeError(f"item {key} has no checkpoint record in {checkpoint.path}")
        yield record


def results_in_order(checkpoint: CheckpointFile, keys: Iterable[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """For one-output-per-item steps: the output of each "ok" key and the failure row of each failed one."""
    failures: list[dict[str, Any]] = []
    outputs = list(outputs_in_order(checkpoint, keys, failures))
    return outputs, failures


def outputs_in_order(checkpoint: CheckpointFile, keys: Iterable[str], failures: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """`results_in_order` streamed: yields each "ok" key's output and appends failure rows to `failures`."""
    for record in records_in_order(checkpoint, keys):
        if record["status"] == "ok":
            yield record["outputs"][0]
        else:
            failures.append(Failure.model_validate(record["failure"]).to_row())


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
