"""The generation stages of the Orca-Math recipe: expand, harden, solve, verify (in `verify.py`), filter.

Each stage that calls a model takes its agents when it is built, as a class or an instance:
``Solve(teacher=MyTeacher)``, ``Harden(suggester=..., editor=...)``, ``Expand(ask_me_anything=...)``.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Literal

from orca_math.agents import AskMeAnything, Editor, Suggester, Teacher
from orca_math.agents.ask_me_anything import check_target
from orca_math.answers import NO_ANSWER_VALUES
from orca_math.engine.estimate import (
    EstimateContext,
    Population,
    StageEstimate,
    prompt_overhead,
    prompt_tokens,
)
from orca_math.engine.items import CallDeferred, ItemFailedError, ItemResult
from orca_math.engine.stage import Row, Stage, StageError
from orca_math.pipeline.verify import Verify
from orca_math.records import Drop, Problem, Usage

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def _problem_row(**fields: Any) -> Row:
    return Problem(**fields).to_row()


class Expand(Stage):
    """Ask-Me-Anything on seeds that have answers; new problems carry their target as known answer.

    Reads `question` and `known_answer`. Writes new rows with the origin its agent's card names
    (`ask_me_anything`), `parent_id` = the seed, and `known_answer` = the target in canonical form. A problem whose target
    is not a number of the restated statement is dropped as `unchecked_target`, before any teacher
    call is spent on it. With `keep_seeds` the seed row itself is passed on too, also when its
    Ask-Me-Anything call fails: the item is then recorded as failed (counted in the funnel, retried
    on a rerun) and still passes the seed on. A seed without an answer is refused with a clear
    error before the run starts.
    """

    name = "expand"
    reads = ("id", "question", "known_answer")
    writes = ("id", "question", "origin", "parent_id", "known_answer")
    requires_answers = True

    def __init__(self, *, keep_seeds: bool = True, max_problems_per_seed: int | None = None,
                 ask_me_anything: Any = None, model: Any = None) -> None:
        super().__init__(model=model, agents={"ask_me_anything": ask_me_anything or AskMeAnything})
        self.keep_seeds = keep_seeds
        self.max_problems_per_seed = max_problems_per_seed

    @property
    def agent(self) -> AskMeAnything:
        return self.agent_for("ask_me_anything")

    def params(self) -> dict[str, Any]:
        return {"keep_seeds": self.keep_seeds, "max_problems_per_seed": self.max_problems_per_seed}

    async def process(self, row: Row) -> ItemResult:
        self.check_row(row)
        if not row.get("known_answer"):
            raise StageError(f"expand needs seeds with answers; seed {row['id']!r} has none")
        try:
            result = await self.agent.call(question=row["question"], answer=row.get("gold_solution") or row["known_answer"])
        except ItemFailedError as exc:
            if not self.keep_seeds:
                raise
            # The seed has a known answer of its own: it goes on, and the failed expansion is recorded
            # (and retried on a rerun) as this item's failure.
            raise ItemFailedError(exc.reason, raw_reply=exc.raw_reply, attempts=exc.attempts, usage=exc.usage,
                                  outputs=[row]) from None
        outputs = [row] if self.keep_seeds else []
        drops: list[Row] = []
        statement = result.output.statement
        for index, problem in enumerate(result.output.problems, start=1):
            new_id = f"{row['id']}-ama{index}"
            target, refused = check_target(statement, problem.target)
            if refused is not None:
                # Refused before any teacher call: its answer could not be known.
                drops.append(Drop(id=new_id, stage=self.name, reason="unchecked_target", detail=refused,
                                  row={"question": problem.question, "target": problem.target, "parent_id": row["id"],
                                       "statement": statement}).to_row())
                continue
            if self.max_problems_per_seed is not None and len(outputs) - int(self.keep_seeds) >= self.max_problems_per_seed:
                break
            outputs.append(
                _problem_row(
                    id=new_id,
                    question=problem.question,
                    origin=self.agent.origin,
                    parent_id=row["id"],
                    known_answer=target,
                    metadata={"statement": statement},
                )
            )
        return ItemResult(outputs=outputs, drops=drops, usage=result.usage)

    def estimate(self, population: Population, context: EstimateContext) -> StageEstimate:
        seeds = population.known
        item = StageEstimate(self.name, inputs=population.rows, outputs=population.rows, calls=len(seeds),
                             note="one new problem per number in each seed")
        item.prompt_tokens = sum(prompt_tokens(self.agent, {"question": r["question"], "answer": r.get("gold_solution") or r.get("known_answer") or ""})
                                 for r in seeds)
        item.completion_tokens = item.calls * context.typical("ask_me_anything")
        new = sum(len(_NUMBER.findall(r["question"])) + 1 for r in seeds)
        if self.max_problems_per_seed:
            new = min(new, len(seeds) * self.max_problems_per_seed)
        population.add(self.agent.origin, float(new), population.mean_question_tokens())
        if not self.keep_seeds:
            population.known = []
        return item


class Harden(Stage):
    """Suggester → Editor, for `rounds` rounds (default 2, as in the paper).

    Each round's Suggester reads the previous round's problem. `keep="all"` passes on every
    round's problem (rounds 1..N, each with `parent_id` = the previous round's problem), `keep="last"`
    only the final round's. The input row is always passed on unchanged. `apply_to` picks which
    origins are hardened ("seed" by default, as the paper hardened its seed set; "all" for every row).
    A round whose reply never parses ends hardening of that row and is recorded as a drop with the
    reason; the rounds before it are kept.
    """

    name = "harden"
    reads = ("id", "question")
    writes = ("id", "question", "origin", "parent_id", "round")

    def __init__(self, rounds: int = 2, *, keep: Literal["all", "last"] = "all", apply_to: str | tuple[str, ...] = "seed",
                 n_suggestions: int = 3, suggester: Any = None, editor: Any = None, model: Any = None) -> None:
        super().__init__(model=model, agents={"suggester": suggester or Suggester, "editor": editor or Editor})
        if rounds < 1:
            raise StageError("harden needs at least 1 round")
        if keep not in ("all", "last"):
            raise StageError(f"harden keep must be 'all' or 'last', not {keep!r}")
        self.rounds = rounds
        self.keep = keep
        self.apply_to = (apply_to,) if isinstance(apply_to, str) else tuple(apply_to)
        self.n_suggestions = n_suggestions

    @property
    def suggester(self) -> Suggester:
        return self.agent_for("suggester")

    @property
    def editor(self) -> Editor:
        return self.agent_for("editor")

    def params(self) -> dict[str, Any]:
        return {"rounds": self.rounds, "keep": self.keep, "apply_to": list(self.apply_to), "n_suggestions": self.n_suggestions}

    async def process(self, row: Row) -> ItemResult:
        self.check_row(row)
        if "all" not in self.apply_to and row.get("origin", "seed") not in self.apply_to:
            return ItemResult(outputs=[row])
        usage = Usage()
        hardened: list[Row] = []
        drops: list[dict[str, Any]] = []
        current = row
        for round_number in range(1, self.rounds + 1):
            new_id = f"{row['id']}-h{round_number}"
            try:
                suggestions = await self.suggester.call(question=current["question"], n_suggestions=self.n_suggestions)
                usage += suggestions.usage
                edited = await self.editor.call(question=current["question"], suggestions=suggestions.output.suggestions)
                usage += edited.usage
            except ItemFailedError as exc:
                usage += exc.usage
                drops.append(Drop(id=new_id, stage=self.name, reason="hardening_failed", detail=exc.reason, row={"parent_id": current["id"]}).to_row())
                break
            current = _problem_row(
                id=new_id,
                question=edited.output.question,
                origin=self.editor.origin,
                parent_id=current["id"],
                round=round_number,
                metadata={"suggestions": suggestions.output.suggestions, "root_id": row["id"]},
            )
            hardened.append(current)
        if self.keep == "last" and hardened:
            hardened = hardened[-1:] if len(hardened) == self.rounds else []
        return ItemResult(outputs=[row, *hardened], drops=drops, usage=usage)

    def estimate(self, population: Population, context: EstimateContext) -> StageEstimate:
        item = StageEstimate(self.name, inputs=population.rows, outputs=population.rows)
        known = [r for r in population.known if "all" in self.apply_to or r.get("origin", "seed") in self.apply_to]
        virtual = [(count, q) for origin, (count, q) in population.virtual.items() if "all" in self.apply_to or origin in self.apply_to]
        count = len(known) + sum(c for c, _ in virtual)
        if not count:
            return item
        question = (sum(c * q for c, q in virtual) + Population(known).mean_question_tokens() * len(known)) / count
        s_over = prompt_overhead(self.suggester, {"question": "", "n_suggestions": self.n_suggestions})
        e_over = prompt_overhead(self.editor, {"question": "", "suggestions": []})
        item.calls = 2 * count * self.rounds
        for _ in range(self.rounds):
            item.prompt_tokens += count * (s_over + question + e_over + question + context.typical("suggester"))
            question = context.typical("editor")  # later rounds read the Editor's problem
        item.completion_tokens = self.rounds * count * (context.typical("suggester") + context.typical("editor"))
        population.add(self.editor.origin, count * (self.rounds if self.keep == "all" else 1), float(context.typical("editor")))
        return item


class Solve(Stage):
    """The Teacher solves each problem; optionally `k` independent solutions (self-consistency).

    Writes `answer` (the solution text), `final_answer`, and `solutions` (every solution's text and
    final answer). With k > 1 and no temperature given, samples at temperature 0.7 so the k calls
    differ; each sample has its own cache key. A problem fails only when all k solutions fail; a
    sample that failed while others answered is listed last in `solutions`, with `final_answer`
    None and its `error`, so a majority vote counts it as a solution that did not agree.
    """

    name = "solve"
    reads = ("id", "question")
    writes = ("answer", "final_answer", "solutions", "teacher_model", "prompt_tokens", "completion_tokens")

    def __init__(self, k: int = 1, *, temperature: float | None = None, max_tokens: int | None = None,
                 teacher: Any = None, model: Any = None) -> None:
        super().__init__(model=model, agents={"teacher": teacher or Teacher})
        if k < 1:
            raise StageError("solve needs k >= 1")
        self.k = k
        self.temperature = temperature if temperature is not None else (0.7 if k > 1 else None)
        self.max_tokens = max_tokens

    @property
    def teacher(self) -> Teacher:
        return self.agent_for("teacher")

    def params(self) -> dict[str, Any]:
        return {"k": self.k, "temperature": self.temperature, "max_tokens": self.max_tokens}

    async def process(self, row: Row) -> ItemResult:
        self.check_row(row)
        usage = Usage()
        solutions: list[dict[str, str | None]] = []
        unanswered: list[dict[str, str | None]] = []
        last_error: ItemFailedError | None = None
        model_name = None
        # The k samples go out together: faster online, and one batch (not k) in batch mode.
        outcomes = await asyncio.gather(*(self._sample(row, index) for index in range(self.k)), return_exceptions=True)
        if any(isinstance(outcome, CallDeferred) for outcome in outcomes):
            raise next(outcome for outcome in outcomes if isinstance(outcome, CallDeferred))
        for outcome in outcomes:
            if isinstance(outcome, ItemFailedError):
                usage += outcome.usage
                last_error = outcome
                unanswered.append({"solution": outcome.raw_reply or "", "final_answer": None, "error": outcome.reason})
                continue
            if isinstance(outcome, BaseException):
                raise outcome
            usage += outcome.usage
            model_name = outcome.model
            solutions.append({"solution": outcome.output.solution, "final_answer": outcome.output.final_answer})
        if not solutions:
            assert last_error is not None
            raise ItemFailedError(last_error.reason, raw_reply=last_error.raw_reply, attempts=last_error.attempts, usage=usage)
        out = {
            **row,
            "answer": solutions[0]["solution"],
            "final_answer": solutions[0]["final_answer"],
            "solutions": solutions + unanswered,
            "teacher_model": model_name,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
        }
        return ItemResult(outputs=[out], usage=usage)

    async def _sample(self, row: Row, index: int):
        # Only what the user set (or k > 1 implies): the rest comes from the Teacher's card.
        sampling: dict[str, Any] = {k: v for k, v in (("temperature", self.temperature), ("max_tokens", self.max_tokens)) if v is not None}
        if self.k > 1:
            sampling["orca_math_sample"] = index
        return await self.teacher.call(question=row["question"], sampling=sampling)

    def estimate(self, population: Population, context: EstimateContext) -> StageEstimate:
        overhead = prompt_overhead(self.teacher, {"question": ""})
        item = StageEstimate(self.name, inputs=population.rows, outputs=population.rows, calls=population.rows * self.k)
        exact = sum(prompt_tokens(self.teacher, {"question": r["question"]}) for r in population.known)
        virtual = sum(count * (overhead + q) for count, q in population.virtual.values())
        item.prompt_tokens = self.k * (exact + virtual)
        item.completion_tokens = item.calls * context.typical("teacher")
        return item


class Filter(Stage):
    """Drops answers longer than `max_answer_chars` (1,800, the paper's rule) and answers whose final
    value does not parse. Every drop has a reason.

    Verify drops the problems it cannot confirm itself, with their evidence; `drop_unverified=True`
    also drops rows it kept unconfirmed (`Verify(keep_unverified=True)`, `verified: false`). A final
    answer of "unsolvable" or "ambiguous" on such a kept row is not counted as unparseable.
    """

    name = "filter"
    reads = ("id", "question", "answer", "final_answer")
    writes = ()
    calls_model = False

    def __init__(self, *, max_answer_chars: int | None = 1800, drop_unparseable: bool = True, drop_unverified: bool = False) -> None:
        super().__init__()
        self.max_answer_chars = max_answer_chars
        self.drop_unparseable = drop_unparseable
        self.drop_unverified = drop_unverified

    def params(self) -> dict[str, Any]:
        return {"max_answer_chars": self.max_answer_chars, "drop_unparseable": self.drop_unparseable, "drop_unverified": self.drop_unverified}

    def reason_to_drop(self, row: Row) -> tuple[str, str] | None:
        from orca_math.answers import parse_number

        if self.max_answer_chars is not None and len(row["answer"]) > self.max_answer_chars:
            return "answer_too_long", f"{len(row['answer'])} > {self.max_answer_chars} characters"
        if self.drop_unverified and row.get("verified") is False:
            verification = row.get("verification") or {}
            return "unverified", f"{verification.get('method', 'none')}: {verification.get('reason') or 'not confirmed'}"
        kept_without_answer = row.get("verified") is False and str(row["final_answer"]).lower() in NO_ANSWER_VALUES
        if self.drop_unparseable and not kept_without_answer and parse_number(str(row["final_answer"])) is None:
            return "unparseable_answer", f"final answer {row['final_answer']!r} is not a number"
        return None

    async def process(self, row: Row) -> ItemResult:
        self.check_row(row)
        reason = self.reason_to_drop(row)
        if reason is None:
            return ItemResult(outputs=[row])
        return ItemResult(drops=[Drop(id=row["id"], stage=self.name, reason=reason[0], detail=reason[1], row=row).to_row()])


__all__ = ["Expand", "Filter", "Harden", "Solve", "Verify"]
