"""The pass@1 harness: a student model answers benchmark questions, an `AnswerGrader` grades each reply.

The run lives in a folder (`out/runs/<key>`, one checkpoint per benchmark keyed by item id), so
rerunning the same evaluation resumes it: finished items are not asked again, failed ones are.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets

from orca_math._sync import run_sync
from orca_math.agents.base import AgentFailedError
from orca_math.agents.teacher import Teacher
from orca_math.answers import extract_final_answer
from orca_math.data.benchmarks import BENCHMARKS, BenchmarkError, load_benchmark
from orca_math.engine.checkpoint import CheckpointFile
from orca_math.engine.progress import StageProgress
from orca_math.engine.run import RunFolder
from orca_math.engine.runner import ItemFailedError, ItemResult, records_in_order, run_items
from orca_math.evaluate.report import EvaluationSummary, write_report
from orca_math.grading import GRADE_MODES, AnswerGrader, GradeMode
from orca_math.models import ModelLike, describe_client, describe_spec, resolve_model
from orca_math.records import Record, Usage

#: Benchmarks whose source rows hold a worked gold solution, shown to the LLM grader as the reference.
SOLUTION_FIELDS: dict[str, str] = {"gsm8k": "answer"}

_STRING_COLUMNS = ("benchmark", "id", "question", "gold", "response", "extracted_answer", "extraction_rule",
                   "verdict", "correct", "method", "analysis", "audit_verdict", "audit_error", "error")
#: The per-item columns, in order. `error` is set (and `verdict` is None) only on failure rows.
ITEM_FEATURES = datasets.Features(
    {name: datasets.Value("bool" if name == "correct" else "string") for name in _STRING_COLUMNS}
)


class StudentReply(Record):
    """A student's reply, kept verbatim."""

    text: str


class StudentSolver(Teacher):
    """The student answers with the Teacher's prompt, but any reply is kept and graded as it is.

    A reply without the `Final answer:` line is not a failure in an evaluation: the grader's
    extraction falls back to other rules (`#### N`, `\\boxed{}`, "the answer is", the last number).
    """

    output_type = StudentReply
    rejects_template_echoes = False  # a student echoing the prompt is graded wrong, not asked again

    def parse(self, reply: str, inputs: Mapping[str, Any]) -> StudentReply:
        return StudentReply(text=reply)


@dataclass
class EvaluationResult:
    """What `evaluate` produced.

    Attributes:
        dataset: one row per item, with the columns of `ITEM_FEATURES`.
        summary: pass@1 per benchmark with counts and the method split.
        out: the output folder (items.jsonl, summary.json, table.md, runs/).
        run_dir: the run's folder with its manifest and checkpoints.
        run_key: the run's key.
        resumed: whether an earlier run with the same key was continued.
        files: "items", "summary" and "table" -> their paths.
    """

    dataset: datasets.Dataset
    summary: EvaluationSummary
    out: Path
    run_dir: Path
    run_key: str
    resumed: bool
    files: dict[str, Path] = field(default_factory=dict)

    def table(self) -> str:
        """pass@1 per benchmark as a Markdown table."""
        return self.summary.table()


