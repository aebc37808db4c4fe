"""Limits that hold for a whole Ray cluster: one budget shared by leases, rate caps split between workers.

**Budget: leased from one ledger.** A `BudgetLedger` (a Ray actor with no CPU) holds what is left
of the job's budget. Each worker's `LeasedMeter` may spend only what it has leased, and asks the
ledger for more when a call does not fit: a lease is at least what the call needs and at most half
of a fair share of what is not leased yet, so leases shrink as the budget runs out. Spending never
passes the budget (every worker stays within its leases, and leases add up to the budget at most);
the cost is that a worker may stop the run while another still holds a little unspent lease. A
lease request is one actor call per lease, not per model call.

**Rate caps: split.** A configured or learned requests/tokens-per-minute cap is the provider's
total for the key, so each of N workers paces at cap / N (`SplitRateLimits`). With the driver
handing each worker the same share of items, splitting costs nothing and needs no coordination
on the hot path; a learned cap (``x-ratelimit-limit-*`` headers) is divided the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from orca_math.engine.costs import Budget, BudgetExceededError, PriceTable, UsageMeter
from orca_math.engine.limits import RateLimits


class BudgetLedger:
    """What is left of one job's budget, leased out to workers (run as a Ray actor).

    Args:
        budget_usd: the budget left for this job (earlier runs' spending taken off).
        workers: how many workers share it.
    """

    def __init__(self, budget_usd: float, workers: int) -> None:
        self.budget_usd = budget_usd
        self.workers = max(1, workers)
        self.leased = 0.0
        self.spent: dict[int, float] = {}

    def lease(self, worker: int, need: float, spent: float) -> float:
        """Grant worker `worker` at least `need` USD more (or nothing when that much is not left).

        `spent` is what the worker has spent so far, for the stop message.
        """
        self.spent[worker] = spent
        free = self.budget_usd - self.leased
        if need > free:
            return 0.0
        grant = min(free, max(need, free / (2 * self.workers)))
        self.leased += grant
        return grant

    def total_spent(self, worker: int, spent: float) -> float:
        """Everything the workers reported spending (this one's `spent` up to date)."""
        self.spent[worker] = spent
        return sum(self.spent.values())


class LeasedMeter(UsageMeter):
    """A worker's `UsageMeter` whose budget is what it leased from the shared `BudgetLedger`.

    Its `budget` is the job's whole budget (so messages and checks read as locally); calls are
    admitted against the leases instead. When nothing can be leased and nothing of this worker is in
    flight, `BudgetExceededError` stops the run, quoting what the whole cluster spent.

    Args:
        prices: the price table.
        budget_usd: the job's budget left (for messages).
        ledger: the `BudgetLedger` actor handle.
        worker: this worker's index.
    """

    def __init__(self, prices: PriceTable, *, budget_usd: float, ledger: Any, worker: int) -> None:
        super().__init__(prices, budget=Budget(budget_usd))
        self.ledger = ledger
        self.worker = worker
        self.leased = 0.0
        self._lease_lock: asyncio.Lock | None = None

    def _fits(self, model: str, estimate: float) -> bool:
        return self._needed(model, estimate) <= 0

    def _needed(self, model: str, estimate: float) -> float:
        margin = self._spread_margin(model, self._in_flight + 1)
        return self.cost_usd() + self._reserved + estimate + margin - self.leased

    async def reserve_when_affordable(self, model: str, prompt_tokens: int, *, max_tokens: int | None = None) -> float:
        if self._lease_lock is None:
            self._lease_lock = asyncio.Lock()
        while True:
            estimate = self.prices.cost(model, prompt_tokens, self.expected_completion_tokens(model, max_tokens))
            if self._fits(model, estimate):
                return self._hold(estimate)
            async with self._lease_lock:  # one lease request at a time: they would all ask for the same
                need = self._needed(model, estimate)
                if need > 0:
                    self.leased += await self.ledger.lease.remote(self.worker, need, self.cost_usd())
                if self._needed(model, estimate) <= 0:
                    continue
            if self._in_flight == 0:
                spent = await self.ledger.total_spent.remote(self.worker, self.cost_usd())
                raise self._cluster_exceeded(model, estimate, spent)
            await self._settled.wait(None)

    def _cluster_exceeded(self, model: str, estimate: float, spent: float) -> BudgetExceededError:
        assert self.budget is not None
        return BudgetExceededError(
            f"Stopped before a call to {model}: spent ${spent:.4f} (+${self._reserved:.4f} expected in flight) "
            f"and the next call is expected to cost ${estimate:.4f}, which would pass the ${self.budget.max_usd:.2f} "
            "budget; finished work is saved."
        )


class SplitRateLimits(RateLimits):
    """`RateLimits` paced at 1/`share` of each cap, configured or learned: one of `share` workers' part.

    Args:
        share: how many workers split the caps.
        requests_per_minute, tokens_per_minute: the cluster's caps (None: none, unless learned).
        learn_from_headers: adopt caps from ``x-ratelimit-limit-*`` headers (divided by `share` too).
    """

    def __init__(self, share: int, requests_per_minute: float | None = None, tokens_per_minute: float | None = None, *,
                 learn_from_headers: bool = True) -> None:
        self.share = max(1, share)
        super().__init__(requests_per_minute / self.share if requests_per_minute else None,
                         tokens_per_minute / self.share if tokens_per_minute else None,
                         learn_from_headers=learn_from_headers)

    def observe_headers(self, headers: Mapping[str, str]) -> None:
        divided = {}
        for name, value in (headers or {}).items():
            if str(name).lower().startswith("x-ratelimit-limit-"):
                try:
                    value = f"{float(value) / self.share:g}"
                except (TypeError, ValueError):
                    pass
            divided[name] = value
        super().observe_headers(divided)


__all__ = ["BudgetLedger", "LeasedMeter", "SplitRateLimits"]
