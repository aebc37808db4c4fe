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


def budget_stop_message(stop: BudgetExceededError, spent_usd: float, earlier_usd: float) -> str:
    """`stop`'s message with the spending restated: `spent_usd` in all, `earlier_usd` of it in earlier runs.

    For executors whose workers only knew part of the spending when one of them stopped.
    """
    earlier = f" (${earlier_usd:.4f} of it in earlier runs)" if earlier_usd else ""
    text = str(stop)
    head, _, tail = text.partition(": spent $")
    _, sep, rest = tail.partition(", and the next call")
    if not sep:
        return text
    return f"{head}: spent ${spent_usd:.4f}{earlier} across all workers, and the next call{rest}"


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
    """Adds up tokens and cost per model and per label; enforces an optional `Budget`, never passing it.

    With a budget, each call holds a reservation of its *worst case* while it is in flight: its
    prompt (with a margin for the provider counting tokens differently from us) plus its whole
    `max_tokens`. A call goes ahead only while spend + reservations + its own worst case stays
    within the budget, so even if every reply in flight grows to `max_tokens` the budget holds.
    Far from the limit this costs nothing (every call fits); near it, fewer calls go out at once.
    A call that does not fit waits while other calls are in flight (their replies settle the
    reservations, usually far below the worst case); when nothing is in flight and it still does
    not fit, `BudgetExceededError` stops the run, at most one call's worst case below the budget.

    The prompt margin: before any reply is measured the prompt estimate is taken 10% higher; once
    the provider reports usage, the largest ratio of its prompt count to our estimate (plus 2%)
    is used instead. A call without `max_tokens` has no bound: it reserves the longest reply seen
    so far, at least `default_completion_tokens` (the agents always send `max_tokens`).

    Args:
        prices: the price table; models without a price cost nothing unless a budget is set,
            in which case reserving a call for them raises ValueError.
        budget: stop before spending more than this (earlier runs' spending included, see `earlier_usd`).
        default_completion_tokens: reply length assumed before any reply of the model has been
            measured, for calls without `max_tokens` and for `expected_completion_tokens`.
    """

    #: Prompt margin before the provider has reported a prompt count, and on top of the largest ratio seen.
    UNMEASURED_PROMPT_MARGIN = 0.10
    MEASURED_PROMPT_MARGIN = 0.02

    def __init__(self, prices: PriceTable | None = None, *, budget: Budget | None = None,
                 default_completion_tokens: int = 512) -> None:
        self.prices = prices or PriceTable()
        self.budget = budget
        self.default_completion_tokens = default_completion_tokens
        self.earlier_usd = 0.0  # what earlier runs of the same job spent, counted against the budget
        self.by_model: dict[str, _Tally] = defaultdict(_Tally)
        self.by_label: dict[str, _Tally] = defaultdict(_Tally)
        self.cache_hits = 0
        self.saved_usd = 0.0  # what the calls answered from the cache would have cost
        self._reserved = 0.0
        self._in_flight = 0  # calls holding a reservation
        self._prompt_ratio: dict[str, float] = {}  # per model: largest provider prompt count / our estimate
        self._longest_reply: dict[str, int] = defaultdict(int)
        self._settled = _Signal()

    def _cost(self, model: str, prompt_tokens: float, completion_tokens: float) -> float:
        price = self.prices.price(model)
        return price.cost(prompt_tokens, completion_tokens) if price else 0.0

    def expected_completion_tokens(self, model: str, max_tokens: int | None = None) -> int:
        """The mean completion length measured for `model` (else `default_completion_tokens`), at most `max_tokens`."""
        tally = self.by_model.get(model)
        expected = math.ceil(tally.completion_tokens / tally.calls) if tally and tally.calls else self.default_completion_tokens
        return min(expected, max_tokens) if max_tokens else expected

    def worst_case_cost(self, model: str, prompt_tokens: int, max_tokens: int | None = None) -> float:
        """USD a call could cost at most: its prompt estimate with the counting margin, and a reply of `max_tokens`.

        Raises:
            ValueError: `model` has no price.
        """
        ratio = self._prompt_ratio.get(model)
        factor = (1 + self.UNMEASURED_PROMPT_MARGIN) if ratio is None else max(ratio, 1e-9) * (1 + self.MEASURED_PROMPT_MARGIN)
        reply = max_tokens or max(self.default_completion_tokens, self._longest_reply[model])
        return self.prices.cost(model, math.ceil(prompt_tokens * factor), reply)

    def spent_usd(self) -> float:
        """What counts against the budget: this meter's spending plus `earlier_usd`."""
        return self.earlier_usd + self.cost_usd()

    def _fits(self, model: str, worst: float) -> bool:
        assert self.budget is not None
        return self.spent_usd() + self._reserved + worst <= self.budget.max_usd

    def _exceeded(self, model: str, worst: float, spent: float | None = None) -> BudgetExceededError:
        assert self.budget is not None
        spent = self.spent_usd() if spent is None else spent
        earlier = f" (${self.earlier_usd:.4f} of it in earlier runs)" if self.earlier_usd else ""
        in_flight = f" with ${self._reserved:.4f} held for calls in flight" if self._reserved else ""
        return BudgetExceededError(
            f"Stopped before a call to {model}: spent ${spent:.4f}{earlier}{in_flight}, and the next call could cost "
            f"up to ${worst:.4f} (its prompt and max_tokens), which would pass the ${self.budget.max_usd:.2f} budget; "
            "finished work is saved."
        )

    def reserve(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        """Check the budget for one more call and hold its worst case until `record` or `release`.

        `completion_tokens` bounds the reply (its max_tokens). Returns the reserved USD, to pass back
        to `record` or `release`.

        Raises:
            BudgetExceededError: spend + reservations + this call's worst case would pass the budget.
        """
        if self.budget is None:
            return 0.0
        worst = self.worst_case_cost(model, prompt_tokens, completion_tokens)
        if not self._fits(model, worst):
            raise self._exceeded(model, worst)
        return self._hold(worst)

    async def reserve_when_affordable(self, model: str, prompt_tokens: int, *, max_tokens: int | None = None) -> float:
        """`reserve` a call's worst case, waiting while it does not fit and calls are in flight.

        Their replies settle the reservations (usually far below their worst case), so a call that
        does not fit now may fit a moment later.

        Raises:
            BudgetExceededError: it still does not fit once nothing else is in flight.
        """
        if self.budget is None:
            return 0.0
        while True:
            worst = self.worst_case_cost(model, prompt_tokens, max_tokens)
            if self._fits(model, worst):
                return self._hold(worst)
            if self._in_flight == 0:
                raise self._exceeded(model, worst)
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
               estimated: bool = False, reserved: float = 0.0, prompt_estimate: int | None = None) -> float:
        """Count one call's tokens (under `label` too, when given); returns its cost in USD.

        `prompt_estimate` is what the prompt was estimated at before the call: with the provider's
        own count (`estimated` False) it calibrates the margin later reservations take.
        """
        cost = self._cost(model, prompt_tokens, completion_tokens)
        self._longest_reply[model] = max(self._longest_reply[model], completion_tokens)
        if prompt_estimate and not estimated and prompt_tokens:
            self._prompt_ratio[model] = max(self._prompt_ratio.get(model, 0.0), prompt_tokens / prompt_estimate)
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
