"""A job is stages over inputs in a run folder: the one path every workload runs on.

`run_job` gives every job — the generation pipeline, sampling, labelling, evaluation and the
learning loop's steps — the same things, written once:

* the run folder, its key and its lock (`orca_math.engine.folder`); rerunning resumes;
* one managed client per model, sharing a response cache and one budget (`orca_math.engine.config`);
* each stage bound once, its whole input shown first when it asks (`needs_whole_input`);
* every item ending as exactly one output or failure line, wherever it ran (the executor) and
  however its calls were sent (online, or deferred to a batch);
* one progress bar per stage, and one funnel (`orca_math.engine.summary`) in the manifest.

    job = Job("sample", [SampleStage(k=4)], config={"problems": fingerprint})
    run = await run_job(job, lambda: items, out="runs/samples", model="hf:ckpt/m1")
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orca_math.engine.config import Engine, EngineConfig
from orca_math.engine.executors import Executor, RemoteStage
from orca_math.engine.executors.registry import resolve_executor
from orca_math.engine.folder import RunFolder
from orca_math.engine.items import RunStopped
from orca_math.engine.progress import StageProgress
from orca_math.engine.runner import DeferredCalls, run_items
from orca_math.engine.stage import Row, Stage, StageError, close_stages
from orca_math.engine.summary import Funnel, StageSummary, summarise_stage
from orca_math.errors import ConfigError


@dataclass
class Job:
    """Stages to run in order over one input, and what identifies the input in the run key.

    Attributes:
        kind: what the job is ("generate", "sample", "label", "evaluate", "train", ...).
        stages: the stages, in order; each reads the previous one's outputs.
        config: more run-key content (an input fingerprint, settings that are not a stage's).
        total: how many input items there are, for the first progress bar (None: unknown).
        check_output: called on each output of each stage (declared dataset columns); it raises
            `ItemFailedError` to fail the item.
    """

    kind: str
    stages: Sequence[Stage]
    config: dict[str, Any] = field(default_factory=dict)
    total: int | None = None
    check_output: Callable[[Stage, Row], None] | None = None

    def __post_init__(self) -> None:
        names = [stage.name for stage in self.stages]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise StageError(f"stage names must be unique; repeated: {', '.join(repeated)}")
        if not names:
            raise StageError(f"a {self.kind} job needs at least one stage")


@dataclass
class JobRun:
    """A finished job: its run folder and funnel, and readers of each stage's results.

    Attributes:
        run: the run folder (manifest and checkpoints).
        funnel: counts in and out per stage, drops, failures, tokens and cost.
        reports: what stages added with `Stage.report` (for `summary.json`).
        engine: the engine the job ran with (its meter holds this run's spending).
    """

    run: RunFolder
    funnel: Funnel
    reports: dict[str, Any]
    engine: Engine

    @property
    def key(self) -> str:
        return self.run.key

    @property
    def resumed(self) -> bool:
        return self.run.resumed

    def outputs(self, stage: str) -> Iterator[Row]:
        """Every output row of a stage, in input order."""
        return stage_outputs(self.run, stage)

    def records(self, stage: str) -> Iterator[dict[str, Any]]:
        """The last checkpoint record of each item of a stage, in input order."""
        return self.run.checkpoint(stage).latest()


def write_summary(out: str | Path, finished: JobRun, **fields: Any) -> Path:
    """Write the job's `summary.json`: its kind, run key and folder, funnel, stage reports, and `fields`.

    Every job's output folder has one, in this one format (`OutputFolder` reads it).
    """
    from orca_math.engine.folder import SUMMARY_FILE
    from orca_math.files import write_json

    body = {"job": finished.run.config.get("job"), "run_key": finished.key, "run_dir": str(finished.run.path),
            "funnel": finished.funnel.to_dict(), **finished.reports, **fields}
    return write_json(Path(out) / SUMMARY_FILE, body)


def stage_outputs(run: RunFolder, stage: str) -> Iterator[Row]:
    """Every output row of `stage` in `run`, in input order (what the next stage reads).

    A failed item's rows are included: an item may fail and still pass rows on (`ItemFailedError.outputs`).
    """
    for record in run.checkpoint(stage).latest():
        yield from record.get("outputs") or ()


async def run_job(
    job: Job,
    inputs: Callable[[], Iterable[Row]],
    *,
    out: str | Path,
    model: Any = None,
    engine: EngineConfig | None = None,
    fresh: bool = False,
    executor: Executor | str | None = None,
    calls: DeferredCalls | None = None,
    client_options: dict[str, Any] | None = None,
    model_options: dict[str, Any] | None = None,
) -> JobRun:
    """Run every stage of `job` over `inputs` in the run folder under `out`, resuming an earlier run.

    Args:
        job: the stages and the run-key content.
        inputs: returns a fresh pass over the job's input rows (read lazily, read again on resume).
        out: the output folder; the run lives in `out/runs/<key>`.
        model: the model of every stage built without its own: a `ModelRef` or a spec (the engine
            or the executor's workers build its client where the calls are made), or a ready client
            (the local executor uses it as it is; a remote one ships it only if it pickles); None
            for jobs whose stages call no model.
        engine: how models are called (default `EngineConfig()`).
        fresh: discard an earlier run with the same key instead of resuming it.
        executor: where items run: "local" (default), "ray", or an `Executor`.
        calls: the batch-mode sender of deferred calls (None: calls are made online).
        client_options: deprecated extra `ManagedClient` options.
        model_options: `load_model` options under those of `model` when it is a spec or a `ModelRef`
            (e.g. ``prompt_format``); the ref's own win.

    Raises:
        RunStopped: a fatal error, an early stop or the budget; finished work is kept.
        RunFolderError: another process holds the folder, or it was written by an older layout.
    """
    from orca_math.models import as_model, describe_client

    config = engine or EngineConfig()
    runner = resolve_executor(executor)
    if calls is not None and not runner.processes_here:
        # Workers rebuild their clients from the model spec: their calls would go online, at full price.
        raise ConfigError(f"batch mode runs on the local executor, not {runner.name}: the provider runs the batch, so "
                          "drop --executor ray (or executor=) when you pass --batch (mode='batch').")
    out = Path(out)
    run = RunFolder(out, run_config(job, model, config), fresh=fresh)
    # From here on the job's model is a `ModelRef` (its load options folded in) or the caller's client:
    # each stage's goes to the engine (local) or the executor's workers, which build its client.
    model = as_model(model, **(model_options or {}))
    models = {stage.name: _model_of(stage, model) for stage in job.stages}
    shared = Engine(config, out=out, client_options=client_options)
    try:
        clients = {stage.name: _client_for(stage, models[stage.name], shared, calls, here=runner.loads_models_here)
                   for stage in job.stages}
        model_names = {name: (describe_client(client, with_url=False) if client is not None else None)
                       for name, client in clients.items()}
        for stage in job.stages:  # damaged lines set aside first, so every reader below warns about them once
            run.checkpoint(stage.name).statuses()
        spent = sum(_cost(summarise_stage(s.name, run.checkpoint(s.name)), model_names[s.name], shared) or 0.0
                    for s in job.stages)
        shared.charge_earlier(spent)
        for stage in job.stages:
            stage.bind(clients[stage.name])
        # Each priced stage's price, so that a viewer can price a running run's tokens as the summary will.
        prices = {name: [price.input_per_million, price.output_per_million] for name, model_name in model_names.items()
                  if model_name is not None and (price := shared.meter.prices.price(model_name)) is not None}
        run.update(status="running", executor=runner.describe(), prices=prices)
        started = time.perf_counter()
        summaries: list[StageSummary] = []
        stage_inputs: Callable[[], Iterable[Row]] = inputs
        total = job.total
        with StageProgress(enabled=config.progress) as progress:
            for stage in job.stages:
                checkpoint = run.checkpoint(stage.name)
                redo: set[str] = set()
                if stage.needs_whole_input:
                    stage.prepare(stage_inputs())
                    redo = stage.outdated(checkpoint.latest())
                hook = _StatsHook(progress.stage(stage.name, total), stage.model)
                remote = RemoteStage(stage, model=models[stage.name], engine=config,
                                     cache_path=str(shared.cache.path) if shared.cache is not None else None,
                                     check_output=job.check_output,
                                     budget_usd=shared.budget_left(), spent_before_usd=shared.meter.earlier_usd)
                try:
                    stats = await run_items(stage.name, stage_inputs, _processor(stage, job.check_output), checkpoint,
                                            key=stage.key, concurrency=config.items_in_flight, progress=hook,
                                            tune_gc=config.tune_gc, executor=runner, remote=remote,
                                            calls=calls if stage.calls_model else None, redo=redo)
                except RunStopped as stopped:
                    from orca_math.engine.costs import BudgetExceededError, budget_stop_message

                    if runner.loads_models_here or not isinstance(stopped.__cause__, BudgetExceededError):
                        raise
                    # Remote workers quote the spending they knew of when one stopped; once every
                    # worker has finished, the checkpoints hold all of it.
                    total = sum(_cost(summarise_stage(s.name, run.checkpoint(s.name)), model_names[s.name], shared) or 0.0
                                for s in job.stages)
                    raise RunStopped(budget_stop_message(stopped.__cause__, total, spent)) from stopped.__cause__
                summary = summarise_stage(stage.name, checkpoint)
                summary.skipped = stats.skipped
                summary.seconds = stats.seconds
                summary.cost_usd = _cost(summary, model_names[stage.name], shared)
                summary.saved_usd = _saved(summary, model_names[stage.name], shared)
                summaries.append(summary)
                total = summary.outputs
                stage_inputs = functools.partial(stage_outputs, run, stage.name)
        funnel = Funnel(seeds=job.total if job.total is not None else summaries[0].inputs, stages=summaries,
                        seconds=time.perf_counter() - started)
        reports: dict[str, Any] = {}
        for stage in job.stages:
            reports.update(stage.report(run.checkpoint(stage.name).latest()) or {})
        run.update(status="finished", funnel=funnel.to_dict())
        return JobRun(run=run, funnel=funnel, reports=reports, engine=shared)
    finally:  # on errors too (a stopped run, Ctrl-C): every stage unloaded, no client or HTTP session left open
        await close_stages(job.stages)
        await shared.close()
        await runner.close()


def run_config(job: Job, model: Any, engine: EngineConfig) -> dict[str, Any]:
    """The config a job's manifest records: its kind and input, the model, each stage's fingerprint.

    Everything in it but `concurrency` enters the run key (see `orca_math.engine.folder.run_key`).
    """
    from orca_math.models import describe_spec

    return {"job": job.kind, **job.config, "model": describe_spec(model) if model is not None else None,
            "stages": [stage.fingerprint() for stage in job.stages], "concurrency": engine.concurrency}


def _model_of(stage: Stage, model: Any) -> Any:
    """The model `stage` calls: its own (a `ModelRef`, with the stage's load options under the ref's), else the job's."""
    if stage.model_spec is None:
        return model
    from orca_math.models import as_model

    # The load options of a stage's own model spec (a student checkpoint's prompt format, say).
    return as_model(stage.model_spec, **dict(getattr(stage, "model_load_options", None) or {}))


def _client_for(stage: Stage, model: Any, engine: Engine, calls: Any, *, here: bool) -> Any:
    if not stage.calls_model or model is None:
        return None
    if not here:  # the executor's workers build the client; a checkpoint is not loaded on the driver as well
        from orca_math.models.worker_loaded import worker_loaded_model

        stand_in = worker_loaded_model(model)
        if stand_in is not None:
            return stand_in
    client = engine.client(model)
    # Batch mode defers each call to a batch: the stage calls the same client interface either way.
    wrap = getattr(calls, "wrap", None)
    return wrap(client, meter=engine.meter) if callable(wrap) else client


def _cost(summary: StageSummary, model_name: str | None, engine: Engine) -> float | None:
    """USD of a stage's paid calls (the summary's tokens, cached calls excluded), None without a price."""
    if model_name is None:  # a stage that calls no model has no cost to report
        return None
    price = engine.meter.prices.price(model_name)
    return price.cost(summary.paid_prompt_tokens, summary.paid_completion_tokens) if price else None


def _saved(summary: StageSummary, model_name: str | None, engine: Engine) -> float | None:
    """USD the response cache saved a stage (its cached replies, priced), None without a price."""
    if model_name is None or not summary.cached_calls:
        return 0.0
    price = engine.meter.prices.price(model_name)
    return price.cost(summary.cached_prompt_tokens, summary.cached_completion_tokens) if price else None


def _processor(stage: Stage, check_output: Callable[[Stage, Row], None] | None):
    if check_output is None:
        return stage.process

    async def process(row: Row):
        result = await stage.process(row)
        for output in result.outputs:
            check_output(stage, output)
        return result

    return process


class _StatsHook:
    """Advances a stage's bar and shows the managed client's live concurrency and rates beside it."""

    def __init__(self, hook: Any, client: Any) -> None:
        self._hook, self._client, self._last = hook, client, 0.0

    def advance(self, n: int = 1) -> None:
        self._hook.advance(n)
        now = time.monotonic()
        if hasattr(self._client, "stats") and now - self._last > 0.5:
            self._last = now
            stats = self._client.stats()
            limit = stats.get("concurrency_limit")
            parts = [f"conc {stats.get('in_flight')}/{limit}" if limit else "", f"{stats.get('rpm', 0)} req/min"]
            if stats.get("rate_limited"):
                parts.append(f"429s {stats['rate_limited']}")
            if stats.get("cache_hits"):
                parts.append(f"cached {stats['cache_hits']}")
            self._hook.set_status("  ".join(p for p in parts if p))


__all__ = ["Job", "JobRun", "run_config", "run_job", "stage_outputs", "write_summary"]
