"""Token usage and cost: a meter per model and per label, a price table, and a spending budget.

Prices in `DEFAULT_PRICES` are examples (USD per 1M tokens, list prices seen in 2024-2025): check
your provider's price page and pass your own `PriceTable` for real budgets.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from orca_math.engine.limits import _Signal
from orca_math.models.errors import ModelError
from orca_math.options import options_dataclass

# USD amounts: never negative, never infinite or NaN (a NaN price would make every budget check pass).
_USD = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class BudgetExceededError(ModelError):
    """The next call could take spending over the budget; raised before the call is made."""


@options_dataclass
class Price:
    """USD per one million input (prompt) and output (completion) tokens; a negative price is a `ConfigError`."""

    input_per_million: _USD
    output_per_million: _USD

    def cost(self, prompt_tokens: float, completion_tokens: float) -> float:
        return (prompt_tokens * self.input_per_million + completion_tokens * self.output_per_million) / 1e6


DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4-turbo": Price(10.00, 30.00),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "local": Price(0.0, 0.0),
}


class PriceTable:
    """Prices per model name; a name matches exactly, else by its longest listed prefix.

    Args:
        prices: model name -> `Price` or (input, output) USD per 1M tokens; overrides defaults.
        include_defaults: start from `DEFAULT_PRICES`.
    """

    def __init__(self, prices: Mapping[str, Price | tuple[float, float]] | None = None, *,
                 include_defaults: bool = True) -> None:
        self._prices: dict[str, Price] = dict(DEFAULT_PRICES) if include_defaults else {}
        for name, price in (prices or {}).items():
            self._prices[name] = price if isinstance(price, Price) else Price(*price)

    def price(self, model: str) -> Price | None:
        """The price of `model` ("gpt-4o-2024-08-06" matches "gpt-4o"), or None when unknown."""
        if model in self._prices:
            return self._prices[model]
        matches = [name for name in self._prices if model.startswith(name)]
        return self._prices[max(matches, key=len)] if matches else None

    def cost(self, model: str, prompt_tokens: float, completion_tokens: float) -> float:
        """USD for the tokens; raises ValueError naming the model when it has no price."""
        price = self.price(model)
        if price is None:
            raise ValueError(f"No price for model {model!r}: pass PriceTable({{{model!r}: (input_usd, output_usd)}}).")
        return price.cost(prompt_tokens, completion_tokens)


def estimate_cost(n_calls: int, prompt_tokens: float, completion_tokens: float, model: str,
                  prices: PriceTable | None = None) -> float:
    """USD for `n_calls` calls of about `prompt_tokens` in and `completion_tokens` out, for dry runs."""
    if n_calls < 0 or prompt_tokens < 0 or completion_tokens < 0:
        raise ValueError("estimate_cost needs non-negative call and token counts.")
    return (prices or PriceTable()).cost(model, n_calls * prompt_tokens, n_calls * completion_tokens)


@options_dataclass
class Budget:
    """A spending cap in USD for one meter: a positive, finite number (else a `ConfigError`)."""

    max_usd: Annotated[float, Field(gt=0, allow_inf_nan=False)]


@dataclass
class _Tally:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated_calls: int = 0
    cost_usd: float = 0.0


class UsageMeter:
    """Adds up tokens and cost per model and per label; enforces an optional `Budget`.

    With a budget, each call holds a reservation of its *expected* cost while it is in flight:
    its prompt plus the mean completion measured so far (at most its max_tokens), not its worst
    case. A call goes ahead only while spend + reservations + its own estimate, plus a margin for
    the spread of reply lengths, stays within the budget. A call that does not fit waits while
    other calls are in flight (their replies settle the reservations, usually below the estimate
    made before anything was measured); when nothing is in flight and it still does not fit,
    `BudgetExceededError` stops the run.

    Args:
        prices: the price table; models without a price cost nothing unless a budget is set,
            in which case reserving a call for them raises ValueError.
        budget: stop before spending more than this.
        default_completion_tokens: completion estimate for budget checks before any reply of the
            model has been measured (capped by the call's max_tokens).
    """

    def __init__(self, prices: PriceTable | None = None, *, budget: Budget | None = None,
                 default_completion_tokens: int = 512) -> None:
        self.prices = prices or PriceTable()
        self.budget = budget
        self.default_completion_tokens = default_completion_tokens
        self.by_model: dict[str, _Tally] = defaultdict(_Tally)
        self.by_label: dict[str, _Tally] = defaultdict(_Tally)
        self.cache_hits = 0
        self.saved_usd = 0.0  # what the calls answered from the cache would have cost
        self._reserved = 0.0
        self._in_flight = 0  # calls holding a reservation
        self._completion_squares: dict[str, float] = defaultdict(float)  # per model, for the spread
        self._settled = _Signal()

    def _cost(self, model: str, prompt_tokens: float, completion_tokens: float) -> float:
        price = self.prices.price(model)
        return price.cost(prompt_tokens, completion_tokens) if price else 0.0

    def expected_completion_tokens(self, model: str, max_tokens: int | None = None) -> int:
        """The mean completion length measured for `model` (else `default_completion_tokens`), at most `max_tokens`."""
        tally = self.by_model.get(model)
        expected = math.ceil(tally.completion_tokens / tally.calls) if tally and tally.calls else self.default_completion_tokens
        return min(expected, max_tokens) if max_tokens else expected

    def _spread_margin(self, model: str, calls: int) -> float:
        """USD that `calls` calls may exceed their expected cost by (3 standard deviations of their sum)."""
        tally = self.by_model.get(model)
        price = self.prices.price(model)
        if not tally or tally.calls < 2 or price is None:
            return 0.0
        mean = tally.completion_tokens / tally.calls
        variance = max(0.0, self._completion_squares[model] / tally.calls - mean * mean)
        return 3.0 * math.sqrt(variance * calls) * price.output_per_million / 1e6

    def _fits(self, model: str, estimate: float) -> bool:
        assert self.budget is not None
        margin = self._spread_margin(model, self._in_flight + 1)
        return self.cost_usd() + self._reserved + estimate + margin <= self.budget.max_usd

    def _exceeded(self, model: str, estimate: float) -> BudgetExceededError:
        assert self.budget is not None
        return BudgetExceededError(
            f"Stopped before a call to {model}: spent ${self.cost_usd():.4f} (+${self._reserved:.4f} expected in flight) "
            f"and the next call is expected to cost ${estimate:.4f}, which would pass the ${self.budget.max_usd:.2f} "
            "budget; finished work is saved."
        )

    def reserve(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        """Check the budget for one more call and hold its expected cost until `record` or `release`.

        `completion_tokens` is the expected reply length (see `expected_completion_tokens`).
        Returns the reserved USD, to pass back to `record` or `release`.

        Raises:
            BudgetExceededError: spend + reservations + this call's estimate would pass the budget.
        """
        if self.budget is None:
            return 0.0
        estimate = self.prices.cost(model, prompt_tokens, completion_tokens)
        if not self._fits(model, estimate):
            raise self._exceeded(model, estimate)
        return self._hold(estimate)

    async def reserve_when_affordable(self, model: str, prompt_tokens: int, *, max_tokens: int | None = None) -> float:
        """`reserve` a call of the expected reply length, waiting while it does not fit and calls are in flight.

        Their replies settle the reservations and refine the expected reply length, so a call
        refused on the estimate made before anything was measured may fit a moment later.

        Raises:
            BudgetExceededError: it still does not fit once nothing else is in flight.
        """
        if self.budget is None:
            return 0.0
        while True:
            estimate = self.prices.cost(model, prompt_tokens, self.expected_completion_tokens(model, max_tokens))
            if self._fits(model, estimate):
                return self._hold(estimate)
            if self._in_flight == 0:
                raise self._exceeded(model, estimate)
            await self._settled.wait(None)

    def _hold(self, estimate: float) -> float:
        if estimate > 0:
            self._reserved += estimate
            self._in_flight += 1
        return estimate

    def release(self, reserved: float) -> None:
        """Drop a reservation whose call failed (or settle one whose call is recorded)."""
        if reserved > 0:
            self._reserved = max(0.0, self._reserved - reserved)
            self._in_flight = max(0, self._in_flight - 1)
            self._settled.fire()

    def record(self, model: str, prompt_tokens: int, completion_tokens: int, *, label: str | None = None,
               estimated: bool = False, reserved: float = 0.0) -> float:
        """Count one call's tokens (under `label` too, when given); returns its cost in USD."""
        cost = self._cost(model, prompt_tokens, completion_tokens)
        self._completion_squares[model] += completion_tokens * completion_tokens
        tallies = [self.by_model[model]] + ([self.by_label[label]] if label is not None else [])
        for tally in tallies:
            tally.calls += 1
            tally.prompt_tokens += prompt_tokens
            tally.completion_tokens += completion_tokens
            tally.estimated_calls += int(estimated)
            tally.cost_usd += cost
        self.release(reserved)  # after counting the cost, so a waiting call sees spend and reservations agree
        return cost

    def record_cache_hit(self, model: str | None = None, prompt_tokens: int = 0, completion_tokens: int = 0) -> float:
        """A reply served from the cache: nothing spent; returns (and adds to `saved_usd`) what it would have cost."""
        self.cache_hits += 1
        saved = self._cost(model, prompt_tokens, completion_tokens) if model is not None else 0.0
        self.saved_usd += saved
        return saved

    def cost_usd(self) -> float:
        """Total USD spent so far (models without a price count as free)."""
        return sum(t.cost_usd for t in self.by_model.values())

    def summary(self) -> dict[str, Any]:
        """Totals, per-model and per-label tallies, as plain data."""
        def plain(tallies: dict[str, _Tally]) -> dict[str, dict[str, Any]]:
            return {name: vars(t).copy() for name, t in tallies.items()}

        return {
            "prompt_tokens": sum(t.prompt_tokens for t in self.by_model.values()),
            "completion_tokens": sum(t.completion_tokens for t in self.by_model.values()),
            "cost_usd": self.cost_usd(),
            "cache_hits": self.cache_hits,
            "saved_by_cache_usd": self.saved_usd,
            "by_model": plain(self.by_model),
            "by_label": plain(self.by_label),
        }
