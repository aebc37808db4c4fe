"""Label sampled attempts correct or incorrect against the teacher's solution, resumably.

Each `Attempt` is graded by a `GradingPolicy` against its ``reference`` (the teacher's solution):
the reference answer is the final answer stated in that solution (`extract_final_answer`), and
the solution itself is what an LLM grader reads. The label and the deciding method ("exact" or
"llm") are written into the attempt. Each attempt is one item of a run keyed
``"{problem_id}#{sample_index}"``, so rerunning continues where an interrupted run stopped.

    path = await label_attempts("runs/m1-samples/attempts.jsonl", grading=GradingPolicy(mode="exact"),
                                out="runs/m1-labels")
"""

from __future__ import annotations

import copy
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from orca_math.answers import extract_final_answer
from orca_math.engine.config import EngineConfig
from orca_math.engine.folder import content_fingerprint
from orca_math.engine.items import ItemFailedError, ItemResult
from orca_math.engine.jobs import Job, JobRun, run_job, write_summary
from orca_math.engine.runner import results_in_order
from orca_math.engine.stage import Row, Stage
from orca_math.errors import ConfigError, InputError, MissingFileError, check_positive_int
from orca_math.files import iter_jsonl, write_jsonl
from orca_math.grading import GradingPolicy, grading_policy
from orca_math.learn.sampling import sample_key
from orca_math.models import describe_client
from orca_math.records import Attempt

logger = logging.getLogger(__name__)

LABELLED_FILE = "labelled.jsonl"
FAILURES_FILE = "label_failures.jsonl"


def read_attempts(source: str | Path | Iterable[Attempt | Mapping[str, Any]]) -> list[Attempt]:
    """Attempts from a JSONL file of `Attempt` rows, or from records or dicts.

    Raises:
        InputError: no such file, a row that is not a valid `Attempt` (the message names the line), or no rows.
    """
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise MissingFileError(f"No attempts file at {path}.")
        attempts = []
        for number, row in iter_jsonl(path):
            try:
                attempts.append(Attempt.model_validate(row))
            except ValueError as exc:
                first = str(exc).splitlines()[:3]
                raise InputError(f"{path}, line {number} is not an Attempt: {' '.join(first)}") from None
    else:
        attempts = [a if isinstance(a, Attempt) else Attempt.model_validate(a) for a in source]
    if not attempts:
        raise InputError("There are no attempts to label.")
    return attempts


class LabelStage(Stage):
    """Grades one attempt against its teacher solution: the attempt comes out with `label` and `method`.

    Args:
        grading: the `GradingPolicy` (its mode, confidence rule, audit rate and Grader agent). Its
            agent is called through the job's model (the engine's managed client for the agent's model).
    """

    name = "label"
    reads = ("id", "problem_id", "sample_index", "question", "response", "reference")
    writes = ("label", "method", "final_answer")
    runtime = ("_policy",)  # `grading` with its Grader bound to the engine's client, built by `load`

    def __init__(self, grading: GradingPolicy) -> None:
        super().__init__()
        self.grading = grading
        self.calls_model = grading.grader_agent is not None  # exact grading calls no model

    def params(self) -> dict[str, Any]:
        # The key stays "grader", so that runs labelled before the rename still resume.
        return {"grader": describe_grading(self.grading)}

    def load(self) -> None:
        self._policy = _bound_policy(self.grading, self.model)

    async def process(self, row: Row) -> ItemResult:
        attempt = Attempt.model_validate({k: v for k, v in row.items() if k != "id"})
        return ItemResult(outputs=[(await grade_attempt(attempt, self._policy)).to_row()])


