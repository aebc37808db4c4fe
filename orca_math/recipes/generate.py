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
    cache_setting,
)
from orca_math.recipes.fields import Section, option


class GenerateStages(Section):
    """Which stages run and their settings."""

    expand: bool = option(True, "Ask-Me-Anything expansion (seeds without answers need it off)", flag="--no-expand",
                          invert=True)
    rounds: int = option(2, "Suggester/Editor hardening rounds, as in the paper; 0 skips hardening", flag="--rounds",
                         metavar="N", ge=0)
    keep_rounds: Literal["all", "last"] = option("all", "keep every round's problem, or only the last",
                                                 flag="--keep-rounds")
    dedup: bool = option(True, "the check that drops exact and near-duplicate problems", flag="--no-dedup",
                         invert=True)
    decontaminate: bool = option(True, "the 13-gram check against benchmark test sets (it drops problems that share "
                                 "one)", flag="--no-decontaminate", invert=True)
    benchmarks_dir: str | None = option(None, "local copies of the benchmark test sets for decontamination "
                                        "(default: $ORCA_MATH_BENCHMARKS_DIR, else the Hub)", flag="--benchmarks-dir",
                                        metavar="DIR")
    solutions: int = option(1, "Teacher solutions per problem (majority verification needs K >= 2)",
                            flag="--solutions", metavar="K", ge=1)
    max_answer_chars: int = option(1800, "drop answers longer than this many characters (the paper's rule)",
                                   flag="--max-answer-chars", metavar="N", ge=1)


class VerificationSection(Section):
    """How kept answers are confirmed; known answers are always checked against their targets."""

    verify: Literal["program", "majority", "none"] = option(
        "program", "verify problems without a known answer: 'program' (a written program, run in the sandbox, must "
        "compute the same answer; one extra call per problem), 'majority' (at least 60% of K >= 2 solutions must "
        "agree), or 'none' (keep them unchecked); known answers are always checked", flag="--verify")
    keep_unverified: bool = option(False, "keep problems whose answer could not be confirmed, marked verified=false, "
                                   "instead of dropping them", flag="--keep-unverified")
    program_model: str | None = option(None, "with 'program' verification: a second model that writes the programs, a "
                                       "spec such as openai:gpt-4o-mini or http://HOST:8000/v1 (default: the teacher)",
                                       flag="--program-model", metavar="SPEC", min_length=1)


class CurationSection(Section):
    """What the run aims for and keeps: a number of rows, difficulty against a student, curation policies."""

    target_rows: int | None = option(None, "draw seeds until N rows pass every stage, then stop; the dataset is cut "
                                     "to exactly N in seed order (the rows beyond it are beyond_target drops); the "
                                     "seeds and their limit bound the draw (default: use every seed)",
                                     flag="--target-rows", metavar="N", ge=1)
    student: str | None = option(None, "measure each kept problem's difficulty against this student: a spec such as "
                                 "vllm:ckpt/m1, hf:ckpt/m1 or a server URL; writes pass_rate and a difficulty band "
                                 "(easy, medium, hard, unsolved)", flag="--student", metavar="SPEC")
    student_samples: int = option(4, "with a student: samples per problem (at temperature 0.7 and top_p 0.95)",
                                  flag="--student-samples", metavar="K", ge=1)
    curate: list[str] = option([], "with a student: keep:BAND,... keeps only those bands (easy, medium, hard, "
                               "unsolved); harden-easy[:R] sends problems the student finds easy back to the Suggester "
                               "and Editor, at most R extra rounds (default 1)", flag="--curate", metavar="POLICY")
    band_shares: dict[str, float] | None = option(
        None, "with a row target and a student: fill each difficulty band to its share of the target, e.g. "
        "hard=0.5,medium=0.3,easy=0.2 ({hard: 0.5, ...} in a recipe; shares add up to 1; rows beyond a band's share "
        "are cut)", flag="--band-shares", codec="shares", metavar="BAND=SHARE,...")


class OutputSection(Section):
    """Extra output formats; the HF dataset folder is always written."""

    formats: list[Literal["parquet", "jsonl"]] = option([], "also write parquet and/or jsonl next to the dataset "
                                                        "folder", flag="--format")


