"""`RayExecutor`: a step's items over a pool of Ray actors, on a local cluster or a real one.

    pipeline = Pipeline(model="openai:gpt-4o-mini", executor=RayExecutor(workers=4))
    pipeline = Pipeline(model=spec, executor=RayExecutor(address="auto"))  # join `ray start --head`

How work flows (see docs/ray.md):

* **The driver is the single writer.** It pulls the step's items lazily, sends them in small
  chunks to the workers (`orca_math.engine.executors.remote.StageWorker`, async actors with many calls
  in flight each), and hands every outcome that comes back to `task.record`, the runner's one
  writer of checkpoints, failure rows and stops. Only the driver needs the run folder; workers
  share nothing but the response cache file (sqlite WAL) when it is on a shared disk.
* **Memory stays flat:** at most ``per-worker concurrency + 2 chunks`` items per worker are out
  at once; nothing reads the whole input.
* **Outcomes stream back one by one:** a chunk is a Ray streaming generator, so each item is
  recorded as soon as it finishes, and a slow reply holds back only its own item (a chunk that
  returned whole waited for its slowest item: with 1% of replies 2 s late, one worker fell to
  half the local executor's speed).
* **Nothing is recorded twice:** an item is recorded once, by the driver, when its outcome comes
  back. A worker that dies loses the calls it had in flight (replies already received are in the
  response cache); its unrecorded items go to other workers, and Ray restarts it. An item whose
  worker died `MAX_WORKER_DEATHS` times fails with that reason instead of killing workers forever.
* **Steps that call no model run on the driver** (verify, filter, dedup, decontaminate): they are
  cheap, and dedup's whole-input index lives where `prepare` built it.
* **Limits** are shared as `orca_math.engine.executors.ledgers` describes: the budget by leases from one
  ledger actor, rate caps split between workers. A fatal error in any worker (401, breaker,
  budget) travels back as the same exception and stops the run with the same sentence.

Why not Ray Data's ``map_batches``: its inputs are datasources or in-memory lists (the runner's
items are a lazy iterator on the driver), its results come back a block at a time (so the
checkpoints lag, and a driver crash loses finished work), and it cannot be told to stop starting
rows while those in flight finish; the actor pool does all three (measured in docs/ray.md).
`orca_math.engine.executors.ray.llm` uses Ray Data where it pays: vLLM engines on GPUs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections import deque
from collections.abc import Mapping
from typing import Any

from orca_math.engine.executors.base import Executor, StepTask
from orca_math.engine.executors.local import LocalExecutor
from orca_math.engine.executors.remote import NOT_STARTED, PackedError, StageWorker, pack_model
from orca_math.engine.items import ItemFailedError, RunStopped
from orca_math.errors import ConfigError

logger = logging.getLogger(__name__)

#: An item whose worker died this many times while it was in flight fails (with that reason).
MAX_WORKER_DEATHS = 3
#: Seconds a dead worker may take to come back (Ray restarts it) before the driver gives up on it.
RESTART_WAIT_S = 120.0
#: At most this many workers when none is asked for (each has its own concurrency limit).
DEFAULT_MAX_WORKERS = 8


class RayExecutor(Executor):
    """Runs steps that call a model over a pool of Ray actors; see the module docstring.

    Args:
        address: None starts a local cluster on this machine (or uses the one this process is
            connected to already); "auto" joins the cluster started with ``ray start --head`` on
            this machine; "ray://HOST:10001" joins a remote one through Ray Client.
        workers: worker actors (default: the cluster's CPUs, at most `DEFAULT_MAX_WORKERS`).
        per_worker_concurrency: items in flight per worker (default: the engine's concurrency, so
            N workers have N times the calls in flight of one local run).
        resources: what each worker reserves: ``{"CPU": 1}`` by default; ``"GPU"``, ``"memory"``
            and custom resources are accepted too.
        chunk_size: items per message to a worker (default: a quarter of its concurrency, at most 16).
        num_cpus: CPUs of a local cluster this executor starts (default: this machine's).
        runtime_env: Ray runtime environment for the workers (``{"env_vars": {...}}``, ``pip``, ...).
        llm: "auto" (default) samples and answers with a ``vllm:`` model through
            `ray.data.llm` when the cluster has GPUs; "vllm" or "http" always (see
            `orca_math.engine.executors.ray.llm`); "off" never.
    """

    name = "ray"
    loads_models_here = False  # every worker builds its own client from the spec

    def __init__(self, address: str | None = None, *, workers: int | None = None, per_worker_concurrency: int | None = None,
                 resources: Mapping[str, float] | None = None, chunk_size: int | None = None, num_cpus: int | None = None,
                 runtime_env: Mapping[str, Any] | None = None, llm: str = "auto", llm_options: Mapping[str, Any] | None = None) -> None:
        for label, value in (("workers", workers), ("per_worker_concurrency", per_worker_concurrency),
                             ("chunk_size", chunk_size), ("num_cpus", num_cpus)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"RayExecutor({label}={value!r}): give a positive whole number.")
        if llm not in ("auto", "vllm", "http", "off"):
            raise ConfigError(f"RayExecutor(llm={llm!r}): use 'auto', 'vllm', 'http' or 'off'.")
        self.address, self.workers, self.per_worker_concurrency = address, workers, per_worker_concurrency
        self.resources = dict(resources or {"CPU": 1})
        self.chunk_size, self.num_cpus, self.runtime_env = chunk_size, num_cpus, dict(runtime_env or {})
        self.llm, self.llm_options = llm, dict(llm_options or {})
        self._pool: list[Any] = []
        self._ledger: Any = None

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "address": self.address or "local", "workers": self.workers}

    def worker_handles(self) -> list[Any]:
        """The worker actors of the step running now (empty between jobs): for monitoring and tests."""
        return list(self._pool)

    # ------------------------------------------------------------------ the cluster and its workers

    def connect(self) -> None:
        """Start or join the cluster (once per process); see `address`."""
        import ray

        if ray.is_initialized():
            return
        options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
        if self.runtime_env:
            options["runtime_env"] = self.runtime_env
        if self.address is not None:
            ray.init(address=self.address, **options)
            return
        from orca_math.processes import descendants, end_processes

        before = descendants()
        try:
            ray.init(num_cpus=self.num_cpus or os.cpu_count() or 1, **options)
        except Exception as exc:
            # A node that fails to start is never handed to ray.shutdown(): its GCS and raylet
            # would linger for minutes. End what this call started, then say what to do.
            ray.shutdown()
            end_processes(descendants() - before)
            if "timed out during startup" not in str(exc):
                raise
            raise ConfigError("Ray's local cluster did not start in time (its node timed out during startup, which "
                              "happens on busy cores); the processes it started were stopped: run again when the "
                              "machine is less loaded, start a cluster first with `ray start --head` and pass "
                              "--ray-address auto, or leave out --executor ray.") from None

    def _worker_count(self) -> int:
        import ray

        if self.workers is not None:
            return self.workers
        return max(1, min(DEFAULT_MAX_WORKERS, int(ray.cluster_resources().get("CPU", 1))))

    async def _ensure_pool(self, budget_usd: float | None) -> list[Any]:
        if self._pool:
            return self._pool
        import ray

        from orca_math.engine.executors.ledgers import BudgetLedger

        count = self._worker_count()
        if budget_usd is not None:
            self._ledger = ray.remote(num_cpus=0)(BudgetLedger).remote(budget_usd, count)
        options: dict[str, Any] = {"max_concurrency": 10_000, "max_restarts": -1, "max_task_retries": 0,
                                   "scheduling_strategy": "SPREAD", **_actor_resources(self.resources)}
        if self.runtime_env:
            options["runtime_env"] = self.runtime_env
        actor = ray.remote(StageWorker).options(**options)
        self._pool = [actor.remote(index, count, self._ledger) for index in range(count)]
        await asyncio.gather(*(worker.ping.remote() for worker in self._pool))  # started: errors show here
        return self._pool

    async def close(self) -> None:
        """Close the workers' clients and end the worker actors (a cluster started here stays up until exit)."""
        import ray

        pool, self._pool = self._pool, []
        if pool:
            await asyncio.gather(*(worker.close.remote() for worker in pool), return_exceptions=True)
        for actor in [*pool, self._ledger]:
            if actor is not None:
                ray.kill(actor, no_restart=True)
        self._ledger = None

    # ------------------------------------------------------------------ running a step

    async def run(self, task: StepTask) -> None:
        remote = task.remote
        if remote is None or not getattr(remote.stage, "calls_model", True) or remote.model is None:
            await LocalExecutor().run(task)  # cheap, or needs the driver's state (dedup's index)
            return
        import dataclasses

        import ray

        self.connect()
        concurrency = self.per_worker_concurrency or task.concurrency
        engine = remote.engine
        if self.per_worker_concurrency is not None:
            engine = engine.model_copy(update={"concurrency": self.per_worker_concurrency})
        shipped = dataclasses.replace(remote, model=pack_model(remote.model), engine=engine)
        from orca_math.engine.executors.ray.llm import llm_path

        path = llm_path(self, remote)
        if path is not None:
            await path.run(task, shipped)
            return
        try:
            stage_ref = ray.put(shipped)
        except Exception as exc:
            raise ConfigError(f"stage {task.name!r} cannot be sent to Ray workers ({type(exc).__name__}: {exc}); "
                              "its configuration must pickle: build clients, open files and other runtime objects in load() and name "
                              "them in the stage's `runtime`, not in __init__") from None
        pool = await self._ensure_pool(remote.budget_usd)
        chunk = self.chunk_size or max(1, min(16, concurrency // 4))
        await _Dispatch(task, pool, f"{task.name}-{uuid.uuid4().hex[:8]}", stage_ref, concurrency, chunk).run()


def _actor_resources(resources: Mapping[str, float]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    custom = {}
    for name, amount in resources.items():
        if name in ("CPU", "num_cpus"):
            options["num_cpus"] = amount
        elif name in ("GPU", "num_gpus"):
            options["num_gpus"] = amount
        elif name == "memory":
            options["memory"] = amount
        else:
            custom[name] = amount
    if custom:
        options["resources"] = custom
    return options


class _Dispatch:
    """One step on the pool: chunks out, outcomes recorded, dead workers' items sent again."""

    def __init__(self, task: StepTask, pool: list[Any], step: str, stage_ref: Any, concurrency: int, chunk: int) -> None:
        self.task, self.step, self.holder = task, step, [stage_ref]
        self.concurrency, self.chunk = concurrency, chunk
        self.limit = concurrency + 2 * chunk  # items out per worker: a chunk is always queued behind the running ones
        self.workers = list(pool)
        self.out = [0] * len(pool)
        self.up = [True] * len(pool)
        self.gone = [False] * len(pool)
        self.again: deque[dict[str, Any]] = deque()  # items of chunks whose worker died
        self.deaths: dict[str, int] = {}
        self.running: dict[asyncio.Future, Any] = {}  # chunk consumer -> the worker's stream it reads
        self.probes: dict[asyncio.Future, int] = {}
        self.stopping = False
        self.exhausted = False

    async def run(self) -> None:
        try:
            while True:
                self._fill()
                if not self.running:
                    if self.stopping or (self.exhausted and not self.again):
                        return
                    if not self.probes:
                        raise RunStopped(f"every Ray worker of {self.task.name} died and none came back; finished work "
                                         "is saved, rerun the same command to resume")
                done, _ = await asyncio.wait([*self.running, *self.probes], return_when=asyncio.FIRST_COMPLETED)
                for future in done:
                    if future in self.probes:
                        self._probed(future)
                    elif future in self.running:
                        self.running.pop(future)
                        future.result()  # the consumer handles every outcome; this raises only on a bug
        except BaseException:
            self._cancel()
            raise

    def _next(self) -> dict[str, Any] | None:
        if self.stopping or self.task.stopped():
            self._stop()
            return None
        if self.again:
            return self.again.popleft()
        if self.exhausted:
            return None
        item = next(self.task.items, None)
        if item is None:
            self.exhausted = True
        return item

    def _fill(self) -> None:
        # Round robin over live workers with room, one chunk each per turn, until nothing fits or is left.
        progress = True
        while progress and not self.stopping:
            progress = False
            for index in range(len(self.workers)):
                if not self.up[index] or self.out[index] + self.chunk > self.limit:
                    continue
                items = []
                while len(items) < self.chunk and (item := self._next()) is not None:
                    items.append(item)
                if not items:
                    return
                self._send(index, items)
                progress = True

    def _send(self, index: int, items: list[dict[str, Any]]) -> None:
        stream = self.workers[index].process.remote(self.step, self.holder, items, self.concurrency)
        future = asyncio.ensure_future(self._consume(index, items, stream))
        self.running[future] = stream
        self.out[index] += len(items)

    async def _consume(self, index: int, items: list[dict[str, Any]], stream: Any) -> None:
        """Record each of a chunk's outcomes as the worker streams it back; send the unfinished ones again if it dies."""
        import ray.exceptions as errors

        pending = dict(enumerate(items))
        try:
            async for ref in stream:
                for position, kind, payload in await ref:
                    item = pending.pop(position)
                    self.out[index] -= 1
                    if kind != NOT_STARTED:  # not started because of a stop: retried on resume
                        self._record(item, payload.unpack() if isinstance(payload, PackedError) else payload)
                self._fill()  # room for another chunk: the consumer sends it, no wake-up of the main loop needed
        except (errors.RayActorError, errors.ObjectLostError, errors.OwnerDiedError) as exc:
            self._worker_died(index, list(pending.values()), exc)
        except errors.TaskCancelledError:
            pass  # cancelled by a stop: its unfinished items are not recorded, and are retried on resume
        except errors.RayTaskError as exc:  # the worker's code failed outside any one item: fail the unfinished items
            cause = exc.as_instanceof_cause()
            for item in list(pending.values()):
                self._record(item, cause)
        finally:
            self.out[index] -= len(pending)

    def _record(self, item: dict[str, Any], outcome: Any) -> None:
        if not self.task.record(item, outcome):
            self._stop()

    def _worker_died(self, index: int, items: list[dict[str, Any]], exc: BaseException) -> None:
        if self.up[index]:
            logger.warning("Ray worker %d of %s died (%s); its %d unfinished item(s) go to other workers",
                           index, self.task.name, type(exc).__name__, len(items))
            self.up[index] = False
            self.probes[asyncio.ensure_future(_wait_for_restart(self.workers[index]))] = index
        for item in items:
            key = self.task.key(item)
            self.deaths[key] = self.deaths.get(key, 0) + 1
            if self.deaths[key] >= MAX_WORKER_DEATHS:
                failure = ItemFailedError(f"a Ray worker died {self.deaths[key]} times while processing this item "
                                          "(out of memory, or killed); see the Ray logs")
                if not self.task.record(item, failure):
                    self._stop()
            elif not self.stopping:
                self.again.append(item)

    def _probed(self, future: asyncio.Future) -> None:
        index = self.probes.pop(future)
        if future.exception() is None:
            self.up[index] = True
        else:
            self.gone[index] = True
            logger.warning("Ray worker %d of %s did not come back (%s)", index, self.task.name, future.exception())

    def _stop(self) -> None:
        # Like the local executor: start nothing new, let what runs finish and be recorded.
        if not self.stopping:
            self.stopping = True
            for worker, gone in zip(self.workers, self.gone, strict=True):
                if not gone:
                    worker.stop.remote(self.step)

    def _cancel(self) -> None:
        import ray

        self._stop()
        for future, stream in list(self.running.items()):
            future.cancel()
            try:
                ray.cancel(stream)
            except Exception:  # already finished, or its worker is gone
                pass
        for probe in self.probes:
            probe.cancel()


async def _awaited(ref: Any) -> Any:
    return await ref


async def _wait_for_restart(worker: Any) -> None:
    """Returns once `worker` answers again (Ray restarted it); raises when it stays dead."""
    import ray.exceptions as errors

    deadline = asyncio.get_running_loop().time() + RESTART_WAIT_S
    while True:
        try:
            await asyncio.wait_for(_awaited(worker.ping.remote()), timeout=RESTART_WAIT_S)
            return
        except errors.ActorUnavailableError:  # restarting: ask again in a moment
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


__all__ = ["DEFAULT_MAX_WORKERS", "MAX_WORKER_DEATHS", "RayExecutor"]
