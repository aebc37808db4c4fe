"""The Verify stage: every solved problem's answer confirmed by a `Verifier`, with its evidence, or dropped."""

from __future__ import annotations

from typing import Any

from orca_math.agents import origin_info
from orca_math.answers import NO_ANSWER_VALUES, AnswerPolicy
from orca_math.engine.estimate import (
    EstimateContext,
    Population,
    StageEstimate,
    prompt_overhead,
    prompt_tokens,
)
from orca_math.engine.items import ItemFailedError, ItemResult
from orca_math.engine.stage import Row, Stage
from orca_math.records import Drop, Usage, Verification
from orca_math.verification.verifiers import KnownTarget, Verifier, VerifyContext, resolve_verifier


class Verify(Stage):
    """Confirms each solved problem's answer, keeps the evidence, and drops what it cannot confirm.

    A row with a known answer (a seed, an Ask-Me-Anything target) is checked against it
    (`known_target`); every other row goes to `verifier`: "program" (the default: a written program,
    run in the sandbox, must compute the same answer; one extra call), "majority" (at least a share
    of the k solutions agree; solve with k >= 2), any `Verifier`, or None, which the caller must pass
    explicitly, to leave such rows unchecked (method `none`, kept). A row whose solvers all said the
    problem is "unsolvable" or "ambiguous" is dropped with that reason, before any check. A row that is not confirmed is dropped as
    `unverified`, with its evidence; with `keep_unverified` it is kept instead, with `verified` false.

    Writes `verification` (the `Verification` record: method, answers and votes, program and its
    result or error, reason) and `verified`. When an answer is confirmed, the solution that gave it
    becomes `answer` and `final_answer`.

    Args:
        verifier: the check for rows without a known answer: a name ("program" by default), a
            `Verifier`, or None to keep them unchecked.
        keep_unverified: keep unconfirmed rows (marked `verified: false`) instead of dropping them.
        policy: the `AnswerPolicy` every comparison uses (its `params()` enter the run key).
        model: a model for the verifier's agents only (e.g. a second model writes the programs).
    """

    name = "verify"
    reads = ("id", "question", "final_answer")
    writes = ("answer", "final_answer", "verification", "verified")
    calls_model = False

    def __init__(self, verifier: Verifier | str | None = "program", *, keep_unverified: bool = False,
                 policy: AnswerPolicy | None = None, model: Any = None) -> None:
        self.verifier = resolve_verifier(verifier)
        self.known_target = KnownTarget()
        super().__init__(model=model, agents=dict(self.verifier.agents) if self.verifier is not None else {})
        self.calls_model = bool(self._agent_choices)  # only a verifier with agents calls a model
        self.keep_unverified = keep_unverified
        self.policy = policy or AnswerPolicy()

    def params(self) -> dict[str, Any]:
        verifier = None if self.verifier is None else {"name": self.verifier.name, "class": type(self.verifier).__qualname__,
                                                        "params": self.verifier.params()}
        return {"verifier": verifier, "keep_unverified": self.keep_unverified, "policy": self.policy.params()}

    async def process(self, row: Row) -> ItemResult:
        self.check_row(row)
        solutions = row.get("solutions") or [{"solution": row.get("answer", ""), "final_answer": row["final_answer"]}]
        out = {**row, "solutions": solutions}
        answered = [s for s in solutions if s.get("final_answer") is not None]  # a failed sample has None
        if not answered:
            raise ItemFailedError(f"row {row['id']!r} has no solution with a final answer to verify")
        answers = [str(s["final_answer"]) for s in answered]
        no_answer = [a for a in answers if a.lower() in NO_ANSWER_VALUES]
        if len(no_answer) == len(answers):
            # Every solver said the problem cannot be answered as written: nothing to verify, nothing to keep.
            reason = max(set(no_answer), key=no_answer.count)
            evidence = Verification(method="none", verified=False, answer=reason, reason=f"the solver(s) called the problem {reason}")
            return self._unconfirmed(out, evidence, reason, Usage())
        context = VerifyContext(policy=self.policy, agent=self.agent_for)
        if row.get("known_answer"):
            verification = await self.known_target.verify(out, context)
        elif self.verifier is not None:
            verification = await self.verifier.verify(out, context)
        else:
            verification = Verification(method="none", verified=None, answer=answers[0], reason="not checked: no known answer and no verifier")
        if verification.verified and verification.answer is not None:
            chosen = next((s for s in answered if context.same(verification.answer, str(s["final_answer"]))), answered[0])
            out.update(answer=chosen["solution"], final_answer=chosen["final_answer"])
            if str(chosen["final_answer"]).lower() in NO_ANSWER_VALUES:  # a majority agreed that it cannot be answered
                return self._unconfirmed(out, verification, str(chosen["final_answer"]).lower(), context.usage)
        if verification.verified is False:
            return self._unconfirmed(out, verification, "unverified", context.usage)
        out.update(verification=verification.to_row(), verified=verification.verified)
        return ItemResult(outputs=[out], usage=context.usage)

    def _unconfirmed(self, out: Row, verification: Verification, reason: str, usage: Usage) -> ItemResult:
        out.update(verification=verification.to_row(), verified=False)
        if self.keep_unverified:
            return ItemResult(outputs=[out], usage=usage)
        detail = verification.reason or reason
        return ItemResult(drops=[Drop(id=out["id"], stage=self.name, reason=reason, detail=detail, row=out).to_row()], usage=usage)

    def estimate(self, population: Population, context: EstimateContext) -> StageEstimate:
        item = StageEstimate(self.name, inputs=population.rows, outputs=population.rows,
                             note="no model calls" if not self.calls_model else "one verifier call per problem without a known answer")
        if not self.calls_model:
            return item
        # Problems of an origin with known answers (Ask-Me-Anything's targets) never reach the verifier.
        known = [r for r in population.known if not r.get("known_answer")]
        virtual = [(count, q) for origin, (count, q) in population.virtual.items()
                   if not getattr(origin_info(origin), "known_answer", False)]
        item.calls = int(round(len(known) + sum(count for count, _ in virtual)))
        for role in self._agent_choices:  # each of the verifier's agents is asked once per problem, with its question
            agent = self.agent_for(role)
            overhead = prompt_overhead(agent, {"question": ""})
            item.prompt_tokens += int(round(sum(count * (overhead + q) for count, q in virtual)
                                            + sum(prompt_tokens(agent, {"question": r["question"]}) for r in known)))
            item.completion_tokens += item.calls * context.typical(agent.name)
        if self.model_spec is not None:  # a second model writes the programs: priced at its own price
            from orca_math.pipeline.difficulty import price_name

            name = price_name(self.model_spec)
            cost = context.cost(item.prompt_tokens, item.completion_tokens, model=name)
            item.cost_usd = cost if cost is not None else 0.0
            if cost is None:
                item.note += f"; not priced (no price for {name}: add --price {name}=IN,OUT)"
        return item


__all__ = ["Verify"]
