"""Dry runs: estimate a pipeline's calls, tokens and cost from the seeds, before anything is spent.

Prompt tokens are counted exactly (tiktoken) on the real prompts for the seed rows. Rows that
stages will create (Ask-Me-Anything problems, hardened problems) don't exist yet, so their
prompts are estimated from the seeds' question lengths, and every reply's length comes from a
per-agent typical completion length (`TYPICAL_COMPLETION_TOKENS`, overridable: calibrate it with
a small real run). Filters can't be predicted, so the estimate assumes nothing is dropped before
the teacher: an upper bound on the teacher's calls.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orca_math.agents.base import Agent
from orca_math.pipeline.stage import Stage
from orca_math.pipeline.stages import Expand, Harden, Solve
from orca_math.tokens import estimate_tokens

#: Typical reply lengths, in tokens, of a GPT-4-class teacher with the shipped prompts.
TYPICAL_COMPLETION_TOKENS: dict[str, int] = {
    "ask_me_anything": 220,
    "suggester": 110,
    "editor": 90,
    "teacher": 260,
    "grader": 50,
}
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


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
    """Estimated work of a whole pipeline run."""

    seeds: int
    model: str
    stages: list[StageEstimate] = field(default_factory=list)

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
            "stages": [
                {"name": s.name, "inputs": round(s.inputs), "outputs": round(s.outputs), "calls": round(s.calls),
                 "prompt_tokens": round(s.prompt_tokens), "completion_tokens": round(s.completion_tokens),
                 "cost_usd": None if s.cost_usd is None else round(s.cost_usd, 4), "note": s.note}
                for s in self.stages
            ],
        }

    def render(self) -> str:
        header = f"{'stage':<14}{'rows in':>9}{'calls':>9}{'tokens in':>12}{'tokens out':>12}{'USD':>10}"
        lines = [f"dry run: {self.seeds} seeds, model {self.model} (estimates; nothing was called)", header, "-" * len(header)]
        for s in self.stages:
            cost = "?" if s.cost_usd is None else f"{s.cost_usd:.2f}"
            lines.append(f"{s.name:<14}{s.inputs:>9.0f}{s.calls:>9.0f}{s.prompt_tokens:>12.0f}{s.completion_tokens:>12.0f}{cost:>10}" + (f"  ({s.note})" if s.note else ""))
        total = "unknown (no price for the model: pass --price MODEL=IN,OUT)" if self.cost_usd is None else f"{self.cost_usd:.2f}"
        lines += ["-" * len(header), f"total: {self.calls:.0f} calls, {self.prompt_tokens:.0f} tokens in, {self.completion_tokens:.0f} out, USD {total}"]
        return "\n".join(lines)


def _prompt_tokens(agent: Agent, inputs: Mapping[str, Any]) -> int:
    return sum(estimate_tokens(str(m.content)) for m in agent.build_messages(inputs)) + 4 * 2  # role overhead


def _overhead(agent: Agent, inputs: Mapping[str, Any]) -> int:
    """Prompt tokens with every text input empty: the template and role alone."""
    return _prompt_tokens(agent, {k: ([] if isinstance(v, list) else "") for k, v in inputs.items()})


def estimate_pipeline(
    stages: list[Stage],
    seed_rows: Iterable[dict[str, Any]],
    *,
    model: str,
    prices: Any = None,
    completion_tokens: Mapping[str, int] | None = None,
) -> Estimate:
    """Estimate calls, tokens and cost of `stages` over `seed_rows` (stages must be bound to a model)."""
    from orca_math.engine.costs import PriceTable

    prices = prices or PriceTable()
    typical = {**TYPICAL_COMPLETION_TOKENS, **(completion_tokens or {})}
    seeds = list(seed_rows)
    estimate = Estimate(seeds=len(seeds), model=model)
    # The population is tracked as: exact seed rows, plus counts of virtual rows by origin with a mean question length.
    seed_q = [estimate_tokens(row["question"]) for row in seeds]
    mean_q = sum(seed_q) / len(seed_q) if seed_q else 0.0
    population: dict[str, tuple[float, float]] = {"seed": (float(len(seeds)), mean_q)}  # origin -> (count, mean question tokens)

    def rows() -> float:
        return sum(count for count, _ in population.values())

    for stage in stages:
        inputs = rows()
        item = StageEstimate(stage.name, inputs=inputs, outputs=inputs)
        if isinstance(stage, Expand):
            agent = stage.agent
            item.calls = len(seeds)
            item.prompt_tokens = sum(_prompt_tokens(agent, {"question": r["question"], "answer": r.get("gold_solution") or r.get("known_answer") or ""}) for r in seeds)
            item.completion_tokens = item.calls * typical["ask_me_anything"]
            new = sum(len(_NUMBER.findall(r["question"])) + 1 for r in seeds)
            if stage.max_problems_per_seed:
                new = min(new, len(seeds) * stage.max_problems_per_seed)
            population["ask_me_anything"] = (float(new), mean_q)
            if not stage.keep_seeds:
                population.pop("seed")
            item.note = "one new problem per number in each seed"
        elif isinstance(stage, Harden):
            targets = [(origin, count, q) for origin, (count, q) in population.items() if "all" in stage.apply_to or origin in stage.apply_to]
            hardened_count = sum(count for _, count, _ in targets)
            per_round_calls = 2 * hardened_count
            item.calls = per_round_calls * stage.rounds
            s_over = _overhead(stage.suggester, {"question": "", "n_suggestions": stage.n_suggestions})
            e_over = _overhead(stage.editor, {"question": "", "suggestions": []})
            question = sum(count * q for _, count, q in targets) / hardened_count if hardened_count else 0.0
            for _ in range(stage.rounds):
                item.prompt_tokens += hardened_count * (s_over + question + e_over + question + typical["suggester"])
                question = typical["editor"]  # later rounds read the Editor's problem
            item.completion_tokens = stage.rounds * hardened_count * (typical["suggester"] + typical["editor"])
            kept = hardened_count * (stage.rounds if stage.keep == "all" else 1)
            population["suggester_editor"] = (population.get("suggester_editor", (0.0, 0.0))[0] + kept, float(typical["editor"]))
        elif isinstance(stage, Solve):
            agent = stage.teacher
            overhead = _overhead(agent, {"question": ""})
            item.calls = inputs * stage.k
            exact = sum(_prompt_tokens(agent, {"question": r["question"]}) for r in seeds) if "seed" in population else 0
            virtual = sum(count * (overhead + q) for origin, (count, q) in population.items() if origin != "seed")
            item.prompt_tokens = stage.k * (exact + virtual)
            item.completion_tokens = item.calls * typical["teacher"]
        elif stage.agents():
            item.note = "custom stage with agents: not estimated"
        else:
            item.note = "no model calls; drops can't be predicted"
        item.outputs = rows()
        if item.calls:
            price = prices.price(model)
            item.cost_usd = price.cost(item.prompt_tokens, item.completion_tokens) if price else None
        estimate.stages.append(item)
    return estimate
