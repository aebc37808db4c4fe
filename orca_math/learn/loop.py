"""The Orca-Math iterative learning loop: SFT, then rounds of sample -> label -> preferences -> KTO/DPO.

* Iteration 1: SFT of the base model on the teacher's solutions -> M1.
* Iteration n >= 2: sample `samples_per_problem` responses per problem from M(n-1) (temperature 0.7,
  top_p 0.95), label them against the teacher's solutions, build preference data (positives: the
  teacher's solution and the correct responses; negatives: the wrong ones, borrowed from other
  problems when a problem has none), train M(n-1) with KTO (or DPO) -> Mn.
* After each iteration: evaluate Mn on a held-out split, on benchmarks, or with your own function.

Every step is a job of the one engine, in its own folder (``out/iteration-<n>/<step>``): sampling,
labelling and evaluation are jobs over many items, the data split, the preferences and the
training are jobs of one item (`orca_math.learn.steps`). Running the same learner again skips
every finished step (and resumes inside unfinished ones), so a stopped loop continues where it
stopped. `docs/learning.md` lists the folders.

    learner = IterativeLearner("ckpt/base", "data/orca-200k", out="runs/loop", preset="mistral-7b")
    results = learner.run_sync()
"""

from __future__ import annotations

import dataclasses
import json
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import datasets

from orca_math._sync import run_sync
from orca_math.answers import extract_final_answer
from orca_math.engine.folder import content_fingerprint
from orca_math.errors import ConfigError, check_positive_int
from orca_math.files import read_json, read_jsonl, write_json, write_jsonl, write_text
from orca_math.grading import GradingPolicy, grading_policy
from orca_math.learn.allocation import allocate_samples, check_policy
from orca_math.learn.formats import sft_dataset
from orca_math.learn.labelling import describe_grading, label_attempts, read_attempts
from orca_math.learn.loop_data import (
    EvalSpec,
    IterationResult,
    check_eval,
    check_trainers,
    close_resource,
    data_id,
    problems_of,
    refuse_marker_layout,
    split_holdout,
)
from orca_math.learn.preferences import PreferenceOptions, build_preferences
from orca_math.learn.presets import TrainingPreset, get_preset
from orca_math.learn.samplers import default_sampler
from orca_math.learn.sampling import check_sampling, checkpoint_options, sample_responses
from orca_math.learn.steps import run_step, train_checkpoint
from orca_math.learn.trainers import Trainer, get_trainer
from orca_math.models import ModelLike, ModelRef, describe_spec

logger = logging.getLogger(__name__)


