"""The funnel: counts in and out per stage, drops by reason, failures, tokens, and the time of the run and of each stage."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from orca_math.engine.checkpoint import CheckpointFile
from orca_math.engine.reasons import failure_group, failure_label


@dataclass
class StageSummary:
    """One stage's counts, read back from its checkpoint (so they are exact after a resume too)."""

    name: str
    inputs: int = 0
    outputs: int = 0
    failed: int = 0
    drops: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    cached_calls: int = 0
    cached_prompt_tokens: int = 0  # of the tokens above, those of replies served from the cache
    cached_completion_tokens: int = 0
    cost_usd: float | None = None  # paid calls only
    saved_usd: float | None = None  # what the cached replies would have cost
    skipped: int = 0  # items already finished by an earlier run (this run did not redo them)
    seconds: float = 0.0  # wall time this run spent in the stage (an earlier run's time is not counted)

    @property
    def paid_prompt_tokens(self) -> int:
        """Prompt tokens of calls that were paid for (replies served from the cache cost nothing)."""
        return self.prompt_tokens - self.cached_prompt_tokens

    @property
    def paid_completion_tokens(self) -> int:
        """Completion tokens of calls that were paid for."""
        return self.completion_tokens - self.cached_completion_tokens


    @property
    def dropped(self) -> int:
        return sum(self.drops.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "failed": self.failed,
            "dropped": self.dropped,
            "drops_by_reason": dict(self.drops),
            "failures_by_reason": dict(self.failures),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "calls": self.calls,
            "cached_calls": self.cached_calls,
            "cached_prompt_tokens": self.cached_prompt_tokens,
            "cached_completion_tokens": self.cached_completion_tokens,
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 6),
            "saved_by_cache_usd": None if self.saved_usd is None else round(self.saved_usd, 6),
            "seconds": round(self.seconds, 3),
        }


def summarise_stage(name: str, checkpoint: CheckpointFile) -> StageSummary:
    """Count a stage's results from its checkpoint file."""
    summary = StageSummary(name)
    labels: dict[tuple[str, ...], str] = {}  # one readable label per group: the first failure's
    for record in checkpoint.latest():
        summary.inputs += 1
        if record["status"] == "ok":
            summary.outputs += len(record["outputs"])
            summary.drops.update(drop["reason"] for drop in record.get("drops", []))
            usage = record.get("usage") or {}
        else:
            summary.failed += 1
            summary.outputs += len(record.get("outputs") or ())  # rows a failed item still passed on
            failure = record["failure"]
            summary.failures[labels.setdefault(failure_group(failure), failure_label(failure))] += 1
            usage = record.get("usage") or {}
        summary.prompt_tokens += usage.get("prompt_tokens", 0)
        summary.completion_tokens += usage.get("completion_tokens", 0)
        summary.calls += usage.get("calls", 0)
        summary.cached_calls += usage.get("cached_calls", 0)
        summary.cached_prompt_tokens += usage.get("cached_prompt_tokens", 0)
        summary.cached_completion_tokens += usage.get("cached_completion_tokens", 0)
    return summary


@dataclass
class Funnel:
    """Counts for a whole run."""

    seeds: int
    stages: list[StageSummary]
    seconds: float = 0.0
    cut_to: int | None = None  # a row target's cut: the dataset holds this many of the kept rows (`Pipeline(target_rows=)`)

    @property
    def kept_rows(self) -> int:
        """Rows that passed every stage (before a row target's cut)."""
        return self.stages[-1].outputs if self.stages else self.seeds

    @property
    def final_rows(self) -> int:
        """Rows in the dataset."""
        return self.kept_rows if self.cut_to is None else min(self.kept_rows, self.cut_to)

    @property
    def prompt_tokens(self) -> int:
        return sum(s.prompt_tokens for s in self.stages)

    @property
    def completion_tokens(self) -> int:
        return sum(s.completion_tokens for s in self.stages)

    @property
    def cost_usd(self) -> float | None:
        """USD of the calls that were paid for; replies served from the cache count in `saved_usd`."""
        costs = [s.cost_usd for s in self.stages if s.calls]
        return None if not costs or any(c is None for c in costs) else sum(costs)  # type: ignore[misc]

    @property
    def saved_usd(self) -> float | None:
        """What the replies served from the cache would have cost; None when a price is unknown."""
        saved = [s.saved_usd for s in self.stages if s.cached_calls]
        return None if any(v is None for v in saved) else sum(saved)  # type: ignore[misc]

    def add_time(self, earlier: Funnel) -> None:
        """Count `earlier`'s time too: a run made of several jobs over the same stages (a row target's waves)."""
        self.seconds += earlier.seconds
        times = {stage.name: stage.seconds for stage in earlier.stages}
        for stage in self.stages:
            stage.seconds += times.get(stage.name, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 6),
            "saved_by_cache_usd": None if self.saved_usd is None else round(self.saved_usd, 6),
            "seeds": self.seeds,
            "final_rows": self.final_rows,
            **({"cut_to": self.cut_to, "beyond_target": self.kept_rows - self.final_rows} if self.cut_to is not None else {}),
            "seconds": round(self.seconds, 3),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "stages": [s.to_dict() for s in self.stages],
        }

    def render(self) -> str:
        """A plain-text table of the funnel, for terminals and logs."""
        header = f"{'stage':<14}{'in':>8}{'out':>8}{'failed':>8}{'dropped':>9}{'tokens':>11}{'USD':>10}"
        lines = [header, "-" * len(header), f"{'seeds':<14}{'':>8}{self.seeds:>8}"]
        for s in self.stages:
            tokens = s.prompt_tokens + s.completion_tokens
            cost = "" if s.cost_usd is None or not s.calls else f"{s.cost_usd:.4f}"
            lines.append(f"{s.name:<14}{s.inputs:>8}{s.outputs:>8}{s.failed:>8}{s.dropped:>9}{tokens:>11}{cost:>10}")
            for reason, count in sorted(s.drops.items()):
                lines.append(f"  drop: {reason} × {count}")
            for reason, count in sorted(s.failures.items()):
                lines.append(f"  fail: {reason[:90]} × {count}")
        if self.cut_to is not None and self.kept_rows > self.final_rows:
            lines.append(f"{'target':<14}{self.kept_rows:>8}{self.final_rows:>8}{0:>8}{self.kept_rows - self.final_rows:>9}")
            lines.append(f"  drop: beyond_target × {self.kept_rows - self.final_rows}")
        lines.append("-" * len(header))
        cost = "" if self.cost_usd is None else f"   cost: ${self.cost_usd:.4f}"
        if self.saved_usd:
            cost += f" (saved by cache: ${self.saved_usd:.4f}, {sum(s.cached_calls for s in self.stages)} cached calls)"
        lines.append(
            f"final rows: {self.final_rows}   tokens: {self.prompt_tokens} in + {self.completion_tokens} out{cost}   time: {self.seconds:.1f}s"
        )
        return "\n".join(lines)
