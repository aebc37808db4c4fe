"""The two stages of an evaluation job: the student answers, then its reply is graded.

Two stages, so each calls one model: `AnswerStage` the student, `GradeStage` the LLM grader (when
its grading mode needs one; deterministic checking calls none). Both run on the one engine, so an
evaluation resumes, retries, shares the budget and runs on any executor like every job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from orca_math.agents.grader import Grader
from orca_math.agents.student import Student
from orca_math.answers import CONFIDENCE_LEVELS, AnswerPolicy, extract_final_answer
from orca_math.engine.items import ItemFailedError, ItemResult
from orca_math.engine.stage import Row, Stage
from orca_math.errors import ConfigError
from orca_math.grading import GRADE_MODES, GradingPolicy
from orca_math.records import EvaluationItem


class AnswerStage(Stage):
    """The student answers one benchmark question with the Teacher's prompt; its reply is kept verbatim.

    Args:
        sampling: the student's sampling parameters, over the Teacher card's (temperature 0).
        student: the student agent (class or instance; default `Student`).
    """

    name = "answer"
    reads = ("id", "benchmark", "question", "gold", "reference_solution")
    writes = ("response", "extracted_answer", "extraction_rule")

    def __init__(self, *, sampling: Mapping[str, Any] | None = None, student: Any = None, model: Any = None) -> None:
        super().__init__(model=model, agents={"student": student or Student})
        self.sampling = dict(sampling or {})

    def params(self) -> dict[str, Any]:
        return {"sampling": self.sampling}

    async def process(self, row: Row) -> ItemResult:
        answered = await self.agent_for("student").call(question=row["question"], sampling=self.sampling)
        response = answered.output.text
        # The question's numbers, restated in a free-form closing sentence, are not read as its answer.
        extraction = extract_final_answer(response, question=row["question"])
        out = {**row, "response": response, "extracted_answer": extraction.value, "extraction_rule": extraction.rule}
        return ItemResult(outputs=[out], usage=answered.usage)


class GradeStage(Stage):
    """Grades the student's reply against the gold answer: deterministically, by the LLM Grader, or hybrid.

    The reply is graded by a `GradingPolicy` with the item's question, so the question's own numbers
    restated in a free-form closing sentence are set aside (see `orca_math.answers.check_answer`).

    Args:
        mode: "exact", "llm" or "hybrid" (see `orca_math.grading`).
        audit_rate: share of deterministic verdicts also sent to the LLM (agreement in the summary).
        min_confidence: the least sure answer extraction the deterministic checker decides on.
        answer_policy: the `AnswerPolicy` of the deterministic verdicts (default `AnswerPolicy()`); its
            `params()`, with the rule-set version, are in the run key.
        grader: the Grader agent (class or instance; default `Grader`), for modes that call it.
        model: the grader's model; None grades with the job's model (the student's).
    """

    name = "grade"
    reads = ("id", "benchmark", "question", "gold", "reference_solution", "response")
    writes = tuple(EvaluationItem.model_fields)
    runtime = ("policy",)  # the GradingPolicy over the bound Grader, built by `load`

    def __init__(self, *, mode: str = "hybrid", audit_rate: float = 0.0, min_confidence: str = "sole",
                 answer_policy: AnswerPolicy | None = None, grader: Any = None, model: Any = None) -> None:
        if mode not in GRADE_MODES:
            raise ConfigError(f"unknown grading mode {mode!r}; use one of {', '.join(GRADE_MODES)}.")
        if isinstance(audit_rate, bool) or not isinstance(audit_rate, int | float) or not 0.0 <= audit_rate <= 1.0:
            raise ConfigError(f"audit_rate must be a number between 0 and 1, not {audit_rate!r}.")
        if min_confidence not in CONFIDENCE_LEVELS[:-1]:
            raise ConfigError(f"unknown min_confidence {min_confidence!r}; use one of {', '.join(CONFIDENCE_LEVELS[:-1])}.")
        if answer_policy is not None and not isinstance(answer_policy, AnswerPolicy):
            raise ConfigError(f"answer_policy must be an AnswerPolicy, not {type(answer_policy).__name__}.")
        # One confidence floor: the stage's, as GradingPolicy does.
        self.answer_policy = replace(answer_policy or AnswerPolicy(), min_confidence=min_confidence)
        self.needs_llm = mode != "exact" or audit_rate > 0
        super().__init__(model=model, agents={"grader": (grader or Grader)} if self.needs_llm else None)
        self.mode, self.audit_rate, self.min_confidence = mode, float(audit_rate), min_confidence
        self.calls_model = self.needs_llm
        self.policy: GradingPolicy | None

    def params(self) -> dict[str, Any]:
        return {"mode": self.mode, "audit_rate": self.audit_rate, "min_confidence": self.min_confidence,
                "answer_policy": self.answer_policy.params()}

    def load(self) -> None:
        agent = self.agent_for("grader") if self.needs_llm else None
        self.policy = GradingPolicy(mode=self.mode, audit_rate=self.audit_rate, min_confidence=self.min_confidence,
                                    answer_policy=self.answer_policy, grader_agent=agent)

    async def process(self, row: Row) -> ItemResult:
        assert self.policy is not None, "loaded by the engine before it runs"
        try:
            grading = await self.policy.assess(question=row["question"], reference_solution=row["reference_solution"],
                                               reference_answer=row["gold"], student_solution=row["response"])
        except ItemFailedError as exc:  # the Grader's reply never parsed
            raise ItemFailedError(f"the grader's reply never parsed ({exc.reason})", raw_reply=exc.raw_reply,
                                  attempts=exc.attempts, usage=exc.usage) from exc
        verdict = grading.verdict
        item = EvaluationItem(
            benchmark=row["benchmark"], id=row["id"], question=row["question"], gold=row["gold"], response=row["response"],
            extracted_answer=row.get("extracted_answer"), extraction_rule=row.get("extraction_rule"),
            verdict=verdict.verdict, correct=verdict.correct, method=verdict.method, analysis=verdict.analysis,
            audit_verdict=grading.audit.verdict if grading.audit else None, audit_error=grading.audit_error,
        )
        return ItemResult(outputs=[item.to_row()], usage=grading.usage)


__all__ = ["GRADE_MODES", "AnswerStage", "GradeStage"]
