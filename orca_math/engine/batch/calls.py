"""`BatchCalls`: the batch-mode sender of one job: wraps its clients, submits, polls, stores, resumes.

The runner calls `settle()` after each pass over a stage's items. It submits every waiting
request (split by `chunking`, at most `BatchOptions.max_open` batches open at once), polls with
backoff, downloads each ended batch and stores its results (`state`) before anything else, and
resubmits the requests that expired, failed or were cancelled, until each has its reply or has
used its attempts; a request that used them up fails its item in this run, and is sent again by the
next run (the same command again), as failed items are retried online. With ``wait=False`` it submits what it can and raises `RunPaused` ("rerun to
continue") while batches are still running; rerunning the same command polls them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orca_math.engine.batch.backends.base import BatchMissingError, BatchOutputLostError
from orca_math.engine.batch.batch_client import BatchClient
from orca_math.engine.batch.chunking import Limits, Prepared, chunks
from orca_math.engine.batch.lanes import Lane, choose_backend
from orca_math.engine.batch.options import BatchOptions, BatchPrices
from orca_math.engine.batch.state import BatchRecord, BatchState, state_path
from orca_math.engine.costs import BudgetExceededError
from orca_math.engine.items import RunStopped
from orca_math.models.errors import ModelError

logger = logging.getLogger(__name__)


class RunPaused(RunStopped):
    """Batches are still running at the provider (``--no-wait``): nothing is lost; rerun the same command later.

    Not an error: the CLI prints the message without "error:" and exits with status 3.
    """

    paused = True


class BatchStopped(RunStopped):
    """Batch mode cannot go on (a refused key, a budget that the next batch would pass); finished work is kept."""


class BatchCalls:
    """Batch-mode calls for the job whose output folder is `out` (see the module docstring).

    Args:
        out: the output folder; batch state and files live in ``out/batches``.
        options: the `BatchOptions`.
        wait: wait for batches to end (False: submit, then pause the run with `RunPaused`).
    """

    def __init__(self, out: str | Path, options: BatchOptions | None = None, *, wait: bool = True) -> None:
        self.out = Path(out)
        self.options = options or BatchOptions()
        self.wait = wait
        self._state: BatchState | None = None
        self.lanes: dict[tuple[str, str], Lane] = {}
        self.reservations: dict[str, float] = {}  # request key -> budget held since its batch was submitted
        self.meter: Any = None
        self.events: list[str] = []  # one line per batch submitted, ended or resubmitted (logs, summaries)
        # Requests given up while this object ran: they fail their items now. Ones given up by an
        # earlier run are sent again (see `BatchClient.create`). Only failures are held: few.
        self._failed_here: set[str] = set()

    @property
    def state(self) -> BatchState:
        if self._state is None:
            self._state = BatchState(state_path(self.out))
            _remove_stale_spools(self._state.folder)
        return self._state

    @property
    def price_multiplier(self) -> float:
        return self.options.price_multiplier

    def wrap(self, client: Any, *, meter: Any) -> BatchClient:
        """The batch-mode client for a stage's `client`; prices on `meter` become batch prices."""
        if not isinstance(meter.prices, BatchPrices):
            meter.prices = BatchPrices(meter.prices, self.options)
        self.meter = meter
        backend = choose_backend(client, self.options)
        lane = self.lanes.get((backend.name, backend.model))
        if lane is None:
            lane = self.lanes[(backend.name, backend.model)] = Lane(backend, backend.model)
        return BatchClient(self, client, lane, meter)

    def failed_in_this_run(self, key: str) -> bool:
        """Whether the request `key` used up its attempts in this run (not in an earlier one)."""
        return key in self._failed_here

    def _note_failed(self, batch_id: str) -> None:
        self._failed_here.update(self.state.failed_keys(batch_id))

    def pending(self) -> int:
        """Requests recorded and not yet submitted."""
        return sum(len(lane.pending) for lane in self.lanes.values())

    # ------------------------------------------------------------------ settle

    async def settle(self) -> None:
        """Submit what waits, poll until every request of this job's lanes has its reply or has failed.

        Raises:
            RunPaused: with ``wait=False``, while batches are still running (rerun to continue).
            BatchStopped: a refused key, or the next batch would pass the budget.
        """
        interval = self.options.poll_seconds
        try:
            while True:
                changed = await self._poll_open()  # first: what ended may free slots and add requests to resend
                changed |= await self._submit_waiting()
                if not self._open() and not self._waiting():
                    return
                if not self.wait:
                    raise RunPaused(self._paused_message())
                interval = self.options.poll_seconds if changed else min(interval * 1.5, self.options.max_poll_seconds)
                await asyncio.sleep(interval)
        finally:
            await self._close_backends()  # no HTTP session outlives a settle; the next one opens its own

    def _ours(self, record: BatchRecord) -> Lane | None:
        return self.lanes.get((record.backend, record.model))

    def _open(self) -> list[tuple[BatchRecord, Lane]]:
        found = []
        for record in self.state.batches(open_only=True):
            lane = self._ours(record)
            if lane is not None:
                found.append((record, lane))
        return found

    def _waiting(self) -> bool:
        return self.pending() > 0 or bool(self._retries())

    def _retries(self) -> dict[tuple[str, str], list[tuple[str, str, str]]]:
        """(key, custom_id, batch) of the requests waiting to be sent again, by lane; only for lanes of this job."""
        found: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
        for key, custom_id, batch, backend, model in self.state.retries():
            if (backend, model) in self.lanes:
                found.setdefault((backend, model), []).append((key, custom_id, batch))
        return found

    def _paused_message(self) -> str:
        running = [r for r, _ in self._open()]
        waiting = self.pending() + sum(len(v) for v in self._retries().values())

        def progress(record: BatchRecord) -> str:
            counts = record.counts or {}
            done = counts.get("completed", counts.get("succeeded"))
            return f"{record.remote_id or record.id}: {done if done is not None else '?'} of {record.requests} done"

        shown = "; ".join(progress(r) for r in running[:3]) + ("; ..." if len(running) > 3 else "")
        what = f"{len(running)} batch(es) still running at the provider ({shown})"
        if waiting:
            what += f" and {waiting} request(s) waiting for a free batch slot"
        return (f"Paused: {what}; nothing is lost. Rerun the same command to continue (most batches end within an hour, "
                f"all within 24 h); `orca-math status {self.out}` shows where they are.")

    async def _submit_waiting(self) -> bool:
        """Submit pending and to-be-resent requests, within limits and free slots; True when something was sent."""
        retries = self._retries()
        sent = False
        for name, lane in self.lanes.items():
            wanted = [w for w in retries.get(name, []) if w[0] not in lane.pending]
            resend = list(self._resend(wanted))
            lost = {key for key, _, _ in wanted} - {p.key for p in resend}
            if lost:  # their input lines are gone (a deleted batch folder): they cannot be sent again as they were
                self.state.give_up(lost, "its batch input file is gone, so it could not be sent again")
                self._failed_here.update(lost)
            waiting = [*lane.pending.values(), *resend]
            if not waiting:
                continue
            limits = Limits(self.options.max_requests or lane.backend.max_requests,
                            self.options.max_bytes or lane.backend.max_bytes, self.options.max_tokens)
            for chunk in chunks(waiting, limits):
                if len(self._open()) >= self.options.max_open:
                    return sent
                await self._submit(lane, chunk)
                sent = True
        return sent

    def _resend(self, requests: list[tuple[str, str, str]]) -> Iterator[Prepared]:
        """Requests to send again, read back from the input files of the batches they were last in."""
        wanted: dict[str, dict[str, str]] = {}
        for key, custom_id, batch_id in requests:
            wanted.setdefault(batch_id, {})[custom_id] = key
        for batch in self.state.batches():
            ids = wanted.get(batch.id)
            if not ids or not Path(batch.input_file).exists():
                continue
            with open(batch.input_file, "rb") as handle:
                offset = 0
                for raw in handle:
                    custom_id = json.loads(raw).get("custom_id")
                    if custom_id in ids:
                        yield Prepared(ids[custom_id], custom_id, len(raw), len(raw) // 4, batch.input_file, offset)
                    offset += len(raw)

    async def _submit(self, lane: Lane, chunk: list[Prepared]) -> None:
        held = self._reserve(lane, chunk)
        batch_id = self.state.next_batch_id()
        path = self.state.folder / f"{batch_id}.input.jsonl"
        if lane._spool is not None:
            lane._spool.flush()
        sources: dict[str, Any] = {}
        try:
            with open(path, "wb") as handle:
                for prepared in chunk:
                    if prepared.source not in sources:
                        sources[prepared.source] = open(prepared.source, "rb")  # noqa: SIM115 -- closed below
                    line = prepared.read(sources[prepared.source])
                    handle.write(line if line.endswith(b"\n") else line + b"\n")
        finally:
            for source in sources.values():
                source.close()
        record = BatchRecord(id=batch_id, backend=lane.backend.name, model=lane.model, state="prepared", input_file=str(path),
                             requests=len(chunk), prompt_tokens=sum(p.tokens for p in chunk))
        self.state.add_batch(record, ((p.key, p.custom_id) for p in chunk))
        for prepared in chunk:
            lane.pending.pop(prepared.key, None)
        lane.drop_spool()
        self.reservations.update(held)
        await self._send(record, lane)

    def _reserve(self, lane: Lane, chunk: list[Prepared]) -> dict[str, float]:
        """Hold each request's expected batch-price cost against the budget before submitting; all or none."""
        if self.meter is None or self.meter.budget is None:
            return {}
        held: dict[str, float] = {}
        completions = [p.completion or self.meter.expected_completion_tokens(lane.model) for p in chunk]
        try:
            for prepared, completion in zip(chunk, completions, strict=True):
                if prepared.key not in self.reservations:  # a resent request holds its first reservation still
                    held[prepared.key] = self.meter.reserve(lane.model, prepared.tokens, completion)
        except BudgetExceededError:
            for amount in held.values():
                self.meter.release(amount)
            expected = self.meter.prices.cost(lane.model, sum(p.tokens for p in chunk), sum(completions))
            raise BatchStopped(f"Stopped before submitting a batch of {len(chunk)} request(s) to {lane.model}: it is expected "
                               f"to cost up to ${expected:.4f} at the batch price, which with ${self.meter.cost_usd():.4f} spent "
                               f"and the batches in flight would pass the ${self.meter.budget.max_usd:.2f} budget; finished "
                               "work is saved (raise --budget-usd and rerun to go on).") from None
        return held

    async def _send(self, record: BatchRecord, lane: Lane) -> None:
        """Upload and create the batch, recording the file id and batch id as soon as each is known."""

        def on_file(file_id: str) -> None:
            record.file_id = file_id
            self.state.update_batch(record.id, file_id=file_id)

        try:
            remote_id = await lane.backend.submit(record, on_file)
        except ModelError as exc:
            if getattr(exc, "stops_run", False):
                raise BatchStopped(str(exc)) from None
            raise
        record.remote_id, record.state = remote_id, "submitted"
        self.state.update_batch(record.id, remote_id=remote_id, state="submitted")
        self._event(f"batch {record.id}: {record.requests} request(s) of {record.model} submitted as {remote_id}")

    # ------------------------------------------------------------------ poll

    async def _poll_open(self) -> bool:
        """Poll each open batch of this job once; store what ended. True when a batch ended."""
        changed = False
        for record, lane in self._open():
            if record.remote_id is None:  # prepared, but the process stopped before its id was recorded
                found = await lane.backend.find(record)
                if found is None:
                    await self._send(record, lane)
                    continue
                record.remote_id = found
                self.state.update_batch(record.id, remote_id=found, state="submitted")
            try:
                status = await lane.backend.poll(record)
            except BatchMissingError as exc:
                n = self.state.fail_batch(record.id, "missing", str(exc), max_attempts=self.options.max_attempts)
                self._note_failed(record.id)
                logger.warning("%s; its %d unanswered request(s) are submitted again.", exc, n)
                self._event(f"batch {record.id}: missing at the provider; {n} request(s) resubmitted")
                changed = True
                continue
            except ModelError as exc:
                if getattr(exc, "stops_run", False):
                    raise BatchStopped(str(exc)) from None
                logger.warning("Polling batch %s failed (%s); polling again later.", record.id, exc)
                continue
            self.state.update_batch(record.id, counts=status.counts)
            if status.state == "running":
                continue
            changed = True
            if status.state == "failed":
                n = self.state.fail_batch(record.id, "failed", f"the batch failed: {status.reason}",
                                          max_attempts=self.options.max_attempts)
                self._note_failed(record.id)
                self._event(f"batch {record.id}: failed at the provider ({status.reason}); {n} request(s) to resend or fail")
                continue
            await self._store(record, lane, status)
        return changed

    async def _store(self, record: BatchRecord, lane: Lane, status: Any) -> None:
        """Download the results to a file, then store them in one transaction (before any item is checkpointed)."""
        path = Path(record.input_file).with_name(f"{record.id}.output.jsonl")
        try:
            await lane.backend.download(record, status, path)
        except BatchOutputLostError as exc:
            n = self.state.fail_batch(record.id, "failed", str(exc), max_attempts=self.options.max_attempts)
            self._note_failed(record.id)
            self._event(f"batch {record.id}: {exc}; {n} request(s) to resend or fail")
            return
        counts = await asyncio.to_thread(self.state.store_results, record.id, lane.backend.read_file(path),
                                         max_attempts=self.options.max_attempts)
        self.state.update_batch(record.id, counts={**(status.counts or {}), "stored": counts})
        if counts["failed"]:
            self._note_failed(record.id)
        note = f" ({status.reason})" if status.reason else ""
        self._event(f"batch {record.id}: ended{note}: {counts['succeeded']} succeeded, {counts['retry']} to resend, "
                    f"{counts['failed']} failed, {counts['missing']} without a result line")

    def _event(self, line: str) -> None:
        self.events.append(line)
        logger.info(line)

    # ------------------------------------------------------------------ reports

    def summary(self) -> dict[str, Any]:
        """Batches and requests by state, the price multiplier, and what happened (for summaries and status)."""
        batches = self.state.batches()
        return {"mode": "batch", "price_multiplier": self.options.price_multiplier,
                "batches": [{"id": b.id, "remote_id": b.remote_id, "backend": b.backend, "model": b.model, "state": b.state,
                             "requests": b.requests, "counts": b.counts, "reason": b.reason} for b in batches],
                "requests": self.state.counts(), "events": list(self.events)}

    async def _close_backends(self) -> None:
        for lane in self.lanes.values():
            await lane.backend.close()

    async def close(self) -> None:
        """Release the backends' connections and the state file (batches at the provider go on)."""
        await self._close_backends()
        if self._state is not None:
            self._state.close()
            self._state = None


def _remove_stale_spools(folder: Path) -> None:
    """Spool files of runs that stopped with requests waiting: nothing in them was sent, and a rerun rebuilds them."""
    import os

    for path in folder.glob("waiting-*.spool"):
        pid = path.stem.rsplit("-", 1)[-1]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)  # signal 0: is that process still there?
        except ProcessLookupError:
            path.unlink(missing_ok=True)
        except PermissionError:  # someone else's process has that id now: the run that wrote it is gone
            path.unlink(missing_ok=True)


__all__ = ["BatchCalls", "BatchStopped", "Lane", "RunPaused", "choose_backend"]
