"""Difficulty against your own student: sample it k times per problem and grade the samples.

`Difficulty` is a stage. It sends each kept problem to the student k times (the learning loop's
sampler, `orca_math.learn.sampling.SampleStage`, so the sampling, seeds and cache keys are those of
`orca-math sample`), grades every sample against the row's verified answer with a `GradingPolicy`
(exact by default: no model call), and writes the share of correct samples (`pass_rate`) and a
`difficulty` band:

* ``unsolved``: no sample was right (pass rate 0);
* ``hard``: pass rate at most `DifficultyBands.hard` (0.25);
* ``easy``: pass rate at least `DifficultyBands.easy` (0.75);
* ``medium``: between.

    stages = [*default_stages(), Difficulty("vllm:ckpt/m1", k=8)]
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Any

from orca_math.engine.estimate import EstimateContext, Population, StageEstimate
from orca_math.engine.items import CallDeferred, ItemFailedError, ItemResult
from orca_math.engine.stage import Row, Stage, StageError
from orca_math.grading import GradingPolicy
from orca_math.learn.sampling import SampleStage, checkpoint_options, sample_key
from orca_math.records import Usage

#: The bands, easiest first; `DifficultyBands.band` maps a pass rate to one of them.
BANDS = ("easy", "medium", "hard", "unsolved")


@dataclass(frozen=True)
class DifficultyBands:
    """Pass-rate thresholds of the difficulty bands.

    Attributes:
        easy: a pass rate at least this is ``easy``.
        hard: a pass rate at most this (and above 0) is ``hard``; 0 is ``unsolved``.
    """

    easy: float = 0.75
    hard: float = 0.25

    def __post_init__(self) -> None:
        for name in ("easy", "hard"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise StageError(f"difficulty band threshold {name} must be a number between 0 and 1, not {value!r}.")
        if self.hard >= self.easy:
            raise StageError(f"the hard threshold ({self.hard}) must be below the easy one ({self.easy}).")

    def band(self, pass_rate: float) -> str:
        """The band of a pass rate."""
        if pass_rate <= 0:
            return "unsolved"
        if pass_rate <= self.hard:
            return "hard"
        if pass_rate >= self.easy:
            return "easy"
        return "medium"


class Difficulty(Stage):
    """Samples the student `k` times per problem and grades each sample against the verified answer.

    Reads `question` and `final_answer` (the verified answer; `answer`, the teacher's solution, is
    shown to an LLM grader). Writes `pass_rate` (correct samples / k), `difficulty` (a band, see
    `DifficultyBands`) and `student_answers` (each sample's final answer and whether it was right).
    A sample that fails after the client's retries fails the item (a pass rate over fewer samples
    would not be comparable); a rerun retries it, and samples already answered come from the cache.

    Args:
        student: the student model: a spec (``"vllm:<folder>"`` and ``"hf:<folder>"`` are loaded in
            the Orca prompt format our SFT trains on; a server URL; ``openai:<model>``) or a client.
        k: samples per problem.
        temperature, top_p, max_tokens: the sampling of each request (the paper's 0.7 and 0.95).
        grading: the `GradingPolicy` deciding each sample; exact answer checking (no model) by
            default. An "llm" or "hybrid" policy calls its own Grader model.
        bands: the pass-rate thresholds of the bands.
    """

    name = "difficulty"
    reads = ("id", "question", "final_answer")
    writes = ("pass_rate", "difficulty", "student_answers")
    columns = {"pass_rate": float, "difficulty": str}

    def __init__(self, student: Any, *, k: int = 4, temperature: float = 0.7, top_p: float = 0.95, max_tokens: int = 1024,
                 grading: GradingPolicy | None = None, bands: DifficultyBands | None = None) -> None:
        from orca_math.learn.sampling import check_sampling

        if student is None:
            raise StageError("Difficulty needs a student model (a spec such as 'vllm:ckpt/m1', or a client).")
        try:
            check_sampling(k=k, temperature=temperature, top_p=top_p, max_tokens=max_tokens, concurrency=1)
        except Exception as exc:
            raise StageError(f"Difficulty: {exc}") from None
        if grading is not None and not isinstance(grading, GradingPolicy):
            raise StageError(f"Difficulty grading must be a GradingPolicy, not {type(grading).__name__}.")
        super().__init__(model=student)
        self.k = k
        self.sampling = {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens}
        self.grading = grading or GradingPolicy(mode="exact")
        self.bands = bands or DifficultyBands()
        # Our checkpoints are sampled in the Orca text format, as `orca-math sample` does.
        self.model_load_options = checkpoint_options(student, max_tokens=max_tokens)  # {} for a client
        self._sampler = SampleStage(sampling=self.sampling)

    def params(self) -> dict[str, Any]:
        from orca_math.learn.labelling import describe_grading

        return {"k": self.k, "sampling": self.sampling, "grading": describe_grading(self.grading), "bands": asdict(self.bands)}

    def load(self) -> None:
        self._sampler.bind(self.model)

    async def unload(self) -> None:
        await self._sampler.close()

    async def process(self, row: Row) -> ItemResult:
        self.check_row(row)
        reference = str(row["final_answer"] or "").strip()
        if not reference:
            raise ItemFailedError("the row has no verified final answer to grade the student against")
        outcomes = await asyncio.gather(*(self._sample(row, index) for index in range(self.k)), return_exceptions=True)
        deferred = next((o for o in outcomes if isinstance(o, CallDeferred)), None)
        if deferred is not None:
            raise deferred
        usage = Usage()
        answers: list[dict[str, Any]] = []
        for index, outcome in enumerate(outcomes):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception) or getattr(outcome, "stops_run", False):
                    raise outcome  # Ctrl-C, or an error that fails every item alike: the runner stops the run
                reason = getattr(outcome, "reason", None) or str(outcome) or type(outcome).__name__
                raise ItemFailedError(f"student sample {index} failed: {reason}", usage=usage) from None
            usage += outcome[1]
            answers.append(outcome[0])
        correct = sum(1 for answer in answers if answer["correct"])
        pass_rate = correct / self.k
        out = {**row, "pass_rate": pass_rate, "difficulty": self.bands.band(pass_rate), "student_answers": answers}
        return ItemResult(outputs=[out], usage=usage)

    async def _sample(self, row: Row, index: int) -> tuple[dict[str, Any], Usage]:
        item = {"id": sample_key(row["id"], index), "problem_id": row["id"], "sample_index": index,
                "question": row["question"], "reference": row.get("answer") or f"Final answer: {row['final_answer']}"}
        sampled = await self._sampler.process(item)
        attempt = sampled.outputs[0]
        grading = await self.grading.assess(question=row["question"], reference_answer=str(row["final_answer"]),
                                            reference_solution=row.get("answer") or None, student_solution=attempt["response"])
        verdict = grading.verdict
        return ({"final_answer": attempt.get("final_answer"), "correct": verdict.verdict == "Correct", "method": verdict.method},
                sampled.usage + grading.usage)

    def estimate(self, population: Population, context: EstimateContext) -> StageEstimate:
        from orca_math.tokens import estimate_tokens

        item = StageEstimate(self.name, inputs=population.rows, outputs=population.rows, calls=population.rows * self.k,
                             note=f"{self.k} student samples per kept problem (an upper bound: drops before it are not predicted)")
        known = sum(estimate_tokens(row["question"]) for row in population.known)
        item.prompt_tokens = self.k * (known + sum(count * tokens for count, tokens in population.virtual.values()))
        item.completion_tokens = item.calls * context.typical("student")
        # Priced at the student's price: a self-hosted student has none, and its calls then add nothing.
        name = price_name(self.model_spec)
        cost = context.cost(item.prompt_tokens, item.completion_tokens, model=name)
        item.cost_usd = cost if cost is not None else 0.0
        if cost is None:
            item.note += f"; not priced (no price for {name}: add --price {name}=IN,OUT)"
        return item

    def report(self, records) -> dict[str, Any] | None:
        counts = dict.fromkeys(BANDS, 0)
        for record in records:
            for row in record.get("outputs") or ():
                if row.get("difficulty") in counts:
                    counts[row["difficulty"]] += 1
        return {"difficulty": {"k": self.k, "bands": asdict(self.bands), "counts": counts}}


def price_name(spec: Any) -> str:
    """A stage's own model, named as the run's usage meter names it (so a ``--price`` for that name prices both).

    A server is asked its model's name (``/v1/models``, no paid call) and a checkpoint is named
    without loading it, as `orca_math.models.worker_loaded.name_model` does for the run. When that
    fails (a student server that is not up during a dry run), the name comes from the spec.
    """
    from orca_math._sync import run_sync

    return run_sync(name_for_prices(spec))


async def name_for_prices(spec: Any) -> str:
    """`price_name` in async code (the pilot)."""
    from orca_math.models import ModelRef

    if not isinstance(spec, str | ModelRef):
        from orca_math.models import describe_client

        return describe_client(spec, with_url=False)
    from orca_math.models.worker_loaded import name_model

    try:
        return await name_model(spec)
    except Exception:  # noqa: BLE001 - only a name for prices: the run itself reports an unreachable model
        return _spec_name(spec)


def _spec_name(spec: Any) -> str:
    from orca_math.models import ModelRef

    if isinstance(spec, ModelRef):
        return spec.options.get("model") or _spec_name(spec.spec)  # a served model's name is its price name
    provider, sep, rest = spec.partition(":")
    return rest if sep and provider in ("openai", "azure") else spec


__all__ = ["BANDS", "Difficulty", "DifficultyBands", "name_for_prices", "price_name"]
