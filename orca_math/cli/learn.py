"""`orca-math learn`: the whole Orca-Math training loop (SFT, then sample/label/KTO or DPO iterations).

The loop's steps are also commands of their own: `orca-math sample` and `preferences`
(orca_math.cli.sample) and `orca-math train` (orca_math.cli.train). See docs/learning.md for the
loop and docs/training.md for the 8-GPU Mistral-7B commands.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from orca_math.cli.learn_options import (
    add_data_options,
    add_grading_options,
    add_overwrite,
    add_sampling_options,
    check_out,
    grading_from_args,
    problems_from_args,
    user_error,
)
from orca_math.cli.outcome import exit_status
from orca_math.cli.scale_options import add_executor_options, executor_from_args
from orca_math.cli.train import add_preset_options, preset_from_args


def add_parser(subparsers) -> None:
    _add_learn(subparsers)


def _add_learn(subparsers) -> None:
    parser = subparsers.add_parser(
        "learn", help="run the whole Orca-Math loop: SFT, then sample/label/KTO (or DPO) iterations",
        description="Iteration 1 fine-tunes MODEL on DATA (SFT -> M1); each later iteration samples K responses per "
        "problem from the last model, labels them against the teacher's solutions, builds preference data and "
        "trains with KTO or DPO (-> M2, M3). After each iteration the model is evaluated (a held-out share of DATA "
        "by default) and OUT/iterations.md shows accuracy per iteration. Every step is resumable: rerun the same "
        "command to continue. Runs in one process (CPU or one GPU); for 8 GPUs run the steps with `orca-math "
        "train/sample/preferences` (docs/training.md).",
    )
    # learn's settings are written once, as the LearnRecipe's fields (orca_math.recipes.learn_eval).
    from orca_math.cli.recipe_flags import add_recipe_flags
    from orca_math.recipes.learn_eval import (
        LearnEvaluationSection,
        LearnRecipe,
        SamplingSection,
        TrainingSection,
    )

    add_recipe_flags(parser, TrainingSection, only=("model",))
    add_data_options(parser)
    parser.add_argument("--out", required=True, metavar="DIR", help="the loop's folder")
    add_recipe_flags(parser, TrainingSection, only=("iterations", "method"))
    add_preset_options(parser)
    add_sampling_options(parser)
    add_recipe_flags(parser, SamplingSection, only=("policy",))
    add_grading_options(parser)
    add_recipe_flags(parser.add_mutually_exclusive_group(), LearnEvaluationSection,
                     only=("holdout", "benchmarks", "enabled"))
    add_recipe_flags(parser, LearnEvaluationSection, only=("limit", "benchmarks_dir"))
    add_recipe_flags(parser, SamplingSection, only=("sampler", "concurrency"))
    add_recipe_flags(parser, LearnRecipe, only=("cache", "cache_file"))
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_overwrite(parser)
    add_executor_options(parser)
    parser.set_defaults(handler=run_learn)


def run_learn(args: argparse.Namespace) -> int:
    from orca_math.learn.loop import IterativeLearner, iterations_table

    check_out(args, "learn", inputs=[args.data, args.model])
    if args.eval_limit is not None and not args.eval_benchmarks:
        raise user_error(ValueError("--eval-limit needs --eval-benchmarks."))
    evaluation: Any = 0.1 if args.holdout is None else args.holdout
    if args.eval_benchmarks:
        evaluation = (args.eval_benchmarks, args.eval_limit)
    elif args.no_eval:
        evaluation = None
    sampler = CheckpointSampler(args)
    from orca_math.recipes.learn_eval import BATCHED_CONCURRENCY

    concurrency = args.concurrency or (BATCHED_CONCURRENCY if sampler.batched else 8)
    cache = _grader_cache(args)
    try:
        learner = IterativeLearner(
            args.model, _data_source(args), out=args.out, preset=preset_from_args(args.preset, args.overrides),
            preference_method=args.method, iterations=args.iterations, samples_per_problem=args.k,
            grading=grading_from_args(args, cache=cache), sampler_model_factory=sampler, eval=evaluation, temperature=args.temperature,
            top_p=args.top_p, max_tokens=args.max_tokens, concurrency=concurrency,
            benchmarks_dir=args.benchmarks_dir, progress=not args.no_progress, executor=executor_from_args(args),
            sampling_policy=args.curate,
        )
        results = learner.run_sync()
    except ValueError as exc:
        raise user_error(exc) from None
    finally:
        if cache is not None:
            cache.close()  # every verdict written, so a rerun or a reproduction finds it
    print(iterations_table(results))
    print(f"\n{Path(args.out) / 'iterations.md'}; per-step files in {Path(args.out)}/iteration-*/")
    failed = sum((r.details.get(step) or {}).get("failed", 0) for r in results for step in ("samples", "labels"))
    where = f"{Path(args.out)}/iteration-*/samples/failures.jsonl and labels/label_failures.jsonl"
    return exit_status(failed, "samples or labels", where, retried=False)  # a finished step is not redone


class CheckpointSampler:
    """The loop's `sampler_model_factory`: what `--sampler`, `--prompt-format` and `--max-tokens` make of a checkpoint.

    Called with a checkpoint folder, it returns the sampler: a spec the loop loads in the Orca
    format, or a client built in `--prompt-format chat` (on ``--executor ray``, a stand-in for a
    checkpoint only the workers load). `batched` says whether the sampler is a vLLM one.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.batched = self.spec(Path(args.model)).startswith("vllm")

    def spec(self, checkpoint: Path) -> str:
        from orca_math.learn.loop import default_sampler

        if self.args.sampler == "serve":
            return f"vllm-serve:{checkpoint}"
        return str(default_sampler(checkpoint, engine=self.args.sampler))

    def __call__(self, checkpoint: Path) -> Any:
        from orca_math.cli.scale_options import load_model_for

        args, chosen = self.args, self.spec(checkpoint)
        print(f"sampling and evaluating {checkpoint} with {chosen.split(':', 1)[0]} (--sampler {args.sampler})")
        if args.prompt_format in (None, "orca"):  # None: the flag's default, orca
            return chosen  # the loop loads hf: and vllm: specs in the Orca format they were trained on
        if chosen.startswith(("hf:", "vllm:")):
            return load_model_for(chosen, args, prompt_format=args.prompt_format, max_new_tokens=args.max_tokens)
        return load_model_for(chosen, args)  # served: the server applies the checkpoint's own chat template


def _grader_cache(args: argparse.Namespace) -> Any:
    """The response cache of the Grader's calls (OUT/cache.sqlite, --cache-file), or None: with exact grading,
    or --no-cache. The student's checkpoints are new models in every run, so only the Grader's calls recur."""
    from orca_math.cli.learn_options import grading_mode_from_args
    from orca_math.recipes.common import response_cache

    if grading_mode_from_args(args, "exact") == "exact":
        return None
    return response_cache(args.out, not args.no_cache, args.cache_file)


def _data_source(args: argparse.Namespace) -> Any:
    plain = args.limit is None and not _seed_options_changed(args)
    return args.data if plain else problems_from_args(args)


def _seed_options_changed(args: argparse.Namespace) -> bool:
    from orca_math.cli.common import seed_options_from_args

    return bool(seed_options_from_args(args))


__all__ = ["CheckpointSampler", "add_parser", "preset_from_args", "run_learn"]
