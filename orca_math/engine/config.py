"""One engine configuration, and the one function that builds managed clients from it.

`EngineConfig` is frozen and typed: retries, concurrency, the breaker, rate caps, the response
cache, the budget, prices and GC tuning, for every job. `Engine` holds what a job's clients share
(one response cache, one usage meter, hence one budget) and builds one `ManagedClient` per model
through `build_client`, the single place a client is wrapped: `Pipeline`, sampling, labelling,
evaluation, the learning loop and the CLI all go through it.

    engine = Engine(EngineConfig(concurrency=64, budget_usd=20, prices={"my-model": (0.5, 1.5)}), out="runs/x")
    client = engine.client("openai:gpt-4o-mini")
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orca_math.engine.items import RunStopped
from orca_math.errors import ConfigError


class EngineConfig(BaseModel):
    """How a job calls its models. Nothing here enters a run key: it changes speed and safety, not results.

    Attributes:
        concurrency: the most calls in flight (the adaptive limit's ceiling).
        managed: wrap clients in `ManagedClient` (retries, adaptive concurrency, breaker, cache,
            metering); off calls the clients as they are.
        cache: True keeps a response cache at `OUT/cache.sqlite`; a path puts it elsewhere (share
            one between jobs); False turns it off.
        retry: the `RetryPolicy` (attempts, backoff, per-attempt timeout).
        timeout: seconds per attempt, overriding `retry.timeout` when set.
        breaker: stop hammering an endpoint that fails every call, and end the run if it stays down.
        requests_per_minute, tokens_per_minute: rate caps (None: none, unless learned).
        learn_rate_limits: adopt caps from providers' ``x-ratelimit-*`` headers.
        budget_usd: stop cleanly before a call could take the job's spending (resumes included)
            over this many USD; needs a price for every model called.
        prices: USD per million (input, output) tokens by model name, on top of the defaults.
        tune_gc: tune Python's garbage collector while steps run (`orca_math.engine.gc_tuning`).
        progress: show a progress bar per step.
        items_per_slot: with managed clients, how many items are worked on per call slot (default 1).
            An item whose call waits out a back-off or a Retry-After, or hangs, already gives its
            place to another item while it waits (`orca_math.engine.parking`, local executor);
            more items per slot also cover the time an item spends between two calls. The cost:
            when an endpoint starts failing, more calls are already on their way before the
            breaker opens.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    concurrency: int = Field(16, ge=1)
    managed: bool = True
    cache: bool | Path = True
    retry: Any = None
    timeout: float | None = Field(None, gt=0)
    breaker: bool = True
    requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: float | None = Field(None, gt=0)
    learn_rate_limits: bool = True
    budget_usd: float | None = Field(None, gt=0)
    prices: Mapping[str, tuple[float, float]] = Field(default_factory=dict)
    tune_gc: bool = True
    progress: bool = True
    items_per_slot: int = Field(1, ge=1)

    @field_validator("budget_usd")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number of USD")
        return value

    @classmethod
    def of(cls, **values: Any) -> EngineConfig:
        """Build a config; a bad value raises `ConfigError` naming the field, in one sentence."""
        try:
            return cls(**values)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"]) or "config"
            if error["type"] == "extra_forbidden":
                raise ConfigError(f"EngineConfig has no option {field!r}; options: {', '.join(cls.model_fields)}.") from None
            raise ConfigError(f"EngineConfig option {field}={error.get('input')!r}: {error['msg']}.") from None

    @property
    def items_in_flight(self) -> int:
        """Items worked on at once: `concurrency` slots, times `items_per_slot` when calls are managed."""
        return self.concurrency * (self.items_per_slot if self.managed else 1)

    def retry_policy(self):
        """The `RetryPolicy` in force (the default one when none was given), with `timeout` applied."""
        import dataclasses

        from orca_math.engine.client import RetryPolicy

        policy = self.retry if self.retry is not None else RetryPolicy()
        if not isinstance(policy, RetryPolicy):
            raise ConfigError(f"EngineConfig option retry must be a RetryPolicy, not {type(policy).__name__}.")
        return dataclasses.replace(policy, timeout=self.timeout) if self.timeout is not None else policy


def build_client(model: Any, config: EngineConfig, *, cache: Any = None, meter: Any = None,
                 client_options: Mapping[str, Any] | None = None, **load_options: Any):
    """The client a job calls `model` through: resolved from a spec, wrapped in a `ManagedClient`.

    Args:
        model: a `ModelRef`, a model spec or a `ChatCompletionClient` (a `ManagedClient` is used as it is).
        config: the engine configuration.
        cache: the shared `ResponseCache`, or None.
        meter: the shared `UsageMeter` (one budget for every model), or None for a fresh one.
        client_options: deprecated `ManagedClient` keyword arguments that override the config
            (`Pipeline(client_options=...)`).
        **load_options: `load_model` options under a spec's or `ModelRef`'s own (the ref's win).
    """
    from orca_math.engine.client import ManagedClient
    from orca_math.engine.concurrency import AdaptiveConcurrency
    from orca_math.engine.limits import CircuitBreaker, RateLimits
    from orca_math.models import as_model, resolve_model
    from orca_math.models.identity import identity_of

    # A spec becomes a `ModelRef`, whose own options win over `load_options`; a client is used as it is.
    client = resolve_model(as_model(model, **load_options))
    if not config.managed or isinstance(client, ManagedClient):
        return client
    import dataclasses

    retry, ceiling = config.retry_policy(), config.concurrency
    identity = identity_of(client)
    if identity.one_at_a_time:
        # Calls to an in-process model only queue for it: one in flight, and no per-attempt timeout,
        # which would cut a long generation (its thread runs on) and retry it behind the same lock.
        retry, ceiling = dataclasses.replace(retry, timeout=None), 1
    elif identity.queues_calls:
        # A batching engine (vLLM in-process) queues calls itself: a call behind hundreds of others
        # is late, not stuck, so it gets no per-attempt timeout.
        retry = dataclasses.replace(retry, timeout=None)
    options: dict[str, Any] = {
        "retry": retry,
        "concurrency": AdaptiveConcurrency(ceiling),
        "breaker": CircuitBreaker() if config.breaker else None,
        # RateLimits() caps nothing until a 429 tells it the provider's limits (x-ratelimit-* headers):
        # measured, it holds a rate-limited API at 0.96 of capacity with 4% 429s, against 0.82 and 7% without.
        "rate_limits": RateLimits(config.requests_per_minute, config.tokens_per_minute,
                                  learn_from_headers=config.learn_rate_limits),
        "cache": cache,
    }
    if meter is not None:
        options["meter"] = meter
    options.update(client_options or {})
    return ManagedClient(client, **options)


class Engine:
    """What one job's clients share: a response cache, a usage meter (one budget), one client per model.

    Args:
        config: the engine configuration.
        out: the job's output folder (where `cache=True` keeps `cache.sqlite`), or None for no cache.
        client_options: deprecated extra `ManagedClient` options (see `build_client`).
    """

    def __init__(self, config: EngineConfig, *, out: str | Path | None = None,
                 client_options: Mapping[str, Any] | None = None) -> None:
        from orca_math.engine.costs import Budget, PriceTable, UsageMeter

        self.config = config
        self.client_options = dict(client_options or {})
        self.cache = None
        if config.managed and config.cache and out is not None:
            from orca_math.engine.cache import ResponseCache
            from orca_math.engine.folder import CACHE_FILE

            self.cache = ResponseCache(Path(out) / CACHE_FILE if config.cache is True else Path(config.cache))
        self.meter = self.client_options.pop("meter", None) or UsageMeter(
            PriceTable(dict(config.prices)), budget=Budget(config.budget_usd) if config.budget_usd is not None else None)
        self._clients: dict[Any, tuple[Any, Any, bool]] = {}  # ref, or id(client) -> (model, client, built here)

    def charge_earlier(self, spent_usd: float) -> None:
        """Count what earlier runs of this job spent against the budget, before any call.

        Raises:
            RunStopped: nothing of the budget is left.
        """
        budget = self.config.budget_usd
        if budget is None or self.meter.budget is None:
            return
        if budget - spent_usd <= 0:
            raise RunStopped(f"the budget of ${budget:.2f} is already spent by this run (${spent_usd:.2f}); "
                             "raise --budget-usd to go on")
        self.meter.earlier_usd = spent_usd

    def budget_left(self) -> float | None:
        """USD of the budget not yet spent (earlier runs included), or None without a budget."""
        if self.meter.budget is None:
            return None
        return self.meter.budget.max_usd - self.meter.spent_usd()

    def client(self, model: Any, **load_options: Any):
        """The managed client for `model` (a `ModelRef`, a spec or a client), built once per ref or client object.

        This is where a job's `ModelRef` becomes a client in this process (see `orca_math.models.ref`).
        """
        from orca_math.models import ModelRef, as_model

        model = as_model(model, **load_options)
        key: Any = model if isinstance(model, ModelRef) else id(model)
        found = self._clients.get(key)
        if found is not None:
            return found[1]
        client = build_client(model, self.config, cache=self.cache, meter=self.meter, client_options=self.client_options)
        self._clients[key] = (model, client, isinstance(model, ModelRef))
        return client

    async def close(self) -> None:
        """Close the clients built here from refs (a client passed in is the caller's to close), and the cache."""
        for _, client, built in list(self._clients.values()):
            if built:
                await client.close()
        self._clients.clear()
        if self.cache is not None:  # the job's end: every buffered reply is written before the run returns
            await self.cache.flush()
            self.cache.close()


__all__ = ["Engine", "EngineConfig", "build_client"]
