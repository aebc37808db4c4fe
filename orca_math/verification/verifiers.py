"""Verifiers: how the Verify stage confirms a solved problem's answer, with the evidence.

A `Verifier` looks at one solved row (its `solutions`, each with a `final_answer`) and returns a
`Verification` record: the method, whether the answer was confirmed, and the evidence (the
answers and their votes, the program and its result). Three are built in:

* `KnownTarget` (`known_target`): the answer known before solving (a seed's gold answer, an
  Ask-Me-Anything target) must equal a solution's answer. No model call.
* `Majority` (`majority`): at least `min_share` of k independent solutions (Solve with k >= 2, at a
  temperature above 0) agree. No extra call: the k solutions are what it costs.
* `ProgramCheck` (`program`): a model writes a short Python program that assigns `answer`
  (the `ProgramWriter` agent); it is run in the sandbox (`run_program`), and the answer is
  confirmed when the program's result equals a step-by-step answer. One extra call per problem.

Every comparison goes through the stage's `AnswerPolicy`, whose `params()` are in the run key.
Write your own by subclassing `Verifier` and overriding `verify` (and `params`, and `agents` when
it calls a model); see docs/verification.md.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from orca_math.agents.program_writer import ProgramWriter
from orca_math.answers import AnswerPolicy
from orca_math.errors import ConfigError
from orca_math.records import Usage, Verification

Row = dict[str, Any]


@dataclass
class VerifyContext:
    """What a verifier may use besides the row: the answer policy, its agents, and a usage tally.

    Attributes:
        policy: compares answers (`policy.compare(a, b).result == "equal"`).
        agent: returns the agent playing a role the verifier declared in `Verifier.agents`, built
            over the Verify stage's model.
        usage: add the usage of every model call here (`context.usage += result.usage`), so the
            funnel and the budget count it.
    """

    policy: AnswerPolicy
    agent: Callable[[str], Any]
    usage: Usage = field(default_factory=Usage)

    def same(self, a: str, b: str) -> bool:
        """Whether two final answers are equal under the policy."""
        return self.policy.compare(str(a), str(b)).result == "equal"


class Verifier(ABC):
    """Base class of the verifiers the Verify stage takes.

    Subclasses set `name` and override:
        * `verify(row, context)` — required: return a `Verification` with `method=self.name`,
          `verified` True or False, the evidence, and a `reason` when not verified. Raise
          `ItemFailedError` (an agent's `AgentFailedError` is one) when the check itself could not
          be done: the item becomes a failure row and is retried on a rerun.
        * `params()` — the settings that change verdicts (they enter the run key);
        * `agents` — class attribute: the agents it calls, by role (`{"program_writer": ProgramWriter}`);
          the Verify stage builds them over its model and fingerprints their cards and templates.

    A row reaches a verifier with at least one solution whose final answer is a value (rows whose
    solvers all said "unsolvable" or "ambiguous" are dropped before).
    """

    name: ClassVar[str] = ""
    agents: ClassVar[Mapping[str, type]] = {}

    def params(self) -> dict[str, Any]:
        """Settings that change this verifier's verdicts."""
        return {}

    @abstractmethod
    async def verify(self, row: Row, context: VerifyContext) -> Verification:
        """Confirm (or not) the answer of one solved row."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params().items())})"


def tally(answers: Sequence[str], context: VerifyContext) -> list[tuple[str, int]]:
    """Group equal answers (under the policy), in first-seen order: [(answer, votes), ...]."""
    groups: list[list[Any]] = []
    for answer in answers:
        for group in groups:
            if context.same(group[0], answer):
                group[1] += 1
                break
        else:
            groups.append([answer, 1])
    return [(answer, votes) for answer, votes in groups]


def _evidence(answers: Sequence[str], context: VerifyContext) -> dict[str, Any]:
    counted = tally(answers, context)
    return {"answers": [a for a, _ in counted], "votes": [v for _, v in counted]}


def final_answers(row: Row) -> list[str]:
    """The final answers of a row's solutions, in order (the single `final_answer` without `solutions`)."""
    solutions = row.get("solutions") or [{"final_answer": row.get("final_answer")}]
    return [str(s["final_answer"]) for s in solutions if s.get("final_answer") is not None]


class KnownTarget(Verifier):
    """Confirms the answer when a solution's final answer equals the row's known answer.

    Used for every row that has a `known_answer` (seeds, Ask-Me-Anything problems), whatever
    verifier handles the rest.
    """

    name = "known_target"

    async def verify(self, row: Row, context: VerifyContext) -> Verification:
        known = str(row["known_answer"])
        answers = final_answers(row)
        confirmed = next((a for a in answers if context.same(known, a)), None)
        reason = None if confirmed is not None else f"the solutions answered {', '.join(dict.fromkeys(answers))}; the known answer is {known}"
        return Verification(method=self.name, verified=confirmed is not None, answer=confirmed if confirmed is not None else answers[0],
                            known_answer=known, reason=reason, **_evidence(answers, context))


class Majority(Verifier):
    """Confirms the answer that at least `min_share` of the row's k solutions agree on.

    The share is of all k: a solution that gave no readable final answer counts as one that did not agree.

    Args:
        min_share: the share of solutions that must agree (default 0.6: 3 of 4, 2 of 3, 3 of 5).
        min_solutions: the fewest solutions a vote needs (default 2); the Solve stage gives k.
    """

    name = "majority"

    def __init__(self, min_share: float = 0.6, *, min_solutions: int = 2) -> None:
        if not 0 < min_share <= 1:
            raise ConfigError(f"majority min_share must be above 0 and at most 1, not {min_share!r}")
        if isinstance(min_solutions, bool) or not isinstance(min_solutions, int) or min_solutions < 2:
            raise ConfigError(f"majority min_solutions must be an integer of at least 2, not {min_solutions!r}")
        self.min_share = min_share
        self.min_solutions = min_solutions

    def params(self) -> dict[str, Any]:
        return {"min_share": self.min_share, "min_solutions": self.min_solutions}

    async def verify(self, row: Row, context: VerifyContext) -> Verification:
        answers = final_answers(row)
        counted = tally(answers, context)
        best, votes = max(counted, key=lambda item: item[1])
        evidence = {"answers": [a for a, _ in counted], "votes": [v for _, v in counted]}
        # A sample that never gave a readable answer (final_answer None) is one of the k and did not agree.
        asked = max(len(answers), len(row.get("solutions") or []))
        if len(answers) < self.min_solutions:
            return Verification(method=self.name, verified=False, answer=best, reason=f"a vote needs at least {self.min_solutions} "
                                f"solutions with a final answer, the row has {len(answers)} of {asked}: solve with k >= {self.min_solutions}",
                                **evidence)
        tied = sum(1 for _, v in counted if v == votes) > 1
        verified = votes / asked >= self.min_share and not tied
        unanswered = f" ({asked - len(answers)} gave no final answer)" if asked > len(answers) else ""
        reason = None if verified else (f"{votes} of {asked} solutions agree on {best}" + (" (a tie)" if tied else "") + unanswered
                                        + f"; at least {self.min_share:.0%} must")
        return Verification(method=self.name, verified=verified, answer=best, reason=reason, **evidence)


class ProgramCheck(Verifier):
    """Confirms the answer when a program written for the problem computes it too.

    The `ProgramWriter` agent writes a program that assigns `answer`; it runs in the sandbox
    (`orca_math.verification.run_program`) under `timeout` seconds, and the row is confirmed when the
    program's value equals one of its step-by-step answers. A program that fails (an error, no
    `answer`, a time-out) or disagrees leaves the row unverified, with the program and its result
    or error as evidence. One extra model call per problem.

    Args:
        timeout: wall-clock (and CPU) seconds a program may run.
    """

    name = "program"
    agents = {"program_writer": ProgramWriter}

    def __init__(self, *, timeout: float = 2.0) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ConfigError(f"program timeout must be a positive number of seconds, not {timeout!r}")
        self.timeout = float(timeout)

    def params(self) -> dict[str, Any]:
        return {"timeout": self.timeout}

    async def verify(self, row: Row, context: VerifyContext) -> Verification:
        from orca_math.verification.sandbox import run_program_async

        written = await context.agent("program_writer").call(question=row["question"])
        context.usage += written.usage
        code = written.output.code
        result = await run_program_async(code, timeout=self.timeout)
        answers = final_answers(row)
        evidence = {**_evidence(answers, context), "program": code, "program_answer": result.value, "program_error": result.error}
        if result.value is None:
            return Verification(method=self.name, verified=False, answer=answers[0],
                                reason=f"the program gave no answer: {result.error}", **evidence)
        confirmed = next((a for a in answers if context.same(result.value, a)), None)
        if confirmed is None:
            return Verification(method=self.name, verified=False, answer=answers[0],
                                reason=f"the program computed {result.value}; the solution answered {', '.join(dict.fromkeys(answers))}", **evidence)
        return Verification(method=self.name, verified=True, answer=confirmed, **evidence)


#: The built-in verifiers by name (`--verify NAME`, `Verify(verifier="NAME")`).
VERIFIERS: dict[str, type[Verifier]] = {"known_target": KnownTarget, "majority": Majority, "program": ProgramCheck}


def resolve_verifier(choice: Verifier | str | None) -> Verifier | None:
    """A verifier from a name ("program", "majority", "known_target"), an instance, or None (none)."""
    if choice is None or isinstance(choice, Verifier):
        return choice
    if isinstance(choice, str):
        try:
            return VERIFIERS[choice]()
        except KeyError:
            raise ConfigError(f"unknown verifier {choice!r}; choose one of {', '.join(VERIFIERS)}, or pass a Verifier") from None
    if isinstance(choice, type) and issubclass(choice, Verifier):
        return choice()
    raise ConfigError(f"verifier must be a name ({', '.join(VERIFIERS)}), a Verifier or None, not {type(choice).__name__}")


__all__ = ["VERIFIERS", "KnownTarget", "Majority", "ProgramCheck", "Verifier", "VerifyContext", "final_answers", "resolve_verifier", "tally"]
