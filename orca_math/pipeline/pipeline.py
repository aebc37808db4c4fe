"""`Pipeline`: the generation job — stages composed over seeds, run by the one engine, written as a dataset.

The engine (`orca_math.engine.jobs.run_job`) runs the stages in a resumable run folder: each
stage reads the previous stage's checkpoint lazily and appends its own, so memory stays flat and
a crash loses at most the calls in flight. Rerunning the same pipeline on the same seeds and
output folder resumes: finished items are skipped, failed ones are retried. The pipeline adds
what is particular to generation: reading seeds, checking declared dataset columns, and writing
the dataset, drops, failures, summary and dataset card.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orca_math._sync import run_sync
from orca_math.engine.config import EngineConfig
from orca_math.engine.estimate import Estimate, EstimateContext, estimate_stages
from orca_math.engine.executors import Executor
from orca_math.engine.items import ItemFailedError
from orca_math.engine.jobs import Job, run_config, run_job
from orca_math.engine.stage import Row, Stage, close_stages
from orca_math.engine.summary import Funnel
from orca_math.errors import ConfigError
from orca_math.models import ModelLike
from orca_math.pipeline.columns import ExtraColumn, extra_columns
from orca_math.pipeline.defaults import check_majority_sampling, default_stages
from orca_math.pipeline.output import write_outputs


@dataclass
class PipelineResult:
    """What a run produced: where it is on disk, and the funnel."""

    out: Path
    run_dir: Path
    run_key: str
    outputs: dict[str, Path]
    funnel: Funnel
    resumed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def dataset_path(self) -> Path:
        """The saved dataset folder (`datasets.load_from_disk`); KeyError for a run written with `dataset_folder=False`."""
        return self.outputs["hf"]

    def load_dataset(self):
        """The output as a `datasets.Dataset` (from its JSON Lines file when no dataset folder was written)."""
        import datasets

        if "hf" not in self.outputs:
            return datasets.Dataset.from_json(str(self.outputs["jsonl"]))
        return datasets.load_from_disk(str(self.dataset_path))


class Pipeline:
    """Stages composed into one job over seed problems.

    Args:
        stages: the stages, in order; `default_stages()` when None. Users may add, remove,
            reorder or replace stages, including their own `Stage` subclasses.
        model: the model every stage uses unless built with its own: a spec or a `ModelRef` (spec and
            load options; the engine, or each Ray worker, builds the client), or a ready client
            (local executor; on Ray only a client that pickles).
        engine: how models are called (`EngineConfig`: retries, concurrency, breaker, rate caps,
            cache, budget, prices, GC tuning); when given, the keyword arguments below that it
            covers must be left at their defaults.
        executor: where items run: "local" (default), "ray", or an `Executor` such as
            `RayExecutor(address=...)`.
        concurrency: how many items are in flight at once (does not enter the run key).
        managed: wrap the model in orca-math's ManagedClient (retries, adaptive concurrency,
            circuit breaker, response cache, usage metering); turn off to call the client as is.
        cache: True keeps a response cache at `out/cache.sqlite` (shared by every run in that
            folder, so a rerun with a changed stage never pays twice for the same prompt); a
            path puts it elsewhere (share one between pipelines); False turns it off.
        client_options: deprecated: more `ManagedClient` options (`retry`, `concurrency`, ...);
            use `engine=EngineConfig(retry=...)`.
        budget_usd: stop cleanly before a call could take this run's spending (resumes included)
            over this many USD; everything finished is kept. Needs a price for the model.
        prices: USD per million (input, output) tokens by model name, on top of the defaults;
            used for the budget and for the cost per stage in the funnel.
        progress: show a progress bar per stage.
        tune_gc: tune Python's garbage collector while stages run (`orca_math.engine.gc_tuning`);
            at hundreds of calls in flight the default settings cost about a fifth of the CPU.
        mode: "online" (default) sends each call as it comes; "batch" sends them through the
            provider's batch API at the batch price (see docs/batch.md).
        batch: options of batch mode (`orca_math.engine.batch.BatchOptions`).
        recipe: a `GenerateRecipe` that supplies the arguments above, and `run`'s seeds and `out`; beside
            it only `progress`, and as `model` a client the caller loaded for the recipe's model
            section (a spec is refused: the recipe names the model), may be given.
        target_rows: draw seeds until this many rows pass every stage, then stop, and cut the
            dataset to exactly this many in seed order (see `orca_math.pipeline.targets`); the
            seeds (and `limit`) bound the draw. It enters the run key, so a rerun keeps it.
        band_shares: with `target_rows`, fill each difficulty band to its share of the target, e.g.
            ``{"hard": 0.5, "medium": 0.3, "easy": 0.2}`` (the rows need a `difficulty` column: a
            `Difficulty` stage); rows of a full band, or of a band without a share, are cut.

    Example:
        >>> pipeline = Pipeline(model="openai:gpt-4o")
        >>> result = pipeline.run_sync("seeds.jsonl", out="data/run1")
        >>> result.load_dataset()
    """

    def __init__(
        self,
        stages: Sequence[Stage] | None = None,
        *,
        model: ModelLike = "local",
        engine: EngineConfig | None = None,
        executor: Executor | str | None = None,
        concurrency: int = 16,
        managed: bool = True,
        cache: bool | str | Path = True,
        progress: bool = True,
        client_options: dict[str, Any] | None = None,
        budget_usd: float | None = None,
        prices: dict[str, tuple[float, float]] | None = None,
        tune_gc: bool = True,
        mode: str = "online",
        batch: Any = None,
        target_rows: int | None = None,
        band_shares: dict[str, float] | None = None,
        recipe: Any = None,
    ) -> None:
        from orca_math.pipeline.targets import check_band_shares, check_target_executor, check_target_rows

        self.recipe = recipe
        if recipe is not None:  # it supplies these; one of them passed as well is a ConfigError
            stages, model, engine, executor, mode, batch, target_rows, band_shares = recipe.pipeline_arguments(
                stages, model, engine, executor, mode, batch, target_rows, band_shares, progress=progress)
        self.target_rows = check_target_rows(target_rows)
        self.band_shares = check_band_shares(band_shares, self.target_rows)
        if self.target_rows is not None:
            check_target_executor(executor)
        self.stages = list(stages) if stages is not None else default_stages()
        if self.band_shares is not None and not any("difficulty" in stage.writes for stage in self.stages):
            raise ConfigError("band shares need a difficulty band on each row: add a Difficulty stage (--student SPEC).")
        Job("generate", self.stages)  # checks the stage names before anything else
        check_majority_sampling(self.stages)
        # Checked here, so a bad column declaration fails before any call is paid for.
        self.columns = extra_columns(self.stages)
        from orca_math.models import as_model

        self.model_spec = as_model(model)  # a spec becomes a `ModelRef`: the engine builds its client where calls are made
        self.engine = engine or EngineConfig.of(
            concurrency=concurrency, managed=managed, cache=Path(cache) if isinstance(cache, str) else cache,
            progress=progress, budget_usd=budget_usd, prices=dict(prices or {}), tune_gc=tune_gc)
        if client_options:
            import warnings

            warnings.warn("Pipeline(client_options=...) is deprecated; use engine=EngineConfig(...)", DeprecationWarning, stacklevel=2)
        self.client_options = dict(client_options or {})
        self.executor = executor
        from orca_math.engine.modes import check_mode

        self.mode = check_mode(mode)
        self.batch = batch

    # Settings that live in the engine config, readable and settable here as before.
    @property
    def concurrency(self) -> int:
        return self.engine.concurrency

    @property
    def prices(self) -> dict[str, tuple[float, float]]:
        return dict(self.engine.prices)

    @prices.setter
    def prices(self, value: dict[str, tuple[float, float]]) -> None:
        self.engine = self.engine.model_copy(update={"prices": dict(value)})

    @property
    def budget_usd(self) -> float | None:
        return self.engine.budget_usd

    @budget_usd.setter
    def budget_usd(self, value: float | None) -> None:
        fields = {name: getattr(self.engine, name) for name in EngineConfig.model_fields}
        self.engine = EngineConfig.of(**{**fields, "budget_usd": value})  # validated like any config

    def config(self, seeds: Any, seed_options: dict[str, Any]) -> dict[str, Any]:
        """The run's config, as its manifest records it: what enters the run key (plus concurrency, which doesn't)."""
        return run_config(self._job(seeds, seed_options), self.model_spec, self.engine)

    def _job(self, seeds: Any, seed_options: dict[str, Any], *, total: int | None = None) -> Job:
        from orca_math.data.seeds import source_fingerprint

        inputs = {
            "seeds": str(seeds) if isinstance(seeds, str | Path) else type(seeds).__name__,
            "seeds_fingerprint": source_fingerprint(seeds),
            # The size limit only refuses seeds, it never changes one: raising it keeps the run key.
            "seed_options": {k: v for k, v in seed_options.items() if k != "max_seed_chars"},
            **({"target_rows": self.target_rows} if self.target_rows is not None else {}),
            **({"band_shares": self.band_shares} if self.band_shares is not None else {}),
        }
        return Job("generate", self.stages, config=inputs, total=total,
                   check_output=_column_checker(self.columns) if self.columns else None)

    async def run(
        self,
        seeds: Any = None,
        *,
        out: str | Path | None = None,
        limit: int | None = None,
        fresh: bool = False,
        formats: Sequence[str] = ("hf",),
        seed_options: dict[str, Any] | None = None,
        wait: bool = True,
        dataset_folder: bool = True,
    ) -> PipelineResult:
        """Run every stage over the seeds and write the dataset, drops, failures and summary.

        Args:
            seeds: a seed file (JSONL, CSV, parquet), a saved dataset folder, an HF dataset name,
                or an iterable of dicts; see `orca_math.data.read_seeds`. None: the recipe's.
            out: the output folder. The run's checkpoints live in `out/runs/<run key>`. None: the recipe's.
            limit: use only the first `limit` seeds.
            fresh: discard an existing run with the same key instead of resuming it.
            formats: output formats: any of "hf" (always written, unless `dataset_folder` is False),
                "parquet", "jsonl".
            seed_options: column names etc. for `read_seeds`.
            wait: in batch mode, wait for submitted batches (False submits what it can and stops
                with `RunPaused`; run again later to continue).
            dataset_folder: write `out/dataset` (and its card). False writes only `formats` (without
                "parquet": `out/data.jsonl`), and never imports `datasets`, for a caller that wants one
                file (`orca-math solve --out x.jsonl`).

        Raises:
            RunStopped: a fatal error, an early stop or the budget; finished work is kept.
        """
        from orca_math.data.seeds import read_seeds

        if self.recipe is not None:  # what the call leaves out the recipe says, and out/recipe.yaml records it
            seeds, out, limit, seed_options, formats = self.recipe.start_run(seeds, out, limit, seed_options, formats)
        out = Path(out)
        seed_options = {**(seed_options or {}), "limit": limit}
        # One pass over the seeds before any money is spent: it counts them for the progress bars and
        # refuses a malformed row (or, for stages that need answers, a seed without one), naming the row.
        needs_answers = any(stage.requires_answers for stage in self.stages)
        # The ids are kept: the dataset is written in their order at the end (and a target counts rows
        # per seed). Reading them again then parsed every seed a third time, 15 us a row.
        seed_ids = [problem.id for problem in read_seeds(seeds, require_answers=needs_answers, **seed_options)]
        seeds_total = len(seed_ids)

        def inputs(count: int | None = None) -> Iterable[Row]:
            return (problem.to_row() for problem in read_seeds(seeds, **{**seed_options, **({"limit": count} if count is not None else {})}))

        calls = None
        if self.mode == "batch":
            from orca_math.engine.modes import batch_calls

            calls = batch_calls(out, self.batch, wait=wait)

        async def run_wave(count: int, *, fresh: bool = False):
            return await run_job(self._job(seeds, seed_options, total=count), functools.partial(inputs, count), out=out,
                                 model=self.model_spec, engine=self.engine, fresh=fresh, executor=self.executor,
                                 calls=calls, client_options=self.client_options)

        target = None
        if self.target_rows is None:
            finished = await run_wave(seeds_total, fresh=fresh)
            resumed = finished.resumed
        else:
            finished, target, resumed = await self._run_to_target(run_wave, seeds, seed_options, out, seed_ids, fresh=fresh)
        reports = {**finished.reports, **({"batch": calls.summary()} if calls is not None else {})}  # batches, price
        from orca_math.pipeline.targets import RowCut, rows_in_seed_order

        cut = None
        if target is not None:
            finished.funnel.cut_to = target.rows
            reports["target"] = target.to_dict()
            ordered = rows_in_seed_order(finished.run, self.stages, seed_ids[:target.seeds_drawn])
            cut = RowCut(target.target_rows, target.quotas)
        else:  # the dataset in seed order, not in the order items finished (which changes with every run)
            ordered = rows_in_seed_order(finished.run, self.stages, seed_ids)
        outputs = write_outputs(out, finished.run, [s.name for s in self.stages], finished.funnel, formats=formats,
                                extra=reports, columns=self.columns, cut=cut, ordered=ordered, dataset_folder=dataset_folder)
        return PipelineResult(out=out, run_dir=finished.run.path, run_key=finished.key, outputs=outputs,
                              funnel=finished.funnel, resumed=resumed, extra={"target": target} if target is not None else {})

    async def _run_to_target(self, run_wave, seeds: Any, seed_options: dict[str, Any], out: Path, seed_ids: list[str],
                             *, fresh: bool):
        """Waves over growing seed prefixes until `target_rows` rows are kept (see `orca_math.pipeline.targets`)."""
        from orca_math.engine.folder import RunFolder
        from orca_math.pipeline.targets import band_quotas, rows_in_seed_order, run_to_target

        # Held for the whole loop: the lock keeps other processes out between waves, and `fresh` applies once.
        with RunFolder(out, self.config(seeds, seed_options), fresh=fresh) as folder:
            quotas = band_quotas(self.target_rows, self.band_shares) if self.band_shares is not None else None
            finished, target = await run_to_target(
                run_wave, run_dir=folder.path, target_rows=self.target_rows, seeds_available=len(seed_ids),
                seed_ids=lambda count: seed_ids[:count], quotas=quotas, batch=self.mode == "batch",
                final_rows=lambda job, count: rows_in_seed_order(job.run, self.stages, seed_ids[:count]))
            return finished, target, folder.resumed

    def estimate(
        self,
        seeds: Any,
        *,
        limit: int | None = None,
        seed_options: dict[str, Any] | None = None,
        completion_tokens: dict[str, int] | None = None,
    ) -> Estimate:
        """Estimate calls, tokens and cost of running this pipeline on `seeds`, calling no model.

        Each stage estimates itself (`Stage.estimate`), so custom stages can be estimated too.

        Args:
            completion_tokens: typical reply lengths by agent name, to override
                the agent cards' ``estimate.completion_tokens`` (calibrate them with a small real run).
        """
        from orca_math.agents import typical_completion_tokens
        from orca_math.data.seeds import read_seeds
        from orca_math.engine.costs import PriceTable
        from orca_math.models import ModelRef, describe_client, resolve_model
        # An estimate calls nothing: a reference is built without needing its key.
        client = (self.model_spec.build_without_key() if isinstance(self.model_spec, ModelRef)
                  else resolve_model(self.model_spec))
        try:
            for stage in self.stages:
                stage.bind(client)
            rows = [problem.to_row() for problem in read_seeds(seeds, **{**(seed_options or {}), "limit": limit})]
            # Every registered agent's hint, then those of the cards these stages' agents really use.
            used = typical_completion_tokens([agent.card for stage in self.stages for agent in stage.agents()])
            context = EstimateContext(completion_tokens={**typical_completion_tokens(), **used, **(completion_tokens or {})},
                                      model=describe_client(client, with_url=False), prices=PriceTable(dict(self.engine.prices)),
                                      discount=_price_multiplier(self.mode, self.batch))
            return estimate_stages(self.stages, rows, context)
        finally:
            run_sync(close_stages(self.stages))  # what `load` built for the estimate is released, as after a run
            if isinstance(self.model_spec, ModelRef):
                await_close(client)

    def run_sync(self, seeds: Any = None, **kwargs: Any) -> PipelineResult:
        """Synchronous `run`; also works inside a running event loop such as Jupyter's."""
        return run_sync(self.run(seeds, **kwargs))


def _price_multiplier(mode: str, batch: Any) -> float:
    if mode != "batch":
        return 1.0
    from orca_math.engine.modes import batch_price_multiplier

    return batch_price_multiplier(batch)


def await_close(client: Any) -> None:
    """Close a client built from a spec or `ModelRef`, from sync code (a dry run opens no session, but may hold one)."""
    run_sync(client.close())


def _column_checker(columns: list[ExtraColumn]):
    """Checks each output's declared column values: a wrong type fails the item, with why."""

    def check(stage: Stage, output: Row) -> None:
        for column in columns:
            if column.name in stage.columns:
                problem = column.check(output.get(column.name))
                if problem:
                    raise ItemFailedError(problem)

    return check


__all__ = ["Pipeline", "PipelineResult", "default_stages"]