class GenerateRecipe(Section):
    """A generation run: what `orca-math generate` does with the same settings as flags."""

    kind: Literal["generate"] = Field("generate", description="the job this recipe runs")
    out: str | None = option(None, "the output folder (default: give --out to `orca-math run`)")
    seeds: SeedSection = Field(description="where the seed problems come from")
    model: ModelSection = Field(default_factory=ModelSection, description="the teacher model")
    stages: GenerateStages = Field(default_factory=GenerateStages, description="the stages and their settings")
    verification: VerificationSection = Field(default_factory=VerificationSection, description="answer verification")
    curation: CurationSection = Field(default_factory=CurationSection, description="row targets")
    engine: EngineSection = Field(default_factory=EngineSection, description="how model calls are made")
    cost: CostSection = Field(default_factory=CostSection, description="budget and prices")
    executor: ExecutorSection = Field(default_factory=ExecutorSection, description="where items run")
    batch: BatchSection = Field(default_factory=BatchSection, description="batch mode")
    outputs: OutputSection = Field(default_factory=OutputSection, description="output formats")
    recorded: Recorded | None = Field(None, description="written by a run into its folder's recipe.yaml; not an input")

    def record(self, out: str | Path) -> Path:
        """Write this recipe, resolved, into a run's output folder as recipe.yaml (see `orca_math.recipes.record`)."""
        from orca_math.recipes.record import write_run_recipe

        return write_run_recipe(self.model_copy(update={"out": None}), out)

    def stage_list(self) -> list[Any]:
        """The stages this recipe runs, as `default_stages` builds them."""
        from orca_math.pipeline import default_stages

        verify = None if self.verification.verify == "none" else self.verification.verify
        if self.verification.program_model is not None and verify != "program":
            from orca_math.recipes.fields import RecipeError

            raise RecipeError("recipe field verification.program_model needs verification.verify: program "
                              f"(it is {self.verification.verify!r}): only the program check calls a model.")
        s = self.stages
        stages = default_stages(rounds=s.rounds, solutions=s.solutions, verify=verify,
                                verify_model=self.verification.program_model,
                                keep_unverified=self.verification.keep_unverified, keep_rounds=s.keep_rounds,
                                max_answer_chars=s.max_answer_chars, dedup=s.dedup, decontaminate=s.decontaminate,
                                expand=s.expand, benchmarks_dir=s.benchmarks_dir)
        from orca_math.pipeline.curation import Curation, curation_stages

        curation = Curation.parse(self.curation.curate)
        if self.curation.student is None:
            if curation.active:
                from orca_math.recipes.fields import RecipeError

                raise RecipeError("recipe field curation.curate needs difficulty bands: set curation.student.")
            return stages
        from orca_math.pipeline.difficulty import Difficulty

        measured = [*stages, Difficulty(self.curation.student, k=self.curation.student_samples)]
        return [*stages, measured[-1], *curation_stages(curation, measured)]

    def seed_options(self) -> dict[str, Any]:
        """The `read_seeds` options of the seed section (as `Pipeline.run(seed_options=...)` takes them)."""
        s = self.seeds
        options = {"question_column": s.question_column, "answer_column": s.answer_column, "id_column": s.id_column,
                   "split": s.split, "max_seed_chars": s.max_seed_chars}
        return {k: v for k, v in options.items() if v is not None and not (k == "split" and v == "train")}

    def pipeline_arguments(self, *given: Any, progress: bool = True) -> tuple[Any, ...]:
        """What `Pipeline(recipe=...)` takes from the recipe: stages, model, engine, executor, mode, batch,
        target_rows and band_shares, in that order.

        Args:
            given: those arguments as the caller passed them; one that is not its default is refused,
                except the recipe's own model: a client the caller loaded from the model section, or
                the section's `ModelRef`.
            progress: show a progress bar per stage (how the run looks, not what it computes).

        Raises:
            ConfigError: an argument given beside the recipe.
        """
        names = ("stages", "model", "engine", "executor", "mode", "batch", "target_rows", "band_shares")
        defaults = (None, "local", None, None, "online", None, None, None)
        from orca_math.models import ModelRef

        model = given[1] if len(given) > 1 else None
        # Besides the recipe: a client the caller loaded from its model section, or the section's own ref
        # (the CLI makes it from the same flags).
        own = model is not None and (not isinstance(model, str | ModelRef) or model == self.model.ref())
        both = [name for name, value, default in zip(names, given, defaults, strict=False)
                if value != default and not (name == "model" and own)]
        if both:
            from orca_math.errors import ConfigError

            raise ConfigError(f"Pipeline(recipe=...) takes {', '.join(both)} from the recipe; change the recipe's "
                              "fields instead of passing them too.")
        arguments = self.pipeline_keywords(model=model if own else None, progress=progress)
        return tuple(arguments[name] for name in names)

    def start_run(self, seeds: Any, out: Any, limit: Any, seed_options: Any, formats: Any) -> tuple[Any, ...]:
        """`Pipeline.run`'s seeds, out, limit, seed options and formats, the recipe's where the call leaves
        them out; the recipe is recorded in `out/recipe.yaml`."""
        from orca_math.recipes.fields import RecipeError

        out = self.out if out is None else out
        if out is None:
            raise RecipeError("the recipe has no out: set its out field or pass out= to run.")
        try:
            self.record(out)
        except RecipeError as exc:  # a secret in a field: the run goes on, without a recipe that would leak it
            import logging

            logging.getLogger(__name__).warning("%s was not written: %s", Path(out) / "recipe.yaml", exc)
        return (self.seeds.path if seeds is None else seeds, out, self.seeds.limit if limit is None else limit,
                self.seed_options() if seed_options is None else seed_options,
                tuple(self.outputs.formats) if tuple(formats) == ("hf",) else formats)

    def pipeline_keywords(self, *, model: Any = None, progress: bool = True) -> dict[str, Any]:
        """The keyword arguments of `Pipeline` this recipe means.

        Args:
            model: the recipe's model section as a client the caller loaded, or as its `ModelRef`; None:
                the section's `ModelRef`, which the engine builds where the calls are made.
            progress: show a progress bar per stage.
        """
        from orca_math.engine.config import EngineConfig

        stages = self.stage_list()  # first: a typo in a curation policy must not wait for a model to load
        engine = EngineConfig.of(concurrency=self.engine.concurrency,
                                 cache=cache_setting(self.engine.cache, self.engine.cache_file),
                                 budget_usd=self.cost.budget_usd, prices=dict(self.cost.prices),
                                 requests_per_minute=self.engine.rpm, tokens_per_minute=self.engine.tpm,
                                 timeout=self.engine.timeout, progress=progress)
        if model is None:
            model = self.model.ref()  # built by the engine (or each Ray worker) where the calls are made
        executor = self.executor.build()
        batch = self.batch.options()
        return {"stages": stages, "model": model, "engine": engine, "executor": executor,
                "mode": "batch" if self.batch.enabled else "online", "batch": batch,
                "target_rows": self.curation.target_rows, "band_shares": self.curation.band_shares}


__all__ = ["CurationSection", "GenerateRecipe", "GenerateStages", "OutputSection", "VerificationSection"]
