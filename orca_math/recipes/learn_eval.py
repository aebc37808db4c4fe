"""`LearnRecipe` (the whole Orca-Math training loop) and `EvalRecipe` (benchmark pass@1).

They stand for `orca-math learn` and `orca-math eval`: every field is one of their flags, with the
flag's default.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from orca_math.recipes.common import (
    BatchSection,
    ExecutorSection,
    Recorded,
    SeedSection,
    cache_file_option,
    cache_option,
    cache_setting,
    model_ref,
    response_cache,
    timeout_option,
)
from orca_math.recipes.fields import Section, option

GradeMode = Literal["exact", "llm", "hybrid"]

#: Samples in flight for a vLLM sampler (`sampling.sampler` vllm or serve, or auto with vLLM and a GPU): the
#: engine batches them, so more in flight is more throughput. Other samplers default to 8.
BATCHED_CONCURRENCY = 256


class DataSection(SeedSection):
    """The problems with the teacher's solutions that the student learns from; read as seeds are."""

    path: str = option(..., "problems with the teacher's solutions (question/answer columns): .jsonl, .json, .csv, "
                       ".parquet, a save_to_disk folder, or an HF dataset name", flag="--data", metavar="DIR_OR_FILE",
                       min_length=1)


class TrainingSection(Section):
    """The student and how it is trained."""

    model: str = option(..., "the base model folder (or Hub id)", flag="--model", metavar="PATH", min_length=1)
    iterations: int = option(3, "iterations, SFT included (the paper's: SFT, then two preference iterations)",
                             flag="--iterations", metavar="N", ge=1)
    method: Literal["kto", "dpo"] = option("kto", "preference method (kto is the paper's best)", flag="--method")
    preset: Literal["tiny", "mistral-7b"] = option("mistral-7b", "training preset: mistral-7b (one 8-GPU node; see "
                                                   "docs/training.md) or tiny (CPU smoke runs)", flag="--preset")
    overrides: dict[str, Any] = option(
        {}, "override a preset field, e.g. --set max_steps=100 --set use_lora=true --set "
        "lora_target_modules=q_proj,v_proj --set trl_args='{\"save_steps\": 500}' ({max_steps: 100, use_lora: true} "
        "in a recipe)", flag="--set", dest="overrides", codec="preset", metavar="FIELD=VALUE")


class SamplingSection(Section):
    """How responses are sampled from each checkpoint."""

    k: int = option(4, "responses sampled per problem, as in the paper", flag="--k", aliases=("--samples",),
                    metavar="K", ge=1)
    temperature: float = option(0.7, "sampling temperature (the paper's)", flag="--temperature", ge=0)
    top_p: float = option(0.95, "nucleus sampling top_p (the paper's)", flag="--top-p", gt=0, le=1)
    max_tokens: int = option(1024, "reply token limit per sample", flag="--max-tokens", ge=1)
    prompt_format: Literal["orca", "chat"] | None = option(
        None, "for hf: and vllm: students only: 'orca' sends USER: {question}\\nASSISTANT: (what our SFT trains on); "
        "'chat' uses the tokenizer's chat template (default orca)", flag="--prompt-format")
    sampler: Literal["auto", "vllm", "serve", "hf"] = option(
        "auto", "what samples and evaluates each checkpoint: vllm (vLLM's batched engine in this process), serve "
        "(`vllm serve` on a local port for the step, for several GPUs), hf (transformers, one generation at a time); "
        "auto: vllm when it is installed and a GPU is present, else hf", flag="--sampler")
    policy: Literal["uniform", "prop2diff"] = option(
        "uniform", "how the K-per-problem sampling budget is spent: uniform (K each, the paper's) or prop2diff (in "
        "proportion to each problem's fail rate, its pass_rate column from generate --student)", flag="--curate",
        dest="curate")
    concurrency: int | None = option(None, "samples and gradings in flight at once (default 8; 256 with a vLLM "
                                     "sampler, which batches them)", flag="--concurrency", metavar="N", ge=1)


