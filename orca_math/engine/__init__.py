"""Running model calls at scale: retries, adaptive concurrency, a circuit breaker, rate caps,
a response cache and usage/cost metering, all behind the `ChatCompletionClient` interface."""

from orca_math.engine.cache import ResponseCache, cache_key
from orca_math.engine.client import LABEL_KEY, SAMPLE_KEY, ManagedClient, RetriesExhaustedError, RetryPolicy
from orca_math.engine.costs import (
    DEFAULT_PRICES,
    Budget,
    BudgetExceededError,
    Price,
    PriceTable,
    UsageMeter,
    estimate_cost,
)
from orca_math.engine.limits import AdaptiveConcurrency, CircuitBreaker, CircuitOpenError, RateLimits

__all__ = [
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
    "UsageMeter",
    "cache_key",
    "estimate_cost",
]
