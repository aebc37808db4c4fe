"""`GenerateRecipe`: seeds → Ask-Me-Anything → Suggester/Editor → Teacher → verification → filter.

It stands for `orca-math generate`: every field is one of its flags, with the flag's default.
`pipeline_arguments()` builds what `Pipeline(recipe=...)` needs from the same fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from orca_math.recipes.common import (
    BatchSection,
    CostSection,
    EngineSection,
    ExecutorSection,
    ModelSection,
    Recorded,
    SeedSection,
)
from orca_math.recipes.fields import Section, option


class GenerateStages(Section):
    """Which stages run and their settings."""

    expand: bool = option(True, "run Ask-Me-Anything expansion (turn off for seeds without answers)",
                          flag="--no-expand", invert=True)
    rounds: int = option(2, "Suggester/Editor hardening rounds (the paper: 2; 0 skips hardening)", flag="--rounds", ge=0)
    keep_rounds: Literal["all", "last"] = option("all", "keep every round's problem, or only the last",
                                                 flag="--keep-rounds")
    dedup: bool = option(True, "drop exact and near-duplicate problems", flag="--no-dedup", invert=True)
    decontaminate: bool = option(True, "drop problems that share a 13-gram with a benchmark test set",
                                 flag="--no-decontaminate", invert=True)
    benchmarks_dir: str | None = option(None, "local copies of the benchmark test sets for decontamination "
                                        "(None: $ORCA_MATH_BENCHMARKS_DIR, else the Hub)", flag="--benchmarks-dir")
    solutions: int = option(1, "Teacher solutions per problem (majority verification needs 2 or more)",
                            flag="--solutions", ge=1)
    max_answer_chars: int = option(1800, "drop answers longer than this many characters (the paper's rule: 1800)",
                                   flag="--max-answer-chars", ge=1)


class VerificationSection(Section):
    """How kept answers are confirmed; known answers are always checked against their targets."""

    verify: Literal["program", "majority", "none"] = option(
        "program", "verify problems without a known answer: 'program' (a written program, run in the sandbox, must "
        "compute the same answer), 'majority' (most of 2 or more solutions agree), or 'none'", flag="--verify")
    keep_unverified: bool = option(False, "keep problems whose answer could not be confirmed, marked verified=false",
                                   flag="--keep-unverified")


class OutputSection(Section):
    """Extra output formats; the HF dataset folder is always written."""

    formats: list[Literal["parquet", "jsonl"]] = option([], "also write these formats next to the dataset folder",
                                                        flag="--format")


class GenerateRecipe(Section):
    """A generation run: what `orca-math generate` does with the same settings as flags."""

    kind: Literal["generate"] = Field("generate", description="the job this recipe runs")
    out: str | None = option(None, "the output folder (None: give --out to `orca-math run`)")
    seeds: SeedSection = Field(description="where the seed problems come from")
    model: ModelSection = Field(default_factory=ModelSection, description="the teacher model")
    stages: GenerateStages = Field(default_factory=GenerateStages, description="the stages and their settings")
    verification: VerificationSection = Field(default_factory=VerificationSection, description="answer verification")
    engine: EngineSection = Field(default_factory=EngineSection, description="how model calls are made")
    cost: CostSection = Field(default_factory=CostSection, description="budget and prices")
    executor: ExecutorSection = Field(default_factory=ExecutorSection, description="where items run")
    batch: BatchSection = Field(default_factory=BatchSection, description="batch mode")
    outputs: OutputSection = Field(default_factory=OutputSection, description="output formats")
    recorded: Recorded | None = Field(None, description="written by a run into its folder's recipe.yaml; not an input")

    def stage_list(self) -> list[Any]:
        """The stages this recipe runs, as `default_stages` builds them."""
        from orca_math.pipeline import default_stages

        verify = None if self.verification.verify == "none" else self.verification.verify
        s = self.stages
        return default_stages(rounds=s.rounds, solutions=s.solutions, verify=verify,
                              keep_unverified=self.verification.keep_unverified, keep_rounds=s.keep_rounds,
                              max_answer_chars=s.max_answer_chars, dedup=s.dedup, decontaminate=s.decontaminate,
                              expand=s.expand, benchmarks_dir=s.benchmarks_dir)

    def seed_options(self) -> dict[str, Any]:
        """The `read_seeds` options of the seed section (as `Pipeline.run(seed_options=...)` takes them)."""
        s = self.seeds
        options = {"question_column": s.question_column, "answer_column": s.answer_column, "id_column": s.id_column,
                   "split": s.split, "max_seed_chars": s.max_seed_chars}
        return {k: v for k, v in options.items() if v is not None and not (k == "split" and v == "train")}

    def pipeline_arguments(self) -> dict[str, Any]:
        """The keyword arguments of `Pipeline` this recipe means (stages, model, engine, executor, mode, batch)."""
        from orca_math.engine.config import EngineConfig

        cache: bool | Path = self.engine.cache
        if cache and self.engine.cache_file:
            cache = Path(self.engine.cache_file).expanduser()
        engine = EngineConfig.of(concurrency=self.engine.concurrency, cache=cache,
                                 budget_usd=self.cost.budget_usd, prices=dict(self.cost.prices),
                                 requests_per_minute=self.engine.rpm, tokens_per_minute=self.engine.tpm,
                                 timeout=self.engine.timeout)
        model: Any = self.model.spec
        if self.model.name or self.model.base_url:
            from orca_math.engine.executors import remember_spec
            from orca_math.models import load_model

            options = {k: v for k, v in {"model": self.model.name, "base_url": self.model.base_url}.items() if v}
            # Remembered, as the CLI does: Ray workers rebuild the client from the spec and its options.
            model = remember_spec(load_model(self.model.spec, **options), self.model.spec, **options)
        executor = None
        if self.executor.name == "ray":
            from orca_math.engine.ray_executor import RayExecutor

            executor = RayExecutor(address=self.executor.ray_address, workers=self.executor.workers)
        batch = None
        if self.batch.enabled:
            from orca_math.engine.batch import BatchOptions

            b = self.batch
            values = {k: v for k, v in {"backend": b.backend, "max_open": b.max_open, "max_requests": b.max_requests,
                                        "max_tokens": b.max_tokens, "poll_seconds": b.poll_seconds,
                                        "price_multiplier": b.price_multiplier, "max_attempts": b.max_attempts,
                                        "vllm_model": b.vllm_model}.items() if v is not None}
            if "poll_seconds" in values:
                values["max_poll_seconds"] = max(values["poll_seconds"], min(600.0, values["poll_seconds"] * 10))
            batch = BatchOptions(**values)
        return {"stages": self.stage_list(), "model": model, "engine": engine, "executor": executor,
                "mode": "batch" if self.batch.enabled else "online", "batch": batch}


__all__ = ["GenerateRecipe", "GenerateStages", "OutputSection", "VerificationSection"]
