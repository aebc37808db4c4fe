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
    check_grading_flags,
    check_out,
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
    """Resolve the flags into a `LearnRecipe` and run `IterativeLearner(recipe=...)`: the one route of the loop,
    from flags, from `orca-math run RECIPE` (which parses the recipe's flags) and from Python alike."""
    from orca_math.learn.loop import IterativeLearner, iterations_table
    from orca_math.recipes import recipe_from_args

    check_out(args, "learn", inputs=[args.data, args.model])
    # Checked by their flags first, so each refusal names the flag the user typed.
    if args.eval_limit is not None and not args.eval_benchmarks:
        raise user_error(ValueError("--eval-limit needs --eval-benchmarks."))
    args.grading = check_grading_flags(args)  # the old --grader is the recipe's grading.mode too
    executor_from_args(args)  # --ray-address and --workers need --executor ray
    try:
        preset_from_args(args.preset, args.overrides)  # a bad --set names its flag
        recipe = recipe_from_args("learn", args)
        learner = IterativeLearner(recipe=recipe, progress=not args.no_progress)
        learner.sampler_model_factory.announce = _announce_sampler(args.sampler)
        results = learner.run_sync()
    except ValueError as exc:
        raise user_error(exc) from None
    print(iterations_table(results))
    print(f"\n{Path(args.out) / 'iterations.md'}; per-step files in {Path(args.out)}/iteration-*/")
    failed = sum((r.details.get(step) or {}).get("failed", 0) for r in results for step in ("samples", "labels"))
    where = f"{Path(args.out)}/iteration-*/samples/failures.jsonl and labels/label_failures.jsonl"
    return exit_status(failed, "samples or labels", where, retried=False)  # a finished step is not redone


def _announce_sampler(flag: str):
    def announce(checkpoint: Path, engine: str) -> None:
        print(f"sampling and evaluating {checkpoint} with {engine} (--sampler {flag})")

    return announce


def checkpoint_sampler(args: argparse.Namespace) -> Any:
    """The `CheckpointSampler` (`orca_math.learn.samplers`) of parsed `learn` flags (`--model`, `--sampler`,
    `--prompt-format`, `--max-tokens`, the executor flags), printing which engine samples each checkpoint;
    `run_learn` gets the same one from the recipe the flags mean."""
    from orca_math.learn.samplers import CheckpointSampler as Sampler

    sampler = Sampler(args.model, engine=args.sampler, prompt_format=args.prompt_format, max_tokens=args.max_tokens,
                      executor=executor_from_args(args))
    sampler.announce = _announce_sampler(args.sampler)
    return sampler


#: The earlier name of `checkpoint_sampler` (it was a class here).
CheckpointSampler = checkpoint_sampler


__all__ = ["CheckpointSampler", "add_parser", "checkpoint_sampler", "preset_from_args", "run_learn"]
