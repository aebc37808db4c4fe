"""Label sampled attempts correct or incorrect against the teacher's solution, resumably.

Each `Attempt` is graded by an `AnswerGrader` against its ``reference`` (the teacher's solution):
the reference answer is the final answer stated in that solution (`extract_final_answer`), and
the solution itself is what an LLM grader reads. The label and the deciding method ("exact" or
"llm") are written into the attempt. Each attempt is one item of a run keyed
``"{problem_id}#{sample_index}"``, so rerunning continues where an interrupted run stopped.

    path = await label_attempts("runs/m1-samples/attempts.jsonl", grader=AnswerGrader(mode="exact"),
                                out="runs/m1-labels")
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from orca_math.answers import extract_final_answer
from orca_math.data.writers import iter_jsonl, write_jsonl
from orca_math.engine.run import RunFolder
from orca_math.engine.runner import ItemFailedError, ItemResult, results_in_order, run_items
from orca_math.grading import AnswerGrader
from orca_math.learn.sampling import sample_key
from orca_math.models import describe_client
from orca_math.records import Attempt

logger = logging.getLogger(__name__)

LABELLED_FILE = "labelled.jsonl"
FAILURES_FILE = "label_failures.jsonl"
STATS_FILE = "labelling.json"


def read_attempts(source: str | Path | Iterable[Attempt | Mapping[str, Any]]) -> list[Attempt]:
    """Attempts from a JSONL file of `Attempt` rows, or from records or dicts.

    Raises:
        ValueError: a row that is not a valid `Attempt` (the message names the line), or no rows.
        FileNotFoundError: the file does not exist.
    """
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"No attempts file at {path}.")
        attempts = []
        for number, row in iter_jsonl(path):
            try:
                attempts.append(Attempt.model_validate(row))
            except ValueError as exc:
                first = str(exc).splitlines()[:3]
                raise ValueError(f"{path}, line {number} is not an Attempt: {' '.join(first)}") from None
    else:
        attempts = [a if isinstance(a, Attempt) else Attempt.model_validate(a) for a in source]
    if not attempts:
        raise ValueError("There are no attempts to label.")
    return attempts


async def label_attempts(
    attempts: str | Path | Iterable[Attempt | Mapping[str, Any]],
    *,
    grader: AnswerGrader,
    out: str | Path,
    concurrency: int = 8,
    fresh: bool = False,
    progress: bool = True,
) -> Path:
    """Grade every attempt against its teacher solution and write the labelled attempts.

    Args:
        attempts: a JSONL file of `Attempt` rows (e.g. from `sample_responses`), or attempts.
        grader: decides each label; ``AnswerGrader(mode="exact")`` needs no model, "llm" and
            "hybrid" ask its Grader agent (use a strong model: the paper used GPT-4).
        out: output folder: ``labelled.jsonl``, ``label_failures.jsonl``, ``labelling.json``, ``runs/``.
        concurrency: gradings in flight at once (does not change the run key).
        fresh: discard an earlier run with the same inputs and grader instead of resuming it.
        progress: show a progress bar.

    Returns:
        The path of ``labelled.jsonl``: every attempt that could be graded, with ``label`` and
        ``method`` set, in input order. Attempts that could not be (no teacher solution, a grader
        reply that never parsed, a teacher solution without a final answer under exact grading) are
        `Failure` rows in ``label_failures.jsonl``; ``labelling.json`` has the counts by method.

    Raises:
        ValueError: unreadable attempts, a repeated (problem_id, sample_index), or bad concurrency.
    """
    if not isinstance(grader, AnswerGrader):
        raise TypeError(f"grader must be an AnswerGrader, not {type(grader).__name__}.")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a positive integer, not {concurrency!r}.")
    rows = read_attempts(attempts)
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for attempt in rows:
        key = sample_key(attempt.problem_id, attempt.sample_index)
        if key in seen:
            raise ValueError(f"Attempt {key} appears twice; each (problem_id, sample_index) must be unique.")
        seen.add(key)
        items.append({"id": key, **attempt.to_row()})
    config = {"task": "label", "grader": describe_grader(grader), "attempts": _fingerprint(items)}
    out = Path(out)
    run = RunFolder(out, config, fresh=fresh)

    async def process(item: dict[str, Any]) -> ItemResult:
        attempt = Attempt.model_validate({k: v for k, v in item.items() if k != "id"})
        return ItemResult(outputs=[(await grade_attempt(attempt, grader)).to_row()])

    from orca_math.engine.progress import StageProgress

    run.update(status="running")
    with StageProgress(enabled=progress) as bars:
        await run_items("label", items, process, run.checkpoint("label"), key=lambda item: item["id"],
                        concurrency=concurrency, progress=bars.stage("label", len(items)))
    return _write_outputs(out, run, items)


async def grade_attempt(attempt: Attempt, grader: AnswerGrader) -> Attempt:
    """`attempt` with ``label`` and ``method`` set by `grader` against ``attempt.reference``.

    Raises:
        ItemFailedError: no teacher solution, or (in exact mode) one without a final answer.
    """
    reference = (attempt.reference or "").strip()
    if not reference:
        raise ItemFailedError("the attempt has no teacher solution (reference) to grade against")
    reference_answer = extract_final_answer(reference).value
    if reference_answer is None and grader.mode == "exact":
        raise ItemFailedError("the teacher's solution states no final answer, so exact grading cannot label it; "
                              "use the llm or hybrid grader")
    verdict = await grader.grade(question=attempt.question, reference_solution=reference,
                                 reference_answer=reference_answer, student_solution=attempt.response)
    final_answer = attempt.final_answer or extract_final_answer(attempt.response).value
    return attempt.model_copy(update={"label": verdict.verdict == "Correct", "method": verdict.method,
                                      "final_answer": final_answer})


def describe_grader(grader: AnswerGrader) -> dict[str, Any]:
    """What identifies a grader in a run key: mode, audit rate, and the Grader agent's model and prompt."""
    agent = grader.grader
    return {
        "mode": grader.mode, "audit_rate": grader.audit_rate,
        "model": describe_client(agent.client) if agent is not None else None,
        "prompt": getattr(agent, "fingerprint", None) if agent is not None else None,
    }


def _write_outputs(out: Path, run: RunFolder, items: list[dict[str, Any]]) -> Path:
    labelled, failures = results_in_order(run.checkpoint("label"), (item["id"] for item in items))
    path = write_jsonl(labelled, out / LABELLED_FILE)
    write_jsonl(failures, out / FAILURES_FILE)
    methods = Counter(row["method"] for row in labelled)
    counts = {
        "attempts": len(items), "labelled": len(labelled), "failed": len(failures),
        "correct": sum(1 for row in labelled if row["label"]), "incorrect": sum(1 for row in labelled if not row["label"]),
        "by_method": dict(sorted(methods.items())), "run_key": run.key, "run_dir": str(run.path),
    }
    (out / STATS_FILE).write_text(json.dumps(counts, indent=2) + "\n", encoding="utf-8")
    run.update(status="finished", counts=counts)
    logger.info("labelled %d attempts (%s), %d failed", len(labelled), counts["by_method"], len(failures))
    if failures:
        logger.warning("%d of %d attempts could not be labelled; see %s", len(failures), len(items), out / FAILURES_FILE)
    return path


def _fingerprint(items: list[dict[str, Any]]) -> str:
    digest = hashlib.sha256()
    for item in items:
        digest.update(json.dumps([item["id"], item["question"], item["response"], item["reference"]]).encode())
    return digest.hexdigest()[:16]