async def evaluate(
    model: ModelLike,
    benchmarks: Sequence[str] | str = ("gsm8k",),
    *,
    limit: int | None = None,
    grader: GradeMode = "hybrid",
    grader_model: ModelLike | None = None,
    out: str | Path | None = None,
    path: str | Path | None = None,
    concurrency: int = 8,
    sampling: dict[str, Any] | None = None,
    fresh: bool = False,
    progress: bool = True,
    audit_rate: float = 0.0,
    managed: bool = True,
    timeout: float | None = None,
) -> EvaluationResult:
    """Evaluate a student model's pass@1 on benchmarks.

    Args:
        model: the student: a spec (an OpenAI-compatible server URL such as vLLM, "hf:<path>",
            "openai:<model>", "local") or a `ChatCompletionClient`.
        benchmarks: names from `orca_math.data.BENCHMARKS` (a comma-separated string also works).
        limit: evaluate only the first `limit` items of each benchmark.
        grader: "exact", "llm" or "hybrid" (see `orca_math.grading`).
        grader_model: the LLM grader's model; defaults to the student model. Pass a strong model
            for real evaluations in "llm"/"hybrid" mode.
        out: output folder; a new temporary folder when None.
        path: folder of local benchmark copies (else `ORCA_MATH_BENCHMARKS_DIR`, else the Hub).
        concurrency: items in flight at once (does not change the run key).
        sampling: the student's sampling parameters, over the Teacher card's (temperature 0).
        fresh: discard an earlier run with the same key instead of resuming it.
        progress: show a progress bar per benchmark.
        audit_rate: share of deterministic verdicts also sent to the LLM grader (agreement in the summary).
        managed: wrap clients in `ManagedClient` (retries with backoff, adaptive concurrency).
        timeout: seconds allowed per attempt of a model request (`RetryPolicy.timeout`); None keeps
            the default (300 s).

    Raises:
        BenchmarkError: an unknown benchmark, or its data can't be loaded.
        ValueError: a bad mode, limit, concurrency or sampling argument.
        RunStopped: an error that would fail every item (a rejected key); finished items are kept.
    """
    names = parse_benchmarks(benchmarks)
    if grader not in GRADE_MODES:
        raise ValueError(f"unknown grader mode {grader!r}; use one of {', '.join(GRADE_MODES)}.")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, not {limit!r}.")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a positive integer, not {concurrency!r}.")
    if sampling is not None and not isinstance(sampling, Mapping):
        raise ValueError(f"sampling must be a dict of sampling parameters, not {type(sampling).__name__}.")
    items = {name: _items(load_benchmark(name, path=path, limit=limit)) for name in names}

    owned: list[Any] = []  # clients built here from specs, closed at the end
    student_client = _client(model, managed, concurrency, owned, timeout)
    solver = StudentSolver(student_client, sampling=sampling, parse_retries=0)
    needs_llm = grader != "exact" or audit_rate > 0
    grader_client = None
    if needs_llm:
        grader_client = student_client if grader_model is None else _client(grader_model, managed, concurrency, owned, timeout)
    answer_grader = AnswerGrader(grader_client, mode=grader, audit_rate=audit_rate)
    config = {
        "task": "evaluate",
        "model": describe_spec(model),
        "model_name": describe_client(student_client, with_url=False),
        "benchmarks": names,
        "limit": limit,
        "grader": grader,
        "grader_model": None if grader_client is None else describe_spec(grader_model if grader_model is not None else model),
        "audit_rate": audit_rate,
        "sampling": solver.sampling,
        "student_prompt": solver.fingerprint,
        "grader_prompt": answer_grader.grader.fingerprint if answer_grader.grader else None,
        "items": _fingerprint(items),
        "concurrency": concurrency,
    }
    out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="orca-math-eval-"))
    run = RunFolder(out, config, fresh=fresh)
    run.update(status="running")
    started = time.perf_counter()

    async def process(item: dict[str, Any]) -> ItemResult:
        return await _evaluate_item(item, solver, answer_grader)

    try:
        with StageProgress(enabled=progress) as bars:
            for name in names:
                hook = bars.stage(name, len(items[name]))
                await run_items(name, items[name], process, run.checkpoint(name), concurrency=concurrency, progress=hook)
    finally:
        for client in owned:
            await client.close()
    rows: list[dict[str, Any]] = []
    usage = Usage()
    for name in names:
        benchmark_rows, benchmark_usage = _collect(run.checkpoint(name), items[name])
        rows.extend(benchmark_rows)
        usage = usage + benchmark_usage
    summary = EvaluationSummary.from_rows(rows, benchmarks=names, model=config["model"], grader=grader,
                                          grader_model=config["grader_model"])
    run_info = {"run_key": run.key, "run_dir": str(run.path), "usage": usage.to_row(),
                "seconds": round(time.perf_counter() - started, 3)}
    files = write_report(out, rows, summary, run_info)
    run.update(status="finished", summary=summary.to_dict())
    dataset = datasets.Dataset.from_list(rows, features=ITEM_FEATURES)
    return EvaluationResult(dataset, summary, out, run.path, run.key, run.resumed, files)


def evaluate_sync(model: ModelLike, benchmarks: Sequence[str] | str = ("gsm8k",), **kwargs: Any) -> EvaluationResult:
    """Synchronous `evaluate`; also works inside a running event loop such as Jupyter's."""
    return run_sync(evaluate(model, benchmarks, **kwargs))