class GradingSection(Section):
    """How samples are labelled against the teacher's solution."""

    mode: GradeMode | None = option(None, "how samples are labelled against the teacher's solution: exact "
                                    "(deterministic answer checking, no model needed; the default), llm (the Grader "
                                    "agent always, as in the paper), hybrid (deterministic where both answers parse, "
                                    "the Grader agent otherwise)", flag="--grading", dest="grading")
    grader_model: str | None = option(None, "model spec of the Grader agent, needed for llm and hybrid (use a strong "
                                      "model)", flag="--grader-model", metavar="SPEC")
    timeout: float | None = timeout_option()


class LearnEvaluationSection(Section):
    """How each iteration's model is evaluated: a held-out share of the data, benchmarks, or not at all."""

    enabled: bool = option(True, "evaluation after each iteration", flag="--no-eval", dest="no_eval", invert=True)
    holdout: float | None = option(None, "hold out this share of the data (never trained on) and score greedy answers "
                                   "against the teacher's final answers (default 0.1)", flag="--holdout",
                                   metavar="SHARE", gt=0, lt=1)
    benchmarks: str | None = option(None, "evaluate on these benchmarks instead (comma-separated, e.g. gsm8k,svamp)",
                                    flag="--eval-benchmarks", metavar="NAMES")
    limit: int | None = option(None, "first N items of each benchmark", flag="--eval-limit", metavar="N", ge=1)
    benchmarks_dir: str | None = option(None, "local benchmark copies (default: $ORCA_MATH_BENCHMARKS_DIR, else the "
                                        "Hub)", flag="--benchmarks-dir", metavar="DIR")


class LearnRecipe(Section):
    """The Orca-Math training loop: what `orca-math learn` does with the same settings as flags."""

    kind: Literal["learn"] = Field("learn", description="the job this recipe runs")
    out: str | None = option(None, "the loop's folder (default: give --out to `orca-math run`)")
    data: DataSection = Field(description="the training problems")
    training: TrainingSection = Field(description="the student and its training")
    sampling: SamplingSection = Field(default_factory=SamplingSection, description="sampling from each checkpoint")
    grading: GradingSection = Field(default_factory=GradingSection, description="labelling the samples")
    evaluation: LearnEvaluationSection = Field(default_factory=LearnEvaluationSection,
                                               description="evaluation after each iteration")
    executor: ExecutorSection = Field(default_factory=ExecutorSection, description="where items run")
    cache: bool = cache_option()
    cache_file: str | None = cache_file_option()
    recorded: Recorded | None = Field(None, description="written by a run into its folder's recipe.yaml; not an input")

    def learner_arguments(self, **given: Any) -> dict[str, Any]:
        """The keyword arguments of `IterativeLearner` this recipe means (see `learner_arguments`)."""
        return learner_arguments(self, **given)

    def grading_policy(self, out: Any, opened: list[Any] | None = None) -> Any:
        """The `GradingPolicy` of the grading section, for a run in `out` (see `recipe_grading`)."""
        return recipe_grading(self, out, opened)


