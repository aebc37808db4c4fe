"""The one engine every workload runs on.

* Jobs: stages over items in a resumable run folder (`Job`, `run_job`, `Stage`), wherever the
  items run (`LocalExecutor`, `RayExecutor`) and however calls are sent (online or batch).
* Model calls at scale: retries, adaptive concurrency, a circuit breaker, rate caps, a response
  cache and usage/cost metering, all behind the `ChatCompletionClient` interface (`ManagedClient`),
  configured once (`EngineConfig`) and built by one function (`build_client`).
"""

from orca_math.engine.cache import ResponseCache, cache_key
from orca_math.engine.client import LABEL_KEY, SAMPLE_KEY, ManagedClient, RetriesExhaustedError, RetryPolicy
from orca_math.engine.config import Engine, EngineConfig, build_client
from orca_math.engine.costs import (
    DEFAULT_PRICES,
    Budget,
    BudgetExceededError,
    Price,
    PriceTable,
    UsageMeter,
    estimate_cost,
)
from orca_math.engine.executors import Executor, LocalExecutor
from orca_math.engine.items import CallDeferred, ItemFailedError, ItemResult, RunStopped
from orca_math.engine.jobs import Job, JobRun, run_job
from orca_math.engine.limits import AdaptiveConcurrency, CircuitBreaker, CircuitOpenError, RateLimits
from orca_math.engine.retry import StalledError
from orca_math.engine.stage import Stage, StageError

__all__ = [
    "CallDeferred",
    "Engine",
    "EngineConfig",
    "Executor",
    "ItemFailedError",
    "ItemResult",
    "Job",
    "JobRun",
    "LocalExecutor",
    "RunStopped",
    "Stage",
    "StageError",
    "build_client",
    "run_job",
    "LABEL_KEY",
    "SAMPLE_KEY",
    "DEFAULT_PRICES",
    "AdaptiveConcurrency",
    "Budget",
    "BudgetExceededError",
    "CircuitBreaker",
    "CircuitOpenError",
    "ManagedClient",
    "Price",
    "PriceTable",
    "RateLimits",
    "ResponseCache",
    "RetriesExhaustedError",
    "RetryPolicy",
    "StalledError",
    "UsageMeter",
    "cache_key",
    "estimate_cost",
]
