"""Dry runs: estimate a job's calls, tokens and cost from its inputs, before anything is spent.

Each stage estimates itself (`Stage.estimate`) over a `Population`: the exact input rows plus
counts of rows that earlier stages will create, by origin, with their mean question length (those
rows don't exist yet). Prompt tokens are counted on real prompts where the rows are known, and
every reply's length comes from a per-agent typical completion length (`EstimateContext.completion_tokens`:
the agent cards' ``estimate.completion_tokens``, see `orca_math.agents.cards.typical_completion_tokens`,
overridable: calibrate them with a small real run; 200 for an agent without one). Filters can't be predicted, so the estimate
assumes nothing is dropped: an upper bound on later stages' calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orca_math.tokens import estimate_tokens


@dataclass
class Population:
    """The rows a stage will see: the known input rows, plus virtual rows by origin.

    Attributes:
        known: the exact input rows (the seeds), or empty once a stage replaced them.
        virtual: origin -> (count, mean question tokens) of rows not written yet.
    """

    known: list[dict[str, Any]]
    virtual: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def rows(self) -> float:
        return len(self.known) + sum(count for count, _ in self.virtual.values())

    def mean_question_tokens(self) -> float:
        """Mean question length of the known rows (tokens)."""
        lengths = [estimate_tokens(row["question"]) for row in self.known]
        return sum(lengths) / len(lengths) if lengths else 0.0

    def add(self, origin: str, count: float, mean_tokens: float) -> None:
        """Count `count` more virtual rows of `origin` with questions of `mean_tokens` tokens."""
        before, _ = self.virtual.get(origin, (0.0, 0.0))
        self.virtual[origin] = (before + count, float(mean_tokens))


@dataclass
class EstimateContext:
    """What stages need to estimate: typical reply lengths, and the price of each stage's model.

    Attributes:
        completion_tokens: typical reply tokens by agent name.
        model: the job's model name (for prices).
        prices: a `PriceTable`.
        discount: multiplier on prices (0.5 for provider batch APIs).
    """

    completion_tokens: Mapping[str, int]
    model: str
    prices: Any
    discount: float = 1.0

    def typical(self, agent_name: str) -> int:
        return int(self.completion_tokens.get(agent_name, 200))

    def cost(self, prompt_tokens: float, completion_tokens: float, model: str | None = None) -> float | None:
        price = self.prices.price(model or self.model)
        return None if price is None else self.discount * price.cost(prompt_tokens, completion_tokens)


def prompt_tokens(agent: Any, inputs: Mapping[str, Any]) -> int:
    """Tokens of the prompt `agent` builds from `inputs`, with a small per-message overhead."""
    return sum(estimate_tokens(str(m.content)) for m in agent.build_messages(inputs)) + 4 * 2


def prompt_overhead(agent: Any, inputs: Mapping[str, Any]) -> int:
    """Prompt tokens with every text input empty: the template and role alone."""
    return prompt_tokens(agent, {k: ([] if isinstance(v, list) else "") for k, v in inputs.items()})


@dataclass
class StageEstimate:
    """Estimated work of one stage."""

    name: str
    inputs: float
    outputs: float
    calls: float = 0
    prompt_tokens: float = 0
    completion_tokens: float = 0
    cost_usd: float | None = None
    note: str = ""


@dataclass
class Estimate:
    """Estimated work of a whole job."""

    seeds: int
    model: str
    stages: list[StageEstimate] = field(default_factory=list)
    discount: float = 1.0

    @property
    def calls(self) -> float:
        return sum(s.calls for s in self.stages)

    @property
    def prompt_tokens(self) -> float:
        return sum(s.prompt_tokens for s in self.stages)

    @property
    def completion_tokens(self) -> float:
        return sum(s.completion_tokens for s in self.stages)

    @property
    def cost_usd(self) -> float | None:
        costs = [s.cost_usd for s in self.stages if s.calls]
        return None if any(c is None for c in costs) else sum(costs)  # type: ignore[misc]

    def to_dict(self) -> dict[str, Any]:
        return {
            "seeds": self.seeds,
            "model": self.model,
            "calls": round(self.calls),
            "prompt_tokens": round(self.prompt_tokens),
            "completion_tokens": round(self.completion_tokens),
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 4),
            "price_multiplier": self.discount,
            "stages": [
                {"name": s.name, "inputs": round(s.inputs), "outputs": round(s.outputs), "calls": round(s.calls),
                 "prompt_tokens": round(s.prompt_tokens), "completion_tokens": round(s.completion_tokens),
                 "cost_usd": None if s.cost_usd is None else round(s.cost_usd, 4), "note": s.note}
                for s in self.stages
            ],
        }

    def render(self) -> str:
        header = f"{'stage':<14}{'rows in':>9}{'calls':>9}{'tokens in':>12}{'tokens out':>12}{'USD':>10}"
        priced = " at batch prices" if self.discount != 1.0 else ""
        lines = [f"dry run: {self.seeds} seeds, model {self.model}{priced} (estimates; nothing was called)", header, "-" * len(header)]
        for s in self.stages:
            cost = "?" if s.cost_usd is None else f"{s.cost_usd:.2f}"
            lines.append(f"{s.name:<14}{s.inputs:>9.0f}{s.calls:>9.0f}{s.prompt_tokens:>12.0f}{s.completion_tokens:>12.0f}{cost:>10}" + (f"  ({s.note})" if s.note else ""))
        total = "unknown (no price for the model: pass --price MODEL=IN,OUT)" if self.cost_usd is None else f"{self.cost_usd:.2f}"
        lines += ["-" * len(header), f"total: {self.calls:.0f} calls, {self.prompt_tokens:.0f} tokens in, {self.completion_tokens:.0f} out, USD {total}"]
        return "\n".join(lines)


def estimate_stages(stages: Sequence[Any], rows: Iterable[dict[str, Any]], context: EstimateContext) -> Estimate:
    """Estimate `stages` (bound to a model) over `rows`, each stage over what the previous leaves."""
    population = Population(known=list(rows))
    estimate = Estimate(seeds=len(population.known), model=context.model, discount=context.discount)
    for stage in stages:
        item = stage.estimate(population, context)
        item.outputs = population.rows
        if item.calls and item.cost_usd is None:
            item.cost_usd = context.cost(item.prompt_tokens, item.completion_tokens)
        estimate.stages.append(item)
    return estimate


__all__ = ["Estimate", "EstimateContext", "Population", "StageEstimate", "estimate_stages",
           "prompt_overhead", "prompt_tokens"]
