"""Limits that hold for a whole cluster of remote workers: one budget shared by leases, rate caps split between workers.

Nothing here imports Ray: the Ray executor runs the ledger as an actor, and another executor may
host it however it shares state.

**Budget: leased from one ledger.** A `BudgetLedger` (on Ray: an actor with no CPU) holds what is left
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

from orca_math.engine.costs import Budget, PriceTable, UsageMeter
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
    admitted against the leases instead, each holding its worst case (prompt and max_tokens) as
    locally, so the leases, and with them the cluster, never pass the budget. When nothing can be
    leased and nothing of this worker is in flight, `BudgetExceededError` stops the run, quoting
    what the whole cluster reported spending.

    Args:
        prices: the price table.
        budget_usd: what is left of the job's budget (what the ledger holds).
        ledger: the `BudgetLedger` actor handle.
        worker: this worker's index.
        earlier_usd: what earlier runs of the job spent (for messages: the budget is theirs plus `budget_usd`).
    """

    def __init__(self, prices: PriceTable, *, budget_usd: float, ledger: Any, worker: int, earlier_usd: float = 0.0) -> None:
        super().__init__(prices, budget=Budget(budget_usd + earlier_usd))
        self.earlier_usd = earlier_usd
        self.ledger = ledger
        self.worker = worker
        self.leased = 0.0
        self._lease_lock: asyncio.Lock | None = None

    def _fits(self, model: str, worst: float) -> bool:
        return self._needed(worst) <= 0

    def _needed(self, worst: float) -> float:
        return self.cost_usd() + self._reserved + worst - self.leased

    async def reserve_when_affordable(self, model: str, prompt_tokens: int, *, max_tokens: int | None = None) -> float:
        if self._lease_lock is None:
            self._lease_lock = asyncio.Lock()
        while True:
            worst = self.worst_case_cost(model, prompt_tokens, max_tokens)
            if self._fits(model, worst):
                return self._hold(worst)
            async with self._lease_lock:  # one lease request at a time: they would all ask for the same
                need = self._needed(worst)
                if need > 0:
                    self.leased += await self.ledger.lease.remote(self.worker, need, self.cost_usd())
                if self._needed(worst) <= 0:
                    continue
            if self._in_flight == 0:
                spent = await self.ledger.total_spent.remote(self.worker, self.cost_usd())
                raise self._exceeded(model, worst, spent=self.earlier_usd + spent)
            await self._settled.wait(None)


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

    def observe_headers(self, headers: Mapping[str, str], *, max_wait: float | None = None) -> None:
        divided = {}
        for name, value in (headers or {}).items():
            if str(name).lower().startswith("x-ratelimit-limit-"):
                try:
                    value = f"{float(value) / self.share:g}"
                except (TypeError, ValueError):
                    pass
            divided[name] = value
        super().observe_headers(divided, max_wait=max_wait)


__all__ = ["BudgetLedger", "LeasedMeter", "SplitRateLimits"]