async def _evaluate_item(item: dict[str, Any], solver: StudentSolver, answer_grader: AnswerGrader) -> ItemResult:
    answered = await solver.call(question=item["question"])  # a model error after retries fails the item
    response = answered.output.text
    extraction = extract_final_answer(response)
    try:
        grading = await answer_grader.assess(question=item["question"], reference_solution=item["reference_solution"],
                                             reference_answer=item["gold"], student_solution=response)
    except AgentFailedError as exc:
        raise ItemFailedError(f"the grader's reply never parsed ({exc.reason})", raw_reply=exc.raw_reply,
                              attempts=exc.attempts, usage=answered.usage + exc.usage) from exc
    verdict = grading.verdict
    row = {
        "benchmark": item["benchmark"], "id": item["id"], "question": item["question"], "gold": item["gold"],
        "response": response, "extracted_answer": extraction.value, "extraction_rule": extraction.rule,
        "verdict": verdict.verdict, "correct": verdict.correct, "method": verdict.method, "analysis": verdict.analysis,
        "audit_verdict": grading.audit.verdict if grading.audit else None, "audit_error": grading.audit_error,
        "error": None,
    }
    return ItemResult(outputs=[row], usage=answered.usage + grading.usage)


def parse_benchmarks(benchmarks: Sequence[str] | str) -> list[str]:
    """Benchmark names, lower-cased and deduplicated; a string is split on commas.

    Raises:
        BenchmarkError: an unknown name (the message lists the known ones), or no name at all.
    """
    if isinstance(benchmarks, str):
        benchmarks = benchmarks.split(",")
    names: list[str] = []
    for raw in benchmarks:
        if not isinstance(raw, str):
            raise BenchmarkError(f"benchmark names must be strings, not {type(raw).__name__}.")
        name = raw.strip().lower()
        if name and name not in names:
            names.append(name)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise BenchmarkError(f"unknown benchmark {', '.join(map(repr, unknown))}; known: {', '.join(BENCHMARKS)}.")
    if not names:
        raise BenchmarkError(f"no benchmark given; known: {', '.join(BENCHMARKS)}.")
    return names


def _items(dataset: datasets.Dataset) -> list[dict[str, Any]]:
    items = []
    for row in dataset:
        solution_field = SOLUTION_FIELDS.get(row["benchmark"])
        solution = row.get(solution_field) if solution_field else None
        items.append({
            "id": row["id"], "benchmark": row["benchmark"], "question": row["question"], "gold": row["gold"],
            "reference_solution": solution if isinstance(solution, str) and solution.strip() else f"Final answer: {row['gold']}",
        })
    return items


def _fingerprint(items: Mapping[str, list[dict[str, Any]]]) -> str:
    digest = hashlib.sha256()
    for name, rows in items.items():
        for item in rows:
            digest.update(json.dumps([name, item["id"], item["question"], item["gold"]]).encode())
    return digest.hexdigest()[:16]


def _client(model: ModelLike, managed: bool, concurrency: int, owned: list[Any], timeout: float | None = None):
    client = resolve_model(model)
    if isinstance(model, str):
        owned.append(client)
    if not managed:
        return client
    from orca_math.engine.client import ManagedClient, RetryPolicy

    if isinstance(client, ManagedClient):
        return client
    return ManagedClient(client, concurrency=concurrency, retry=RetryPolicy(timeout=timeout) if timeout else None)


def _collect(checkpoint: CheckpointFile, items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Usage]:
    """One row per item, in benchmark order: the graded row, or a failure row with its reason."""
    rows, usage = [], Usage()
    for item, record in zip(items, records_in_order(checkpoint, (item["id"] for item in items)), strict=True):
        if record["status"] == "ok":
            rows.append(record["outputs"][0])
            usage = usage + Usage.model_validate(record.get("usage") or {})
            continue
        failure = record["failure"]
        row = dict.fromkeys(_STRING_COLUMNS)
        row.update(benchmark=item["benchmark"], id=item["id"], question=item["question"], gold=item["gold"],
                   correct=False, error=failure.get("reason") or "failed")
        rows.append(row)
    return rows, usage


__all__ = ["ITEM_FEATURES", "SOLUTION_FIELDS", "EvaluationResult", "StudentSolver", "evaluate", "evaluate_sync",
           "parse_benchmarks"]
