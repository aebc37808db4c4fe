"""The pass@1 harness: a student model answers benchmark questions, then each reply is graded.

An evaluation is a job on the one engine with two stages (`orca_math.evaluate.stages`): the
student answers (`AnswerStage`), then a `GradeStage` grades the reply exactly, by the LLM Grader,
or hybrid. The run lives in a folder (`out/runs/<key>`), so rerunning the same evaluation resumes
it: finished items are not asked again, failed ones are. Benchmarks are the seven built in, a
user's file, or a `load_custom` dataset (`orca_math.evaluate.sets`).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets

from orca_math._sync import run_sync
from orca_math.agents.student import Student
from orca_math.answers import AnswerPolicy
from orca_math.engine.config import EngineConfig
from orca_math.engine.folder import content_fingerprint
from orca_math.engine.jobs import Job, JobRun, run_job
from orca_math.errors import ConfigError, check_positive_int
from orca_math.evaluate.report import EvaluationSummary, write_evaluation_report
from orca_math.evaluate.sets import BenchmarkSet, benchmark_sets, parse_benchmarks
from orca_math.evaluate.stages import GRADE_MODES, AnswerStage, GradeStage
from orca_math.models import ModelLike, describe_spec
from orca_math.records import EvaluationItem, Usage, dataset_features

#: The per-item columns, in order, read from `EvaluationItem`. `error` is set (and `verdict` is None)
#: only on failure rows.
ITEM_FEATURES = dataset_features(EvaluationItem)

#: Deprecated alias: the student under evaluation is now its own agent, `orca_math.agents.Student`.
StudentSolver = Student


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
    model: ModelLike | None = None,
    benchmarks: Sequence[Any] | str | Any = ("gsm8k",),
    *,
    limit: int | None = None,
    grading: str | None = None,
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
    engine: EngineConfig | None = None,
    executor: Any = None,
    calls: Any = None,
    model_options: dict[str, Any] | None = None,
    answer_policy: AnswerPolicy | None = None,
    grader: str | None = None,
    cache: bool | str | Path = False,
    recipe: Any = None,
) -> EvaluationResult:
    """Evaluate a student model's pass@1 on benchmarks.

    Args:
        model: the student: a spec (an OpenAI-compatible server URL such as vLLM, "hf:<path>",
            "vllm:<path>", "openai:<model>", "local") or a `ModelRef` (a spec with load options),
            built where the calls are made; or a `ChatCompletionClient`.
        benchmarks: benchmark names from `orca_math.data.BENCHMARKS` (a comma-separated string
            also works), datasets from `load_custom`, or paths of question/answer files; any mix.
        limit: evaluate only the first `limit` items of each benchmark.
        grading: "exact", "llm" or "hybrid" (default; see `orca_math.grading`).
        grader_model: the LLM grader's model; defaults to the student model. Pass a strong model
            for real evaluations in "llm"/"hybrid" mode.
        out: output folder; a new temporary folder when None.
        path: folder of local benchmark copies (else `ORCA_MATH_BENCHMARKS_DIR`, else the Hub).
        concurrency: items in flight at once (does not change the run key).
        sampling: the student's sampling parameters, over the Teacher card's (temperature 0).
        fresh: discard an earlier run with the same key instead of resuming it.
        progress: show a progress bar per stage.
        audit_rate: share of deterministic verdicts also sent to the LLM grader (agreement in the summary).
        managed: wrap clients in `ManagedClient` (retries with backoff, adaptive concurrency).
        timeout: seconds allowed per attempt of a model request; None keeps the default (300 s).
        engine: the engine configuration (overrides `concurrency`, `progress`, `managed`, `timeout`).
        executor: where items run ("local", "ray" or an `Executor`).
        calls: batch-mode sender of deferred calls (see `orca_math.engine.modes.batch_calls`).
        model_options: `load_model` options under a spec's or `ModelRef`'s own (e.g. ``prompt_format="orca"``).
        answer_policy: the `AnswerPolicy` (tolerances, rounding, rule-set version) of the deterministic
            verdicts; default `AnswerPolicy()`. It is part of the run key.
        grader: deprecated name of `grading`.
        cache: a response cache for the student's and the grader's calls: True keeps it at
            `out/cache.sqlite`, a path puts it elsewhere (another run's cache: its unchanged calls are
            answered from it), False (the default) keeps none, so `fresh=True` asks the model again.
        recipe: an `EvalRecipe` (`orca_math.recipes`) that supplies the settings instead, mapped by
            `EvalRecipe.evaluate_arguments` as `orca-math eval` does; beside it only `out`, `fresh`,
            `progress` and, as `model`, a client loaded for the recipe's model section may be given.

    Raises:
        BenchmarkError: an unknown benchmark, or its data can't be loaded.
        ConfigError: a bad mode, limit, concurrency or sampling argument.
        RunStopped: an error that would fail every item (a rejected key); finished items are kept.
    """
    if recipe is not None:
        return await _evaluate_recipe(recipe, locals())
    if model is None:
        raise ConfigError("evaluate needs a model (or a recipe= that names one).")
    mode = _grading_mode(grading, grader)
    check_positive_int("limit", limit, optional=True)
    check_positive_int("concurrency", concurrency)
    if sampling is not None and not isinstance(sampling, Mapping):
        raise ConfigError(f"sampling must be a dict of sampling parameters, not {type(sampling).__name__}.")
    sets = benchmark_sets(benchmarks, path=path, limit=limit)
    items = [item for bench in sets for item in bench.items]
    grade = GradeStage(mode=mode, audit_rate=audit_rate, model=grader_model, answer_policy=answer_policy)
    stages = [AnswerStage(sampling=sampling), grade]
    names = [bench.name for bench in sets]
    job = Job("evaluate", stages, total=len(items), config={
        "benchmarks": names, "limit": limit,
        "items": content_fingerprint([item["benchmark"], item["id"], item["question"], item["gold"]] for item in items)})
    out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="orca-math-eval-"))
    # No response cache by default: checkpoints already keep every answer, and fresh=True means ask again.
    # `orca-math eval` keeps one, so a recorded run reproduces in another folder without asking again.
    config = engine or EngineConfig.of(concurrency=concurrency, progress=progress, managed=managed, timeout=timeout,
                                       cache=Path(cache) if isinstance(cache, str) else cache)
    started = time.perf_counter()
    finished = await run_job(job, lambda: items, out=out, model=model, engine=config, fresh=fresh, executor=executor,
                             calls=calls, model_options=model_options)
    rows, usage = _collect(finished, items)
    grader_spec = None if mode == "exact" and not audit_rate else describe_spec(grader_model if grader_model is not None else model)
    summary = EvaluationSummary.from_rows(rows, benchmarks=names, model=describe_spec(model), grading=mode,
                                          grader_model=grader_spec)
    run_info = {"job": "evaluate", "run_key": finished.key, "run_dir": str(finished.run.path), "usage": usage.to_row(),
                "seconds": round(time.perf_counter() - started, 3), "funnel": finished.funnel.to_dict()}
    files = write_evaluation_report(out, rows, summary, run_info)
    finished.run.update(summary=summary.to_dict())
    dataset = datasets.Dataset.from_list(rows, features=ITEM_FEATURES)
    return EvaluationResult(dataset, summary, out, finished.run.path, finished.key, finished.resumed, files)


async def _evaluate_recipe(recipe: Any, given: dict[str, Any]) -> EvaluationResult:
    from orca_math.options import refuse_beside_recipe

    refuse_beside_recipe("evaluate(recipe=...)", evaluate, given, ("recipe", "model", "out", "fresh", "progress"))
    from orca_math.models import ModelRef

    model = given["model"]
    # A spec is a second model; a reference is one unless it is the recipe's own (the CLI makes it from the same flags).
    if isinstance(model, str) or isinstance(model, ModelRef) and model != recipe.model.ref():
        raise ConfigError("evaluate(recipe=...) takes model from the recipe; change its model section, or pass a "
                          "client loaded for it.")
    # Without a client, the recipe's model goes down as its `ModelRef`: the run's engine builds and closes it.
    return await evaluate(**recipe.evaluate_arguments(model=model, out=given["out"], fresh=given["fresh"],
                                                      progress=given["progress"]))


def evaluate_sync(model: ModelLike | None = None, benchmarks: Sequence[Any] | str | Any = ("gsm8k",), **kwargs: Any) -> EvaluationResult:
    """Synchronous `evaluate`; also works inside a running event loop such as Jupyter's."""
    return run_sync(evaluate(model, benchmarks, **kwargs))


