"""Grading a student's solution: deterministic answer checking, the LLM Grader, or both (hybrid).

    >>> policy = GradingPolicy(mode="exact")
    >>> policy.grade_sync(question="2 + 3?", reference_answer="5", student_solution="2 + 3 = 5\nFinal answer: 5").verdict
    'Correct'

Modes:

* ``"exact"``: `check_answer` only. When it can't tell (no answer found in the student's solution, an
  answer that is not a readable value, or only a guess among several numbers), the verdict is
  Incorrect and the analysis says it couldn't tell.
* ``"llm"``: the `Grader` agent always (the paper's GPT-4-based exact match).
* ``"hybrid"`` (default): `check_answer` where it is sure (an explicit answer marker, or a closing
  statement with one quantity), the `Grader` agent for everything else.

How sure is sure enough is `min_confidence` ("sole" by default; see `orca_math.answers.check_answer`):
with "marker" only an explicit `Final answer:` / `####` / `\\boxed{}` / "The answer is" decides, with
"guess" the checker also decides from its reading of a closing statement with several numbers.

With ``audit_rate > 0`` a seeded sample of the deterministic verdicts is also sent to the `Grader`; the
deterministic verdict stands, and `GradingPolicy.stats` reports how often the two agreed.

Names: `GradingPolicy` is the policy (which verdicts the checker decides and which go to the LLM);
`Grader` (`orca_math.agents`) is the LLM agent it calls, `GradingPolicy.grader_agent`; a grading mode
is the string "exact", "llm" or "hybrid" (`grading=` in `evaluate`, `label_attempts` and
`IterativeLearner`). `AnswerGrader` and `.grader` are the old names, deprecated for one release.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, get_args

from orca_math._sync import run_sync
from orca_math.answers import CONFIDENCE_LEVELS, AnswerPolicy, Comparison, extract_final_answer
from orca_math.errors import ConfigError
from orca_math.records import Usage, Verdict

if TYPE_CHECKING:  # the agents (autogen, jinja2) load when a policy is built: `orca-math --help` reads GRADE_MODES
    from orca_math.agents.grader import Grader
    from orca_math.models import ModelLike

GradeMode = Literal["exact", "llm", "hybrid"]
GRADE_MODES: tuple[str, ...] = get_args(GradeMode)


@dataclass
class GradingStats:
    """Counts over every `grade` call of one `GradingPolicy`.

    Attributes:
        exact: verdicts decided by the deterministic checker.
        llm: verdicts decided by the Grader agent.
        cant_tell: calls where the deterministic checker could not decide (in hybrid mode these went
            to the LLM; in exact mode they became Incorrect).
        unsure: the part of `cant_tell` where the checker had a verdict, but only from an extraction
            less sure than `min_confidence` (a guess among several numbers).
        audited: deterministic verdicts also sent to the LLM for the audit.
        audit_agreements: audited verdicts where the LLM gave the same label.
        audit_failures: audit calls whose reply never parsed (the deterministic verdict still stands).
    """

    exact: int = 0
    llm: int = 0
    cant_tell: int = 0
    unsure: int = 0
    audited: int = 0
    audit_agreements: int = 0
    audit_failures: int = 0

    @property
    def agreement_rate(self) -> float | None:
        """Share of audited verdicts the LLM agreed with, or None when nothing was audited."""
        return self.audit_agreements / self.audited if self.audited else None

    def to_dict(self) -> dict[str, float | int | None]:
        return {**asdict(self), "agreement_rate": self.agreement_rate}


@dataclass
class Grading:
    """One grading in detail: the verdict plus what led to it.

    Attributes:
        verdict: the final verdict; `verdict.method` says who decided.
        reference_answer: the reference answer used by the deterministic checker, or None.
        comparison: the deterministic checker's result, or None when it was not run (llm mode).
        audit: the LLM's verdict on a deterministic decision, when this one was sampled for the audit.
        audit_error: why the audit gave no verdict (its reply never parsed), else None.
        usage: tokens spent on Grader calls for this grading.
    """

    verdict: Verdict
    reference_answer: str | None = None
    comparison: Comparison | None = None
    audit: Verdict | None = None
    audit_error: str | None = None
    usage: Usage = field(default_factory=Usage)


class GradingPolicy:
    """Grades student solutions against a reference, deterministically, by an LLM, or hybrid.

    Args:
        model: the Grader agent's model (spec or client); needed for "llm" and "hybrid" modes and
            for audits. Use a strong model for real evaluations.
        mode: "exact", "llm" or "hybrid" (see the module docstring).
        audit_rate: share (0 to 1) of deterministic verdicts also sent to the LLM to measure agreement.
        seed: seed of the audit sample; the same seed picks the same items whatever the call order.
        grader_agent: a ready `Grader` agent (e.g. with your own card or template) instead of `model`.
        min_confidence: the least sure answer extraction the deterministic checker may decide on:
            "marker", "sole" (default) or "guess". Less sure cases count as can't tell.
        answer_policy: the `AnswerPolicy` (tolerances, rounding, rule-set version) of every
            deterministic verdict; default `AnswerPolicy()`. Its `min_confidence` is replaced by this
            policy's `min_confidence`, so the floor is set in one place.
        grader: deprecated name of `grader_agent`.

    Attributes:
        grader_agent: the `Grader` agent the policy calls, or None when it calls none (exact mode
            with no audit).
        answer_policy: the `AnswerPolicy` every deterministic verdict is made under (with this
            policy's `min_confidence`).
        stats: the `GradingStats` of every call so far.

    Raises:
        ConfigError: an unknown mode or min_confidence, an audit rate outside [0, 1], an
            `answer_policy` that is not an `AnswerPolicy`, or no model where one is needed.
    """

    def __init__(self, model: ModelLike | None = None, *, mode: GradeMode = "hybrid", audit_rate: float = 0.0,
                 seed: int = 0, grader_agent: Grader | None = None, min_confidence: str = "sole",
                 answer_policy: AnswerPolicy | None = None, grader: Grader | None = None) -> None:
        if grader is not None:
            _deprecated("GradingPolicy(grader=...) is now grader_agent=...")
            if grader_agent is not None and grader_agent is not grader:
                raise ConfigError("grader= and grader_agent= name two different agents; pass grader_agent= only.")
            grader_agent = grader
        if mode not in GRADE_MODES:
            raise ConfigError(f"unknown grading mode {mode!r}; use one of {', '.join(GRADE_MODES)}.")
        if min_confidence not in CONFIDENCE_LEVELS[:-1]:
            raise ConfigError(f"unknown min_confidence {min_confidence!r}; use one of marker, sole, guess.")
        if not isinstance(audit_rate, int | float) or not 0.0 <= audit_rate <= 1.0:
            raise ConfigError(f"audit_rate must be a number between 0 and 1, not {audit_rate!r}.")
        if answer_policy is not None and not isinstance(answer_policy, AnswerPolicy):
            raise ConfigError(f"answer_policy must be an AnswerPolicy, not {type(answer_policy).__name__}.")
        if mode == "llm" and audit_rate:
            raise ConfigError("audit_rate audits deterministic verdicts; mode 'llm' makes none, so leave it at 0.")
        needs_llm = mode != "exact" or audit_rate > 0
        if needs_llm and grader_agent is None and model is None:
            raise ConfigError(f"mode {mode!r}{' with an audit' if audit_rate else ''} needs a grader model: "
                              "pass model= or grader_agent=.")
        self.mode: GradeMode = mode
        self.min_confidence = min_confidence
        self.answer_policy = replace(answer_policy or AnswerPolicy(), min_confidence=min_confidence)
        self.audit_rate = float(audit_rate)
        self.seed = seed
        if grader_agent is None and needs_llm:
            from orca_math.agents.grader import Grader

            grader_agent = Grader(model)
        self.grader_agent = grader_agent
        self.stats = GradingStats()

    def params(self) -> dict[str, Any]:
        """The settings that change verdicts (mode, audit rate, answer policy), for a run key.

        The Grader agent's model and prompt are described by the caller (see
        `orca_math.learn.labelling.describe_grading`), since a client is not plain data.
        """
        return {"mode": self.mode, "min_confidence": self.min_confidence, "audit_rate": self.audit_rate,
                "answer_policy": self.answer_policy.params()}

    @property
    def grader(self) -> Grader | None:
        """Deprecated name of `grader_agent`."""
        _deprecated("GradingPolicy.grader is now .grader_agent")
        return self.grader_agent

    @grader.setter
    def grader(self, agent: Grader | None) -> None:
        _deprecated("GradingPolicy.grader is now .grader_agent")
        self.grader_agent = agent

    async def grade(self, *, question: str, reference_solution: str | None = None, reference_answer: str | None = None,
                    student_solution: str) -> Verdict:
        """Grade one student solution; returns a `Verdict` whose `method` says who decided.

        Give the reference as `reference_answer` (e.g. "72"), `reference_solution` (a worked solution
        whose final answer is extracted), or both (the answer is used for checking, the solution is
        shown to the LLM).

        Raises:
            ConfigError: no reference given, or an empty question or reference.
            TypeError: an input that is not a string.
            AgentFailedError: the Grader's reply never parsed (record it as a failure).
        """
        return (await self.assess(question=question, reference_solution=reference_solution,
                                  reference_answer=reference_answer, student_solution=student_solution)).verdict

    def grade_sync(self, **inputs: str | None) -> Verdict:
        """Synchronous `grade`; also works inside a running event loop such as Jupyter's."""
        return run_sync(self.grade(**inputs))  # type: ignore[arg-type]

    async def assess(self, *, question: str, reference_solution: str | None = None, reference_answer: str | None = None,
                     student_solution: str) -> Grading:
        """Like `grade`, returning the full `Grading` (comparison, audit verdict, tokens used)."""
        _check_text("question", question)
        _check_text("student_solution", student_solution, allow_empty=True)
        for name, value in (("reference_solution", reference_solution), ("reference_answer", reference_answer)):
            if value is not None:
                _check_text(name, value)
        if reference_answer is None and reference_solution is None:
            raise ConfigError("grading needs a reference: pass reference_answer= or reference_solution=.")
        answer = reference_answer if reference_answer is not None else extract_final_answer(reference_solution).value
        llm_reference = reference_solution if reference_solution is not None else f"Final answer: {reference_answer}"
        llm_inputs = {"question": question, "reference_solution": llm_reference, "student_solution": student_solution}

        if self.mode == "llm":
            verdict, usage = await self._ask_llm(llm_inputs)
            return Grading(verdict, answer, None, usage=usage)
        comparison = _compare(answer, student_solution, self.answer_policy, question)
        if comparison.result == "cant_tell":
            self.stats.cant_tell += 1
            self.stats.unsure += _unsure(comparison)
            if self.mode == "hybrid":
                verdict, usage = await self._ask_llm(llm_inputs)
                return Grading(verdict, answer, comparison, usage=usage)
        self.stats.exact += 1
        verdict = _exact_verdict(comparison, answer)
        grading = Grading(verdict, answer, comparison)
        if self.audit_rate and comparison.result != "cant_tell" and self._sampled(question, student_solution):
            await self._audit(grading, llm_inputs)
        return grading

    async def _ask_llm(self, inputs: dict[str, str]) -> tuple[Verdict, Usage]:
        assert self.grader_agent is not None  # guaranteed by __init__ for modes that reach here
        result = await self.grader_agent.call(**inputs)
        self.stats.llm += 1
        return result.output.model_copy(update={"method": "llm"}), result.usage

    async def _audit(self, grading: Grading, inputs: dict[str, str]) -> None:
        from orca_math.agents.base import AgentFailedError

        assert self.grader_agent is not None
        try:
            result = await self.grader_agent.call(**inputs)
        except AgentFailedError as exc:  # an audit is a measurement: a bad reply must not fail the grading
            self.stats.audit_failures += 1
            grading.audit_error = exc.reason
            grading.usage = grading.usage + exc.usage
            return
        grading.audit = result.output.model_copy(update={"method": "llm"})
        grading.usage = grading.usage + result.usage
        self.stats.audited += 1
        self.stats.audit_agreements += int(grading.audit.verdict == grading.verdict.verdict)

    def _sampled(self, question: str, student_solution: str) -> bool:
        # A hash, not a shared RNG: with concurrent calls (and on resume) the same items are picked.
        digest = hashlib.sha256(f"{self.seed}\x00{question}\x00{student_solution}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.audit_rate

    def __repr__(self) -> str:
        return (f"GradingPolicy(mode={self.mode!r}, min_confidence={self.min_confidence!r}, "
                f"audit_rate={self.audit_rate}, answer_policy={self.answer_policy!r}, "
                f"grader_agent={self.grader_agent!r})")


def _compare(answer: str | None, student_solution: str, answer_policy: AnswerPolicy, question: str) -> Comparison:
    if answer is None or not answer.strip():
        return Comparison("cant_tell", "no final answer found in the reference solution", "none", None, None)
    # The question's own numbers, restated in the student's closing sentence, are set aside as candidates.
    return answer_policy.check(answer, student_solution, question=question)


def _unsure(comparison: Comparison) -> bool:
    """True when the checker had a verdict but held it back as less sure than min_confidence."""
    return "min_confidence=" in comparison.reason


def _exact_verdict(comparison: Comparison, answer: str | None) -> Verdict:
    if comparison.result == "cant_tell" and _unsure(comparison):
        analysis = ("Incorrect because the answer check could not tell for sure: the student's solution states "
                    "no final answer explicitly, and its closing statement holds several numbers, so any verdict "
                    f"would rest on a guess: {_sentence(comparison.reason)}")
        return Verdict(analysis=analysis, verdict="Incorrect", method="exact")
    if comparison.result == "cant_tell":
        return Verdict(analysis=f"Incorrect because the answer check could not tell: {_sentence(comparison.reason)}",
                       verdict="Incorrect", method="exact")
    same = comparison.result == "equal"
    predicted = comparison.predicted_value
    if predicted is None:  # no one value was compared: a hedge ("6 or 7 boxes"), or no candidate is the gold
        return Verdict(analysis=f"The student's solution does not give the reference answer {answer}: "
                                f"{_sentence(comparison.reason)}.", verdict="Correct" if same else "Incorrect",
                       method="exact")
    shown = predicted if isinstance(predicted, str) or predicted is None else _show(predicted)
    analysis = (f"The student's final answer {shown} {'equals' if same else 'differs from'} the reference answer {answer} "
                f"({comparison.method} comparison).")
    return Verdict(analysis=analysis, verdict="Correct" if same else "Incorrect", method="exact")


def _show(value) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    as_float = float(value)
    return f"{as_float:g}" if len(f"{as_float:g}") < 12 else f"{value.numerator}/{value.denominator}"


def _sentence(reason: str) -> str:
    reason = reason.strip()
    return reason if reason.endswith(".") else reason + "."


def _check_text(name: str, value: object, *, allow_empty: bool = False) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {type(value).__name__}.")
    if not allow_empty and not value.strip():
        raise ConfigError(f"{name} is empty.")


def grading_policy(grading: GradingPolicy | str | None, grader: GradingPolicy | None = None, *, where: str,
                   default: str | None = None) -> GradingPolicy:
    """The `GradingPolicy` that a `grading=` argument (a policy, or a mode name) and the old `grader=` give.

    Args:
        grading: a `GradingPolicy`, or "exact" / "llm" / "hybrid" for a policy of that mode with no
            model of its own (so only "exact" works without one).
        grader: the deprecated name of `grading`; warns.
        where: the function or class taking the argument, for the messages.
        default: the mode used when neither is given; None makes one of them required.

    Raises:
        ConfigError: both given and different, neither given with no default, or a mode that needs a model.
        TypeError: `grading` is neither a policy nor a string.
    """
    if grader is not None:
        warnings.warn(f"{where}(grader=...) is now grading=...; the old name goes in the next release",
                      DeprecationWarning, stacklevel=3)
        if grading is not None and grading is not grader:
            raise ConfigError(f"{where} got grading= and grader=, which disagree; pass grading= only.")
        grading = grader
    if grading is None:
        if default is None:
            raise ConfigError(f"{where} needs grading=: a GradingPolicy, or the mode 'exact'.")
        grading = default
    if isinstance(grading, str):
        return GradingPolicy(mode=grading)  # type: ignore[arg-type]  # the mode is checked there
    if not isinstance(grading, GradingPolicy):
        raise TypeError(f"grading must be a GradingPolicy or a mode name, not {type(grading).__name__}.")
    return grading


def _deprecated(message: str) -> None:
    warnings.warn(f"{message}; the old name goes in the next release", DeprecationWarning, stacklevel=3)


def __getattr__(name: str) -> object:
    # The old name of the policy stays importable for one release, with a warning where it is used.
    if name == "AnswerGrader":
        warnings.warn("orca_math.grading.AnswerGrader is now GradingPolicy; the old name goes in the next release",
                      DeprecationWarning, stacklevel=2)
        return GradingPolicy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["GRADE_MODES", "GradeMode", "Grading", "GradingPolicy", "GradingStats", "grading_policy"]