def learner_arguments(recipe: LearnRecipe, *, base_model: Any = None, data: Any = None, out: Any = None,
                      progress: bool = True, opened: list[Any] | None = None) -> dict[str, Any]:
    """The keyword arguments of `IterativeLearner` a learn recipe means: the one mapping of `orca-math learn`
    and ``IterativeLearner(recipe=...)``.

    Args:
        recipe: the learn recipe.
        base_model, data, out: when not None, used instead of the recipe's.
        progress: show progress bars (how the run looks, not what it computes).
        opened: a list that receives what this opens for the run and the caller must close when it
            ends: the LLM grader's client and its response cache.

    Raises:
        ConfigError: llm or hybrid grading without a grader model, an evaluation limit without
            benchmarks, a Ray setting without the ray executor.
    """
    from orca_math.learn.presets import get_preset
    from orca_math.learn.samplers import CheckpointSampler

    s, e = recipe.sampling, recipe.evaluation
    if e.limit is not None and not e.benchmarks:
        from orca_math.errors import ConfigError

        raise ConfigError("recipe field evaluation.limit needs evaluation.benchmarks.")
    out = out or recipe.out
    executor = recipe.executor.build()
    sampler = CheckpointSampler(base_model or recipe.training.model, engine=s.sampler, prompt_format=s.prompt_format,
                                max_tokens=s.max_tokens, executor=executor)
    evaluation: Any = None
    if e.enabled:
        evaluation = (e.benchmarks, e.limit) if e.benchmarks else (0.1 if e.holdout is None else e.holdout)
    return {
        "base_model": base_model or recipe.training.model, "data": data if data is not None else _learn_data(recipe),
        "out": out,
        "preset": get_preset(recipe.training.preset, **recipe.training.overrides),
        "preference_method": recipe.training.method, "iterations": recipe.training.iterations,
        "samples_per_problem": s.k, "grading": recipe_grading(recipe, out, opened), "sampler_model_factory": sampler,
        "eval": evaluation, "temperature": s.temperature, "top_p": s.top_p, "max_tokens": s.max_tokens,
        # A vLLM sampler batches: many samples in flight keep it busy.
        "concurrency": s.concurrency or (BATCHED_CONCURRENCY if sampler.batched else 8),
        "benchmarks_dir": e.benchmarks_dir, "progress": progress, "executor": executor, "sampling_policy": s.policy,
    }


def recipe_grading(recipe: LearnRecipe, out: Any, opened: list[Any] | None = None) -> Any:
    """The `GradingPolicy` of a learn recipe's grading section. An LLM grader is a managed client over
    `grading.grader_model` that keeps its replies in the run's response cache (`cache`, `cache_file`): the
    student's checkpoints are new models in every run, so only the Grader's calls recur. The client and the
    cache are appended to `opened`, for the caller to close."""
    from orca_math.grading import GradingPolicy

    mode = recipe.grading.mode or "exact"
    if mode == "exact":
        return GradingPolicy(mode="exact")
    if not recipe.grading.grader_model:
        from orca_math.errors import ConfigError

        raise ConfigError(f"recipe field grading.mode={mode!r} needs grading.grader_model (a strong model spec).")
    from orca_math.engine.config import EngineConfig, build_client

    cache = response_cache(out, recipe.cache, recipe.cache_file) if out is not None else None
    config = EngineConfig.of(concurrency=recipe.sampling.concurrency or 16, timeout=recipe.grading.timeout, cache=False)
    try:
        grader = build_client(recipe.grading.grader_model, config, cache=cache)
    except BaseException:
        if cache is not None:
            cache.close()
        raise
    if opened is not None:
        opened += [grader] + ([cache] if cache is not None else [])
    return GradingPolicy(grader, mode=mode)


def _learn_data(recipe: LearnRecipe) -> Any:
    """The data section as `IterativeLearner` takes it: the path, or the problems read with the seed options."""
    d = recipe.data
    options = {k: v for k, v in {"question_column": d.question_column, "answer_column": d.answer_column,
                                 "id_column": d.id_column, "max_seed_chars": d.max_seed_chars}.items() if v is not None}
    options.update({"split": d.split} if d.split != "train" else {})
    if d.limit is None and not options:
        return d.path
    from orca_math.data.seeds import read_seeds

    return [{"id": p.id, "question": p.question, "answer": p.gold_solution}
            for p in read_seeds(d.path, limit=d.limit, require_answers=True, **options)]


