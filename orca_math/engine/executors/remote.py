"""The worker side of a remote executor: one worker per process, binding stages to its own managed clients.

Nothing here imports Ray at module level: a Slurm or Dask executor would reuse the worker, the
error packing and the model packing as they are. A step's model reaches the worker as a
`orca_math.models.ModelRef` (plain data), and the worker builds its own client from it. The Ray executor
(`orca_math.engine.executors.ray`) runs a `StageWorker` as an async Ray actor. The driver sends it chunks of items with the id of the
step they belong to and a reference to that step's `RemoteStage`; the first chunk of a step makes
the worker unpickle the stage (its configuration), build its client with `build_client` (sharing the
response cache file and, through `orca_math.engine.executors.ledgers`, the budget and the rate caps) and
bind it, which loads the stage's runtime objects in the worker (`Stage.load`). Items run concurrently on the actor's event loop, at most `concurrency` at a time; a chunk
streams back one outcome per item as it finishes, an `ItemResult` or the exception (packed so that
any exception class travels, see `pack_error`). The worker writes nothing: the driver records every
outcome.

A worker restarted by Ray after a crash starts empty and binds the step again on its next chunk.
"""

from __future__ import annotations

import asyncio
import os
import pickle
from dataclasses import dataclass
from typing import Any

from orca_math.engine.stage import close_stages

#: Outcome kinds in a chunk's reply.
OK, ERROR, NOT_STARTED = "ok", "error", "not_started"


@dataclass
class PackedError:
    """An exception reduced to its class, args and attributes, so that any exception class can travel.

    Exceptions whose `__init__` takes keyword-only arguments (most of orca-math's) cannot be
    unpickled the default way; this rebuilds one without calling `__init__`.
    """

    cls: type
    args: tuple
    state: dict[str, Any]

    def unpack(self) -> BaseException:
        try:
            exc = self.cls.__new__(self.cls)
            exc.args = self.args
            exc.__dict__.update({k: v.unpack() if isinstance(v, PackedError) else v for k, v in self.state.items()})
            return exc
        except Exception:  # an exception class that cannot be rebuilt: keep its words
            return RuntimeError(f"{getattr(self.cls, '__name__', 'error')}: {' '.join(map(str, self.args))}")


def pack_error(exc: BaseException, depth: int = 0) -> PackedError:
    """`exc` as a `PackedError`; attributes that do not pickle become their text."""
    state: dict[str, Any] = {}
    for name, value in vars(exc).items():
        if isinstance(value, BaseException):
            state[name] = pack_error(value, depth + 1) if depth < 3 else str(value)
            continue
        try:
            pickle.dumps(value)
            state[name] = value
        except Exception:
            state[name] = str(value)
    args = tuple(a if isinstance(a, str | int | float | bool | type(None)) else str(a) for a in exc.args)
    return PackedError(type(exc), args, state)


class _Binding:
    """One step bound in this worker: the stage over its client, its output check, its concurrency."""

    def __init__(self, stage: Any, check_output: Any, concurrency: int) -> None:
        self.stage = stage
        self.check_output = check_output
        self.slots = asyncio.Semaphore(concurrency)
        self.stopped = False