async def label_attempts(
    attempts: str | Path | Iterable[Attempt | Mapping[str, Any]],
    *,
    grading: GradingPolicy | str | None = None,
    out: str | Path,
    concurrency: int = 8,
    fresh: bool = False,
    progress: bool = True,
    timeout: float | None = None,
    engine: EngineConfig | None = None,
    executor: Any = None,
    grader: GradingPolicy | None = None,
) -> Path:
    """Grade every attempt against its teacher solution and write the labelled attempts: a one-stage job.

    Args:
        attempts: a JSONL file of `Attempt` rows (e.g. from `sample_responses`), or attempts.
        grading: the `GradingPolicy` that decides each label; ``GradingPolicy(mode="exact")`` (or
            just "exact") needs no model, "llm" and "hybrid" ask its Grader agent (use a strong
            model: the paper used GPT-4).
        out: output folder: ``labelled.jsonl``, ``label_failures.jsonl``, ``summary.json``, ``runs/``.
        concurrency: gradings in flight at once (does not change the run key).
        fresh: discard an earlier run with the same inputs and grader instead of resuming it.
        progress: show a progress bar.
        timeout: seconds allowed per attempt of a grader request; None keeps the default (300 s).
        engine: the engine configuration (overrides `concurrency`, `progress` and `timeout`).
        executor: where gradings run ("local", "ray" or an `Executor`).
        grader: deprecated name of `grading`.

    Returns:
        The path of ``labelled.jsonl``: every attempt that could be graded, with ``label`` and
        ``method`` set, in input order. Attempts that could not be (no teacher solution, a grader
        reply that never parsed, a teacher solution without a final answer under exact grading) are
        `Failure` rows in ``label_failures.jsonl``; ``summary.json`` has the counts by method.

    Raises:
        ConfigError: unreadable attempts, a repeated (problem_id, sample_index), bad concurrency, or
            no grading given.
    """
    policy = grading_policy(grading, grader, where="label_attempts")
    check_positive_int("concurrency", concurrency)
    rows = read_attempts(attempts)
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for attempt in rows:
        key = sample_key(attempt.problem_id, attempt.sample_index)
        if key in seen:
            raise ConfigError(f"Attempt {key} appears twice; each (problem_id, sample_index) must be unique.")
        seen.add(key)
        items.append({"id": key, **attempt.to_row()})
    fingerprint = content_fingerprint([item["id"], item["question"], item["response"], item["reference"]] for item in items)
    job = Job("label", [LabelStage(policy)], config={"attempts": fingerprint}, total=len(items))
    agent = policy.grader_agent
    config = engine or EngineConfig.of(concurrency=concurrency, progress=progress, timeout=timeout, cache=False)
    finished = await run_job(job, lambda: items, out=out, model=agent.client if agent is not None else None, engine=config,
                             fresh=fresh, executor=executor)
    return _write_outputs(Path(out), finished, items)


async def grade_attempt(attempt: Attempt, grading: GradingPolicy) -> Attempt:
    """`attempt` with ``label`` and ``method`` set by `grading` against ``attempt.reference``.

    Raises:
        ItemFailedError: no teacher solution, or (in exact mode) one without a final answer.
    """
    reference = (attempt.reference or "").strip()
    if not reference:
        raise ItemFailedError("the attempt has no teacher solution (reference) to grade against")
    reference_answer = extract_final_answer(reference).value
    if reference_answer is None and grading.mode == "exact":
        raise ItemFailedError("the teacher's solution states no final answer, so exact grading cannot label it; "
                              "use the llm or hybrid grader")
    verdict = await grading.grade(question=attempt.question, reference_solution=reference,
                                 reference_answer=reference_answer, student_solution=attempt.response)
    final_answer = attempt.final_answer or extract_final_answer(attempt.response, question=attempt.question).value
    return attempt.model_copy(update={"label": verdict.verdict == "Correct", "method": verdict.method,
                                      "final_answer": final_answer})


def describe_grading(grading: GradingPolicy) -> dict[str, Any]:
    """What identifies a grading policy in a run key: mode, audit rate, answer policy, and the Grader's model and prompt.

    The answer policy (with its rule-set version) is in the key, so labels made under older answer
    rules are never resumed as if they were made under the current ones.
    """
    agent = grading.grader_agent
    return {
        "mode": grading.mode, "audit_rate": grading.audit_rate, "min_confidence": grading.min_confidence,
        "answer_policy": grading.answer_policy.params(),
        "model": describe_client(agent.client) if agent is not None else None,
        "prompt": getattr(agent, "fingerprint", None) if agent is not None else None,
    }


def _bound_policy(grading: GradingPolicy, client: Any) -> GradingPolicy:
    """A copy of `grading` whose Grader agent calls `client` (the engine's managed client)."""
    if grading.grader_agent is None or client is None:
        return grading
    policy = copy.copy(grading)
    policy.grader_agent = grading.grader_agent.bound_to(client)
    return policy


def _write_outputs(out: Path, finished: JobRun, items: list[dict[str, Any]]) -> Path:
    labelled, failures = results_in_order(finished.run.checkpoint("label"), (item["id"] for item in items))
    path = write_jsonl(labelled, out / LABELLED_FILE)
    write_jsonl(failures, out / FAILURES_FILE)
    methods = Counter(row["method"] for row in labelled)
    counts = {
        "attempts": len(items), "labelled": len(labelled), "failed": len(failures),
        "correct": sum(1 for row in labelled if row["label"]), "incorrect": sum(1 for row in labelled if not row["label"]),
        "by_method": dict(sorted(methods.items())),
    }
    write_summary(out, finished, counts=counts, outputs={"labelled": str(path), "failures": str(out / FAILURES_FILE)})
    finished.run.update(counts=counts)
    logger.info("labelled %d attempts (%s), %d failed", len(labelled), counts["by_method"], len(failures))
    if failures:
        logger.warning("%d of %d attempts could not be labelled; see %s", len(failures), len(items), out / FAILURES_FILE)
    return path