class EvalModelSection(Section):
    """The student model under evaluation. API keys never go here: they come from the environment."""

    spec: str = option(..., "the student model: an OpenAI-compatible server URL (e.g. a vLLM server, "
                       "http://127.0.0.1:8000/v1), 'hf:<path>' for a local transformers model, 'openai:<model>', "
                       "'azure:<deployment>' or 'local'", flag="--model", min_length=1)
    name: str | None = option(None, "model name to request from a server URL (default: the first one it serves)",
                              flag="--model-name")
    base_url: str | None = option(None, "base URL for an 'openai:<model>' spec", flag="--base-url")
    temperature: float | None = option(None, "the student's sampling temperature (default: the Teacher card's, 0)",
                                       flag="--temperature", ge=0)
    max_tokens: int | None = option(None, "the student's reply token limit (default: the Teacher card's, 1024)",
                                    flag="--max-tokens", ge=1)

    def ref(self) -> Any:
        """The `ModelRef` of the student (its spec, and the served model's name and base URL when set)."""
        return model_ref(self.spec, self.name, self.base_url)


def _known_benchmarks() -> str:
    from orca_math.data.benchmarks import BENCHMARKS

    return ", ".join(BENCHMARKS)


class BenchmarkSection(Section):
    """Which benchmarks to score."""

    names: str | None = option(None, "comma-separated benchmark names (default: gsm8k, or none when --benchmark-file "
                               f"is given); known: {_known_benchmarks()}", flag="--benchmarks")
    files: list[str] = option([], "a benchmark of your own: a .jsonl, .json, .csv or .parquet file with a question and "
                              "a gold answer per row (evaluated after --benchmarks, in the same tables)",
                              flag="--benchmark-file", dest="benchmark_file", metavar="FILE")
    question_column: str = option("question", "the question column of each --benchmark-file",
                                  flag="--question-column", metavar="COLUMN")
    answer_column: str = option("answer", "the gold answer column of each --benchmark-file: a number, or text ending "
                                "in '#### N' or 'Final answer: N'", flag="--answer-column", metavar="COLUMN")
    file_names: list[str] = option([], "the name of a --benchmark-file's set in the tables, in the order of the files "
                                   "(default: the file's name without its extension)", flag="--name", dest="name",
                                   metavar="NAME")
    limit: int | None = option(None, "evaluate only the first N items of each benchmark (default: all)",
                               flag="--limit", metavar="N", ge=1)
    benchmarks_dir: str | None = option(None, "folder of local benchmark copies (gsm8k/test.jsonl, svamp/test.jsonl, "
                                        "...); default: $ORCA_MATH_BENCHMARKS_DIR, else the Hugging Face Hub",
                                        flag="--benchmarks-dir", metavar="DIR")


class EvalGradingSection(Section):
    """How replies are graded against the gold answers."""

    mode: GradeMode | None = option(
        None, "exact: deterministic answer checking only (undecidable replies count as incorrect); llm: the LLM grader "
        "always (the paper's GPT-4-based exact match); hybrid: deterministic where the checker is sure, the LLM "
        "grader for the rest (the default)", flag="--grading", dest="grading")
    grader_model: str | None = option(None, "model spec of the LLM grader (default: the student model; pass a strong "
                                      "model for real evaluations)", flag="--grader-model", metavar="SPEC")
    audit_rate: float = option(0.0, "share (0-1) of deterministic verdicts also sent to the LLM grader; the summary "
                               "reports agreement (0: no audit)", flag="--audit-rate", metavar="RATE", ge=0, le=1)


