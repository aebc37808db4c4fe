"""One answer policy: the comparison rules, tolerances and rule-set version, in one object.

Every deterministic verdict (the Verify stage, grading student samples, evaluation) goes through an
`AnswerPolicy`. Its `params()` enter the run key of the stages that use it, so a run whose answer
rules changed never resumes verdicts made under the old rules.

    >>> AnswerPolicy().compare("72", "72.0").result
    'equal'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from orca_math.answers.check import check_answer
from orca_math.answers.compare import ROUNDING_MODES, Comparison, Rounding, compare_answers
from orca_math.answers.extract import CONFIDENCE_LEVELS

# Bump whenever a rule in orca_math.answers changes a verdict: it is part of every run key that
# holds deterministic verdicts, so resumed runs never keep verdicts made under older rules.
RULE_SET_VERSION = "2026.12.06.17"


@dataclass(frozen=True)
class AnswerPolicy:
    """How answers are compared: tolerances, rounding, the least sure extraction that decides.

    Attributes:
        rel_tol: relative tolerance for unrounded values (see `compare_answers`).
        abs_tol: absolute tolerance for the same case, near zero.
        rounding: which side may be a rounding of the other: "both", "reply" or "none".
        min_confidence: the least sure extraction that may decide a whole reply: "guess", "sole" or
            "marker" (see `check_answer`).
        rule_set: the version of the rules in `orca_math.answers`; set by the library.
    """

    rel_tol: float = 1e-4
    abs_tol: float = 1e-6
    rounding: Rounding = "both"
    min_confidence: str = "guess"
    rule_set: str = RULE_SET_VERSION

    def __post_init__(self) -> None:
        if self.rel_tol < 0 or self.abs_tol < 0:
            raise ValueError(f"tolerances must be >= 0, got rel_tol={self.rel_tol}, abs_tol={self.abs_tol}")
        if self.rounding not in ROUNDING_MODES:
            raise ValueError(f"rounding must be one of {', '.join(ROUNDING_MODES)}, got {self.rounding!r}")
        if self.min_confidence not in CONFIDENCE_LEVELS[:-1]:
            raise ValueError(f"min_confidence must be one of marker, sole, guess, got {self.min_confidence!r}")

    def compare(self, gold: str, predicted: str) -> Comparison:
        """Compare an already extracted answer with `gold` under this policy."""
        return compare_answers(gold, predicted, rel_tol=self.rel_tol, abs_tol=self.abs_tol, rounding=self.rounding)

    def check(self, gold: str, reply: str, *, question: str | None = None) -> Comparison:
        """Extract the final answer of a whole `reply` and compare it with `gold` under this policy."""
        return check_answer(gold, reply, question=question, min_confidence=self.min_confidence, rounding=self.rounding,
                            rel_tol=self.rel_tol, abs_tol=self.abs_tol)

    def params(self) -> dict[str, Any]:
        """The settings that change verdicts, for a stage's `params()` (and so its run key)."""
        return asdict(self)