class StageWorker:
    """The body of a worker actor (`RayExecutor` wraps it in ``ray.remote``).

    Args:
        index: this worker's number, 0 .. workers - 1.
        workers: how many workers share the rate caps and the budget.
        ledger: the `BudgetLedger` actor, or None without a budget.
    """

    def __init__(self, index: int, workers: int, ledger: Any = None) -> None:
        self.index, self.workers, self.ledger = index, workers, ledger
        self._bindings: dict[str, _Binding] = {}
        self._binding_locks: dict[str, asyncio.Lock] = {}
        self._clients: dict[str, Any] = {}
        self._caches: dict[str, Any] = {}
        self._meter: Any = None

    async def ping(self) -> int:
        """The worker's process id (a liveness check that also waits for a restart)."""
        return os.getpid()

    async def process(self, step: str, holder: list[Any], items: list[dict[str, Any]], concurrency: int):
        """Process a chunk of one step's items, yielding [(position, kind, payload), ...] as items finish.

        A Ray streaming generator: the driver records each outcome as soon as it is yielded, so a
        slow reply holds back only its own item, not the rest of its chunk.

        Args:
            step: the step's id (a new id binds a new stage).
            holder: ``[ref]``, a reference to the step's `RemoteStage` (in a list, so that Ray does
                not fetch it for every chunk).
            items: the items.
            concurrency: the most items of this step in flight in this worker.
        """
        try:
            binding = await self._binding(step, holder, concurrency)
        except Exception as exc:  # a model that cannot be built fails every item alike (it stops the run if fatal)
            packed = pack_error(exc)
            yield [(position, ERROR, packed) for position in range(len(items))]
            return
        running = {asyncio.ensure_future(self._one(binding, item)): position for position, item in enumerate(items)}
        try:
            while running:
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                # Everything that finished together goes back as one object: few per chunk when
                # the actor is busy, one per item when replies come one by one.
                yield [(running.pop(future), *future.result()) for future in done]
        finally:  # cancelled by the driver (a stop): the items still running are not recorded, and are retried on resume
            for future in running:
                future.cancel()

    async def stop(self, step: str) -> None:
        """Start no more items of `step` (items already running finish)."""
        binding = self._bindings.get(step)
        if binding is not None:
            binding.stopped = True

    async def close(self) -> None:
        """Unload every stage this worker loaded (`Stage.unload`), and close every client and cache it built."""
        await close_stages(binding.stage for binding in self._bindings.values())
        for client in self._clients.values():
            await client.close()
        for cache in self._caches.values():
            cache.close()
        self._bindings.clear()
        self._clients.clear()
        self._caches.clear()

    async def _one(self, binding: _Binding, item: dict[str, Any]) -> tuple[str, Any]:
        async with binding.slots:
            if binding.stopped:
                return NOT_STARTED, None
            try:
                result = await binding.stage.process(item)
                if binding.check_output is not None:
                    for output in result.outputs:
                        binding.check_output(binding.stage, output)
                return OK, result
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                return ERROR, pack_error(exc)

    async def _binding(self, step: str, holder: list[Any], concurrency: int) -> _Binding:
        binding = self._bindings.get(step)
        if binding is not None:
            return binding
        lock = self._binding_locks.setdefault(step, asyncio.Lock())
        async with lock:  # the first chunks of a step arrive together: bind once
            if step not in self._bindings:
                remote = await holder[0]
                stage = remote.stage
                stage.bind(self._client(remote) if getattr(stage, "calls_model", True) else None)
                self._bindings[step] = _Binding(stage, remote.check_output, concurrency)
        return self._bindings[step]

    def _client(self, remote: Any) -> Any:
        """The managed client for the step's model, built once per model and engine config."""
        if remote.model is None:
            return None
        model = remote.model
        # In-memory only: a ref's options (its key too) tell two refs apart; a shipped client is named by its identity.
        named = model.identity if isinstance(model, TravellingClient) else (model.spec, model.options)
        key = repr((named, remote.engine.model_dump_json(exclude={"retry"}), remote.engine.retry))
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = self._build(remote)
        return client

    def _build(self, remote: Any) -> Any:
        from orca_math.engine.config import build_client
        from orca_math.engine.costs import PriceTable, UsageMeter
        from orca_math.engine.executors.ledgers import LeasedMeter, SplitRateLimits

        config = remote.engine
        if self._meter is None:  # one meter per worker: one lease account for every model, like one budget locally
            prices = PriceTable(dict(config.prices))
            if remote.budget_usd is not None and self.ledger is not None:
                self._meter = LeasedMeter(prices, budget_usd=remote.budget_usd, ledger=self.ledger, worker=self.index,
                                          earlier_usd=remote.spent_before_usd)
            else:
                self._meter = UsageMeter(prices)
        cache = None
        if remote.cache_path is not None:
            from orca_math.engine.cache import ResponseCache

            cache = self._caches.get(remote.cache_path) or self._caches.setdefault(remote.cache_path, ResponseCache(remote.cache_path))
        limits = SplitRateLimits(self.workers, config.requests_per_minute, config.tokens_per_minute,
                                 learn_from_headers=config.learn_rate_limits)
        # The worker's end of the model walk: the ref becomes a client here, where its calls are made.
        return build_client(unpack_model(remote.model), config, cache=cache, meter=self._meter,
                            client_options={"rate_limits": limits})


@dataclass
class TravellingClient:
    """A ready client the caller passed, on its way to a worker: the client (it pickles) and its identity."""

    client: Any
    identity: Any


def pack_model(model: Any) -> Any:
    """`model` in the form a worker builds its client from: a `ModelRef` as it is, a spec as a `ModelRef`.

    A client the caller built travels only if it pickles (a scripted client does; one holding
    sessions, locks or weights does not), with its identity, so its name keys the cache and
    prices as on the driver.

    Raises:
        ConfigError: a client that cannot be pickled, in one sentence.
    """
    from orca_math.models import ModelRef, as_model

    if model is None or isinstance(model, ModelRef):
        return model
    if isinstance(model, str):
        return as_model(model)
    from orca_math.models.identity import identity_of

    try:
        from ray import cloudpickle

        cloudpickle.dumps(model)
    except Exception as exc:
        from orca_math.errors import ConfigError

        raise ConfigError(
            f"the Ray executor builds the model in every worker, but this {type(model).__name__} is a ready client that "
            f"cannot be pickled ({type(exc).__name__}); pass the model as a spec such as 'openai:gpt-4o-mini' or "
            "ModelRef('http://HOST:8000/v1', model='NAME'), or run on the local executor") from None
    return TravellingClient(client=model, identity=identity_of(model))


def unpack_model(model: Any) -> Any:
    """What a worker hands `build_client`: the `ModelRef`, or the shipped client (its identity registered again)."""
    if not isinstance(model, TravellingClient):
        return model
    from orca_math.models.identity import register_identity

    if model.identity is not None:
        register_identity(model.client, model.identity)  # the same name in cache keys and prices as on the driver
    return model.client


__all__ = ["ERROR", "NOT_STARTED", "OK", "PackedError", "StageWorker", "TravellingClient", "pack_error", "pack_model",
           "unpack_model"]