class EvalRecipe(Section):
    """A benchmark evaluation: what `orca-math eval` does with the same settings as flags."""

    kind: Literal["eval"] = Field("eval", description="the job this recipe runs")
    out: str | None = option(None, "the output folder (default: give --out to `orca-math run`)")
    model: EvalModelSection = Field(description="the student model")
    benchmarks: BenchmarkSection = Field(default_factory=BenchmarkSection, description="the benchmarks")
    grading: EvalGradingSection = Field(default_factory=EvalGradingSection, description="grading")
    concurrency: int = option(8, "items in flight at once; does not change the run key", flag="--concurrency",
                              metavar="N", ge=1)
    timeout: float | None = timeout_option()
    cache: bool = cache_option()
    cache_file: str | None = cache_file_option()
    executor: ExecutorSection = Field(default_factory=ExecutorSection, description="where items run")
    batch: BatchSection = Field(default_factory=BatchSection, description="batch mode")
    recorded: Recorded | None = Field(None, description="written by a run into its folder's recipe.yaml; not an input")

    def evaluate_arguments(self, **given: Any) -> dict[str, Any]:
        """The keyword arguments of `orca_math.evaluate.evaluate` this recipe means (see `evaluate_arguments`)."""
        return evaluate_arguments(self, **given)


def evaluate_arguments(recipe: EvalRecipe, *, model: Any = None, out: Any = None, fresh: bool = False,
                       progress: bool = True, wait: bool = True) -> dict[str, Any]:
    """The keyword arguments of `evaluate` an eval recipe means: the one mapping of `orca-math eval`, of
    `orca-math run` with an eval recipe, and of ``evaluate(recipe=...)``.

    The benchmarks are read (and checked) here, before any model is loaded.

    Args:
        recipe: the eval recipe.
        model: the client of the recipe's model section, loaded by the caller; None: the section's
            `ModelRef` (its spec, model name and base URL), which the evaluation's engine builds.
        out: the output folder instead of the recipe's.
        fresh, progress: how to run: discard an earlier run, show progress bars.
        wait: with batch mode, wait for the batches (False: submit what can be submitted and stop).

    Raises:
        BenchmarkError: an unknown benchmark, or a benchmark file that can't be read.
        ConfigError: more file names than files, batch mode without an output folder, a Ray setting
            without the ray executor.
    """
    from orca_math.errors import ConfigError
    from orca_math.evaluate.sets import benchmark_file, parse_benchmarks

    b = recipe.benchmarks
    if len(b.file_names) > len(b.files):
        raise ConfigError(f"recipe field benchmarks.file_names names {len(b.file_names)} sets for "
                          f"{len(b.files)} benchmarks.files; give one name per file, in the same order.")
    if b.names is not None:
        names = parse_benchmarks(b.names)
    else:  # the default: gsm8k, unless only files were given
        names = [] if b.files else parse_benchmarks("gsm8k")
    files = [benchmark_file(file, question=b.question_column, answer=b.answer_column,
                            name=b.file_names[i] if i < len(b.file_names) else None) for i, file in enumerate(b.files)]
    out = out or recipe.out
    executor = recipe.executor.build()
    calls = None
    if recipe.batch.enabled:
        if out is None:
            raise ConfigError("batch mode (batch.enabled) needs an output folder for its batch state: set out.")
        from orca_math.engine.modes import batch_calls

        calls = batch_calls(out, recipe.batch.options(), wait=wait)
    if model is None:  # built (and closed) by the evaluation's engine, or each Ray worker, where the calls are made
        model = recipe.model.ref()
    sampling = {k: v for k, v in {"temperature": recipe.model.temperature,
                                  "max_tokens": recipe.model.max_tokens}.items() if v is not None}
    return {
        "model": model, "benchmarks": [*names, *files], "limit": b.limit, "grading": recipe.grading.mode or "hybrid",
        "grader_model": recipe.grading.grader_model, "out": out, "path": b.benchmarks_dir,
        "concurrency": recipe.concurrency, "sampling": sampling or None, "fresh": fresh, "progress": progress,
        "audit_rate": recipe.grading.audit_rate, "timeout": recipe.timeout, "executor": executor, "calls": calls,
        "cache": cache_setting(recipe.cache, recipe.cache_file),
    }


__all__ = ["BATCHED_CONCURRENCY", "EvalRecipe", "LearnRecipe", "evaluate_arguments", "learner_arguments"]