class IterativeLearner:
    """Runs the Orca-Math loop over a base model and question/answer data, resumably.

    Args:
        base_model: the model folder (or Hub id) iteration 1 fine-tunes.
        data: ``question``/``answer`` rows (the answer is the teacher's solution): a `datasets.Dataset`,
            a list of dicts, or a file/folder `orca_math.data.read_seeds` reads.
        out: the loop's folder (see the module docstring).
        preset: "tiny", "mistral-7b" or a `TrainingPreset`.
        preference_method: "kto" (the paper's best) or "dpo".
        iterations: total iterations, SFT included (the paper: 3). Rerunning with more continues.
        samples_per_problem: responses sampled per problem (the paper: 4).
        grading: the `GradingPolicy` that labels the samples, or a mode name; default "exact"
            (``GradingPolicy(mode="exact")``). The paper used GPT-4: pass
            ``GradingPolicy(strong_model, mode="hybrid")`` for that.
        sampler_model_factory: checkpoint folder -> the model to sample it with (a spec or a
            `ModelRef`, built where the samples are made; or a client, which is not closed here).
            Default: `default_sampler` (vLLM where it can run, else ``hf:``; the learner logs
            which). To sample a served checkpoint, return its URL.
        eval: after each iteration: a float in (0, 1) holds out that share of the problems (never
            trained on) and scores greedy answers against the teacher's final answers; a tuple
            ``(benchmarks, limit)`` runs `orca_math.evaluate` (with the grading's mode); a function
            ``(checkpoint, iteration) -> {name: accuracy}`` (may be async); None skips evaluation.
        trainers: overrides for "sft", "dpo" and "kto": any object implementing `Trainer`.
        temperature, top_p, max_tokens: sampling parameters of iterations 2+ (the paper: 0.7, 0.95).
        preference_options: how preference rows are built (default: the paper's recipe).
        balance_kto_weights: when the preset leaves both KTO weights at 1, use the weights
            `PreferenceStats` suggests for the desirable/undesirable ratio.
        concurrency: samples and gradings in flight at once.
        benchmarks_dir: local benchmark copies for a ``(benchmarks, limit)`` evaluation.
        progress: show progress bars.
        executor: where sampling, labelling and evaluation items run ("local", "ray", an `Executor`).
        grader: deprecated name of `grading`.
        sampling_policy: "uniform" samples `samples_per_problem` responses of every problem;
            "prop2diff" spends the same budget in proportion to each problem's fail rate (its
            ``pass_rate`` column from ``generate --student``; see `orca_math.learn.allocation`).
        recipe: a `LearnRecipe` (`orca_math.recipes`) that supplies the settings instead.

    Raises:
        ConfigError: a bad argument, or `out` holds a loop run with different settings.
    """

    def __init__(self, base_model: str | Path | None = None, data: Any = None, *, out: str | Path | None = None,
                 recipe: Any = None, preset: str | TrainingPreset = "tiny",
                 preference_method: str = "kto", iterations: int = 3, samples_per_problem: int = 4,
                 grading: GradingPolicy | str | None = None, sampler_model_factory: Callable[[Path], ModelLike] | None = None,
                 eval: EvalSpec = 0.1, trainers: Mapping[str, Trainer] | None = None, temperature: float = 0.7,
                 top_p: float = 0.95, max_tokens: int = 1024, preference_options: PreferenceOptions | None = None,
                 balance_kto_weights: bool = True, concurrency: int = 8, benchmarks_dir: str | Path | None = None,
                 progress: bool = True, executor: Any = None, grader: GradingPolicy | None = None, sampling_policy: str = "uniform") -> None:
        if recipe is not None:  # a `LearnRecipe` supplies every setting; base_model, data and out may override
            from orca_math.options import refuse_beside_recipe

            refuse_beside_recipe("IterativeLearner(recipe=...)", IterativeLearner.__init__, locals(),
                                 ("self", "recipe", "base_model", "data", "out", "progress"))
            self._recipe, self._opened = recipe, []  # the recipe's grader and cache: closed when a run ends
            try:
                self.__init__(**recipe.learner_arguments(base_model=base_model, data=data, out=out,  # type: ignore[misc]
                                                         progress=progress, opened=self._opened))
            except BaseException:  # refused: nothing runs, so nothing stays open
                run_sync(self._close_opened())
                raise
            return
        if base_model is None or data is None or out is None:
            raise ConfigError("IterativeLearner needs base_model, data and out (or a recipe= that names them).")
        if preference_method not in ("kto", "dpo"):
            raise ConfigError(f"preference_method={preference_method!r}: use 'kto' or 'dpo'.")
        check_positive_int("iterations", iterations)
        check_positive_int("samples_per_problem", samples_per_problem)
        check_sampling(k=samples_per_problem, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                       concurrency=concurrency)
        self.preset = get_preset(preset) if isinstance(preset, str) else preset
        if not isinstance(self.preset, TrainingPreset):
            raise TypeError(f"preset must be a preset name or a TrainingPreset, not {type(preset).__name__}.")
        self.trainers = check_trainers(trainers or {})
        self.eval = check_eval(eval)
        self.base_model = str(base_model)
        # A generator would be used up by the settings check; keep what it yields.
        self.data = data if isinstance(data, str | Path | datasets.Dataset | datasets.DatasetDict) else list(data)
        self.out = Path(out)
        self.preference_method = preference_method
        self.iterations = iterations
        self.samples_per_problem = samples_per_problem
        self.sampling_policy = check_policy(sampling_policy)
        self.grading = grading_policy(grading, grader, where="IterativeLearner", default="exact")
        self.sampler_model_factory = sampler_model_factory or (lambda ckpt: default_sampler(ckpt, max_new_tokens=max_tokens))
        self.sampling = {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens}
        self.preference_options = preference_options or PreferenceOptions()
        self.balance_kto_weights = balance_kto_weights
        self.concurrency = concurrency
        self.benchmarks_dir = benchmarks_dir
        self.progress = progress
        self.executor = executor
        self._recipe: Any = getattr(self, "_recipe", None)  # the LearnRecipe this learner was made from, if any
        self._opened: list[Any] | None = getattr(self, "_opened", None)  # what it opened (its grader, its cache)

    @property
    def grader(self) -> GradingPolicy:
        """Deprecated name of `grading`."""
        warnings.warn("IterativeLearner.grader is now .grading; the old name goes in the next release",
                      DeprecationWarning, stacklevel=2)
        return self.grading

    # ------------------------------------------------------------------ the loop

    async def run(self) -> list[IterationResult]:
        """Run (or continue) every iteration; returns one `IterationResult` per iteration.

        A learner made from a recipe closes the LLM grader and the response cache it opened when the run
        ends, however it ends; running it again opens them again.
        """
        if self._recipe is not None and self._opened is None:  # closed by an earlier run: open them again
            self._opened = []
            self.grading = self._recipe.grading_policy(self.out, self._opened)
        try:
            return await self._run()
        finally:
            await self._close_opened()

    async def _close_opened(self) -> None:
        opened, self._opened = self._opened or [], None
        for resource in opened:  # in order: the grader writes its buffered replies into the cache before it closes
            await close_resource(resource)

    async def _run(self) -> list[IterationResult]:
        refuse_marker_layout(self.out)
        train, holdout = await self._prepare_data()
        if self.sampling_policy != "uniform" and self.iterations > 1:
            # Checked before iteration 1's SFT, which may take hours: a missing pass_rate is found at once.
            allocate_samples(train, k=self.samples_per_problem, policy=self.sampling_policy)
        results: list[IterationResult] = []
        model = Path(self.base_model)
        for iteration in range(1, self.iterations + 1):
            folder = self.out / f"iteration-{iteration}"
            details: dict[str, Any] = {}
            if iteration == 1:
                method = "sft"
                trained = await self._train_step(folder, "sft", partial(sft_dataset, train), model,
                                                 data=content_fingerprint([r["id"], r["question"], r["answer"]] for r in train))
            else:
                method = self.preference_method
                data_dir, stats = await self._preference_steps(folder, model, train, details)
                trained = await self._train_step(folder, method, partial(datasets.load_from_disk, str(data_dir / method)),
                                                 model, data=stats["run_key"], preference_stats=stats["stats"])
            model = Path(trained["model"])
            details["train"] = trained
            scores = await self._eval_step(folder, model, iteration, holdout, details)
            results.append(IterationResult(iteration, method, model, scores, details))
            self._write_tables(results)
        return results

    def run_sync(self) -> list[IterationResult]:
        """Synchronous `run`; also works inside a running event loop such as Jupyter's."""
        return run_sync(self.run())

    def _sampler(self, model: Path) -> ModelLike:
        from orca_math.models import as_model

        sampler = as_model(self.sampler_model_factory(model))  # a spec travels down as a `ModelRef`
        if isinstance(sampler, ModelRef):
            logger.info("sampling and evaluating %s with %s", model, sampler.kind)
        return sampler

    async def _preference_steps(self, folder: Path, model: Path, train: list[dict], details: dict) -> tuple[Path, dict]:
        allocation = allocate_samples(train, k=self.samples_per_problem, policy=self.sampling_policy) \
            if self.sampling_policy != "uniform" else None
        samples = await sample_responses(self._sampler(model), train, k=self.samples_per_problem, out=folder / "samples",
                                         concurrency=self.concurrency, progress=self.progress, executor=self.executor,
                                         samples=allocation, **self.sampling)
        details["samples"] = read_json(folder / "samples" / "summary.json").get("counts", {})
        labelled = await label_attempts(samples, grading=self.grading, out=folder / "labels", concurrency=self.concurrency,
                                        progress=self.progress, executor=self.executor)
        label_summary = read_json(folder / "labels" / "summary.json")
        details["labels"] = label_summary.get("counts", {})
        data_dir = folder / "preferences" / "data"

        def build() -> dict[str, Any]:
            data = build_preferences(read_attempts(labelled), self.preference_options)
            if len(getattr(data, self.preference_method)) == 0:
                raise ConfigError(f"{folder.name} produced no {self.preference_method.upper()} rows "
                                  f"({json.dumps(data.stats.to_dict())}); check the labels in {folder / 'labels'}.")
            for kind in ("dpo", "kto", "sft"):
                getattr(data, kind).save_to_disk(str(data_dir / kind))
            return data.stats.to_dict()

        stats = await run_step("preferences", build, out=folder / "preferences",
                               params={"labels": label_summary["run_key"],
                                       "options": dataclasses.asdict(self.preference_options)})
        details["preferences"] = stats
        key = read_json(folder / "preferences" / "summary.json")["run_key"]
        return data_dir, {"run_key": key, "stats": stats}

    async def _train_step(self, folder: Path, kind: str, dataset: Callable[[], datasets.Dataset], model: Path, *,
                          data: str, preference_stats: Mapping[str, Any] | None = None) -> dict[str, Any]:
        preset = self._preset_for(kind, preference_stats or {})
        trainer = self.trainers.get(kind) or get_trainer(kind)
        return await run_step(
            "train", lambda: train_checkpoint(trainer, dataset, folder / "model", preset, model=model, method=kind),
            out=folder / "train",
            params={"method": kind, "base": describe_spec(f"hf:{model}") if model.exists() else str(model),
                    "data": data, "preset": dataclasses.asdict(preset), "trainer": type(trainer).__qualname__})

    def _preset_for(self, kind: str, stats: Mapping[str, Any]) -> TrainingPreset:
        preset = self.preset
        default_weights = preset.kto_desirable_weight == 1.0 and preset.kto_undesirable_weight == 1.0
        if kind == "kto" and self.balance_kto_weights and default_weights and stats:
            preset = dataclasses.replace(preset, kto_desirable_weight=stats["suggested_desirable_weight"],
                                         kto_undesirable_weight=stats["suggested_undesirable_weight"])
        return preset

    async def _eval_step(self, folder: Path, model: Path, iteration: int, holdout: list[dict], details: dict):
        if self.eval is None:
            return {}
        if isinstance(self.eval, float):
            result = await self._eval_holdout(folder / "eval", model, holdout)
        elif isinstance(self.eval, tuple):
            result = await self._eval_benchmarks(folder / "eval", model)
        else:
            function = self.eval

            async def scored() -> dict[str, Any]:
                import inspect

                scores = function(model, iteration)
                scores = await scores if inspect.isawaitable(scores) else scores
                return {"benchmarks": {str(k): (None if v is None else float(v)) for k, v in dict(scores).items()}}

            result = await run_step("eval", scored, out=folder / "eval",
                                    params={"function": getattr(function, "__qualname__", "function"),
                                            "model": describe_spec(f"hf:{model}") if model.exists() else str(model)})
        details["eval"] = {k: v for k, v in result.items() if k != "benchmarks"}
        return result["benchmarks"]

    async def _eval_holdout(self, out: Path, model: Path, holdout: list[dict]) -> dict[str, Any]:
        path = await sample_responses(self._sampler(model), holdout, k=1, temperature=0.0, top_p=1.0, out=out, seed=False,
                                      max_tokens=self.sampling["max_tokens"], concurrency=self.concurrency,
                                      progress=self.progress, executor=self.executor)
        answers = {row["problem_id"]: row["response"] for row in read_jsonl(path)}
        correct = sum(
            1 for row in holdout if row["id"] in answers
            and self.grading.answer_policy.check(extract_final_answer(row["answer"]).value, answers[row["id"]],
                                                 question=row["question"]).result == "equal"  # the grading's rules
        )
        return {"benchmarks": {"holdout": correct / len(holdout)}, "holdout": len(holdout), "correct": correct,
                "failed": len(holdout) - len(answers)}

    async def _eval_benchmarks(self, out: Path, model: Path) -> dict[str, Any]:
        from orca_math.evaluate import evaluate

        names, limit = self.eval  # type: ignore[misc]
        agent = self.grading.grader_agent
        sampler = self._sampler(model)
        result = await evaluate(sampler, names, limit=limit, grading=self.grading.mode,
                                grader_model=agent.client if agent is not None else None, out=out,
                                path=self.benchmarks_dir, concurrency=self.concurrency, progress=self.progress,
                                sampling={"temperature": 0.0, "max_tokens": self.sampling["max_tokens"]},
                                executor=self.executor, model_options=checkpoint_options(sampler, max_tokens=self.sampling["max_tokens"]))
        scores = {name: result.summary.pass_at_1(name) for name in result.summary.scores}
        return {"benchmarks": scores, "summary": str(result.files.get("summary", ""))}

    # ------------------------------------------------------------------ data and outputs

    async def _prepare_data(self) -> tuple[list[dict], list[dict]]:
        settings = self._settings()
        saved = self.out / "learner.json"
        if saved.exists():
            previous = read_json(saved, error_type=ConfigError)
            if previous != settings:
                changed = sorted(k for k in settings if previous.get(k) != settings[k])
                raise ConfigError(f"{self.out} holds a loop run with other settings ({', '.join(changed)}); "
                                  "use a new out folder, or the same settings to resume.")
        data_dir = self.out / "data"

        def split() -> dict[str, int]:
            rows = problems_of(self.data)
            train, holdout = split_holdout(rows, self.eval if isinstance(self.eval, float) else 0.0)
            write_jsonl(train, data_dir / "train.jsonl")
            write_jsonl(holdout, data_dir / "holdout.jsonl")
            return {"problems": len(rows), "train": len(train), "holdout": len(holdout)}

        await run_step("data", split, out=data_dir, params={"data": settings["data"], "eval": settings["eval"]})
        write_json(saved, settings)
        return list(read_jsonl(data_dir / "train.jsonl")), list(read_jsonl(data_dir / "holdout.jsonl"))

    def _settings(self) -> dict[str, Any]:
        eval_setting = self.eval if not callable(self.eval) else getattr(self.eval, "__qualname__", "function")
        base = Path(self.base_model)
        return json.loads(json.dumps({
            "base_model": self.base_model,
            # The base checkpoint's weights, not just its path (see orca_math.models.identity).
            "base_model_checkpoint": describe_spec(f"hf:{base}") if base.exists() else None,
            "preset": dataclasses.asdict(self.preset),
            "preference_method": self.preference_method, "samples_per_problem": self.samples_per_problem,
            "sampling": self.sampling, "preference_options": dataclasses.asdict(self.preference_options),
            "grader": describe_grading(self.grading), "eval": eval_setting, "data": data_id(self.data),
            **({"sampling_policy": self.sampling_policy} if self.sampling_policy != "uniform" else {}),
        }, default=str))

    def _write_tables(self, results: list[IterationResult]) -> None:
        rows = [r.to_dict() for r in results]
        write_json(self.out / "iterations.json", rows)
        write_json(self.out / "summary.json",
                   {"job": "learn", "iterations": [{k: r[k] for k in ("iteration", "model", "benchmarks", "method")} for r in rows]})
        write_text(self.out / "iterations.md", iterations_table(results) + "\n")


def iterations_table(results: Sequence[IterationResult]) -> str:
    """Accuracy per iteration as a Markdown table."""
    names = list(dict.fromkeys(name for r in results for name in r.benchmarks))
    lines = ["| iteration | method | model | " + " | ".join(names) + " |",
             "|---|---|---|" + "---|" * len(names)]
    for r in results:
        cells = ["-" if r.benchmarks.get(n) is None else f"{100 * r.benchmarks[n]:.1f}%" for n in names]
        lines.append(f"| {r.iteration} | {r.method} | {r.model} | " + " | ".join(cells) + " |")
    return "\n".join(line.replace("|  |", "|") for line in lines)


__all__ = ["IterationResult", "IterativeLearner", "default_sampler", "iterations_table"]