def _grading_mode(grading: str | None, grader: str | None) -> str:
    if grader is not None:
        import warnings

        warnings.warn("evaluate(grader=...) is now grading=...; the old name goes in the next release",
                      DeprecationWarning, stacklevel=3)
        if grading is not None and grading != grader:
            raise ConfigError(f"grading={grading!r} and grader={grader!r} disagree; pass grading= only.")
        grading = grader
    mode = grading or "hybrid"
    if mode not in GRADE_MODES:
        raise ConfigError(f"unknown grading mode {mode!r}; use one of {', '.join(GRADE_MODES)}.")
    return mode


def _collect(finished: JobRun, items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Usage]:
    """One row per item, in benchmark order: the graded row, or a failure row with its reason."""
    answered = {record["key"]: record for record in finished.records("answer")}
    graded = {record["key"]: record for record in finished.records("grade")}
    rows, usage = [], Usage()
    for item in items:
        for record in (answered.get(item["id"]), graded.get(item["id"])):
            if record is not None:
                usage = usage + Usage.model_validate(record.get("usage") or {})
        record = graded.get(item["id"])
        if record is not None and record["status"] == "ok":
            rows.append(record["outputs"][0])
            continue
        failed = record if record is not None else answered.get(item["id"])
        reason = (failed or {}).get("failure", {}).get("reason") or "failed"
        rows.append(EvaluationItem(benchmark=item["benchmark"], id=item["id"], question=item["question"], gold=item["gold"],
                                   correct=False, error=reason).to_row())
    return rows, usage


__all__ = ["ITEM_FEATURES", "BenchmarkSet", "EvaluationResult", "StudentSolver", "evaluate", "evaluate_sync",
           "parse_benchmarks"]
